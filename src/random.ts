/**
 * mulberry32: a tiny seeded generator of uniform numbers in [0, 1), so the same seed always gives the
 * same sequence (synthetic adapters, test inputs, benchmark and soak load). Not for training: that
 * draws from the xoshiro generator in `train/rng.ts`.
 */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
