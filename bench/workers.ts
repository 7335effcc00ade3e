/**
 * npm run bench:workers — SKT_WORKERS × SKT_THREADS shapes side by side on the same machine, in
 * alternating windows (so the ratios share the machine's drift): by default 1×2, 2×1 and 2×1 with a
 * 2-thread solo worker (SKT_SOLO_THREADS) at saturation (64 closed-loop clients) and one request at
 * a time. BENCH_WORKER_SHAPES lists them as WORKERSxTHREADS[+SOLO_THREADS]; without "+" a shape
 * has no solo worker. With BENCH_BASELINE_ENTRY set to
 * another checkout's bin/skt.js (e.g. the code before a refactor), that server runs as "baseline
 * 1×2" in the same alternation, for before/after ratios.
 */
import { syntheticAdapterBytes } from "./adapters.js";
import { compareClosedLoop, ratioOf, TARGET_COMPARISON, throughputTable, type Config } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import { CONCURRENCY, main, MODELS_DIR, onCleanup, readSst2Sentences, settingsLine, writeReport } from "./lib.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { startServer, type BenchServer } from "./server.js";

const TASK = "workers-bench";
const SHAPES = (process.env.BENCH_WORKER_SHAPES ?? "1x2,2x1,2x1+2").split(",").map((s) => {
  const m = /^(\d+)x(\d+)(?:\+(\d+))?$/.exec(s.trim());
  if (!m) throw new Error(`BENCH_WORKER_SHAPES: "${s}" is not WORKERSxTHREADS[+SOLO_THREADS] (e.g. 2x1+2)`);
  return { workers: Number(m[1]), threads: Number(m[2]), solo: Number(m[3] ?? 0) };
});
const shapeName = (s: (typeof SHAPES)[number]) => `${s.workers}×${s.threads}${s.solo ? ` + solo ${s.solo}` : ""}`;
const BASELINE_ENTRY = process.env.BENCH_BASELINE_ENTRY;

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const text = (i: number) => sentences[i % sentences.length];
  const servers: { name: string; server: BenchServer }[] = [];
  const start = async (name: string, env: Record<string, string>, entry?: string) => {
    const server = await startServer({
      label: name,
      entry,
      env: { ...env, SKT_QUEUE_SIZE: String(4 * CONCURRENCY) },
    });
    const r = await server.upload(TASK, syntheticAdapterBytes(assets, { task: TASK, seed: 7 }));
    if (r.status !== 201) throw new Error(`upload to ${name}: ${r.status} ${r.error?.message ?? ""}`);
    servers.push({ name, server });
  };
  for (const s of SHAPES)
    await start(shapeName(s), {
      SKT_WORKERS: String(s.workers),
      SKT_THREADS: String(s.threads),
      SKT_SOLO_THREADS: String(s.solo),
    });
  if (BASELINE_ENTRY) await start("baseline 1×2", { SKT_THREADS: "2", SKT_SOLO_THREADS: "0" }, BASELINE_ENTRY);

  const configs: Config[] = [];
  for (const { name, server } of servers) {
    const client = new HttpClient(server.base, CONCURRENCY);
    onCleanup(() => client.close());
    configs.push({ name, server, client, next: (i) => classifyRequest(TASK, text(i)) });
    configs.push({
      name: `${name}, 1 client`,
      server,
      client,
      next: (i) => classifyRequest(TASK, text(i)),
      concurrency: 1,
    });
  }
  const results = await compareClosedLoop(configs, TARGET_COMPARISON);
  const first = servers[0].name;
  const ratios: Record<string, number> = {};
  for (const c of configs) {
    const base = c.concurrency === 1 ? `${first}, 1 client` : first;
    if (c.name !== base) ratios[`${c.name} ÷ ${base}`] = ratioOf(results, c.name, base);
  }
  await writeReport({
    name: "workers",
    title: "Inference workers × threads (and before/after) in alternating windows",
    notes: [
      settingsLine({ concurrency: CONCURRENCY, shapes: SHAPES.map(shapeName).join(", ") }),
      `One prompt adapter, SST-2 dev sentences one per request; closed loop with ${CONCURRENCY} clients (saturation) and with 1 client (one request at a time); median of ${results[0].reps.length} alternating repetitions of ${results[0].reps[0].windowS} s windows. Ratios: median of per-repetition ratios against ${first} with the same number of clients.`,
      ...(BASELINE_ENTRY ? [`baseline: ${BASELINE_ENTRY}`] : []),
    ],
    tables: [{ markdown: throughputTable(results, first) }],
    data: { ratios, results },
  });
  console.log(ratios);
});
