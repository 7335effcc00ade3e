/**
 * Prometheus metrics. Every `createMetrics()` call builds its OWN `Registry` (never prom-client's
 * global one), so tests and embedded uses can create as many as they like without name clashes.
 *
 * Who updates what: the server updates `requests`, `requestDuration` and `uploads`; the engine
 * updates everything else (queue, batches, tokens, semantic passes, adapter cache, loads).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { DEFAULT_QUALITY, PredictionQuality, type QualityOptions } from "./quality.js";

/** Label value used for task names that are invalid or not currently served. */
export const UNKNOWN_TASK_LABEL = "__unknown__";
/**
 * Served tasks that get a label value of their own; tasks beyond this share OTHER_TASKS_LABEL, so
 * the per-task series (requests, durations, semantic passes) stay bounded however many tasks exist.
 */
export const MAX_TASK_LABELS = 200;
export const OTHER_TASKS_LABEL = "__other__";
/** A task's labels beyond this many share OTHER_LABELS_LABEL in the per-version label counts. */
export const MAX_LABEL_VALUES = 20;
export const OTHER_LABELS_LABEL = "__other__";

type TrafficLabels = "task" | "version" | "role";

export interface SktMetrics {
  registry: Registry;
  /** `skt_requests_total{task,status}` — `/classify` requests by task and HTTP status code. */
  requests: Counter<"task" | "status">;
  /** `skt_request_duration_seconds{task}` — `/classify` wall time, from first byte to response. */
  requestDuration: Histogram<"task">;
  /** `skt_queue_duration_seconds` — time a text waited in the queue before its batch started. */
  queueDuration: Histogram;
  /** `skt_inference_duration_seconds` — one backbone pass (per batch). */
  inferenceDuration: Histogram;
  /** `skt_batch_size` — rows per batch. */
  batchSize: Histogram;
  /** `skt_batch_tokens` — padded tokens per batch (rows × longest row). */
  batchTokens: Histogram;
  /** `skt_queue_depth` — texts waiting right now. */
  queueDepth: Gauge;
  /** `skt_queue_dropped_total{reason}` — rows that left the queue (or were refused) without running, by reason (see DROP_REASONS). */
  queueDropped: Counter<"reason">;
  /** `skt_worker_restarts_total` — inference workers restarted after dying. */
  workerRestarts: Counter;
  /** `skt_tokens_total{kind="real"|"padding"}`. */
  tokens: Counter<"kind">;
  /** `skt_semantic_passes_total{task}` — semantic passes actually computed (cache misses). */
  semanticPasses: Counter<"task">;
  cacheHits: Counter;
  cacheMisses: Counter;
  cacheEvictions: Counter;
  /** `skt_adapter_cache_bytes` — bytes held by prepared adapters. */
  cacheBytes: Gauge;
  /** `skt_adapters_loaded` — prepared adapters in memory. */
  adaptersLoaded: Gauge;
  /** `skt_adapter_load_duration_seconds` — read + validate + prepare one adapter version. */
  adapterLoadDuration: Histogram;
  /** `skt_adapters_invalid_total{code}` — stored adapter versions found unservable at first use (by validation code). */
  adaptersInvalid: Counter<"code">;
  /** `skt_uploads_total{outcome="ok"|"invalid"|"error"|"client_closed"}`. */
  uploads: Counter<"outcome">;
  /** The `task` label value for a served task: its name, or OTHER_TASKS_LABEL past MAX_TASK_LABELS. */
  taskLabel(task: string): string;
  /** Removes every series labelled with a deleted task and frees its label value. */
  forgetTask(task: string): Promise<void>;
  /**
   * Per-version series, only for tasks with a traffic split (canary or shadow) and only for their
   * current, canary and shadow versions (`forgetTrafficSeries` drops the rest when a split changes):
   * `skt_traffic_requests_total{task,version,role}` requests answered, role current|canary;
   */
  trafficRequests: Counter<TrafficLabels>;
  /** `skt_traffic_rows_total{task,version,role}` rows scored, role current|canary|shadow; */
  trafficRows: Counter<TrafficLabels>;
  /** `skt_traffic_duration_seconds{task,version,role}` engine time per request (tokenize, queue, run, head); */
  trafficDuration: Histogram<TrafficLabels>;
  /** `skt_traffic_labels_total{task,version,role,label}` top labels given (shadow included); */
  trafficLabels: Counter<TrafficLabels | "label">;
  /** `skt_traffic_shadow_compared_total{task,version}` / `…_agreed_total` shadow rows next to the current's answer; */
  shadowCompared: Counter<"task" | "version">;
  shadowAgreed: Counter<"task" | "version">;
  /** `skt_traffic_shadow_agreement_ratio{task,version}` agreed / compared since the split was set. */
  shadowAgreement: Gauge<"task" | "version">;
  /** Removes the traffic series of `task` whose version is not in `keep`. */
  forgetTrafficSeries(task: string, keep: readonly number[]): Promise<void>;
  /** `skt_device_info{device,requested,adapter}` — 1 for the device the backbone runs on. */
  deviceInfo: Gauge<"device" | "requested" | "adapter">;
  /** `skt_device_cache_bytes` — device memory held by the adapter prefix banks of the WebGPU workers (SKT_DEVICE_CACHE_BYTES). */
  deviceCacheBytes: Gauge;
  /** `skt_device_cache_hits_total` / `…_misses_total` — a batch's prefix adapter found in / uploaded to its worker's banks; */
  deviceCacheHits: Counter;
  deviceCacheMisses: Counter;
  /** `skt_device_cache_evictions_total` — adapters dropped from the banks to make room (or by a longer prefix re-creating them); */
  deviceCacheEvictions: Counter;
  /** `skt_device_cache_fallbacks_total` — batches that sent their prefixes themselves (the adapters did not fit the budget at once). */
  deviceCacheFallbacks: Counter;
  /** What the classifiers answer per task: predictions by label, winning score, low-confidence share, drift. */
  quality: PredictionQuality;
}

export interface CreateMetricsOptions {
  /** Also collect prom-client's process/runtime metrics (default true). */
  collectDefaults?: boolean;
  /** Prefix for the process default metrics only; the `skt_*` names are fixed. */
  prefix?: string;
  /** Window, threshold and label bound of the quality metrics (SKT_QUALITY_WINDOW, …). */
  quality?: Partial<QualityOptions>;
}

/** Why a text left the queue without running (the `reason` label of `skt_queue_dropped_total`). */
export const QUEUE_DROP_REASONS = [
  "queue_full",
  "deadline",
  "cancelled",
  "request_failed",
  "no_worker",
  "shutting_down",
] as const;
export type QueueDropReason = (typeof QUEUE_DROP_REASONS)[number];

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const QUEUE_BUCKETS = [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10];
const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128];
const BATCH_TOKEN_BUCKETS = [16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];
const LOAD_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export function createMetrics(opts: CreateMetricsOptions = {}): SktMetrics {
  const registry = new Registry();
  if (opts.collectDefaults ?? true) {
    collectDefaultMetrics({ register: registry, ...(opts.prefix ? { prefix: opts.prefix } : {}) });
  }
  const registers = [registry];
  const labelledTasks = new Set<string>();
  const metrics: SktMetrics = {
    registry,
    requests: new Counter({
      name: "skt_requests_total",
      help: "Classification requests by task and HTTP status code.",
      labelNames: ["task", "status"] as const,
      registers,
    }),
    requestDuration: new Histogram({
      name: "skt_request_duration_seconds",
      help: "Classification request duration in seconds.",
      labelNames: ["task"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    queueDuration: new Histogram({
      name: "skt_queue_duration_seconds",
      help: "Time a text waited in the queue before its batch started, in seconds.",
      buckets: QUEUE_BUCKETS,
      registers,
    }),
    inferenceDuration: new Histogram({
      name: "skt_inference_duration_seconds",
      help: "Duration of one backbone pass (per batch) in seconds.",
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    batchSize: new Histogram({
      name: "skt_batch_size",
      help: "Rows per batch.",
      buckets: BATCH_SIZE_BUCKETS,
      registers,
    }),
    batchTokens: new Histogram({
      name: "skt_batch_tokens",
      help: "Padded tokens per batch (rows times longest row).",
      buckets: BATCH_TOKEN_BUCKETS,
      registers,
    }),
    queueDepth: new Gauge({
      name: "skt_queue_depth",
      help: "Texts waiting in the queue.",
      registers,
    }),
    queueDropped: new Counter({
      name: "skt_queue_dropped_total",
      help: "Texts that left the queue or were refused without running, by reason: queue_full (refused), deadline, cancelled (the client went away), request_failed (another text of the request failed), no_worker (every inference worker was down), shutting_down (refused).",
      labelNames: ["reason"] as const,
      registers,
    }),
    workerRestarts: new Counter({
      name: "skt_worker_restarts_total",
      help: "Inference workers restarted after dying (requests in flight on it failed with 503).",
      registers,
    }),
    tokens: new Counter({
      name: "skt_tokens_total",
      help: "Tokens run through the backbone, real or padding.",
      labelNames: ["kind"] as const,
      registers,
    }),
    semanticPasses: new Counter({
      name: "skt_semantic_passes_total",
      help: "Semantic passes computed (adapter preparations that were not served from cache).",
      labelNames: ["task"] as const,
      registers,
    }),
    cacheHits: new Counter({
      name: "skt_adapter_cache_hits_total",
      help: "Prepared-adapter cache hits.",
      registers,
    }),
    cacheMisses: new Counter({
      name: "skt_adapter_cache_misses_total",
      help: "Prepared-adapter cache misses.",
      registers,
    }),
    cacheEvictions: new Counter({
      name: "skt_adapter_cache_evictions_total",
      help: "Prepared adapters evicted from the cache.",
      registers,
    }),
    cacheBytes: new Gauge({
      name: "skt_adapter_cache_bytes",
      help: "Bytes held by prepared adapters in the cache.",
      registers,
    }),
    adaptersLoaded: new Gauge({
      name: "skt_adapters_loaded",
      help: "Prepared adapters in memory.",
      registers,
    }),
    adapterLoadDuration: new Histogram({
      name: "skt_adapter_load_duration_seconds",
      help: "Time to read, validate and prepare one adapter version, in seconds.",
      buckets: LOAD_BUCKETS,
      registers,
    }),
    adaptersInvalid: new Counter({
      name: "skt_adapters_invalid_total",
      help: "Stored adapter versions that failed validation or preparation when first used (the task answers 409 adapter_invalid), by validation code.",
      labelNames: ["code"] as const,
      registers,
    }),
    uploads: new Counter({
      name: "skt_uploads_total",
      help: "Adapter uploads by outcome (ok, invalid = rejected as the client's fault, error = server-side failure, client_closed = the client went away first).",
      labelNames: ["outcome"] as const,
      registers,
    }),
    taskLabel(task) {
      if (labelledTasks.has(task)) return task;
      if (labelledTasks.size >= MAX_TASK_LABELS) return OTHER_TASKS_LABEL;
      labelledTasks.add(task);
      return task;
    },
    async forgetTrafficSeries(task, keep) {
      // A task past MAX_TASK_LABELS shares its label with others: its series cannot be told apart.
      if (!labelledTasks.has(task)) return;
      const drop = (labels: Partial<Record<string, string | number>>) =>
        labels.task === task && !keep.includes(Number(labels.version));
      for (const metric of [
        metrics.trafficRequests,
        metrics.trafficRows,
        metrics.trafficDuration,
        metrics.trafficLabels,
        metrics.shadowCompared,
        metrics.shadowAgreed,
        metrics.shadowAgreement,
      ] as const) {
        for (const { labels } of (await metric.get()).values) {
          if (!drop(labels)) continue;
          const { le: _bucket, ...series } = labels as Record<string, string | number>;
          (metric as Counter<string>).remove(series);
        }
      }
    },
    async forgetTask(task) {
      await metrics.forgetTrafficSeries(task, []);
      if (!labelledTasks.delete(task)) return;
      metrics.quality.forget(task);
      metrics.requestDuration.remove({ task });
      metrics.semanticPasses.remove({ task });
      for (const { labels } of (await metrics.requests.get()).values) {
        if (labels.task === task) metrics.requests.remove(labels);
      }
    },
    trafficRequests: new Counter({
      name: "skt_traffic_requests_total",
      help: "Requests answered per adapter version of tasks with a canary or shadow split (role current or canary).",
      labelNames: ["task", "version", "role"] as const,
      registers,
    }),
    trafficRows: new Counter({
      name: "skt_traffic_rows_total",
      help: "Rows scored per adapter version of tasks with a canary or shadow split (role current, canary or shadow).",
      labelNames: ["task", "version", "role"] as const,
      registers,
    }),
    trafficDuration: new Histogram({
      name: "skt_traffic_duration_seconds",
      help: "Engine time per request (tokenize, queue, backbone, head) per adapter version of tasks with a split, in seconds.",
      labelNames: ["task", "version", "role"] as const,
      buckets: LATENCY_BUCKETS,
      registers,
    }),
    trafficLabels: new Counter({
      name: "skt_traffic_labels_total",
      help: `Top labels given per adapter version of tasks with a split (a task's labels past the first ${MAX_LABEL_VALUES} count as ${OTHER_LABELS_LABEL}).`,
      labelNames: ["task", "version", "role", "label"] as const,
      registers,
    }),
    shadowCompared: new Counter({
      name: "skt_traffic_shadow_compared_total",
      help: "Rows a shadow version scored next to the current version's answer.",
      labelNames: ["task", "version"] as const,
      registers,
    }),
    shadowAgreed: new Counter({
      name: "skt_traffic_shadow_agreed_total",
      help: "Shadow rows whose top label equals the current version's.",
      labelNames: ["task", "version"] as const,
      registers,
    }),
    shadowAgreement: new Gauge({
      name: "skt_traffic_shadow_agreement_ratio",
      help: "Share of rows where the shadow version's top label equals the current version's, since the split was set.",
      labelNames: ["task", "version"] as const,
      registers,
    }),
    deviceInfo: new Gauge({
      name: "skt_device_info",
      help: "The device the backbone runs on (value 1): device = cpu, webgpu or cuda; requested = the SKT_DEVICE setting; adapter = the GPU adapter's name, empty when none or unknown.",
      labelNames: ["device", "requested", "adapter"] as const,
      registers,
    }),
    deviceCacheBytes: new Gauge({
      name: "skt_device_cache_bytes",
      help: "Device memory held by the adapter prefix banks of the WebGPU inference workers (SKT_DEVICE_CACHE_BYTES).",
      registers,
    }),
    deviceCacheHits: new Counter({
      name: "skt_device_cache_hits_total",
      help: "Prefix adapters of a batch already resident in its WebGPU worker's device banks.",
      registers,
    }),
    deviceCacheMisses: new Counter({
      name: "skt_device_cache_misses_total",
      help: "Prefix adapters of a batch uploaded into its WebGPU worker's device banks.",
      registers,
    }),
    deviceCacheEvictions: new Counter({
      name: "skt_device_cache_evictions_total",
      help: "Prefix adapters dropped from a worker's device banks to make room (least recently used first, or all when a longer prefix re-creates the banks).",
      registers,
    }),
    deviceCacheFallbacks: new Counter({
      name: "skt_device_cache_fallbacks_total",
      help: "Prefix batches on a WebGPU worker that sent their keys and values with the batch because their adapters did not fit SKT_DEVICE_CACHE_BYTES at once.",
      registers,
    }),
    quality: new PredictionQuality(registry, { ...DEFAULT_QUALITY, ...opts.quality }, (task) =>
      metrics.taskLabel(task),
    ),
  };
  // Known, bounded label sets start at 0 so rate() works from the first scrape.
  for (const outcome of ["ok", "invalid", "error", "client_closed"]) metrics.uploads.inc({ outcome }, 0);
  for (const kind of ["real", "padding"]) metrics.tokens.inc({ kind }, 0);
  for (const reason of QUEUE_DROP_REASONS) metrics.queueDropped.inc({ reason }, 0);
  return metrics;
}
