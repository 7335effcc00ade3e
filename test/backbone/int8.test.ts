/**
 * SKT_PRECISION=int8: the weight quantizer against its definition, one DynamicQuantizeMatMul run by
 * onnxruntime against a naive int8 reference, the whole int8 backbone against the fp32 one on SST-2
 * dev sentences, and the shipped sst2 adapter's predictions through both.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeAdapter } from "../../src/adapters/format.js";
import { applyHead, prepareAdapter, type PreparedAdapter } from "../../src/adapters/prepared.js";
import { BackboneRunner, loadBackboneAssets, tokenBatch, type BackboneAssets } from "../../src/backbone/backbone.js";
import { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { INT8_WEIGHT_MAX, quantizePerColumn } from "../../src/backbone/graph/quantize.js";
import { assembleBatch } from "../../src/engine/assemble.js";
import { SktError } from "../../src/errors.js";
import { cosine, seededRandom } from "../helpers/numeric.js";
import { sst2PredictionsAt } from "../helpers/precision.js";
import { MODELS_DIR, REPO_ROOT } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

describe("quantizePerColumn", () => {
  it("rounds each weight to the nearest multiple of its column's scale, |q| ≤ 63, max |q| = 63", () => {
    const rand = seededRandom(3);
    const rows = 37;
    const cols = 11;
    const w = Float32Array.from({ length: rows * cols }, () => (rand() * 2 - 1) * 0.3);
    for (let r = 0; r < rows; r++) w[r * cols + 4] = 0; // an all-zero column
    const { q, scale } = quantizePerColumn(w, rows, cols);
    expect(scale[4]).toBe(1);
    for (let c = 0; c < cols; c++) {
      let maxAbs = 0;
      let maxQ = 0;
      for (let r = 0; r < rows; r++) {
        const x = w[r * cols + c];
        maxAbs = Math.max(maxAbs, Math.abs(x));
        maxQ = Math.max(maxQ, Math.abs(q[r * cols + c]));
        expect(Math.abs(q[r * cols + c])).toBeLessThanOrEqual(INT8_WEIGHT_MAX);
        // Nearest multiple: the reconstruction is within half a step.
        expect(Math.abs(x - q[r * cols + c] * scale[c])).toBeLessThanOrEqual(scale[c] / 2 + 1e-7);
      }
      if (c === 4) expect(maxQ).toBe(0);
      else {
        expect(scale[c]).toBeCloseTo(maxAbs / INT8_WEIGHT_MAX, 7);
        expect(maxQ).toBe(INT8_WEIGHT_MAX);
      }
    }
  });

  it("refuses a matrix whose size does not match its shape", () => {
    expect(() => quantizePerColumn(new Float32Array(5), 2, 3)).toThrow(/5 values, \[2, 3\] needs 6/);
  });
});

/** ONNX DynamicQuantizeLinear rounds half to even. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The naive int8 reference of one DynamicQuantizeMatMul: the activations quantized per tensor to
 * uint8 as ONNX DynamicQuantizeLinear defines it, an integer dot product with the int8 weights,
 * then the two scales and the bias.
 */
function naiveQuantizedMatMul(
  a: Float32Array,
  m: number,
  k: number,
  q: Int8Array,
  scale: Float32Array,
  bias: Float32Array,
): Float64Array {
  const n = scale.length;
  const lo = Math.min(0, ...a);
  const hi = Math.max(0, ...a);
  const aScale = Math.fround((hi - lo) / 255);
  const zero = Math.max(0, Math.min(255, roundHalfEven(-lo / aScale)));
  const qa = Array.from(a, (x) => Math.max(0, Math.min(255, roundHalfEven(x / aScale) + zero)));
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let t = 0; t < k; t++) acc += (qa[i * k + t] - zero) * q[t * n + j];
      y[i * n + j] = acc * aScale * scale[j] + bias[j];
    }
  return y;
}

describe("DynamicQuantizeMatMul in onnxruntime", () => {
  it("computes what the naive int8 reference computes, not the fp32 product", async () => {
    const rand = seededRandom(11);
    const [m, k, n] = [9, 64, 24];
    const w = Float32Array.from({ length: k * n }, () => (rand() * 2 - 1) * 0.2);
    const bias = Float32Array.from({ length: n }, () => rand() - 0.5);
    const a = Float32Array.from({ length: m * k }, () => rand() * 4 - 1.5);
    const { q, scale } = quantizePerColumn(w, k, n);

    const g = new Graph();
    const x = g.input("x", "float32", ["m", k]);
    const y = g.dynamicQuantizeMatMul(
      x,
      g.int8Weight("w_q", q, [k, n]),
      g.weight("w_scale", scale, [n]),
      g.int8Weight("w_zero", new Int8Array(n), [n]),
      g.weight("bias", bias, [n]),
    );
    g.output("y", y);
    const session = await ort.InferenceSession.create(toOnnxBytes(g), { intraOpNumThreads: 1 });
    const got = (await session.run({ x: new ort.Tensor("float32", a, [m, k]) })).y.data as Float32Array;
    await session.release();

    const int8 = naiveQuantizedMatMul(a, m, k, q, scale, bias);
    const fp32 = new Float64Array(m * n);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = bias[j];
        for (let t = 0; t < k; t++) s += a[i * k + t] * w[t * n + j];
        fp32[i * n + j] = s;
      }
    let vsInt8 = 0;
    let vsFp32 = 0;
    for (let i = 0; i < m * n; i++) {
      vsInt8 = Math.max(vsInt8, Math.abs(got[i] - int8[i]));
      vsFp32 = Math.max(vsFp32, Math.abs(got[i] - fp32[i]));
    }
    // Float rounding of the final scaling only (|y| ≲ 5 here).
    expect(vsInt8).toBeLessThan(1e-4);
    // The quantization error is real and 1000× larger, so the check above cannot pass by accident.
    expect(vsFp32).toBeGreaterThan(1000 * vsInt8);
    expect(vsFp32).toBeGreaterThan(1e-3);
  });
});

describe("a build without int8 graphs", () => {
  it("is refused with the reason before any session opens (Hugging Face backbones have none)", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "skt-int8-"));
    try {
      // Only the manifest: had the runner tried to open a graph, the error would be a missing file.
      const manifest = { backbone: "bert-tiny", dims: {}, outputs: { "model.onnx": { sha256: "", bytes: 1 } } };
      await writeFile(path.join(dir, "manifest.json"), JSON.stringify(manifest));
      const e = await BackboneRunner.open(dir, { threads: 1, precision: "int8" }).then(
        () => null,
        (x: unknown) => x as SktError,
      );
      expect(e).toBeInstanceOf(SktError);
      expect(e!.code).toBe("precision_unsupported");
      expect(e!.message).toMatch(/embedded USE-lite only; the backbone "bert-tiny" has none/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("the int8 backbone", () => {
  let assets: BackboneAssets;
  let fp32: BackboneRunner;
  let int8: BackboneRunner;
  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    [fp32, int8] = await Promise.all([
      BackboneRunner.create(MODELS_DIR, { threads: 2 }),
      BackboneRunner.create(MODELS_DIR, { threads: 2, precision: "int8" }),
    ]);
  });
  afterAll(async () => {
    await fp32?.release();
    await int8?.release();
  });

  const H = 512;
  const dev = readSst2("dev").slice(0, 192);

  it("pooled output stays within cosine 0.99 of fp32 on 192 dev sentences (median ≥ 0.995)", async () => {
    const cosines: number[] = [];
    for (let start = 0; start < dev.length; start += 32) {
      const rows = dev.slice(start, start + 32).map((e) => assets.tokenizer.encode(e.sentence, 128).ids);
      const batch = tokenBatch(assets.embeddings, assets.dims.embedDim, rows, ["pooled"]);
      const [a, b] = [(await fp32.run(batch)).pooled!, (await int8.run(batch)).pooled!];
      rows.forEach((_, r) => cosines.push(cosine(a.subarray(r * H, (r + 1) * H), b.subarray(r * H, (r + 1) * H))));
    }
    cosines.sort((x, y) => x - y);
    // Measured on these sentences (AVX2): min 0.9946, median 0.9971 — the bounds leave about half
    // the distance to 1 again as headroom for other CPUs' kernels (docs/benchmarks.md "int8").
    expect(cosines[0]).toBeGreaterThan(0.99);
    expect(cosines[Math.floor(cosines.length / 2)]).toBeGreaterThan(0.995);
    // And it is not the fp32 graph under another name.
    expect(cosines[cosines.length - 1]).toBeLessThan(0.999999);
  });

  it("the shipped sst2 adapter (fp32, prefix) predicts the same label through both on ≥ 97 % of 192 dev sentences", async () => {
    const bytes = new Uint8Array(readFileSync(path.join(REPO_ROOT, "adapters/sst2/v000002.safetensors")));
    const file = decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint });
    const prepare = async (runner: BackboneRunner): Promise<PreparedAdapter> => {
      const ids = assets.tokenizer.ids(file.metadata.promptText);
      const out = await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, [ids], ["last_hidden_state"]));
      return prepareAdapter(file, 2, out.last_hidden_state!, assets.dims);
    };
    // Each precision prepares the adapter with its own semantic pass, as a server running it would.
    const labels = async (runner: BackboneRunner): Promise<string[]> => {
      const adapter = await prepare(runner);
      const out: string[] = [];
      for (let start = 0; start < dev.length; start += 32) {
        const rows = dev
          .slice(start, start + 32)
          .map((e) => ({ adapter, ids: assets.tokenizer.encode(e.sentence, adapter.textBudget).ids }));
        const pooled = (await runner.run(assembleBatch(rows, assets.embeddings, assets.dims).batch)).pooled!;
        rows.forEach((_, r) => out.push(applyHead(adapter, pooled.subarray(r * H, (r + 1) * H)).label!));
      }
      return out;
    };
    const [a, b] = [await labels(fp32), await labels(int8)];
    const agree = a.filter((l, i) => l === b[i]).length / a.length;
    expect(agree).toBeGreaterThanOrEqual(0.97);
    // Both are real classifiers on this slice (SST-2 labels: 0 negative, 1 positive).
    const gold = dev.map((e) => (e.label === 1 ? "positive" : "negative"));
    for (const pred of [a, b]) expect(pred.filter((l, i) => l === gold[i]).length / gold.length).toBeGreaterThan(0.75);
  });
});

describe("the engine with precision int8", () => {
  it("its worker runs the int8 graphs: scores move slightly, labels stay", async () => {
    const [a, b] = [await sst2PredictionsAt("fp32"), await sst2PredictionsAt("int8")];
    const diffs = a.map((p, i) => Math.abs(p.scores!.positive - b[i].scores!.positive));
    expect(Math.max(...diffs)).toBeGreaterThan(1e-4); // not the fp32 graph
    expect(Math.max(...diffs)).toBeLessThan(0.2);
    expect(a.filter((p, i) => p.label === b[i].label).length).toBeGreaterThanOrEqual(15);
  });
});
