/**
 * The server under test as a child process on a free loopback port (as `npm start` runs it:
 * `node --import tsx src/cli.ts serve`), plus what the scripts ask of it: readiness, /metrics
 * scrapes, resident memory, admin calls, and a clean stop that is registered for failures too.
 */
import { readFile } from "node:fs/promises";
import { Pool } from "undici";
import { freePort, launchServerProcess, waitUntilReady } from "../scripts/lib/server-process.js";
import { cpuSnapshot, cpuUsage, makeTempDir, MODELS_DIR, onCleanup, sleep, THREADS, type CpuSnapshot } from "./lib.js";

export const ADMIN_TOKEN = "bench-admin-token";

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
  metrics(): Promise<Metrics>;
  upload(task: string, bytes: Uint8Array): Promise<{ status: number; ms: number; body: string }>;
  rollback(task: string): Promise<{ status: number; ms: number; body: string }>;
  stop(): Promise<void>;
}

/** Defaults for every bench server: loopback only, quiet logs, bench thread count. */
export function benchServerEnv(adaptersDir: string, port: number): Record<string, string> {
  return {
    PORT: String(port),
    HOST: "127.0.0.1",
    SKT_ADMIN_TOKEN: ADMIN_TOKEN,
    SKT_ADAPTERS_DIR: adaptersDir,
    SKT_MODELS_DIR: MODELS_DIR,
    SKT_THREADS: String(THREADS),
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
  const admin = new Pool(base, { connections: 2, headersTimeout: 60_000, bodyTimeout: 60_000 });
  let stopped: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await admin.close().catch(() => undefined);
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

  const call = async (method: "PUT" | "POST", path: string, body: Uint8Array | string, contentType: string) => {
    const t0 = performance.now();
    const res = await admin.request({
      method,
      path,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": contentType },
      body,
    });
    const text = await res.body.text();
    return { status: res.statusCode, ms: performance.now() - t0, body: text };
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
    metrics: () => scrapeMetrics(base),
    upload: (task, bytes) => call("PUT", `/admin/adapters/${task}`, bytes, "application/octet-stream"),
    rollback: (task) => call("POST", `/admin/adapters/${task}/rollback`, "{}", "application/json"),
    stop,
  };
}

/** A Prometheus text scrape: `name{labels}` → value, with helpers for sums and label filters. */
export class Metrics {
  constructor(readonly samples: Map<string, number>) {}

  /** Sum of every sample of `name` whose labels include all of `labels`. */
  sum(name: string, labels: Record<string, string> = {}): number {
    let total = 0;
    for (const [key, v] of this.samples) {
      const brace = key.indexOf("{");
      const n = brace < 0 ? key : key.slice(0, brace);
      if (n !== name) continue;
      if (Object.entries(labels).every(([k, val]) => key.includes(`${k}="${val}"`))) total += v;
    }
    return total;
  }

  /** this − earlier, for counters. */
  delta(earlier: Metrics, name: string, labels: Record<string, string> = {}): number {
    return this.sum(name, labels) - earlier.sum(name, labels);
  }
}

export async function scrapeMetrics(base: string): Promise<Metrics> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const sp = line.lastIndexOf(" ");
    const v = Number(line.slice(sp + 1));
    if (Number.isFinite(v)) samples.set(line.slice(0, sp), v);
  }
  return new Metrics(samples);
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
 * script can report batch statistics and how busy the machine was (others' CPU is noise).
 */
export function windowProbe(server: BenchServer) {
  let m0: Metrics | undefined;
  let m1: Metrics | undefined;
  let c0: CpuSnapshot | undefined;
  let c1: CpuSnapshot | undefined;
  const pids = { server: server.pid, bench: "self" as const };
  return {
    onWindowStart: async () => {
      m0 = await server.metrics();
      c0 = cpuSnapshot(pids);
    },
    onWindowEnd: async () => {
      c1 = cpuSnapshot(pids);
      m1 = await server.metrics();
    },
    stats: () => ({ ...batchStats(m0!, m1!), cpu: cpuUsage(c0!, c1!) }),
  };
}
