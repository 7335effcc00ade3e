/** Small numeric helpers shared by the correctness tests. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export { cosine } from "../../scripts/lib/vectors.js";

/** Deterministic pseudo-random numbers for test inputs (mulberry32). */
export { seededRandom } from "../../src/random.js";
