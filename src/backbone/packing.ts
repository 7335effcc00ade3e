/**
 * Padding-free execution (SKT_PACKED): which graph layout a runner serves, what a padded position
 * costs the batcher under it, and the two index inputs the packed graphs take (see
 * buildUseLiteNetwork's `packed` option).
 *
 * Measured with `npm run bench:packed` on 2026-12-01 (2-core AMD EPYC, quiet, 2 threads, fp32; see
 * docs/benchmarks.md): packed ÷ padded time per batch was 0.58 at 51 % padding, 0.79–0.86 at
 * 11–16 %, 0.98–1.00 at 3–6 % and 0.92 for a single unpadded sentence. It was not slower at any
 * shape, so `auto` serves every batch packed wherever the build has packed graphs; a per-batch
 * threshold would only cost a second pair of sessions per worker (~100 MB) for nothing.
 */
import type { Device } from "./device.js";

export const PACKED_SETTINGS = ["auto", "on", "off"] as const;
export type PackedSetting = (typeof PACKED_SETTINGS)[number];

export type GraphLayout = "packed" | "padded";

/**
 * The layout a runner serves. `auto`: packed on the CPU when the build has packed graphs (on
 * WebGPU padding is not what limits a pass, and the packed graphs are unmeasured there); `on`:
 * packed wherever the build has them; `off`: padded.
 */
export function chooseLayout(setting: PackedSetting, hasPackedGraphs: boolean, device: Device): GraphLayout {
  if (setting === "off" || !hasPackedGraphs) return "padded";
  if (setting === "on") return "packed";
  return device === "cpu" ? "packed" : "padded";
}

/**
 * What one padding position costs relative to a real one, as the batcher counts a batch: with the
 * padded graphs every position costs the same (1); with the packed graphs padding reaches only
 * attention (scores and softmax over [batch, seq]) and the two gathers per layer. Per batch, 0.25
 * fits the bench:packed figures above (packed ≈ 0.95 × (real + 0.25 × padding) of the padded time),
 * but as the batcher's weight it let batches fill to 32 rows with ~42 % padding and the packed server
 * gained only 1.015× over the padded one at saturation (quiet `npm run bench:efficiency`, per pair
 * 0.73–1.32); with 0.5, 1.116× (per pair 0.84–1.15, 9 of 10 above 1.04), batches of ~25 rows.
 */
export const PACKED_PADDING_COST = 0.5;

export function paddingCost(layout: GraphLayout): number {
  return layout === "packed" ? PACKED_PADDING_COST : 1;
}

export interface PackingIndices {
  /** [real tokens]: b·seq + t of each real position, in order. */
  packedIndex: BigInt64Array;
  /** [batch·seq]: 1 + the packed row of each position, 0 for padding. */
  paddedIndex: BigInt64Array;
}

/** The packing inputs of a right-padded batch whose row b has `lengths[b]` real positions (≤ seq). */
export function packingFromLengths(lengths: readonly number[], seq: number): PackingIndices {
  let real = 0;
  for (const l of lengths) real += l;
  const packedIndex = new BigInt64Array(real);
  const paddedIndex = new BigInt64Array(lengths.length * seq);
  let n = 0;
  lengths.forEach((len, b) => {
    for (let t = 0; t < len; t++) {
      const at = b * seq + t;
      packedIndex[n] = BigInt(at);
      paddedIndex[at] = BigInt(++n);
    }
  });
  return { packedIndex, paddedIndex };
}

/** The packing inputs of any padded batch, from its attention mask ([batch, seq], 1 for real positions). */
export function packingIndices(mask: ArrayLike<bigint | number>): PackingIndices {
  let real = 0;
  for (let i = 0; i < mask.length; i++) if (Number(mask[i]) !== 0) real++;
  const packedIndex = new BigInt64Array(real);
  const paddedIndex = new BigInt64Array(mask.length);
  let n = 0;
  for (let i = 0; i < mask.length; i++) {
    if (Number(mask[i]) === 0) continue;
    packedIndex[n] = BigInt(i);
    paddedIndex[i] = BigInt(++n);
  }
  return { packedIndex, paddedIndex };
}
