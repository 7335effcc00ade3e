/**
 * npm run bench:fast-lane — the /classify fast lane (SKT_FAST_LANE, src/server/classify-fast-lane.ts)
 * on and off: two servers with the same adapter, saturated by the same closed loop of single-text
 * requests, measured in alternating order in every pair, each pair also running the backbone's
 * sorted raw limit (as `npm run bench:efficiency` defines it: SST-2 dev sorted by length in full
 * batches, padded graphs) so both servers meet the same limit. Reports, per server, real tokens/s
 * against the limit, the main thread's CPU per request and its wait for a core, and GET /metrics
 * latency under load (timed every BENCH_METRICS_PROBE_MS, default 250; both servers alike).
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
  REPS,
  settingsLine,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { classifyRequest, closedLoop, HttpClient } from "./load.js";
import { encodeFor, openRaw, prepareLocal, rawThroughput, sortedBatches, type RawThroughput } from "./raw.js";
import { startServer, windowProbe } from "./server.js";

const TASK = "fastlane";
const PAIRS = QUICK ? 1 : Math.round(envNumber("BENCH_FAST_LANE_PAIRS", Math.max(REPS, 8), 1));
const SLICE_S = QUICK ? MEASURE_S : Math.min(MEASURE_S, 3);
const REWARM_S = Math.min(WARMUP_S, 0.5);
const METRICS_PROBE_MS = envNumber("BENCH_METRICS_PROBE_MS", 250, 0);
const SPINNING = loadConfig({ env: {} }).ortSpinning;
const MAX_BATCH_SIZE = 32;
type Side = "on" | "off";

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
      label: `fast-lane-${side}`,
      env: {
        SKT_FAST_LANE: String(side === "on"),
        SKT_MAX_BATCH_SIZE: String(MAX_BATCH_SIZE),
        SKT_QUEUE_SIZE: String(4 * CONCURRENCY),
      },
    });
    await srv.client.uploadAdapter(TASK, encodeAdapter(file, limitRunner.assets.dims));
    const client = new HttpClient(srv.base, CONCURRENCY);
    onCleanup(() => client.close());
    return { srv, client };
  };
  const servers = { on: await open("on"), off: await open("off") };

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
    on: Measured;
    off: Measured;
    limit: RawThroughput;
    onOverLimit: number;
    offOverLimit: number;
    onOverOff: number;
    mainUsRatio: number;
    othersMax: number;
  }
  const pairs: Pair[] = [];
  for (let r = 0; r < PAIRS; r++) {
    const order: Side[] = r % 2 === 0 ? ["on", "off"] : ["off", "on"];
    const got: Partial<Record<Side, Measured>> = {};
    for (const side of order) got[side] = await measure(side, r === 0 ? WARMUP_S : REWARM_S);
    const limit = await rawThroughput(limitRunner, limitBatches, SLICE_S * 1000);
    const on = got.on!;
    const off = got.off!;
    pairs.push({
      on,
      off,
      limit,
      onOverLimit: on.realTokensPerSec / limit.realTokensPerSec,
      offOverLimit: off.realTokensPerSec / limit.realTokensPerSec,
      onOverOff: on.realTokensPerSec / off.realTokensPerSec,
      mainUsRatio: on.mainUsPerRequest / off.mainUsPerRequest,
      othersMax: Math.max(on.cpu.others, off.cpu.others),
    });
    console.log(
      `pair ${r + 1}/${PAIRS} (${order.join(" then ")}): on ${fmt(on.rps)} req/s, ${fmt(on.mainUsPerRequest)} µs/req main, waiting ${pct(on.mainWaiting)}, /metrics p99 ${fmt(percentile(on.metricsMs, 99), 1)} ms · off ${fmt(off.rps)} req/s, ${fmt(off.mainUsPerRequest)} µs/req main, waiting ${pct(off.mainWaiting)}, /metrics p99 ${fmt(percentile(off.metricsMs, 99), 1)} ms · limit ${fmt(limit.sentencesPerSec)} sent/s · on ÷ off ${(on.realTokensPerSec / off.realTokensPerSec).toFixed(3)} · others ≤ ${Math.max(on.cpu.others, off.cpu.others).toFixed(2)} cores`,
    );
  }

  const of = (side: Side) => pairs.map((p) => p[side]);
  const pooledMetrics = (side: Side) => of(side).flatMap((x) => x.metricsMs);
  const row = (side: Side, overLimit: (p: Pair) => number) => {
    const xs = of(side);
    const probes = pooledMetrics(side);
    return [
      side === "on" ? "SKT_FAST_LANE=true (default)" : "SKT_FAST_LANE=false (every request through hono)",
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
    [row("on", (p) => p.onOverLimit), row("off", (p) => p.offOverLimit)],
  );
  const ratios = markdownTable(
    ["same pairs", "median", "per pair"],
    [
      [
        "real tokens/s, on ÷ off",
        medianOf(pairs, (p) => p.onOverOff).toFixed(3),
        pairs.map((p) => p.onOverOff.toFixed(3)).join(", "),
      ],
      [
        "main-thread CPU µs per request, on ÷ off",
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
    name: "fast-lane",
    title: "The /classify fast lane: SKT_FAST_LANE on and off",
    notes: [
      settingsLine({
        "window s": SLICE_S,
        pairs: PAIRS,
        "max batch size": MAX_BATCH_SIZE,
        "metrics probe ms": METRICS_PROBE_MS,
      }),
      `One prompt adapter (${file.metadata.promptLength} prompt positions) uploaded to both servers; ${sentences.length} SST-2 dev sentences, one per request, ${CONCURRENCY} connections; ${PAIRS} pairs of ${SLICE_S} s windows, the two servers in alternating order, then ${SLICE_S} s of the sorted raw limit; medians over pairs (GET /metrics latencies pooled over all windows).`,
      `Last pair's CPU: on — ${cpuLine(pairs.at(-1)?.on.cpu)}; off — ${cpuLine(pairs.at(-1)?.off.cpu)}.`,
    ],
    tables: [{ markdown: table }, { caption: "Ratios within each pair", markdown: ratios }],
    data: { pairs, pairsCount: PAIRS, sliceS: SLICE_S, metricsProbeMs: METRICS_PROBE_MS },
  });
});
