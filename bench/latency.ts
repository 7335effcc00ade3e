/**
 * npm run bench:latency — latency percentiles under an open-loop load (evenly spaced arrivals,
 * latency from each request's scheduled send time) at 25%, 50%, 75% and 90% of the saturation rate
 * measured in the same run; and one request at a time vs one raw backbone call on the same sentence.
 * BENCH_PRECISION=int8 runs the server and the raw call on the int8 graphs. BENCH_LATENCY_RATE=R
 * takes R req/s as the saturation rate instead of measuring it, so runs of different server
 * settings (SKT_… in the environment) offer the same absolute rates.
 */
import type { Precision } from "../src/backbone/device.js";
import { assembleBatch } from "../src/engine/assemble.js";
import { encodeAdapter } from "../src/adapters/format.js";
import { syntheticAdapter } from "./adapters.js";
import { measureConfig } from "./compare.js";
import { classifyRequest, HttpClient, openLoop, sequential } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  markdownTable,
  MEASURE_S,
  medianOf,
  onCleanup,
  percentile,
  pick,
  readSst2Sentences,
  REPS,
  settingsLine,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { encodeFor, openRaw, prepareLocal, rawRunMs } from "./raw.js";
import { startServer } from "./server.js";

const TASK = "latency";
const FRACTIONS = [0.25, 0.5, 0.75, 0.9];
const PRECISION = (process.env.BENCH_PRECISION ?? "fp32") as Precision;
const SINGLE_COUNT = pick(200, 30);
const FIXED_RATE = process.env.BENCH_LATENCY_RATE ? Number(process.env.BENCH_LATENCY_RATE) : null;
if (FIXED_RATE !== null && !(FIXED_RATE > 0)) throw new Error("BENCH_LATENCY_RATE: a positive number of req/s");

main(async () => {
  const raw = await openRaw(undefined, PRECISION);
  onCleanup(() => raw.release());
  const sentences = readSst2Sentences("dev");
  const file = syntheticAdapter(raw.assets, { task: TASK, seed: 3 });
  const adapter = await prepareLocal(raw, file);
  const server = await startServer({ label: "latency", env: { SKT_QUEUE_SIZE: "4096", SKT_PRECISION: PRECISION } });
  await server.client.uploadAdapter(TASK, encodeAdapter(file, raw.assets.dims));
  const closed = new HttpClient(server.base, CONCURRENCY);
  const open = new HttpClient(server.base, 512);
  const single = new HttpClient(server.base, 1);
  onCleanup(() => Promise.all([closed.close(), open.close(), single.close()]).then(() => undefined));
  const next = (i: number) => classifyRequest(TASK, sentences[i % sentences.length]);

  // The one-at-a-time sentence: the SST-2 dev sentence of median token length.
  const byLength = sentences.map((s) => ({ s, n: encodeFor(raw, adapter, s).length })).sort((a, b) => a.n - b.n);
  const typical = byLength[Math.floor(byLength.length / 2)];
  const oneRow = () =>
    assembleBatch([{ adapter, ids: encodeFor(raw, adapter, typical.s) }], raw.assets.embeddings, raw.assets.dims).batch;

  interface Level {
    fraction: number;
    rate: number;
    offeredRps?: number;
    rps: number;
    p50: number;
    p95: number;
    p99: number;
    failed: number;
    dropped?: number;
    samples: number;
  }
  const reps: {
    saturationRps: number;
    levels: Level[];
    single: { p50: number; p99: number; failures: number; n: number };
    rawOneMs: number;
  }[] = [];
  for (let r = 0; r < REPS; r++) {
    const sat = FIXED_RATE
      ? { rps: FIXED_RATE }
      : await measureConfig({ name: "saturation", server, client: closed, next });
    const levels: Level[] = [];
    for (const f of FRACTIONS) {
      const rate = Math.max(1, f * sat.rps);
      const o = await openLoop(open, {
        ratePerSec: rate,
        warmupMs: WARMUP_S * 1000,
        durationMs: MEASURE_S * 1000,
        next,
        maxOutstanding: 2048,
      });
      levels.push({
        fraction: f,
        rate,
        offeredRps: o.offeredRps,
        rps: o.rps,
        p50: o.p50,
        p95: o.p95,
        p99: o.p99,
        failed: o.failed,
        dropped: o.dropped,
        samples: o.ok,
      });
      console.log(
        `rep ${r + 1}/${REPS} ${Math.round(f * 100)}% of ${fmt(sat.rps, 1)} req/s: p50 ${fmt(o.p50, 1)} p95 ${fmt(o.p95, 1)} p99 ${fmt(o.p99, 1)} ms (${o.ok} answered, ${o.failed} failed, ${o.dropped} dropped)`,
      );
    }
    const seq = await sequential(single, {
      count: SINGLE_COUNT,
      maxMs: 60_000,
      next: () => classifyRequest(TASK, typical.s),
    });
    const rawOne = await rawRunMs(raw, oneRow(), SINGLE_COUNT);
    reps.push({
      saturationRps: sat.rps,
      levels,
      single: {
        p50: percentile(seq.latenciesMs, 50),
        p99: percentile(seq.latenciesMs, 99),
        failures: seq.failures,
        n: seq.latenciesMs.length,
      },
      rawOneMs: rawOne.medianMs,
    });
    console.log(
      `rep ${r + 1}/${REPS} one at a time: server p50 ${fmt(percentile(seq.latenciesMs, 50), 2)} ms vs raw ${fmt(rawOne.medianMs, 2)} ms`,
    );
  }

  const levelTable = markdownTable(
    ["load", "target req/s", "achieved req/s", "p50 ms", "p95 ms", "p99 ms", "failed", "dropped"],
    FRACTIONS.map((f, k) => [
      `${Math.round(f * 100)}% of saturation`,
      fmt(
        medianOf(reps, (x) => x.levels[k].rate),
        1,
      ),
      fmt(
        medianOf(reps, (x) => x.levels[k].rps),
        1,
      ),
      fmt(
        medianOf(reps, (x) => x.levels[k].p50),
        1,
      ),
      fmt(
        medianOf(reps, (x) => x.levels[k].p95),
        1,
      ),
      fmt(
        medianOf(reps, (x) => x.levels[k].p99),
        1,
      ),
      String(reps.reduce((a, x) => a + x.levels[k].failed, 0)),
      String(reps.reduce((a, x) => a + (x.levels[k].dropped ?? 0), 0)),
    ]),
  );
  const serverOne = medianOf(reps, (x) => x.single.p50);
  const rawOne = medianOf(reps, (x) => x.rawOneMs);
  const singleTable = markdownTable(
    ["one request at a time", "ms"],
    [
      [
        `server p50 (HTTP round trip, ${typical.n} text tokens + ${file.metadata.promptLength} prompt positions)`,
        fmt(serverOne, 2),
      ],
      [
        "server p99",
        fmt(
          medianOf(reps, (x) => x.single.p99),
          2,
        ),
      ],
      ["raw backbone, one call on the same row (median)", fmt(rawOne, 2)],
      ["serving overhead (server p50 − raw)", fmt(serverOne - rawOne, 2)],
      ["server ÷ raw", (serverOne / rawOne).toFixed(2)],
    ],
    ["l", "r"],
  );
  await writeReport({
    name: "latency",
    title: "Latency: open-loop percentiles and one request at a time",
    notes: [
      settingsLine({
        "closed-loop concurrency for saturation": CONCURRENCY,
        "max wait ms (server default)": 2,
        precision: PRECISION,
      }),
      `Saturation rate: median ${fmt(
        medianOf(reps, (x) => x.saturationRps),
        1,
      )} req/s (${FIXED_RATE ? "given: BENCH_LATENCY_RATE" : "closed loop, measured in each repetition before its open-loop levels"}). Open loop: evenly spaced arrivals, latency from the scheduled send time; median of ${REPS} repetitions.`,
      `One at a time: ${SINGLE_COUNT} sequential requests with the dev sentence of median length ("${typical.s.slice(0, 60)}…"), vs BackboneRunner.run on that sentence's assembled row (same adapter's soft prompt).`,
    ],
    tables: [{ markdown: levelTable }, { markdown: singleTable }],
    data: { sentence: typical.s, tokens: typical.n, serverSingleP50: serverOne, rawSingle: rawOne, reps },
  });
});
