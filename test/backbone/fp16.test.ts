/**
 * SKT_PRECISION=fp16: the float16 codec against IEEE 754's definition, the graph transform on small
 * graphs run by onnxruntime's CPU provider against naive float64 references with tolerances derived
 * from float16's unit roundoff, the parts it must keep float32 (sin/cos arguments, the −1e9 attention
 * bias, squares and reductions), and the whole USE-lite fp16 backbone against the fp32 one.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackboneRunner, loadBackboneAssets, tokenBatch, type BackboneAssets } from "../../src/backbone/backbone.js";
import { Graph, type Value } from "../../src/backbone/graph/graph.js";
import {
  FLOAT16_EPSILON,
  FLOAT16_MAX,
  float16Bits,
  float16Value,
  float32Ops,
  roundToFloat16,
  toHalfPrecision,
} from "../../src/backbone/graph/half.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { readSst2 } from "../../scripts/lib/sst2.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { FIXTURES_DIR } from "../helpers/hf-checkpoint.js";
import { cosine, seededRandom } from "../helpers/numeric.js";
import { sst2PredictionsAt } from "../helpers/precision.js";

/** Unit roundoff: a float16 rounding changes a value by at most u·|value| (normal range). */
const U = FLOAT16_EPSILON / 2;

describe("float16 codec", () => {
  it("encodes known values exactly as IEEE 754 binary16", () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.5, 0x3800],
      [1 / 3, 0x3555],
      [FLOAT16_MAX, 0x7bff],
      [65519, 0x7bff], // rounds down to the largest finite value
      [65520, 0x7c00], // rounds up to infinity
      [-1e9, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // a tie: to the even (zero)
      [1 + 2 ** -11, 0x3c00], // a tie between 1 and 1 + 2^-10: to the even
      [1 + 3 * 2 ** -11, 0x3c02], // a tie: to the even (…10)
    ];
    for (const [x, bits] of cases) expect(float16Bits(x), String(x)).toBe(bits);
    expect(float16Bits(NaN) & 0x7c00).toBe(0x7c00);
  });

  it("every bit pattern decodes to a value that encodes back to it", () => {
    for (let b = 0; b < 0x10000; b++) {
      const v = float16Value(b);
      if (Number.isNaN(v)) expect((b & 0x7c00) === 0x7c00 && (b & 0x3ff) !== 0).toBe(true);
      else expect(float16Bits(v)).toBe(b);
    }
  });

  it("rounds to the nearest representable value (relative error ≤ 2^-11 in the normal range, 2^-25 below)", () => {
    const rand = seededRandom(5);
    for (let i = 0; i < 5000; i++) {
      const x = (rand() * 2 - 1) * 2 ** Math.floor(rand() * 30 - 14);
      const r = roundToFloat16(x);
      // Below 2^-14 (subnormals) the spacing is fixed at 2^-24, so the error is ≤ 2^-25 absolute.
      expect(Math.abs(r - x)).toBeLessThanOrEqual(Math.max(U * Math.abs(x), 2 ** -25) * (1 + 1e-12));
      // No representable value is closer: the neighbours of r's pattern are both farther away.
      const bits = float16Bits(x);
      for (const nb of [bits - 1, bits + 1]) {
        const n = float16Value(nb & 0xffff);
        if (Number.isFinite(n) && Math.sign(n) === Math.sign(r))
          expect(Math.abs(n - x)).toBeGreaterThanOrEqual(Math.abs(r - x));
      }
    }
  });
});

async function run(g: Graph, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(toOnnxBytes(g), { intraOpNumThreads: 1 });
  try {
    const r = await session.run(feeds);
    return Object.fromEntries(Object.entries(r).map(([k, t]) => [k, t.data as Float32Array]));
  } finally {
    await session.release();
  }
}

describe("toHalfPrecision on a dense layer and a softmax", () => {
  // y = x·W + b, s = y·V, p = softmax(s + bias(mask)) with the attention-style −1e9 bias on masked columns.
  const [m, k, n] = [6, 32, 8];
  const rand = seededRandom(17);
  const W = Float32Array.from({ length: k * n }, () => (rand() * 2 - 1) * 0.5);
  const b = Float32Array.from({ length: n }, () => rand() - 0.5);
  const x = Float32Array.from({ length: m * k }, () => rand() * 4 - 2);
  const V = Float32Array.from({ length: n * n }, () => rand() * 2 - 1);
  const mask = BigInt64Array.from({ length: n }, (_, j) => (j % 3 === 2 ? 0n : 1n));

  function build(): Graph {
    const g = new Graph();
    const xi = g.input("x", "float32", ["m", k]);
    const mi = g.input("mask", "int64", [n]);
    const y = g.add(g.matmul(xi, g.weight("w", W, [k, n])), g.weight("b", b, [n]));
    const bias = g.mul(g.sub(g.floats([1]), g.cast(mi, "float32")), g.floats([-1e9]));
    const scores = g.matmul(y, g.weight("v", V, [n, n]));
    g.output("y", y);
    g.output("s", scores);
    g.output("p", g.softmax(g.add(scores, bias), -1));
    return g;
  }
  const feeds = () => ({
    x: new ort.Tensor("float32", x.slice(), [m, k]),
    mask: new ort.Tensor("int64", mask.slice(), [n]),
  });

  it("stores weights as float16, keeps float32 inputs and outputs, and the bias chain and softmax float32", () => {
    const src = build();
    const { graph, saturated } = toHalfPrecision(src);
    expect(graph.inputs.map((v) => [v.name, v.dtype])).toEqual([
      ["x", "float32"],
      ["mask", "int64"],
    ]);
    expect(graph.outputs.map((v) => [v.name, v.dtype])).toEqual([
      ["y", "float32"],
      ["s", "float32"],
      ["p", "float32"],
    ]);
    const init = (name: string) => graph.initializers.find((i) => i.value.name.startsWith(name))!.value;
    expect(init("w").dtype).toBe("float16");
    expect(init("b").dtype).toBe("float16");
    expect(graph.ops.find((o) => o.type === "MatMul")!.outputs[0].dtype).toBe("float16");
    // −1e9 is beyond float16: it stays a float32 constant in a float32 chain, never saturated.
    expect(
      graph.initializers.filter((i) => i.value.dtype === "float32").map((i) => Array.from(i.data as Float32Array)),
    ).toContainEqual([-1e9]);
    expect(saturated).toEqual([]);
    expect(graph.ops.find((o) => o.type === "Softmax")!.outputs[0].dtype).toBe("float32");
    const kept = [...float32Ops(src)].map((o) => o.type).sort();
    // s + bias and the bias chain (the cone of Softmax's input), the Softmax, and the Identity that
    // names its output (all its inputs are float32).
    expect(kept).toEqual(["Add", "Cast", "Identity", "Mul", "Softmax", "Sub"]);
  });

  it("agrees with a float64 reference within the float16 error bound of each value", async () => {
    const half = await run(toHalfPrecision(build()).graph, feeds());
    const exact = await run(build(), feeds());
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = b[j];
        let magnitude = Math.abs(b[j]);
        for (let t = 0; t < k; t++) {
          s += x[i * k + t] * W[t * n + j];
          magnitude += Math.abs(x[i * k + t] * W[t * n + j]);
        }
        // x, W, b each rounded once (3u), a sum of k + 1 terms rounded at most k + 1 times, the
        // result rounded once: |Δ| ≤ (k + 5)·u·Σ|terms| (Higham's γ bound, first order).
        const bound = (k + 5) * U * magnitude;
        const err = Math.abs(half.y[i * n + j] - s);
        expect(err, `y[${i},${j}]`).toBeLessThanOrEqual(bound);
      }
      // Masked columns get probability exactly 0 (no NaN from 0·−∞); the rest are the float32
      // softmax of the float16 scores the graph returned (the softmax and the bias run in float32).
      const y16 = Array.from(half.s.subarray(i * n, (i + 1) * n));
      const max = Math.max(...y16.filter((_, j) => mask[j] === 1n));
      const z = y16.reduce((a, l, j) => a + (mask[j] === 1n ? Math.exp(l - max) : 0), 0);
      for (let j = 0; j < n; j++) {
        const p = half.p[i * n + j];
        if (mask[j] === 0n) expect(p).toBe(0);
        else expect(Math.abs(p - Math.exp(y16[j] - max) / z)).toBeLessThanOrEqual(1e-6);
      }
    }
    // And it is not the float32 graph under another name: float16 rounding is visible in y.
    let worst = 0;
    for (let i = 0; i < m * n; i++) worst = Math.max(worst, Math.abs(half.y[i] - exact.y[i]));
    expect(worst).toBeGreaterThan(1e-4);
  });

  it("the emulated graph rounds every float16 value: its outputs are float16-representable", async () => {
    const emulated = await run(toHalfPrecision(build(), { emulate: true }).graph, feeds());
    for (const v of emulated.y) expect(roundToFloat16(v)).toBe(v);
    const exact = await run(build(), feeds());
    expect(Math.max(...emulated.y.map((v, i) => Math.abs(v - exact.y[i])))).toBeGreaterThan(1e-4);
  });
});

describe("toHalfPrecision keeps what float16 cannot hold in float32", () => {
  it("sin/cos of position × frequency (a timing signal) match float32 where float16 arguments would be 1e-2 off", async () => {
    const inv = Float32Array.from({ length: 16 }, (_, i) => 1 / 10000 ** (i / 16));
    const g = new Graph();
    const like = g.input("x", "float32", [1, "seq"]);
    const seq = g.cast(g.gatherScalar(g.shapeOf(like), 1), "float32");
    const pos = g.range(g.floats([0]), seq, g.floats([1]), "seq");
    const args = g.mul(g.unsqueeze(pos, [1]), g.weight("inv", inv, [1, 16]));
    g.output(
      "signal",
      g.add(g.concat([g.sin(args), g.cos(args)], 1), g.unsqueeze(g.reshape(like, [-1], ["seq"]), [1])),
    );
    const T = 128;
    const feeds = () => ({ x: new ort.Tensor("float32", new Float32Array(T), [1, T]) });
    const half = (await run(toHalfPrecision(g).graph, feeds())).signal;
    let worst = 0;
    let argumentError = 0;
    for (let t = 0; t < T; t++)
      for (let i = 0; i < 16; i++) {
        const a = t * Math.fround(inv[i]);
        worst = Math.max(
          worst,
          Math.abs(half[t * 32 + i] - Math.sin(a)),
          Math.abs(half[t * 32 + 16 + i] - Math.cos(a)),
        );
        argumentError = Math.max(argumentError, Math.abs(Math.sin(roundToFloat16(a)) - Math.sin(a)));
      }
    // sin/cos in float32, then one float16 rounding of |values| ≤ 1 for the Add: ≤ u.
    expect(worst).toBeLessThanOrEqual(U * 1.0001);
    expect(argumentError).toBeGreaterThan(1e-2); // what float16 arguments would have cost
  });

  it("squares and the reductions over them stay float32 (|x| > 256 would overflow float16's x²)", async () => {
    const g = new Graph();
    const x = g.input("x", "float32", [2, 4]);
    const y = g.mul(x, g.floats([1])); // a float16 op first
    const norm = g.sqrt(g.reduceSum(g.mul(y, y), [1], true));
    g.output("unit", g.div(y, norm));
    const data = Float32Array.from([300, 400, 0, 0, 1000, -2000, 500, 100]);
    const half = (await run(toHalfPrecision(g).graph, { x: new ort.Tensor("float32", data.slice(), [2, 4]) })).unit;
    for (let r = 0; r < 2; r++) {
      const row = Array.from(data.subarray(r * 4, r * 4 + 4));
      const len = Math.hypot(...row);
      // 300² = 90,000 > 65,504: a float16 square would be ∞ and the result 0.
      row.forEach((v, i) => expect(Math.abs(half[r * 4 + i] - v / len)).toBeLessThanOrEqual(3 * U));
    }
  });

  it("refuses graphs it cannot convert", () => {
    expect(() => toHalfPrecision(new Graph("float64"))).toThrow(/must be float32/);
    const g = new Graph();
    const a: Value = g.input("a", "float32", [1, 2]);
    const q = g.int8Weight("q", new Int8Array(4), [2, 2]);
    g.output(
      "y",
      g.dynamicQuantizeMatMul(
        a,
        q,
        g.weight("s", [1, 1], [2]),
        g.int8Weight("z", new Int8Array(2), [2]),
        g.weight("b", [0, 0], [2]),
      ),
    );
    expect(() => toHalfPrecision(g)).toThrow(/com.microsoft op DynamicQuantizeMatMul cannot be converted/);
  });
});

describe("the fp16 USE-lite backbone on the CPU provider", () => {
  let assets: BackboneAssets;
  let fp32: BackboneRunner;
  let fp16: BackboneRunner;
  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    [fp32, fp16] = await Promise.all([
      BackboneRunner.create(MODELS_DIR, { threads: 1 }),
      BackboneRunner.create(MODELS_DIR, { threads: 1, precision: "fp16" }),
    ]);
  });
  afterAll(async () => {
    await fp32?.release();
    await fp16?.release();
  });

  it("stays within cosine 0.9999 of fp32 on 64 SST-2 dev sentences, per row, for all three outputs", async () => {
    const dev = readSst2("dev").slice(0, 64);
    const H = 512;
    const worst: Record<string, number> = {};
    for (let start = 0; start < dev.length; start += 32) {
      const rows = dev.slice(start, start + 32).map((e) => assets.tokenizer.encode(e.sentence, 128).ids);
      const make = () =>
        tokenBatch(assets.embeddings, assets.dims.embedDim, rows, [
          "last_hidden_state",
          "pooled",
          "sentence_embedding",
        ]);
      const [a, b] = [await fp32.run(make()), await fp16.run(make())];
      for (const name of ["pooled", "sentence_embedding"] as const)
        rows.forEach((_, r) => {
          const c = cosine(a[name]!.subarray(r * H, (r + 1) * H), b[name]!.subarray(r * H, (r + 1) * H));
          worst[name] = Math.min(worst[name] ?? 1, c);
        });
      const seq = a.last_hidden_state!.length / (rows.length * H);
      for (let p = 0; p < rows.length * seq; p++) {
        const c = cosine(
          a.last_hidden_state!.subarray(p * H, (p + 1) * H),
          b.last_hidden_state!.subarray(p * H, (p + 1) * H),
        );
        if (Number.isFinite(c)) worst.last_hidden_state = Math.min(worst.last_hidden_state ?? 1, c);
      }
    }
    // Measured (docs/webgpu.md "Precision"): worst 0.99999 or closer for each; 0.9999 leaves 10×.
    for (const name of ["last_hidden_state", "pooled", "sentence_embedding"]) {
      expect(worst[name], name).toBeGreaterThan(0.9999);
      expect(worst[name], `${name} is not the fp32 graph`).toBeLessThan(0.9999999);
    }
  });
});

describe("fp16 graphs of the Hugging Face families", () => {
  let modelsDir: string;
  beforeAll(async () => {
    modelsDir = await mkdtemp(path.join(os.tmpdir(), "skt-fp16-hf-"));
  });
  afterAll(async () => {
    await rm(modelsDir, { recursive: true, force: true });
  });

  // BERT: LayerNorm ε = 1e-12 (0 in float16), GELU; Llama: RoPE (sin/cos of position × frequency),
  // RMSNorm, a causal −1e9 bias, grouped-query attention.
  it.each(["bert-v", "llama-v"])(
    "%s: the fp16 build agrees with the float64 PyTorch oracle to cosine ≥ 0.99999 on all 30 texts",
    async (name) => {
      const folder = path.join(FIXTURES_DIR, name);
      const expected = JSON.parse(await readFile(path.join(folder, "expected.json"), "utf8")) as {
        ids: number[][];
        embeddings: number[][];
      };
      const assets = await loadBackboneAssets(modelsDir, undefined, folder, { variants: { fp16: true } });
      expect(assets.manifest.outputs["model-fp16.onnx"]).toBeDefined();
      const runner = await BackboneRunner.open(assets.dir, { threads: 1, precision: "fp16" });
      let worst = 1;
      try {
        for (const [i, ids] of expected.ids.entries()) {
          const out = await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, [ids], ["pooled"]));
          worst = Math.min(worst, cosine(out.pooled!, expected.embeddings[i]));
        }
      } finally {
        await runner.release();
      }
      // Measured: 0.9999998 (bert-v), 0.9999999 (llama-v); 1e-5 leaves 50× that distance from 1.
      expect(worst).toBeGreaterThan(0.99999);
    },
  );
});

describe("the engine with precision fp16 (CPU)", () => {
  it("its worker runs the fp16 graphs: scores move slightly, labels stay", async () => {
    const [a, b] = [await sst2PredictionsAt("fp32"), await sst2PredictionsAt("fp16")];
    const diffs = a.map((p, i) => Math.abs(p.scores!.positive - b[i].scores!.positive));
    // Measured: max 1.2e-3 (pooled moves by ≤ 1.4e-3 of its scale, bench:precision); 1e-2 is ~8×.
    // The closest of these scores is 0.07 from 0.5, so no label can move by that much.
    expect(Math.max(...diffs)).toBeGreaterThan(1e-6); // not the fp32 graph
    expect(Math.max(...diffs)).toBeLessThan(1e-2);
    expect(b.map((p) => p.label)).toEqual(a.map((p) => p.label));
  });
});
