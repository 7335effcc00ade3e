/**
 * Device-resident banks: a tensor [capacity, …item] that stays on the GPU between runs, one slot per
 * cached item (e.g. an adapter's prefix keys of one layer). Two tiny graphs: the update writes one
 * item into one slot (ScatterND; run on a session whose outputs stay on the device and fed its own
 * output back the next time), the read gathers a slot per batch row. The prefix* graphs below are
 * the ones serving uses (prefix-banks.ts): every layer's key and value banks at once, plus a grow.
 */
import type { AttentionLayerDims } from "./dims.js";
import { Graph } from "./graph/graph.js";
import type { Dim } from "./graph/shape.js";

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

/** Per attention layer n: the bank of its prefix keys `bank_key_n` and values `bank_value_n`. */
export function prefixBankNames(layers: number): string[] {
  return Array.from({ length: layers }, (_, n) => [`bank_key_${n}`, `bank_value_${n}`]).flat();
}

/** Item shapes [heads, Pmax, headDim] of the prefix banks, in prefixBankNames order. */
function prefixItemShapes(layers: readonly AttentionLayerDims[]): Dim[][] {
  return layers.flatMap((l) => [
    [l.heads, "p_max", l.headDim],
    [l.heads, "p_max", l.headDim],
  ]);
}

/**
 * Writes M adapters' prefixes into their slots of every layer's banks at once: `slots` [M, 1] int64,
 * `item_<bank>` [M, heads, Pmax, headDim] (zero after each adapter's own length) → `<bank>_out`.
 */
export function prefixBankUpdateGraph(layers: readonly AttentionLayerDims[]): Graph {
  const g = new Graph("float32");
  const slots = g.input(SLOT, "int64", ["m", 1]);
  const shapes = prefixItemShapes(layers);
  prefixBankNames(layers.length).forEach((name, i) => {
    const bank = g.input(name, "float32", ["capacity", ...shapes[i]]);
    const items = g.input(`item_${name}`, "float32", ["m", ...shapes[i]]);
    g.output(`${name}_out`, g.scatterND(bank, slots, items));
  });
  return g;
}

/**
 * Grows every bank (ONNX Pad with zeros at the end): `pads` [8] int64 = ONNX Pad's begins and ends
 * for the 4 axes. Existing slots keep their index and contents.
 */
export function prefixBankGrowGraph(layers: readonly AttentionLayerDims[]): Graph {
  const g = new Graph("float32");
  const pads = g.input("pads", "int64", [8]);
  const shapes = prefixItemShapes(layers);
  prefixBankNames(layers.length).forEach((name, i) => {
    const bank = g.input(name, "float32", ["capacity", ...shapes[i]]);
    const [grown] = g.record("Pad", [bank, pads], { mode: "constant" }, [
      { name: "pad", dtype: "float32", shape: ["grown", shapes[i][0], "p", shapes[i][2]] },
    ]);
    g.output(`${name}_out`, grown);
  });
  return g;
}

/**
 * The prefix graph's inputs from the banks: `prefix_key_n` / `prefix_value_n` = bank[slots][:, :, :P]
 * ([batch, heads, P, headDim]) for `slots` [batch] int64 and `prefix_length` [1] int64 = P ≤ Pmax.
 */
export function prefixBankReadGraph(layers: readonly AttentionLayerDims[]): Graph {
  const g = new Graph("float32");
  const slots = g.input(SLOTS, "int64", ["batch"]);
  const length = g.input("prefix_length", "int64", [1]);
  const shapes = prefixItemShapes(layers);
  prefixBankNames(layers.length).forEach((name, i) => {
    const bank = g.input(name, "float32", ["capacity", ...shapes[i]]);
    const rows = g.gather(bank, slots);
    const [cut] = g.record("Slice", [rows, g.ints([0]), length, g.ints([2])], {}, [
      { name: "slice", dtype: "float32", shape: ["batch", shapes[i][0], "p", shapes[i][2]] },
    ]);
    g.output(name.replace("bank_", "prefix_"), cut);
  });
  return g;
}
