/**
 * The graph contract every Hugging Face family keeps (the same names as USE-lite's, so the runner
 * and the engine treat all backbones alike):
 *   inputs  inputs_embeds  float [batch, seq, hidden]  rows of the word-embedding table (and soft prompts)
 *           (with `input: "ids"` instead input_ids int64 [batch, seq] and prompt_rows float [rows, hidden],
 *           looked up inside the graph: ../token-input.ts)
 *           attention_mask int64 [batch, seq]
 *           token_type_ids int64 [batch, seq] (families with token types only)
 *   prefix variant also: prefix_key_n/prefix_value_n [batch, kv_heads, prefix, head_dim] per layer,
 *           prefix_mask int64 [batch, prefix] (each row's real prefix slots first)
 *   outputs last_hidden_state [batch, seq, hidden], pooled [batch, hidden] (mean over real positions)
 * Positions follow Hugging Face's past_key_values semantics: a row with a prefix of L real slots
 * numbers its first text position L (plus the family's offset).
 */
import { Graph, type Value } from "../graph/graph.js";
import { embedTokenIds, type GraphInput } from "../token-input.js";

export interface HfNetworkOptions {
  float?: "float32" | "float64";
  prefix?: boolean;
  /** The input stage: `embeds` (default; rows looked up on the host) or `ids` (looked up in the graph). */
  input?: GraphInput;
  /**
   * Emit onnxruntime's fused operators (SkipLayerNormalization, BiasGelu/FastGelu,
   * SimplifiedLayerNormalization, SkipSimplifiedLayerNormalization, LayerNormalization): serving
   * graphs only, float32 only — the reverse mode has no rules for them, so training graphs stay plain.
   */
  fused?: boolean;
}

export interface HfNetworkGraph {
  graph: Graph;
  inputs: { inputsEmbeds: Value; prefixKeys: Value[]; prefixValues: Value[] };
  outputs: { lastHiddenState: Value; pooled: Value };
}

export const B = "batch";
export const T = "seq";
const P = "prefix";

export interface NetworkInputs {
  g: Graph;
  inputsEmbeds: Value;
  /** float [B, T] */
  mask: Value;
  prefixKeys: Value[];
  prefixValues: Value[];
  /** float [B, P], or null without a prefix. */
  prefixMask: Value | null;
  /** int64 scalar: the prefix axis' length, or null without a prefix. */
  prefixSlots: Value | null;
}

export function declareInputs(
  hidden: number,
  layers: number,
  kvHeads: number,
  headDim: number,
  opts: HfNetworkOptions,
  /** The word-embedding table [vocab, hidden]: an initializer of the graph when `opts.input` is "ids". */
  table: Float32Array,
): NetworkInputs {
  if (opts.fused && opts.float === "float64")
    throw new Error("hf network: fused operators are float32 serving graphs only");
  const g = new Graph(opts.float ?? "float32");
  const inputsEmbeds =
    opts.input === "ids"
      ? embedTokenIds(g, table, table.length / hidden, hidden, { batch: B, seq: T })
      : g.input("inputs_embeds", g.float, [B, T, hidden]);
  const attentionMask = g.input("attention_mask", "int64", [B, T]);
  const prefixKeys: Value[] = [];
  const prefixValues: Value[] = [];
  let prefixMask: Value | null = null;
  let prefixSlots: Value | null = null;
  if (opts.prefix) {
    for (let n = 0; n < layers; n++) {
      prefixKeys.push(g.input(`prefix_key_${n}`, g.float, [B, kvHeads, P, headDim]));
      prefixValues.push(g.input(`prefix_value_${n}`, g.float, [B, kvHeads, P, headDim]));
    }
    const rawMask = g.input("prefix_mask", "int64", [B, P]);
    prefixMask = g.cast(rawMask, g.float);
    prefixSlots = g.gatherScalar(g.shapeOf(rawMask), 1);
  }
  return { g, inputsEmbeds, mask: g.cast(attentionMask, g.float), prefixKeys, prefixValues, prefixMask, prefixSlots };
}

/** int64 range 0 … seq−1 of the text positions. */
export function textIndices(inp: NetworkInputs): Value {
  const { g } = inp;
  const seq = g.gatherScalar(g.shapeOf(inp.inputsEmbeds), 1);
  return g.range(g.ints([0], [], "zero"), seq, g.ints([1], [], "one"), T);
}

/**
 * Position ids of the text: [T] without a prefix, [B, T] with one (each row starts after its own
 * real prefix slots, as Hugging Face numbers tokens after a cache of that length), plus `offset`.
 */
export function positionIds(inp: NetworkInputs, offset: number): Value {
  const { g } = inp;
  let positions = textIndices(inp);
  if (offset !== 0) positions = g.add(positions, g.ints([offset], [], "position_offset"));
  if (!inp.prefixMask) return positions;
  const prefixLength = g.cast(g.reduceSum(inp.prefixMask, [1], true), "int64"); // [B, 1]
  return g.add(g.unsqueeze(positions, [0]), prefixLength);
}

/** The key mask over [prefix slots, text positions], float [B, K]. */
export function keyMask(inp: NetworkInputs): Value {
  return inp.prefixMask ? inp.g.concat([inp.prefixMask, inp.mask], 1) : inp.mask;
}
