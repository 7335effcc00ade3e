/**
 * `train` and `eval` commands. `train` writes the adapter (server format, training summary in its
 * metadata) and a JSON log of the run; `eval` scores an adapter file on a labelled file through the
 * full serving engine (registry, batcher, worker), so eval and serving cannot disagree.
 */
import { mkdtemp, readFile, rm, writeFile, mkdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Command, CommanderError } from "commander";
import { encodeAdapter, peekMetadata } from "../adapters/format.js";
import { VARIANTS, type Variant } from "../adapters/spec.js";
import { isPrecision, PRECISIONS, type Precision } from "../backbone/device.js";
import { defaultConfig } from "../config.js";
import { Engine } from "../engine/engine.js";
import type { Prediction } from "../engine/service.js";
import { SktError } from "../errors.js";
import { defineEval, defineTrain, type EvalFlags, type TrainFlags } from "./commands.js";
import { loadDataset, type Dataset } from "./datasets.js";
import { reportFor, type EvalReport } from "./evaluate.js";
import { defaultHoldoutSize, stratifiedHoldout } from "./holdout.js";
import { createProgressReporter, progressMode } from "./progress.js";
import { trainAdapter, type TrainOptions } from "./trainer.js";
import { defaultInit, type InitScheme, type TrainMethod } from "./init.js";

function fail(message: string): never {
  throw new SktError("bad_request", "invalid_arguments", message);
}

function num(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) fail(`--${name} must be a number, got "${value}"`);
  return n;
}

/** Parses `argv` (the flags after `train`/`eval`) with the command's own definition, for callers without the program. */
function parseWith<T>(define: (cmd: Command) => Command, name: string, argv: readonly string[]): T {
  const cmd = define(new Command(name))
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} });
  try {
    cmd.parse([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) fail(`${name}: ${e.message.replace(/^error: /, "")}`);
    throw e;
  }
  return cmd.opts<T & object>();
}

/** `train` with the flags as on the command line (the program's `train` command calls `runTrain`). */
export async function trainCommand(argv: readonly string[]): Promise<void> {
  await runTrain(parseWith<TrainFlags>(defineTrain, "train", argv));
}

export async function evalCommand(argv: readonly string[]): Promise<void> {
  await runEval(parseWith<EvalFlags>(defineEval, "eval", argv));
}

const modelsDirOf = (v: { modelsDir?: string }) => v.modelsDir ?? (process.env.SKT_MODELS_DIR?.trim() || "models");
const modelOf = (v: { model?: string }) => v.model ?? (process.env.SKT_MODEL?.trim() || undefined);
const threadsOf = (v: { threads?: string }) =>
  num(v.threads ?? (process.env.SKT_THREADS?.trim() || undefined), "threads", 2);

/** The validation data: --dev, --holdout N (the file's last N; 0: none), or a stratified default slice. */
async function splitValidation(
  v: TrainFlags,
  train: Dataset,
  seed: number,
): Promise<{ dev: Dataset | undefined; describe: string | null }> {
  if (v.holdout && v.dev) fail("use either --dev FILE or --holdout N for the validation data, not both");
  if (v.dev)
    return {
      dev: await loadDataset(v.dev, { labels: train.labels.length ? train.labels : undefined }),
      describe: v.dev,
    };
  if (v.holdout) {
    // "--holdout N": the file's last N examples validate (early stopping) and are never trained on.
    const holdout = num(v.holdout, "holdout", 0);
    if (!Number.isInteger(holdout) || holdout < 0 || holdout >= train.examples.length)
      fail(`--holdout must be a whole number between 0 and ${train.examples.length - 1}`);
    if (holdout === 0) return { dev: undefined, describe: null };
    const describe = `last ${holdout} examples of ${v.data}`;
    const dev = {
      ...train,
      path: `${v.data} (last ${holdout} examples)`,
      examples: train.examples.slice(train.examples.length - holdout),
    };
    train.examples = train.examples.slice(0, train.examples.length - holdout);
    return { dev, describe };
  }
  const size = defaultHoldoutSize(train.examples.length);
  if (size === 0) return { dev: undefined, describe: null };
  const split = stratifiedHoldout(train.examples, size, seed);
  const describe = `stratified ${size} examples of ${v.data} (seed ${seed})`;
  train.examples = split.train;
  return { dev: { ...train, path: `${v.data} (${describe})`, examples: split.heldOut }, describe };
}

export async function runTrain(v: TrainFlags): Promise<void> {
  if (!v.task || !v.data || !v.prompt || !v.out)
    fail("train needs --task, --data, --prompt and --out (see skt train --help)");
  // No --variant and no pooling flag: prefix with pooling, or the first form that fits the cap on this backbone.
  const autoForm = v.variant === undefined && v.pooling === undefined;
  const variant = (v.variant ?? "prefix") as Variant;
  const method = (v.method ?? "sk") as TrainMethod;
  if (!VARIANTS.includes(variant)) fail(`--variant must be prompt or prefix, got "${v.variant}"`);
  if (!["sk", "prompt-tuning", "probe"].includes(method)) fail(`--method must be sk, prompt-tuning or probe`);
  const seed = num(v.seed, "seed", 1);
  const train = await loadDataset(v.data);
  const { dev, describe: devDescription } = await splitValidation(v, train, seed);
  const trainLimit = num(v.trainLimit, "train-limit", train.examples.length);
  // A slice from the front of the file: "--train-limit N" trains on the file's first N examples.
  train.examples = train.examples.slice(0, trainLimit);
  const labelNames = v.labelNames?.split(",").map((s) => s.trim());
  const modelsDir = modelsDirOf(v);
  const threads = threadsOf(v);
  const options: TrainOptions = {
    task: v.task,
    train,
    dev,
    labelNames,
    promptText: v.prompt,
    variant,
    pooling: v.pooling !== false,
    method,
    init: (v.init as InitScheme | undefined) ?? defaultInit(method, variant),
    autoForm,
    autoInit: v.init === undefined,
    epochs: num(v.epochs, "epochs", 3),
    maxSteps: v.maxSteps ? num(v.maxSteps, "max-steps", 0) : undefined,
    batchSize: num(v.batchSize, "batch-size", 32),
    lr: num(v.lr, "lr", 3e-3),
    weightDecay: num(v.weightDecay, "weight-decay", 0.01),
    warmup: num(v.warmup, "warmup", 0.06),
    maxLength: num(v.maxLength, "max-length", 128),
    seed,
    evalEvery: num(v.evalEvery, "eval-every", 500),
    evalLimit: v.evalLimit ? num(v.evalLimit, "eval-limit", 0) : undefined,
    patience: num(v.patience, "patience", 0),
    dropout: num(v.dropout, "dropout", 0.1),
    threads,
    modelsDir,
    model: modelOf(v),
  };
  const progressEvery = num(v.progressEvery, "progress-every", 10);
  if (progressEvery < 0) fail("--progress-every must be 0 or more seconds");
  const mode = progressMode(v, Boolean(process.stdout.isTTY && process.stderr.isTTY));
  const human = (line: string) => {
    if (!v.json) console.log(line);
  };
  if (devDescription === null)
    human(
      `no validation data (${v.holdout === undefined ? `${v.data} is too small to hold examples out` : "--holdout 0"}): the last step is kept`,
    );
  else if (!v.dev && !v.holdout) human(`validation: ${devDescription} (give --dev FILE or --holdout N to choose)`);
  const reporter = createProgressReporter({ mode, everySeconds: progressEvery });
  options.onProgress = (p) => reporter.onProgress(p);
  let result: Awaited<ReturnType<typeof trainAdapter>>;
  try {
    result = await trainAdapter(options);
  } finally {
    reporter.stop();
  }
  const logPath = v.log ?? `${v.out}.log.json`;
  await mkdir(path.dirname(path.resolve(v.out)), { recursive: true });
  const bytes = result.file ? encodeAdapter(result.file) : null;
  if (bytes) await writeFile(v.out, bytes);
  // The final report: the written adapter through the serving engine on all the validation data, as `eval` gives it.
  const finalReport =
    bytes && dev && dev.examples.length > 0
      ? await evaluateThroughEngine(bytes, v.task, dev, {
          threads,
          modelsDir,
          model: modelOf(v),
          datasetLabels: datasetLabelOrder(result.file!.metadata.labels, dev.labels, v.labelNames),
        })
      : null;
  const { onProgress: _drop, train: _t, dev: _d, ...printable } = options;
  await writeFile(
    logPath,
    JSON.stringify(
      {
        options: { ...printable, data: v.data, dev: devDescription, trainExamples: train.examples.length },
        result: { ...result, file: undefined },
        finalReport,
      },
      null,
      1,
    ) + "\n",
  );
  if (v.json) {
    console.log(
      JSON.stringify({
        event: "done",
        out: bytes ? v.out : null,
        log: logPath,
        parameters: result.parameters,
        best_step: result.best.step,
        steps: result.history.length,
        examples_per_sec: result.examplesPerSec,
        validation: devDescription,
        report: finalReport ?? result.best.report,
      }),
    );
    return;
  }
  const r = result.best.report;
  console.log(
    `${bytes ? `wrote ${v.out}` : "probe: no adapter written"} (${result.parameters.toLocaleString("en-US")} trainable parameters), log ${logPath}`,
  );
  console.log(
    `best dev ${r?.microF1 !== undefined ? `micro-F1 ${(r.microF1 * 100).toFixed(2)}%, ` : ""}${r?.accuracy !== undefined ? `accuracy ${(r.accuracy * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%` : r?.mse !== undefined ? `MSE ${r.mse.toFixed(4)}` : "n/a"} at step ${result.best.step}; ${result.examplesPerSec.toFixed(0)} examples/s`,
  );
  if (finalReport) {
    console.log(`final report on ${devDescription}:`);
    printReport(finalReport);
  }
}

export async function runEval(v: EvalFlags): Promise<void> {
  if (!v.adapter || !v.data) fail("eval needs --adapter FILE.safetensors and --data FILE");
  const bytes = new Uint8Array(await readFile(v.adapter));
  const meta = peekMetadata(bytes);
  const data = await loadDataset(v.data, meta.problemType === "regression" ? { task: "regression" } : undefined);
  const precision = v.precision ?? "fp32";
  if (!isPrecision(precision)) fail(`--precision must be one of ${PRECISIONS.join(", ")}, not "${precision}"`);
  const report = await evaluateThroughEngine(bytes, meta.task, data, {
    threads: threadsOf(v),
    precision,
    modelsDir: modelsDirOf(v),
    model: modelOf(v),
    datasetLabels: datasetLabelOrder(meta.labels, data.labels, v.labelNames),
  });
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
export async function evaluateThroughEngine(
  bytes: Uint8Array,
  task: string,
  data: Awaited<ReturnType<typeof loadDataset>>,
  o: { threads: number; modelsDir: string; model?: string; datasetLabels: string[]; precision?: Precision },
): Promise<EngineEvalReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-eval-"));
  // The server's defaults, so an evaluation runs the engine as `skt serve` does; only where it runs
  // and how long one call may take (a loaded machine, 64 texts at a time) are the evaluation's own.
  const engine = await Engine.create(
    defaultConfig({
      modelsDir: o.modelsDir,
      model: o.model,
      adaptersDir: dir,
      threads: o.threads,
      device: "cpu",
      precision: o.precision ?? "fp32",
      requestTimeoutMs: 600_000,
    }),
  );
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
    console.log(
      `micro-F1 ${(r.microF1 * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%, exact-match accuracy ${(r.accuracy! * 100).toFixed(2)}% (labels: ${r.labels!.join(", ")})`,
    );
    return;
  }
  console.log(`accuracy ${(r.accuracy! * 100).toFixed(2)}%, macro-F1 ${(r.macroF1! * 100).toFixed(2)}%`);
  console.log(`confusion (rows gold, columns predicted): ${r.labels!.join(" | ")}`);
  r.confusion!.forEach((row, i) =>
    console.log(`  ${r.labels![i].padEnd(12)} ${row.map((c) => String(c).padStart(6)).join(" ")}`),
  );
}
