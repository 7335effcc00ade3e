/**
 * npm run bench:spinning — onnxruntime's intra-op spinning (SKT_ORT_SPINNING) on the raw backbone
 * alone: ms per run of the same batch with spinning on and off, two runners side by side, in
 * alternating (ABBA) rounds, for one short row (one request at a time) and a full batch of
 * SST-2 dev sentences. The server-side comparison is BENCH_SPINNING_COMPARE=1 npm run bench:efficiency.
 */
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../src/backbone/backbone.js";
import {
  cpuLine,
  cpuSnapshot,
  cpuUsage,
  envNumber,
  fmt,
  main,
  markdownTable,
  median,
  MODELS_DIR,
  onCleanup,
  QUICK,
  readSst2Sentences,
  settingsLine,
  THREADS,
  writeReport,
} from "./lib.js";

const ROUNDS = Math.round(envNumber("BENCH_SPINNING_ROUNDS", QUICK ? 2 : 8, 2));

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const runners = {
    on: await BackboneRunner.create(MODELS_DIR, { threads: THREADS, spinning: true, packed: "off" }),
    off: await BackboneRunner.create(MODELS_DIR, { threads: THREADS, spinning: false, packed: "off" }),
  };
  onCleanup(() => Promise.all(Object.values(runners).map((r) => r.release())).then(() => undefined));
  const ids = readSst2Sentences("dev").map((s) => assets.tokenizer.encode(s, 128).ids);
  const shapes = [
    { name: "1 row (one request at a time)", rows: [ids[0]], runs: QUICK ? 20 : 100 },
    { name: "32 rows (a full batch)", rows: ids.slice(0, 32), runs: QUICK ? 3 : 10 },
  ];
  const D = assets.dims.embedDim;
  const results = [];
  for (const shape of shapes) {
    const ms = { on: [] as number[], off: [] as number[] };
    const c0 = cpuSnapshot({ bench: "self" });
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? (["on", "off"] as const) : (["off", "on"] as const);
      for (const k of order) {
        const runner = runners[k];
        await runner.run(tokenBatch(assets.embeddings, D, shape.rows, ["pooled"]));
        const t0 = performance.now();
        for (let i = 0; i < shape.runs; i++) await runner.run(tokenBatch(assets.embeddings, D, shape.rows, ["pooled"]));
        ms[k].push((performance.now() - t0) / shape.runs);
      }
    }
    const ratios = ms.on.map((x, i) => ms.off[i] / x);
    const cpu = cpuUsage(c0, cpuSnapshot({ bench: "self" }));
    results.push({ ...shape, rows: shape.rows.length, ms, ratios, cpu });
    console.log(
      `${shape.name}: on ${fmt(median(ms.on), 2)} ms, off ${fmt(median(ms.off), 2)} ms, off ÷ on ${median(ratios).toFixed(3)} (${cpuLine(cpu)})`,
    );
  }
  await writeReport({
    name: "spinning",
    title: "onnxruntime intra-op spinning on the raw backbone",
    notes: [
      settingsLine({ rounds: ROUNDS }),
      "The same batch (padded graphs, model.onnx) on two runners, spinning on and off, in alternating rounds; ms per run is the mean over a round's runs, each figure the median over rounds, the ratio the median of the per-round ratios.",
    ],
    tables: [
      {
        markdown: markdownTable(
          ["batch", "ms per run, spinning on", "ms per run, spinning off", "off ÷ on", "CPU cores busy (whole shape)"],
          results.map((r) => [
            r.name,
            fmt(median(r.ms.on), 2),
            fmt(median(r.ms.off), 2),
            median(r.ratios).toFixed(3),
            cpuLine(r.cpu),
          ]),
        ),
      },
    ],
    data: { rounds: ROUNDS, results },
  });
});
