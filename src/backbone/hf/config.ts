/**
 * config.json → the settings of one supported family, validated field by field. Anything this
 * loader cannot reproduce exactly (another model_type, an activation, a RoPE scaling type, sliding
 * windows that would take effect) is refused with an error that names the field.
 */
import { modelError } from "./errors.js";

export const ENCODER_TYPES = ["bert", "roberta", "xlm-roberta", "distilbert"] as const;
export const DECODER_TYPES = ["llama", "mistral", "qwen2"] as const;
export type EncoderType = (typeof ENCODER_TYPES)[number];
export type DecoderType = (typeof DECODER_TYPES)[number];

/**
 * Most positions a decoder graph is run with (soft prompt + text). Long-context models keep their
 * own limit above this; the server never sends more, so the cost of one request stays bounded.
 */
export const DECODER_POSITION_CAP = 1024;

export interface EncoderConfig {
  family: "bert";
  modelType: EncoderType;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** erf GELU ("gelu") or the tanh approximation ("gelu_new", "gelu_pytorch_tanh"). */
  activation: "gelu_erf" | "gelu_tanh";
  eps: number;
  maxPositionEmbeddings: number;
  /** RoBERTa/XLM-R: position ids start at pad_token_id + 1; 0 otherwise. */
  positionOffset: number;
  /** 0 when the family has no token types (DistilBERT). */
  typeVocabSize: number;
}

export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface DecoderConfig {
  family: "llama";
  modelType: DecoderType;
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  eps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  maxPositionEmbeddings: number;
  /** q/k/v projections carry biases (qwen2 always; llama when attention_bias). */
  qkvBias: boolean;
  /** o_proj carries a bias (llama's attention_bias). */
  outputBias: boolean;
}

export type FamilyConfig = EncoderConfig | DecoderConfig;

type Json = Record<string, unknown>;

function field(c: Json, name: string): unknown {
  return c[name];
}

function positiveInt(c: Json, name: string, fallback?: number): number {
  const v = field(c, name) ?? fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0)
    throw modelError(
      "model_config_invalid",
      `config.json: ${name} must be a positive integer (got ${JSON.stringify(v)})`,
    );
  return v;
}

function positiveNumber(c: Json, name: string, fallback?: number): number {
  const v = field(c, name) ?? fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0)
    throw modelError(
      "model_config_invalid",
      `config.json: ${name} must be a positive number (got ${JSON.stringify(v)})`,
    );
  return v;
}

function unsupported(name: string, value: unknown, why: string): never {
  throw modelError("model_unsupported", `config.json: ${name} = ${JSON.stringify(value)} is not supported (${why})`);
}

function geluKind(name: string, v: unknown): EncoderConfig["activation"] {
  if (v === "gelu") return "gelu_erf";
  if (v === "gelu_new" || v === "gelu_pytorch_tanh") return "gelu_tanh";
  return unsupported(name, v, "supported: gelu (erf), gelu_new and gelu_pytorch_tanh (tanh)");
}

function encoderConfig(c: Json, modelType: EncoderType): EncoderConfig {
  if (modelType === "distilbert") {
    const hidden = positiveInt(c, "dim");
    const heads = positiveInt(c, "n_heads");
    if (hidden % heads !== 0)
      throw modelError("model_config_invalid", `config.json: dim ${hidden} is not a multiple of n_heads ${heads}`);
    return {
      family: "bert",
      modelType,
      vocabSize: positiveInt(c, "vocab_size"),
      hidden,
      layers: positiveInt(c, "n_layers"),
      heads,
      intermediate: positiveInt(c, "hidden_dim"),
      activation: geluKind("activation", field(c, "activation") ?? "gelu"),
      eps: 1e-12, // DistilBERT's LayerNorms are built with eps=1e-12 whatever the config says
      maxPositionEmbeddings: positiveInt(c, "max_position_embeddings"),
      positionOffset: 0,
      typeVocabSize: 0,
    };
  }
  const positionType = field(c, "position_embedding_type") ?? "absolute";
  if (positionType !== "absolute")
    unsupported("position_embedding_type", positionType, "only absolute position embeddings");
  const hidden = positiveInt(c, "hidden_size");
  const heads = positiveInt(c, "num_attention_heads");
  if (hidden % heads !== 0)
    throw modelError(
      "model_config_invalid",
      `config.json: hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`,
    );
  const offsetFromPad = modelType === "roberta" || modelType === "xlm-roberta";
  let positionOffset = 0;
  if (offsetFromPad) {
    const pad = field(c, "pad_token_id") ?? 1;
    if (typeof pad !== "number" || !Number.isInteger(pad) || pad < 0)
      throw modelError(
        "model_config_invalid",
        `config.json: pad_token_id must be a non-negative integer (got ${JSON.stringify(pad)})`,
      );
    positionOffset = pad + 1;
  }
  const maxPositionEmbeddings = positiveInt(c, "max_position_embeddings");
  if (maxPositionEmbeddings <= positionOffset)
    throw modelError(
      "model_config_invalid",
      `config.json: max_position_embeddings ${maxPositionEmbeddings} leaves no position after the offset pad_token_id + 1 = ${positionOffset}`,
    );
  return {
    family: "bert",
    modelType,
    vocabSize: positiveInt(c, "vocab_size"),
    hidden,
    layers: positiveInt(c, "num_hidden_layers"),
    heads,
    intermediate: positiveInt(c, "intermediate_size"),
    activation: geluKind("hidden_act", field(c, "hidden_act") ?? "gelu"),
    eps: positiveNumber(c, "layer_norm_eps", 1e-12),
    maxPositionEmbeddings,
    positionOffset,
    typeVocabSize: positiveInt(c, "type_vocab_size", 2),
  };
}

/**
 * RoPE settings: `rope_theta` and `rope_scaling`, or newer transformers' single `rope_parameters`
 * object that holds both (rope_type, rope_theta, factor, …).
 */
function ropeSettings(c: Json): { theta: number; scaling: RopeScaling | null } {
  const params = field(c, "rope_parameters");
  if (params !== null && params !== undefined) {
    if (typeof params !== "object" || Array.isArray(params))
      unsupported("rope_parameters", params, "expected an object");
    const p = params as Json;
    return {
      theta: positiveNumber(p, "rope_theta", 10000),
      scaling: ropeScaling({ rope_scaling: p }, "rope_parameters"),
    };
  }
  return { theta: positiveNumber(c, "rope_theta", 10000), scaling: ropeScaling(c, "rope_scaling") };
}

function ropeScaling(c: Json, name: string): RopeScaling | null {
  const raw = field(c, "rope_scaling");
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== "object") unsupported(name, raw, "expected an object or null");
  const r = raw as Json;
  const type = r.rope_type ?? r.type;
  if (type === "default") return null;
  const factor = positiveNumber(r, "factor");
  if (type === "linear") return { type, factor };
  if (type === "llama3") {
    const lowFreqFactor = positiveNumber(r, "low_freq_factor");
    const highFreqFactor = positiveNumber(r, "high_freq_factor");
    if (highFreqFactor <= lowFreqFactor)
      throw modelError(
        "model_config_invalid",
        `config.json: rope_scaling.high_freq_factor ${highFreqFactor} must exceed low_freq_factor ${lowFreqFactor}`,
      );
    return {
      type,
      factor,
      lowFreqFactor,
      highFreqFactor,
      originalMaxPositions: positiveInt(r, "original_max_position_embeddings"),
    };
  }
  return unsupported(`${name}.rope_type`, type, "supported: default, linear, llama3");
}

function decoderConfig(c: Json, modelType: DecoderType): DecoderConfig {
  const hidden = positiveInt(c, "hidden_size");
  const heads = positiveInt(c, "num_attention_heads");
  const kvHeads = positiveInt(c, "num_key_value_heads", heads);
  if (heads % kvHeads !== 0)
    throw modelError(
      "model_config_invalid",
      `config.json: num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`,
    );
  const headDimRaw = field(c, "head_dim");
  const headDim = headDimRaw === null || headDimRaw === undefined ? hidden / heads : positiveInt(c, "head_dim");
  if (!Number.isInteger(headDim) || headDim % 2 !== 0)
    throw modelError(
      "model_config_invalid",
      `config.json: head_dim ${headDim} (hidden_size / num_attention_heads when absent) must be an even integer`,
    );
  const act = field(c, "hidden_act") ?? "silu";
  if (act !== "silu") unsupported("hidden_act", act, "the Llama family's MLP is SwiGLU with silu");
  const partial = field(c, "partial_rotary_factor") ?? 1;
  if (partial !== 1) unsupported("partial_rotary_factor", partial, "only full rotary embeddings");
  if (field(c, "mlp_bias") === true) unsupported("mlp_bias", true, "MLP biases are not implemented");
  const maxPositionEmbeddings = positiveInt(c, "max_position_embeddings");
  if (modelType === "qwen2" && field(c, "use_sliding_window") === true)
    unsupported("use_sliding_window", true, "sliding-window attention is not implemented");
  if (modelType === "mistral") {
    const window = field(c, "sliding_window");
    // A window at least as long as anything the server runs never masks a key: the same network.
    if (
      window !== null &&
      window !== undefined &&
      !(typeof window === "number" && window >= Math.min(maxPositionEmbeddings, DECODER_POSITION_CAP))
    ) {
      unsupported(
        "sliding_window",
        window,
        `sliding-window attention is not implemented; null or ≥ ${Math.min(maxPositionEmbeddings, DECODER_POSITION_CAP)} positions is`,
      );
    }
  }
  const attentionBias = field(c, "attention_bias") === true;
  const rope = ropeSettings(c);
  return {
    family: "llama",
    modelType,
    vocabSize: positiveInt(c, "vocab_size"),
    hidden,
    layers: positiveInt(c, "num_hidden_layers"),
    heads,
    kvHeads,
    headDim,
    intermediate: positiveInt(c, "intermediate_size"),
    eps: positiveNumber(c, "rms_norm_eps", 1e-6),
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    maxPositionEmbeddings,
    qkvBias: modelType === "qwen2" || (modelType === "llama" && attentionBias),
    outputBias: modelType === "llama" && attentionBias,
  };
}

export function parseFamilyConfig(json: unknown): FamilyConfig {
  if (!json || typeof json !== "object" || Array.isArray(json))
    throw modelError("model_config_invalid", "config.json is not a JSON object");
  const c = json as Json;
  const modelType = c.model_type;
  if ((ENCODER_TYPES as readonly unknown[]).includes(modelType)) return encoderConfig(c, modelType as EncoderType);
  if ((DECODER_TYPES as readonly unknown[]).includes(modelType)) return decoderConfig(c, modelType as DecoderType);
  return unsupported("model_type", modelType, `supported: ${[...ENCODER_TYPES, ...DECODER_TYPES].join(", ")}`);
}

/** Positions (soft prompt + text) the built graph accepts. */
export function positionLimit(cfg: FamilyConfig): number {
  if (cfg.family === "bert") return cfg.maxPositionEmbeddings - cfg.positionOffset;
  return Math.min(cfg.maxPositionEmbeddings, DECODER_POSITION_CAP);
}
