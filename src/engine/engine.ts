/**
 * The engine behind the HTTP layer: tokenize → take the task's prepared adapter → queue rows in the
 * batcher (deadline, cancellation) → the runner pulls batches across tasks onto the inference
 * workers → each row's pooled state through its own head.
 */
import { loadBackboneAssets, type BackboneAssets, type BackboneOutputName } from "../backbone/backbone.js";
import type { DeviceInfo } from "../backbone/device.js";
import { DEFAULT_DEVICE_CACHE_BYTES, DEFAULT_SOLO_MAX_QUEUE, type ServerConfig } from "../config.js";
import { SktError } from "../errors.js";
import type { SktMetrics } from "../metrics.js";
import type { AdapterMetadata } from "../adapters/format.js";
import { applyHead, isFiniteOutput, type PreparedAdapter } from "../adapters/prepared.js";
import { AdapterRegistry } from "../adapters/registry.js";
import { parameterCount } from "../adapters/spec.js";
import type { AdapterStore, StoreHealth } from "../adapters/store/interface.js";
import { createAdapterStore } from "../adapters/store/select.js";
import { paddingCost, type GraphLayout } from "../backbone/packing.js";
import { rowLength } from "./assemble.js";
import { BatchLog } from "./batch-log.js";
import { Batcher } from "./batcher.js";
import { InferenceWorker } from "./inference-worker.js";
import { Runner, type Row } from "./runner.js";
import { recordAnswer, recordShadow } from "./traffic-record.js";
import type {
  AdapterDetails,
  ClassifyRequest,
  ClassifyResult,
  EmbedRequest,
  EmbedResult,
  EvaluateRequest,
  InferenceService,
  PageRequest,
  Prediction,
  TaskInfo,
  TaskPage,
  UploadOptions,
  UploadResult,
  TrafficSplit,
  TrafficState,
} from "./service.js";

/**
 * What the engine takes from the server's configuration (see ServerConfig for each field), plus
 * what only embedders and tests set. `Engine.create({ ...config, metrics, log })` is the usual call.
 */
export type EngineOptions = Pick<
  ServerConfig,
  | "modelsDir"
  | "adaptersDir"
  | "threads"
  | "device"
  | "maxBatchSize"
  | "maxBatchTokens"
  | "maxWaitMs"
  | "maxPaddingRatio"
  | "queueSize"
  | "cacheBytes"
  | "maxAdapterParams"
  | "maxUploadBytes"
  | "semanticCache"
  | "requestTimeoutMs"
> &
  Partial<
    Pick<
      ServerConfig,
      | "model"
      | "fusedOps"
      | "shareWeights"
      | "ortSpinning"
      | "inferenceNice"
      | "precision"
      | "packed"
      | "workers"
      | "soloThreads"
      | "soloMaxQueue"
      | "maxInFlightBatches"
      | "batchLog"
      | "warmTasks"
      | "storeUrl"
      | "deviceCacheBytes"
    >
  > & {
    metrics?: SktMetrics;
    /** Largest |value| an adapter tensor may hold (default MAX_ABS_TENSOR_VALUE; tests lift it to reach the probe). */
    maxAbsAdapterValue?: number;
    /** The adapter store to use instead of the one `storeUrl`/`adaptersDir` name (tests inject a failing disk). */
    store?: AdapterStore;
    log?: (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;
  };

/** Rows an evaluation queues at once: live requests wait behind at most this many of its rows. */
export const EVALUATION_CHUNK_ROWS = 8;

/** Text of the probe pass (any ordinary sentence does). */
const PROBE_TEXT = "a short ordinary sentence to check the adapter's outputs";

export class Engine implements InferenceService {
  private closed = false;

  private constructor(
    private readonly opts: EngineOptions,
    readonly assets: BackboneAssets,
    readonly registry: AdapterRegistry,
    private readonly batcher: Batcher<Row>,
    private readonly runner: Runner,
    private readonly batchLog: BatchLog | null,
  ) {}

  /**
   * Builds the pipeline bottom-up, each stage from the ones below it: workers → batcher → runner
   * → registry (whose semantic and probe passes are rows for the same batcher) → engine.
   */
  static async create(opts: EngineOptions): Promise<Engine> {
    const assets = await loadBackboneAssets(opts.modelsDir, (m) => opts.log?.("info", m), opts.model, {
      fusedOps: opts.fusedOps,
      // The graph pairs beyond plain and prefix that these workers may open (built on demand).
      variants: { ids: (opts.device ?? "cpu") !== "cpu", fp16: opts.precision === "fp16" },
    });
    const { workers, solo } = await startWorkers(opts, assets);
    // Workers serve one layout (same build, options and device); it sets what a padding position costs a batch.
    const batcher = new Batcher<Row>({ ...opts, paddingCost: paddingCost(workers[0].layout) }, opts.metrics);
    const batchLog = opts.batchLog ? BatchLog.open(opts.batchLog) : null;
    const runner = new Runner(
      workers,
      batcher,
      {
        assets,
        metrics: opts.metrics,
        batchLog,
        deviceCacheBytes: opts.deviceCacheBytes ?? DEFAULT_DEVICE_CACHE_BYTES,
        log: opts.log,
      },
      opts.maxInFlightBatches ?? 2,
      solo && { worker: solo, maxQueue: opts.soloMaxQueue ?? DEFAULT_SOLO_MAX_QUEUE },
    );
    runner.start();
    const internalPass = (row: Omit<Row, "length">) =>
      batcher
        .submit([{ ...row, length: rowLength(row.adapter, row.ids.length) }], { internal: true })
        .then((r) => r[0]);
    const registry = new AdapterRegistry({
      store:
        opts.store ??
        createAdapterStore({
          store: opts.storeUrl,
          adaptersDir: opts.adaptersDir,
          metricsRegistry: opts.metrics?.registry,
          log: opts.log,
        }),
      dims: assets.dims,
      fingerprint: assets.fingerprint,
      tokenizer: assets.tokenizer,
      semanticPass: (ids) => internalPass({ adapter: null, ids, output: "last_hidden_state" }),
      cacheBytes: opts.cacheBytes,
      maxParameters: opts.maxAdapterParams,
      maxUploadBytes: opts.maxUploadBytes,
      maxAbsValue: opts.maxAbsAdapterValue,
      probe: async (adapter) =>
        checkProbe(
          adapter,
          await internalPass({
            adapter,
            ids: assets.tokenizer.encode(PROBE_TEXT, adapter.textBudget).ids,
            output: "pooled",
          }),
        ),
      metrics: opts.metrics,
      log: opts.log,
    });
    const engine = new Engine(opts, assets, registry, batcher, runner, batchLog);
    await registry.init();
    if (opts.warmTasks) void registry.warmUp(opts.warmTasks, () => engine.closed);
    return engine;
  }

  /** The first inference worker (every worker: `workers`). */
  get worker(): InferenceWorker {
    return this.runner.workers[0];
  }

  get workers(): readonly InferenceWorker[] {
    return this.runner.workers;
  }

  /** Ready while any worker is: with several, one restarting leaves the others serving. */
  isReady(): boolean {
    return !this.closed && this.workers.some((w) => w.isReady());
  }

  deviceInfo(): DeviceInfo | null {
    return this.workers.find((w) => w.deviceInfo)?.deviceInfo ?? null;
  }

  /** The graphs the workers serve: padding-free (`packed`, SKT_PACKED) or padded. */
  graphLayout(): GraphLayout {
    return this.workers[0].layout;
  }

  storeHealth(): StoreHealth {
    return this.registry.storeHealth();
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

    const encoded = this.encodeTexts(req.texts, req.pairs, adapter.textBudget);
    const shadow = route.shadow;
    const { pooled, shadowVectors } = await this.runWithShadow(adapter, encoded, req, shadow);
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
    this.opts.metrics?.quality.record(req.task, adapter, predictions);
    const seconds = (performance.now() - started) / 1000;
    recordAnswer(this.registry, this.opts.metrics, req.task, adapter, route.role, predictions, seconds);
    if (shadow) {
      if (shadowVectors === null) this.registry.recordShadowSkipped(req.task, shadow.version, predictions.length);
      else
        recordShadow(
          this.registry,
          this.opts.metrics,
          req.task,
          shadow,
          shadowVectors.map((v) => applyHead(shadow, v)),
          predictions,
        );
    }
    return { task: req.task, adapterVersion: adapter.version, predictions };
  }

  async embed(req: EmbedRequest): Promise<EmbedResult> {
    if (!this.isReady())
      throw new SktError(
        "not_ready",
        "not_ready",
        "the backbone is not loaded or the inference worker is restarting; retry shortly",
      );
    const encoded = req.texts.map((t) => this.assets.tokenizer.encode(t, this.assets.dims.maxPositions));
    const vectors = await this.runRows(
      null,
      this.assets.sentenceOutput,
      encoded.map((e) => e.ids),
      req,
    );
    return {
      model: this.assets.name,
      embeddings: req.normalize ? vectors.map(l2Normalized) : vectors,
      tokens: encoded.map((e) => e.ids.length),
    };
  }

  /**
   * The answer's vectors and, with a shadow, the shadow's for the same texts. Each shadow row is
   * queued right after its text's answer row in one submission, so the two share batches; the shadow
   * never fails the answer: with no room in the queue for both, the answer runs alone and the
   * shadow's vectors are null (counted as skipped). Room is checked before submitting, in the same
   * tick, so a request that fits alone is not also counted as refused in `skt_queue_dropped_total`.
   */
  private async runWithShadow(
    adapter: PreparedAdapter,
    encoded: { ids: number[]; typeIds?: number[] }[],
    req: ClassifyRequest,
    shadow: PreparedAdapter | null,
  ): Promise<{ pooled: Float32Array[]; shadowVectors: Float32Array[] | null }> {
    const alone = () =>
      this.runRows(
        adapter,
        "pooled",
        encoded.map((e) => e.ids),
        req,
        encoded.map((e) => e.typeIds),
      );
    if (!shadow) return { pooled: await alone(), shadowVectors: null };
    // The shadow may cut texts at another length; the pair setting is the same (registry.setTraffic).
    const forShadow =
      shadow.textBudget === adapter.textBudget ? encoded : this.encodeTexts(req.texts, req.pairs, shadow.textBudget);
    const row = (a: PreparedAdapter, e: { ids: number[]; typeIds?: number[] }): Row => ({
      adapter: a,
      ids: e.ids,
      typeIds: e.typeIds,
      output: "pooled",
      length: rowLength(a, e.ids.length),
    });
    const rows = encoded.flatMap((e, i) => [row(adapter, e), row(shadow, forShadow[i])]);
    if (!this.batcher.hasRoomFor(rows.length)) return { pooled: await alone(), shadowVectors: null };
    const vectors = await this.batcher.submit(rows, { deadline: req.deadline, signal: req.signal });
    return {
      pooled: vectors.filter((_, j) => j % 2 === 0),
      shadowVectors: vectors.filter((_, j) => j % 2 === 1),
    };
  }

  /** Tokenizes each text (with its pair, when the task takes pairs) within an adapter's text budget. */
  private encodeTexts(texts: string[], pairs: string[] | undefined, budget: number) {
    return texts.map((t, i) =>
      pairs ? this.assets.tokenizer.encodePair(t, pairs[i], budget) : this.assets.tokenizer.encode(t, budget),
    );
  }

  /** Queues one row per token sequence; the batcher settles them (deadline, cancellation included). */
  private runRows(
    adapter: PreparedAdapter | null,
    output: BackboneOutputName,
    sequences: number[][],
    req: { deadline?: number; signal?: AbortSignal },
    typeIds?: (number[] | undefined)[],
  ): Promise<Float32Array[]> {
    const rows: Row[] = sequences.map((ids, i) => ({
      adapter,
      ids,
      typeIds: typeIds?.[i],
      output,
      length: rowLength(adapter, ids.length),
    }));
    return this.batcher.submit(rows, { deadline: req.deadline, signal: req.signal });
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
    const staged = new Set(await this.registry.stagedVersions(task));
    const versions = [];
    for (const v of stored)
      versions.push({
        ...v,
        current: v.version === current,
        staged: staged.has(v.version),
        metadata: await this.registry.metadata(task, v.version),
      });
    return { task, current, versions };
  }

  async upload(task: string, bytes: Uint8Array, options: UploadOptions = {}): Promise<UploadResult> {
    const prepared = await this.registry.installAdapter(task, bytes, options);
    const info = taskInfo(task, prepared.version, prepared.metadata, this.assets, prepared.parameters);
    return { ...info, current: this.registry.currentVersion(task) };
  }

  async activate(task: string, version: number, options: { expectCurrent?: number | null } = {}): Promise<TaskInfo> {
    const prepared = await this.registry.activate(task, version, options.expectCurrent);
    return taskInfo(task, prepared.version, prepared.metadata, this.assets, prepared.parameters);
  }

  async deleteVersion(task: string, version: number): Promise<void> {
    await this.registry.deleteVersion(task, version);
  }

  async evaluate(req: EvaluateRequest): Promise<Prediction[]> {
    if (!this.isReady())
      throw new SktError("not_ready", "not_ready", "the backbone is not loaded or the inference worker is restarting");
    const adapter = await this.registry.prepareVersion(req.task, req.version);
    if (Boolean(req.pairs) !== adapter.metadata.textPair)
      throw new SktError(
        "bad_request",
        adapter.metadata.textPair ? "pair_required" : "pair_not_supported",
        `v${req.version} of task "${req.task}" ${adapter.metadata.textPair ? "classifies text pairs" : "takes single texts"}`,
      );
    const out: Prediction[] = [];
    for (let start = 0; start < req.texts.length; start += EVALUATION_CHUNK_ROWS) {
      req.signal?.throwIfAborted();
      const texts = req.texts.slice(start, start + EVALUATION_CHUNK_ROWS);
      const encoded = this.encodeTexts(
        texts,
        req.pairs?.slice(start, start + EVALUATION_CHUNK_ROWS),
        adapter.textBudget,
      );
      const pooled = await this.runRows(
        adapter,
        "pooled",
        encoded.map((e) => e.ids),
        { deadline: Date.now() + this.opts.requestTimeoutMs, signal: req.signal },
        encoded.map((e) => e.typeIds),
      );
      pooled.forEach((p, i) =>
        out.push({ ...applyHead(adapter, p), tokens: encoded[i].ids.length, truncated: encoded[i].truncated }),
      );
      req.onProgress?.(out.length);
      // Let requests that arrived meanwhile reach the queue before the next chunk does.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    return out;
  }

  async readDocument(task: string, name: string): Promise<Uint8Array | null> {
    return this.registry.readDocument(task, name);
  }

  async writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    await this.registry.writeDocument(task, name, bytes);
  }

  async deleteDocument(task: string, name: string): Promise<boolean> {
    return this.registry.deleteDocument(task, name);
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
    await this.runner.stopped();
    await Promise.all(this.workers.map((w) => w.close()));
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

/**
 * The probe pass for an upload or rollback: one text through the backbone with the prepared
 * adapter, and its head. Values within the tensor bound should always give finite outputs; this
 * makes sure, since a non-finite pooled state or score can only be answered with an error.
 */
function checkProbe(adapter: PreparedAdapter, pooled: Float32Array): void {
  if (!pooled.every(Number.isFinite) || !isFiniteOutput(applyHead(adapter, pooled))) {
    throw new SktError(
      "invalid_adapter",
      "non_finite_output",
      `the adapter's probe pass gave non-finite outputs (its values overflow inside the backbone); retrain it with smaller weights`,
    );
  }
}

/**
 * Starts `opts.workers` inference workers and, with `opts.soloThreads`, the solo worker (each loads
 * its own sessions), and counts their restarts. The solo worker is the last in `all`.
 */
async function startWorkers(
  opts: EngineOptions,
  assets: BackboneAssets,
): Promise<{ workers: InferenceWorker[]; solo: InferenceWorker | null }> {
  const worker = (threads: number) =>
    new InferenceWorker({
      modelsDir: opts.modelsDir,
      backboneDir: assets.dir,
      threads,
      device: opts.device,
      precision: opts.precision ?? "fp32",
      packed: opts.packed ?? "auto",
      shareWeights: opts.shareWeights ?? true,
      spinning: opts.ortSpinning ?? true,
      nice: opts.inferenceNice ?? 0,
    });
  const workers = Array.from({ length: opts.workers ?? 1 }, () => worker(opts.threads));
  const solo = (opts.soloThreads ?? 0) > 0 ? worker(opts.soloThreads!) : null;
  const all = solo ? [...workers, solo] : workers;
  all.forEach((worker, index) => {
    worker.on("restarting", (n: number) => {
      opts.metrics?.workerRestarts.inc();
      opts.log?.("error", "inference worker died; restarting", { worker: index, restarts: n });
    });
    worker.on("ready", (d: DeviceInfo) => {
      opts.metrics?.deviceInfo.reset();
      opts.metrics?.deviceInfo.set({ device: d.device, requested: d.requested, adapter: d.adapter ?? "" }, 1);
      opts.log?.("info", `backbone on ${d.device}${d.adapter ? ` (${d.adapter})` : ""}: ${d.reason}`, {
        worker: index,
        ...(worker === solo ? { solo: true, threads: opts.soloThreads } : {}),
        device: d.device,
        adapter: d.adapter,
        requested: d.requested,
        graphs: worker.layout,
      });
    });
  });
  const started = await Promise.allSettled(all.map((w) => w.start()));
  const failed = started.find((r) => r.status === "rejected");
  if (failed) {
    await Promise.all(all.map((w) => w.close()));
    throw failed.reason;
  }
  const onWebGpu = all.filter((w) => w.deviceInfo?.device === "webgpu").length;
  if (onWebGpu > 1)
    opts.log?.(
      "warn",
      `${onWebGpu} inference workers on WebGPU take turns on the device (one at a time per process) and each holds its own copy of the weights in GPU memory; SKT_WORKERS=1 serves as fast with less memory`,
      { workers: onWebGpu },
    );
  return { workers, solo };
}

function l2Normalized(v: Float32Array): Float32Array {
  let sumSq = 0;
  for (const x of v) sumSq += x * x;
  const norm = Math.sqrt(sumSq);
  return norm > 0 ? v.map((x) => x / norm) : v;
}
