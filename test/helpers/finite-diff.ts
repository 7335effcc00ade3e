/**
 * Central finite differences of L = Σ_k Σ(output_k ⊙ R_k) through a graph run in onnxruntime
 * (float64 graphs), to check the gradients `addGradients` emits.
 */
import ort from "onnxruntime-node";
import type { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";

export type Feeds = Record<string, ort.Tensor>;

/** The weighting of one output in the loss: L += Σ(output ⊙ weights). */
export interface LossTerm {
  output: string;
  weights: ArrayLike<number>;
}

/** One intra-op thread: every evaluation must use the same summation order. */
export function createSession(graph: Graph): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(toOnnxBytes(graph), { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

export function tensor64(data: ArrayLike<number>, dims: number[]): ort.Tensor {
  return new ort.Tensor("float64", Float64Array.from(data), dims);
}

export async function weightedLoss(session: ort.InferenceSession, feeds: Feeds, terms: LossTerm[]): Promise<number> {
  const out = await session.run(
    feeds,
    terms.map((t) => t.output),
  );
  let loss = 0;
  for (const { output, weights } of terms) {
    const y = out[output].data as Float64Array;
    if (y.length !== weights.length)
      throw new Error(`finite-diff: ${output} has ${y.length} values, weights ${weights.length}`);
    for (let i = 0; i < y.length; i++) loss += y[i] * weights[i];
  }
  return loss;
}

/** dL/d input[i] ≈ (L(x + h·e_i) − L(x − h·e_i)) / 2h for each index in `indices` (default: all). */
export async function finiteDifferences(
  session: ort.InferenceSession,
  feeds: Feeds,
  terms: LossTerm[],
  input: string,
  indices?: number[],
  h = 1e-6,
): Promise<Float64Array> {
  const base = feeds[input];
  if (base.type !== "float64") throw new Error(`finite-diff: ${input} must be float64, is ${base.type}`);
  const x = base.data as Float64Array;
  const at = indices ?? [...x.keys()];
  const grads = new Float64Array(at.length);
  const shifted = async (i: number, delta: number): Promise<number> => {
    const copy = Float64Array.from(x);
    copy[i] += delta;
    return weightedLoss(session, { ...feeds, [input]: new ort.Tensor("float64", copy, base.dims) }, terms);
  };
  for (let k = 0; k < at.length; k++) {
    const i = at[k];
    grads[k] = ((await shifted(i, h)) - (await shifted(i, -h))) / (2 * h);
  }
  return grads;
}

/** max|a − b| / max(1e-8, max|a|, max|b|): robust to individual near-zero entries. */
export function relativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let diff = 0;
  let scale = 1e-8;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(a[i]), Math.abs(b[i]));
  }
  return diff / scale;
}
