/**
 * The server under test as a child process on a free loopback port (as `npm start` runs it:
 * `node --import tsx src/cli.ts serve`), plus what the scripts ask of it: readiness, /metrics
 * scrapes, resident memory, admin calls (through the typed client), and a clean stop that is
 * registered for failures too.
 */
import { readFile } from "node:fs/promises";
import { parseMetrics, sampleSum, type Sample } from "../scripts/lib/prometheus.js";
import { periodic } from "./load.js";
import { freePort, launchServerProcess, waitUntilReady } from "../scripts/lib/server-process.js";
import { ServerError, SktClient, type TaskInfo } from "../src/client/client.js";
import { cpuSnapshot, cpuUsage, makeTempDir, MODELS_DIR, onCleanup, sleep, type CpuSnapshot } from "./lib.js";

export const ADMIN_TOKEN = "bench-admin-token";

/** An admin call's status and time: the new current version, or the server's error. */
export interface TimedAdminCall {
  status: number;
  ms: number;
  info?: TaskInfo;
  error?: ServerError;
}

export interface ServerOptions {
  /** Shown in errors. */
  label?: string;
  /** Extra server environment (SKT_* settings); wins over the bench defaults. */
  env?: Record<string, string>;
  /** Existing adapter store; a fresh temp dir (removed at the end) when omitted. */
  adaptersDir?: string;
  readyTimeoutMs?: number;
  /** Extra node flags for the server process (also from BENCH_SERVER_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof"). */
  nodeArgs?: string[];
  /** Another checkout's bin/skt.js to run instead of this one's (before/after comparisons). */
  entry?: string;
}

export interface BenchServer {
  label: string;
  base: string;
  port: number;
  pid: number;
  adaptersDir: string;
  /** The server settings this run used (bench defaults + overrides). */
  env: Record<string, string>;
  /** stdout+stderr so far (the tail is shown when something fails). */
  output(): string;
  /** VmRSS of the server process in bytes (from /proc). */
  rssBytes(): Promise<number>;
  /** A typed client for this server, with the admin token. */
  client: SktClient;
  metrics(): Promise<Metrics>;
  /** A timed upload that reports any answer (for callers that count failures; others use `client`). */
  upload(task: string, bytes: Uint8Array): Promise<TimedAdminCall>;
  /** A timed rollback to the previous version, reported like `upload`. */
  rollback(task: string): Promise<TimedAdminCall>;
  stop(): Promise<void>;
}

/** Defaults for every bench server: loopback only, quiet logs; workers and threads are the server's own (see THREADS). */
export function benchServerEnv(adaptersDir: string, port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: "127.0.0.1",
    SKT_ADMIN_TOKEN: ADMIN_TOKEN,
    SKT_ADAPTERS_DIR: adaptersDir,
    SKT_MODELS_DIR: MODELS_DIR,
    SKT_LOG_LEVEL: "warn",
    SKT_SHUTDOWN_TIMEOUT_MS: "3000",
  };
}

export async function startServer(opts: ServerOptions = {}): Promise<BenchServer> {
  const label = opts.label ?? "server";
  const adaptersDir = opts.adaptersDir ?? (await makeTempDir("adapters"));
  const port = await freePort();
  const env = { ...benchServerEnv(adaptersDir, port), ...(opts.env ?? {}) };
  const nodeArgs = [
    ...(process.env.BENCH_SERVER_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? []),
    ...(opts.nodeArgs ?? []),
  ];
  const server = await launchServerProcess({ adaptersDir, port, env, nodeArgs, entry: opts.entry });
  const base = server.base;
  const child = server.proc;
  const exited = server.exited;
  const client = new SktClient({ url: base, token: ADMIN_TOKEN });
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const outcome = await Promise.race([exited, sleep(10_000).then(() => "timeout" as const)]);
        if (outcome === "timeout") {
          child.kill("SIGKILL");
          await exited;
        }
      }
    })();
    return stopped;
  };
  onCleanup(stop, () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });

  try {
    await waitUntilReady(server, opts.readyTimeoutMs ?? 180_000, label);
  } catch (e) {
    await stop();
    throw e;
  }

  const timed = async (call: () => Promise<TaskInfo>, status: number): Promise<TimedAdminCall> => {
    const t0 = performance.now();
    try {
      const info = await call();
      return { status, ms: performance.now() - t0, info };
    } catch (e) {
      if (!(e instanceof ServerError)) throw e;
      return { status: e.status, ms: performance.now() - t0, error: e };
    }
  };

  return {
    label,
    base,
    port,
    pid: server.pid,
    adaptersDir,
    env,
    output: () => server.output(),
    rssBytes: async () => {
      const status = await readFile(`/proc/${child.pid}/status`, "utf8");
      const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status);
      if (!kb) throw new Error("VmRSS not found in /proc status");
      return Number(kb[1]) * 1024;
    },
    client,
    metrics: async () => new Metrics(parseMetrics(await client.metrics())),
    upload: (task, bytes) => timed(() => client.uploadAdapter(task, bytes), 201),
    rollback: (task) => timed(() => client.rollback(task), 200),
    stop,
  };
}

/** A /metrics scrape, with sums over label filters and differences between two scrapes. */
export class Metrics {
  constructor(readonly samples: Sample[]) {}

  /** Sum of every sample of `name` whose labels include all of `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    return sampleSum(this.samples, name, labels);
  }

  /** this − earlier, for counters. */
  delta(earlier: Metrics, name: string, labels: Record<string, string> = {}): number {
    return this.sum(name, labels) - earlier.sum(name, labels);
  }
}

/** Batch statistics between two scrapes: mean rows per batch and the padding share of positions. */
export function batchStats(
  before: Metrics,
  after: Metrics,
): {
  batches: number;
  meanBatchSize: number;
  paddingShare: number;
  realTokens: number;
  inferenceSeconds: number;
  semanticPasses: number;
  cacheMisses: number;
  loads: number;
} {
  const batches = after.delta(before, "skt_batch_size_count");
  const rows = after.delta(before, "skt_batch_size_sum");
  const real = after.delta(before, "skt_tokens_total", { kind: "real" });
  const pad = after.delta(before, "skt_tokens_total", { kind: "padding" });
  return {
    batches,
    meanBatchSize: batches ? rows / batches : NaN,
    paddingShare: real + pad ? pad / (real + pad) : NaN,
    realTokens: real,
    inferenceSeconds: after.delta(before, "skt_inference_duration_seconds_sum"),
    semanticPasses: after.delta(before, "skt_semantic_passes_total"),
    cacheMisses: after.delta(before, "skt_adapter_cache_misses_total"),
    loads: after.delta(before, "skt_adapter_load_duration_seconds_count"),
  };
}

/**
 * Hooks for a load's measurement window: /metrics and CPU snapshots at its start and end, so a
 * script can report batch statistics and how busy the machine was (others' CPU is noise). The
 * server's main thread (its event loop: HTTP, JSON, tokenization, batch assembly) is accounted on
 * its own as `server main`, the rest of the process (inference workers, onnxruntime's pool, GC
 * helpers) as `server rest`. With `metricsProbeMs`, GET /metrics is timed every that many ms on a
 * connection of its own during the window (`metricsMs()`: each probe's latency).
 */
export function windowProbe(server: BenchServer, opts: { metricsProbeMs?: number } = {}) {
  let m0: Metrics | undefined;
  let m1: Metrics | undefined;
  let c0: CpuSnapshot | undefined;
  let c1: CpuSnapshot | undefined;
  let probing: Promise<number[]> | undefined;
  let stop = false;
  const pids = { server: server.pid, bench: "self" as const };
  const threads = { "server main": { pid: server.pid, tid: server.pid } };
  return {
    onWindowStart: async () => {
      m0 = await server.metrics();
      c0 = cpuSnapshot(pids, threads);
      stop = false;
      if (opts.metricsProbeMs)
        probing = periodic(
          opts.metricsProbeMs,
          () => stop,
          async () => {
            const t0 = performance.now();
            const r = await fetch(`${server.base}/metrics`);
            await r.arrayBuffer();
            if (r.status !== 200) throw new Error(`/metrics answered ${r.status}`);
            return performance.now() - t0;
          },
        );
    },
    onWindowEnd: async () => {
      c1 = cpuSnapshot(pids, threads);
      stop = true;
      m1 = await server.metrics();
    },
    stats: () => {
      const cpu = cpuUsage(c0!, c1!);
      cpu["server rest"] = cpu.server - cpu["server main"];
      return { ...batchStats(m0!, m1!), cpu };
    },
    /** The /metrics probes' latencies (ms), once the window has ended. */
    metricsMs: async (): Promise<number[]> => (await probing) ?? [],
  };
}
