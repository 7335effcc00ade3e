/**
 * `train` and `eval` commands. `train` writes the adapter (server format, training summary in its
 * metadata) and a JSON log of the run; `eval` scores an adapter file on a labelled file through the
 * full serving engine (registry, batcher, worker), so eval and serving cannot disagree.
 */
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { encodeAdapter, peekMetadata } from "../adapters/format.js";
import { VARIANTS, type Variant } from "../adapters/spec.js";
import { Engine } from "../engine/engine.js";
import type { Prediction } from "../engine/service.js";
import { SktError } from "../errors.js";
import { loadDataset } from "./datasets.js";
import { reportFor, type EvalReport } from "./evaluate.js";
import { trainAdapter, type TrainOptions } from "./trainer.js";
import { defaultInit, type InitScheme, type TrainMethod } from "./init.js";

function fail(message: string): never {
  throw new SktError("bad_request", "invalid_arguments", message);
}

function num(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) fail(`--${name} must be a number, got "${value}"`);
  return n;
}

const TRAIN_FLAGS = {
  task: { type: "string" }, data: { type: "string" }, dev: { type: "string" }, prompt: { type: "string" },
  variant: { type: "string" }, pooling: { type: "boolean" }, "no-pooling": { type: "boolean" },
  method: { type: "string", default: "sk" }, init: { type: "string" }, epochs: { type: "string" }, "max-steps": { type: "string" },
  "batch-size": { type: "string" }, lr: { type: "string" }, "weight-decay": { type: "string" }, warmup: { type: "string" },
  "max-length": { type: "string" }, seed: { type: "string" }, out: { type: "string" }, log: { type: "string" },
  "label-names": { type: "string" }, "train-limit": { type: "string" }, holdout: { type: "string" }, "eval-every": { type: "string" }, "eval-limit": { type: "string" },
  patience: { type: "string" }, dropout: { type: "string" }, threads: { type: "string" }, "models-dir": { type: "string" }, model: { type: "string" },
  quiet: { type: "boolean" },
} as const;

export async function trainCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({ args: argv, options: TRAIN_FLAGS, strict: true });
  if (!v.task || !v.data || !v.prompt || !v.out) fail("train needs --task, --data, --prompt and --out (see README: Training)");
  // No --variant and no pooling flag: prefix with pooling, or the first form that fits the cap on this backbone.
  const autoForm = v.variant === undefined && v.pooling === undefined && v["no-pooling"] === undefined;
  v.variant ??= "prefix";
  if (!VARIANTS.includes(v.variant as Variant)) fail(`--variant must be prompt or prefix, got "${v.variant}"`);
  if (!["sk", "prompt-tuning", "probe"].includes(v.method!)) fail(`--method must be sk, prompt-tuning or probe`);
  const train = await loadDataset(v.data);
  if (v.holdout && v.dev) fail("use either --dev FILE or --holdout N for the validation data, not both");
  // "--holdout N": the file's last N examples validate (early stopping) and are never trained on.
  const holdout = v.holdout ? num(v.holdout, "holdout", 0) : 0;
  if (holdout < 0 || holdout >= train.examples.length) fail(`--holdout must be between 0 and ${train.examples.length - 1}`);
  const heldOut = holdout > 0 ? { ...train, path: `${v.data} (last ${holdout} examples)`, examples: train.examples.slice(train.examples.length - holdout) } : undefined;
  if (holdout > 0) train.examples = train.examples.slice(0, train.examples.length - holdout);
  const trainLimit = num(v["train-limit"], "train-limit", train.examples.length);
  // A slice from the front of the file: "--train-limit N" trains on the file's first N examples.
  train.examples = train.examples.slice(0, trainLimit);
  const dev = v.dev ? await loadDataset(v.dev, { labels: train.labels.length ? train.labels : undefined }) : heldOut;
  const variant = v.variant as Variant;
  const method = v.method as TrainMethod;
  const options: TrainOptions = {
    task: v.task, train, dev, labelNames: v["label-names"]?.split(",").map((s) => s.trim()),
    promptText: v.prompt, variant, pooling: !v["no-pooling"], method,
    init: (v.init as InitScheme | undefined) ?? defaultInit(method, variant), autoForm, autoInit: v.init === undefined,
    epochs: num(v.epochs, "epochs", 3), maxSteps: v["max-steps"] ? num(v["max-steps"], "max-steps", 0) : undefined,
    batchSize: num(v["batch-size"], "batch-size", 32), lr: num(v.lr, "lr", 3e-3), weightDecay: num(v["weight-decay"], "weight-decay", 0.01),
    warmup: num(v.warmup, "warmup", 0.06), maxLength: num(v["max-length"], "max-length", 128), seed: num(v.seed, "seed", 1),
    evalEvery: num(v["eval-every"], "eval-every", 500), evalLimit: v["eval-limit"] ? num(v["eval-limit"], "eval-limit", 0) : undefined,
    patience: num(v.patience, "patience", 0), dropout: num(v.dropout, "dropout", 0.1),
    threads: num(v.threads, "threads", 2), modelsDir: v["models-dir"] ?? "models", model: v.model ?? process.env.SKT_MODEL,
  };
  const bar = v.quiet ? null : new cliProgress.SingleBar({ format: "train |{bar}| {value}/{total} steps · loss {loss} · {speed} ex/s · ETA {eta_formatted} · dev {dev}" }, cliProgress.Presets.shades_classic);
  let dev_ = "–";
  options.onProgress = (p) => {
    if (p.eval) dev_ = p.eval.score.toFixed(4);
    // Without the bar (quiet, or output to a file) each evaluation is one log line.
    if (!bar) {
      if (p.eval) console.log(`step ${p.step}/${p.totalSteps} · loss ${p.loss.toFixed(4)} · ${p.examplesPerSec.toFixed(0)} ex/s · dev ${dev_}`);
      return;
    }
    if (p.step === 1 || !bar.getTotal()) bar.start(p.totalSteps, 0, { loss: "–", speed: "–", dev: dev_ });
    bar.update(p.step, { loss: p.loss.toFixed(4), speed: p.examplesPerSec.toFixed(0), dev: dev_ });
  };
  const result = await trainAdapter(options);
  bar?.stop();
  const logPath = v.log ?? `${v.out}.log.json`;
  await mkdir(path.dirname(path.resolve(v.out)), { recursive: true });
  if (result.file) await writeFile(v.out, encodeAdapter(result.file));
  const { onProgress: _drop, train: _t, dev: _d, ...printable } = options;
  await writeFile(logPath, JSON.stringify({ options: { ...printable, data: v.data, dev: v.dev ?? (holdout ? `last ${holdout} examples of ${v.data}` : null), trainExamples: train.examples.length }, result: { ...result, file: undefined } }, null, 1) + "\n");
  const r = result.best.report;
  console.log(`${result.file ? `wrote ${v.out}` : "probe: no adapter written"} (${result.parameters.toLocaleString("en-US")} trainable parameters), log ${logPath}`);
  console.log(`best dev ${r?.microF1 !== undefined ? `micro-F1 ${(r.microF1 * 100).toFixed(2)}%, ` : ""}${r?.accuracy !== undefined ? `accuracy ${(r.accuracy * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%` : r?.mse !== undefined ? `MSE ${r.mse.toFixed(4)}` : "n/a"} at step ${result.best.step}; ${result.examplesPerSec.toFixed(0)} examples/s`);
}

export async function evalCommand(argv: string[]): Promise<void> {
  const { values: v } = parseArgs({ args: argv, options: { adapter: { type: "string" }, data: { type: "string" }, "label-names": { type: "string" }, threads: { type: "string" }, "models-dir": { type: "string" }, model: { type: "string" }, json: { type: "boolean" } }, strict: true });
  if (!v.adapter || !v.data) fail("eval needs --adapter FILE.safetensors and --data FILE");
  const bytes = new Uint8Array(await readFile(v.adapter));
  const meta = peekMetadata(bytes);
  const data = await loadDataset(v.data, meta.problemType === "regression" ? { task: "regression" } : undefined);
  const report = await evaluateThroughEngine(bytes, meta.task, data, { threads: num(v.threads, "threads", 2), modelsDir: v["models-dir"] ?? "models", model: v.model ?? process.env.SKT_MODEL, datasetLabels: datasetLabelOrder(meta.labels, data.labels, v["label-names"]) });
  if (v.json) console.log(JSON.stringify(report, null, 1));
  else printReport(report);
}

/**
 * The dataset's label for each adapter label, in the adapter's order. Datasets whose labels are
 * the adapter's names map directly; numeric GLUE labels map by --label-names or by position.
 */
function datasetLabelOrder(adapterLabels: string[], datasetLabels: string[], labelNames?: string): string[] {
  if (adapterLabels.every((l) => datasetLabels.includes(l))) return adapterLabels;
  const names = labelNames?.split(",").map((s) => s.trim());
  if (names) return adapterLabels.map((l) => datasetLabels[names.indexOf(l)]);
  return datasetLabels;
}

export interface EngineEvalReport extends EvalReport {
  task: string;
  adapterVersion: number;
}

/** Uploads the adapter into a throwaway store and classifies every example through the engine. */
export async function evaluateThroughEngine(bytes: Uint8Array, task: string, data: Awaited<ReturnType<typeof loadDataset>>, o: { threads: number; modelsDir: string; model?: string; datasetLabels: string[] }): Promise<EngineEvalReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-eval-"));
  const engine = await Engine.create({
    modelsDir: o.modelsDir, model: o.model, adaptersDir: dir, threads: o.threads, device: "cpu", maxBatchSize: 64, maxBatchTokens: 8192, maxWaitMs: 2, maxPaddingRatio: 0.25,
    queueSize: 1 << 20, cacheBytes: 64 << 20, maxAdapterParams: 1_000_000, maxUploadBytes: 64 << 20, semanticCache: true, requestTimeoutMs: 600_000,
  });
  try {
    const info = await engine.upload(task, bytes);
    const chunk = 64;
    const outputs: Prediction[] = [];
    for (let i = 0; i < data.examples.length; i += chunk) {
      const part = data.examples.slice(i, i + chunk);
      const pairs = part.some((e) => e.pair !== undefined) ? part.map((e) => e.pair ?? "") : undefined;
      const r = await engine.classify({ task, texts: part.map((e) => e.text), pairs });
      outputs.push(...r.predictions);
    }
    return { task, adapterVersion: info.version, ...reportFor(info, data.examples, o.datasetLabels, outputs) };
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}

function printReport(r: EngineEvalReport): void {
  console.log(`task ${r.task}, ${r.examples} examples`);
  if (r.mse !== undefined) {
    console.log(`MSE ${r.mse.toFixed(4)}, Pearson ${r.pearson!.toFixed(4)}`);
    return;
  }
  if (r.microF1 !== undefined) {
    console.log(`micro-F1 ${(r.microF1 * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%, exact-match accuracy ${(r.accuracy! * 100).toFixed(2)}% (labels: ${r.labels!.join(", ")})`);
    return;
  }
  console.log(`accuracy ${(r.accuracy! * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%`);
  console.log(`confusion (rows gold, columns predicted): ${r.labels!.join(" | ")}`);
  r.confusion!.forEach((row, i) => console.log(`  ${r.labels![i].padEnd(12)} ${row.map((c) => String(c).padStart(6)).join(" ")}`));
}
