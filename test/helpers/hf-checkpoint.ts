/**
 * Generates small random Hugging Face folders (config.json, tokenizer.json, safetensors weights)
 * for the variants the shared fixtures do not cover, and returns the naive oracle's view of the
 * same weights (as stored: half-precision rounding included).
 */
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { seededRandom } from "../../src/random.js";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import type { NaiveDecoder, NaiveEncoder, NaiveLinear, NaiveRopeScaling } from "./naive-hf.js";
import { quantize, safetensorsBytes, type WriteDType, type WriteTensor } from "./safetensors-writer.js";

export const FIXTURES_DIR = path.resolve(REPO_ROOT, "../shared/fixtures/backbones");

export interface LayoutOptions {
  dtype?: WriteDType;
  /** Prefix every tensor name (e.g. "roberta.", "model."). */
  prefix?: string;
  /** LayerNorm weight/bias stored as gamma/beta. */
  legacyNames?: boolean;
  /** Split the weights over this many shards with an index file. */
  shards?: number;
  /** Extra heads the loader must ignore. */
  extraTensors?: Record<string, number[]>;
  /** Drop this tensor (canonical name) to test refusals. */
  omit?: string;
  /** Give this tensor (canonical name) a wrong shape. */
  misshape?: string;
  /** Merged into config.json after the generated fields. */
  configOverrides?: Record<string, unknown>;
}

class Store {
  readonly tensors: Record<string, WriteTensor> = {};
  private readonly random: () => number;
  constructor(
    seed: number,
    private readonly dtype: WriteDType,
  ) {
    this.random = seededRandom(seed);
  }

  /** Random values (uniform, ±scale) stored under `name`; returns them as the stored precision reads back. */
  values(name: string, shape: number[], scale: number, center = 0): number[] {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Array.from({ length: n }, () => quantize(center + (this.random() * 2 - 1) * scale, this.dtype));
    this.tensors[name] = { shape, data };
    return data;
  }

  matrix(name: string, rows: number, cols: number, scale: number): number[][] {
    const flat = this.values(name, [rows, cols], scale);
    return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
  }

  /** `gain` > 1 drives activations into the range where GELU's two forms differ measurably. */
  linear(name: string, inDim: number, outDim: number, bias: boolean, gain = 1): NaiveLinear {
    return {
      w: this.matrix(`${name}.weight`, outDim, inDim, gain / Math.sqrt(inDim)),
      b: bias ? this.values(`${name}.bias`, [outDim], 0.1) : null,
    };
  }
}

async function writeFolder(
  dir: string,
  config: Record<string, unknown>,
  tokenizerFrom: string,
  store: Store,
  o: LayoutOptions,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const dtype = o.dtype ?? "F32";
  const legacy = (name: string) =>
    o.legacyNames && /LayerNorm|layer_norm/.test(name)
      ? name.replace(/\.weight$/, ".gamma").replace(/\.bias$/, ".beta")
      : name;
  const tensors: Record<string, WriteTensor> = {};
  for (const [name, t] of Object.entries(store.tensors)) {
    if (name === o.omit) continue;
    const shape = name === o.misshape ? [t.shape[0] + 1, ...t.shape.slice(1)] : t.shape;
    const data =
      name === o.misshape ? [...Array.from(t.data), ...new Array(t.data.length / t.shape[0]).fill(0)] : t.data;
    tensors[(o.prefix ?? "") + legacy(name)] = { shape, data };
  }
  for (const [name, shape] of Object.entries(o.extraTensors ?? {}))
    tensors[name] = { shape, data: new Array(shape.reduce((a, b) => a * b, 1)).fill(0.5) };

  const shards = o.shards ?? 1;
  if (shards === 1) await writeFile(path.join(dir, "model.safetensors"), safetensorsBytes(tensors, dtype));
  else {
    const names = Object.keys(tensors);
    const weightMap: Record<string, string> = {};
    for (let s = 0; s < shards; s++) {
      const file = `model-${String(s + 1).padStart(5, "0")}-of-${String(shards).padStart(5, "0")}.safetensors`;
      const part = Object.fromEntries(names.filter((_, i) => i % shards === s).map((n) => [n, tensors[n]]));
      for (const n of Object.keys(part)) weightMap[n] = file;
      await writeFile(path.join(dir, file), safetensorsBytes(part, dtype));
    }
    await writeFile(
      path.join(dir, "model.safetensors.index.json"),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
  }
  await writeFile(path.join(dir, "config.json"), JSON.stringify({ ...config, ...(o.configOverrides ?? {}) }, null, 2));
  await copyFile(path.join(FIXTURES_DIR, tokenizerFrom, "tokenizer.json"), path.join(dir, "tokenizer.json"));
}

export interface EncoderSpec extends LayoutOptions {
  modelType: "bert" | "roberta" | "xlm-roberta" | "distilbert";
  act?: "gelu" | "gelu_new" | "gelu_pytorch_tanh";
  hidden?: number;
  layers?: number;
  heads?: number;
  intermediate?: number;
  eps?: number;
  padTokenId?: number;
}

/** Vocabulary of the bert-v tokenizer the generated encoders reuse. */
const ENCODER_VOCAB = 900;
const DECODER_VOCAB = 758;

export async function writeEncoderCheckpoint(dir: string, spec: EncoderSpec, seed = 1): Promise<NaiveEncoder> {
  const H = spec.hidden ?? 16;
  const L = spec.layers ?? 2;
  const heads = spec.heads ?? 2;
  const I = spec.intermediate ?? 32;
  const eps = spec.modelType === "distilbert" ? 1e-12 : (spec.eps ?? 1e-5);
  const act = spec.act ?? "gelu";
  const pad = spec.padTokenId ?? 1;
  const positionOffset = spec.modelType === "roberta" || spec.modelType === "xlm-roberta" ? pad + 1 : 0;
  const maxPos = 160;
  const s = new Store(seed, spec.dtype ?? "F32");
  const distil = spec.modelType === "distilbert";
  const norm = (name: string) => ({
    w: s.values(`${name}.weight`, [H], 0.3, 1),
    b: s.values(`${name}.bias`, [H], 0.1),
  });
  const word = s.matrix("embeddings.word_embeddings.weight", ENCODER_VOCAB, H, 1);
  const position = s.matrix("embeddings.position_embeddings.weight", maxPos, H, 1);
  const tokenTypes = distil ? null : s.matrix("embeddings.token_type_embeddings.weight", 2, H, 1);
  const embeddingNorm = norm("embeddings.LayerNorm");
  const layers: NaiveEncoder["layers"] = [];
  for (let n = 0; n < L; n++) {
    const p = distil ? `transformer.layer.${n}` : `encoder.layer.${n}`;
    layers.push(
      distil
        ? {
            q: s.linear(`${p}.attention.q_lin`, H, H, true),
            k: s.linear(`${p}.attention.k_lin`, H, H, true),
            v: s.linear(`${p}.attention.v_lin`, H, H, true),
            o: s.linear(`${p}.attention.out_lin`, H, H, true),
            attentionNorm: norm(`${p}.sa_layer_norm`),
            ffnIn: s.linear(`${p}.ffn.lin1`, H, I, true, 4),
            ffnOut: s.linear(`${p}.ffn.lin2`, I, H, true),
            ffnNorm: norm(`${p}.output_layer_norm`),
          }
        : {
            q: s.linear(`${p}.attention.self.query`, H, H, true),
            k: s.linear(`${p}.attention.self.key`, H, H, true),
            v: s.linear(`${p}.attention.self.value`, H, H, true),
            o: s.linear(`${p}.attention.output.dense`, H, H, true),
            attentionNorm: norm(`${p}.attention.output.LayerNorm`),
            ffnIn: s.linear(`${p}.intermediate.dense`, H, I, true, 4),
            ffnOut: s.linear(`${p}.output.dense`, I, H, true),
            ffnNorm: norm(`${p}.output.LayerNorm`),
          },
    );
  }
  const config = distil
    ? {
        model_type: "distilbert",
        vocab_size: ENCODER_VOCAB,
        dim: H,
        n_layers: L,
        n_heads: heads,
        hidden_dim: I,
        activation: act,
        max_position_embeddings: maxPos,
        pad_token_id: 0,
      }
    : {
        model_type: spec.modelType,
        vocab_size: ENCODER_VOCAB,
        hidden_size: H,
        num_hidden_layers: L,
        num_attention_heads: heads,
        intermediate_size: I,
        hidden_act: act,
        max_position_embeddings: maxPos,
        type_vocab_size: 2,
        layer_norm_eps: eps,
        pad_token_id: pad,
      };
  await writeFolder(dir, config, "bert-v", s, spec);
  return { kind: "encoder", heads, eps, act, positionOffset, word, position, tokenTypes, embeddingNorm, layers };
}

export interface DecoderSpec extends LayoutOptions {
  modelType: "llama" | "mistral" | "qwen2";
  hidden?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  headDim?: number;
  intermediate?: number;
  theta?: number;
  ropeScaling?: NaiveRopeScaling;
  tied?: boolean;
  attentionBias?: boolean;
}

export async function writeDecoderCheckpoint(dir: string, spec: DecoderSpec, seed = 1): Promise<NaiveDecoder> {
  const H = spec.hidden ?? 16;
  const L = spec.layers ?? 2;
  const heads = spec.heads ?? 4;
  const kvHeads = spec.kvHeads ?? heads;
  const headDim = spec.headDim ?? H / heads;
  const I = spec.intermediate ?? 32;
  const eps = 1e-6;
  const theta = spec.theta ?? 10000;
  const s = new Store(seed, spec.dtype ?? "F32");
  const qkvBias = spec.modelType === "qwen2" || !!spec.attentionBias;
  const embed = s.matrix("embed_tokens.weight", DECODER_VOCAB, H, 1);
  const layers: NaiveDecoder["layers"] = [];
  for (let n = 0; n < L; n++) {
    const p = `layers.${n}`;
    layers.push({
      inputNorm: s.values(`${p}.input_layernorm.weight`, [H], 0.3, 1),
      q: s.linear(`${p}.self_attn.q_proj`, H, heads * headDim, qkvBias),
      k: s.linear(`${p}.self_attn.k_proj`, H, kvHeads * headDim, qkvBias),
      v: s.linear(`${p}.self_attn.v_proj`, H, kvHeads * headDim, qkvBias),
      o: s.linear(`${p}.self_attn.o_proj`, heads * headDim, H, !!spec.attentionBias),
      postNorm: s.values(`${p}.post_attention_layernorm.weight`, [H], 0.3, 1),
      gate: s.linear(`${p}.mlp.gate_proj`, H, I, false),
      up: s.linear(`${p}.mlp.up_proj`, H, I, false),
      down: s.linear(`${p}.mlp.down_proj`, I, H, false),
    });
  }
  const norm = s.values("norm.weight", [H], 0.3, 1);
  const extra: Record<string, number[]> = spec.tied ? {} : { "lm_head.weight": [DECODER_VOCAB, H] };
  const config: Record<string, unknown> = {
    model_type: spec.modelType,
    vocab_size: DECODER_VOCAB,
    hidden_size: H,
    num_hidden_layers: L,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    intermediate_size: I,
    hidden_act: "silu",
    max_position_embeddings: 512,
    rms_norm_eps: eps,
    rope_theta: theta,
    rope_scaling: spec.ropeScaling ?? null,
    tie_word_embeddings: !!spec.tied,
    bos_token_id: 0,
    eos_token_id: 1,
  };
  if (spec.headDim !== undefined) config.head_dim = spec.headDim;
  if (spec.attentionBias) config.attention_bias = true;
  if (spec.modelType === "mistral") config.sliding_window = null;
  if (spec.modelType === "qwen2") Object.assign(config, { use_sliding_window: false, sliding_window: 4096 });
  await writeFolder(dir, config, "llama-v", s, { ...spec, extraTensors: { ...extra, ...(spec.extraTensors ?? {}) } });
  return {
    kind: "decoder",
    heads,
    kvHeads,
    headDim,
    eps,
    theta,
    scaling: spec.ropeScaling ?? null,
    embed,
    layers,
    norm,
  };
}
