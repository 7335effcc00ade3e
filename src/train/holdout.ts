/**
 * The default validation split when the user gives neither `--dev` nor `--holdout`: a deterministic
 * stratified slice of the training file (10 %, at most 2,000 examples). Each class (each label set
 * for multi-label; the whole file for regression) gives its share, rounded by largest remainder, so
 * a rare class is neither over- nor under-represented; which examples go is a seeded shuffle.
 */
import type { Example } from "./datasets.js";
import { Rng } from "./rng.js";

export const DEFAULT_HOLDOUT_FRACTION = 0.1;
export const DEFAULT_HOLDOUT_MAX = 2000;

export interface HoldoutSplit {
  /** The examples kept for training, in file order. */
  train: Example[];
  /** The held-out examples, in file order. */
  heldOut: Example[];
}

function stratum(e: Example): string {
  if (Array.isArray(e.label)) return JSON.stringify([...e.label].sort());
  return typeof e.label === "number" ? "" : e.label;
}

/** How many examples to hold out of `n`: 10 %, rounded, at most 2,000, and none when that leaves no training data. */
export function defaultHoldoutSize(n: number, fraction = DEFAULT_HOLDOUT_FRACTION, max = DEFAULT_HOLDOUT_MAX): number {
  const size = Math.min(max, Math.round(n * fraction));
  return size >= n ? 0 : size;
}

export function stratifiedHoldout(examples: readonly Example[], size: number, seed: number): HoldoutSplit {
  const groups = new Map<string, number[]>();
  examples.forEach((e, i) => {
    const key = stratum(e);
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  // Largest-remainder apportionment of `size` over the strata (ties: the larger stratum, then first seen).
  const entries = [...groups.values()];
  const quotas = entries.map((g) => (size * g.length) / examples.length);
  const counts = quotas.map(Math.floor);
  let left = size - counts.reduce((a, b) => a + b, 0);
  const order = entries
    .map((_, i) => i)
    .sort((a, b) => quotas[b] - counts[b] - (quotas[a] - counts[a]) || entries[b].length - entries[a].length || a - b);
  for (const i of order) {
    if (left === 0) break;
    counts[i]++;
    left--;
  }
  const rng = new Rng(seed);
  const held = new Set<number>();
  entries.forEach((g, i) =>
    rng
      .shuffle([...g])
      .slice(0, counts[i])
      .forEach((idx) => held.add(idx)),
  );
  return {
    train: examples.filter((_, i) => !held.has(i)),
    heldOut: examples.filter((_, i) => held.has(i)),
  };
}
