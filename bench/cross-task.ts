/**
 * npm run bench:cross-task — 10 adapters receiving requests round-robin vs all requests to one
 * adapter, same server, same sentences: throughput ratio (target ≥ 0.95). Rows of different tasks
 * share batches, so mixing tasks should cost (almost) nothing.
 */
import { syntheticAdapterBytes } from "./adapters.js";
import { compareClosedLoop, ratioOf, TARGET_COMPARISON, throughputTable } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import { CONCURRENCY, main, onCleanup, readSst2Sentences, settingsLine, writeReport } from "./lib.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { MODELS_DIR } from "./lib.js";
import { startServer } from "./server.js";

const TASKS = Array.from({ length: 10 }, (_, i) => `task-${i}`);

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const server = await startServer({ label: "cross-task", env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY) } });
  for (const [i, task] of TASKS.entries()) {
    await server.client.uploadAdapter(task, syntheticAdapterBytes(assets, { task, seed: 100 + i }));
  }
  const client = new HttpClient(server.base, CONCURRENCY);
  onCleanup(() => client.close());
  const text = (i: number) => sentences[i % sentences.length];
  const results = await compareClosedLoop(
    [
      { name: "1 adapter", server, client, next: (i) => classifyRequest(TASKS[0], text(i)) },
      {
        name: "10 adapters round-robin",
        server,
        client,
        next: (i) => classifyRequest(TASKS[i % TASKS.length], text(i)),
      },
    ],
    TARGET_COMPARISON,
  );
  const ratio = ratioOf(results, "10 adapters round-robin", "1 adapter");
  await writeReport({
    name: "cross-task",
    title: "Cross-task batching: 10 adapters round-robin vs 1 adapter",
    notes: [
      settingsLine({ concurrency: CONCURRENCY }),
      `10 prompt adapters (pooling, same prompt text, different weights), SST-2 dev sentences one per request in the same order for both; closed loop; median of ${results[0].reps.length} alternating repetitions of ${results[0].reps[0].windowS} s windows.`,
    ],
    tables: [{ markdown: throughputTable(results, "1 adapter", { value: 0.95 }) }],
    data: { ratio, results },
  });
});
