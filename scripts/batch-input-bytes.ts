/**
 * Bytes one batch sends to the backbone's graph, in each input form (docs/webgpu.md "What crosses
 * the bus"): the embeds form (rows of the table looked up on the host: the CPU path) and the token-id
 * form (ids plus the batch's distinct soft-prompt rows: the WebGPU path). Counts the buffers
 * assembleBatch builds for 32 SST-2 dev sentences under USE-lite, and the median time of building
 * them on the host (of 51). With `--time` it also runs each
 * batch on the CPU through both forms' graphs (assembly + run, median of 15) to show what the
 * token-id graphs would cost or save on the CPU.
 *
 * A second table: prefix batches on a WebGPU worker with the device adapter cache
 * (SKT_DEVICE_CACHE_BYTES; engine/device-cache.ts): the first batch of an adapter uploads it into a
 * slot (miss), later ones send a slot per row (hit), against sending the keys/values every time. With
 * `--webgpu` each form also runs on the WebGPU provider (the first 8 rows of each batch, assembly +
 * run, median of 3 after a warm-up; on SwiftShader, a CPU, this says what the extra bank-read run
 * costs there, not what a GPU's bus saves).
 *
 *   npx tsx scripts/batch-input-bytes.ts [--time] [--webgpu]
 */
import { prepareFromOutput, type PreparedAdapter } from "../src/adapters/prepared.js";
import { outputWidth, type Variant } from "../src/adapters/spec.js";
import { BackboneRunner, loadBackboneAssets, type BackboneBatch } from "../src/backbone/backbone.js";
import type { GraphInput } from "../src/backbone/token-input.js";
import type { BackboneDims } from "../src/backbone/dims.js";
import { assembleBatch, type BatchRow } from "../src/engine/assemble.js";
import { PrefixSlotTable } from "../src/engine/device-cache.js";
import { prepareWebGpuEnv } from "./lib/webgpu-env.js";
import { MODELS_DIR } from "./lib/paths.js";
import { readSst2Sentences } from "./lib/sst2.js";

const ROWS = 32;
const PROMPT_LENGTH = 12;

function adapter(task: string, variant: Variant, dims: BackboneDims): PreparedAdapter {
  const width = outputWidth(variant, dims);
  const file = {
    metadata: {
      task,
      variant,
      pooling: true,
      promptText: "",
      promptLength: PROMPT_LENGTH,
      labels: ["negative", "positive"],
      problemType: "single_label_classification" as const,
      backbone: "use-lite",
      backboneFingerprint: "",
      maxLength: 128,
      textPair: false,
    },
    tensors: {
      "head.weight": { shape: [2, dims.hiddenDim], data: new Float32Array(2 * dims.hiddenDim) },
      "head.bias": { shape: [2], data: new Float32Array(2) },
    },
  };
  return prepareFromOutput(file, 1, new Float32Array(PROMPT_LENGTH * width).fill(0.1), dims);
}

/** Bytes of every tensor the batch feeds, split into the input stage and the prefix. */
function bytes(b: BackboneBatch): { input: number; prefix: number; total: number } {
  const stage = b.tokenIds ? b.tokenIds.ids.byteLength + b.tokenIds.promptRows.byteLength : b.inputsEmbeds.byteLength;
  const input = stage + b.attentionMask.byteLength + (b.tokenTypeIds?.byteLength ?? 0);
  const banked = b.bankedPrefix;
  const upload = banked?.bank.upload;
  const prefix = b.prefix
    ? [...b.prefix.keys, ...b.prefix.values, b.prefix.mask].reduce((n, a) => n + a.byteLength, 0)
    : banked
      ? [banked.mask, banked.bank.rowSlots, ...(upload ? [upload.slots, ...upload.keys, ...upload.values] : [])].reduce(
          (n, a) => n + a.byteLength,
          8, // prefix_length
        )
      : 0;
  return { input, prefix, total: input + prefix };
}

const kib = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

const assets = await loadBackboneAssets(MODELS_DIR);
const ids = readSst2Sentences("dev")
  .slice(0, ROWS)
  .map((s) => assets.tokenizer.encode(s, 128).ids);
const prompts = ["p0", "p1", "p2", "p3"].map((t) => adapter(t, "prompt", assets.dims));
const prefix = adapter("x", "prefix", assets.dims);
const prefixes = ["x0", "x1", "x2", "x3"].map((t) => adapter(t, "prefix", assets.dims));
const cases: [string, BatchRow[]][] = [
  ["no adapter (/embed)", ids.map((i) => ({ adapter: null, ids: i }))],
  ["one prompt-variant task", ids.map((i) => ({ adapter: prompts[0], ids: i }))],
  ["four prompt-variant tasks", ids.map((i, n) => ({ adapter: prompts[n % 4], ids: i }))],
  ["one prefix-variant task", ids.map((i) => ({ adapter: prefix, ids: i }))],
];
console.log(`${ROWS} SST-2 dev sentences per batch, USE-lite, soft prompt / prefix length ${PROMPT_LENGTH}\n`);
/** Median ms of assembling the batch on the host (the lookup, the soft prompts, the prefix copy). */
function assembleMs(rows: BatchRow[], input: GraphInput): number {
  const times: number[] = [];
  for (let i = 0; i < 51; i++) {
    const t0 = performance.now();
    assembleBatch(rows, assets.embeddings, assets.dims, input);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[25];
}

console.log(
  "| batch | seq | embeds form: input stage | token-id form: input stage | prefix keys/values (both forms) | host assembly ms, embeds / ids |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
for (const [name, rows] of cases) {
  const e = assembleBatch(rows, assets.embeddings, assets.dims, "embeds").batch;
  const t = assembleBatch(rows, assets.embeddings, assets.dims, "ids").batch;
  const ms = `${assembleMs(rows, "embeds").toFixed(2)} / ${assembleMs(rows, "ids").toFixed(2)}`;
  console.log(
    `| ${name} | ${e.seq} | ${kib(bytes(e).input)} | ${kib(bytes(t).input)} | ${kib(bytes(e).prefix)} | ${ms} |`,
  );
}

const prefixCases: [string, BatchRow[]][] = [
  ["one prefix-variant task", ids.map((i) => ({ adapter: prefix, ids: i }))],
  ["four prefix-variant tasks", ids.map((i, n) => ({ adapter: prefixes[n % 4], ids: i }))],
];
/** The same batch twice through one fresh slot table: the first uploads its adapters, the second hits. */
function bankedPair(rows: BatchRow[]): [BackboneBatch, BackboneBatch] {
  const table = PrefixSlotTable.forDims(256 * 1024 * 1024, assets.dims);
  const once = () => assembleBatch(rows, assets.embeddings, assets.dims, "ids", "padded", table).batch;
  return [once(), once()];
}
function bankedHitMs(rows: BatchRow[]): number {
  const table = PrefixSlotTable.forDims(256 * 1024 * 1024, assets.dims);
  assembleBatch(rows, assets.embeddings, assets.dims, "ids", "padded", table);
  const times: number[] = [];
  for (let i = 0; i < 51; i++) {
    const t0 = performance.now();
    assembleBatch(rows, assets.embeddings, assets.dims, "ids", "padded", table);
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[25];
}
console.log("\nPrefix batches on a WebGPU worker (token-id form; prefix = keys/values, or slots + mask + uploads)\n");
console.log(
  "| batch | prefix sent, no device cache | with the cache: first batch (miss) | later batches (hit) | host assembly ms, no cache / hit |",
);
console.log("| --- | ---: | ---: | ---: | ---: |");
for (const [name, rows] of prefixCases) {
  const sent = assembleBatch(rows, assets.embeddings, assets.dims, "ids").batch;
  const [miss, hit] = bankedPair(rows);
  const ms = `${assembleMs(rows, "ids").toFixed(2)} / ${bankedHitMs(rows).toFixed(2)}`;
  console.log(
    `| ${name} | ${kib(bytes(sent).prefix)} | ${kib(bytes(miss).prefix)} | ${kib(bytes(hit).prefix)} | ${ms} |`,
  );
}

if (process.argv.includes("--webgpu")) {
  const env = prepareWebGpuEnv();
  if (!env.available) throw new Error(`--webgpu: ${env.reason}`);
  const runner = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "webgpu" });
  console.log(
    `\nWebGPU (${runner.deviceInfo.adapter ?? "unknown adapter"}), 8 rows: assembly + run, median of 3 (ms)\n`,
  );
  console.log("| batch | prefix sent with the batch | prefix read from the device banks (hit) |");
  console.log("| --- | ---: | ---: |");
  for (const [name, allRows] of prefixCases) {
    const rows = allRows.slice(0, 8);
    const table = PrefixSlotTable.forDims(256 * 1024 * 1024, assets.dims);
    const median = async (make: () => BackboneBatch) => {
      const times: number[] = [];
      for (let i = 0; i < 4; i++) {
        const t0 = performance.now();
        await runner.run(make());
        if (i > 0) times.push(performance.now() - t0); // the first is a warm-up (and the banked one's miss)
      }
      return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
    };
    const sent = await median(() => assembleBatch(rows, assets.embeddings, assets.dims, "ids").batch);
    const hit = await median(() => assembleBatch(rows, assets.embeddings, assets.dims, "ids", "padded", table).batch);
    console.log(`| ${name} | ${sent.toFixed(0)} | ${hit.toFixed(0)} |`);
  }
  await runner.release();
}

if (process.argv.includes("--time")) {
  const runners = {
    embeds: await BackboneRunner.create(MODELS_DIR, { threads: 1, input: "embeds" }),
    ids: await BackboneRunner.create(MODELS_DIR, { threads: 1, input: "ids" }),
  };
  const median = async (input: GraphInput, rows: BatchRow[]) => {
    const times: number[] = [];
    for (let i = 0; i < 16; i++) {
      const t0 = performance.now();
      await runners[input].run(assembleBatch(rows, assets.embeddings, assets.dims, input).batch);
      if (i > 0) times.push(performance.now() - t0); // the first is a warm-up
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  };
  console.log("\nCPU, 1 intra-op thread: assembly + run, median of 15 (ms)\n");
  console.log("| batch | embeds graphs | token-id graphs |");
  console.log("| --- | ---: | ---: |");
  for (const [name, rows] of cases) {
    const [e, t] = [await median("embeds", rows), await median("ids", rows)];
    console.log(`| ${name} | ${e.toFixed(1)} | ${t.toFixed(1)} |`);
  }
  await Promise.all([runners.embeds.release(), runners.ids.release()]);
}
