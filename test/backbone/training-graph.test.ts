/**
 * The backbone's training graph: its gradients against finite differences of Σ(pooled ⊙ R) through
 * the float64 forward graph, zero gradient on padding, and its float32 `pooled` against serving.
 */
import path from "node:path";
import ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { backboneDir, BUILD_FILES } from "../../src/backbone/build.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { buildBackboneTrainingGraph, ensureTrainingGraphs } from "../../src/backbone/training-graph.js";
import { buildUseLiteNetwork } from "../../src/backbone/use-lite/network.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { createSession, finiteDifferences, relativeError, type Feeds } from "../helpers/finite-diff.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { MODELS_DIR } from "../helpers/paths.js";

let weights: UseLiteWeights;
const D = USE_LITE_DIMS.embedDim;
const H = USE_LITE_DIMS.hiddenDim;
const LAYERS = USE_LITE_DIMS.layers;

beforeAll(async () => {
  weights = mapUseLiteWeights((await readUseLitePackage()).weights);
});

type Float = Float32Array | Float64Array;

interface Problem {
  batch: number;
  seq: number;
  lengths: number[];
  /** Soft-prompt positions at the start of each row (random rows instead of token rows). */
  softPrompt: number;
  P: number;
  prefixLengths: number[];
  inputsEmbeds: Float64Array;
  attentionMask: BigInt64Array;
  prefixKeys: Float64Array[];
  prefixValues: Float64Array[];
  prefixMask: BigInt64Array;
  gradPooled: Float64Array;
}

function makeProblem(seed: number, lengths: number[], prefixLengths: number[], P: number, ids: number[]): Problem {
  const rand = seededRandom(seed);
  const uniform = (scale: number) => (rand() * 2 - 1) * scale;
  const batch = lengths.length;
  const seq = Math.max(...lengths);
  const softPrompt = 2;
  const inputsEmbeds = new Float64Array(batch * seq * D);
  const attentionMask = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      const at = (b * seq + t) * D;
      if (t >= softPrompt && t < lengths[b]) inputsEmbeds.set(weights.embeddings.subarray(ids[t] * D, (ids[t] + 1) * D), at);
      else for (let i = 0; i < D; i++) inputsEmbeds[at + i] = uniform(0.1); // soft prompt, and garbage in padding
      if (t < lengths[b]) attentionMask[b * seq + t] = 1n;
    }
  }
  const prefix = (l: (typeof LAYERS)[number]) => Float64Array.from({ length: batch * l.heads * P * l.headDim }, () => uniform(1));
  const prefixMask = new BigInt64Array(batch * P);
  prefixLengths.forEach((n, b) => prefixMask.fill(1n, b * P, b * P + n));
  return {
    batch, seq, lengths, softPrompt, P, prefixLengths, inputsEmbeds, attentionMask,
    prefixKeys: LAYERS.map(prefix), prefixValues: LAYERS.map(prefix), prefixMask,
    gradPooled: Float64Array.from({ length: batch * H }, () => uniform(1)),
  };
}

function feedsOf(p: Problem, withPrefix: boolean, float: "float32" | "float64"): Feeds {
  const t = (data: Float64Array, dims: number[]) => new ort.Tensor(float, float === "float64" ? data : Float32Array.from(data), dims);
  const feeds: Feeds = {
    inputs_embeds: t(p.inputsEmbeds, [p.batch, p.seq, D]),
    attention_mask: new ort.Tensor("int64", p.attentionMask, [p.batch, p.seq]),
  };
  if (withPrefix) {
    LAYERS.forEach((l, n) => {
      feeds[`prefix_key_${n}`] = t(p.prefixKeys[n], [p.batch, l.heads, p.P, l.headDim]);
      feeds[`prefix_value_${n}`] = t(p.prefixValues[n], [p.batch, l.heads, p.P, l.headDim]);
    });
    feeds.prefix_mask = new ort.Tensor("int64", p.prefixMask, [p.batch, p.P]);
  }
  return feeds;
}

/** ~40 indices: every position of every row (soft prompt, tokens, padding) × a few features. */
function embedsSample(p: Problem, rand: () => number): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < p.batch * p.seq; pos++) for (let k = 0; k < 4; k++) out.push(pos * D + Math.floor(rand() * D));
  return out;
}

/** ~40 indices of a [batch, heads, P, headDim] prefix, covering every (row, prefix position). */
function prefixSample(p: Problem, heads: number, headDim: number, rand: () => number): number[] {
  const out: number[] = [];
  for (let b = 0; b < p.batch; b++) for (let j = 0; j < p.P; j++) for (let k = 0; k < 10; k++) {
    out.push(((b * heads + Math.floor(rand() * heads)) * p.P + j) * headDim + Math.floor(rand() * headDim));
  }
  return out;
}

describe("backbone training graph vs finite differences (float64)", () => {
  for (const prefix of [false, true]) {
    it(`${prefix ? "prefix" : "plain"} variant: gradients of Σ(pooled ⊙ R), zero on padding`, async () => {
      const ids = [0, 0, 17, 251, 1203]; // positions ≥ 2 read token rows
      const p = makeProblem(prefix ? 2 : 1, [3, 5], [2, 1], 2, ids);
      const train = await createSession(buildBackboneTrainingGraph(weights, { float: "float64", prefix }));
      const forward = await createSession(buildUseLiteNetwork(weights, { float: "float64", prefix }).graph);
      try {
        const feeds = feedsOf(p, prefix, "float64");
        const out = await train.run({ ...feeds, grad_pooled: new ort.Tensor("float64", p.gradPooled, [p.batch, H]) });
        const terms = [{ output: "pooled", weights: p.gradPooled }];
        const rand = seededRandom(99);

        const checks: { input: string; indices: number[] }[] = [{ input: "inputs_embeds", indices: embedsSample(p, rand) }];
        if (prefix) LAYERS.forEach((l, n) => {
          checks.push({ input: `prefix_key_${n}`, indices: prefixSample(p, l.heads, l.headDim, rand) });
          checks.push({ input: `prefix_value_${n}`, indices: prefixSample(p, l.heads, l.headDim, rand) });
        });
        for (const { input, indices } of checks) {
          const grad = out[`grad_${input}`];
          expect(grad.dims, input).toEqual(feeds[input].dims);
          const analytic = indices.map((i) => (grad.data as Float64Array)[i]);
          const numeric = await finiteDifferences(forward, feeds, terms, input, indices);
          expect(relativeError(analytic, numeric), input).toBeLessThanOrEqual(1e-4);
          expect(analytic.some((v) => v !== 0), `${input} has a nonzero gradient`).toBe(true);
        }

        // Padded text positions and padded prefix positions: exactly zero.
        const ge = out.grad_inputs_embeds.data as Float64Array;
        for (let b = 0; b < p.batch; b++) for (let t = p.lengths[b]; t < p.seq; t++) {
          expect(ge.subarray((b * p.seq + t) * D, (b * p.seq + t + 1) * D).every((v) => v === 0)).toBe(true);
        }
        if (prefix) LAYERS.forEach((l, n) => {
          for (const name of [`grad_prefix_key_${n}`, `grad_prefix_value_${n}`]) {
            const gp = out[name].data as Float64Array;
            for (let b = 0; b < p.batch; b++) for (let h = 0; h < l.heads; h++) for (let j = p.prefixLengths[b]; j < p.P; j++) {
              const at = ((b * l.heads + h) * p.P + j) * l.headDim;
              expect(gp.subarray(at, at + l.headDim).every((v) => v === 0), name).toBe(true);
            }
          }
        });
      } finally {
        await Promise.all([train.release(), forward.release()]);
      }
    });
  }

  it("an empty prefix (P = 0) gives the plain graph's gradients", async () => {
    const p = makeProblem(4, [3, 5], [0, 0], 0, [0, 0, 17, 251, 1203]);
    const gradPooled = new ort.Tensor("float64", p.gradPooled, [p.batch, H]);
    const results = [];
    for (const prefix of [false, true]) {
      const session = await createSession(buildBackboneTrainingGraph(weights, { float: "float64", prefix }));
      results.push(await session.run({ ...feedsOf(p, prefix, "float64"), grad_pooled: gradPooled }));
      await session.release();
    }
    const [plain, empty] = results;
    expect(maxAbsDiff(empty.grad_inputs_embeds.data as Float64Array, plain.grad_inputs_embeds.data as Float64Array)).toBeLessThanOrEqual(1e-12);
    expect(empty.grad_prefix_key_1.dims).toEqual([p.batch, LAYERS[1].heads, 0, LAYERS[1].headDim]);
  });

  it("spends no work on weight gradients or on the sentence_embedding head", () => {
    const g = buildBackboneTrainingGraph(weights, { prefix: true });
    expect(g.outputs.map((o) => o.name)).toEqual(["pooled", "grad_inputs_embeds", "grad_prefix_key_0", "grad_prefix_value_0", "grad_prefix_key_1", "grad_prefix_value_1"]);
    expect(g.initializers.some((i) => i.value.name.startsWith("tanh_layer"))).toBe(false);
    // Forward: 7 MatMuls in layer 0 (qkv, scores, context, out, residual, ffn in/out), 6 in layer 1.
    // Backward: one per weight MatMul (the input side only), two per attention MatMul.
    expect(g.ops.filter((op) => op.type === "MatMul")).toHaveLength(13 + 9 + 8);
  });
});

describe("float32 training graph", () => {
  it("its pooled equals the serving graph's pooled", async () => {
    const paths = await ensureTrainingGraphs(MODELS_DIR);
    const dir = backboneDir(MODELS_DIR);
    const ids = [5, 9, 17, 251, 1203, 42, 77];
    const p = makeProblem(3, [4, 7], [3, 1], 3, ids);
    // "basic" keeps the graphs op for op: same math, same kernels, identical pooled. At "all"
    // onnxruntime folds the query scale into the scores MatMul (FusedMatMul alpha) in the serving
    // graph but cannot in the training graph, whose backward pass reads the scaled queries; layer
    // 1's scale 1/√128 is not a power of two, so the two differ by float32 rounding (~3e-6 relative).
    for (const level of ["basic", "all"] as const) {
      for (const prefix of [false, true]) {
        const options = { intraOpNumThreads: 2, graphOptimizationLevel: level };
        const train = await ort.InferenceSession.create(prefix ? paths.prefixModel : paths.model, options);
        const serving = await ort.InferenceSession.create(path.join(dir, prefix ? BUILD_FILES.prefixModel : BUILD_FILES.model), options);
        const feeds = feedsOf(p, prefix, "float32");
        const got = (await train.run({ ...feeds, grad_pooled: new ort.Tensor("float32", Float32Array.from(p.gradPooled), [p.batch, H]) })).pooled.data as Float;
        const want = (await serving.run(feeds, ["pooled"])).pooled.data as Float;
        if (level === "basic") expect(maxAbsDiff(got, want), `${level} ${prefix ? "prefix" : "plain"}`).toBeLessThanOrEqual(1e-6);
        else expect(maxAbsDiff(got, want) / Math.max(...Array.from(want, Math.abs)), `${level} ${prefix ? "prefix" : "plain"}`).toBeLessThanOrEqual(1e-5);
        await Promise.all([train.release(), serving.release()]);
      }
    }
  });
});
