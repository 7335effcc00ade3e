/**
 * npm run bench:backbone — raw backbone speed: tokens/s and ms per run over a grid of batch sizes ×
 * sequence lengths, with 1 and 2 onnxruntime intra-op threads. Median of repeated runs; results are
 * printed as a table and written to bench/results/backbone.json.
 */
import { writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../src/backbone/backbone.js";
import { median, readSst2Sentences } from "./lib.js";

const BATCHES = [1, 8, 32];
const LENGTHS = [16, 48, 128];
const REPS = Number(process.env.BENCH_REPS ?? 5);

const assets = await loadBackboneAssets("models", console.log);
const sentences = readSst2Sentences("dev");
// Real SST-2 token ids, repeated/cut to exactly `length` so every row of a cell costs the same.
const pool = sentences.flatMap((s) => assets.tokenizer.ids(s));
const sequence = (length: number, offset: number) => Array.from({ length }, (_, i) => pool[(offset + i) % pool.length]);

const rows: { threads: number; batch: number; length: number; msPerRun: number; tokensPerSec: number }[] = [];
for (const threads of [1, 2]) {
  const runner = await BackboneRunner.create("models", { threads });
  for (const batch of BATCHES)
    for (const length of LENGTHS) {
      const seqs = Array.from({ length: batch }, (_, b) => sequence(length, b * 997));
      await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, seqs, ["pooled"])); // warm-up
      const times: number[] = [];
      for (let r = 0; r < REPS; r++) {
        const input = tokenBatch(assets.embeddings, assets.dims.embedDim, seqs, ["pooled"]);
        const t0 = performance.now();
        await runner.run(input);
        times.push(performance.now() - t0);
      }
      const ms = median(times);
      rows.push({ threads, batch, length, msPerRun: ms, tokensPerSec: (batch * length) / (ms / 1000) });
    }
  await runner.release();
}

console.log(
  `\nUSE-lite backbone, onnxruntime-node CPU, ${os.cpus().length} cores (${os.cpus()[0]?.model}), median of ${REPS} runs\n`,
);
console.log("| threads | batch | tokens/seq | ms/run | tokens/s |");
console.log("|---:|---:|---:|---:|---:|");
for (const r of rows)
  console.log(
    `| ${r.threads} | ${r.batch} | ${r.length} | ${r.msPerRun.toFixed(2)} | ${Math.round(r.tokensPerSec).toLocaleString("en-US")} |`,
  );
await mkdir("bench/results", { recursive: true });
await writeFile(
  "bench/results/backbone.json",
  JSON.stringify({ machine: { cores: os.cpus().length, cpu: os.cpus()[0]?.model }, reps: REPS, rows }, null, 2) + "\n",
);
