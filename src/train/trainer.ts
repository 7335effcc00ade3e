/**
 * The SK-Tuning training loop: the semantic pass once, then AdamW steps over shuffled mini-batches
 * with linear warmup/decay and dropout, periodic evaluation through the serving code, early
 * stopping on the best dev score, and the adapter in the server's format with a training summary.
 * A fixed seed gives byte-identical adapters.
 */
import { BackboneRunner, loadBackboneAssets, tokenBatch, type BackboneAssets } from "../backbone/backbone.js";
import { readUseLitePackage } from "../backbone/use-lite/package-source.js";
import { mapUseLiteWeights } from "../backbone/use-lite/weights.js";
import { readFamilyWeights, readHfFolder } from "../backbone/hf/folder.js";
import type { AdapterFile, AdapterMetadata, AdapterTensor } from "../adapters/format.js";
import { prepareFromOutput, type PreparedAdapter } from "../adapters/prepared.js";
import { MAX_PROMPT_LENGTH, outputWidth, parameterCount, type ProblemType, type Variant } from "../adapters/spec.js";
import { transformForward } from "../adapters/transform.js";
import { assembleBatch } from "../engine/assemble.js";
import { SktError } from "../errors.js";
import { AdamW, linearSchedule } from "./adamw.js";
import type { Dataset, Example } from "./datasets.js";
import { encodeExample, evaluatePrepared, headlineScore, type EvalReport } from "./evaluate.js";
import {
  defaultInit,
  initAdapterTensors,
  meanTokenNorm,
  trainableTensors,
  type InitScheme,
  type TrainMethod,
} from "./init.js";
import { Rng } from "./rng.js";
import { TrainingStep, type StepRow } from "./step.js";
import { hfTrainable, useLiteTrainable, type TrainableBackbone } from "./train-graph.js";

export interface TrainOptions {
  task: string;
  train: Dataset;
  dev?: Dataset;
  /** Display names for the dataset's labels, in the dataset's label order (e.g. negative,positive for "0","1"). */
  labelNames?: string[];
  promptText: string;
  variant: Variant;
  pooling: boolean;
  method: TrainMethod;
  init: InitScheme;
  epochs: number;
  /** Stop after this many optimizer steps even if epochs remain. */
  maxSteps?: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  /** Warmup: a fraction of all steps when < 1, else a step count. */
  warmup: number;
  maxLength: number;
  seed: number;
  /** Evaluate on dev every N steps (and at the end). */
  evalEvery: number;
  /** Stop after this many evaluations without a better dev score (0: never). */
  patience: number;
  dropout: number;
  threads: number;
  modelsDir: string;
  /**
   * When the variant and pooling were not chosen: keep them if they fit the cap, else take the first
   * form that does (prefix+pooling, prompt+pooling, prompt, prefix); `autoInit` then re-derives init.
   */
  autoForm?: boolean;
  autoInit?: boolean;
  /** The adapter must stay under this many parameters (the server's SKT_MAX_ADAPTER_PARAMS; default 1,000,000). */
  maxParameters?: number;
  /** A Hugging Face folder to train on instead of the embedded USE-lite. */
  model?: string;
  /** Evaluate on at most this many dev examples during training (the final report uses all). */
  evalLimit?: number;
  onProgress?: (p: ProgressEvent) => void;
}

export interface ProgressEvent {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number;
  examplesPerSec: number;
  eval?: { step: number; score: number; report: EvalReport };
}

export interface TrainResult {
  /** null for the probe (not a servable adapter). */
  file: AdapterFile | null;
  best: { step: number; report: EvalReport | null };
  history: { step: number; loss: number; lr: number }[];
  evals: { step: number; examples: number; seconds: number; report: EvalReport }[];
  parameters: number;
  trainSeconds: number;
  examplesPerSec: number;
  /** Mean ms of one training step and of one forward-only run of the same batch, sampled. */
  timing: { stepMs: number; forwardMs: number; samples: number };
}

interface Encoded {
  ids: number[];
  typeIds?: number[];
  target: number | number[];
}

function problemTypeOf(train: Dataset): ProblemType {
  if (train.multiLabel) return "multi_label_classification";
  return train.labels.length === 0 ? "regression" : "single_label_classification";
}

/**
 * Share of each label among the training examples (single-label data), under the adapter's label
 * names (`names[i]` for the dataset's i-th label). Recorded in the adapter's training summary as
 * `label_distribution`; the server compares what it answers against it (drift, see src/quality.ts).
 */
export function labelDistribution(train: Dataset, names: readonly string[]): Record<string, number> {
  const counts = new Array<number>(train.labels.length).fill(0);
  const index = new Map(train.labels.map((l, i) => [l, i]));
  for (const e of train.examples) counts[index.get(String(e.label))!]++;
  const out: Record<string, number> = {};
  names.forEach((name, i) => (out[name] = counts[i] / train.examples.length));
  return out;
}

/** Refuses data that cannot train a useful adapter, before anything is loaded. */
function refuseUntrainableData(o: TrainOptions): void {
  if (o.train.examples.length === 0)
    throw new SktError("bad_request", "no_training_data", `${o.train.path}: no training examples are left`);
  if (problemTypeOf(o.train) !== "single_label_classification") return;
  const classes = new Set(o.train.examples.map((e) => String(e.label)));
  if (classes.size < 2) {
    throw new SktError(
      "bad_request",
      "one_class",
      `${o.train.path}: every training example has the label "${[...classes][0]}"; a classifier needs examples of at least two classes`,
    );
  }
}

export async function trainAdapter(o: TrainOptions): Promise<TrainResult> {
  refuseUntrainableData(o);
  const assets = await loadBackboneAssets(o.modelsDir, undefined, o.model);
  const backbone = o.model
    ? hfTrainable(readFamilyWeights(await readHfFolder(o.model)))
    : useLiteTrainable(mapUseLiteWeights((await readUseLitePackage()).weights));
  const runner = await BackboneRunner.open(assets.dir, { threads: o.threads });
  try {
    return await trainWith(o, assets, backbone, runner);
  } finally {
    await runner.release();
  }
}

/**
 * Refuses, before any work, an adapter the server would refuse for its size, naming the forms that
 * fit this backbone and prompt (prefix adapters grow with L²·Σ 2·kv_heads·head_dim, or with the
 * hidden sizes without pooling; on real-sized backbones several forms do not fit).
 */
function checkParameterCap(meta: AdapterMetadata, dims: BackboneAssets["dims"], cap: number): void {
  const count = parameterCount(meta, dims);
  if (count <= cap) return;
  const forms = (["prefix", "prompt"] as const).flatMap((variant) =>
    [true, false].map((pooling) => ({ variant, pooling })),
  );
  const fitting = forms
    .filter((f) => parameterCount({ ...meta, ...f }, dims) <= cap)
    .map((f) => `--variant ${f.variant}${f.pooling ? "" : " --no-pooling"}`);
  throw new SktError(
    "bad_request",
    "adapter_too_large",
    `a ${meta.variant} adapter${meta.pooling ? "" : " without pooling"} with a ${meta.promptLength}-token prompt has ${count.toLocaleString("en")} parameters on this backbone, over the cap of ${cap.toLocaleString("en")}; ${fitting.length ? `these fit: ${fitting.join("; ")}` : "no form fits: use a shorter prompt"}`,
  );
}

/** The forms in the order the trainer prefers them when it chooses. */
const FORMS = [
  { variant: "prefix", pooling: true },
  { variant: "prompt", pooling: true },
  { variant: "prompt", pooling: false },
  { variant: "prefix", pooling: false },
] as const;

async function trainWith(
  given: TrainOptions,
  assets: BackboneAssets,
  backbone: TrainableBackbone,
  runner: BackboneRunner,
): Promise<TrainResult> {
  let o = given;
  const problemType = problemTypeOf(o.train);
  const datasetLabels = o.train.labels;
  const labels = problemType === "regression" ? ["value"] : (o.labelNames ?? datasetLabels);
  if (labels.length !== (problemType === "regression" ? 1 : datasetLabels.length)) {
    throw new SktError(
      "bad_request",
      "label_names_mismatch",
      `--label-names gives ${labels.length} names for ${datasetLabels.length} labels (${datasetLabels.join(", ")})`,
    );
  }
  if (o.autoForm && o.method !== "probe") {
    const L0 = assets.tokenizer.ids(o.promptText).length;
    const labelCount = problemTypeOf(o.train) === "regression" ? 1 : (o.labelNames ?? o.train.labels).length;
    const shape = {
      promptLength: L0,
      labels: new Array<string>(labelCount).fill(""),
      problemType: problemTypeOf(o.train),
    };
    const fits = (f: (typeof FORMS)[number]) =>
      parameterCount({ ...shape, ...f }, assets.dims) <= (o.maxParameters ?? 1_000_000);
    const form = fits({ variant: o.variant, pooling: o.pooling }) ? null : FORMS.find(fits);
    if (form) o = { ...o, ...form, init: o.autoInit ? defaultInit(o.method, form.variant) : o.init };
  }
  const promptIds = assets.tokenizer.ids(o.promptText);
  const L = promptIds.length;
  if (L === 0) throw new SktError("bad_request", "empty_prompt", "the prompt text has no tokens");
  const meta: AdapterMetadata = {
    task: o.task,
    variant: o.variant,
    pooling: o.pooling,
    promptText: o.promptText,
    promptLength: L,
    labels,
    problemType,
    backbone: assets.name,
    backboneFingerprint: assets.fingerprint,
    maxLength: o.maxLength,
    textPair: o.train.hasPairs,
  };
  // What the server would refuse at upload, refused here before the first step.
  if (L > MAX_PROMPT_LENGTH)
    throw new SktError(
      "bad_request",
      "prompt_too_long",
      `the prompt has ${L} tokens; adapters allow at most ${MAX_PROMPT_LENGTH}: shorten --prompt`,
    );
  if (o.maxLength > assets.dims.maxPositions)
    throw new SktError(
      "bad_request",
      "max_length_too_large",
      `--max-length ${o.maxLength} is over the backbone's ${assets.dims.maxPositions} positions`,
    );
  checkParameterCap(meta, assets.dims, o.maxParameters ?? 1_000_000);
  const budget = o.variant === "prompt" ? o.maxLength - L : o.maxLength;
  if (budget < 1)
    throw new SktError(
      "bad_request",
      "max_length_too_small",
      `--max-length ${o.maxLength} leaves no room for text after the ${L}-token prompt (the prompt variant's soft prompt takes ${L} positions): raise --max-length or shorten --prompt`,
    );

  const rng = new Rng(o.seed);
  const hp = (await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, [promptIds], ["last_hidden_state"])))
    .last_hidden_state!;
  const promptEmbeds = new Float32Array(L * assets.dims.embedDim);
  promptIds.forEach((id, l) =>
    promptEmbeds.set(
      assets.embeddings.subarray(id * assets.dims.embedDim, (id + 1) * assets.dims.embedDim),
      l * assets.dims.embedDim,
    ),
  );
  const tensors = initAdapterTensors({
    meta,
    dims: assets.dims,
    rng,
    method: o.method,
    init: o.init,
    hp,
    promptEmbeds,
    tokenNorm: meanTokenNorm(assets.embeddings, assets.dims.embedDim),
  });
  const trainable = trainableTensors(o.method, tensors);

  const encode = (e: Example): Encoded => ({
    ...encodeExample(assets.tokenizer, e, o.method === "probe" ? o.maxLength : budget),
    target:
      problemType === "regression"
        ? Number(e.label)
        : Array.isArray(e.label)
          ? e.label.map((l) => datasetLabels.indexOf(l))
          : datasetLabels.indexOf(String(e.label)),
  });
  const trainRows = o.train.examples.map(encode);
  const stepsPerEpoch = Math.ceil(trainRows.length / o.batchSize);
  const totalSteps = Math.min(o.maxSteps ?? Infinity, stepsPerEpoch * o.epochs);
  const warmupSteps = o.warmup < 1 ? Math.round(o.warmup * totalSteps) : Math.round(o.warmup);
  const schedule = linearSchedule({ warmupSteps, totalSteps, peakLr: o.lr });
  const params = Object.fromEntries(trainable.map((n) => [n, tensors[n].data]));
  const optimizer = new AdamW(params, { lr: o.lr, weightDecay: o.weightDecay, noDecay: (n) => n.endsWith(".bias") });

  const stepModel = {
    variant: o.variant,
    pooling: o.pooling,
    promptLength: o.method === "probe" ? 0 : L,
    problemType,
    outputs: labels.length,
  };
  const step = await TrainingStep.create(backbone, assets.dims, stepModel, { threads: o.threads });
  const devExamples = o.dev ? o.dev.examples.slice(0, o.evalLimit ?? o.dev.examples.length) : [];
  const evalCtx = { runner, tokenizer: assets.tokenizer, embeddings: assets.embeddings, dims: assets.dims };
  const prepared = (t: Record<string, AdapterTensor>): PreparedAdapter => preparedFor(meta, t, hp, assets, o.method);

  const history: TrainResult["history"] = [];
  const evals: TrainResult["evals"] = [];
  let best: { step: number; score: number; report: EvalReport | null; tensors: Record<string, AdapterTensor> } = {
    step: 0,
    score: -Infinity,
    report: null,
    tensors: cloneTensors(tensors),
  };
  let sinceBest = 0;
  const timing = { stepMs: 0, forwardMs: 0, samples: 0 };
  let trainMs = 0;
  let examplesSeen = 0;
  const W = outputWidth(o.variant, assets.dims);
  const H = assets.dims.hiddenDim;

  const evaluate = async (at: number): Promise<boolean> => {
    if (devExamples.length === 0) return false;
    const t0 = performance.now();
    const report = await evaluatePrepared(evalCtx, prepared(tensors), devExamples, o.dev!.labels);
    evals.push({ step: at, examples: devExamples.length, seconds: (performance.now() - t0) / 1000, report });
    const score = headlineScore(report);
    const improved = score > best.score;
    if (improved) best = { step: at, score, report, tensors: cloneTensors(tensors) };
    sinceBest = improved ? 0 : sinceBest + 1;
    o.onProgress?.({
      step: at,
      totalSteps,
      epoch: Math.floor(at / stepsPerEpoch),
      loss: history.at(-1)?.loss ?? NaN,
      examplesPerSec: examplesSeen / (trainMs / 1000),
      eval: { step: at, score, report },
    });
    return o.patience > 0 && sinceBest >= o.patience;
  };

  let stepIndex = 0;
  let stopped = false;
  for (let epoch = 0; epoch < o.epochs && !stopped && stepIndex < totalSteps; epoch++) {
    const order = rng.shuffle([...trainRows.keys()]);
    for (let start = 0; start < order.length && stepIndex < totalSteps; start += o.batchSize) {
      const rows: StepRow[] = order.slice(start, start + o.batchSize).map((i) => trainRows[i]);
      const zDropout =
        o.variant === "prefix" && o.dropout > 0 && o.method !== "probe" ? dropoutMask(rng, L * W, o.dropout) : null;
      const pooledDropout = dropoutMask(rng, rows.length * H, o.dropout);
      const t0 = performance.now();
      const out = await step.run({ tensors, hp, rows, zDropout, pooledDropout });
      const lr = schedule(stepIndex);
      optimizer.step(Object.fromEntries(trainable.map((n) => [n, out.grads[n]])), lr);
      const elapsed = performance.now() - t0;
      trainMs += elapsed;
      examplesSeen += rows.length;
      if (stepIndex % 50 === 5 && timing.samples < 10) {
        // Backward/forward ratio: time a forward-only run of this very batch now and then.
        const f0 = performance.now();
        await evaluateForwardOnly(runner, prepared(tensors), rows, assets);
        timing.forwardMs += performance.now() - f0;
        timing.stepMs += elapsed;
        timing.samples++;
      }
      stepIndex++;
      history.push({ step: stepIndex, loss: out.loss, lr });
      o.onProgress?.({
        step: stepIndex,
        totalSteps,
        epoch,
        loss: out.loss,
        examplesPerSec: examplesSeen / (trainMs / 1000),
      });
      if (!Number.isFinite(out.loss))
        throw new SktError(
          "internal",
          "diverged",
          `training diverged at step ${stepIndex} (loss ${out.loss}); lower --lr`,
        );
      if (stepIndex % o.evalEvery === 0 && (await evaluate(stepIndex))) {
        stopped = true;
        break;
      }
    }
  }
  if (stepIndex % o.evalEvery !== 0 && !stopped) await evaluate(stepIndex);
  await step.release();

  // Without dev data the last parameters are the result; with it, the best evaluated ones.
  const finalTensors = devExamples.length > 0 ? best.tensors : tensors;
  const parameters =
    o.method === "probe"
      ? H * labels.length + labels.length
      : trainable.reduce((s, n) => s + tensors[n].data.length, 0);
  const summary = {
    method: o.method,
    init: o.init,
    data: o.train.path,
    train_examples: trainRows.length,
    ...(problemType === "single_label_classification"
      ? { label_distribution: labelDistribution(o.train, labels) }
      : {}),
    dev: o.dev?.path ?? null,
    dev_examples_during_training: devExamples.length,
    epochs: o.epochs,
    steps: stepIndex,
    best_step: best.step,
    batch_size: o.batchSize,
    lr: o.lr,
    weight_decay: o.weightDecay,
    warmup_steps: warmupSteps,
    dropout: o.dropout,
    seed: o.seed,
    trainable_parameters: parameters,
    file_parameters: parameterCount(meta, assets.dims),
    dev_report: best.report,
  };
  const file: AdapterFile | null =
    o.method === "probe" ? null : { metadata: { ...meta, training: summary }, tensors: finalTensors };
  const trainSeconds = trainMs / 1000;
  return {
    file,
    best: { step: best.step, report: best.report },
    history,
    evals,
    parameters,
    trainSeconds,
    examplesPerSec: examplesSeen / trainSeconds,
    timing: {
      stepMs: timing.samples ? timing.stepMs / timing.samples : 0,
      forwardMs: timing.samples ? timing.forwardMs / timing.samples : 0,
      samples: timing.samples,
    },
  };
}

function dropoutMask(rng: Rng, n: number, p: number): Float32Array {
  const keep = 1 / (1 - p);
  return Float32Array.from({ length: n }, () => (p > 0 && rng.next() < p ? 0 : keep));
}

function cloneTensors(t: Record<string, AdapterTensor>): Record<string, AdapterTensor> {
  return Object.fromEntries(
    Object.entries(t).map(([k, v]) => [k, { shape: [...v.shape], data: Float32Array.from(v.data) }]),
  );
}

/** The serving-side prepared form of the current parameters (the probe has no adapter input). */
function preparedFor(
  meta: AdapterMetadata,
  t: Record<string, AdapterTensor>,
  hp: Float32Array,
  assets: BackboneAssets,
  method: TrainMethod,
): PreparedAdapter {
  const file: AdapterFile = { metadata: meta, tensors: t };
  if (method !== "probe") {
    const W = outputWidth(meta.variant, assets.dims);
    return prepareFromOutput(
      file,
      0,
      transformForward(
        { pooling: meta.pooling, length: meta.promptLength, width: W, hidden: assets.dims.hiddenDim },
        t,
        hp,
      ),
      assets.dims,
    );
  }
  const base = prepareFromOutput(
    file,
    0,
    new Float32Array(meta.promptLength * outputWidth(meta.variant, assets.dims)),
    assets.dims,
  );
  return { ...base, softPrompt: null, prefix: null, textBudget: meta.maxLength };
}

async function evaluateForwardOnly(
  runner: BackboneRunner,
  adapter: PreparedAdapter,
  rows: StepRow[],
  assets: BackboneAssets,
): Promise<void> {
  await runner.run(
    assembleBatch(
      rows.map((r) => ({ adapter, ids: r.ids, typeIds: r.typeIds })),
      assets.embeddings,
      assets.dims,
    ).batch,
  );
}
