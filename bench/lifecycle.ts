/**
 * npm run bench:lifecycle — the adapter life cycle with an adapter near the 1M-parameter limit
 * (pooling prefix adapter, the longest prompt that stays ≤ 1,000,000 parameters):
 *  1. upload → first answered request: upload time and first classify time, and what is left after
 *     subtracting the transfer (an equally large body rejected by the same route) — target ≤ 50 ms;
 *  2. cold load: with a cache budget for one such adapter, the first request after its eviction;
 *  3. hot swaps under load: upload / rollback every ~200 ms during a saturating closed loop —
 *     non-200 answers (target: none).
 */
import { decodeAdapter } from "../src/adapters/format.js";
import { prepareAdapter } from "../src/adapters/prepared.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { largestPrefixAdapterOptions, syntheticAdapterBytes } from "./adapters.js";
import { closedLoop, classifyRequest, HttpClient } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  markdownTable,
  MEASURE_S,
  median,
  MODELS_DIR,
  onCleanup,
  pick,
  QUICK,
  readSst2Sentences,
  REPS,
  settingsLine,
  sleep,
  verdict,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { startServer, type BenchServer } from "./server.js";

const UPLOAD_REPS = Math.max(REPS, QUICK ? 1 : 5);
const SWAP_EVERY_MS = 200;

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const big = (task: string, seed: number) =>
    syntheticAdapterBytes(assets, { ...largestPrefixAdapterOptions(assets, task), seed });
  const { parameters, promptText } = largestPrefixAdapterOptions(assets, "x");
  const sample = big("x", 1);
  const prepared = prepareAdapter(
    decodeAdapter(sample, { dims: assets.dims, fingerprint: assets.fingerprint }),
    1,
    new Float32Array(assets.tokenizer.ids(promptText).length * assets.dims.hiddenDim),
    assets.dims,
  );
  const text = "a gripping , funny and ultimately moving film about growing up";

  const classifyOnce = async (client: HttpClient, task: string) => {
    const t0 = performance.now();
    const r = await client.post(classifyRequest(task, text));
    if (r.status !== 200) throw new Error(`classify ${task}: ${r.status} ${r.text}`);
    return { ms: performance.now() - t0, version: (JSON.parse(r.text) as { adapter_version: number }).adapter_version };
  };
  const mustUpload = async (server: BenchServer, task: string, bytes: Uint8Array) => {
    const r = await server.upload(task, bytes);
    if (!r.info) throw r.error ?? new Error(`upload ${task}: no answer`);
    return { ms: r.ms, version: r.info.version };
  };

  // ---- 1. upload → first answered request --------------------------------------------------
  const server = await startServer({ label: "lifecycle", env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY) } });
  const one = new HttpClient(server.base, 1);
  onCleanup(() => one.close());
  await mustUpload(server, "big", big("big", 1));
  await classifyOnce(one, "big");
  const uploads: {
    bytes: number;
    transferMs: number;
    uploadMs: number;
    firstMs: number;
    warmMs: number;
    beyondTransferMs: number;
  }[] = [];
  for (let r = 0; r < UPLOAD_REPS; r++) {
    const bytes = big("big", 100 + r);
    const reject = await server.upload("big", new Uint8Array(bytes.length)); // same size, rejected on its header
    if (reject.status < 400 || reject.status >= 500)
      throw new Error(`transfer baseline: expected a 4xx, got ${reject.status} ${reject.error?.message ?? ""}`);
    const up = await mustUpload(server, "big", bytes);
    const first = await classifyOnce(one, "big");
    if (first.version !== up.version)
      throw new Error(`first request after upload got v${first.version}, expected v${up.version}`);
    const warm = await classifyOnce(one, "big");
    uploads.push({
      bytes: bytes.length,
      transferMs: reject.ms,
      uploadMs: up.ms,
      firstMs: first.ms,
      warmMs: warm.ms,
      beyondTransferMs: up.ms + first.ms - reject.ms,
    });
    console.log(
      `upload ${r + 1}/${UPLOAD_REPS}: upload ${fmt(up.ms, 1)} ms + first classify ${fmt(first.ms, 1)} ms − transfer ${fmt(reject.ms, 1)} ms = ${fmt(up.ms + first.ms - reject.ms, 1)} ms`,
    );
  }

  // ---- 3. hot swaps under load (same server) -------------------------------------------------
  await mustUpload(server, "swap", big("swap", 1));
  const load = new HttpClient(server.base, CONCURRENCY);
  onCleanup(() => load.close());
  const swaps: {
    ok: number;
    failed: number;
    failures: Record<string, number>;
    rps: number;
    p99: number;
    admin: Record<string, number>;
  }[] = [];
  let seed = 1000;
  for (let r = 0; r < REPS; r++) {
    let stop = false;
    const admin: Record<string, number> = {};
    let swapping: Promise<void> | undefined;
    const swapper = async () => {
      for (let k = 0; !stop && k < 10_000; k++) {
        const t0 = performance.now();
        const res = k % 2 === 0 ? await server.upload("swap", big("swap", seed++)) : await server.rollback("swap");
        const key = `${k % 2 === 0 ? "upload" : "rollback"} ${res.status}`;
        admin[key] = (admin[key] ?? 0) + 1;
        await sleep(Math.max(0, SWAP_EVERY_MS - (performance.now() - t0)));
      }
    };
    const res = await closedLoop(load, {
      concurrency: CONCURRENCY,
      warmupMs: WARMUP_S * 1000,
      durationMs: MEASURE_S * 1000,
      next: (i) => classifyRequest("swap", sentences[i % sentences.length]),
      onWindowStart: () => void (swapping = swapper()),
      onWindowEnd: () => void (stop = true),
    });
    await swapping;
    swaps.push({ ok: res.ok, failed: res.failed, failures: res.failures, rps: res.rps, p99: res.p99, admin });
    console.log(
      `swaps ${r + 1}/${REPS}: ${res.ok} answered 200, ${res.failed} not (${JSON.stringify(res.failures)}); admin ${JSON.stringify(admin)}`,
    );
  }
  await server.stop();

  // ---- 2. cold load on a cache miss ----------------------------------------------------------
  const cacheBytes = Math.floor(prepared.bytes * 1.5);
  const small = await startServer({ label: "lifecycle-cold", env: { SKT_CACHE_BYTES: String(cacheBytes) } });
  const oneSmall = new HttpClient(small.base, 1);
  onCleanup(() => oneSmall.close());
  await mustUpload(small, "cold-a", big("cold-a", 1));
  await mustUpload(small, "cold-b", big("cold-b", 2));
  const colds: { coldMs: number; warmMs: number; misses: number; loadMs: number }[] = [];
  for (let r = 0; r < Math.max(REPS, pick(5, 1)); r++) {
    await classifyOnce(oneSmall, "cold-b"); // cold-b in, cold-a evicted
    const m0 = await small.metrics();
    const cold = await classifyOnce(oneSmall, "cold-a");
    const m1 = await small.metrics();
    const warm = await classifyOnce(oneSmall, "cold-a");
    const loads = m1.delta(m0, "skt_adapter_load_duration_seconds_count");
    colds.push({
      coldMs: cold.ms,
      warmMs: warm.ms,
      misses: m1.delta(m0, "skt_adapter_cache_misses_total"),
      loadMs: loads ? (1000 * m1.delta(m0, "skt_adapter_load_duration_seconds_sum")) / loads : NaN,
    });
    console.log(`cold ${r + 1}: ${fmt(cold.ms, 1)} ms (warm ${fmt(warm.ms, 1)} ms, misses ${colds.at(-1)!.misses})`);
  }

  const u = (f: (x: (typeof uploads)[number]) => number) => median(uploads.map(f));
  const c = (f: (x: (typeof colds)[number]) => number) => median(colds.map(f));
  const totalFailed = swaps.reduce((a, x) => a + x.failed, 0);
  const adminTotals: Record<string, number> = {};
  for (const s of swaps) for (const [k, v] of Object.entries(s.admin)) adminTotals[k] = (adminTotals[k] ?? 0) + v;
  const table = markdownTable(
    ["measure", "value"],
    [
      [
        "adapter",
        `prefix, pooling, prompt length ${assets.tokenizer.ids(promptText).length}, ${fmt(parameters)} parameters, ${fmt(sample.length / 1024 / 1024, 2)} MiB file, ${fmt(prepared.bytes / 1024, 0)} KiB prepared`,
      ],
      [
        `upload request (PUT → 201), median of ${UPLOAD_REPS}`,
        `${fmt(
          u((x) => x.uploadMs),
          1,
        )} ms`,
      ],
      [
        "transfer baseline (same-size body rejected by the route)",
        `${fmt(
          u((x) => x.transferMs),
          1,
        )} ms`,
      ],
      [
        "first classify after the upload",
        `${fmt(
          u((x) => x.firstMs),
          1,
        )} ms (a warm one: ${fmt(
          u((x) => x.warmMs),
          1,
        )} ms)`,
      ],
      [
        "upload → first answer, beyond the transfer",
        verdict(
          u((x) => x.beyondTransferMs),
          50,
          "lower",
          1,
        ) + " ms",
      ],
      [
        `cold load: first request after eviction (cache ${fmt(cacheBytes / 1024, 0)} KiB), median of ${colds.length}`,
        `${fmt(
          c((x) => x.coldMs),
          1,
        )} ms (warm ${fmt(
          c((x) => x.warmMs),
          1,
        )} ms; server-side load ${fmt(
          c((x) => x.loadMs),
          1,
        )} ms; misses per cold request ${fmt(
          c((x) => x.misses),
          0,
        )})`,
      ],
      [
        `hot swaps under load: upload/rollback every ${SWAP_EVERY_MS} ms, ${REPS} × ${MEASURE_S} s at ${CONCURRENCY} clients`,
        `${Object.entries(adminTotals)
          .map(([k, v]) => `${v} × ${k}`)
          .join(", ")}`,
      ],
      [
        "classify answers during swaps: 200 / other",
        `${swaps.reduce((a, x) => a + x.ok, 0)} / ${totalFailed} (target: no non-200: ${totalFailed === 0 ? "met" : "MISSED"})`,
      ],
    ],
    ["l", "l"],
  );
  await writeReport({
    name: "lifecycle",
    title: "Adapter life cycle: upload to first answer, cold load, hot swaps under load",
    notes: [settingsLine({ concurrency: CONCURRENCY })],
    tables: [{ markdown: table }],
    data: { parameters, fileBytes: sample.length, preparedBytes: prepared.bytes, cacheBytes, uploads, colds, swaps },
  });
});
