/**
 * The raw backbone baseline: the same onnxruntime graphs the server's worker runs, driven directly
 * in this process with the same thread count, on the same token batches the server ran.
 * The batches are the ones the server logged (SKT_DEBUG_BATCH_LOG) during its measurement window,
 * assembled with the server's own assembleBatch, so only the serving overhead differs.
 */
import { readFile } from "node:fs/promises";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneBatch,
} from "../src/backbone/backbone.js";
import type { AdapterFile } from "../src/adapters/format.js";
import type { Precision } from "../src/backbone/device.js";
import type { PackedSetting } from "../src/backbone/packing.js";
import { prepareAdapter, type PreparedAdapter } from "../src/adapters/prepared.js";
import { assembleBatch, type BatchRow } from "../src/engine/assemble.js";
import { parseBatchLog } from "../src/engine/batch-log.js";
import { MODELS_DIR, median, THREADS } from "./lib.js";

export interface Raw {
  assets: BackboneAssets;
  runner: BackboneRunner;
  release(): Promise<void>;
}

/** `packed`: SKT_PACKED for the raw runner (default auto: the graphs the server serves by default). */
export async function openRaw(
  threads = THREADS,
  precision: Precision = "fp32",
  packed: PackedSetting = "auto",
  /** SKT_ORT_SPINNING; default: the runner's (the server's) default. */
  spinning?: boolean,
): Promise<Raw> {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const runner = await BackboneRunner.create(MODELS_DIR, { threads, precision, packed, spinning });
  return { assets, runner, release: () => runner.release() };
}

/** The adapter as the server prepares it: semantic pass over the prompt, then F. */
export async function prepareLocal(raw: Raw, file: AdapterFile): Promise<PreparedAdapter> {
  const ids = raw.assets.tokenizer.ids(file.metadata.promptText);
  const { last_hidden_state } = await raw.runner.run(
    tokenBatch(raw.assets.embeddings, raw.assets.dims.embedDim, [ids], ["last_hidden_state"]),
  );
  return prepareAdapter(file, 1, last_hidden_state!, raw.assets.dims);
}

/** Token ids of `text` as the engine encodes it for `adapter` (capped at its text budget). */
export function encodeFor(raw: Raw, adapter: PreparedAdapter, text: string): number[] {
  return raw.assets.tokenizer.encode(text, adapter.textBudget).ids;
}

/**
 * The batches the server really ran (its SKT_DEBUG_BATCH_LOG) between two instants, with each
 * row's adapter resolved by task and version; rows of versions not in `adapters` are an error.
 */
export async function loggedBatches(
  logFile: string,
  from: number,
  to: number,
  adapters: Map<string, PreparedAdapter>,
): Promise<BatchRow[][]> {
  const batches = parseBatchLog(await readFile(logFile, "utf8")).filter((b) => b.at >= from && b.at <= to);
  return batches.map((b) =>
    b.rows.map((r) => {
      const adapter = adapters.get(`${r.task}@${r.version}`);
      if (!adapter) throw new Error(`batch log names ${r.task} v${r.version}, which the bench did not prepare`);
      return { adapter, ids: r.ids };
    }),
  );
}

/**
 * The backbone's own limit on this data: every sentence once, sorted by length and cut into full
 * batches of `size` (only the last may be short), so padding is what equal-length neighbours leave.
 * The batches come back in a low-discrepancy order (by the fractional part of i·φ), so that any
 * prefix of the cycle — a window that ends mid-pass on a loaded machine — mixes short and long
 * batches as the whole pass does, instead of favouring the short ones.
 */
export function sortedBatches(adapter: PreparedAdapter, ids: number[][], size: number): BatchRow[][] {
  const sorted = [...ids].sort((a, b) => a.length - b.length);
  const batches: BatchRow[][] = [];
  for (let i = 0; i < sorted.length; i += size)
    batches.push(sorted.slice(i, i + size).map((row) => ({ adapter, ids: row })));
  const spread = (i: number) => (i * 0.6180339887498949) % 1;
  return batches
    .map((b, i) => ({ b, key: spread(i) }))
    .sort((x, y) => x.key - y.key)
    .map((x) => x.b);
}

export interface RawThroughput {
  sentencesPerSec: number;
  realTokensPerSec: number;
  paddingShare: number;
  meanBatchSize: number;
  runs: number;
  meanRunMs: number;
}

/** Runs the prebuilt batches in a cycle for `durationMs` (after one warm-up pass); times only `run`. */
export async function rawThroughput(raw: Raw, batches: BatchRow[][], durationMs: number): Promise<RawThroughput> {
  const built = batches.map((rows) => ({
    rows: rows.length,
    ...assembleBatch(rows, raw.assets.embeddings, raw.assets.dims, raw.runner.input, raw.runner.layout),
  }));
  for (const b of built.slice(0, 2)) await raw.runner.run(b.batch); // warm-up
  let ms = 0;
  let sentences = 0;
  let real = 0;
  let padded = 0;
  let runs = 0;
  for (let k = 0; ms < durationMs && runs < 1_000_000; k = (k + 1) % built.length) {
    const b = built[k];
    const t0 = performance.now();
    await raw.runner.run(b.batch);
    ms += performance.now() - t0;
    sentences += b.rows;
    real += b.realTokens;
    padded += b.paddedTokens;
    runs++;
  }
  return {
    sentencesPerSec: sentences / (ms / 1000),
    realTokensPerSec: real / (ms / 1000),
    paddingShare: padded / (real + padded),
    meanBatchSize: sentences / runs,
    runs,
    meanRunMs: ms / runs,
  };
}

/** Median ms of `run` on one fixed batch, `count` times (after a warm-up run). */
export async function rawRunMs(
  raw: Raw,
  batch: BackboneBatch,
  count: number,
  maxMs = 30_000,
): Promise<{ medianMs: number; timesMs: number[] }> {
  await raw.runner.run(batch);
  const timesMs: number[] = [];
  const until = performance.now() + maxMs;
  for (let i = 0; i < count && performance.now() < until; i++) {
    const t0 = performance.now();
    await raw.runner.run(batch);
    timesMs.push(performance.now() - t0);
  }
  return { medianMs: median(timesMs), timesMs };
}
