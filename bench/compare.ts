/**
 * A/B(/C…) throughput comparisons: each configuration (a server, a client and a request stream) is
 * measured with the same closed loop, REPS times, in alternating order (ABC, CBA, ABC…) so drift on
 * a shared machine hits every configuration alike. Ratios are per repetition, then the median.
 */
import { closedLoop, type HttpClient, type RequestSpec } from "./load.js";
import {
  CONCURRENCY,
  cpuLine,
  fmt,
  MAX_REQUESTS,
  markdownTable,
  MEASURE_S,
  median,
  pct,
  QUICK,
  REPS,
  verdict,
  WARMUP_S,
} from "./lib.js";
import { windowProbe, type BenchServer } from "./server.js";

export interface Config {
  name: string;
  server: BenchServer;
  client: HttpClient;
  next: (i: number) => RequestSpec;
  concurrency?: number;
}

export interface RepResult {
  rps: number;
  /** Answers inside the window ÷ window (quantised by whole batches; for reference). */
  countRps: number;
  estimator: "per-client" | "count";
  weightPerSec: number;
  p50: number;
  p99: number;
  failed: number;
  failures: Record<string, number>;
  meanBatchSize: number;
  paddingShare: number;
  semanticPasses: number;
  /** Adapter loads from the store (cache misses after single-flight). */
  loads: number;
  cacheMisses: number;
  cpu: Record<string, number>;
  /** Length of the measurement window, seconds. */
  windowS: number;
}

export interface ConfigResult {
  name: string;
  reps: RepResult[];
}

export interface CompareOptions {
  /** Alternating repetitions (default BENCH_REPS). */
  reps?: number;
  /** Window per configuration and repetition, seconds (default BENCH_DURATION_S). */
  windowS?: number;
}

/**
 * For a ratio with a target: many short alternating windows. On this shared machine consecutive
 * 8 s windows of the same server differed by up to ±15 %, so 3 repetitions can land a ratio on
 * either side of a target; the median of 8 pairs of 4 s windows moves far less.
 */
export const TARGET_COMPARISON: CompareOptions = QUICK
  ? {}
  : { reps: Math.max(REPS, 8), windowS: Math.min(MEASURE_S, 4) };

export async function measureConfig(c: Config, windowS = MEASURE_S): Promise<RepResult> {
  const probe = windowProbe(c.server);
  const r = await closedLoop(c.client, {
    concurrency: c.concurrency ?? CONCURRENCY,
    warmupMs: WARMUP_S * 1000,
    durationMs: windowS * 1000,
    maxRequests: MAX_REQUESTS,
    next: c.next,
    ...probe,
  });
  const s = probe.stats();
  return {
    rps: r.rps,
    countRps: r.countRps,
    estimator: r.estimator,
    weightPerSec: r.weightPerSec,
    p50: r.p50,
    p99: r.p99,
    failed: r.failed,
    failures: r.failures,
    meanBatchSize: s.meanBatchSize,
    paddingShare: s.paddingShare,
    semanticPasses: s.semanticPasses,
    loads: s.loads,
    cacheMisses: s.cacheMisses,
    cpu: s.cpu,
    windowS,
  };
}

export async function compareClosedLoop(
  configs: Config[],
  { reps = REPS, windowS = MEASURE_S }: CompareOptions = {},
): Promise<ConfigResult[]> {
  const results: ConfigResult[] = configs.map((c) => ({ name: c.name, reps: [] }));
  for (let r = 0; r < reps; r++) {
    const order = configs.map((_, k) => k);
    if (r % 2 === 1) order.reverse();
    for (const k of order) {
      const res = await measureConfig(configs[k], windowS);
      results[k].reps[r] = res;
      console.log(
        `rep ${r + 1}/${reps} ${configs[k].name}: ${fmt(res.rps, 1)} req/s, p50 ${fmt(res.p50, 1)} ms, batch ${fmt(res.meanBatchSize, 1)}, failed ${res.failed}, cpu [${cpuLine(res.cpu)}]`,
      );
    }
  }
  return results;
}

/** Median over repetitions of rps(config) ÷ rps(baseline) in the same repetition. */
export function ratioOf(results: ConfigResult[], name: string, baseline: string): number {
  const a = results.find((x) => x.name === name)!;
  const b = results.find((x) => x.name === baseline)!;
  return median(a.reps.map((r, i) => r.rps / b.reps[i].rps));
}

export function throughputTable(
  results: ConfigResult[],
  baseline: string,
  target?: { value: number; for?: string[] },
): string {
  return markdownTable(
    [
      "configuration",
      "requests/s",
      `÷ ${baseline}`,
      "p50 ms",
      "p99 ms",
      "rows/batch",
      "padding",
      "failed",
      "CPU cores (last rep)",
    ],
    results.map((c) => {
      const ratio = ratioOf(results, c.name, baseline);
      const showTarget = target && c.name !== baseline && (!target.for || target.for.includes(c.name));
      return [
        c.name,
        fmt(median(c.reps.map((r) => r.rps)), 1),
        c.name === baseline ? "1" : showTarget ? verdict(ratio, target.value, "higher", 3) : ratio.toFixed(3),
        fmt(median(c.reps.map((r) => r.p50)), 1),
        fmt(median(c.reps.map((r) => r.p99)), 1),
        fmt(median(c.reps.map((r) => r.meanBatchSize)), 1),
        pct(median(c.reps.map((r) => r.paddingShare))),
        String(c.reps.reduce((a, r) => a + r.failed, 0)),
        cpuLine(c.reps.at(-1)?.cpu),
      ];
    }),
    ["l", "r", "r", "r", "r", "r", "r", "r", "l"],
  );
}
