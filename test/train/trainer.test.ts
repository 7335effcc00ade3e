import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { decodeAdapter, encodeAdapter } from "../../src/adapters/format.js";
import { evaluateThroughEngine, trainCommand } from "../../src/train/cli.js";
import { loadDataset } from "../../src/train/datasets.js";
import { trainAdapter, type TrainOptions } from "../../src/train/trainer.js";
import { seededRandom } from "../helpers/numeric.js";
import { toyTsv as synthetic } from "../helpers/toy-data.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

let dir: string;
let assets: BackboneAssets;

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  dir = await mkdtemp(path.join(os.tmpdir(), "skt-train-"));
  await writeFile(path.join(dir, "train.tsv"), synthetic(192, 1));
  await writeFile(path.join(dir, "dev.tsv"), synthetic(64, 2));
});
afterAll(async () => rm(dir, { recursive: true, force: true }));

async function options(over: Partial<TrainOptions> = {}): Promise<TrainOptions> {
  const train = await loadDataset(path.join(dir, "train.tsv"));
  return {
    task: "toy",
    train,
    dev: await loadDataset(path.join(dir, "dev.tsv"), { labels: train.labels }),
    labelNames: ["bad", "good"],
    promptText: "is it good or bad ?",
    variant: "prefix",
    pooling: true,
    method: "sk",
    init: "authors",
    epochs: 3,
    batchSize: 16,
    lr: 1e-2,
    weightDecay: 0.01,
    warmup: 0.1,
    maxLength: 64,
    seed: 7,
    evalEvery: 12,
    patience: 0,
    dropout: 0.1,
    threads: 2,
    modelsDir: MODELS_DIR,
    ...over,
  };
}

describe("trainer", () => {
  // The non-pooling form multiplies h_p (rows of norm ≈ 15) by a 512-wide weight, so the same
  // Adam step moves its soft prompt far more: it needs a smaller learning rate and more steps.
  it.each([
    { variant: "prefix", pooling: true, lr: 1e-2, epochs: 3 },
    { variant: "prompt", pooling: true, lr: 1e-2, epochs: 3 },
    { variant: "prompt", pooling: false, lr: 5e-4, epochs: 6 },
  ] as const)(
    "learns a separable toy task to ≥ 95 percent dev accuracy ($variant, pooling $pooling)",
    async ({ variant, pooling, lr, epochs }) => {
      const o = await options({ variant, pooling, lr, epochs, init: variant === "prompt" ? "token-scale" : "authors" });
      const r = await trainAdapter(o);
      expect(r.best.report!.accuracy).toBeGreaterThanOrEqual(0.95);
      expect(r.history.length).toBe(12 * epochs);
      expect(r.history.at(-1)!.loss).toBeLessThan(r.history[0].loss);
      // The file is a servable adapter carrying its own training summary.
      const file = decodeAdapter(encodeAdapter(r.file!), { dims: assets.dims, fingerprint: assets.fingerprint });
      expect(file.metadata.labels).toEqual(["bad", "good"]);
      expect(file.metadata.training).toMatchObject({
        method: "sk",
        steps: 12 * epochs,
        seed: 7,
        best_step: r.best.step,
      });
      // Each label's share of the training examples, counted here (the drift gauge's reference);
      // the file's names are the dataset's labels in order, renamed (e.g. "0" → "bad").
      const share = (i: number) =>
        o.train.examples.filter((e) => e.label === o.train.labels[i]).length / o.train.examples.length;
      expect(file.metadata.training!.label_distribution).toEqual({ bad: share(0), good: share(1) });
      expect(share(0)).toBeGreaterThan(0);
    },
  );

  it("gives byte-identical adapters for the same seed, different ones for another seed", async () => {
    const o = await options({ epochs: 1, evalEvery: 1000 });
    const a = encodeAdapter((await trainAdapter(o)).file!);
    const b = encodeAdapter((await trainAdapter(await options({ epochs: 1, evalEvery: 1000 }))).file!);
    const c = encodeAdapter((await trainAdapter(await options({ epochs: 1, evalEvery: 1000, seed: 8 }))).file!);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).toBe(0);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(c))).not.toBe(0);
  });

  it("prompt tuning trains only the free soft prompt and the head", async () => {
    const o = await options({
      variant: "prompt",
      method: "prompt-tuning",
      init: "embedding",
      epochs: 1,
      evalEvery: 1000,
    });
    const r = await trainAdapter(o);
    const t = r.file!.tensors;
    for (const frozen of ["pool.weight", "pool.bias", "proj.weight"])
      expect(t[frozen].data.every((v) => v === 0)).toBe(true);
    expect(r.parameters).toBe(t["proj.bias"].data.length + t["head.weight"].data.length + t["head.bias"].data.length);
  });

  it("the train command writes an adapter and a log; eval through the engine reproduces its dev accuracy", async () => {
    const out = path.join(dir, "toy.safetensors");
    await trainCommand([
      "--task",
      "toy",
      "--data",
      path.join(dir, "train.tsv"),
      "--dev",
      path.join(dir, "dev.tsv"),
      "--prompt",
      "is it good or bad ?",
      "--variant",
      "prefix",
      "--epochs",
      "2",
      "--batch-size",
      "16",
      "--lr",
      "1e-2",
      "--eval-every",
      "6",
      "--seed",
      "3",
      "--label-names",
      "bad,good",
      "--out",
      out,
      "--models-dir",
      MODELS_DIR,
      "--quiet",
    ]);
    const bytes = new Uint8Array(await readFile(out));
    const log = JSON.parse(await readFile(`${out}.log.json`, "utf8"));
    const reported = log.result.best.report.accuracy as number;
    expect(
      decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint }).metadata.training,
    ).toMatchObject({ best_step: log.result.best.step });
    const dev = await loadDataset(path.join(dir, "dev.tsv"));
    const viaEngine = await evaluateThroughEngine(bytes, "toy", dev, {
      threads: 2,
      modelsDir: MODELS_DIR,
      datasetLabels: ["0", "1"],
    });
    expect(viaEngine.examples).toBe(64);
    expect(viaEngine.accuracy).toBe(reported);
  });

  it("trains a multi-label adapter from JSONL label lists; eval through the engine reproduces its dev micro-F1", async () => {
    // Two independent cues: "wonderful" → praise, "explosions" → action; a text may have both or neither.
    const multi = (count: number, seed: number) => {
      const rand = seededRandom(seed);
      const filler = ["the", "movie", "was", "a", "story", "about", "people", "and", "their", "day", "in", "town"];
      return (
        Array.from({ length: count }, (_, i) => {
          const words = Array.from(
            { length: 4 + Math.floor(rand() * 5) },
            () => filler[Math.floor(rand() * filler.length)],
          );
          const labels: string[] = [];
          if (i % 2) {
            labels.push("praise");
            words.splice(Math.floor(rand() * words.length), 0, "wonderful");
          }
          if (i % 3 === 0) {
            labels.push("action");
            words.splice(Math.floor(rand() * words.length), 0, "explosions");
          }
          return JSON.stringify({ text: words.join(" "), labels });
        }).join("\n") + "\n"
      );
    };
    await writeFile(path.join(dir, "multi-train.jsonl"), multi(240, 11));
    await writeFile(path.join(dir, "multi-dev.jsonl"), multi(60, 12));
    const out = path.join(dir, "multi.safetensors");
    await trainCommand([
      "--task",
      "tags",
      "--data",
      path.join(dir, "multi-train.jsonl"),
      "--dev",
      path.join(dir, "multi-dev.jsonl"),
      "--prompt",
      "which tags apply ?",
      "--variant",
      "prefix",
      "--epochs",
      "4",
      "--batch-size",
      "16",
      "--lr",
      "1e-2",
      "--eval-every",
      "15",
      "--seed",
      "5",
      "--out",
      out,
      "--models-dir",
      MODELS_DIR,
      "--quiet",
    ]);
    const bytes = new Uint8Array(await readFile(out));
    const meta = decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint }).metadata;
    expect(meta.problemType).toBe("multi_label_classification");
    expect(meta.labels).toEqual(["action", "praise"]);
    const log = JSON.parse(await readFile(`${out}.log.json`, "utf8"));
    const reported = log.result.best.report;
    expect(reported.microF1).toBeGreaterThanOrEqual(0.9);
    const dev = await loadDataset(path.join(dir, "multi-dev.jsonl"));
    const viaEngine = await evaluateThroughEngine(bytes, "tags", dev, {
      threads: 2,
      modelsDir: MODELS_DIR,
      datasetLabels: meta.labels,
    });
    expect(viaEngine.examples).toBe(60);
    expect(viaEngine.microF1).toBe(reported.microF1);
    expect(viaEngine.accuracy).toBe(reported.accuracy);
  });

  it("--holdout validates on the training file's last examples and never trains on them", async () => {
    const out = path.join(dir, "holdout.safetensors");
    await trainCommand([
      "--task",
      "toy",
      "--data",
      path.join(dir, "train.tsv"),
      "--holdout",
      "32",
      "--prompt",
      "is it good or bad ?",
      "--epochs",
      "1",
      "--batch-size",
      "16",
      "--eval-every",
      "5",
      "--out",
      out,
      "--models-dir",
      MODELS_DIR,
      "--quiet",
    ]);
    const log = JSON.parse(await readFile(`${out}.log.json`, "utf8"));
    expect(log.options.trainExamples).toBe(160);
    expect(log.result.evals[0].examples).toBe(32);
    expect(log.options.dev).toMatch(/last 32 examples/);
  });

  it("without --dev or --holdout holds out a stratified 10 % and reports on it at the end (--json lines)", async () => {
    const out = path.join(dir, "default-holdout.safetensors");
    const printed: string[] = [];
    const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => void printed.push(String(line)));
    try {
      await trainCommand([
        "--task",
        "toy",
        "--data",
        path.join(dir, "train.tsv"),
        "--prompt",
        "is it good or bad ?",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "1e-2",
        "--eval-every",
        "4",
        "--out",
        out,
        "--models-dir",
        MODELS_DIR,
        "--json",
        "--progress-every",
        "0",
      ]);
    } finally {
      spy.mockRestore();
    }
    const log = JSON.parse(await readFile(`${out}.log.json`, "utf8"));
    // 192 examples, 96 per class: 10 % is 19 held out (9.5 per class, rounded by largest remainder to 10 + 9).
    expect(log.options.dev).toBe(`stratified 19 examples of ${path.join(dir, "train.tsv")} (seed 1)`);
    expect(log.options.trainExamples).toBe(173);
    expect(log.result.evals.map((e: { examples: number }) => e.examples)).toEqual([19, 19, 19]);
    // Every stdout line is JSON: progress for each step, the evaluations, then the final report.
    const events = printed.map(
      (l) => JSON.parse(l) as { event: string; step?: number; report?: { examples: number; accuracy: number } },
    );
    expect(events.filter((e) => e.event === "progress").map((e) => e.step)).toEqual(
      Array.from({ length: 11 }, (_, i) => i + 1),
    );
    expect(events.filter((e) => e.event === "eval").map((e) => e.step)).toEqual([4, 8, 11]);
    const done = events.at(-1)!;
    expect(done).toMatchObject({ event: "done", out, best_step: log.result.best.step, validation: log.options.dev });
    // The final report (the written adapter through the serving engine) agrees with the trainer's own evaluation of the best step.
    expect(done.report).toEqual(log.finalReport);
    expect(log.finalReport.examples).toBe(19);
    expect(log.finalReport.accuracy).toBe(log.result.best.report.accuracy);
  });

  it("--holdout 0 trains on the whole file without validation and keeps the last step", async () => {
    const out = path.join(dir, "no-validation.safetensors");
    await trainCommand([
      "--task",
      "toy",
      "--data",
      path.join(dir, "train.tsv"),
      "--holdout",
      "0",
      "--prompt",
      "is it good or bad ?",
      "--max-steps",
      "2",
      "--batch-size",
      "16",
      "--out",
      out,
      "--models-dir",
      MODELS_DIR,
      "--quiet",
    ]);
    const log = JSON.parse(await readFile(`${out}.log.json`, "utf8"));
    expect(log.options).toMatchObject({ dev: null, trainExamples: 192 });
    expect(log.result.evals).toEqual([]);
    expect(log.finalReport).toBeNull();
  });

  it("refuses data and settings that cannot train, before the first step", async () => {
    await writeFile(
      path.join(dir, "one-class.tsv"),
      "sentence\tlabel\n" + Array.from({ length: 40 }, (_, i) => `text number ${i}\t1`).join("\n") + "\n",
    );
    const base = [
      "--task",
      "toy",
      "--prompt",
      "is it good or bad ?",
      "--out",
      path.join(dir, "never.safetensors"),
      "--models-dir",
      MODELS_DIR,
      "--quiet",
    ];
    await expect(trainCommand([...base, "--data", path.join(dir, "one-class.tsv")])).rejects.toMatchObject({
      code: "one_class",
      message: expect.stringMatching(
        /every training example has the label "1"; a classifier needs examples of at least two classes/,
      ),
    });
    await expect(
      trainCommand([...base, "--data", path.join(dir, "train.tsv"), "--variant", "prompt", "--max-length", "4"]),
    ).rejects.toMatchObject({
      code: "max_length_too_small",
      message: expect.stringMatching(/--max-length 4 leaves no room for text after the \d+-token prompt/),
    });
    await expect(
      trainCommand([...base, "--data", path.join(dir, "train.tsv"), "--max-length", "500"]),
    ).rejects.toMatchObject({ code: "max_length_too_large" });
    await expect(
      trainCommand([...base, "--data", path.join(dir, "train.tsv"), "--prompt", "word ".repeat(80)]),
    ).rejects.toMatchObject({ code: "prompt_too_long" });
    await expect(readFile(path.join(dir, "never.safetensors"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("refuses bad arguments with a clear message", async () => {
    await expect(
      trainCommand([
        "--task",
        "toy",
        "--data",
        path.join(dir, "train.tsv"),
        "--prompt",
        "x",
        "--out",
        path.join(dir, "x"),
        "--variant",
        "lora",
        "--models-dir",
        MODELS_DIR,
      ]),
    ).rejects.toThrow(/--variant must be prompt or prefix/);
    await expect(trainCommand(["--task", "toy"])).rejects.toThrow(/needs --task, --data, --prompt and --out/);
    await expect(
      trainCommand([
        "--task",
        "toy",
        "--data",
        path.join(dir, "missing.tsv"),
        "--prompt",
        "x",
        "--out",
        path.join(dir, "x"),
        "--models-dir",
        MODELS_DIR,
      ]),
    ).rejects.toThrow(/missing\.tsv/);
  });
});
