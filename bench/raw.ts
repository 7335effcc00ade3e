/**
 * The raw backbone baseline: the same onnxruntime graphs the server's worker runs, driven directly
 * in this process with the same thread count, on the same token batches the server would form.
 * Batches are reconstructed by driving the server's own Batcher with the closed loop's arrival
 * pattern, and assembled with the server's own assembleBatch, so only the serving overhead differs.
 */
import { BackboneRunner, loadBackboneAssets, tokenBatch, type BackboneAssets, type BackboneBatch } from "../src/backbone/backbone.js";
import type { AdapterFile } from "../src/adapters/format.js";
import { prepareAdapter, type PreparedAdapter } from "../src/adapters/prepared.js";
import { assembleBatch, rowLength, type BatchRow } from "../src/engine/assemble.js";
import { Batcher, type QueuedRow } from "../src/engine/batcher.js";
import { MODELS_DIR, median, THREADS } from "./lib.js";

export interface Raw {
  assets: BackboneAssets;
  runner: BackboneRunner;
  release(): Promise<void>;
}

export async function openRaw(threads = THREADS): Promise<Raw> {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const runner = await BackboneRunner.create(MODELS_DIR, { threads });
  return { assets, runner, release: () => runner.release() };
}

/** The adapter as the server prepares it: semantic pass over the prompt, then F. */
export async function prepareLocal(raw: Raw, file: AdapterFile): Promise<PreparedAdapter> {
  const ids = raw.assets.tokenizer.ids(file.metadata.promptText);
  const { last_hidden_state } = await raw.runner.run(tokenBatch(raw.assets.embeddings, raw.assets.dims.embedDim, [ids], ["last_hidden_state"]));
  return prepareAdapter(file, 1, last_hidden_state!, raw.assets.dims);
}

/** Token ids of `text` as the engine encodes it for `adapter` (capped at its text budget). */
export function encodeFor(raw: Raw, adapter: PreparedAdapter, text: string): number[] {
  return raw.assets.tokenizer.encode(text, adapter.textBudget).ids;
}

export interface ServerBatchLimits {
  maxBatchSize: number;
  maxBatchTokens: number;
}

/**
 * The batches the server forms under a closed loop of `concurrency` single-row requests sent in
 * `rows` order: the real Batcher starts with `concurrency` rows queued and, after each batch, gets
 * as many new rows as the batch answered (its clients' next requests), after the next dispatch.
 */
export async function serverLikeBatches(rows: BatchRow[], limits: ServerBatchLimits, concurrency: number): Promise<BatchRow[][]> {
  type Row = BatchRow & QueuedRow;
  const out: BatchRow[][] = [];
  let next = 0;
  let pending = rows.length;
  let done!: () => void;
  const finished = new Promise<void>((r) => (done = r));
  const make = (): Row => {
    const r = rows[next++];
    return { ...r, length: rowLength(r.adapter, r.ids.length), enqueuedAt: Date.now(), deadline: Date.now() + 3_600_000, reject: () => undefined };
  };
  const batcher = new Batcher<Row>({ maxPaddingRatio: Number(process.env.SKT_MAX_PADDING_RATIO ?? 0.25), ...limits, maxWaitMs: 0, queueSize: concurrency + limits.maxBatchSize }, async (batch) => {
    out.push(batch.map(({ adapter, ids }) => ({ adapter, ids })));
    pending -= batch.length;
    if (pending === 0) done();
    setImmediate(() => {
      const refill = Math.min(batch.length, rows.length - next);
      if (refill > 0) batcher.push(Array.from({ length: refill }, make));
    });
  });
  batcher.push(Array.from({ length: Math.min(concurrency, rows.length) }, make));
  await finished;
  return out;
}

export interface RawThroughput {
  sentencesPerSec: number;
  realTokensPerSec: number;
  paddingShare: number;
  meanBatchSize: number;
  runs: number;
}

/** Runs the prebuilt batches in a cycle for `durationMs` (after one warm-up pass); times only `run`. */
export async function rawThroughput(raw: Raw, batches: BatchRow[][], durationMs: number): Promise<RawThroughput> {
  const built = batches.map((rows) => ({ rows: rows.length, ...assembleBatch(rows, raw.assets.embeddings, raw.assets.dims) }));
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
  return { sentencesPerSec: sentences / (ms / 1000), realTokensPerSec: real / (ms / 1000), paddingShare: padded / (real + padded), meanBatchSize: sentences / runs, runs };
}

/** Median ms of `run` on one fixed batch, `count` times (after a warm-up run). */
export async function rawRunMs(raw: Raw, batch: BackboneBatch, count: number, maxMs = 30_000): Promise<{ medianMs: number; timesMs: number[] }> {
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
