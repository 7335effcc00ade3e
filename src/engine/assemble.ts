/**
 * Turns a batch of rows (each with its own prepared adapter) into the backbone's inputs: soft
 * prompts in front of token rows for prompt-variant rows, key/value prefixes for prefix-variant
 * rows. A batch that holds any prefix row runs the prefix graph; its other rows get a fully masked
 * prefix, which contributes exactly nothing (their keys carry the −1e9 bias), so prompt and prefix
 * rows of different tasks share one backbone pass.
 */
import { lookupEmbeddings, type BackboneBatch } from "../backbone/backbone.js";
import type { BackboneDims } from "../backbone/dims.js";
import { packingFromLengths, type GraphLayout } from "../backbone/packing.js";
import type { PreparedAdapter } from "../adapters/prepared.js";

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
  layout: GraphLayout = "padded",
): AssembledBatch {
  const D = dims.embedDim;
  const B = rows.length;
  const lengths = rows.map((r) => rowLength(r.adapter, r.ids.length));
  const seq = Math.max(1, ...lengths);
  const inputsEmbeds = new Float32Array(B * seq * D);
  const attentionMask = new BigInt64Array(B * seq);
  rows.forEach((r, b) => {
    let offset = b * seq;
    if (r.adapter?.softPrompt) {
      inputsEmbeds.set(r.adapter.softPrompt, offset * D);
      offset += r.adapter.metadata.promptLength;
    }
    lookupEmbeddings(table, D, r.ids, inputsEmbeds, offset);
    attentionMask.fill(1n, b * seq, b * seq + lengths[b]);
  });
  const batch: BackboneBatch = { batch: B, seq, inputsEmbeds, attentionMask, outputs: ["pooled"] };
  if (layout === "packed") batch.packing = packingFromLengths(lengths, seq);
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
