/**
 * npm run bench:variants — prompt vs prefix adapters: server throughput with a prompt adapter vs a
 * prefix adapter (same prompt text, so the same L), and raw backbone timings at fixed sentence
 * lengths with no adapter, with soft-prompt rows (L extra positions through every layer) and with
 * key/value prefixes (L extra keys per layer, no extra positions).
 */
import { encodeAdapter } from "../src/adapters/format.js";
import { assembleBatch } from "../src/engine/assemble.js";
import { tokenBatch } from "../src/backbone/backbone.js";
import { syntheticAdapter } from "./adapters.js";
import { compareClosedLoop, ratioOf, throughputTable } from "./compare.js";
import { classifyRequest, HttpClient } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  markdownTable,
  median,
  onCleanup,
  pick,
  readSst2Sentences,
  REPS,
  settingsLine,
  writeReport,
} from "./lib.js";
import { openRaw, prepareLocal, rawRunMs } from "./raw.js";
import { startServer } from "./server.js";

const LENGTHS: number[] = pick([8, 24, 64], [24]);
const BATCH = 32;
const RUNS = pick(5, 3);

main(async () => {
  const raw = await openRaw();
  onCleanup(() => raw.release());
  const sentences = readSst2Sentences("dev");
  const files = {
    prompt: syntheticAdapter(raw.assets, { task: "v-prompt", variant: "prompt", seed: 6 }),
    prefix: syntheticAdapter(raw.assets, { task: "v-prefix", variant: "prefix", seed: 7 }),
  };
  const L = files.prompt.metadata.promptLength;

  // ---- server: the same sentences through a prompt and a prefix adapter ------------------------
  const server = await startServer({ label: "variants", env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY) } });
  for (const f of Object.values(files)) {
    await server.client.uploadAdapter(f.metadata.task, encodeAdapter(f, raw.assets.dims));
  }
  const client = new HttpClient(server.base, CONCURRENCY);
  onCleanup(() => client.close());
  const text = (i: number) => sentences[i % sentences.length];
  const results = await compareClosedLoop([
    { name: "prompt adapter", server, client, next: (i) => classifyRequest("v-prompt", text(i)) },
    { name: "prefix adapter", server, client, next: (i) => classifyRequest("v-prefix", text(i)) },
  ]);
  await server.stop(); // the raw grid below runs on a quiet server process

  // ---- raw backbone: fixed lengths, batch of 32 -------------------------------------------------
  const adapters = { prompt: await prepareLocal(raw, files.prompt), prefix: await prepareLocal(raw, files.prefix) };
  const pool = sentences.flatMap((s) => raw.assets.tokenizer.ids(s));
  const seqs = (length: number) =>
    Array.from({ length: BATCH }, (_, b) => Array.from({ length }, (_, i) => pool[(b * 997 + i) % pool.length]));
  const grid: { length: number; kind: string; msPerBatch: number[] }[] = [];
  for (let r = 0; r < REPS; r++) {
    for (const length of LENGTHS) {
      const ids = seqs(length);
      const batches = {
        "no adapter": tokenBatch(raw.assets.embeddings, raw.assets.dims.embedDim, ids, ["pooled"]),
        [`prompt (+${L} positions)`]: assembleBatch(
          ids.map((x) => ({ adapter: adapters.prompt, ids: x })),
          raw.assets.embeddings,
          raw.assets.dims,
        ).batch,
        [`prefix (+${L} keys/layer)`]: assembleBatch(
          ids.map((x) => ({ adapter: adapters.prefix, ids: x })),
          raw.assets.embeddings,
          raw.assets.dims,
        ).batch,
      };
      for (const [kind, batch] of Object.entries(batches)) {
        let cell = grid.find((g) => g.length === length && g.kind === kind);
        if (!cell) grid.push((cell = { length, kind, msPerBatch: [] }));
        cell.msPerBatch.push((await rawRunMs(raw, batch, RUNS)).medianMs);
      }
    }
  }
  const rawTable = markdownTable(
    ["text tokens", "input", "ms per batch of 32", "ms per sentence", "÷ no adapter"],
    grid.map((g) => {
      const base = median(grid.find((x) => x.length === g.length && x.kind === "no adapter")!.msPerBatch);
      const ms = median(g.msPerBatch);
      return [String(g.length), g.kind, fmt(ms, 2), fmt(ms / BATCH, 3), (ms / base).toFixed(2)];
    }),
    ["r", "l", "r", "r", "r"],
  );
  const pr = results.map((c) => ({ name: c.name, msPerRequest: 1000 / median(c.reps.map((x) => x.rps)) }));
  await writeReport({
    name: "variants",
    title: "Prompt vs prefix adapters: cost per request",
    notes: [
      settingsLine({ concurrency: CONCURRENCY, "raw batch": BATCH }),
      `Both adapters pooling, prompt length L = ${L}. Server: SST-2 dev sentences, one per request, closed loop, median of ${REPS} alternating repetitions; cost per request at saturation: ${pr.map((p) => `${p.name} ${fmt(p.msPerRequest, 2)} ms`).join(", ")} (prefix ÷ prompt throughput ${ratioOf(results, "prefix adapter", "prompt adapter").toFixed(3)}).`,
      `Raw: BackboneRunner.run on a batch of ${BATCH} rows of exactly N SST-2 tokens, assembled by the server's assembleBatch; median of ${RUNS} runs per repetition, median over ${REPS} repetitions.`,
    ],
    tables: [
      { caption: "Server", markdown: throughputTable(results, "prompt adapter") },
      { caption: "Raw backbone", markdown: rawTable },
    ],
    data: { promptLength: L, server: results, perRequestMs: pr, raw: grid },
  });
});
