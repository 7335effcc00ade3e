/**
 * npm run bench:interference — what a little CPU work on another thread costs onnxruntime's run,
 * the server's situation (its main thread: HTTP, JSON, tokenization, assembly) reproduced without
 * a server. A busy thread burns `duty` of one core in short slices (a busy-wait of 0.5 ms, then a
 * sleep), while the raw backbone runs a full batch of SST-2 dev sentences; ms per run with each duty
 * vs none, in alternating rounds, with 2 intra-op threads (this machine's 2 cores: the server's
 * default) and with 1 (a core left free). If the slowdown is much larger than the duty with 2
 * threads and ~0 with 1, the cost is the intra-op barrier waiting for a preempted thread, not the
 * cycles themselves (docs/benchmarks.md, "Quiet rerun on the final tree").
 */
import { Worker } from "node:worker_threads";
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
  writeReport,
} from "./lib.js";

const ROUNDS = Math.round(envNumber("BENCH_INTERFERENCE_ROUNDS", QUICK ? 2 : 6, 2));
const RUNS = QUICK ? 3 : 8;
const DUTIES = [0, 0.04, 0.08, 0.16];
const SLICE_MS = 0.5;

/** Busy-waits SLICE_MS, then sleeps so that the busy share is duty[0] / 1e4 (0: sleeps only). */
const BURNER = `
const { workerData } = require("node:worker_threads");
const duty = new Int32Array(workerData);
const sleeper = new Int32Array(new SharedArrayBuffer(4));
for (;;) {
  const d = Atomics.load(duty, 0);
  if (d < 0) break;
  if (d === 0) { Atomics.wait(sleeper, 0, 0, 5); continue; }
  const t = performance.now();
  while (performance.now() - t < ${SLICE_MS}) {}
  Atomics.wait(sleeper, 0, 0, ${SLICE_MS} * (1e4 / d - 1));
}
`;

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const dutyCell = new Int32Array(new SharedArrayBuffer(4));
  const burner = new Worker(BURNER, { eval: true, workerData: dutyCell.buffer });
  onCleanup(async () => {
    Atomics.store(dutyCell, 0, -1);
    await burner.terminate();
  });
  const ids = readSst2Sentences("dev").map((s) => assets.tokenizer.encode(s, 128).ids);
  const rows = ids.slice(0, 32);
  const D = assets.dims.embedDim;
  const results = [];
  for (const threads of [2, 1]) {
    const runner = await BackboneRunner.create(MODELS_DIR, { threads, packed: "off" });
    const ms = new Map<number, number[]>(DUTIES.map((d) => [d, []]));
    const c0 = cpuSnapshot({ bench: "self" });
    await runner.run(tokenBatch(assets.embeddings, D, rows, ["pooled"]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? DUTIES : [...DUTIES].reverse();
      for (const duty of order) {
        Atomics.store(dutyCell, 0, Math.round(duty * 1e4));
        await new Promise((r) => setTimeout(r, 50));
        const t0 = performance.now();
        for (let i = 0; i < RUNS; i++) await runner.run(tokenBatch(assets.embeddings, D, rows, ["pooled"]));
        ms.get(duty)!.push((performance.now() - t0) / RUNS);
      }
    }
    Atomics.store(dutyCell, 0, 0);
    const cpu = cpuUsage(c0, cpuSnapshot({ bench: "self" }));
    await runner.release();
    const base = ms.get(0)!;
    for (const duty of DUTIES) {
      const ratios = ms.get(duty)!.map((x, i) => x / base[i]);
      results.push({ threads, duty, ms: median(ms.get(duty)!), slowdown: median(ratios), cpu });
      console.log(
        `threads ${threads}, busy thread at ${duty * 100} % of a core: ${fmt(median(ms.get(duty)!), 1)} ms per run, ÷ none ${median(ratios).toFixed(3)}`,
      );
    }
    console.log(`threads ${threads}: ${cpuLine(cpu)}`);
  }
  await writeReport({
    name: "interference",
    title: "A busy thread next to onnxruntime's run",
    notes: [
      settingsLine({ rounds: ROUNDS, runs: RUNS }),
      `Another thread busy-waits ${SLICE_MS} ms slices at the given share of one core while the raw backbone runs the first 32 SST-2 dev sentences (padded graphs); ms per run is the mean over a round's runs, each figure the median over rounds, the ratio the median of the per-round ratios.`,
    ],
    tables: [
      {
        markdown: markdownTable(
          [
            "intra-op threads",
            "other thread busy (share of a core)",
            "ms per run (32 rows)",
            "÷ none",
            "extra time ÷ the other thread's share",
          ],
          results.map((r) => [
            String(r.threads),
            `${(r.duty * 100).toFixed(0)} %`,
            fmt(r.ms, 1),
            r.slowdown.toFixed(3),
            r.duty === 0 ? "" : ((r.slowdown - 1) / r.duty).toFixed(2),
          ]),
        ),
      },
    ],
    data: { rounds: ROUNDS, runs: RUNS, results },
  });
});
