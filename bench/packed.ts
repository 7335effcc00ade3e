/**
 * npm run bench:packed — the padding-free graph (position-wise parts on packed real tokens, attention
 * padded; buildUseLiteNetwork `packed`) against the padded graph the server runs, per batch shape:
 * ms per batch of the same inputs, alternating, fp32, plain graph (no adapter), same threads.
 * Not part of the serving path: this is the measurement that decides whether it should be.
 */
import ort from "onnxruntime-node";
import { loadBackboneAssets, tokenBatch, type EmbedsBatch } from "../src/backbone/backbone.js";
import { toOnnxBytes } from "../src/backbone/graph/onnx.js";
import { buildUseLiteNetwork } from "../src/backbone/use-lite/network.js";
import { packingIndices } from "../src/backbone/packing.js";
import { readUseLitePackage } from "../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights } from "../src/backbone/use-lite/weights.js";
import {
  fmt,
  main,
  markdownTable,
  median,
  MODELS_DIR,
  pct,
  readSst2Sentences,
  REPS,
  settingsLine,
  THREADS,
  writeReport,
} from "./lib.js";

const BATCHES_PER_SHAPE = Number(process.env.BENCH_PACKED_BATCHES ?? 4);
/** BENCH_PRECISION=int8: both graphs with int8 dense layers. */
const PRECISION = process.env.BENCH_PRECISION === "int8" ? "int8" : "fp32";

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const w = mapUseLiteWeights((await readUseLitePackage()).weights);
  const opts = { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: "all" as const };
  const int8 = PRECISION === "int8";
  const padded = await ort.InferenceSession.create(toOnnxBytes(buildUseLiteNetwork(w, { int8 }).graph), opts);
  const packed = await ort.InferenceSession.create(
    toOnnxBytes(buildUseLiteNetwork(w, { int8, packed: true }).graph),
    opts,
  );
  const D = assets.dims.embedDim;
  const ids = readSst2Sentences("dev").map((s) => assets.tokenizer.encode(s, 128).ids);
  const chunk = (rows: number[][], size: number) =>
    Array.from({ length: Math.ceil(rows.length / size) }, (_, i) => rows.slice(i * size, (i + 1) * size));
  const sorted = [...ids].sort((a, b) => a.length - b.length);
  const shapes: { name: string; batches: number[][][] }[] = [
    { name: "32 dev sentences in arrival order", batches: chunk(ids, 32) },
    { name: "32 dev sentences sorted by length", batches: chunk(sorted, 32).filter((_, i) => i % 6 === 2) },
    // Intermediate padding: 32 rows taken every 2nd / 4th / 8th from a run of sorted sentences.
    ...[2, 4, 8].map((stride) => ({
      name: `32 of ${32 * stride} sorted sentences (every ${stride === 2 ? "2nd" : `${stride}th`})`,
      batches: chunk(sorted, 32 * stride)
        .filter((_, i) => i % 3 === 1)
        .map((run) => run.filter((_, i) => i % stride === 0)),
    })),
    { name: "8 dev sentences in arrival order", batches: chunk(ids, 8) },
    { name: "1 sentence (no padding)", batches: chunk(ids, 1) },
  ];
  const feeds = (b: EmbedsBatch, withIndex: boolean): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor("float32", b.inputsEmbeds, [b.batch, b.seq, D]),
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seq]),
    };
    if (withIndex) {
      const { packedIndex: p, paddedIndex: q } = packingIndices(b.attentionMask);
      f.packed_index = new ort.Tensor("int64", p, [p.length]);
      f.padded_index = new ort.Tensor("int64", q, [q.length]);
    }
    return f;
  };
  const rows = [];
  for (const shape of shapes) {
    const batches = shape.batches
      .slice(0, BATCHES_PER_SHAPE)
      .map((r) => tokenBatch(assets.embeddings, D, r, ["pooled"]));
    const real = batches.reduce((a, b) => a + b.attentionMask.filter((m) => m === 1n).length, 0);
    const all = batches.reduce((a, b) => a + b.batch * b.seq, 0);
    // Index computation is timed with the packed run: it is part of what packing costs.
    const time = async (session: ort.InferenceSession, withIndex: boolean) => {
      const t0 = performance.now();
      for (const b of batches) await session.run(feeds(b, withIndex), ["pooled"]);
      return (performance.now() - t0) / batches.length;
    };
    await time(padded, false);
    await time(packed, true);
    const ratios: number[] = [];
    const pads: number[] = [];
    const packs: number[] = [];
    for (let r = 0; r < Math.max(REPS, 3); r++) {
      const a = await time(padded, false);
      const b = await time(packed, true);
      pads.push(a);
      packs.push(b);
      ratios.push(b / a);
    }
    rows.push([
      shape.name,
      pct(1 - real / all),
      fmt(median(pads), 2),
      fmt(median(packs), 2),
      median(ratios).toFixed(3),
    ]);
    console.log(rows.at(-1)!.join(" | "));
  }
  await padded.release();
  await packed.release();
  await writeReport({
    name: "packed",
    title: "Padding-free graph vs padded graph",
    notes: [
      settingsLine({ "batches per shape": BATCHES_PER_SHAPE, precision: PRECISION }),
      `Plain ${PRECISION} graphs built in memory; each shape's first ${BATCHES_PER_SHAPE} batches, ${Math.max(REPS, 3)} alternating repetitions, median ms per batch; the packed time includes computing its indices.`,
    ],
    tables: [
      {
        markdown: markdownTable(
          ["batch shape", "padding", "padded ms/batch", "packed ms/batch", "packed ÷ padded"],
          rows,
        ),
      },
    ],
    data: { rows },
  });
});
