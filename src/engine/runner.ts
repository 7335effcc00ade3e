/**
 * The runner (text-embeddings-inference's batching task in shape): owns the inference workers and,
 * for each, `slotsPerWorker` loops that pull the next batch from the batcher whenever they are free,
 * assemble it, run it on their worker and settle every row with its slice of the output. With
 * several workers each takes the next batch as soon as it can, so all of them stay busy.
 *
 * An optional solo worker (SKT_SOLO_THREADS) has all the cores' threads to itself and takes turns
 * with the others instead of running beside them: it takes a batch only while no other worker runs
 * one and at most SKT_SOLO_MAX_QUEUE rows wait (a lone request: one multi-thread run is the
 * fastest answer), and the others take batches only while it runs none and more rows wait, or they
 * are already busy (under load: single-thread workers side by side serve the most).
 * Never both at once, so the cores are never asked for more threads than they have.
 */
import type { BackboneAssets, BackboneOutputName } from "../backbone/backbone.js";
import type { SktMetrics } from "../metrics.js";
import type { PreparedAdapter } from "../adapters/prepared.js";
import { assembleBatch } from "./assemble.js";
import { PrefixSlotTable } from "./device-cache.js";
import { DEVICE_BANKS_UNAVAILABLE } from "../backbone/prefix-banks.js";
import type { BatchLog } from "./batch-log.js";
import type { Batch, Batcher, QueuedRow, Slot } from "./batcher.js";
import type { InferenceWorker } from "./inference-worker.js";

/** One text's (or internal pass's) work for the backbone. */
export interface Row extends QueuedRow {
  /** null for /embed rows and semantic passes: the backbone alone. */
  adapter: PreparedAdapter | null;
  ids: number[];
  typeIds?: number[];
  /** The graph output this row needs (pooled for adapters' heads). */
  output: BackboneOutputName;
}

export interface RunnerDeps {
  assets: BackboneAssets;
  metrics?: SktMetrics;
  batchLog?: BatchLog | null;
  /** SKT_DEVICE_CACHE_BYTES: per WebGPU worker, the budget of its device prefix banks (0: off). */
  deviceCacheBytes?: number;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** The solo worker takes turns only while fewer rows than this, on average, arrive during one of its runs. */
const SOLO_LOAD = 0.5;

/** The solo worker and when it may run (see the file's comment). */
export interface SoloWorker {
  worker: InferenceWorker;
  /** It takes a batch only while at most this many client rows wait (SKT_SOLO_MAX_QUEUE). */
  maxQueue: number;
}

export class Runner {
  /** Every worker the runner drives: the others, then the solo one (when there is one) last. */
  readonly workers: readonly InferenceWorker[];
  /** The solo worker's index in `workers`, or -1. */
  private readonly soloIndex: number;
  private readonly soloMaxQueue: number;
  /** Moving averages over the solo worker's runs: ms per run, and client rows that arrived during one. */
  private soloRunMs = 0;
  private soloArrivalsPerRun = 0;
  /** Batches running (or queued inside) each worker. */
  private readonly busy: number[];
  private readonly loops: Promise<void>[] = [];
  /** Per worker: its device prefix banks' slot table (WebGPU workers on token-id graphs), else null. */
  private readonly slotTables: (PrefixSlotTable | null)[];

  constructor(
    workers: readonly InferenceWorker[],
    private readonly batcher: Batcher<Row>,
    private readonly deps: RunnerDeps,
    /** Batches one worker may hold at once (SKT_MAX_IN_FLIGHT_BATCHES); the solo worker holds one. */
    private readonly slotsPerWorker: number,
    solo: SoloWorker | null = null,
  ) {
    this.workers = solo ? [...workers, solo.worker] : workers;
    this.soloIndex = solo ? workers.length : -1;
    this.soloMaxQueue = solo?.maxQueue ?? 0;
    this.busy = this.workers.map(() => 0);
    this.slotTables = this.workers.map((w) => this.slotTableFor(w));
  }

  /** A fresh table when `worker` (as of its last start) serves on WebGPU with token ids and the budget is set. */
  private slotTableFor(worker: InferenceWorker): PrefixSlotTable | null {
    const budget = this.deps.deviceCacheBytes ?? 0;
    const onDevice = worker.deviceInfo?.device === "webgpu" && worker.graphInput === "ids";
    return onDevice && budget > 0 ? PrefixSlotTable.forDims(budget, this.deps.assets.dims) : null;
  }

  private updateDeviceCacheGauge(): void {
    this.deps.metrics?.deviceCacheBytes.set(this.slotTables.reduce((s, t) => s + (t?.bytes ?? 0), 0));
  }

  /** Starts pulling batches; the loops end once the batcher has been drained. */
  start(): void {
    const anyReady = () => this.workers.some((x) => x.isReady());
    this.batcher.setAvailable(anyReady());
    this.workers.forEach((worker, w) => {
      worker.on("ready", () => {
        // A (re)started worker has no banks: nothing the old table says is resident is there any more.
        this.slotTables[w] = this.slotTableFor(worker);
        this.updateDeviceCacheGauge();
        this.batcher.setAvailable(true);
      });
      worker.on("down", () => this.batcher.setAvailable(anyReady()));
      const slot = {
        ready: () => worker.isReady() && this.mayRun(w),
        idle: () => this.busy[w] === 0,
        // Counted when handed out, not when the loop resumes: the batcher may choose again before that.
        take: () => this.busy[w]++,
      };
      const slots = w === this.soloIndex ? 1 : this.slotsPerWorker;
      for (let s = 0; s < slots; s++) this.loops.push(this.loop(w, slot));
    });
  }

  /** Whether worker `w` may take a batch now as far as the solo worker's turns go (the file's comment). */
  private mayRun(w: number): boolean {
    const solo = this.soloIndex;
    if (solo < 0) return true;
    const othersIdle = this.busy.every((b, i) => i === solo || b === 0);
    // Light traffic only: while few rows arrive during its runs (and so wait for them), as seen over
    // its last runs, or as the arrival rate now predicts (the way back after the others' turn). At
    // ~50 % of saturation on 2 cores too many did and p50 rose by ~5 ms; a client that sends its
    // next request when the answer comes never arrives during a run.
    const expected = this.soloRunMs / this.batcher.arrivalGap();
    const quiet = Math.min(this.soloArrivalsPerRun, expected) < SOLO_LOAD;
    const soloTurn = othersIdle && this.batcher.depth <= this.soloMaxQueue && quiet;
    if (w === solo) return othersIdle && (soloTurn || !this.workers.some((x, i) => i !== solo && x.isReady()));
    return this.busy[solo] === 0 && !(soloTurn && this.workers[solo].isReady());
  }

  /** Resolves when every loop has ended (after the batcher's drain). */
  async stopped(): Promise<void> {
    await Promise.all(this.loops);
  }

  private async loop(w: number, slot: Slot): Promise<void> {
    for (;;) {
      const batch = await this.batcher.next(slot);
      if (!batch) return;
      try {
        await this.execute(w, batch);
      } finally {
        this.busy[w]--;
        this.batcher.done(batch);
      }
    }
  }

  /** `retry`: the batch runs again after its worker's device banks could not open (not logged twice). */
  private async execute(w: number, batchIn: Batch<Row, Float32Array>, retry = false): Promise<void> {
    const { rows, handles, internal } = batchIn;
    const worker = this.workers[w];
    const { assets, metrics: m, batchLog } = this.deps;
    const slotTable = this.slotTables[w];
    let banked = false;
    if (!internal && !retry)
      batchLog?.write(
        rows.filter((r) => r.adapter).map((r) => ({ task: r.adapter!.task, version: r.adapter!.version, ids: r.ids })),
      );
    try {
      // In the form the worker's graphs take: embeddings (CPU) or token ids (WebGPU); see assemble.ts.
      // With a slot table, planned and posted in the same tick: the worker applies the plans in order.
      const { batch, realTokens, paddedTokens, deviceCache } = assembleBatch(
        rows,
        assets.embeddings,
        assets.dims,
        worker.graphInput,
        worker.layout,
        slotTable,
      );
      batch.outputs = [...new Set(rows.map((r) => r.output))];
      banked = batch.bankedPrefix !== undefined;
      if (deviceCache) {
        m?.deviceCacheHits.inc(deviceCache.hits);
        m?.deviceCacheMisses.inc(deviceCache.misses);
        m?.deviceCacheEvictions.inc(deviceCache.evictions);
        if (deviceCache.fallback) m?.deviceCacheFallbacks.inc();
        this.updateDeviceCacheGauge();
      }
      const arrivedBefore = this.batcher.arrivals;
      const { outputs, runMs } = await worker.run(batch);
      if (w === this.soloIndex && !internal) {
        this.soloRunMs = this.soloRunMs === 0 ? runMs : 0.8 * this.soloRunMs + 0.2 * runMs;
        this.soloArrivalsPerRun = 0.8 * this.soloArrivalsPerRun + 0.2 * (this.batcher.arrivals - arrivedBefore);
      }
      rows.forEach((r, b) => {
        const all = outputs[r.output]!;
        const width = all.length / rows.length; // every output the engine reads is [batch, width…]
        handles[b].resolve(all.slice(b * width, (b + 1) * width));
      });
      if (internal) return;
      m?.inferenceDuration.observe(runMs / 1000);
      m?.batchSize.observe(rows.length);
      m?.batchTokens.observe(realTokens + paddedTokens);
      m?.tokens.inc({ kind: "real" }, realTokens);
      m?.tokens.inc({ kind: "padding" }, paddedTokens);
    } catch (e) {
      // The worker drops its banks when a banked run fails (and a batch that never reached it leaves
      // the table ahead of the banks): start the table over, so no later batch reads a missing slot.
      if (banked && this.slotTables[w] === slotTable) {
        if ((e as { code?: string }).code === DEVICE_BANKS_UNAVAILABLE) {
          // The worker's device cannot hold banks: it gets its prefixes sent from now on, this batch too.
          this.slotTables[w] = null;
          this.updateDeviceCacheGauge();
          this.deps.log?.("warn", "device adapter cache off for this worker: its banks could not open", {
            worker: w,
            error: (e as Error).message,
          });
          return this.execute(w, batchIn, true);
        }
        slotTable?.clear();
        this.updateDeviceCacheGauge();
      }
      for (const h of handles) h.reject(e as Error);
    }
  }
}
