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
import { copyPrefixInto, type PreparedAdapter } from "../adapters/prepared.js";
import type { BankedPrefix } from "../backbone/prefix-banks.js";
import { deviceCacheId, prefixUploads, type PrefixSlotTable } from "./device-cache.js";
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

/** What the device adapter cache did for one batch's prefix adapters (only with a slot table). */
export interface DeviceCacheOutcome {
  hits: number;
  misses: number;
  evictions: number;
  /** The adapters could not all be resident: the batch sent its prefixes itself. */
  fallback: boolean;
}

export interface AssembledBatch {
  batch: BackboneBatch;
  realTokens: number;
  paddedTokens: number;
  deviceCache?: DeviceCacheOutcome;
}

/**
 * `layout`: the graphs that will run the batch; packed ones also get their index inputs, from the
 * row lengths. `slotTable` (WebGPU workers with SKT_DEVICE_CACHE_BYTES > 0, token-id graphs): the
 * prefix comes from the worker's device banks instead of being sent (device-cache.ts).
 */
export function assembleBatch(
  rows: readonly BatchRow[],
  table: Float32Array,
  dims: BackboneDims,
  input: GraphInput = "embeds",
  layout: GraphLayout = "padded",
  slotTable: PrefixSlotTable | null = null,
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
  let deviceCache: DeviceCacheOutcome | undefined;
  if (rows.some((r) => r.adapter?.prefix)) {
    const mask = new BigInt64Array(B * P);
    rows.forEach((r, b) => mask.fill(1n, b * P, b * P + (r.adapter?.prefix?.length ?? 0)));
    const banked = slotTable && input === "ids" ? bankedPrefix(rows, P, mask, slotTable, dims) : null;
    if (banked) {
      batch.bankedPrefix = banked.prefix;
      deviceCache = banked.outcome;
    } else {
      const keys = dims.layers.map((l) => new Float32Array(B * l.heads * P * l.headDim));
      const values = dims.layers.map((l) => new Float32Array(B * l.heads * P * l.headDim));
      // Rows shorter than P (and rows without a prefix) stay zero and masked.
      rows.forEach((r, b) => r.adapter?.prefix && copyPrefixInto(r.adapter.prefix, dims, keys, values, b, P));
      batch.prefix = { length: P, keys, values, mask };
      if (slotTable) deviceCache = { hits: 0, misses: 0, evictions: 0, fallback: true };
    }
  }
  const realTokens = lengths.reduce((a, b) => a + b, 0);
  return { batch, realTokens, paddedTokens: B * seq - realTokens, deviceCache };
}

/**
 * The batch's prefix read from the worker's device banks: a slot per row from the table, and the
 * prefixes of the misses to upload. Null when the table cannot hold the batch's adapters.
 */
function bankedPrefix(
  rows: readonly BatchRow[],
  P: number,
  mask: BigInt64Array,
  slotTable: PrefixSlotTable,
  dims: BackboneDims,
): { prefix: BankedPrefix; outcome: DeviceCacheOutcome } | null {
  const byId = new Map<string, PreparedAdapter>();
  for (const r of rows) if (r.adapter?.prefix) byId.set(deviceCacheId(r.adapter), r.adapter);
  const plan = slotTable.plan([...byId].map(([id, a]) => ({ id, length: a.prefix!.length })));
  if (!plan) return null;
  const rowSlots = BigInt64Array.from(rows, (r) =>
    BigInt(r.adapter?.prefix ? plan.slotOf.get(deviceCacheId(r.adapter))! : 0),
  );
  const upload =
    plan.uploads.length === 0
      ? null
      : {
          slots: BigInt64Array.from(plan.uploads, (u) => BigInt(u.slot)),
          ...prefixUploads(
            plan.uploads.map((u) => byId.get(u.id)!),
            plan.pMax,
            dims,
          ),
        };
  return {
    prefix: {
      length: P,
      mask,
      bank: { generation: plan.generation, capacity: plan.capacity, pMax: plan.pMax, rowSlots, upload },
    },
    outcome: { hits: plan.hits, misses: plan.uploads.length, evictions: plan.evictions, fallback: false },
  };
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
