/**
 * Device-resident banks: a tensor [capacity, …item] that stays on the GPU between runs, one slot per
 * cached item (e.g. an adapter's prefix keys of one layer). Two tiny graphs: the update writes one
 * item into one slot (ScatterND; run on a session whose outputs stay on the device and fed its own
 * output back the next time), the read gathers a slot per batch row. docs/webgpu.md "Adapters on the
 * device" says what is and is not wired into serving.
 */
import { Graph } from "./graph/graph.js";

export const BANK = "bank";
export const BANK_OUT = "bank_out";
export const SLOT = "slot";
export const ITEM = "item";
export const SLOTS = "slots";
export const ROWS = "rows";

/** bank_out = bank with slot `slot` ([1, 1] int64) set to `item` ([1, …item]). */
export function bankUpdateGraph(item: readonly number[]): Graph {
  const g = new Graph("float32");
  const bank = g.input(BANK, "float32", ["capacity", ...item]);
  const slot = g.input(SLOT, "int64", [1, 1]);
  const value = g.input(ITEM, "float32", [1, ...item]);
  g.output(BANK_OUT, g.scatterND(bank, slot, value));
  return g;
}

/** rows = bank[slots] ([batch] int64 → [batch, …item]). */
export function bankReadGraph(item: readonly number[]): Graph {
  const g = new Graph("float32");
  const bank = g.input(BANK, "float32", ["capacity", ...item]);
  const slots = g.input(SLOTS, "int64", ["batch"]);
  g.output(ROWS, g.gather(bank, slots));
  return g;
}
