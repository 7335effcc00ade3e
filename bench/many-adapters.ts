/**
 * npm run bench:many-adapters — 1,000 registered adapters, a prepared-adapter cache sized for about
 * 100 of them, and Zipf-distributed traffic (s = 1.1) over all tasks: throughput against the same
 * server sending everything to one task (target ≥ 0.90), and the server's resident memory before
 * and after. Adapters are written straight into the store folder before the server starts.
 */
import { decodeAdapter } from "../src/adapters/format.js";
import { prepareAdapter } from "../src/adapters/prepared.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { fillStore, syntheticAdapterBytes } from "./adapters.js";
import { compareClosedLoop, ratioOf, TARGET_COMPARISON, throughputTable } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  makeTempDir,
  markdownTable,
  median,
  MODELS_DIR,
  onCleanup,
  pct,
  pick,
  readSst2Sentences,
  settingsLine,
  writeReport,
  zipfSampler,
} from "./lib.js";
import { startServer } from "./server.js";

const ADAPTERS = Number(process.env.BENCH_ADAPTERS ?? pick(1000, 200));
const CACHED = Number(process.env.BENCH_CACHED_ADAPTERS ?? Math.round(ADAPTERS / 10));
const ZIPF_S = 1.1;
const taskName = (k: number) => `zipf-${String(k).padStart(4, "0")}`;

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const dir = await makeTempDir("many");
  const t0 = performance.now();
  await fillStore(dir, ADAPTERS, (k) => ({
    task: taskName(k),
    bytes: syntheticAdapterBytes(assets, { task: taskName(k), seed: 10_000 + k }),
  }));
  const writeS = (performance.now() - t0) / 1000;
  const sample = decodeAdapter(syntheticAdapterBytes(assets, { task: taskName(0) }), {
    dims: assets.dims,
    fingerprint: assets.fingerprint,
  });
  const preparedBytes = prepareAdapter(
    sample,
    1,
    new Float32Array(sample.metadata.promptLength * assets.dims.hiddenDim),
    assets.dims,
  ).bytes;
  const cacheBytes = CACHED * preparedBytes;
  console.log(
    `wrote ${ADAPTERS} adapters in ${writeS.toFixed(1)} s; cache ${cacheBytes} bytes ≈ ${CACHED} prepared adapters of ${preparedBytes} bytes`,
  );

  const t1 = performance.now();
  const server = await startServer({
    label: "many-adapters",
    adaptersDir: dir,
    env: { SKT_CACHE_BYTES: String(cacheBytes), SKT_QUEUE_SIZE: String(4 * CONCURRENCY) },
    readyTimeoutMs: 600_000,
  });
  const startS = (performance.now() - t1) / 1000;
  const rssBefore = await server.rssBytes();
  const client = new HttpClient(server.base, CONCURRENCY);
  onCleanup(() => client.close());

  const text = (i: number) => sentences[i % sentences.length];
  let zipf = zipfSampler(ADAPTERS, ZIPF_S, 1);
  const results = await compareClosedLoop(
    [
      { name: "1 adapter", server, client, next: (i) => classifyRequest(taskName(0), text(i)) },
      {
        name: `Zipf over ${ADAPTERS}`,
        server,
        client,
        next: (i) => {
          if (i === 0) zipf = zipfSampler(ADAPTERS, ZIPF_S, 1); // the same task sequence in every repetition
          return classifyRequest(taskName(zipf.next()), text(i));
        },
      },
    ],
    TARGET_COMPARISON,
  );
  const rssAfter = await server.rssBytes();
  const metrics = await server.metrics();
  const zipfName = `Zipf over ${ADAPTERS}`;
  const ratio = ratioOf(results, zipfName, "1 adapter");
  const zr = results.find((x) => x.name === zipfName)!.reps;
  const table2 = markdownTable(
    ["measure", "value"],
    [
      [
        "adapters registered / cache budget",
        `${ADAPTERS} / ${fmt(cacheBytes / 1024, 0)} KiB (≈ ${CACHED} prepared adapters of ${fmt(preparedBytes)} bytes)`,
      ],
      [
        `share of Zipf(${ZIPF_S}) traffic on the ${CACHED} most popular tasks`,
        pct(zipfSampler(ADAPTERS, ZIPF_S, 1).share(CACHED)),
      ],
      [
        "cold loads (store read + validation + F) per second under Zipf traffic",
        `${fmt(median(zr.map((r) => r.loads / r.windowS)), 1)} (${pct(median(zr.map((r) => r.loads / (r.rps * r.windowS))))} of requests)`,
      ],
      [
        "semantic passes per second (all tasks share one prompt, so h_p is reused)",
        fmt(median(zr.map((r) => r.semanticPasses / r.windowS)), 1),
      ],
      [
        "server resident memory: after start-up / after the runs",
        `${fmt(rssBefore / 2 ** 20, 1)} MiB / ${fmt(rssAfter / 2 ** 20, 1)} MiB`,
      ],
      ["adapters in the cache at the end (skt_adapters_loaded)", fmt(metrics.sum("skt_adapters_loaded"))],
      ["cache evictions in total", fmt(metrics.sum("skt_adapter_cache_evictions_total"))],
      ["store fill / server start-up until ready", `${writeS.toFixed(1)} s / ${startS.toFixed(1)} s`],
    ],
    ["l", "l"],
  );
  await writeReport({
    name: "many-adapters",
    title: `Many adapters: Zipf traffic over ${ADAPTERS} tasks with a cache for ${CACHED}`,
    notes: [
      settingsLine({ concurrency: CONCURRENCY }),
      `Prompt adapters (pooling, same prompt text, different weights); SST-2 dev sentences one per request; closed loop; median of ${zr.length} alternating repetitions of ${zr[0].windowS} s windows. "1 adapter" sends everything to the most popular task.`,
    ],
    tables: [{ markdown: throughputTable(results, "1 adapter", { value: 0.9 }) }, { markdown: table2 }],
    data: {
      adapters: ADAPTERS,
      cached: CACHED,
      zipfS: ZIPF_S,
      preparedBytes,
      cacheBytes,
      rssBefore,
      rssAfter,
      writeS,
      startS,
      ratio,
      results,
    },
  });
});
