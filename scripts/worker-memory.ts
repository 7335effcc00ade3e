/**
 * npx tsx scripts/worker-memory.ts [WORKERS] — resident memory that inference workers add: loads
 * the backbone's assets, starts WORKERS workers (1 thread each), and prints the RSS before and after.
 * onnxruntime-node cannot share sessions or weights between worker threads, so this grows per worker.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { InferenceWorker } from "../src/engine/inference-worker.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const modelsDir = path.resolve(root, process.env.SKT_MODELS_DIR ?? "models");
const workers = Number(process.argv[2] ?? 2);
const assets = await loadBackboneAssets(modelsDir);
const before = process.memoryUsage().rss;
const started = Array.from(
  { length: workers },
  () => new InferenceWorker({ modelsDir, backboneDir: assets.dir, threads: 1, device: "cpu", precision: "fp32" }),
);
await Promise.all(started.map((w) => w.start()));
await new Promise((r) => setTimeout(r, 500));
const after = process.memoryUsage().rss;
const mb = (b: number) => Math.round(b / 2 ** 20);
console.log(
  JSON.stringify({
    workers,
    rssBeforeMB: mb(before),
    rssAfterMB: mb(after),
    perWorkerMB: mb((after - before) / workers),
  }),
);
await Promise.all(started.map((w) => w.close()));
