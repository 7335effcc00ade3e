/**
 * Backward pass of the adapter's F (pooling and non-pooling forms) in TypeScript. F is tiny and its
 * input h_p (the semantic pass over the prompt) is a constant of training, so the trainer takes
 * dLoss/dz from the backbone's training graph and chains it through F here.
 */
import type { AdapterTensor } from "../adapters/format.js";
import { poolScores, type TransformParams } from "../adapters/transform.js";

export { transformForward, type TransformParams } from "../adapters/transform.js";

/** dLoss/d(each F tensor) given dLoss/dz [L·W]. */
export function transformBackward(
  p: TransformParams,
  t: Record<string, AdapterTensor>,
  hp: Float32Array,
  dz: Float64Array | Float32Array,
): Record<string, Float32Array> {
  const { length: L, width: W, hidden: H } = p;
  const proj = t["proj.weight"].data;
  if (p.pooling) {
    const a = poolScores(p, t, hp);
    const dProj = new Float32Array(L * W * L);
    const da = new Float64Array(L);
    for (let j = 0; j < L * W; j++) {
      const g = dz[j];
      if (g === 0) continue;
      for (let l = 0; l < L; l++) {
        dProj[j * L + l] = g * a[l];
        da[l] += g * proj[j * L + l];
      }
    }
    const dPoolW = new Float32Array(H);
    let dPoolB = 0;
    for (let l = 0; l < L; l++) {
      dPoolB += da[l];
      for (let i = 0; i < H; i++) dPoolW[i] += da[l] * hp[l * H + i];
    }
    return {
      "proj.weight": dProj,
      "proj.bias": Float32Array.from(dz),
      "pool.weight": dPoolW,
      "pool.bias": Float32Array.of(dPoolB),
    };
  }
  const dProj = new Float64Array(W * H);
  const dBias = new Float64Array(W);
  for (let l = 0; l < L; l++)
    for (let j = 0; j < W; j++) {
      const g = dz[l * W + j];
      if (g === 0) continue;
      dBias[j] += g;
      for (let i = 0; i < H; i++) dProj[j * H + i] += g * hp[l * H + i];
    }
  return { "proj.weight": Float32Array.from(dProj), "proj.bias": Float32Array.from(dBias) };
}
