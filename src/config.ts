/**
 * Server configuration: one typed `ServerConfig`, read from environment variables and CLI flags
 * (flags win over the environment, the environment wins over defaults), validated with zod.
 *
 * Every setting is described once, in `CONFIG_OPTIONS`; the loader, the flag parser and the README
 * table (`renderConfigTable()`) all come from that list, so the docs cannot drift from the code.
 */
import { z } from "zod";
import { DEVICE_SETTINGS, PRECISIONS, type DeviceSetting, type Precision } from "./backbone/device.js";
import { PACKED_SETTINGS, type PackedSetting } from "./backbone/packing.js";
import { availableCores } from "./cores.js";
import { SktError } from "./errors.js";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

/** The server's settings, one field per row of the settings table below (env var, flag, default, checks). */
export interface ServerConfig {
  /** PORT: TCP port to listen on (0 picks a free port). */
  port: number;
  /** HOST: the interface to bind. */
  host: string;
  /** Bearer token for `/admin/*`; when unset the admin API answers 403 `admin_disabled`. */
  adminToken: string | undefined;
  /** JSON list of scoped admin tokens (hashed); see src/server/auth/tokens.ts. */
  adminTokensFile: string | undefined;
  /** Failed admin authentications per client address and minute before 429. */
  adminMaxAuthFailures: number;
  /** Admin audit log (JSONL); undefined = `audit.jsonl` in the adapters folder. */
  auditLog: string | undefined;
  /** Comma-separated Ed25519 public-key PEM files or folders. */
  trustedKeys: string | undefined;
  /** Refuse unsigned uploads and uploads signed by keys not in trustedKeys. */
  requireSignature: boolean;
  /** SKT_ADAPTERS_DIR: the adapter store (one folder per task, versioned files, CURRENT pointers). */
  adaptersDir: string;
  /** SKT_STORE: `postgres://…` for the shared adapter store (many replicas); undefined: the filesystem store in adaptersDir. */
  storeUrl: string | undefined;
  /** SKT_MODELS_DIR: where the built backbone (ONNX + tokenizer) lives. */
  modelsDir: string;
  /** A Hugging Face folder to serve as the backbone; unset: the embedded USE-lite. */
  model: string | undefined;
  /** SKT_FUSED_OPS: build a Hugging Face backbone's serving graphs with onnxruntime's fused operators (default off). */
  fusedOps: boolean;
  /** SKT_SHARE_WEIGHTS: sessions read a Hugging Face build's mapped weights instead of prepacked private copies (default on). */
  shareWeights: boolean;
  /** SKT_FAST_LANE: serve the common /classify request on Node's http directly (src/server/classify-fast-lane.ts). */
  fastLane: boolean;
  /** SKT_INFERENCE_NICE: how many nice levels below the main thread the inference workers' threads run (Linux). */
  inferenceNice: number;
  /** SKT_ORT_SPINNING: onnxruntime's intra-op threads spin while waiting for work (the default) or sleep at once. */
  ortSpinning: boolean;
  /** SKT_THREADS: onnxruntime intra-op threads of each inference worker (default: see `defaultParallelism`). */
  threads: number;
  /** SKT_WORKERS: inference worker threads, each with its own onnxruntime sessions (default: see `defaultParallelism`). */
  workers: number;
  /** SKT_SOLO_THREADS: threads of the solo worker, which takes turns with the others at light load (0: none). */
  soloThreads: number;
  /** SKT_SOLO_MAX_QUEUE: the solo worker takes a batch only while at most this many client rows wait. */
  soloMaxQueue: number;
  /** SKT_MAX_BATCH_SIZE: most rows (texts) in one backbone pass. */
  maxBatchSize: number;
  /** SKT_MAX_BATCH_TOKENS: most positions one backbone pass may cost (real tokens + weighted padding). */
  maxBatchTokens: number;
  /** SKT_MAX_WAIT_MS: how long an idle worker waits for more rows before running a partial batch. */
  maxWaitMs: number;
  /** SKT_MAX_PADDING_RATIO: most padding a batch may carry, as a fraction of its real tokens. */
  maxPaddingRatio: number;
  /** SKT_QUEUE_SIZE: most texts waiting; beyond it requests get 429. */
  queueSize: number;
  /** SKT_CACHE_BYTES: byte budget of the prepared-adapter cache. */
  cacheBytes: number;
  /** SKT_DEVICE_CACHE_BYTES: per WebGPU worker, device memory for resident adapter prefixes (0: off). */
  deviceCacheBytes: number;
  /** SKT_WARM_TASKS: tasks prepared in the background after start-up, most recently used first. */
  warmTasks: number;
  /** SKT_MAX_TEXTS: most texts in one request; more → 413. */
  maxTexts: number;
  /** SKT_MAX_TEXT_CHARS: longest text in characters; longer → 413. */
  maxTextChars: number;
  /** SKT_MAX_TASKS_PER_CALL: most tasks one `/classify` call may name (the `task` parameter repeated). */
  maxTasksPerCall: number;
  /** SKT_QUALITY_WINDOW: rows per task kept for the label-distribution window (drift, low-confidence share). */
  qualityWindow: number;
  /** SKT_LOW_CONFIDENCE: a classification row whose winning score is below this counts as low confidence. */
  lowConfidence: number;
  /** SKT_METRICS_MAX_LABELS: label values per task in the quality metrics; a head with more labels aggregates the rest. */
  metricsMaxLabels: number;
  /** SKT_MAX_UPLOAD_BYTES: largest adapter file, enforced while the upload streams. */
  maxUploadBytes: number;
  /** SKT_MAX_EVAL_SET_BYTES: largest evaluation set a task may store. */
  maxEvalSetBytes: number;
  /** SKT_MAX_EVAL_SET_ROWS: most rows in a task's evaluation set. */
  maxEvalSetRows: number;
  /** SKT_REQUEST_TIMEOUT_MS: deadline of one `/classify` request (504 past it). */
  requestTimeoutMs: number;
  /** SKT_MAX_ADAPTER_PARAMS: most trainable parameters an adapter may have; more → 422. */
  maxAdapterParams: number;
  /** SKT_DEVICE: where the backbone runs: `cpu`, `webgpu`, `auto` (WebGPU when found) or `cuda`. */
  device: DeviceSetting;
  /** SKT_PRECISION: the backbone's numeric precision. */
  precision: Precision;
  /** SKT_PACKED: serve the padding-free graphs (`auto`: on the CPU where built; see backbone/packing.ts). */
  packed: PackedSetting;
  /** SKT_LOG_LEVEL: pino level. */
  logLevel: LogLevel;
  /** SKT_SEMANTIC_CACHE: cache the semantic pass per adapter version (`false`: a debug switch). */
  semanticCache: boolean;
  /** SKT_DEBUG_BATCH_LOG: debug file that gets one JSON line per batch the worker runs; unset = off. */
  batchLog: string | undefined;
  /** SKT_MAX_IN_FLIGHT_BATCHES: batches handed to the inference worker at once. */
  maxInFlightBatches: number;
  /** SKT_RETRY_AFTER_S: `Retry-After` seconds sent with a 429. */
  retryAfterSeconds: number;
  /** SKT_SHUTDOWN_TIMEOUT_MS: on SIGTERM/SIGINT, how long in-flight requests may take. */
  shutdownTimeoutMs: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** SKT_DEVICE_CACHE_BYTES when unset (also for engines created without a configuration). */
export const DEFAULT_DEVICE_CACHE_BYTES = 256 * MiB;
const GiB = 1024 * MiB;

// ---- value parsers (string in, typed value out, with messages people can act on) -------------

function int(min: number, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .trim()
    .regex(/^\d+$/, { error: "must be a whole number" })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );
}

/** A decimal number within [min, max]. */
function decimal(min: number, max: number) {
  return z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, { error: "must be a number such as 0.25" })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `must be at least ${min}` })
        .max(max, { error: `must be at most ${max}` }),
    );
}

/** Bytes: a whole number, optionally with a KiB/MiB/GiB suffix (e.g. `256MiB`). */
function bytes(min: number, max = Number.MAX_SAFE_INTEGER) {
  const units: Record<string, number> = { "": 1, k: KiB, kib: KiB, m: MiB, mib: MiB, g: GiB, gib: GiB };
  return z
    .string()
    .trim()
    .regex(/^\d+\s*(k|kib|m|mib|g|gib)?$/i, { error: "must be a byte count such as 16777216 or 16MiB" })
    .transform((s) => {
      const m = /^(\d+)\s*([a-z]*)$/i.exec(s)!;
      return Number(m[1]) * units[m[2].toLowerCase()];
    })
    .pipe(
      z
        .number()
        .int()
        .min(min, { error: `must be at least ${min} bytes` })
        .max(max, { error: `must be at most ${max} bytes` }),
    );
}

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((s) => ["true", "false", "1", "0", "yes", "no", "on", "off"].includes(s), {
    error: "must be true or false",
  })
  .transform((s) => ["true", "1", "yes", "on"].includes(s));

const nonEmpty = z.string().trim().min(1, { error: "must not be empty" });

/** A bearer token must be an RFC 6750 token68, or hono's bearerAuth can never match it. */
const token = z
  .string()
  .trim()
  .regex(/^[A-Za-z0-9._~+/-]+=*$/, {
    error: "must contain only letters, digits and . _ ~ + / - (optionally ending in =)",
  });

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(values, { error: `must be one of: ${values.join(", ")}` }));
}

// ---- the settings -----------------------------------------------------------------------------

export interface ConfigOption<K extends keyof ServerConfig = keyof ServerConfig> {
  key: K;
  env: string;
  flag: string;
  /** The default as a string in the same syntax the env var takes; `undefined` = unset. */
  default: string | undefined;
  /** How the default reads in the docs (when the raw string is not friendly). */
  defaultDoc?: string;
  meaning: string;
  parse: z.ZodType<ServerConfig[K], string>;
  boolean?: boolean;
  secret?: boolean;
}

/**
 * Default SKT_WORKERS × SKT_THREADS for a machine with `cores` cores (the affinity mask capped by a
 * cgroup CPU quota: src/cores.ts), or SKT_WORKERS alone when SKT_THREADS is given (`threads`): as
 * many workers of that many threads as the cores the workers get.
 * - Below 4 cores the main thread (HTTP, JSON, tokenization, batch assembly) has no core of its own:
 *   one single-thread worker per core. A 2-thread worker loses twice whatever the main thread takes
 *   from it (its other thread waits at every operator's barrier), while a single-thread worker loses
 *   it once and the main thread's work fits in the gaps between one worker's batches as the other
 *   runs: on the 2-core development machine 2×1 served 1.19× the real tokens/s of 1×2 at
 *   saturation (`npm run bench:workers`), 0.92 of the backbone's sorted limit against 0.75 in the
 *   same pairs (`tsx bench/main-thread.ts`; README "Speed, session 9"), at the price of a lone
 *   request running on one thread (slower by the figure in that section). SKT_THREADS=2 gives the
 *   old 1×2 for latency first.
 * - From 4 cores one core is left to the main thread, and the rest go to workers of 2 threads each:
 *   4 → 1×2, 8 → 3×2, 16 → 7×2 (not measured here: this machine has 2 cores). Two threads per worker
 *   keep a lone batch's latency near the one-worker figure, and with the main thread on its own
 *   core the barrier no longer pays for it.
 */
export function defaultParallelism(cores = availableCores(), threads?: number): { workers: number; threads: number } {
  const forWorkers = cores < 4 ? Math.max(1, cores) : cores - 1;
  const t = threads ?? (cores < 4 ? 1 : 2);
  return { workers: Math.max(1, Math.floor(forWorkers / t)), threads: t };
}

/**
 * SKT_SOLO_THREADS' default: a solo worker with the workers' threads together where they are several
 * single-thread CPU workers (below 4 cores by default), where a lone request would otherwise run on
 * one thread while the other cores sit idle; none elsewhere (multi-thread workers already run a
 * lone batch on several threads, and WebGPU workers take turns on the device anyway).
 */
export function soloThreadsFor(device: DeviceSetting, shape: { workers: number; threads: number }): number {
  return device === "cpu" && shape.threads === 1 && shape.workers >= 2 ? shape.workers : 0;
}

/** SKT_SOLO_MAX_QUEUE's default (README "Speed, session 10"). */
export const DEFAULT_SOLO_MAX_QUEUE = 1;

/** Read once: the cgroup files behind it do not change while the process runs. */
const CORES = availableCores();
const PARALLELISM = defaultParallelism(CORES);

function opt<K extends keyof ServerConfig>(o: ConfigOption<K>): ConfigOption<K> {
  return o;
}

export const CONFIG_OPTIONS: readonly ConfigOption[] = [
  opt({
    key: "port",
    env: "PORT",
    flag: "--port",
    default: "8080",
    meaning: "TCP port to listen on (0 picks a free port).",
    parse: int(0, 65535),
  }),
  opt({ key: "host", env: "HOST", flag: "--host", default: "0.0.0.0", meaning: "Interface to bind.", parse: nonEmpty }),
  opt({
    key: "adminToken",
    env: "SKT_ADMIN_TOKEN",
    flag: "--admin-token",
    default: undefined,
    defaultDoc: "(unset: admin API disabled)",
    meaning:
      "Bearer token for `/admin/*`. Unset: every admin route answers 403 `admin_disabled`. Use a long random value; prefer the env var (flags show up in `ps`).",
    parse: token,
    secret: true,
  }),
  opt({
    key: "adminTokensFile",
    env: "SKT_ADMIN_TOKENS_FILE",
    flag: "--admin-tokens-file",
    default: undefined,
    defaultDoc: "(unset: only SKT_ADMIN_TOKEN)",
    meaning:
      'JSON list of scoped admin tokens, each `{"name", "sha256" (of the token, hex), "scopes" (some of read, write, traffic), "tasks" (glob such as `team-a-*`, default `*`)}`; `hash-token` prints an entry. Checked at start: a bad entry stops the server naming it. Works alongside SKT_ADMIN_TOKEN (named `admin`, every scope, every task).',
    parse: nonEmpty,
  }),
  opt({
    key: "adminMaxAuthFailures",
    env: "SKT_ADMIN_MAX_AUTH_FAILURES",
    flag: "--admin-max-auth-failures",
    default: "10",
    meaning:
      "Failed admin authentications (unknown token, malformed header) one client address may make per minute; past it every admin request from it gets 429 `too_many_auth_failures` with `Retry-After` until the minute is over.",
    parse: int(1, 1_000_000),
  }),
  opt({
    key: "auditLog",
    env: "SKT_AUDIT_LOG",
    flag: "--audit-log",
    default: undefined,
    defaultDoc: "`<adapters dir>/audit.jsonl`",
    meaning:
      "Append-only JSONL audit log of admin actions (who, what, task, version, sha256, result, time, client address), readable at `GET /admin/audit`.",
    parse: nonEmpty,
  }),
  opt({
    key: "trustedKeys",
    env: "SKT_TRUSTED_KEYS",
    flag: "--trusted-keys",
    default: undefined,
    defaultDoc: "(unset: none)",
    meaning:
      "Ed25519 public keys (PEM) that may sign adapters: comma-separated files and folders (every `*.pem` inside). A signed upload whose signature does not verify against its key is always refused (422 `bad_signature`). Checked at start.",
    parse: nonEmpty,
  }),
  opt({
    key: "requireSignature",
    env: "SKT_REQUIRE_SIGNATURE",
    flag: "--require-signature",
    default: "false",
    meaning:
      "Refuse uploads that are unsigned (422 `signature_required`) or signed by a key not in SKT_TRUSTED_KEYS (422 `unknown_signing_key`); nothing is stored. Needs SKT_TRUSTED_KEYS.",
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "adaptersDir",
    env: "SKT_ADAPTERS_DIR",
    flag: "--adapters-dir",
    default: "adapters",
    meaning:
      "Adapter store: one folder per task, one file per version, plus `INDEX` (the task index read at start-up) and `RECENT` (the warm-up hint).",
    parse: nonEmpty,
  }),
  opt({
    key: "storeUrl",
    env: "SKT_STORE",
    flag: "--store",
    default: undefined,
    defaultDoc: "(unset: the filesystem store in SKT_ADAPTERS_DIR)",
    meaning:
      '`postgres://user:pass@host:5432/db`: keep adapters in PostgreSQL, shared by every replica (changes reach the others by LISTEN/NOTIFY; the schema is created at start). SKT_ADAPTERS_DIR then holds only this replica\'s read-through copy of the bytes. See README "Running many replicas".',
    parse: z
      .string()
      .trim()
      .regex(/^postgres(ql)?:\/\/.+/i, { error: "must be a postgres:// or postgresql:// URL" }),
    secret: true,
  }),
  opt({
    key: "modelsDir",
    env: "SKT_MODELS_DIR",
    flag: "--models-dir",
    default: "models",
    meaning: "Where the built backbone (ONNX + tokenizer) lives.",
    parse: nonEmpty,
  }),
  opt({
    key: "model",
    env: "SKT_MODEL",
    flag: "--model",
    default: undefined,
    defaultDoc: "(unset: the embedded USE-lite)",
    meaning:
      "A Hugging Face model folder on disk (config.json, tokenizer.json, model.safetensors or sharded with model.safetensors.index.json) to serve as the frozen backbone: bert, roberta, xlm-roberta, distilbert, llama, mistral or qwen2. Built once into the models folder, keyed by the checkpoint's fingerprint. Nothing is downloaded.",
    parse: nonEmpty,
  }),
  opt({
    key: "fusedOps",
    env: "SKT_FUSED_OPS",
    flag: "--fused-ops",
    default: "false",
    meaning:
      'Hugging Face backbones only: `true` builds the serving graphs with onnxruntime\'s fused operators (LayerNormalization, SkipLayerNormalization, BiasGelu/FastGelu; SimplifiedLayerNormalization and SkipSimplifiedLayerNormalization for decoders); `false` keeps the plain graphs (the ones training differentiates). Off by default: on the development machine the fused graphs were not faster (`npm run bench:fused`, README "Use your own model"). The fused build has its own folder in the models folder (`hf-…-fused`); the fingerprint, and so every adapter, is the same for both.',
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "shareWeights",
    env: "SKT_SHARE_WEIGHTS",
    flag: "--share-weights",
    default: "true",
    meaning:
      'Hugging Face backbones only (their weights are ONNX external data, `model.onnx.data`): `true` opens the sessions with onnxruntime\'s weight prepacking off, so the plain and prefix sessions of every worker read one memory-mapped copy of the weights (BERT-base: +19 MiB per worker instead of +666 MiB; Qwen2-0.5B shapes: +19 instead of +2,744 MiB); `false` lets onnxruntime prepack a private copy per session, which made single short rows faster (1×16 tokens: 1.5–2.3× on a loaded machine) and large batches no faster (`npm run bench:models`, README "Use your own model").',
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "fastLane",
    env: "SKT_FAST_LANE",
    flag: "--fast-lane",
    default: "true",
    meaning:
      "`true` serves `POST /classify?task=NAME` with a JSON body of a shape it is sure of on Node's http directly, with the same answers, metrics and log lines as the app (src/server/classify-fast-lane.ts); everything else goes through hono. It roughly halves the main thread's CPU per request at saturation (README \"Speed\"). `false` sends every request through hono.",
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "inferenceNice",
    env: "SKT_INFERENCE_NICE",
    flag: "--inference-nice",
    default: "10",
    meaning:
      "Linux: each inference worker thread lowers its own scheduling priority by this many nice levels (up to 19) before it opens its sessions, so onnxruntime's threads, which inherit it, give way to the main thread (HTTP, tokenization, batching, `/metrics`) whenever both want a core; 0 leaves them equal. It only orders the server's own threads (in a container, the cgroup's share is unchanged). On the 2-core development machine at saturation the main thread waited for a core 8–10 % of the time instead of 25–27 % and GET /metrics answered faster, at the same throughput (`npm run bench:nice`, README \"Speed\"). Other platforms: ignored (there a thread's priority is the whole process's).",
    parse: int(0, 19),
  }),
  opt({
    key: "ortSpinning",
    env: "SKT_ORT_SPINNING",
    flag: "--ort-spinning",
    default: "true",
    meaning:
      "`true` lets onnxruntime's intra-op threads spin while they wait for work (onnxruntime's own default); `false` makes them sleep at once (`session.intra_op.allow_spinning=0`), leaving the cycles to the main thread (HTTP, tokenization, batch assembly), to other workers and to other processes. On the 2-core development machine with nothing else running, the server at saturation was as fast either way and one short row 5–15 % faster with spinning (`npm run bench:spinning`); with other processes on the same cores, turning it off made the server 1.09–1.55× faster and the raw backbone 1.15–1.34× (`BENCH_SPINNING_COMPARE=1 npm run bench:efficiency`). Set `false` on shared or oversubscribed hosts. See docs/benchmarks.md \"Less work on the main thread\".",
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "threads",
    env: "SKT_THREADS",
    flag: "--threads",
    default: String(PARALLELISM.threads),
    defaultDoc: "1 below 4 cores, else 2",
    meaning:
      'onnxruntime intra-op threads of each inference worker; SKT_WORKERS\' default follows it. Below 4 cores (`os.availableParallelism()`, capped by a container\'s CPU quota: src/cores.ts) the default is a single-thread worker per core: the most throughput there (2×1 served 1.19× the real tokens/s of 1×2 at saturation on 2 cores), with a solo worker of all their threads for light traffic (SKT_SOLO_THREADS), so a lone request still runs on every core. `SKT_THREADS=2` gives one 2-thread worker on 2 cores. From 4 cores, workers of 2 threads with a core left to the main thread. See `defaultParallelism` in src/config.ts and README "Speed, session 9" and "Speed, session 10".',
    parse: int(1, 1024),
  }),
  opt({
    key: "workers",
    env: "SKT_WORKERS",
    flag: "--workers",
    default: String(PARALLELISM.workers),
    defaultDoc:
      "1 with `SKT_DEVICE=webgpu`; else the cores the workers get (all of them below 4 cores, one fewer from 4 on) ÷ SKT_THREADS: 2 cores: 2 (of 1 thread), 8 cores: 3 (of 2), 16 cores: 7 (of 2)",
    meaning:
      "Inference worker threads. Each loads its own copy of the backbone's sessions (onnxruntime-node cannot share weights between sessions in different threads: USE-lite's two sessions add ~110 MB resident per worker) and pulls the next batch as soon as it is free. A worker that dies is restarted (`skt_worker_restarts_total`); the others keep serving. On WebGPU the workers take turns on the device (one lock per process: onnxruntime's WebGPU provider is not safe from two threads at once, docs/webgpu.md \"Threads and the device\"), so more than one overlaps only host-side work and each holds its own copy of the weights in GPU memory: the default with `SKT_DEVICE=webgpu` is 1, and `SKT_DEVICE=auto` logs a warning when several workers land on WebGPU.",
    parse: int(1, 256),
  }),
  opt({
    key: "soloThreads",
    env: "SKT_SOLO_THREADS",
    flag: "--solo-threads",
    default: String(soloThreadsFor("cpu", PARALLELISM)),
    defaultDoc: "SKT_WORKERS when they are single-thread CPU workers and there are several (2 on 2 cores); else 0",
    meaning:
      'Threads of one more inference worker, the solo worker, for light traffic on few cores: it takes turns with the others instead of running beside them — it runs a batch only while no other worker runs one, at most SKT_SOLO_MAX_QUEUE rows wait, and fewer than half a row on average arrives during one of its runs (over its last runs, or as the arrival rate predicts) — and they run only while it does not. So a lone request runs on every core at once, while under load the single-thread workers serve side by side, never both. On 2 cores (`npm run bench:workers`, `BENCH_RATES=30,65,130,200 npm run bench:fixed-rates`): one request at a time p50 6.6 ms against 9.8 without it (1×2: 7.0), saturation 1.134× 1×2 against 1.075×, and open-loop p50 at 30 / 65 / 130 / 200 req/s 6.9 / 7.6 / 9.9 / 10.3 ms against 9.3 / 8.6 / 10.2 / 10.4. It holds its own copy of the sessions (USE-lite: ~110 MB resident). `0`: none. CPU only. README "Speed, session 10".',
    parse: int(0, 1024),
  }),
  opt({
    key: "soloMaxQueue",
    env: "SKT_SOLO_MAX_QUEUE",
    flag: "--solo-max-queue",
    default: String(DEFAULT_SOLO_MAX_QUEUE),
    meaning:
      'With a solo worker (SKT_SOLO_THREADS): it takes a batch only while at most this many client rows wait and no other worker runs one; more waiting hands the queue to the other workers until they are all idle again. 1 measured best of 1, 4, 8 and 32 at 130 and 200 req/s on 2 cores: with 32 a busy solo worker ran small, tight batches back to back below the hand-over point (p50 75 ms at 130 req/s; once for seconds). README "Speed, session 10".',
    parse: int(0, 1_000_000),
  }),
  opt({
    key: "maxBatchSize",
    env: "SKT_MAX_BATCH_SIZE",
    flag: "--max-batch-size",
    default: "32",
    meaning: "Most rows (texts) in one backbone pass.",
    parse: int(1, 4096),
  }),
  opt({
    key: "maxBatchTokens",
    env: "SKT_MAX_BATCH_TOKENS",
    flag: "--max-batch-tokens",
    default: "4096",
    meaning:
      "Most positions one backbone pass may cost: its real tokens plus its padding (rows × longest row in all, with padded graphs; with packed graphs, see SKT_PACKED, a padding position counts half).",
    parse: int(1),
  }),
  opt({
    key: "maxWaitMs",
    env: "SKT_MAX_WAIT_MS",
    flag: "--max-wait-ms",
    default: "2",
    meaning:
      "How long an idle worker waits for more rows before running a partial batch; a request that follows a quiet spell (none for longer than this plus the time one row takes to run) runs at once.",
    parse: int(0, 60_000),
  }),
  opt({
    key: "maxPaddingRatio",
    env: "SKT_MAX_PADDING_RATIO",
    flag: "--max-padding-ratio",
    default: "0.25",
    defaultDoc: "0.25; 0.1 with single-thread workers (SKT_THREADS=1) at fp32 or fp16",
    meaning:
      'Most padding a batch may carry, as a fraction of its real tokens (with packed graphs a padding position counts half, see SKT_PACKED); rows that would add more wait for the next batch (the oldest row always goes). A single-thread worker pays nothing for splitting a batch\'s operators, so smaller, tighter batches cost it no more per token and it gets 0.1: on 2 cores 2×1 served 1.07× the real tokens/s with 0.1 than with 0.25 (0.05: the same as 0.1; `tsx bench/main-thread.ts SKT_MAX_PADDING_RATIO=0.25 SKT_MAX_PADDING_RATIO=0.1`, README "Speed, session 9"). With SKT_PRECISION=int8 the default stays 0.25: its runs are ~1.7× shorter, so each batch\'s fixed cost (assembly, the hand-over to the worker, the session call) weighs more and bigger batches pay — 2×1 served 1.06× the real tokens/s with 0.25 than with 0.1 (5 of 6 pairs), and 0.5 the same as 0.25 (README "Speed, session 10").',
    parse: decimal(0, 1000),
  }),
  opt({
    key: "maxInFlightBatches",
    env: "SKT_MAX_IN_FLIGHT_BATCHES",
    flag: "--max-in-flight-batches",
    default: "2",
    defaultDoc: "2 with one worker, 1 with several",
    meaning:
      'Batches each inference worker holds at once. With 2, a full batch that forms while one runs waits inside the worker, so it never idles between batches; partial batches go only to an idle worker. With several workers the default is 1: another worker covers that gap, and a batch left in the shared queue goes to whichever worker frees first instead of waiting behind one worker\'s current batch (2×1 on 2 cores: the same throughput at saturation, 0.986 ÷ 2 slots; README "Speed, session 9").',
    parse: int(1, 16),
  }),
  opt({
    key: "queueSize",
    env: "SKT_QUEUE_SIZE",
    flag: "--queue-size",
    default: "1024",
    meaning: "Most texts waiting in the queue; beyond it requests get 429 `overloaded`.",
    parse: int(1),
  }),
  opt({
    key: "cacheBytes",
    env: "SKT_CACHE_BYTES",
    flag: "--cache-bytes",
    default: String(256 * MiB),
    defaultDoc: "256 MiB",
    meaning: "Byte budget of the prepared-adapter cache (accepts KiB/MiB/GiB suffixes).",
    parse: bytes(0),
  }),
  opt({
    key: "deviceCacheBytes",
    env: "SKT_DEVICE_CACHE_BYTES",
    flag: "--device-cache-bytes",
    default: String(DEFAULT_DEVICE_CACHE_BYTES),
    meaning:
      "Per WebGPU inference worker: device memory that keeps prepared adapters' prefix keys/values on the GPU between batches, so a prefix batch sends a slot number per row instead of its keys/values (USE-lite, 12 positions: 72 KiB a row); least recently used evicted; accepts KiB/MiB/GiB suffixes. Counted apart from SKT_CACHE_BYTES, and in whole slots of the longest prefix seen. `0`: prefixes are sent with every batch. CPU workers always send them (no bus to save).",
    parse: bytes(0),
  }),
  opt({
    key: "warmTasks",
    env: "SKT_WARM_TASKS",
    flag: "--warm-tasks",
    default: "0",
    meaning:
      "After start-up, prepare up to this many of the tasks that were in the adapter cache at the last clean shutdown (most recently used first), in the background: readiness never waits for it. 0: every adapter is prepared at its first request.",
    parse: int(0, 10_000_000),
  }),
  opt({
    key: "maxTexts",
    env: "SKT_MAX_TEXTS",
    flag: "--max-texts",
    default: "64",
    meaning: "Most texts in one `/classify` request; more → 413 `too_many_texts`.",
    parse: int(1, 100_000),
  }),
  opt({
    key: "maxTextChars",
    env: "SKT_MAX_TEXT_CHARS",
    flag: "--max-text-chars",
    default: "10000",
    meaning:
      "Longest text (UTF-16 code units) accepted; longer → 413 `text_too_long`. Texts under it are still truncated to the adapter's token length.",
    parse: int(1, 10_000_000),
  }),
  opt({
    key: "maxTasksPerCall",
    env: "SKT_MAX_TASKS_PER_CALL",
    flag: "--max-tasks-per-call",
    default: "8",
    meaning:
      "Most tasks one `/classify` call may name (`?task=a&task=b`); more → 422 `too_many_tasks`. Each task's rows count against the queue like separate calls.",
    parse: int(1, 256),
  }),
  opt({
    key: "qualityWindow",
    env: "SKT_QUALITY_WINDOW",
    flag: "--quality-window",
    default: "1000",
    meaning:
      "Last N classified rows per task behind `skt_label_drift` and `skt_low_confidence_share` (a ring buffer per task with its own metrics label: at most 200 tasks × N × 5 bytes).",
    parse: int(1, 100_000),
  }),
  opt({
    key: "lowConfidence",
    env: "SKT_LOW_CONFIDENCE",
    flag: "--low-confidence",
    default: "0.6",
    meaning:
      "A classified row whose winning score is below this counts as low confidence (`skt_low_confidence_share`).",
    parse: decimal(0, 1),
  }),
  opt({
    key: "metricsMaxLabels",
    env: "SKT_METRICS_MAX_LABELS",
    flag: "--metrics-max-labels",
    default: "20",
    meaning:
      'Label values per task in `skt_predictions_total`: a head\'s first N labels get their own, the rest share `label="__other__"`.',
    parse: int(1, 1000),
  }),
  opt({
    key: "maxUploadBytes",
    env: "SKT_MAX_UPLOAD_BYTES",
    flag: "--max-upload-bytes",
    default: String(16 * MiB),
    defaultDoc: "16 MiB",
    meaning: "Largest adapter upload, enforced while streaming; larger → 413 (accepts KiB/MiB/GiB suffixes).",
    parse: bytes(1),
  }),
  opt({
    key: "maxEvalSetBytes",
    env: "SKT_MAX_EVAL_SET_BYTES",
    flag: "--max-eval-set-bytes",
    default: String(4 * MiB),
    defaultDoc: "4 MiB",
    meaning:
      "Largest evaluation set (`PUT /admin/adapters/{task}/eval-set`) for the evaluation gate; larger → 413 (accepts KiB/MiB/GiB suffixes).",
    parse: bytes(1),
  }),
  opt({
    key: "maxEvalSetRows",
    env: "SKT_MAX_EVAL_SET_ROWS",
    flag: "--max-eval-set-rows",
    default: "5000",
    meaning: "Most labelled rows in one evaluation set; more → 413 `eval_set_too_large`.",
    parse: int(1, 1_000_000),
  }),
  opt({
    key: "requestTimeoutMs",
    env: "SKT_REQUEST_TIMEOUT_MS",
    flag: "--request-timeout-ms",
    default: "10000",
    meaning:
      "Deadline for one `/classify` request; past it → 504 `timeout`, or 408 `request_timeout` when its body has not arrived completely.",
    parse: int(1, 3_600_000),
  }),
  opt({
    key: "maxAdapterParams",
    env: "SKT_MAX_ADAPTER_PARAMS",
    flag: "--max-adapter-params",
    default: "1000000",
    meaning: "Most trainable parameters an uploaded adapter may have; more → 422.",
    parse: int(1),
  }),
  opt({
    key: "device",
    env: "SKT_DEVICE",
    flag: "--device",
    default: "cpu",
    meaning:
      "Where the backbone runs: `cpu`; `webgpu` (onnxruntime's bundled WebGPU provider over Vulkan, any vendor's GPU; fails if no adapter is found); `auto` (WebGPU when an adapter is found, else the CPU; the log says which and why); `cuda` (only if you installed onnxruntime's CUDA provider yourself: it is not shipped). The chosen device is in `/readyz` and `skt_device_info`.",
    parse: oneOf(DEVICE_SETTINGS),
  }),
  opt({
    key: "precision",
    env: "SKT_PRECISION",
    flag: "--precision",
    default: "fp32",
    meaning:
      "Backbone arithmetic: `fp32`; `int8` (CPU only, embedded USE-lite only: the transformer's dense layers with int8 weights and activations quantized at run time; adapters stay fp32); or `fp16` (float16 weights and arithmetic, with the boundary, norms, softmax and the timing signal kept float32; on WebGPU only where the adapter offers `shader-f16`, refused with the reason otherwise, `auto` then takes the CPU; on the CPU onnxruntime runs the ops it has no float16 kernel for in float32, which checks fp16's accuracy but is not faster; refused on `cuda`).",
    parse: oneOf(PRECISIONS),
  }),
  opt({
    key: "packed",
    env: "SKT_PACKED",
    flag: "--packed",
    default: "auto",
    meaning:
      "Padding-free graphs: norms, dense layers and residuals run on a batch's real tokens only, attention on the padded layout (in a quiet `npm run bench:packed`: 0.58× the padded graph's time at 51 % padding, 0.79–0.86× at 11–16 %, 0.92–1.00× without padding). `auto`: on the CPU wherever the build has them (the embedded USE-lite, fp32 and int8), padded elsewhere; `on`: wherever built, on any device; `off`: always padded. With packed graphs the batcher counts a padding position as half a real one (SKT_MAX_BATCH_TOKENS, SKT_MAX_PADDING_RATIO).",
    parse: oneOf(PACKED_SETTINGS),
  }),
  opt({
    key: "logLevel",
    env: "SKT_LOG_LEVEL",
    flag: "--log-level",
    default: "info",
    meaning: "pino level: fatal, error, warn, info, debug, trace or silent.",
    parse: oneOf(["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const),
  }),
  opt({
    key: "semanticCache",
    env: "SKT_SEMANTIC_CACHE",
    flag: "--semantic-cache",
    default: "true",
    meaning: "Cache the semantic pass per adapter version. Debug switch: `false` recomputes it on every use.",
    parse: bool,
    boolean: true,
  }),
  opt({
    key: "batchLog",
    env: "SKT_DEBUG_BATCH_LOG",
    flag: "--debug-batch-log",
    default: undefined,
    defaultDoc: "(unset: off)",
    meaning:
      "Debug: append every batch the worker runs (task, version and token ids of each row) as a JSON line to this file. The efficiency benchmark replays them against the raw backbone.",
    parse: nonEmpty,
  }),
  opt({
    key: "retryAfterSeconds",
    env: "SKT_RETRY_AFTER_S",
    flag: "--retry-after-s",
    default: "1",
    meaning: "`Retry-After` seconds sent with 429 `overloaded`.",
    parse: int(0, 3600),
  }),
  opt({
    key: "shutdownTimeoutMs",
    env: "SKT_SHUTDOWN_TIMEOUT_MS",
    flag: "--shutdown-timeout-ms",
    default: "25000",
    meaning:
      "On SIGTERM/SIGINT, how long in-flight requests may take before connections are cut (keep it under the orchestrator's grace period, e.g. `docker stop -t 30`).",
    parse: int(0),
  }),
];

const BY_FLAG = new Map(CONFIG_OPTIONS.map((o) => [o.flag, o]));

// ---- loading ----------------------------------------------------------------------------------

export interface ConfigSources {
  /** Defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Server flags only (e.g. what follows `serve` on the command line). Defaults to none. */
  argv?: readonly string[];
}

/** Parse `--name value`, `--name=value`, and for booleans `--name` / `--no-name`. */
export function parseFlags(argv: readonly string[]): Map<string, { flag: string; value: string }> {
  const out = new Map<string, { flag: string; value: string }>();
  const bad = (message: string) => {
    throw new SktError("bad_request", "invalid_config", `Invalid command line: ${message}`);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith("--")) bad(`unexpected argument "${arg}" (flags look like --port 8080)`);
    const eq = arg.indexOf("=");
    let name = eq >= 0 ? arg.slice(0, eq) : arg;
    let value: string | undefined = eq >= 0 ? arg.slice(eq + 1) : undefined;
    let o = BY_FLAG.get(name);
    if (!o && name.startsWith("--no-")) {
      const positive = BY_FLAG.get(`--${name.slice(5)}`);
      if (positive?.boolean) {
        if (value !== undefined) bad(`${name} takes no value`);
        o = positive;
        name = positive.flag;
        value = "false";
      }
    }
    if (!o) bad(`unknown flag ${name}; known flags: ${[...BY_FLAG.keys()].join(", ")}`);
    if (value === undefined) {
      const next = argv[i + 1];
      if (o!.boolean && (next === undefined || next.startsWith("--"))) value = "true";
      else if (next === undefined) bad(`${name} needs a value`);
      else {
        value = next;
        i++;
      }
    }
    // "--models-dir --port 1" would otherwise make a folder named "--port"; no setting's value starts with "--".
    if (value!.startsWith("--")) bad(`${name} needs a value, got "${value}" (values cannot start with "--")`);
    out.set(o!.key, { flag: name, value: value! });
  }
  return out;
}

/**
 * Build the configuration. Throws `SktError("bad_request", "invalid_config")` listing every bad
 * value (with the env var or flag it came from) when anything fails validation.
 */
export function loadConfig(sources: ConfigSources = {}): ServerConfig {
  const env = sources.env ?? process.env;
  const flags = parseFlags(sources.argv ?? []);
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  const defaulted = new Set<string>();
  for (const o of CONFIG_OPTIONS) {
    const fromFlag = flags.get(o.key);
    const envValue = env[o.env];
    let raw: string | undefined;
    let source: string;
    if (fromFlag) {
      raw = fromFlag.value;
      source = fromFlag.flag;
    } else if (envValue !== undefined && envValue.trim() !== "") {
      raw = envValue;
      source = o.env;
    } else {
      raw = o.default;
      source = "default";
      defaulted.add(o.key);
    }
    if (raw === undefined) {
      out[o.key] = undefined;
      continue;
    }
    const r = o.parse.safeParse(raw);
    if (r.success) out[o.key] = r.data;
    else {
      const shown = o.secret ? "<redacted>" : JSON.stringify(raw);
      problems.push(
        `${source === "default" ? o.env : source} = ${shown}: ${r.error.issues.map((i) => i.message).join("; ")}`,
      );
    }
  }
  // A solo worker asked for off the CPU (its default there is none: applyDerivedDefaults).
  const solo = out.soloThreads as number | undefined;
  const device = out.device as DeviceSetting | undefined;
  if (!defaulted.has("soloThreads") && solo !== undefined && solo > 0 && device !== undefined && device !== "cpu")
    problems.push(
      `SKT_SOLO_THREADS = ${solo}: the solo worker runs on SKT_DEVICE=cpu only (the device is ${device}); set SKT_SOLO_THREADS=0`,
    );
  if (problems.length > 0) {
    throw new SktError("bad_request", "invalid_config", `Invalid configuration:\n  ${problems.join("\n  ")}`, {
      problems,
    });
  }
  const config = out as unknown as ServerConfig;
  applyDerivedDefaults(config, (key) => defaulted.has(key));
  return config;
}

/** The defaults alone (no environment, no flags), with `overrides` set as if given. Handy for tests. */
export function defaultConfig(overrides: Partial<ServerConfig> = {}): ServerConfig {
  const config = { ...loadConfig({ env: {}, argv: [] }), ...overrides };
  applyDerivedDefaults(config, (key) => !(key in overrides));
  return config;
}

/** Defaults that follow other settings; `defaulted(key)` says whether a setting was left to its default. */
function applyDerivedDefaults(config: ServerConfig, defaulted: (key: keyof ServerConfig) => boolean): void {
  // Workers on WebGPU take turns on the device (SKT_WORKERS' meaning): one unless asked for more.
  // Otherwise SKT_THREADS (given or default) sizes the worker count: never more threads than cores.
  if (defaulted("workers"))
    config.workers = config.device === "webgpu" ? 1 : defaultParallelism(CORES, config.threads).workers;
  // With several workers a batch waits in the shared queue, not behind one worker's run.
  if (defaulted("maxInFlightBatches")) config.maxInFlightBatches = config.workers > 1 ? 1 : 2;
  if (defaulted("soloThreads")) config.soloThreads = soloThreadsFor(config.device, config);
  // Single-thread workers gain nothing from bigger batches, only padding: tighter ones. Except on
  // int8, whose runs are so much shorter that each batch's fixed cost makes bigger ones pay.
  if (defaulted("maxPaddingRatio"))
    config.maxPaddingRatio = config.threads === 1 && config.precision !== "int8" ? 0.1 : 0.25;
}

/** The config with secrets masked, for the startup log line. */
export function redactConfig(config: ServerConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  for (const o of CONFIG_OPTIONS) if (o.secret && out[o.key] !== undefined) out[o.key] = "<redacted>";
  return out;
}

/** The settings table in Markdown (name, env var, flag, default, meaning), for the README. */
export function renderConfigTable(): string {
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const rows = CONFIG_OPTIONS.map((o) => {
    const def = o.defaultDoc ?? (o.default === undefined ? "(unset)" : `\`${o.default}\``);
    return `| \`${o.key}\` | \`${o.env}\` | \`${o.flag}\` | ${esc(def)} | ${esc(o.meaning)} |`;
  });
  return [
    "| Setting | Env var | Flag | Default | Meaning |",
    "| --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Flags win over environment variables; empty environment variables count as unset. Boolean flags also accept `--no-<name>`.",
  ].join("\n");
}
