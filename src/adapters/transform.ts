/**
 * F, the adapter's transform from the semantic pass h_p [L, H] to its output z [L, W] (soft prompt
 * rows or prefix rows), on raw tensors. Serving (prepared.ts) and training (train/transform-grad.ts)
 * both use this one definition.
 */
import type { AdapterTensor } from "./format.js";

export interface TransformParams {
  pooling: boolean;
  /** L: prompt positions. */
  length: number;
  /** W: width of one output row (H_in for prompts, Σ 2·H_attn for prefixes). */
  width: number;
  /** H: width of h_p rows. */
  hidden: number;
}

/** z [L·W] from h_p [L·H]. */
export function transformForward(p: TransformParams, t: Record<string, AdapterTensor>, hp: Float32Array): Float32Array {
  // Accumulates in float64; pooling: a = h_p·pool.weightᵀ + pool.bias, z = proj.weight·a + proj.bias.
  const { length: L, width: W, hidden: H } = p;
  const proj = t["proj.weight"].data;
  const bias = t["proj.bias"].data;
  const z = new Float32Array(L * W);
  if (p.pooling) {
    const a = poolScores(p, t, hp);
    for (let j = 0; j < L * W; j++) {
      let s = bias[j];
      for (let l = 0; l < L; l++) s += proj[j * L + l] * a[l];
      z[j] = s;
    }
  } else {
    for (let l = 0; l < L; l++) for (let j = 0; j < W; j++) {
      let s = bias[j];
      for (let i = 0; i < H; i++) s += hp[l * H + i] * proj[j * H + i];
      z[l * W + j] = s;
    }
  }
  return z;
}

export function poolScores(p: TransformParams, t: Record<string, AdapterTensor>, hp: Float32Array): Float64Array {
  const { length: L, hidden: H } = p;
  const w = t["pool.weight"].data;
  const a = new Float64Array(L);
  for (let l = 0; l < L; l++) {
    let s = t["pool.bias"].data[0];
    for (let i = 0; i < H; i++) s += hp[l * H + i] * w[i];
    a[l] = s;
  }
  return a;
}
