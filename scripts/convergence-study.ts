/**
 * npm run study — the paper's central claim, measured on this backbone: does SK-Tuning converge
 * faster than prompt tuning from arbitrary virtual tokens? Same data slice, same step budget, same
 * seeds, same batch size and schedule for every method; dev accuracy every --eval-every steps.
 * Writes docs/convergence.json, docs/convergence.md (table) and docs/convergence.svg (vega-lite).
 *
 *   npm run study -- [--steps 1500] [--train-limit 20000] [--seeds 1] [--eval-every 100] [--lr 3e-3]
 */
import { readFile, writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import { loadDataset } from "../src/train/datasets.js";
import type { InitScheme, TrainMethod } from "../src/train/init.js";
import { trainAdapter } from "../src/train/trainer.js";
import { SST2_DIR } from "./lib/paths.js";

const { values: a } = parseArgs({
  options: {
    steps: { type: "string", default: "1500" },
    "train-limit": { type: "string", default: "20000" },
    seeds: { type: "string", default: "1" },
    "eval-every": { type: "string", default: "100" },
    lr: { type: "string", default: "3e-3" },
    "batch-size": { type: "string", default: "32" },
    out: { type: "string", default: "docs/convergence" },
    threads: { type: "string", default: "2" },
    /** Re-draw table and plot from an earlier run's JSON instead of training. */
    replot: { type: "boolean", default: false },
    data: { type: "string", default: SST2_DIR },
  },
});

interface Method {
  name: string;
  variant: "prompt" | "prefix";
  method: TrainMethod;
  init: InitScheme;
}

const METHODS: Method[] = [
  { name: "SK-Tuning prefix (pooling)", variant: "prefix", method: "sk", init: "authors" },
  { name: "SK-Tuning prompt (pooling)", variant: "prompt", method: "sk", init: "token-scale" },
  { name: "Prompt tuning, init E(prompt)", variant: "prompt", method: "prompt-tuning", init: "embedding" },
  { name: "Prompt tuning, random init", variant: "prompt", method: "prompt-tuning", init: "random" },
  { name: "Linear probe (frozen pooled state)", variant: "prompt", method: "probe", init: "authors" },
];
const PROMPT = "classify the text as positive or negative, text:";

const train = await loadDataset(`${a.data}/train.tsv`);
train.examples = train.examples.slice(0, Number(a["train-limit"]));
const dev = await loadDataset(`${a.data}/dev.tsv`, { labels: train.labels });
const seeds = Array.from({ length: Number(a.seeds) }, (_, i) => i + 1);

interface Curve {
  method: string;
  seed: number;
  parameters: number;
  points: { step: number; accuracy: number }[];
  examplesPerSec: number;
}
const curves: Curve[] = [];
if (a.replot) curves.push(...(JSON.parse(await readFile(`${a.out}.json`, "utf8")) as { curves: Curve[] }).curves);
for (const m of a.replot ? [] : METHODS) {
  for (const seed of seeds) {
    const t0 = Date.now();
    const r = await trainAdapter({
      task: "sst2",
      train,
      dev,
      labelNames: ["negative", "positive"],
      promptText: PROMPT,
      variant: m.variant,
      pooling: true,
      method: m.method,
      init: m.init,
      epochs: 1000,
      maxSteps: Number(a.steps),
      batchSize: Number(a["batch-size"]),
      lr: Number(a.lr),
      weightDecay: 0.01,
      warmup: 0.06,
      maxLength: 128,
      seed,
      evalEvery: Number(a["eval-every"]),
      patience: 0,
      dropout: 0.1,
      threads: Number(a.threads),
      modelsDir: "models",
    });
    curves.push({
      method: m.name,
      seed,
      parameters: r.parameters,
      examplesPerSec: r.examplesPerSec,
      points: r.evals.map((e) => ({ step: e.step, accuracy: e.report.accuracy! })),
    });
    console.log(
      `${m.name} seed ${seed}: best ${(100 * r.best.report!.accuracy!).toFixed(2)}% at step ${r.best.step} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
    );
  }
}

// Mean over seeds per method and step.
const steps = [...new Set(curves.flatMap((c) => c.points.map((p) => p.step)))].sort((x, y) => x - y);
const mean = (method: string, step: number) => {
  const xs = curves
    .filter((c) => c.method === method)
    .map((c) => c.points.find((p) => p.step === step)?.accuracy)
    .filter((x): x is number => x !== undefined);
  return xs.reduce((s, x) => s + x, 0) / xs.length;
};
const firstReaching = (method: string, target: number) => steps.find((s) => mean(method, s) >= target) ?? null;

const header = `| method | trainable params | ${steps
  .filter((_, i) => i % Math.ceil(steps.length / 8) === 0 || i === steps.length - 1)
  .map((s) => `step ${s}`)
  .join(" | ")} | best | steps to 78% |`;
const shownSteps = steps.filter((_, i) => i % Math.ceil(steps.length / 8) === 0 || i === steps.length - 1);
const rows = METHODS.map((m) => {
  const c = curves.find((x) => x.method === m.name)!;
  const best = Math.max(...steps.map((s) => mean(m.name, s)));
  return `| ${m.name} | ${c.parameters.toLocaleString("en-US")} | ${shownSteps.map((s) => (100 * mean(m.name, s)).toFixed(1)).join(" | ")} | ${(100 * best).toFixed(1)} | ${firstReaching(m.name, 0.78) ?? "never"} |`;
});
const table = [header, `|---|---:|${shownSteps.map(() => "---:").join("|")}|---:|---:|`, ...rows].join("\n");
const setup = `SST-2 dev accuracy (%) against optimizer steps; first ${train.examples.length.toLocaleString("en-US")} sentences of train.tsv, batch ${a["batch-size"]}, AdamW lr ${a.lr} (6% warmup, linear decay over ${a.steps} steps), weight decay 0.01, dropout 0.1, seeds ${seeds.join(", ")} (mean), prompt "${PROMPT}".`;
console.log(`\n${setup}\n\n${table}`);

const spec: vegaLite.TopLevelSpec = {
  $schema: "https://vega.github.io/schema/vega-lite/v6.json",
  width: 560,
  height: 320,
  background: "white",
  title: "SST-2 dev accuracy vs training steps (USE-lite backbone)",
  data: {
    values: METHODS.flatMap((m) => steps.map((s) => ({ method: m.name, step: s, accuracy: mean(m.name, s) * 100 }))),
  },
  mark: { type: "line", point: true },
  encoding: {
    x: { field: "step", type: "quantitative", title: "optimizer steps (batch 32)" },
    y: { field: "accuracy", type: "quantitative", title: "dev accuracy (%)", scale: { zero: false } },
    color: { field: "method", type: "nominal", legend: { orient: "bottom", columns: 2, labelLimit: 0 } },
  },
};
const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: "none" });
await writeFile(`${a.out}.svg`, await view.toSVG());
if (!a.replot) await writeFile(`${a.out}.json`, JSON.stringify({ setup, args: a, curves }, null, 1) + "\n");
if (!a.replot)
  await writeFile(
    `${a.out}.md`,
    `${setup}\n\n${table}\n\nCommand: \`npm run study -- ${process.argv.slice(2).join(" ")}\`\n`,
  );
console.log(`wrote ${a.out}.svg, .json, .md`);
