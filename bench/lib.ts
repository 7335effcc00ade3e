/** Shared helpers of the benchmark scripts. */
import { readFileSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadConfig } from "../src/config.js";
import { seededRandom } from "../src/random.js";
import { REPO_ROOT } from "../scripts/lib/paths.js";

// Data paths and the SST-2 reader are shared with the tests and scripts (scripts/lib/).
export { MODELS_DIR, REPO_ROOT, SST2_DIR } from "../scripts/lib/paths.js";
export { readSst2, readSst2Sentences } from "../scripts/lib/sst2.js";

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

// ---- Settings shared by every script ----------------------------------------------------------

/** BENCH_QUICK=1: a smoke run with short measurements (numbers are not meaningful). */
export const QUICK = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";

export function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name}=${JSON.stringify(raw)}: expected a number ≥ ${min}`);
  return n;
}

/** Repetitions of every measurement (the tables report medians). */
export const REPS = Math.round(envNumber("BENCH_REPS", QUICK ? 1 : 3, 1));
/**
 * onnxruntime intra-op threads of the raw backbone baselines (the backbone's limit: one session on
 * the machine's two cores). The bench servers run their own defaults (SKT_WORKERS × SKT_THREADS from
 * the cores: 2×1 on this 2-core machine), or what SKT_WORKERS/SKT_THREADS in the environment say.
 */
export const THREADS = Math.round(envNumber("BENCH_THREADS", 2, 1));

/** The servers' SKT_WORKERS × SKT_THREADS, as they derive it from this environment and machine. */
export function serverShape(): { workers: number; threads: number } {
  const { workers, threads } = loadConfig({ env: { ...process.env }, argv: [] });
  return { workers, threads };
}
/** Seconds of one measurement window (each repetition of each configuration). */
export const MEASURE_S = envNumber("BENCH_DURATION_S", QUICK ? 1.5 : 8, 0.1);
/** Seconds of warm-up load before a measurement window (not counted). */
export const WARMUP_S = envNumber("BENCH_WARMUP_S", QUICK ? 0.5 : 1.5, 0);
/** Closed-loop clients: enough to keep one batch running and the next one full. */
export const CONCURRENCY = Math.round(envNumber("BENCH_CONCURRENCY", 64, 1));
/** Hard cap on requests in one measurement window (keeps every loop bounded in count). */
export const MAX_REQUESTS = Math.round(envNumber("BENCH_MAX_REQUESTS", 1_000_000, 1));

/** A duration in ms: the default, or the quick-mode value under BENCH_QUICK=1. */
export function pick<T>(normal: T, quick: T): T {
  return QUICK ? quick : normal;
}

export const RESULTS_DIR = path.join(REPO_ROOT, "bench/results");

/** "NAME=VALUE,NAME=VALUE" (a server setting on the command line of a bench) → env. */
export function parseSettings(spec: string): Record<string, string> {
  return Object.fromEntries(
    spec.split(",").map((kv) => {
      const at = kv.indexOf("=");
      if (at < 1) throw new Error(`not NAME=VALUE: ${kv}`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    }),
  );
}

export function settingsLine(extra: Record<string, unknown> = {}): string {
  const shape = serverShape();
  const parts = {
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model?.trim(),
    "server SKT_WORKERS × SKT_THREADS": `${shape.workers}×${shape.threads}`,
    "raw baseline intra-op threads": THREADS,
    "inter-op threads": 1,
    reps: REPS,
    "window s": MEASURE_S,
    "warm-up s": WARMUP_S,
    quick: QUICK,
    ...extra,
  };
  return Object.entries(parts)
    .map(([k, v]) => `${k}: ${v}`)
    .join(" · ");
}

// ---- Data -------------------------------------------------------------------------------------

/** A seeded Zipf(s) sampler over ranks 0…n−1 (rank 0 the most frequent). */
export function zipfSampler(n: number, s: number, seed: number): { next(): number; share(topK: number): number } {
  const weights = Array.from({ length: n }, (_, k) => 1 / Math.pow(k + 1, s));
  const total = weights.reduce((a, b) => a + b, 0);
  const cdf = new Float64Array(n);
  let acc = 0;
  weights.forEach((w, k) => (cdf[k] = acc += w / total));
  const rand = seededRandom(seed);
  return {
    next() {
      const u = rand();
      let lo = 0;
      let hi = n - 1;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cdf[mid] < u) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    },
    share: (topK) => cdf[Math.min(n, topK) - 1],
  };
}

// ---- Statistics and formatting ----------------------------------------------------------------

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** A number for a table cell: thousands separators, `digits` decimals, "n/a" for NaN. */
export function fmt(x: number | null | undefined, digits = 0): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return "n/a";
  return x.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function pct(x: number, digits = 1): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : "n/a";
}

/** "0.93 (target ≥ 0.85: ok)". */
export function verdict(value: number, target: number, better: "higher" | "lower", digits = 2): string {
  if (!Number.isFinite(value)) return "n/a";
  const ok = better === "higher" ? value >= target : value <= target;
  return `${value.toFixed(digits)} (target ${better === "higher" ? "≥" : "≤"} ${target}: ${ok ? "met" : "MISSED"})`;
}

export function markdownTable(headers: string[], rows: (string | number)[][], align?: ("l" | "r")[]): string {
  const a = align ?? headers.map((_, i) => (i === 0 ? "l" : "r"));
  return [
    `| ${headers.join(" | ")} |`,
    `|${a.map((x) => (x === "l" ? "---" : "---:")).join("|")}|`,
    ...rows.map((r) => `| ${r.map(String).join(" | ")} |`),
  ].join("\n");
}

export interface Report {
  /** File stem under bench/results and the script's name. */
  name: string;
  title: string;
  /** Settings line(s) and other notes printed above the tables. */
  notes: string[];
  tables: { caption?: string; markdown: string }[];
  /** Everything measured, for the JSON file. */
  data: unknown;
}

/** Prints the report as Markdown and writes bench/results/<name>.json and <name>.md. */
export async function writeReport(r: Report): Promise<void> {
  const md = [
    `## ${r.title}`,
    "",
    ...r.notes.map((n) => `${n}  `),
    "",
    ...r.tables.flatMap((t) => [...(t.caption ? [`**${t.caption}**`, ""] : []), t.markdown, ""]),
  ].join("\n");
  console.log(`\n${md}`);
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = {
    name: r.name,
    title: r.title,
    date: new Date().toISOString(),
    quick: QUICK,
    settings: {
      reps: REPS,
      threads: THREADS,
      measureS: MEASURE_S,
      warmupS: WARMUP_S,
      concurrency: CONCURRENCY,
      cores: os.cpus().length,
      cpu: os.cpus()[0]?.model?.trim(),
      node: process.version,
    },
    notes: r.notes,
    data: r.data,
  };
  await writeFile(path.join(RESULTS_DIR, `${r.name}.json`), JSON.stringify(json, null, 2) + "\n");
  await writeFile(path.join(RESULTS_DIR, `${r.name}.md`), md);
}

// ---- Clean-up of child processes and temp dirs, even on failure -------------------------------

const cleanups: (() => Promise<void> | void)[] = [];
const exitCleanups: (() => void)[] = [];

/** Registers async clean-up (run by `main` in reverse order) and a synchronous last resort for exit. */
export function onCleanup(fn: () => Promise<void> | void, onExit?: () => void): void {
  cleanups.push(fn);
  if (onExit) exitCleanups.push(onExit);
}

async function runCleanups(): Promise<void> {
  while (cleanups.length) {
    const fn = cleanups.pop()!;
    try {
      await fn();
    } catch (e) {
      console.error("clean-up failed:", (e as Error).message);
    }
  }
}

let exitHooked = false;
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on("exit", () => {
    for (const fn of exitCleanups) {
      try {
        fn();
      } catch {
        // best effort at exit
      }
    }
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
      console.error(`\n${sig}: cleaning up`);
      void runCleanups().finally(() => process.exit(130));
    });
  }
}

/** A temp directory removed at the end (or at exit, whatever happens). */
export async function makeTempDir(prefix: string): Promise<string> {
  hookExit();
  const dir = await mkdtemp(path.join(os.tmpdir(), `skt-bench-${prefix}-`));
  onCleanup(
    () => rm(dir, { recursive: true, force: true }),
    () => rmSync(dir, { recursive: true, force: true }),
  );
  return dir;
}

/** Runs a script body; always cleans up; exits non-zero on failure. A global deadline bounds it. */
export function main(fn: () => Promise<void>, deadlineS = Number(process.env.BENCH_SCRIPT_TIMEOUT_S ?? 1800)): void {
  hookExit();
  const killer = setTimeout(() => {
    console.error(`script exceeded ${deadlineS} s; aborting`);
    void runCleanups().finally(() => process.exit(124));
  }, deadlineS * 1000);
  killer.unref();
  void fn()
    .then(
      () => 0,
      (e: unknown) => {
        console.error(e);
        return 1;
      },
    )
    .then(async (code) => {
      await runCleanups();
      clearTimeout(killer);
      process.exit(code);
    });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Median of `f` over repetitions. */
export function medianOf<T>(reps: T[], f: (r: T) => number): number {
  return median(reps.map(f));
}

/** A table-cell formatter over `reps`: the median of `f`, printed with `digits` decimals. */
export function medianCell<T>(reps: T[]): (f: (r: T) => number, digits?: number) => string {
  return (f, digits = 0) => fmt(medianOf(reps, f), digits);
}

// ---- CPU accounting (shared machine: say how much CPU others took during a measurement) -------

export interface CpuSnapshot {
  at: number;
  /** Jiffies of all CPUs busy (not idle/iowait), machine-wide. */
  busy: number;
  /** Jiffies (user + system) of each watched process. */
  procs: Record<string, number>;
  /** Jiffies (user + system) of each watched thread (part of its process's figure, not added to it). */
  threads: Record<string, number>;
  /** Nanoseconds each watched thread spent runnable but waiting for a core (schedstat's second field). */
  waits: Record<string, number>;
}

/** A thread to watch: `tid` of process `pid` (a Node process's main thread, the event loop, has tid = pid). */
export interface ThreadId {
  pid: number;
  tid: number;
}

/** utime + stime of a /proc …/stat line (fields 14 and 15; the name in parentheses may hold spaces). */
function statJiffies(file: string): number {
  try {
    const stat = readFileSync(file, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}

function runQueueWaitNs(t: ThreadId): number {
  try {
    return Number(readFileSync(`/proc/${t.pid}/task/${t.tid}/schedstat`, "utf8").split(" ")[1]);
  } catch {
    return NaN;
  }
}

/** Snapshot of machine-wide busy CPU time, of the given processes (name → pid) and of the given threads. */
export function cpuSnapshot(
  pids: Record<string, number | "self">,
  threads: Record<string, ThreadId> = {},
): CpuSnapshot {
  let busy = NaN;
  try {
    const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    busy = cpu.reduce((a, b) => a + b, 0) - cpu[3] - cpu[4]; // minus idle and iowait
  } catch {
    // not Linux: leave NaN
  }
  return {
    at: performance.now(),
    busy,
    procs: Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, statJiffies(`/proc/${p}/stat`)])),
    threads: Object.fromEntries(
      Object.entries(threads).map(([k, t]) => [k, statJiffies(`/proc/${t.pid}/task/${t.tid}/stat`)]),
    ),
    waits: Object.fromEntries(Object.entries(threads).map(([k, t]) => [k, runQueueWaitNs(t)])),
  };
}

/**
 * Cores busy on average between two snapshots: each process, and everything else ("others"); each
 * watched thread too, under its own name (already counted in its process, so not in "others"), and
 * `<name> waiting`: the share of the time it was runnable but had no core.
 */
export function cpuUsage(a: CpuSnapshot, b: CpuSnapshot): Record<string, number> {
  const hz = 100; // USER_HZ on Linux
  const s = (b.at - a.at) / 1000;
  const out: Record<string, number> = {};
  let ours = 0;
  for (const k of Object.keys(b.procs)) {
    out[k] = (b.procs[k] - a.procs[k]) / hz / s;
    ours += out[k];
  }
  for (const k of Object.keys(b.threads)) {
    out[k] = (b.threads[k] - a.threads[k]) / hz / s;
    out[`${k} waiting`] = (b.waits[k] - a.waits[k]) / 1e9 / s;
  }
  out.machine = (b.busy - a.busy) / hz / s;
  out.others = Math.max(0, out.machine - ours);
  return out;
}

/** Cores per name; a thread's `… waiting` share (of the time, not cores) as a percentage. */
export function cpuLine(u: Record<string, number> | undefined): string {
  if (!u) return "n/a";
  return Object.entries(u)
    .map(([k, v]) => `${k} ${!Number.isFinite(v) ? "n/a" : k.endsWith(" waiting") ? pct(v) : v.toFixed(2)}`)
    .join(", ");
}
