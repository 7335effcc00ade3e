/**
 * Turns a batch of rows (each with its own prepared adapter) into the backbone's inputs: soft
 * prompts in front of token rows for prompt-variant rows, key/value prefixes for prefix-variant
 * rows. A batch that holds any prefix row runs the prefix graph; its other rows get a fully masked
 * prefix, which contributes exactly nothing (their keys carry the −1e9 bias), so prompt and prefix
 * rows of different tasks share one backbone pass.
 *
 * Two input forms (token-input.ts): `embeds` looks the rows up here (the CPU path: the main thread's
 * one copy of the table serves every worker); `ids` sends token ids and the batch's distinct
 * soft-prompt rows once each, the lookup running inside the graph (the WebGPU path).
 */
import { lookupEmbeddings, type BackboneBatch, type BackboneOutputName } from "../backbone/backbone.js";
import type { BackboneDims } from "../backbone/dims.js";
import { packingFromLengths, type GraphLayout } from "../backbone/packing.js";
import type { PreparedAdapter } from "../adapters/prepared.js";
import type { GraphInput } from "../backbone/token-input.js";

export interface BatchRow {
  /** null: the backbone alone (/embed). */
  adapter: PreparedAdapter | null;
  ids: number[];
  /** Token types of `ids` (pairs on BERT-family backbones). */
  typeIds?: number[];
}

/** Positions a row occupies in the sequence axis. */
export function rowLength(adapter: PreparedAdapter | null, tokenCount: number): number {
  return (adapter?.softPrompt ? adapter.metadata.promptLength : 0) + tokenCount;
}

export interface AssembledBatch {
  batch: BackboneBatch;
  realTokens: number;
  paddedTokens: number;
}

/** `layout`: the graphs that will run the batch; packed ones also get their index inputs, from the row lengths. */
export function assembleBatch(
  rows: readonly BatchRow[],
  table: Float32Array,
  dims: BackboneDims,
  input: GraphInput = "embeds",
  layout: GraphLayout = "padded",
): AssembledBatch {
  const D = dims.embedDim;
  const B = rows.length;
  const lengths = rows.map((r) => rowLength(r.adapter, r.ids.length));
  const seq = Math.max(1, ...lengths);
  const attentionMask = new BigInt64Array(B * seq);
  rows.forEach((_, b) => attentionMask.fill(1n, b * seq, b * seq + lengths[b]));
  const outputs: BackboneOutputName[] = ["pooled"];
  const batch: BackboneBatch =
    input === "ids"
      ? { batch: B, seq, tokenIds: tokenIdInputs(rows, seq, dims), attentionMask, outputs }
      : { batch: B, seq, inputsEmbeds: embedRows(rows, seq, table, D), attentionMask, outputs };
  // Ids graphs are padded only (token-input.ts); packed ones also get their index inputs.
  if (layout === "packed" && input === "embeds") batch.packing = packingFromLengths(lengths, seq);
  if (rows.some((r) => r.typeIds)) {
    // Soft-prompt rows and single texts are type 0; a pair's ids carry the tokenizer's types.
    const types = new BigInt64Array(B * seq);
    rows.forEach((r, b) => r.typeIds?.forEach((t, i) => (types[b * seq + lengths[b] - r.ids.length + i] = BigInt(t))));
    batch.tokenTypeIds = types;
  }

  const P = Math.max(0, ...rows.map((r) => r.adapter?.prefix?.length ?? 0));
  if (rows.some((r) => r.adapter?.prefix)) {
    const keys = dims.layers.map((l) => new Float32Array(B * l.heads * P * l.headDim));
    const values = dims.layers.map((l) => new Float32Array(B * l.heads * P * l.headDim));
    const mask = new BigInt64Array(B * P);
    rows.forEach((r, b) => {
      const prefix = r.adapter?.prefix;
      if (!prefix) return;
      const L = prefix.length;
      dims.layers.forEach((l, n) => {
        for (let h = 0; h < l.heads; h++) {
          // Source [heads, L, d] → destination [B, heads, P, d]; rows shorter than P stay masked.
          const src = h * L * l.headDim;
          const dst = (b * l.heads + h) * P * l.headDim;
          keys[n].set(prefix.keys[n].subarray(src, src + L * l.headDim), dst);
          values[n].set(prefix.values[n].subarray(src, src + L * l.headDim), dst);
        }
      });
      mask.fill(1n, b * P, b * P + L);
    });
    batch.prefix = { length: P, keys, values, mask };
  }
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  return { batch, realTokens, paddedTokens: B * seq - realTokens };
}

/** [B, seq, D]: each row's soft prompt (if any), then its tokens' table rows; padding stays zero. */
function embedRows(rows: readonly BatchRow[], seq: number, table: Float32Array, D: number): Float32Array {
  const embeds = new Float32Array(rows.length * seq * D);
  rows.forEach((r, b) => {
    let offset = b * seq;
    if (r.adapter?.softPrompt) {
      embeds.set(r.adapter.softPrompt, offset * D);
      offset += r.adapter.metadata.promptLength;
    }
    lookupEmbeddings(table, D, r.ids, embeds, offset);
  });
  return embeds;
}

/**
 * [B, seq] ids (padding 0, masked) and the distinct soft prompts stacked once each: a prompt row's
 * first positions are vocab + (its adapter's first stacked row + j). Keyed by the prepared object,
 * so two versions of one task never share rows.
 */
function tokenIdInputs(
  rows: readonly BatchRow[],
  seq: number,
  dims: BackboneDims,
): { ids: BigInt64Array; promptRows: Float32Array } {
  const V = dims.vocabSize;
  const firstRow = new Map<PreparedAdapter, number>();
  let stacked = 0;
  for (const r of rows) {
    if (!r.adapter?.softPrompt || firstRow.has(r.adapter)) continue;
    firstRow.set(r.adapter, stacked);
    stacked += r.adapter.metadata.promptLength;
  }
  // At least one row: the graph's prompt Gather reads row 0 for token positions.
  const promptRows = new Float32Array(Math.max(1, stacked) * dims.embedDim);
  for (const [adapter, first] of firstRow) promptRows.set(adapter.softPrompt!, first * dims.embedDim);
  const ids = new BigInt64Array(rows.length * seq);
  rows.forEach((r, b) => {
    let at = b * seq;
    const first = r.adapter ? firstRow.get(r.adapter) : undefined;
    if (first !== undefined) {
      for (let j = 0; j < r.adapter!.metadata.promptLength; j++) ids[at++] = BigInt(V + first + j);
    }
    for (const id of r.ids) {
      if (!(id >= 0 && id < V)) throw new RangeError(`token id ${id} is outside the vocabulary [0, ${V})`);
      ids[at++] = BigInt(id);
    }
  });
  return { ids, promptRows };
}
