/**
 * npm run bench:fused — the Hugging Face families' serving graph with and without onnxruntime's
 * fused operators (SKT_FUSED_OPS), on random weights with real shapes built in memory (nothing is
 * written): a BERT-base-shaped encoder and a small Llama-shaped decoder. Both sessions are created
 * with graphOptimizationLevel "all" (what the server uses), so the plain column is whatever
 * onnxruntime's own optimizer makes of the plain graph. Plain and fused runs alternate (ABBA) on the
 * same batches; reported: median ms per run and the largest |difference| of last_hidden_state.
 * BENCH_FUSED_REPS (default 9), BENCH_FUSED_THREADS (default 1), BENCH_FUSED_ONLY (bert or llama).
 */
import ort from "onnxruntime-node";
import { toOnnxBytes } from "../src/backbone/graph/onnx.js";
import type { EncoderWeights } from "../src/backbone/hf/bert/network.js";
import { buildHfNetwork } from "../src/backbone/hf/build-graph.js";
import type { DecoderConfig, EncoderConfig } from "../src/backbone/hf/config.js";
import type { FamilyWeights } from "../src/backbone/hf/folder.js";
import type { LinearWeights } from "../src/backbone/hf/layers.js";
import type { DecoderWeights } from "../src/backbone/hf/llama/network.js";
import { seededRandom } from "../src/random.js";
import { median } from "./lib.js";

const REPS = Number(process.env.BENCH_FUSED_REPS ?? 9);
const ONLY = process.env.BENCH_FUSED_ONLY;
const THREADS = Number(process.env.BENCH_FUSED_THREADS ?? 1);
const SHAPES = [
  [1, 32],
  [8, 32],
] as const;

const random = seededRandom(1);
const values = (n: number, scale: number, center = 0) =>
  Float32Array.from({ length: n }, () => center + (random() * 2 - 1) * scale);
const lin = (inDim: number, out: number, bias: boolean): LinearWeights => ({
  weight: values(inDim * out, 1 / Math.sqrt(inDim)),
  bias: bias ? values(out, 0.1) : null,
  in: inDim,
  out,
});

function bertBase(): FamilyWeights {
  const H = 768;
  const I = 3072;
  const config: EncoderConfig = {
    family: "bert",
    modelType: "bert",
    vocabSize: 30522,
    hidden: H,
    layers: 12,
    heads: 12,
    intermediate: I,
    activation: "gelu_erf",
    eps: 1e-12,
    maxPositionEmbeddings: 512,
    positionOffset: 0,
    typeVocabSize: 2,
  };
  const norm = () => ({ scale: values(H, 0.1, 1), bias: values(H, 0.1) });
  const weights: EncoderWeights = {
    config,
    wordEmbeddings: new Float32Array(0), // looked up outside the graph
    positionEmbeddings: values(512 * H, 0.1),
    tokenTypes: values(2 * H, 0.1),
    embeddingNorm: norm(),
    layers: Array.from({ length: config.layers }, () => ({
      query: lin(H, H, true),
      key: lin(H, H, true),
      value: lin(H, H, true),
      attentionOut: lin(H, H, true),
      attentionNorm: norm(),
      ffnIn: lin(H, I, true),
      ffnOut: lin(I, H, true),
      ffnNorm: norm(),
    })),
  };
  return { family: "bert", weights };
}

function smallLlama(): FamilyWeights {
  const H = 512;
  const I = 1408;
  const config: DecoderConfig = {
    family: "llama",
    modelType: "llama",
    vocabSize: 32000,
    hidden: H,
    layers: 8,
    heads: 8,
    kvHeads: 2,
    headDim: 64,
    intermediate: I,
    eps: 1e-6,
    ropeTheta: 10000,
    ropeScaling: null,
    maxPositionEmbeddings: 2048,
    qkvBias: false,
    outputBias: false,
  };
  const weights: DecoderWeights = {
    config,
    embedTokens: new Float32Array(0),
    layers: Array.from({ length: config.layers }, () => ({
      inputNorm: values(H, 0.1, 1),
      q: lin(H, 512, false),
      k: lin(H, 128, false),
      v: lin(H, 128, false),
      o: lin(512, H, false),
      postAttentionNorm: values(H, 0.1, 1),
      gate: lin(H, I, false),
      up: lin(H, I, false),
      down: lin(I, H, false),
    })),
    finalNorm: values(H, 0.1, 1),
  };
  return { family: "llama", weights };
}

async function session(weights: FamilyWeights, fused: boolean): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toOnnxBytes(buildHfNetwork(weights, { fused }).graph), {
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
  });
}

function feeds(names: readonly string[], hidden: number, batch: number, seq: number): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor("float32", values(batch * seq * hidden, 1), [batch, seq, hidden]),
    attention_mask: new ort.Tensor("int64", new BigInt64Array(batch * seq).fill(1n), [batch, seq]),
  };
  if (names.includes("token_type_ids"))
    f.token_type_ids = new ort.Tensor("int64", new BigInt64Array(batch * seq), [batch, seq]);
  return f;
}

console.log(
  `threads ${THREADS}, ${REPS} alternating repetitions per cell; medians. Timings on a shared machine: compare columns within a row only.`,
);
console.log("| model | batch × tokens | plain ms | fused ms | fused / plain | max abs diff |");
console.log("|---|---|---:|---:|---:|---:|");
for (const [label, make] of [
  ["BERT-base shape (12 × 768, erf GELU)", bertBase],
  ["Llama shape (8 × 512, GQA 8:2)", smallLlama],
] as const) {
  if (ONLY && !label.toLowerCase().startsWith(ONLY)) continue;
  const weights = make();
  const hidden = weights.weights.config.hidden;
  const plain = await session(weights, false);
  const fused = await session(weights, true);
  for (const [batch, seq] of SHAPES) {
    const input = feeds(plain.inputNames, hidden, batch, seq);
    const a = (await plain.run(input)).last_hidden_state.data as Float32Array; // also the warm-up
    const b = (await fused.run(input)).last_hidden_state.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
    const times = { plain: [] as number[], fused: [] as number[] };
    const pairs = [
      ["plain", plain],
      ["fused", fused],
    ] as const;
    // ABBA order: neither graph always runs first.
    for (let r = 0; r < REPS; r++)
      for (const [name, s] of r % 2 ? [...pairs].reverse() : pairs) {
        const t0 = performance.now();
        await s.run(input);
        times[name].push(performance.now() - t0);
      }
    const p = median(times.plain);
    const q = median(times.fused);
    console.log(
      `| ${label} | ${batch} × ${seq} | ${p.toFixed(1)} | ${q.toFixed(1)} | ${(q / p).toFixed(3)} | ${diff.toExponential(1)} |`,
    );
  }
  await plain.release();
  await fused.release();
}
