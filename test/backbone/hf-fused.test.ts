/**
 * The serving graphs with onnxruntime's fused operators (SKT_FUSED_OPS=true) against the
 * plain graphs the same networks give (which the naive oracle and the float64 fixtures pin, see
 * hf-generated and hf-fixtures): every family, both GELU forms, with and without the key/value
 * prefix, padded rows, token types. And the fused and plain builds live in separate folders with
 * the same fingerprint (what adapters bind to).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { ensureHfBackboneBuilt, hfDims } from "../../src/backbone/hf/build.js";
import { buildHfNetwork } from "../../src/backbone/hf/build-graph.js";
import { readFamilyWeights, readHfFolder } from "../../src/backbone/hf/folder.js";
import {
  writeDecoderCheckpoint,
  writeEncoderCheckpoint,
  type DecoderSpec,
  type EncoderSpec,
} from "../helpers/hf-checkpoint.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "skt-hf-fused-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const ENCODER_OPS = ["LayerNormalization", "com.microsoft.SkipLayerNormalization"];
const DECODER_OPS = ["SimplifiedLayerNormalization", "com.microsoft.SkipSimplifiedLayerNormalization"];

const CASES: [string, (dir: string) => Promise<unknown>, string[]][] = [
  [
    "bert, erf GELU",
    (dir) => writeEncoderCheckpoint(dir, { modelType: "bert", act: "gelu" } satisfies EncoderSpec, 61),
    [...ENCODER_OPS, "com.microsoft.BiasGelu"],
  ],
  [
    "roberta, gelu_new",
    (dir) => writeEncoderCheckpoint(dir, { modelType: "roberta", act: "gelu_new", padTokenId: 1 }, 62),
    [...ENCODER_OPS, "com.microsoft.FastGelu"],
  ],
  [
    "distilbert, gelu_pytorch_tanh, no token types",
    (dir) => writeEncoderCheckpoint(dir, { modelType: "distilbert", act: "gelu_pytorch_tanh", heads: 4 }, 63),
    [...ENCODER_OPS, "com.microsoft.FastGelu"],
  ],
  [
    "llama, GQA 8:2",
    (dir) =>
      writeDecoderCheckpoint(dir, { modelType: "llama", hidden: 32, heads: 8, kvHeads: 2 } satisfies DecoderSpec, 64),
    DECODER_OPS,
  ],
  [
    "qwen2, q/k/v biases, GQA 4:1",
    (dir) => writeDecoderCheckpoint(dir, { modelType: "qwen2", heads: 4, kvHeads: 1 }, 65),
    DECODER_OPS,
  ],
  [
    "mistral, GQA 2:1",
    (dir) => writeDecoderCheckpoint(dir, { modelType: "mistral", heads: 4, kvHeads: 2 }, 66),
    DECODER_OPS,
  ],
];

describe.each(CASES)("fused serving graph of %s", (name, make, fusedOps) => {
  it.each([false, true])("equals the plain graph to 1e-5 (prefix graph: %s)", async (prefix) => {
    const dir = path.join(root, name.split(",")[0]);
    await make(dir);
    const folder = await readHfFolder(dir);
    const weights = readFamilyWeights(folder);
    const dims = hfDims(folder.config);
    const graphs = {
      plain: buildHfNetwork(weights, { prefix }).graph,
      fused: buildHfNetwork(weights, { prefix, fused: true }).graph,
    };
    const opTypes = (fused: boolean) =>
      new Set(graphs[fused ? "fused" : "plain"].ops.map((op) => (op.domain ? `${op.domain}.${op.type}` : op.type)));
    for (const op of fusedOps) {
      expect(opTypes(true)).toContain(op);
      expect(opTypes(false)).not.toContain(op);
    }

    const rand = seededRandom(prefix ? 71 : 72);
    const r = (n: number) => Float32Array.from({ length: n }, () => rand() * 2 - 1);
    const B = 3;
    const T = 7;
    const P = 4;
    const D = dims.embedDim;
    const lengths = [7, 4, 1];
    const mask = new BigInt64Array(B * T);
    lengths.forEach((n, b) => mask.fill(1n, b * T, b * T + n));
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor("float32", r(B * T * D), [B, T, D]),
      attention_mask: new ort.Tensor("int64", mask, [B, T]),
    };
    if (graphs.plain.inputs.some((i) => i.name === "token_type_ids"))
      feeds.token_type_ids = new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: B * T }, (_, i) => BigInt(i % T >= 3 ? 1 : 0)),
        [B, T],
      );
    if (prefix) {
      dims.layers.forEach((l, n) => {
        feeds[`prefix_key_${n}`] = new ort.Tensor("float32", r(B * l.heads * P * l.headDim), [
          B,
          l.heads,
          P,
          l.headDim,
        ]);
        feeds[`prefix_value_${n}`] = new ort.Tensor("float32", r(B * l.heads * P * l.headDim), [
          B,
          l.heads,
          P,
          l.headDim,
        ]);
      });
      // Rows with prefixes of 4, 2 and 0 real slots.
      feeds.prefix_mask = new ort.Tensor(
        "int64",
        BigInt64Array.from([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0].map(BigInt)),
        [B, P],
      );
    }
    const run = async (fused: boolean) => {
      const session = await ort.InferenceSession.create(toOnnxBytes(graphs[fused ? "fused" : "plain"]), {
        intraOpNumThreads: 1,
        graphOptimizationLevel: "all",
      });
      const out = await session.run(feeds);
      await session.release();
      return out;
    };
    const [plain, fused] = [await run(false), await run(true)];
    for (const output of ["last_hidden_state", "pooled"]) {
      const a = plain[output].data as Float32Array;
      const b = fused[output].data as Float32Array;
      expect(b.length).toBe(a.length);
      expect(maxAbsDiff(Array.from(a), Array.from(b))).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe("the build records its graphs", () => {
  it("keeps fused and plain builds apart, with the same fingerprint", async () => {
    const dir = path.join(root, "build-bert");
    await writeEncoderCheckpoint(dir, { modelType: "bert" }, 81);
    const modelsDir = path.join(root, "models");
    const plain = await ensureHfBackboneBuilt(modelsDir, dir); // the default: plain graphs
    expect(plain.manifest.fusedOps).toBe(false);
    const fused = await ensureHfBackboneBuilt(modelsDir, dir, undefined, { fusedOps: true });
    expect(fused.manifest.fusedOps).toBe(true);
    expect(plain.manifest.fingerprint).toBe(fused.manifest.fingerprint);
    expect(plain.manifest.outputs["model.onnx"].sha256).not.toBe(fused.manifest.outputs["model.onnx"].sha256);
    expect(fused.dir).not.toBe(plain.dir);
    // Both builds are kept: switching back loads the existing one.
    const again = await ensureHfBackboneBuilt(modelsDir, dir);
    expect(again.dir).toBe(plain.dir);
    expect(again.manifest.builtAt).toBe(plain.manifest.builtAt);
  });
});
