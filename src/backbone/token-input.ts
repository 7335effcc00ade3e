/**
 * The token-id input stage shared by every backbone's "ids" graphs: the embedding lookup runs
 * inside the graph, so a batch sends int64 ids instead of [seq, hidden] floats (what a GPU wants:
 * the table is uploaded once, with the weights).
 *
 *   input_ids   int64 [batch, seq]  a token id (< vocab), or vocab + k for row k of prompt_rows
 *   prompt_rows float [rows, hidden] the batch's distinct soft-prompt rows stacked (at least one row)
 *
 * The rows are picked by two Gathers (clamped indices, so neither reads out of range) and a Where;
 * the vocabulary table is never concatenated with the prompt rows per batch. The output equals the
 * "embeds" graphs' `inputs_embeds` for the same rows, so everything after this stage is the same
 * network code.
 */
import type { Graph, Value } from "./graph/graph.js";

export const INPUT_IDS = "input_ids";
export const PROMPT_ROWS = "prompt_rows";

/** Which input stage a backbone graph has: rows of the table from the host, or ids looked up inside. */
export const GRAPH_INPUTS = ["embeds", "ids"] as const;
export type GraphInput = (typeof GRAPH_INPUTS)[number];

/**
 * Declares `input_ids` and `prompt_rows` on `g` and returns the [batch, seq, width] rows they name.
 * `table` is the word-embedding table [vocab, width]; it becomes an initializer of the graph.
 */
export function embedTokenIds(
  g: Graph,
  table: Float32Array,
  vocab: number,
  width: number,
  dims: { batch: string; seq: string },
): Value {
  if (table.length !== vocab * width)
    throw new Error(`token-input: table has ${table.length} values, [${vocab}, ${width}] needs ${vocab * width}`);
  const ids = g.input(INPUT_IDS, "int64", [dims.batch, dims.seq]);
  const promptRows = g.input(PROMPT_ROWS, g.float, ["prompt_rows", width]);
  const isPrompt = g.greater(ids, g.ints([vocab - 1], [], "last_token_id")); // [B, T] bool
  const tokenIndex = g.min(ids, g.ints([vocab - 1], [], "last_token_id")); // prompt positions read any valid row
  const promptIndex = g.max(g.sub(ids, g.ints([vocab], [], "vocab_size")), g.ints([0], [], "zero")); // tokens read row 0
  const tokens = g.gather(g.weight("word_embeddings", table, [vocab, width]), tokenIndex);
  const prompts = g.gather(promptRows, promptIndex);
  return g.where(g.unsqueeze(isPrompt, [2]), prompts, tokens);
}
