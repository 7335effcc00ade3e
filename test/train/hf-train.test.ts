/**
 * Training on Hugging Face backbones: the reverse mode through the new operations (erf and tanh
 * GELU, RMSNorm, rotary embeddings, SiLU gating, grouped-query attention, causal masking, position
 * gathers) against float64 finite differences of the training graph's own loss, on tiny generated
 * checkpoints; a small training run on a tiny random decoder that lowers the loss and ends in an
 * adapter the server (started on the same folder) accepts and serves; and a pair training run on a
 * tiny BERT whose served adapter answers a pair exactly as the trainer's own forward does.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeAdapter } from "../../src/adapters/format.js";
import { softmax } from "../../src/adapters/prepared.js";
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../../src/backbone/backbone.js";
import { parameterCount } from "../../src/adapters/spec.js";
import { addGradients } from "../../src/backbone/graph/autodiff.js";
import { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { readFamilyWeights, readHfFolder } from "../../src/backbone/hf/folder.js";
import { hfDims } from "../../src/backbone/hf/build.js";
import { defaultConfig } from "../../src/config.js";
import { Engine } from "../../src/engine/engine.js";
import { loadDataset } from "../../src/train/datasets.js";
import { encodeExample } from "../../src/train/evaluate.js";
import { TrainingStep } from "../../src/train/step.js";
import { buildClassifierTrainingGraph, hfTrainable } from "../../src/train/train-graph.js";
import { trainAdapter, type TrainOptions } from "../../src/train/trainer.js";
import { writeDecoderCheckpoint, writeEncoderCheckpoint } from "../helpers/hf-checkpoint.js";
import { createSession, finiteDifferences, relativeError, tensor64, type Feeds } from "../helpers/finite-diff.js";
import { erf } from "../helpers/naive-hf.js";
import { seededRandom } from "../helpers/numeric.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "skt-hf-train-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const CHECKPOINTS = [
  [
    "bert (erf GELU)",
    (dir: string) => writeEncoderCheckpoint(dir, { modelType: "bert", hidden: 8, heads: 2, intermediate: 16 }, 21),
  ],
  [
    "distilbert (tanh GELU)",
    (dir: string) =>
      writeEncoderCheckpoint(
        dir,
        { modelType: "distilbert", act: "gelu_pytorch_tanh", hidden: 8, heads: 2, intermediate: 16 },
        22,
      ),
  ],
  [
    "qwen2 (RMSNorm, RoPE llama3, SiLU gate, GQA 4:2, causal, biases)",
    (dir: string) =>
      writeDecoderCheckpoint(
        dir,
        {
          modelType: "qwen2",
          hidden: 8,
          heads: 4,
          kvHeads: 2,
          intermediate: 16,
          ropeScaling: {
            rope_type: "llama3",
            factor: 4,
            low_freq_factor: 1,
            high_freq_factor: 4,
            original_max_position_embeddings: 32,
          },
        },
        23,
      ),
  ],
] as const;

describe.each(CHECKPOINTS)("reverse mode on %s", (name, make) => {
  it.each([false, true])("matches finite differences of the loss (prefix graph: %s)", async (prefix) => {
    const dir = path.join(root, `fd-${name.split(" ")[0]}`);
    await make(dir);
    const folder = await readHfFolder(dir);
    const dims = hfDims(folder.config);
    const C = 2;
    const graph = buildClassifierTrainingGraph(hfTrainable(readFamilyWeights(folder)), {
      prefix,
      problemType: "single_label_classification",
      outputs: C,
      float: "float64",
      embedsGrad: true,
    });
    const session = await createSession(graph);
    const rand = seededRandom(prefix ? 31 : 32);
    const r = (n: number, scale = 1) => Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
    const B = 2,
      T = 5,
      P = 3,
      D = dims.embedDim,
      H = dims.hiddenDim;
    const mask = BigInt64Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0].map(BigInt)); // the second row is padded
    const feeds: Feeds = {
      inputs_embeds: tensor64(r(B * T * D), [B, T, D]),
      attention_mask: new ort.Tensor("int64", mask, [B, T]),
      head_weight: tensor64(r(C * H), [C, H]),
      head_bias: tensor64(r(C), [C]),
      targets: tensor64([1, 0, 0, 1], [B, C]),
      pooled_dropout: tensor64(new Array(B * H).fill(1), [B, H]),
    };
    if (session.inputNames.includes("token_type_ids"))
      feeds.token_type_ids = new ort.Tensor("int64", BigInt64Array.from([0, 0, 0, 1, 1, 0, 0, 1, 0, 0].map(BigInt)), [
        B,
        T,
      ]);
    if (prefix) {
      dims.layers.forEach((l, n) => {
        feeds[`prefix_key_${n}`] = tensor64(r(B * l.heads * P * l.headDim), [B, l.heads, P, l.headDim]);
        feeds[`prefix_value_${n}`] = tensor64(r(B * l.heads * P * l.headDim), [B, l.heads, P, l.headDim]);
      });
      feeds.prefix_mask = new ort.Tensor("int64", BigInt64Array.from([1, 1, 1, 1, 1, 0].map(BigInt)), [B, P]); // rows with prefixes of 3 and 2
    }
    const wrt = ["inputs_embeds", "head_weight", ...(prefix ? ["prefix_key_0", "prefix_value_1"] : [])];
    const out = await session.run(
      feeds,
      wrt.map((w) => `grad_${w}`),
    );
    for (const w of wrt) {
      const analytic = out[`grad_${w}`].data as Float64Array;
      const indices = Array.from({ length: 12 }, (_, k) => Math.floor((k * analytic.length) / 12));
      const numeric = await finiteDifferences(session, feeds, [{ output: "loss", weights: [1] }], w, indices);
      expect(
        relativeError(
          indices.map((i) => analytic[i]),
          numeric,
        ),
      ).toBeLessThan(1e-5);
    }
  });
});

describe("the reverse-mode rules of Erf and Sigmoid (float32: onnxruntime has no float64 Erf)", () => {
  it("match central differences of float64 references", async () => {
    const xs = Array.from({ length: 41 }, (_, i) => -4 + i * 0.2 + 0.013);
    const g = new Graph("float32");
    const x = g.input("x", "float32", [xs.length]);
    const dy = g.input("dy", "float32", [xs.length]);
    const e = g.erf(x);
    const dErf = addGradients(g, [{ of: e, grad: dy }], [x]).get("x")!;
    g.output("d_erf", dErf);
    const g2 = new Graph("float32");
    const x2 = g2.input("x", "float32", [xs.length]);
    const dy2 = g2.input("dy", "float32", [xs.length]);
    g2.output("d_sigmoid", addGradients(g2, [{ of: g2.sigmoid(x2), grad: dy2 }], [x2]).get("x")!);
    const feeds = {
      x: new ort.Tensor("float32", Float32Array.from(xs), [xs.length]),
      dy: new ort.Tensor("float32", Float32Array.from(xs.map((_, i) => 1 + i / 40)), [xs.length]),
    };
    const run = async (graph: Graph, name: string) =>
      (await (await ort.InferenceSession.create(toOnnxBytes(graph))).run(feeds, [name]))[name].data as Float32Array;
    const [gotErf, gotSigmoid] = [await run(g, "d_erf"), await run(g2, "d_sigmoid")];
    const h = 1e-5;
    const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));
    xs.forEach((v, i) => {
      const w = 1 + i / 40;
      expect(gotErf[i]).toBeCloseTo((w * (erf(v + h) - erf(v - h))) / (2 * h), 5);
      expect(gotSigmoid[i]).toBeCloseTo((w * (sigmoid(v + h) - sigmoid(v - h))) / (2 * h), 5);
    });
  });
});

/** The settings both small training runs share: a few epochs, no dropout, no evaluation. */
const SMALL_RUN = {
  method: "sk",
  init: "authors",
  epochs: 4,
  batchSize: 16,
  lr: 1e-2,
  weightDecay: 0.01,
  warmup: 0.1,
  maxLength: 32,
  evalEvery: 1000,
  patience: 0,
  dropout: 0,
  threads: 1,
} as const;

/** Mean loss of the first and of the last four steps. */
function lossEnds(history: { loss: number }[]): { first: number; last: number } {
  const mean = (h: { loss: number }[]) => h.reduce((s, x) => s + x.loss, 0) / h.length;
  return { first: mean(history.slice(0, 4)), last: mean(history.slice(-4)) };
}

describe("training on a tiny random decoder", () => {
  it("lowers the loss and produces an adapter the server serves", async () => {
    const model = path.join(root, "tiny-llama");
    await writeDecoderCheckpoint(model, { modelType: "llama", hidden: 16, heads: 4, kvHeads: 2 }, 41);
    const rand = seededRandom(3);
    const words = ["the", "movie", "was", "a", "story", "about", "people", "and", "day"];
    const lines = ["sentence\tlabel"];
    for (let i = 0; i < 64; i++) {
      const w = Array.from({ length: 5 }, () => words[Math.floor(rand() * words.length)]);
      w.splice(2, 0, i % 2 ? "wonderful" : "terrible");
      lines.push(`${w.join(" ")}\t${i % 2}`);
    }
    await writeFile(path.join(root, "toy.tsv"), lines.join("\n") + "\n");
    const train = await loadDataset(path.join(root, "toy.tsv"));
    const modelsDir = path.join(root, "models-train");
    const options: TrainOptions = {
      task: "toy",
      train,
      promptText: "good or bad?",
      variant: "prefix",
      pooling: true,
      ...SMALL_RUN,
      seed: 5,
      modelsDir,
      model,
    };
    const result = await trainAdapter(options);
    const { first, last } = lossEnds(result.history);
    expect(last).toBeLessThan(first);

    // A form over the parameter cap is refused before any work, naming the forms that fit.
    const dims = hfDims((await readHfFolder(model)).config);
    const noPooling = parameterCount({ ...result.file!.metadata, pooling: false }, dims);
    const over = trainAdapter({ ...options, pooling: false, maxParameters: noPooling - 1 });
    await expect(over).rejects.toMatchObject({
      code: "adapter_too_large",
      message: expect.stringContaining(`${noPooling.toLocaleString("en")} parameters`),
    });

    // Left to choose (no --variant/--no-pooling), the trainer takes the first form that fits the cap.
    const count = (variant: "prompt" | "prefix", pooling: boolean) =>
      parameterCount({ ...result.file!.metadata, variant, pooling }, dims);
    const cap = count("prefix", true) - 1;
    const chosen = await trainAdapter({ ...options, autoForm: true, autoInit: true, maxParameters: cap, maxSteps: 2 });
    const expected = (
      [
        ["prompt", true],
        ["prompt", false],
        ["prefix", false],
      ] as const
    ).find(([v, p]) => count(v, p) <= cap)!;
    expect([chosen.file!.metadata.variant, chosen.file!.metadata.pooling]).toEqual(expected);
    expect(chosen.parameters).toBeLessThanOrEqual(cap);

    const engine = await Engine.create({
      ...defaultConfig({ modelsDir, adaptersDir: path.join(root, "adapters-train"), model }),
    });
    try {
      expect(result.file!.metadata.backbone).toBe("tiny-llama");
      const info = await engine.upload("toy", encodeAdapter(result.file!, engine.assets.dims));
      expect(info.variant).toBe("prefix");
      const answer = await engine.classify({
        task: "toy",
        texts: ["the movie was wonderful", "the movie was terrible"],
      });
      expect(answer.predictions.map((p) => p.label)).toHaveLength(2);
    } finally {
      await engine.close();
    }
  });
});

describe("training on text pairs with a tiny BERT", () => {
  it("feeds the pair's token types: the loss falls and the served adapter answers as the trainer's forward", async () => {
    const model = path.join(root, "tiny-bert-pairs");
    await writeEncoderCheckpoint(model, { modelType: "bert", hidden: 16, heads: 2, intermediate: 32 }, 51);
    const rand = seededRandom(9);
    const words = ["the", "movie", "was", "a", "story", "about", "people", "and", "day"];
    const pick = () => Array.from({ length: 3 }, () => words[Math.floor(rand() * words.length)]).join(" ");
    const lines = ["sentence1\tsentence2\tlabel"];
    // The label says which segment holds "wonderful": only token types and positions tell them apart.
    for (let i = 0; i < 64; i++)
      lines.push(i % 2 ? `${pick()} wonderful\t${pick()}\t1` : `${pick()}\t${pick()} wonderful\t0`);
    await writeFile(path.join(root, "pairs.tsv"), lines.join("\n") + "\n");
    const train = await loadDataset(path.join(root, "pairs.tsv"));
    expect(train.hasPairs).toBe(true);
    const modelsDir = path.join(root, "models-pairs");
    const result = await trainAdapter({
      task: "pairs",
      train,
      promptText: "which side?",
      variant: "prompt",
      pooling: true,
      ...SMALL_RUN,
      seed: 7,
      modelsDir,
      model,
    });
    const { first, last } = lossEnds(result.history);
    expect(last).toBeLessThan(first);
    const file = result.file!;
    expect(file.metadata.textPair).toBe(true);

    // The trainer's own forward (its training graph, no dropout) on one pair, with its token types.
    const assets = await loadBackboneAssets(modelsDir, undefined, model);
    const runner = await BackboneRunner.open(assets.dir, { threads: 1 });
    const promptIds = assets.tokenizer.ids(file.metadata.promptText);
    const hp = (
      await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, [promptIds], ["last_hidden_state"]))
    ).last_hidden_state!;
    await runner.release();
    const pair = { text: "the movie was", pair: "a wonderful story" };
    const encoded = encodeExample(assets.tokenizer, pair, file.metadata.maxLength - file.metadata.promptLength);
    expect(encoded.typeIds).toContain(1);
    const step = await TrainingStep.create(
      hfTrainable(readFamilyWeights(await readHfFolder(model))),
      assets.dims,
      {
        variant: "prompt",
        pooling: true,
        promptLength: promptIds.length,
        problemType: "single_label_classification",
        outputs: 2,
      },
      { threads: 1 },
    );
    const forward = async (typeIds?: number[]) =>
      softmax(
        (
          await step.run({
            tensors: file.tensors,
            hp,
            rows: [{ ids: encoded.ids, typeIds, target: 0 }],
            zDropout: null,
            pooledDropout: new Float32Array(assets.dims.hiddenDim).fill(1),
          })
        ).logits,
      );
    const trainerProbs = await forward(encoded.typeIds);
    // Type ids matter on this checkpoint: all-zero types give other answers (so the comparison below can fail).
    const zeroTypes = await forward(undefined);
    expect(Math.abs(zeroTypes[0] - trainerProbs[0])).toBeGreaterThan(1e-4);
    await step.release();

    const engine = await Engine.create({
      ...defaultConfig({ modelsDir, adaptersDir: path.join(root, "adapters-pairs"), model }),
    });
    try {
      await engine.upload("pairs", encodeAdapter(file, engine.assets.dims));
      const answer = await engine.classify({ task: "pairs", texts: [pair.text], pairs: [pair.pair] });
      const scores = answer.predictions[0].scores!;
      file.metadata.labels.forEach((label, c) => expect(scores[label]).toBeCloseTo(trainerProbs[c], 5));
    } finally {
      await engine.close();
    }
  });
});
