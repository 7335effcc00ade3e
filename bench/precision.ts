/**
 * npm run bench:precision — what SKT_PRECISION=fp16 (and int8, for comparison) does to the backbone's
 * numbers and to the shipped adapters' accuracy, on the CPU (no machine here has `shader-f16`):
 * - fp16: the built fp16 graphs (graph/half.ts) run by onnxruntime's CPU provider, which computes the
 *   ops it has no float16 kernel for in float32 between Casts;
 * - fp16, emulated: the same graphs in float32 with every value the fp16 graph holds as float16
 *   (weights, each float16 op's output) rounded to float16 — storage rounding at every op, a
 *   pessimistic stand-in for a GPU (whose MatMuls may also accumulate in float16, which neither
 *   models);
 * - int8: the int8 graphs (CPU).
 * Parity against fp32 on BENCH_PRECISION_SENTENCES SST-2 dev sentences (batches of 32), and each
 * adapter's accuracy: adapters/sst2 on SST-2 dev, adapters/spam on data/spam/test.jsonl (`npm run
 * data:spam`; skipped when absent). Each precision prepares the adapter with its own semantic pass,
 * as a server running it would; texts are truncated to the adapter's budget as the engine does.
 */
import { existsSync, readFileSync } from "node:fs";
import { copyFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { decodeAdapter } from "../src/adapters/format.js";
import { applyHead, prepareAdapter } from "../src/adapters/prepared.js";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneOutputName,
} from "../src/backbone/backbone.js";
import { backboneDir, BUILD_FILES } from "../src/backbone/build.js";
import type { Precision } from "../src/backbone/device.js";
import { toHalfPrecision } from "../src/backbone/graph/half.js";
import { toOnnxBytes } from "../src/backbone/graph/onnx.js";
import { buildUseLiteNetwork } from "../src/backbone/use-lite/network.js";
import { readUseLitePackage } from "../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights } from "../src/backbone/use-lite/weights.js";
import { cosine } from "../scripts/lib/vectors.js";
import { assembleBatch } from "../src/engine/assemble.js";
import {
  fmt,
  main,
  makeTempDir,
  markdownTable,
  median,
  MODELS_DIR,
  pct,
  readSst2,
  REPO_ROOT,
  settingsLine,
  THREADS,
  writeReport,
} from "./lib.js";

const SENTENCES = Number(process.env.BENCH_PRECISION_SENTENCES ?? 256);
const OUTPUTS: BackboneOutputName[] = ["last_hidden_state", "pooled", "sentence_embedding"];
const H = 512;
const BATCH = 32;

interface Variant {
  name: string;
  runner: BackboneRunner;
}

/** A build folder holding the emulated fp16 graphs under the fp16 file names (and the real manifest). */
async function emulatedBuild(assets: BackboneAssets): Promise<string> {
  const dir = await makeTempDir("precision");
  await copyFile(path.join(backboneDir(MODELS_DIR), "manifest.json"), path.join(dir, "manifest.json"));
  const w = mapUseLiteWeights((await readUseLitePackage()).weights);
  for (const [file, prefix] of [
    [BUILD_FILES.fp16Model, false],
    [BUILD_FILES.fp16PrefixModel, true],
  ] as const) {
    const graph = toHalfPrecision(buildUseLiteNetwork(w, { prefix }).graph, { emulate: true }).graph;
    await writeFile(path.join(dir, file), toOnnxBytes(graph, `${assets.name}_fp16_emulated`));
  }
  return dir;
}

interface Parity {
  maxAbs: number;
  scale: number;
  cosines: number[];
}

/** Compares each variant's outputs with fp32's on the same batches, per output; also ms per batch. */
async function parity(assets: BackboneAssets, fp32: BackboneRunner, variants: Variant[]) {
  const dev = readSst2("dev").slice(0, SENTENCES);
  const stats = new Map<string, Record<string, Parity>>(variants.map((v) => [v.name, {}]));
  const ms = new Map<string, number[]>([["fp32", []], ...variants.map((v) => [v.name, []] as [string, number[]])]);
  for (let start = 0; start < dev.length; start += BATCH) {
    const rows = dev.slice(start, start + BATCH).map((e) => assets.tokenizer.encode(e.sentence, 128).ids);
    const make = () => tokenBatch(assets.embeddings, assets.dims.embedDim, rows, OUTPUTS);
    const run = async (name: string, runner: BackboneRunner) => {
      const t = performance.now();
      const out = await runner.run(make());
      ms.get(name)!.push(performance.now() - t);
      return out;
    };
    const ref = await run("fp32", fp32);
    const batch = make();
    for (const v of variants) {
      const out = await run(v.name, v.runner);
      for (const name of OUTPUTS) {
        const a = ref[name]!;
        const b = out[name]!;
        const s = (stats.get(v.name)![name] ??= { maxAbs: 0, scale: 0, cosines: [] });
        for (let i = 0; i < a.length; i++) {
          s.maxAbs = Math.max(s.maxAbs, Math.abs(a[i] - b[i]));
          s.scale = Math.max(s.scale, Math.abs(a[i]));
        }
        // Per sentence for pooled / sentence_embedding, per real position for last_hidden_state.
        const vectors = a.length / H;
        for (let r = 0; r < vectors; r++) {
          if (name === "last_hidden_state" && batch.attentionMask[r] === 0n) continue;
          s.cosines.push(cosine(a.subarray(r * H, (r + 1) * H), b.subarray(r * H, (r + 1) * H)));
        }
      }
    }
  }
  return { stats, ms };
}

/** Accuracy of an adapter on labelled texts through `runner` (its own semantic pass, engine truncation). */
async function accuracy(
  assets: BackboneAssets,
  runner: BackboneRunner,
  adapterFile: string,
  examples: { text: string; label: string }[],
): Promise<number> {
  const bytes = new Uint8Array(readFileSync(adapterFile));
  const file = decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint });
  const promptIds = assets.tokenizer.ids(file.metadata.promptText);
  const semantic = await runner.run(
    tokenBatch(assets.embeddings, assets.dims.embedDim, [promptIds], ["last_hidden_state"]),
  );
  const adapter = prepareAdapter(file, 1, semantic.last_hidden_state!, assets.dims);
  let right = 0;
  for (let start = 0; start < examples.length; start += BATCH) {
    const part = examples.slice(start, start + BATCH);
    const rows = part.map((e) => ({ adapter, ids: assets.tokenizer.encode(e.text, adapter.textBudget).ids }));
    const pooled = (await runner.run(assembleBatch(rows, assets.embeddings, assets.dims).batch)).pooled!;
    part.forEach((e, r) => {
      if (applyHead(adapter, pooled.subarray(r * H, (r + 1) * H)).label === e.label) right++;
    });
  }
  return right / examples.length;
}

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const open = (precision: Precision, dir = backboneDir(MODELS_DIR)) =>
    BackboneRunner.open(dir, { threads: THREADS, precision });
  const fp32 = await open("fp32");
  const variants: Variant[] = [
    { name: "fp16", runner: await open("fp16") },
    { name: "fp16 emulated", runner: await open("fp16", await emulatedBuild(assets)) },
    { name: "int8", runner: await open("int8") },
  ];
  const { stats, ms } = await parity(assets, fp32, variants);

  const sst2 = readSst2("dev").map((e) => ({ text: e.sentence, label: e.label === 1 ? "positive" : "negative" }));
  const spamFile = path.join(REPO_ROOT, "data/spam/test.jsonl");
  const spam = existsSync(spamFile)
    ? readFileSync(spamFile, "utf8")
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as { text: string; label: string })
    : null;
  const tasks = [
    { task: "sst2", adapter: "adapters/sst2/v000002.safetensors", data: "SST-2 dev", examples: sst2 },
    ...(spam
      ? [{ task: "spam", adapter: "adapters/spam/v000001.safetensors", data: "spam test", examples: spam }]
      : []),
  ];
  const acc: Record<string, Record<string, number>> = {};
  for (const t of tasks)
    for (const { name, runner } of [{ name: "fp32", runner: fp32 }, ...variants])
      (acc[t.task] ??= {})[name] = await accuracy(assets, runner, path.join(REPO_ROOT, t.adapter), t.examples);

  for (const r of [fp32, ...variants.map((v) => v.runner)]) await r.release();

  const parityRows = variants.flatMap((v) =>
    OUTPUTS.map((name) => {
      const s = stats.get(v.name)![name];
      const sorted = [...s.cosines].sort((a, b) => a - b);
      return [
        v.name,
        name,
        s.maxAbs.toExponential(2),
        fmt(s.scale, 2),
        (s.maxAbs / s.scale).toExponential(2),
        sorted[0].toFixed(6),
        median(sorted).toFixed(7),
      ];
    }),
  );
  const names = ["fp32", ...variants.map((v) => v.name)];
  const accRows = tasks.map((t) => [
    `${t.task} (${t.adapter})`,
    `${t.data} (${t.examples.length})`,
    ...names.map(
      (n) =>
        `${pct(acc[t.task][n], 2)}${n === "fp32" ? "" : ` (${fmt((acc[t.task][n] - acc[t.task].fp32) * 100, 2)})`}`,
    ),
  ]);
  await writeReport({
    name: "precision",
    title: "Precision: fp16 (onnxruntime CPU provider, and emulated) and int8 against fp32",
    notes: [
      settingsLine({ sentences: SENTENCES, batch: BATCH }),
      "No machine here offers WebGPU's shader-f16: fp16 ran on onnxruntime's CPU provider (ops without a float16 kernel run in float32 between Casts) and as an emulation (every float16 value rounded, arithmetic in float32).",
      `ms per batch of ${BATCH} (median, CPU, loaded machine): ${names.map((n) => `${n} ${fmt(median(ms.get(n)!), 0)}`).join(" · ")}`,
      ...(spam ? [] : ["spam: data/spam/test.jsonl absent (run `npm run data:spam`), skipped"]),
    ],
    tables: [
      {
        caption: `Parity against fp32 on ${SENTENCES} SST-2 dev sentences (cosine per sentence; per real position for last_hidden_state)`,
        markdown: markdownTable(
          [
            "precision",
            "output",
            "max |diff|",
            "largest |value|",
            "max |diff| / largest",
            "min cosine",
            "median cosine",
          ],
          parityRows,
          ["l", "l", "r", "r", "r", "r", "r"],
        ),
      },
      {
        caption: "Accuracy (change vs fp32 in points)",
        markdown: markdownTable(["adapter", "data", ...names], accRows),
      },
    ],
    data: {
      parity: Object.fromEntries(
        [...stats].map(([n, s]) => [
          n,
          Object.fromEntries(
            Object.entries(s).map(([o, p]) => [
              o,
              { maxAbs: p.maxAbs, scale: p.scale, minCosine: Math.min(...p.cosines) },
            ]),
          ),
        ]),
      ),
      accuracy: acc,
      msPerBatch: Object.fromEntries([...ms].map(([n, xs]) => [n, median(xs)])),
    },
  });
});
