/**
 * The trainer's classifier training graph (backbone + head + loss + reverse pass): its gradients
 * against float64 finite differences of its own `loss` output, for every problem type, the plain
 * and the prefix variant; exactly zero gradient on padding; P = 0 ≡ plain; no work on frozen
 * weights; its float32 logits against the serving graph's pooled × the head; its loss against an
 * independent computation from its logits.
 */
import path from "node:path";
import ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import type { ProblemType } from "../../src/adapters/spec.js";
import { backboneDir, BUILD_FILES } from "../../src/backbone/build.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { pruneToOutputs } from "../../src/backbone/graph/autodiff.js";
import type { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { buildClassifierTrainingGraph } from "../../src/train/train-graph.js";
import { createSession, finiteDifferences, relativeError, type Feeds } from "../helpers/finite-diff.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

let weights: UseLiteWeights;
const D = USE_LITE_DIMS.embedDim;
const H = USE_LITE_DIMS.hiddenDim;
const LAYERS = USE_LITE_DIMS.layers;

beforeAll(async () => {
  weights = mapUseLiteWeights((await readUseLitePackage()).weights);
});

type Float = Float32Array | Float64Array;

const PROBLEMS: { problemType: ProblemType; C: number }[] = [
  { problemType: "single_label_classification", C: 3 },
  { problemType: "multi_label_classification", C: 3 },
  { problemType: "regression", C: 1 },
];

interface Problem {
  problemType: ProblemType;
  C: number;
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
  headWeight: Float64Array;
  headBias: Float64Array;
  targets: Float64Array;
  pooledDropout: Float64Array;
}

function makeProblem(
  seed: number,
  kind: { problemType: ProblemType; C: number },
  lengths: number[],
  prefixLengths: number[],
  P: number,
  ids: number[],
): Problem {
  const rand = seededRandom(seed);
  const uniform = (scale: number) => (rand() * 2 - 1) * scale;
  const { problemType, C } = kind;
  const batch = lengths.length;
  const seq = Math.max(...lengths);
  const softPrompt = 2;
  const inputsEmbeds = new Float64Array(batch * seq * D);
  const attentionMask = new BigInt64Array(batch * seq);
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      const at = (b * seq + t) * D;
      if (t >= softPrompt && t < lengths[b])
        inputsEmbeds.set(weights.embeddings.subarray(ids[t] * D, (ids[t] + 1) * D), at);
      else for (let i = 0; i < D; i++) inputsEmbeds[at + i] = uniform(0.1); // soft prompt, and garbage in padding
      if (t < lengths[b]) attentionMask[b * seq + t] = 1n;
    }
  }
  const prefix = (l: (typeof LAYERS)[number]) =>
    Float64Array.from({ length: batch * l.heads * P * l.headDim }, () => uniform(1));
  const prefixMask = new BigInt64Array(batch * P);
  prefixLengths.forEach((n, b) => prefixMask.fill(1n, b * P, b * P + n));
  const targets = new Float64Array(batch * C);
  for (let b = 0; b < batch; b++) {
    if (problemType === "single_label_classification") targets[b * C + ((b + seed) % C)] = 1;
    else if (problemType === "multi_label_classification")
      for (let c = 0; c < C; c++) targets[b * C + c] = (b + c + seed) % 2; // mixed 0/1 per row
    else targets[b] = uniform(1);
  }
  return {
    problemType,
    C,
    batch,
    seq,
    lengths,
    softPrompt,
    P,
    prefixLengths,
    inputsEmbeds,
    attentionMask,
    prefixKeys: LAYERS.map(prefix),
    prefixValues: LAYERS.map(prefix),
    prefixMask,
    headWeight: Float64Array.from({ length: C * H }, () => uniform(0.1)),
    headBias: Float64Array.from({ length: C }, () => uniform(0.1)),
    targets,
    // Dropout on the pooled state as the trainer draws it: p = 0.1, kept entries scaled by 1/0.9.
    pooledDropout: Float64Array.from({ length: batch * H }, () => (rand() < 0.1 ? 0 : 1 / 0.9)),
  };
}

function feedsOf(p: Problem, withPrefix: boolean, float: "float32" | "float64"): Feeds {
  const t = (data: Float64Array, dims: number[]) =>
    new ort.Tensor(float, float === "float64" ? data : Float32Array.from(data), dims);
  const feeds: Feeds = {
    inputs_embeds: t(p.inputsEmbeds, [p.batch, p.seq, D]),
    attention_mask: new ort.Tensor("int64", p.attentionMask, [p.batch, p.seq]),
    head_weight: t(p.headWeight, [p.C, H]),
    head_bias: t(p.headBias, [p.C]),
    targets: t(p.targets, [p.batch, p.C]),
    pooled_dropout: t(p.pooledDropout, [p.batch, H]),
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

/** The same graph cut down to its forward `loss`: what the finite differences evaluate. */
function lossOnly(g: Graph): Graph {
  const loss = g.outputs.find((o) => o.name === "loss")!;
  g.outputs.length = 0;
  g.outputs.push(loss);
  pruneToOutputs(g);
  return g;
}

/** The mean loss written out by hand from the logits (float64), independently of the graph. */
function referenceLoss(
  problemType: ProblemType,
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  batch: number,
  C: number,
): number {
  let total = 0;
  for (let b = 0; b < batch; b++) {
    const z = Array.from({ length: C }, (_, c) => logits[b * C + c]);
    const t = Array.from({ length: C }, (_, c) => targets[b * C + c]);
    if (problemType === "single_label_classification") {
      const m = Math.max(...z);
      const logSumExp = m + Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0));
      total += z.reduce((s, v, c) => s - t[c] * (v - logSumExp), 0);
    } else if (problemType === "multi_label_classification") {
      // −[t·log σ(z) + (1−t)·log(1−σ(z))] = softplus(z) − t·z, averaged over all B·C elements.
      for (let c = 0; c < C; c++)
        total += (Math.max(z[c], 0) + Math.log1p(Math.exp(-Math.abs(z[c])))) / C - (t[c] * z[c]) / C;
    } else {
      for (let c = 0; c < C; c++) total += (z[c] - t[c]) ** 2;
    }
  }
  return total / batch;
}

/** ~40 indices: every position of every row (soft prompt, tokens, padding) × a few features. */
function embedsSample(p: Problem, rand: () => number): number[] {
  const out: number[] = [];
  for (let pos = 0; pos < p.batch * p.seq; pos++)
    for (let k = 0; k < 4; k++) out.push(pos * D + Math.floor(rand() * D));
  return out;
}

/** ~40 indices of a [batch, heads, P, headDim] prefix, covering every (row, prefix position). */
function prefixSample(p: Problem, heads: number, headDim: number, rand: () => number): number[] {
  const out: number[] = [];
  for (let b = 0; b < p.batch; b++)
    for (let j = 0; j < p.P; j++)
      for (let k = 0; k < 10; k++) {
        out.push(((b * heads + Math.floor(rand() * heads)) * p.P + j) * headDim + Math.floor(rand() * headDim));
      }
  return out;
}

describe("classifier training graph vs finite differences of its loss (float64)", () => {
  for (const kind of PROBLEMS)
    for (const prefix of [false, true]) {
      it(`${kind.problemType}, ${prefix ? "prefix" : "plain"} variant: gradients of loss, zero on padding, loss from logits`, async () => {
        const ids = [0, 0, 17, 251, 1203]; // positions ≥ 2 read token rows
        const p = makeProblem(prefix ? 2 : 1, kind, [3, 5], [2, 1], 2, ids);
        const opts = {
          prefix,
          problemType: kind.problemType,
          outputs: kind.C,
          embedsGrad: true,
          float: "float64",
        } as const;
        const train = await createSession(buildClassifierTrainingGraph(weights, opts));
        const forward = await createSession(lossOnly(buildClassifierTrainingGraph(weights, opts)));
        try {
          const feeds = feedsOf(p, prefix, "float64");
          const out = await train.run(feeds);
          const terms = [{ output: "loss", weights: [1] }];
          const rand = seededRandom(99);

          // The loss output against the loss written out by hand from the logits output.
          expect(out.loss.dims).toEqual([]);
          expect(out.logits.dims).toEqual([p.batch, p.C]);
          const loss = (out.loss.data as Float64Array)[0];
          expect(
            Math.abs(loss - referenceLoss(kind.problemType, out.logits.data as Float64Array, p.targets, p.batch, p.C)),
          ).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(loss)));

          const checks: { input: string; indices: number[] }[] = [
            { input: "inputs_embeds", indices: embedsSample(p, rand) },
            { input: "head_weight", indices: Array.from({ length: 30 }, () => Math.floor(rand() * p.C * H)) },
            { input: "head_bias", indices: [...Array(p.C).keys()] },
          ];
          if (prefix)
            LAYERS.forEach((l, n) => {
              checks.push({ input: `prefix_key_${n}`, indices: prefixSample(p, l.heads, l.headDim, rand) });
              checks.push({ input: `prefix_value_${n}`, indices: prefixSample(p, l.heads, l.headDim, rand) });
            });
          for (const { input, indices } of checks) {
            const grad = out[`grad_${input}`];
            expect(grad.dims, input).toEqual(feeds[input].dims);
            const analytic = indices.map((i) => (grad.data as Float64Array)[i]);
            const numeric = await finiteDifferences(forward, feeds, terms, input, indices);
            const err = relativeError(analytic, numeric);
            console.log(
              `${kind.problemType} ${prefix ? "prefix" : "plain"} ${input}: relative error ${err.toExponential(2)}`,
            );
            expect(err, input).toBeLessThanOrEqual(1e-4);
            expect(
              analytic.some((v) => v !== 0),
              `${input} has a nonzero gradient`,
            ).toBe(true);
          }

          // Padded text positions and padded prefix positions: exactly zero.
          const ge = out.grad_inputs_embeds.data as Float64Array;
          for (let b = 0; b < p.batch; b++)
            for (let t = p.lengths[b]; t < p.seq; t++) {
              expect(ge.subarray((b * p.seq + t) * D, (b * p.seq + t + 1) * D).every((v) => v === 0)).toBe(true);
            }
          if (prefix)
            LAYERS.forEach((l, n) => {
              for (const name of [`grad_prefix_key_${n}`, `grad_prefix_value_${n}`]) {
                const gp = out[name].data as Float64Array;
                for (let b = 0; b < p.batch; b++)
                  for (let h = 0; h < l.heads; h++)
                    for (let j = p.prefixLengths[b]; j < p.P; j++) {
                      const at = ((b * l.heads + h) * p.P + j) * l.headDim;
                      expect(
                        gp.subarray(at, at + l.headDim).every((v) => v === 0),
                        name,
                      ).toBe(true);
                    }
              }
            });
        } finally {
          await Promise.all([train.release(), forward.release()]);
        }
      });
    }

  it("an empty prefix (P = 0) gives the plain graph's loss, logits and gradients", async () => {
    const kind = PROBLEMS[0];
    const p = makeProblem(4, kind, [3, 5], [0, 0], 0, [0, 0, 17, 251, 1203]);
    const results = [];
    for (const prefix of [false, true]) {
      const session = await createSession(
        buildClassifierTrainingGraph(weights, {
          prefix,
          problemType: kind.problemType,
          outputs: kind.C,
          embedsGrad: true,
          float: "float64",
        }),
      );
      results.push(await session.run(feedsOf(p, prefix, "float64")));
      await session.release();
    }
    const [plain, empty] = results;
    for (const name of ["loss", "logits", "grad_head_weight", "grad_head_bias", "grad_inputs_embeds"]) {
      expect(maxAbsDiff(empty[name].data as Float64Array, plain[name].data as Float64Array), name).toBeLessThanOrEqual(
        1e-12,
      );
    }
    expect(empty.grad_prefix_key_1.dims).toEqual([p.batch, LAYERS[1].heads, 0, LAYERS[1].headDim]);
  });

  it("spends no work on weight gradients or on the sentence_embedding head", () => {
    // Forward: 13 MatMuls in the backbone (layer 0: qkv, scores, context, attention out, residual
    // projection, ffn in, ffn out; layer 1 the same without the residual projection) + 1 for the head.
    // Backward, input side only (never a backbone weight's gradient):
    //  - head: grad_head_weight (dLogitsᵀ·pooled), plus dpooled (dLogits·W) when anything below is wanted;
    //  - layer 1 (always crossed on the way down): one per weight MatMul (qkv, out, ffn in, ffn out) and
    //    two per attention MatMul (scores: dq and dk; context: dprobs and dv) = 4 + 4 = 8;
    //  - layer 0 down to inputs_embeds: 5 weight MatMuls + 4 = 9; down to its key/value prefix only:
    //    ffn out, ffn in, attention out, context's two, scores' dk (no dq, qkv or residual: they only
    //    lead to inputs_embeds) = 6.
    const cases = [
      { prefix: false, embedsGrad: true, matmuls: 14 + 2 + 8 + 9 },
      { prefix: true, embedsGrad: true, matmuls: 14 + 2 + 8 + 9 },
      { prefix: true, embedsGrad: false, matmuls: 14 + 2 + 8 + 6 },
      { prefix: false, embedsGrad: false, matmuls: 14 + 1 }, // the head-only probe
    ];
    for (const { prefix, embedsGrad, matmuls } of cases) {
      const g = buildClassifierTrainingGraph(weights, {
        prefix,
        embedsGrad,
        problemType: "single_label_classification",
        outputs: 3,
      });
      const expected = ["loss", "logits", "grad_head_weight", "grad_head_bias"];
      if (embedsGrad) expected.push("grad_inputs_embeds");
      if (prefix) expected.push("grad_prefix_key_0", "grad_prefix_value_0", "grad_prefix_key_1", "grad_prefix_value_1");
      expect(g.outputs.map((o) => o.name)).toEqual(expected);
      expect(g.initializers.some((i) => i.value.name.startsWith("tanh_layer"))).toBe(false);
      expect(
        g.ops.filter((op) => op.type === "MatMul"),
        `prefix ${prefix}, embedsGrad ${embedsGrad}`,
      ).toHaveLength(matmuls);
    }
  });
});

describe("float32 classifier training graph", () => {
  it("its logits equal the serving graph's pooled times the head; its loss matches them", async () => {
    const dir = backboneDir(MODELS_DIR);
    const ids = [5, 9, 17, 251, 1203, 42, 77];
    const kind = PROBLEMS[0];
    const p = makeProblem(3, kind, [4, 7], [3, 1], 3, ids);
    const f32 = (a: Float64Array) => Float32Array.from(a); // what the float32 graph is fed
    const [headWeight, headBias, dropout] = [f32(p.headWeight), f32(p.headBias), f32(p.pooledDropout)];
    // "basic" keeps the graphs op for op: same math, same kernels, identical pooled; the logits then
    // differ from the test's float64 head only by the float32 rounding of the head's 512-term dot
    // products. At "all" onnxruntime folds the query scale into the scores MatMul (FusedMatMul alpha)
    // in the serving graph but cannot in the training graph, whose backward pass reads the scaled
    // queries; layer 1's scale 1/√128 is not a power of two, so pooled differs by float32 rounding
    // (~3e-6 relative). Both are measured against the dot product's own scale, Σ|pooled·w| + |b|.
    for (const level of ["basic", "all"] as const) {
      for (const prefix of [false, true]) {
        const options = { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: level };
        const graph = buildClassifierTrainingGraph(weights, {
          prefix,
          problemType: kind.problemType,
          outputs: kind.C,
          embedsGrad: !prefix,
        });
        const train = await ort.InferenceSession.create(toOnnxBytes(graph), options);
        const serving = await ort.InferenceSession.create(
          path.join(dir, prefix ? BUILD_FILES.prefixModel : BUILD_FILES.model),
          options,
        );
        try {
          const feeds = feedsOf(p, prefix, "float32");
          const out = await train.run(feeds);
          const got = out.logits.data as Float;
          const pooled = (
            await serving.run(
              {
                inputs_embeds: feeds.inputs_embeds,
                attention_mask: feeds.attention_mask,
                ...(prefix ? Object.fromEntries(Object.entries(feeds).filter(([k]) => k.startsWith("prefix_"))) : {}),
              },
              ["pooled"],
            )
          ).pooled.data as Float;
          let worst = 0;
          for (let b = 0; b < p.batch; b++)
            for (let c = 0; c < p.C; c++) {
              let want = headBias[c];
              let scale = Math.abs(headBias[c]);
              for (let i = 0; i < H; i++) {
                const term = pooled[b * H + i] * dropout[b * H + i] * headWeight[c * H + i];
                want += term;
                scale += Math.abs(term);
              }
              worst = Math.max(worst, Math.abs(got[b * p.C + c] - want) / scale);
            }
          console.log(
            `float32 ${level} ${prefix ? "prefix" : "plain"}: logits relative error ${worst.toExponential(2)}`,
          );
          expect(worst, `${level} ${prefix ? "prefix" : "plain"}`).toBeLessThanOrEqual(level === "basic" ? 1e-6 : 1e-5);
          const loss = (out.loss.data as Float)[0];
          expect(Math.abs(loss - referenceLoss(kind.problemType, got, p.targets, p.batch, p.C))).toBeLessThanOrEqual(
            1e-6 * Math.max(1, loss),
          );
        } finally {
          await Promise.all([train.release(), serving.release()]);
        }
      }
    }
  });
});
