/**
 * The Hugging Face families on generated checkpoints that cover what the shared fixtures do not
 * (RoBERTa's position offset, half precision, prefixed/legacy/sharded layouts, grouped-query
 * ratios, RoPE scaling, attention biases, tied embeddings, DistilBERT, tanh GELU), each checked
 * against the independent naive float64 implementation; and every refusal, by name.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFamilyWeights, readHfFolder } from "../../src/backbone/hf/folder.js";
import {
  writeDecoderCheckpoint,
  writeEncoderCheckpoint,
  type DecoderSpec,
  type EncoderSpec,
} from "../helpers/hf-checkpoint.js";
import { loadHf } from "../helpers/hf-graph.js";
import { naiveEmbedding, type NaiveDecoder, type NaiveEncoder } from "../helpers/naive-hf.js";
import { cosine, maxAbsDiff, seededRandom } from "../helpers/numeric.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "skt-hf-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Rows of random ids of lengths 1, 6 and 37 (padded together in one batch). */
function idRows(vocab: number, seed: number): number[][] {
  const r = seededRandom(seed);
  return [1, 6, 37].map((n) => Array.from({ length: n }, () => Math.floor(r() * vocab)));
}

/** The plain graph and the fused serving graph both match the oracle. */
async function expectMatchesNaive(dir: string, naive: NaiveEncoder | NaiveDecoder, vocab: number): Promise<void> {
  const rows = idRows(vocab, 7);
  for (const fused of [false, true]) {
    const got = await (await loadHf(dir, { fused })).pooled(rows);
    rows.forEach((ids, i) => {
      const want = naiveEmbedding(naive, ids);
      expect(cosine(got[i], want)).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbsDiff(got[i], want)).toBeLessThanOrEqual(1e-4);
    });
  }
}

const encoderCases: [string, EncoderSpec][] = [
  [
    "roberta: positions from pad_token_id + 1, roberta. prefix, extra heads ignored",
    {
      modelType: "roberta",
      padTokenId: 1,
      prefix: "roberta.",
      extraTensors: { "lm_head.dense.weight": [16, 16], "roberta.pooler.dense.weight": [16, 16] },
    },
  ],
  [
    "xlm-roberta: F16 weights, legacy gamma/beta names, pad_token_id 3",
    { modelType: "xlm-roberta", padTokenId: 3, dtype: "F16", legacyNames: true },
  ],
  [
    "bert: BF16, bert. prefix, 3 shards, tanh GELU (gelu_new), cls head ignored",
    {
      modelType: "bert",
      dtype: "BF16",
      prefix: "bert.",
      shards: 3,
      act: "gelu_new",
      eps: 1e-12,
      extraTensors: { "cls.predictions.bias": [900] },
    },
  ],
  [
    "distilbert: its own names, distilbert. prefix, gelu_pytorch_tanh, no token types",
    {
      modelType: "distilbert",
      prefix: "distilbert.",
      act: "gelu_pytorch_tanh",
      heads: 4,
      extraTensors: { "classifier.weight": [2, 16] },
    },
  ],
];

const LLAMA3 = {
  rope_type: "llama3",
  factor: 8,
  low_freq_factor: 1,
  high_freq_factor: 4,
  original_max_position_embeddings: 256,
} as const;

const decoderCases: [string, DecoderSpec][] = [
  [
    "llama: GQA 8:2, rope_scaling linear, model. prefix, untied lm_head ignored",
    {
      modelType: "llama",
      hidden: 32,
      heads: 8,
      kvHeads: 2,
      prefix: "model.",
      ropeScaling: { rope_type: "linear", factor: 4 },
    },
  ],
  // θ = 500000, head_dim 8: wavelengths 6.3 (kept), 167 (the smoothed band between 256/4 and 256/1), 4443 and 118000 (divided by the factor).
  [
    "llama: rope_scaling llama3, head_dim ≠ hidden/heads, attention_bias, BF16, θ = 500000",
    {
      modelType: "llama",
      heads: 4,
      kvHeads: 4,
      headDim: 8,
      theta: 500000,
      attentionBias: true,
      dtype: "BF16",
      prefix: "model.",
      ropeScaling: LLAMA3,
    },
  ],
  [
    "qwen2: q/k/v biases, tied embeddings (no lm_head), F16, 2 shards, GQA 4:1",
    { modelType: "qwen2", heads: 4, kvHeads: 1, tied: true, dtype: "F16", shards: 2, prefix: "model." },
  ],
  ["mistral: no prefix, GQA 2:1, sliding_window null", { modelType: "mistral", heads: 4, kvHeads: 2 }],
  [
    "llama: newer transformers' rope_parameters (llama3, θ = 500000) instead of rope_theta/rope_scaling",
    {
      modelType: "llama",
      headDim: 8,
      theta: 500000,
      ropeScaling: LLAMA3,
      configOverrides: { rope_theta: null, rope_scaling: null, rope_parameters: { ...LLAMA3, rope_theta: 500000 } },
    },
  ],
];

describe("generated encoders match the naive float64 oracle", () => {
  it.each(encoderCases)("%s", async (_name, spec) => {
    const dir = path.join(root, `enc-${spec.modelType}-${spec.dtype ?? "F32"}-${spec.act ?? "gelu"}`);
    await expectMatchesNaive(dir, await writeEncoderCheckpoint(dir, spec, 11), 900);
  });
});

describe("generated decoders match the naive float64 oracle", () => {
  it.each(decoderCases)("%s", async (_name, spec) => {
    const dir = path.join(root, `dec-${spec.modelType}-${spec.dtype ?? "F32"}-${spec.kvHeads}-${spec.headDim}`);
    await expectMatchesNaive(dir, await writeDecoderCheckpoint(dir, spec, 13), 758);
  });
});

describe("refusals name what is wrong", () => {
  async function refusal(
    name: string,
    make: (dir: string) => Promise<unknown>,
  ): Promise<{ code: string; message: string }> {
    const dir = path.join(root, `bad-${name}`);
    await make(dir);
    try {
      readFamilyWeights(await readHfFolder(dir));
    } catch (e) {
      return { code: (e as { code: string }).code, message: (e as Error).message };
    }
    throw new Error("the folder was accepted");
  }

  it("a missing config.json, tokenizer.json or weight file, and a missing shard", async () => {
    for (const file of ["config.json", "tokenizer.json", "model.safetensors"]) {
      const r = await refusal(`missing-${file}`, async (dir) => {
        await writeEncoderCheckpoint(dir, { modelType: "bert" });
        await rm(path.join(dir, file));
      });
      expect(r.code).toBe("model_file_missing");
      expect(r.message).toContain(file === "model.safetensors" ? "model.safetensors.index.json" : file);
    }
    const shard = await refusal("missing-shard", async (dir) => {
      await writeEncoderCheckpoint(dir, { modelType: "bert", shards: 2 });
      await rm(path.join(dir, "model-00002-of-00002.safetensors"));
    });
    expect(shard).toMatchObject({ code: "model_file_missing" });
    expect(shard.message).toContain("model-00002-of-00002.safetensors");
    const folder = await refusal("no-folder", async () => undefined);
    expect(folder.code).toBe("model_folder_missing");
  });

  it.each([
    ["model_type", { model_type: "gpt2" }],
    ["hidden_act", { hidden_act: "relu" }],
    ["position_embedding_type", { position_embedding_type: "relative_key" }],
    ["layer_norm_eps", { layer_norm_eps: "tiny" }],
  ])("encoder config field %s", async (field, overrides) => {
    const r = await refusal(`enc-config-${field}`, (dir) =>
      writeEncoderCheckpoint(dir, { modelType: "bert", configOverrides: overrides }),
    );
    expect(r.message).toContain(field);
  });

  it.each([
    ["rope_scaling", { modelType: "llama", configOverrides: { rope_scaling: { rope_type: "yarn", factor: 4 } } }],
    ["use_sliding_window", { modelType: "qwen2", configOverrides: { use_sliding_window: true } }],
    ["sliding_window", { modelType: "mistral", configOverrides: { sliding_window: 64 } }],
    ["num_key_value_heads", { modelType: "llama", configOverrides: { num_key_value_heads: 3 } }],
    ["hidden_act", { modelType: "llama", configOverrides: { hidden_act: "gelu" } }],
  ] as [string, DecoderSpec][])("decoder config field %s", async (field, spec) => {
    const r = await refusal(`dec-config-${field}`, (dir) => writeDecoderCheckpoint(dir, spec));
    expect(r.code).toMatch(/^model_(unsupported|config_invalid)$/);
    expect(r.message).toContain(field);
  });

  it("a missing tensor and a tensor whose shape disagrees with the config", async () => {
    const missing = await refusal("tensor-missing", (dir) =>
      writeDecoderCheckpoint(dir, { modelType: "llama", prefix: "model.", omit: "layers.1.mlp.up_proj.weight" }),
    );
    expect(missing).toEqual({
      code: "tensor_missing",
      message: expect.stringContaining("model.layers.1.mlp.up_proj.weight"),
    });
    const bias = await refusal("bias-missing", (dir) =>
      writeDecoderCheckpoint(dir, { modelType: "qwen2", omit: "layers.0.self_attn.k_proj.bias" }),
    );
    expect(bias.message).toContain("layers.0.self_attn.k_proj.bias");
    const shape = await refusal("tensor-shape", (dir) =>
      writeEncoderCheckpoint(dir, { modelType: "bert", misshape: "encoder.layer.0.intermediate.dense.weight" }),
    );
    expect(shape.code).toBe("tensor_shape_mismatch");
    expect(shape.message).toContain("encoder.layer.0.intermediate.dense.weight");
  });

  it("accepts tensors of other dtypes the network never reads (BERT's int64 position_ids buffer)", async () => {
    const dir = path.join(root, "int64-buffer");
    const naive = await writeEncoderCheckpoint(dir, {
      modelType: "bert",
      prefix: "bert.",
      extraTensors: { "bert.embeddings.position_ids": [1, 4] },
    });
    const file = path.join(dir, "model.safetensors");
    const bytes = await readFile(file);
    const from = '"bert.embeddings.position_ids":{"dtype":"F32","shape":[1,4]';
    const at = bytes.indexOf(from);
    expect(at).toBeGreaterThan(0);
    bytes.write('"bert.embeddings.position_ids":{"dtype":"I64","shape":[1,2]', at); // same 16 bytes of data
    await writeFile(file, bytes);
    await expectMatchesNaive(dir, naive, 900);
  });

  it("a tensor stored in an unsupported dtype", async () => {
    const r = await refusal("dtype", async (dir) => {
      await writeEncoderCheckpoint(dir, { modelType: "bert" });
      const file = path.join(dir, "model.safetensors");
      const bytes = await readFile(file);
      // Same width, so the offsets stay valid: only the declared dtype changes.
      const at = bytes.indexOf('"dtype":"F32"');
      bytes.write('"dtype":"I32"', at);
      await writeFile(file, bytes);
    });
    expect(r.code).toBe("tensor_dtype_unsupported");
    expect(r.message).toContain("I32");
  });
});
