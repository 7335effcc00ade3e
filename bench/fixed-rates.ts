/**
 * npm run bench:fixed-rates — open-loop latency of several server settings at the same absolute
 * request rates, for settings whose saturation differs (so "50 % of saturation" would mean a
 * different load for each). Every setting gets its own server, all started first; then, for each
 * repetition and each rate, each server in turn takes one window of evenly spaced single-text
 * requests (latency from each request's scheduled send time, as bench:latency).
 *
 *   tsx bench/fixed-rates.ts NAME=A[,NAME=A…] NAME=B[,NAME=B…] …   (default: the solo worker on/off)
 *
 * BENCH_RATES (default "65,130,200" req/s), BENCH_REPS (default 2), BENCH_DURATION_S, BENCH_WARMUP_S.
 */
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { syntheticAdapterBytes } from "./adapters.js";
import { classifyRequest, HttpClient, openLoop } from "./load.js";
import {
  fmt,
  main,
  markdownTable,
  MEASURE_S,
  medianOf,
  MODELS_DIR,
  onCleanup,
  parseSettings,
  readSst2Sentences,
  settingsLine,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { startServer } from "./server.js";

const TASK = "fixed-rates";
const SPECS = process.argv.length > 2 ? process.argv.slice(2) : ["SKT_SOLO_THREADS=0", "SKT_SOLO_THREADS=2"];
const RATES = (process.env.BENCH_RATES ?? "65,130,200").split(",").map(Number);
if (RATES.some((r) => !(r > 0))) throw new Error("BENCH_RATES: comma-separated positive req/s");
const ROUNDS = Number(process.env.BENCH_REPS ?? 2);

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const bytes = syntheticAdapterBytes(assets, { task: TASK, seed: 3 });
  const servers = [];
  for (const spec of SPECS) {
    const server = await startServer({ label: spec, env: { SKT_QUEUE_SIZE: "4096", ...parseSettings(spec) } });
    await server.client.uploadAdapter(TASK, bytes);
    const client = new HttpClient(server.base, 512);
    onCleanup(() => client.close());
    servers.push({ spec, client });
  }
  const next = (i: number) => classifyRequest(TASK, sentences[i % sentences.length]);
  const runs: { spec: string; rate: number; p50: number; p95: number; p99: number; failed: number }[] = [];
  for (let round = 0; round < ROUNDS; round++)
    for (const rate of RATES)
      // The order of the servers turns each round, so none always follows the same one.
      for (const k of servers.keys()) {
        const { spec, client } = servers[(k + round) % servers.length];
        const o = await openLoop(client, {
          ratePerSec: rate,
          warmupMs: WARMUP_S * 1000,
          durationMs: MEASURE_S * 1000,
          next,
          maxOutstanding: 2048,
        });
        runs.push({ spec, rate, p50: o.p50, p95: o.p95, p99: o.p99, failed: o.failed + (o.dropped ?? 0) });
        console.log(
          `round ${round + 1}/${ROUNDS} ${rate} req/s ${spec}: p50 ${fmt(o.p50, 1)} p95 ${fmt(o.p95, 1)} p99 ${fmt(o.p99, 1)} ms (${o.ok} answered, ${o.failed} failed, ${o.dropped} dropped)`,
        );
      }
  const cell = (spec: string, rate: number) => {
    const mine = runs.filter((r) => r.spec === spec && r.rate === rate);
    const each = mine.map((r) => `${fmt(r.p50, 1)}/${fmt(r.p95, 1)}/${fmt(r.p99, 1)}`).join(" · ");
    return `${fmt(
      medianOf(mine, (r) => r.p50),
      1,
    )} (${each})${mine.some((r) => r.failed > 0) ? ` — ${mine.reduce((s, r) => s + r.failed, 0)} failed` : ""}`;
  };
  await writeReport({
    name: "fixed-rates",
    title: "Open-loop latency of several server settings at the same request rates",
    notes: [
      settingsLine({ rates: RATES.join(", "), settings: SPECS.join(" | ") }),
      `One prompt adapter, SST-2 dev sentences one per request, evenly spaced arrivals; each cell: median p50 in ms over ${ROUNDS} rounds, then each round's p50/p95/p99. The servers take turns within every rate, in an order that turns each round.`,
    ],
    tables: [
      {
        markdown: markdownTable(
          ["setting", ...RATES.map((r) => `${r} req/s: p50 (p50/p95/p99 per round)`)],
          SPECS.map((spec) => [spec, ...RATES.map((rate) => cell(spec, rate))]),
        ),
      },
    ],
    data: { rates: RATES, specs: SPECS, runs },
  });
});
