/**
 * Two servers that differ in server settings, for what they do to the main thread:
 *
 *   npm run bench:fast-lane   SKT_FAST_LANE=true vs false (src/server/classify-fast-lane.ts)
 *   npm run bench:nice        SKT_INFERENCE_NICE=10 vs 0 (src/engine/thread-priority.ts)
 *   tsx bench/main-thread.ts NAME=A[,NAME=A…] NAME=B[,NAME=B…]   any other pair
 *
 * Both get the same adapter and are saturated by the same closed loop of single-text requests,
 * measured in alternating order in every pair; each pair also runs the backbone's sorted raw limit
 * (as `npm run bench:efficiency` defines it: SST-2 dev sorted by length in full batches, padded
 * graphs), so both servers meet the same limit. Reports, per server, real tokens/s against the
 * limit, the main thread's CPU per request and its wait for a core, and GET /metrics latency under
 * load (timed every BENCH_METRICS_PROBE_MS, default 250; both servers alike).
 */
import { encodeAdapter } from "../src/adapters/format.js";
import { loadConfig } from "../src/config.js";
import { rowLength } from "../src/engine/assemble.js";
import { syntheticAdapter } from "./adapters.js";
import {
  CONCURRENCY,
  cpuLine,
  envNumber,
  fmt,
  main,
  MEASURE_S,
  markdownTable,
  median,
  medianOf,
  onCleanup,
  pct,
  percentile,
  QUICK,
  readSst2Sentences,
  parseSettings,
  REPS,
  settingsLine,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { classifyRequest, closedLoop, HttpClient } from "./load.js";
import { encodeFor, openRaw, prepareLocal, rawThroughput, sortedBatches, type RawThroughput } from "./raw.js";
import { startServer, windowProbe } from "./server.js";

const TASK = "mainthread";
const PAIRS = QUICK ? 1 : Math.round(envNumber("BENCH_MAIN_THREAD_PAIRS", Math.max(REPS, 8), 1));
const SLICE_S = QUICK ? MEASURE_S : Math.min(MEASURE_S, 3);
const REWARM_S = Math.min(WARMUP_S, 0.5);
/**
 * Each server's first window warms up this long: a fresh server's main thread took 30–60 % more
 * CPU per request in the first two pairs than from the fourth on (V8 still optimising the hot paths).
 */
const FIRST_WARMUP_S = QUICK ? WARMUP_S : envNumber("BENCH_MAIN_THREAD_WARMUP_S", 8, 0);
const METRICS_PROBE_MS = envNumber("BENCH_METRICS_PROBE_MS", 250, 0);
const SPINNING = loadConfig({ env: {} }).ortSpinning;
const MAX_BATCH_SIZE = 32;
type Side = "a" | "b";

const SPECS: Record<Side, string> = {
  a: process.argv[2] ?? "SKT_FAST_LANE=true",
  b: process.argv[3] ?? "SKT_FAST_LANE=false",
};

main(async () => {
  const limitRunner = await openRaw(undefined, "fp32", "off", SPINNING);
  onCleanup(() => limitRunner.release());
  const sentences = readSst2Sentences("dev");
  const file = syntheticAdapter(limitRunner.assets, { task: TASK, seed: 1 });
  const adapter = await prepareLocal(limitRunner, file);
  const ids = sentences.map((s) => encodeFor(limitRunner, adapter, s));
  const positions = ids.map((x) => rowLength(adapter, x.length));
  const limitBatches = sortedBatches(adapter, ids, MAX_BATCH_SIZE);

  const open = async (side: Side) => {
    const srv = await startServer({
      label: `main-thread-${side}`,
      env: {
        SKT_MAX_BATCH_SIZE: String(MAX_BATCH_SIZE),
        SKT_QUEUE_SIZE: String(4 * CONCURRENCY),
        ...parseSettings(SPECS[side]),
      },
    });
    await srv.client.uploadAdapter(TASK, encodeAdapter(file, limitRunner.assets.dims));
    const client = new HttpClient(srv.base, CONCURRENCY);
    onCleanup(() => client.close());
    return { srv, client };
  };
  const servers = { a: await open("a"), b: await open("b") };

  const measure = async (side: Side, warmupS: number) => {
    const { srv, client } = servers[side];
    const probe = windowProbe(srv, { metricsProbeMs: METRICS_PROBE_MS });
    const s = await closedLoop(client, {
      concurrency: CONCURRENCY,
      warmupMs: warmupS * 1000,
      durationMs: SLICE_S * 1000,
      next: (i) => classifyRequest(TASK, sentences[i % sentences.length], positions[i % sentences.length]),
      onWindowStart: () => probe.onWindowStart(),
      onWindowEnd: () => probe.onWindowEnd(),
    });
    const { cpu, meanBatchSize } = probe.stats();
    return {
      rps: s.rps,
      realTokensPerSec: s.weightPerSec,
      p50: s.p50,
      p99: s.p99,
      failed: s.failed,
      meanBatchSize,
      cpu,
      mainCores: cpu["server main"],
      mainUsPerRequest: (cpu["server main"] / s.rps) * 1e6,
      mainWaiting: cpu["server main waiting"],
      metricsMs: await probe.metricsMs(),
    };
  };

  type Measured = Awaited<ReturnType<typeof measure>>;
  interface Pair {
    a: Measured;
    b: Measured;
    limit: RawThroughput;
    aOverLimit: number;
    bOverLimit: number;
    aOverB: number;
    mainUsRatio: number;
    othersMax: number;
  }
  const pairs: Pair[] = [];
  for (let r = 0; r < PAIRS; r++) {
    const order: Side[] = r % 2 === 0 ? ["a", "b"] : ["b", "a"];
    const got: Partial<Record<Side, Measured>> = {};
    for (const side of order) got[side] = await measure(side, r === 0 ? FIRST_WARMUP_S : REWARM_S);
    const limit = await rawThroughput(limitRunner, limitBatches, SLICE_S * 1000);
    const a = got.a!;
    const b = got.b!;
    pairs.push({
      a,
      b,
      limit,
      aOverLimit: a.realTokensPerSec / limit.realTokensPerSec,
      bOverLimit: b.realTokensPerSec / limit.realTokensPerSec,
      aOverB: a.realTokensPerSec / b.realTokensPerSec,
      mainUsRatio: a.mainUsPerRequest / b.mainUsPerRequest,
      othersMax: Math.max(a.cpu.others, b.cpu.others),
    });
    const line = (x: Measured) =>
      `${fmt(x.rps)} req/s, ${fmt(x.mainUsPerRequest)} µs/req main, waiting ${pct(x.mainWaiting)}, /metrics p99 ${fmt(percentile(x.metricsMs, 99), 1)} ms`;
    console.log(
      `pair ${r + 1}/${PAIRS} (${order.join(" then ")}): a ${line(a)} · b ${line(b)} · limit ${fmt(limit.sentencesPerSec)} sent/s · a ÷ b ${(a.realTokensPerSec / b.realTokensPerSec).toFixed(3)} · others ≤ ${Math.max(a.cpu.others, b.cpu.others).toFixed(2)} cores`,
    );
  }

  const of = (side: Side) => pairs.map((p) => p[side]);
  const pooledMetrics = (side: Side) => of(side).flatMap((x) => x.metricsMs);
  const row = (side: Side, overLimit: (p: Pair) => number) => {
    const xs = of(side);
    const probes = pooledMetrics(side);
    return [
      `${side}: ${SPECS[side]}`,
      fmt(median(xs.map((x) => x.rps))),
      fmt(median(xs.map((x) => x.realTokensPerSec))),
      medianOf(pairs, overLimit).toFixed(3),
      `${median(xs.map((x) => x.mainCores)).toFixed(3)} / ${fmt(median(xs.map((x) => x.mainUsPerRequest)))} / ${pct(median(xs.map((x) => x.mainWaiting)))}`,
      probes.length
        ? `${fmt(percentile(probes, 50), 1)} / ${fmt(percentile(probes, 99), 1)} (${probes.length})`
        : "off",
      `${fmt(median(xs.map((x) => x.p50)), 1)} / ${fmt(median(xs.map((x) => x.p99)), 1)}`,
      fmt(median(xs.map((x) => x.meanBatchSize)), 1),
      String(xs.reduce((a, x) => a + x.failed, 0)),
    ];
  };
  const table = markdownTable(
    [
      "server",
      "requests/s",
      "real tokens/s",
      "÷ sorted raw limit (real tokens/s)",
      "main thread: cores / CPU µs per request / waiting for a core",
      "GET /metrics under load p50 / p99 ms (probes)",
      "latency p50 / p99 ms",
      "rows per batch",
      "failed",
    ],
    [row("a", (p) => p.aOverLimit), row("b", (p) => p.bOverLimit)],
  );
  const ratios = markdownTable(
    ["same pairs", "median", "per pair"],
    [
      [
        "real tokens/s, a ÷ b",
        medianOf(pairs, (p) => p.aOverB).toFixed(3),
        pairs.map((p) => p.aOverB.toFixed(3)).join(", "),
      ],
      [
        "main-thread CPU µs per request, a ÷ b",
        medianOf(pairs, (p) => p.mainUsRatio).toFixed(3),
        pairs.map((p) => p.mainUsRatio.toFixed(3)).join(", "),
      ],
      [
        "sorted raw limit, sentences/s",
        fmt(medianOf(pairs, (p) => p.limit.sentencesPerSec)),
        pairs.map((p) => fmt(p.limit.sentencesPerSec)).join(", "),
      ],
      ["CPU of other processes, most in a pair (cores)", "", pairs.map((p) => p.othersMax.toFixed(2)).join(", ")],
    ],
  );

  await writeReport({
    name: `main-thread-${Object.keys(parseSettings(SPECS.a)).join("-")}`,
    title: `The main thread: ${SPECS.a} (a) vs ${SPECS.b} (b)`,
    notes: [
      settingsLine({
        "window s": SLICE_S,
        pairs: PAIRS,
        "max batch size": MAX_BATCH_SIZE,
        "metrics probe ms": METRICS_PROBE_MS,
      }),
      `One prompt adapter (${file.metadata.promptLength} prompt positions) uploaded to both servers; ${sentences.length} SST-2 dev sentences, one per request, ${CONCURRENCY} connections; ${PAIRS} pairs of ${SLICE_S} s windows (each server warmed up ${FIRST_WARMUP_S} s before its first), the two servers in alternating order, then ${SLICE_S} s of the sorted raw limit; medians over pairs (GET /metrics latencies pooled over all windows).`,
      `Everything else at the server's defaults. Last pair's CPU: a — ${cpuLine(pairs.at(-1)?.a.cpu)}; b — ${cpuLine(pairs.at(-1)?.b.cpu)}.`,
    ],
    tables: [{ markdown: table }, { caption: "Ratios within each pair", markdown: ratios }],
    data: { specs: SPECS, pairs, pairsCount: PAIRS, sliceS: SLICE_S, metricsProbeMs: METRICS_PROBE_MS },
  });
});
