/**
 * Training on Hugging Face backbones: the reverse mode through the new operations (erf and tanh
 * GELU, RMSNorm, rotary embeddings, SiLU gating, grouped-query attention, causal masking, position
 * gathers) against float64 finite differences of the training graph's own loss, on tiny generated
 * checkpoints; and a small training run on a tiny random decoder that lowers the loss and ends in an
 * adapter the server (started on the same folder) accepts and serves.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeAdapter } from "../../src/adapters/format.js";
import { parameterCount } from "../../src/adapters/spec.js";
import { addGradients } from "../../src/backbone/graph/autodiff.js";
import { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { readFamilyWeights, readHfFolder } from "../../src/backbone/hf/folder.js";
import { hfDims } from "../../src/backbone/hf/build.js";
import { defaultConfig } from "../../src/config.js";
import { Engine } from "../../src/engine/engine.js";
import { loadDataset } from "../../src/train/datasets.js";
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
      method: "sk",
      init: "authors",
      epochs: 4,
      batchSize: 16,
      lr: 1e-2,
      weightDecay: 0.01,
      warmup: 0.1,
      maxLength: 32,
      seed: 5,
      evalEvery: 1000,
      patience: 0,
      dropout: 0,
      threads: 1,
      modelsDir,
      model,
    };
    const result = await trainAdapter(options);
    const first = result.history.slice(0, 4).reduce((s, h) => s + h.loss, 0) / 4;
    const last = result.history.slice(-4).reduce((s, h) => s + h.loss, 0) / 4;
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
