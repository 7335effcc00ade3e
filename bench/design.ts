/**
 * npm run bench:design — what the design choices buy: the same server with the semantic-pass cache
 * off (SKT_SEMANTIC_CACHE=false: every request re-reads its adapter and re-runs the semantic pass
 * and F) and with batching off (SKT_MAX_BATCH_SIZE=1), against the normal server; throughput ratios.
 */
import { syntheticAdapterBytes } from "./adapters.js";
import { compareClosedLoop, ratioOf, throughputTable } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import { CONCURRENCY, main, MODELS_DIR, onCleanup, readSst2Sentences, REPS, settingsLine, writeReport } from "./lib.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { startServer } from "./server.js";

const TASK = "design";
const SETUPS: { name: string; env: Record<string, string> }[] = [
  { name: "normal", env: {} },
  { name: "semantic cache off", env: { SKT_SEMANTIC_CACHE: "false" } },
  { name: "batching off (max batch 1)", env: { SKT_MAX_BATCH_SIZE: "1" } },
];

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const bytes = syntheticAdapterBytes(assets, { task: TASK, seed: 4 });
  // All three servers stay up (idle ones cost memory, not CPU) so repetitions can alternate.
  const configs = [];
  for (const s of SETUPS) {
    const server = await startServer({ label: s.name, env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY), ...s.env } });
    await server.client.uploadAdapter(TASK, bytes);
    const client = new HttpClient(server.base, CONCURRENCY);
    onCleanup(() => client.close());
    configs.push({
      name: s.name,
      server,
      client,
      next: (i: number) => classifyRequest(TASK, sentences[i % sentences.length]),
    });
  }
  const results = await compareClosedLoop(configs);
  await writeReport({
    name: "design",
    title: "Design choices: semantic-pass cache and batching",
    notes: [
      settingsLine({ concurrency: CONCURRENCY }),
      `Three servers with the same prompt adapter (pooling) and SST-2 dev sentences, one per request; closed loop; median of ${REPS} alternating repetitions. Settings: ${SETUPS.map((s) => `${s.name}: ${JSON.stringify(s.env)}`).join("; ")}.`,
    ],
    tables: [{ markdown: throughputTable(results, "normal") }],
    data: { ratios: Object.fromEntries(SETUPS.map((s) => [s.name, ratioOf(results, s.name, "normal")])), results },
  });
});
