/**
 * The `train` and `eval` command definitions: their flags (one table each, which the parser and
 * `--help` both come from) and help texts. The work itself is in ./cli.ts, loaded only when one of
 * them runs, so `skt --help` or `skt adapters list` does not load the trainer.
 */
import type { Command } from "commander";
import { addFlags, type FlagSpec } from "../flags.js";
import { DEFAULT_HOLDOUT_FRACTION, DEFAULT_HOLDOUT_MAX } from "./holdout.js";

// Flags train and eval share.
const THREADS_FLAG: FlagSpec = {
  flag: "--threads",
  value: "n",
  default: "2",
  env: "SKT_THREADS",
  meaning: "onnxruntime threads.",
};
const MODELS_DIR_FLAG: FlagSpec = {
  flag: "--models-dir",
  value: "dir",
  default: "models",
  env: "SKT_MODELS_DIR",
  meaning: "Where the built backbone lives.",
};

export const TRAIN_FLAGS: readonly FlagSpec[] = [
  { flag: "--task", value: "name", meaning: "Task name stored in the adapter (required)." },
  {
    flag: "--data",
    value: "file",
    meaning: "Labelled training file: TSV/CSV with a header (sentence, label or labels) or JSONL (required).",
  },
  {
    flag: "--dev",
    value: "file",
    defaultDoc: `a stratified ${DEFAULT_HOLDOUT_FRACTION * 100} % of --data, at most ${DEFAULT_HOLDOUT_MAX.toLocaleString("en-US")} examples`,
    meaning: "Validation file: selects the best step and gives the final report.",
  },
  {
    flag: "--holdout",
    value: "n",
    meaning:
      "Validate on the last N examples of --data instead (never trained on); 0: no validation, keep the last step.",
  },
  { flag: "--prompt", value: "text", meaning: "The task prompt the adapter is built from (required)." },
  { flag: "--out", value: "file", meaning: "Where to write the adapter (.safetensors) (required)." },
  {
    flag: "--variant",
    value: "prefix|prompt",
    defaultDoc:
      "prefix with pooling; where that is over the 1M-parameter cap (large backbones), the first form that fits",
    meaning: "Adapter variant.",
  },
  { flag: "--pooling", meaning: "Pool the prompt's hidden states (the default)." },
  { flag: "--no-pooling", meaning: "Use the non-pooling transform." },
  { flag: "--method", value: "sk|prompt-tuning|probe", default: "sk", meaning: "Training method." },
  {
    flag: "--init",
    value: "scheme",
    defaultDoc: "authors (prefix), token-scale (prompt), random (prompt-tuning)",
    meaning: "Initialisation of the adapter's parameters.",
  },
  { flag: "--epochs", value: "n", default: "3", meaning: "Passes over the training data." },
  { flag: "--max-steps", value: "n", defaultDoc: "no limit", meaning: "Stop after this many optimizer steps." },
  { flag: "--batch-size", value: "n", default: "32", meaning: "Examples per step." },
  { flag: "--lr", value: "rate", default: "3e-3", meaning: "Peak learning rate (AdamW, linear warmup and decay)." },
  { flag: "--weight-decay", value: "x", default: "0.01", meaning: "AdamW weight decay." },
  {
    flag: "--warmup",
    value: "x",
    default: "0.06",
    meaning: "Warmup: a fraction of all steps when < 1, else a step count.",
  },
  {
    flag: "--max-length",
    value: "n",
    default: "128",
    meaning: "Most tokens per input (the prompt variant's soft prompt counts).",
  },
  { flag: "--seed", value: "n", default: "1", meaning: "Random seed (same seed, same adapter, byte for byte)." },
  {
    flag: "--label-names",
    value: "a,b",
    defaultDoc: "the file's labels",
    meaning: "Names for the file's labels, in sorted label order (e.g. negative,positive for 0,1).",
  },
  { flag: "--train-limit", value: "n", defaultDoc: "all", meaning: "Train on the first N training examples only." },
  {
    flag: "--eval-every",
    value: "n",
    default: "500",
    meaning: "Evaluate on the validation data every N steps (and at the end).",
  },
  {
    flag: "--eval-limit",
    value: "n",
    defaultDoc: "all",
    meaning: "Evaluate on at most N validation examples during training (the final report uses all).",
  },
  {
    flag: "--patience",
    value: "n",
    default: "0",
    meaning: "Stop after N evaluations without a better score (0: never).",
  },
  { flag: "--dropout", value: "p", default: "0.1", meaning: "Dropout rate." },
  THREADS_FLAG,
  MODELS_DIR_FLAG,
  {
    flag: "--model",
    value: "folder",
    defaultDoc: "the embedded USE-lite",
    env: "SKT_MODEL",
    meaning: "A Hugging Face model folder to train on (see README: Use your own model).",
  },
  { flag: "--log", value: "file", defaultDoc: "<out>.log.json", meaning: "JSON log of the run." },
  {
    flag: "--progress-every",
    value: "seconds",
    default: "10",
    meaning: "Without a terminal (or with --json): one progress line per this many seconds.",
  },
  { flag: "--quiet", meaning: "No progress output." },
  { flag: "--json", meaning: "Progress and the final report as JSON lines on stdout." },
];

export const EVAL_FLAGS: readonly FlagSpec[] = [
  { flag: "--adapter", value: "file", meaning: "Adapter file to evaluate (required)." },
  { flag: "--data", value: "file", meaning: "Labelled file to evaluate on (required)." },
  {
    flag: "--label-names",
    value: "a,b",
    defaultDoc: "the adapter's labels",
    meaning: "The adapter's names for the file's labels, in sorted label order.",
  },
  THREADS_FLAG,
  {
    flag: "--precision",
    value: "p",
    default: "fp32",
    meaning: "Backbone arithmetic to score with: fp32, int8 or fp16 (the server's SKT_PRECISION; on the CPU).",
  },
  MODELS_DIR_FLAG,
  {
    flag: "--model",
    value: "folder",
    defaultDoc: "the embedded USE-lite",
    env: "SKT_MODEL",
    meaning: "The Hugging Face model folder the adapter was trained on.",
  },
  { flag: "--json", meaning: "Print the report as JSON." },
];

/** Commander's parsed `train` flags (camelCase; strings until ./cli.ts checks them). */
export interface TrainFlags {
  task?: string;
  data?: string;
  dev?: string;
  holdout?: string;
  prompt?: string;
  out?: string;
  variant?: string;
  pooling?: boolean;
  method?: string;
  init?: string;
  epochs?: string;
  maxSteps?: string;
  batchSize?: string;
  lr?: string;
  weightDecay?: string;
  warmup?: string;
  maxLength?: string;
  seed?: string;
  labelNames?: string;
  trainLimit?: string;
  evalEvery?: string;
  evalLimit?: string;
  patience?: string;
  dropout?: string;
  threads?: string;
  modelsDir?: string;
  model?: string;
  log?: string;
  progressEvery?: string;
  quiet?: boolean;
  json?: boolean;
}

export interface EvalFlags {
  adapter?: string;
  data?: string;
  labelNames?: string;
  threads?: string;
  precision?: string;
  modelsDir?: string;
  model?: string;
  json?: boolean;
}

export function defineTrain(cmd: Command): Command {
  return addFlags(cmd, TRAIN_FLAGS)
    .summary("train an adapter on a labelled file")
    .description(
      "Train an SK-Tuning adapter. Without --dev or --holdout a stratified slice of --data is held out to pick the best step; " +
        "the final report (as `skt eval` prints it) is on that validation data.",
    )
    .addHelpText(
      "after",
      [
        "",
        "Examples:",
        '  $ skt train --task sst2 --data train.tsv --prompt "is this review positive or negative?" --label-names negative,positive --out build/sst2.safetensors',
        '  $ skt train --task spam --data train.jsonl --dev dev.jsonl --prompt "is this email spam?" --epochs 2 --json --out build/spam.safetensors > run.jsonl',
      ].join("\n"),
    );
}

export function defineEval(cmd: Command): Command {
  return addFlags(cmd, EVAL_FLAGS)
    .summary("score an adapter on a labelled file through the serving engine")
    .description(
      "Score an adapter file on a labelled file through the full serving engine (registry, batcher, worker).",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt eval --adapter build/sst2.safetensors --data dev.tsv --label-names negative,positive\n  $ skt eval --adapter build/spam.safetensors --data test.jsonl --json",
    );
}

export function addTrainCommands(program: Command): void {
  defineTrain(program.command("train")).action(async (o: TrainFlags) => (await import("./cli.js")).runTrain(o));
  defineEval(program.command("eval")).action(async (o: EvalFlags) => (await import("./cli.js")).runEval(o));
}
