/**
 * The engine behind the HTTP layer: tokenize → take the task's prepared adapter → queue rows →
 * batches across tasks run in the inference worker → each row's pooled state through its own head.
 */
import { loadBackboneAssets, tokenBatch, type BackboneAssets, type BackboneOutputName } from "../backbone/backbone.js";
import type { DeviceInfo, DeviceSetting, Precision } from "../backbone/device.js";
import { SktError } from "../errors.js";
import type { SktMetrics } from "../metrics.js";
import type { AdapterMetadata } from "../adapters/format.js";
import { applyHead, isFiniteOutput, type PreparedAdapter } from "../adapters/prepared.js";
import { AdapterRegistry } from "../adapters/registry.js";
import { parameterCount } from "../adapters/spec.js";
import { AdapterStore } from "../adapters/store.js";
import { assembleBatch, rowLength } from "./assemble.js";
import { BatchLog } from "./batch-log.js";
import { Batcher, type QueuedRow } from "./batcher.js";
import { InferenceWorker } from "./inference-worker.js";
import { recordAnswer, recordShadow } from "./traffic-record.js";
import type {
  AdapterDetails,
  ClassifyRequest,
  ClassifyResult,
  EmbedRequest,
  EmbedResult,
  InferenceService,
  PageRequest,
  Prediction,
  TaskInfo,
  TaskPage,
  TrafficSplit,
  TrafficState,
} from "./service.js";

export interface EngineOptions {
  modelsDir: string;
  /** A Hugging Face folder to serve instead of the embedded USE-lite. */
  model?: string;
  adaptersDir: string;
  threads: number;
  device: DeviceSetting;
  /** Default fp32 (see device.ts checkPrecision). */
  precision?: Precision;
  maxBatchSize: number;
  maxBatchTokens: number;
  maxWaitMs: number;
  /** See BatcherLimits.maxPaddingRatio. */
  maxPaddingRatio: number;
  queueSize: number;
  cacheBytes: number;
  maxAdapterParams: number;
  maxUploadBytes: number;
  /** Debug switch: false re-runs the semantic pass for every request (benchmarks what caching buys). */
  semanticCache: boolean;
  /** Batches handed to the worker at once (see Batcher.schedule); default 2. */
  maxInFlightBatches?: number;
  /** Debug: file to append every batch to (see batch-log.ts). */
  batchLog?: string;
  /** Default deadline when a request gives none. */
  requestTimeoutMs: number;
  /** Prepare this many recently used tasks in the background after start-up (never delays readiness). */
  warmTasks?: number;
  metrics?: SktMetrics;
  /** Largest |value| an adapter tensor may hold (default MAX_ABS_TENSOR_VALUE; tests lift it to reach the probe). */
  maxAbsAdapterValue?: number;
  /** The adapter store to use instead of `new AdapterStore(adaptersDir)` (tests inject a failing disk). */
  store?: AdapterStore;
  log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
}

/** Text of the probe pass (any ordinary sentence does). */
const PROBE_TEXT = "a short ordinary sentence to check the adapter's outputs";

interface Row extends QueuedRow {
  /** null for /embed rows: the backbone alone. */
  adapter: PreparedAdapter | null;
  ids: number[];
  typeIds?: number[];
  /** The graph output this row needs (pooled for adapters' heads). */
  output: BackboneOutputName;
  resolve(vector: Float32Array): void;
}

/** Rows of another adapter that ride along with a request's rows (the shadow): pushed in the same
 * step, never failing the request; `settle` gets their vectors, or null when they did not run. */
interface RideAlong {
  adapter: PreparedAdapter;
  sequences: number[][];
  typeIds: (number[] | undefined)[];
  settle(vectors: Float32Array[] | null): void;
}

export class Engine implements InferenceService {
  private closed = false;

  private constructor(
    private readonly opts: EngineOptions,
    readonly assets: BackboneAssets,
    readonly worker: InferenceWorker,
    readonly registry: AdapterRegistry,
    private readonly batcher: Batcher<Row>,
    private readonly batchLog: BatchLog | null,
  ) {}

  static async create(opts: EngineOptions): Promise<Engine> {
    const assets = await loadBackboneAssets(opts.modelsDir, (m) => opts.log?.("info", m), opts.model);
    const worker = new InferenceWorker({
      modelsDir: opts.modelsDir,
      backboneDir: assets.dir,
      threads: opts.threads,
      device: opts.device,
      precision: opts.precision ?? "fp32",
    });
    worker.on("restarting", (n) => opts.log?.("error", "inference worker died; restarting", { restarts: n }));
    worker.on("ready", (d: DeviceInfo) => {
      opts.metrics?.deviceInfo.reset();
      opts.metrics?.deviceInfo.set({ device: d.device, requested: d.requested, adapter: d.adapter ?? "" }, 1);
      opts.log?.("info", `backbone on ${d.device}${d.adapter ? ` (${d.adapter})` : ""}: ${d.reason}`, {
        device: d.device,
        adapter: d.adapter,
        requested: d.requested,
      });
    });
    await worker.start();
    // The registry's probe and the batcher call back into the engine they are built for (after construction).
    const ref: { engine?: Engine } = {};
    const registry = new AdapterRegistry({
      store: opts.store ?? new AdapterStore(opts.adaptersDir),
      dims: assets.dims,
      fingerprint: assets.fingerprint,
      tokenizer: assets.tokenizer,
      semanticPass: async (ids) => {
        const { outputs } = await worker.run(
          tokenBatch(assets.embeddings, assets.dims.embedDim, [ids], ["last_hidden_state"]),
        );
        return outputs.last_hidden_state!;
      },
      cacheBytes: opts.cacheBytes,
      maxParameters: opts.maxAdapterParams,
      maxUploadBytes: opts.maxUploadBytes,
      maxAbsValue: opts.maxAbsAdapterValue,
      probe: (adapter) => ref.engine!.probe(adapter),
      metrics: opts.metrics,
      log: opts.log,
    });
    const batcher = new Batcher<Row>(
      opts,
      (rows) => ref.engine!.runBatch(rows),
      opts.maxInFlightBatches ?? 2,
      (depth) => opts.metrics?.queueDepth.set(depth),
    );
    const engine: Engine = (ref.engine = new Engine(
      opts,
      assets,
      worker,
      registry,
      batcher,
      opts.batchLog ? BatchLog.open(opts.batchLog) : null,
    ));
    await registry.init();
    const warming = engine;
    if (opts.warmTasks) void registry.warmUp(opts.warmTasks, () => warming.closed);
    return engine;
  }

  isReady(): boolean {
    return !this.closed && this.worker.isReady();
  }

  deviceInfo(): DeviceInfo | null {
    return this.worker.deviceInfo;
  }

  hasTask(task: string): boolean {
    return this.registry.hasTask(task);
  }

  get queueDepth(): number {
    return this.batcher.depth;
  }

  async classify(req: ClassifyRequest): Promise<ClassifyResult> {
    if (!this.isReady())
      throw new SktError(
        "not_ready",
        "not_ready",
        "the backbone is not loaded or the inference worker is restarting; retry shortly",
      );
    const started = performance.now();
    // The traffic split (adapters/traffic.ts) picks the version that answers, and a shadow.
    const route = this.opts.semanticCache
      ? await this.registry.route(req.task, req.texts.length)
      : { adapter: await this.registry.prepareUncached(req.task), role: "current" as const, shadow: null };
    const adapter = route.adapter;
    const meta = adapter.metadata;
    if (req.pairs && !meta.textPair)
      throw new SktError(
        "bad_request",
        "pair_not_supported",
        `task "${req.task}" takes single texts; remove text_pair/text_pairs`,
      );
    if (!req.pairs && meta.textPair)
      throw new SktError(
        "bad_request",
        "pair_required",
        `task "${req.task}" classifies text pairs; send text_pair/text_pairs too`,
      );
    if (req.pairs && req.pairs.length !== req.texts.length)
      throw new SktError(
        "bad_request",
        "pair_count_mismatch",
        `${req.texts.length} texts but ${req.pairs.length} pairs`,
      );

    const encoded = req.texts.map((t, i) =>
      req.pairs
        ? this.assets.tokenizer.encodePair(t, req.pairs[i], adapter.textBudget)
        : this.assets.tokenizer.encode(t, adapter.textBudget),
    );
    const deadline = req.deadline ?? Date.now() + this.opts.requestTimeoutMs;
    const shadow = route.shadow;
    let shadowVectors: Promise<Float32Array[] | null> = Promise.resolve(null);
    let rideAlong: RideAlong | undefined;
    if (shadow) {
      // The shadow may cut texts at another length; the pair setting is the same (registry.setTraffic).
      const forShadow =
        shadow.textBudget === adapter.textBudget
          ? encoded
          : req.texts.map((t, i) =>
              req.pairs
                ? this.assets.tokenizer.encodePair(t, req.pairs[i], shadow.textBudget)
                : this.assets.tokenizer.encode(t, shadow.textBudget),
            );
      shadowVectors = new Promise((settle) => {
        rideAlong = {
          adapter: shadow,
          sequences: forShadow.map((e) => e.ids),
          typeIds: forShadow.map((e) => e.typeIds),
          settle,
        };
      });
    }
    const pooled = await this.runRows(
      adapter,
      "pooled",
      encoded.map((e) => e.ids),
      deadline,
      req.signal,
      encoded.map((e) => e.typeIds),
      rideAlong,
    );
    const predictions: Prediction[] = pooled.map((p, i) => ({
      ...applyHead(adapter, p),
      tokens: encoded[i].ids.length,
      truncated: encoded[i].truncated,
    }));
    // Uploads are probed, so this is a bug if it happens: say so instead of answering null scores.
    if (!predictions.every(isFiniteOutput))
      throw new SktError(
        "internal",
        "non_finite_output",
        `task "${req.task}" v${adapter.version} produced a non-finite score`,
      );
    const seconds = (performance.now() - started) / 1000;
    recordAnswer(this.registry, this.opts.metrics, req.task, adapter, route.role, predictions, seconds);
    if (shadow)
      void shadowVectors.then((vectors) => {
        if (vectors === null) this.registry.recordShadowSkipped(req.task, shadow.version, predictions.length);
        else
          recordShadow(
            this.registry,
            this.opts.metrics,
            req.task,
            shadow,
            vectors.map((v) => applyHead(shadow, v)),
            predictions,
          );
      });
    return { task: req.task, adapterVersion: adapter.version, predictions };
  }

  /**
   * The probe pass for an upload or rollback: one text through the backbone with the prepared
   * adapter, and its head. Values within the tensor bound should always give finite outputs; this
   * makes sure, since a non-finite pooled state or score can only be answered with an error. It
   * goes to the worker directly, like the semantic pass: not a client's row, so not in the queue,
   * the batch metrics or the batch log.
   */
  private async probe(adapter: PreparedAdapter): Promise<void> {
    const ids = this.assets.tokenizer.encode(PROBE_TEXT, adapter.textBudget).ids;
    const { batch } = assembleBatch([{ adapter, ids }], this.assets.embeddings, this.assets.dims);
    const pooled = (await this.worker.run(batch)).outputs.pooled!;
    if (!pooled.every(Number.isFinite) || !isFiniteOutput(applyHead(adapter, pooled))) {
      throw new SktError(
        "invalid_adapter",
        "non_finite_output",
        `the adapter's probe pass gave non-finite outputs (its values overflow inside the backbone); retrain it with smaller weights`,
      );
    }
  }

  async embed(req: EmbedRequest): Promise<EmbedResult> {
    if (!this.isReady())
      throw new SktError(
        "not_ready",
        "not_ready",
        "the backbone is not loaded or the inference worker is restarting; retry shortly",
      );
    const encoded = req.texts.map((t) => this.assets.tokenizer.encode(t, this.assets.dims.maxPositions));
    const deadline = req.deadline ?? Date.now() + this.opts.requestTimeoutMs;
    const vectors = await this.runRows(
      null,
      this.assets.sentenceOutput,
      encoded.map((e) => e.ids),
      deadline,
      req.signal,
    );
    return {
      model: this.assets.name,
      embeddings: req.normalize ? vectors.map(l2Normalized) : vectors,
      tokens: encoded.map((e) => e.ids.length),
    };
  }

  /**
   * Queues one row per token sequence and settles when all have run (or the first fails). The
   * `rideAlong` rows are queued in the same push (so they share the batch window) but do not hold
   * up or fail the answer: when the queue has no room for them too, they are left out.
   */
  private runRows(
    adapter: PreparedAdapter | null,
    output: BackboneOutputName,
    sequences: number[][],
    deadline: number,
    signal?: AbortSignal,
    typeIds?: (number[] | undefined)[],
    rideAlong?: RideAlong,
  ): Promise<Float32Array[]> {
    return new Promise<Float32Array[]>((resolve, reject) => {
      const results = new Array<Float32Array>(sequences.length);
      let remaining = sequences.length;
      let settled = false;
      const finish = (e: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        if (e) {
          this.batcher.remove([...rows, ...extra]);
          settleExtra(null);
          reject(e);
        } else resolve(results);
      };
      const now = Date.now();
      const rows: Row[] = sequences.map((ids, i) => ({
        adapter,
        ids,
        typeIds: typeIds?.[i],
        output,
        length: rowLength(adapter, ids.length),
        enqueuedAt: now,
        deadline,
        reject: (e) => finish(e),
        resolve: (vector) => {
          results[i] = vector;
          if (--remaining === 0) finish(null);
        },
      }));
      const extraResults = new Array<Float32Array>(rideAlong?.sequences.length ?? 0);
      let extraRemaining = extraResults.length;
      let extraSettled = false;
      const settleExtra = (vectors: Float32Array[] | null) => {
        if (extraSettled || !rideAlong) return;
        extraSettled = true;
        rideAlong.settle(vectors);
      };
      const extra: Row[] = (rideAlong?.sequences ?? []).map((ids, i) => ({
        adapter: rideAlong!.adapter,
        ids,
        typeIds: rideAlong!.typeIds[i],
        output,
        length: rowLength(rideAlong!.adapter, ids.length),
        enqueuedAt: now,
        deadline,
        reject: () => settleExtra(null),
        resolve: (vector) => {
          extraResults[i] = vector;
          if (--extraRemaining === 0) settleExtra(extraResults);
        },
      }));
      // The caller's reason (client gone, or its deadline) says what happened; a bare abort is a cancellation.
      const onAbort = () =>
        finish(
          signal?.reason instanceof SktError
            ? signal.reason
            : new SktError("client_closed", "cancelled", "the client cancelled the request"),
        );
      const timer = setTimeout(
        () =>
          finish(new SktError("timeout", "deadline_exceeded", "the request's deadline passed before it was answered")),
        Math.max(0, deadline - now),
      );
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      try {
        try {
          this.batcher.push([...rows, ...extra]);
        } catch (e) {
          if (extra.length === 0) throw e;
          settleExtra(null); // no room for the ride-along rows: the request alone
          this.batcher.push(rows);
        }
      } catch (e) {
        finish(e as Error);
      }
    });
  }

  private async runBatch(rows: Row[]): Promise<void> {
    const m = this.opts.metrics;
    const started = Date.now();
    for (const r of rows) m?.queueDuration.observe((started - r.enqueuedAt) / 1000);
    const { batch, realTokens, paddedTokens } = assembleBatch(rows, this.assets.embeddings, this.assets.dims);
    batch.outputs = [...new Set(rows.map((r) => r.output))];
    this.batchLog?.write(
      rows.filter((r) => r.adapter).map((r) => ({ task: r.adapter!.task, version: r.adapter!.version, ids: r.ids })),
    );
    try {
      const { outputs, runMs } = await this.worker.run(batch);
      rows.forEach((r, b) => {
        const all = outputs[r.output]!;
        const width = all.length / rows.length; // every output the engine reads is [batch, width]
        r.resolve(all.slice(b * width, (b + 1) * width));
      });
      m?.inferenceDuration.observe(runMs / 1000);
      m?.batchSize.observe(rows.length);
      m?.batchTokens.observe(realTokens + paddedTokens);
      m?.tokens.inc({ kind: "real" }, realTokens);
      m?.tokens.inc({ kind: "padding" }, paddedTokens);
    } catch (e) {
      for (const r of rows) r.reject(e as Error);
    }
  }

  async listTasks(page: PageRequest): Promise<TaskPage> {
    const { tasks, total, last } = this.registry.page(page.after, page.limit, page.match);
    return {
      tasks: tasks.map((t) => ({
        task: t.task,
        version: t.version,
        variant: t.variant,
        pooling: t.pooling,
        labels: t.labels,
        problemType: t.problemType,
        promptText: t.promptText,
        maxLength: t.maxLength,
        parameters: t.parameters,
        labelCount: t.labelCount,
        truncated: t.truncated,
      })),
      total,
      last,
    };
  }

  async adapterDetails(task: string): Promise<AdapterDetails> {
    const current = this.registry.currentVersion(task);
    const stored = await this.registry.versions(task);
    if (current === null && stored.length === 0)
      throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
    const versions = [];
    for (const v of stored)
      versions.push({ ...v, current: v.version === current, metadata: await this.registry.metadata(task, v.version) });
    return { task, current, versions };
  }

  async upload(task: string, bytes: Uint8Array): Promise<TaskInfo> {
    const prepared = await this.registry.installAdapter(task, bytes);
    return taskInfo(task, prepared.version, prepared.metadata, this.assets, prepared.parameters);
  }

  async rollback(task: string, version?: number): Promise<TaskInfo> {
    const prepared = await this.registry.rollback(task, version);
    return taskInfo(task, prepared.version, prepared.metadata, this.assets, prepared.parameters);
  }

  async deleteTask(task: string): Promise<void> {
    await this.registry.delete(task);
  }

  async trafficState(task: string): Promise<TrafficState> {
    return this.registry.trafficState(task);
  }

  async setTraffic(task: string, split: TrafficSplit): Promise<TrafficState> {
    return this.registry.setTraffic(task, split);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.batcher.drain();
    this.closed = true;
    await this.worker.close();
    await this.batchLog?.close();
    await this.registry.close();
  }
}

function taskInfo(
  task: string,
  version: number,
  meta: AdapterMetadata,
  assets: BackboneAssets,
  parameters?: number,
): TaskInfo {
  return {
    task,
    version,
    variant: meta.variant,
    pooling: meta.pooling,
    labels: meta.labels,
    problemType: meta.problemType,
    promptText: meta.promptText,
    maxLength: meta.maxLength,
    parameters: parameters ?? parameterCount(meta, assets.dims),
  };
}

function l2Normalized(v: Float32Array): Float32Array {
  let sumSq = 0;
  for (const x of v) sumSq += x * x;
  const norm = Math.sqrt(sumSq);
  return norm > 0 ? v.map((x) => x / norm) : v;
}
