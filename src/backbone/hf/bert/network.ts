/**
 * BERT, RoBERTa, XLM-RoBERTa and DistilBERT encoders with Hugging Face's semantics: word + absolute
 * position (+ token type 0) embeddings → LayerNorm, then post-LayerNorm blocks of self-attention
 * and a GELU MLP. Graph contract: ../network.ts.
 */
import type { EncoderConfig } from "../config.js";
import {
  geluLinear,
  layerNorm,
  linear,
  residualLayerNorm,
  splitHeads,
  mergeHeads,
  attention,
  keyPaddingBias,
  maskedMean,
  type LinearWeights,
} from "../layers.js";
import { B, declareInputs, keyMask, positionIds, T, type HfNetworkGraph, type HfNetworkOptions } from "../network.js";
import type { CheckpointWeights } from "../tensors.js";

interface Norm {
  scale: Float32Array;
  bias: Float32Array;
}

interface EncoderLayer {
  query: LinearWeights;
  key: LinearWeights;
  value: LinearWeights;
  attentionOut: LinearWeights;
  attentionNorm: Norm;
  ffnIn: LinearWeights;
  ffnOut: LinearWeights;
  ffnNorm: Norm;
}

export interface EncoderWeights {
  config: EncoderConfig;
  wordEmbeddings: Float32Array;
  positionEmbeddings: Float32Array;
  /** The token-type table [typeVocab, hidden], or null for DistilBERT. */
  tokenTypes: Float32Array | null;
  embeddingNorm: Norm;
  layers: EncoderLayer[];
}

/** Tensor names of one family, relative to the checkpoint's prefix. */
const NAMES = {
  bert: {
    prefixes: ["bert.", "roberta."],
    word: "embeddings.word_embeddings.weight",
    position: "embeddings.position_embeddings.weight",
    embeddingNorm: "embeddings.LayerNorm",
    layer: (n: number) => ({
      query: `encoder.layer.${n}.attention.self.query`,
      key: `encoder.layer.${n}.attention.self.key`,
      value: `encoder.layer.${n}.attention.self.value`,
      attentionOut: `encoder.layer.${n}.attention.output.dense`,
      attentionNorm: `encoder.layer.${n}.attention.output.LayerNorm`,
      ffnIn: `encoder.layer.${n}.intermediate.dense`,
      ffnOut: `encoder.layer.${n}.output.dense`,
      ffnNorm: `encoder.layer.${n}.output.LayerNorm`,
    }),
  },
  distilbert: {
    prefixes: ["distilbert."],
    word: "embeddings.word_embeddings.weight",
    position: "embeddings.position_embeddings.weight",
    embeddingNorm: "embeddings.LayerNorm",
    layer: (n: number) => ({
      query: `transformer.layer.${n}.attention.q_lin`,
      key: `transformer.layer.${n}.attention.k_lin`,
      value: `transformer.layer.${n}.attention.v_lin`,
      attentionOut: `transformer.layer.${n}.attention.out_lin`,
      attentionNorm: `transformer.layer.${n}.sa_layer_norm`,
      ffnIn: `transformer.layer.${n}.ffn.lin1`,
      ffnOut: `transformer.layer.${n}.ffn.lin2`,
      ffnNorm: `transformer.layer.${n}.output_layer_norm`,
    }),
  },
};

export function encoderPrefixes(cfg: EncoderConfig): { prefixes: string[]; probe: string } {
  const names = cfg.modelType === "distilbert" ? NAMES.distilbert : NAMES.bert;
  return { prefixes: names.prefixes, probe: names.word };
}

export function readEncoderWeights(cfg: EncoderConfig, w: CheckpointWeights): EncoderWeights {
  const names = cfg.modelType === "distilbert" ? NAMES.distilbert : NAMES.bert;
  const H = cfg.hidden;
  const lin = (name: string, inDim: number, outDim: number): LinearWeights => ({
    weight: w.get(`${name}.weight`, [outDim, inDim]),
    bias: w.get(`${name}.bias`, [outDim]),
    in: inDim,
    out: outDim,
  });
  const norm = (name: string): Norm => ({ scale: w.get(`${name}.weight`, [H]), bias: w.get(`${name}.bias`, [H]) });
  const layers: EncoderLayer[] = [];
  for (let n = 0; n < cfg.layers; n++) {
    const l = names.layer(n);
    layers.push({
      query: lin(l.query, H, H),
      key: lin(l.key, H, H),
      value: lin(l.value, H, H),
      attentionOut: lin(l.attentionOut, H, H),
      attentionNorm: norm(l.attentionNorm),
      ffnIn: lin(l.ffnIn, H, cfg.intermediate),
      ffnOut: lin(l.ffnOut, cfg.intermediate, H),
      ffnNorm: norm(l.ffnNorm),
    });
  }
  return {
    config: cfg,
    wordEmbeddings: w.get(names.word, [cfg.vocabSize, H]),
    positionEmbeddings: w.get(names.position, [cfg.maxPositionEmbeddings, H]),
    tokenTypes: cfg.typeVocabSize > 0 ? w.get("embeddings.token_type_embeddings.weight", [cfg.typeVocabSize, H]) : null,
    embeddingNorm: norm(names.embeddingNorm),
    layers,
  };
}

export function buildEncoderNetwork(w: EncoderWeights, opts: HfNetworkOptions = {}): HfNetworkGraph {
  const cfg = w.config;
  const H = cfg.hidden;
  const headDim = H / cfg.heads;
  const inp = declareInputs(H, cfg.layers, cfg.heads, headDim, opts, w.wordEmbeddings);
  const { g } = inp;

  const positions = g.gather(
    g.weight("position_embeddings", w.positionEmbeddings, [cfg.maxPositionEmbeddings, H]),
    positionIds(inp, cfg.positionOffset),
  );
  let embedded = g.add(inp.inputsEmbeds, positions);
  if (w.tokenTypes) {
    // token_type_ids [B, T]: 0 for single texts and soft-prompt rows, the tokenizer's type ids for pairs.
    const tokenTypeIds = g.input("token_type_ids", "int64", [B, T]);
    embedded = g.add(
      embedded,
      g.gather(g.weight("token_type_embeddings", w.tokenTypes, [cfg.typeVocabSize, H]), tokenTypeIds),
    );
  }
  const fused = opts.fused ?? false;
  let x = layerNorm(g, embedded, w.embeddingNorm.scale, w.embeddingNorm.bias, cfg.eps, "embeddings_ln", fused);

  const bias = keyPaddingBias(g, keyMask(inp));
  w.layers.forEach((l, n) => {
    let k = splitHeads(g, linear(g, x, l.key, `l${n}_key`), cfg.heads, headDim);
    let v = splitHeads(g, linear(g, x, l.value, `l${n}_value`), cfg.heads, headDim);
    if (inp.prefixMask) {
      k = g.concat([inp.prefixKeys[n], k], 2);
      v = g.concat([inp.prefixValues[n], v], 2);
    }
    const q = splitHeads(g, linear(g, x, l.query, `l${n}_query`), cfg.heads, headDim);
    const context = mergeHeads(g, attention(g, q, k, v, bias, cfg.heads, cfg.heads, headDim), cfg.heads, headDim);
    x = residualLayerNorm(g, x, context, l.attentionOut, l.attentionNorm, cfg.eps, `l${n}_attn_out`, fused);
    const inner = geluLinear(g, x, l.ffnIn, cfg.activation, `l${n}_ffn_in`, fused);
    x = residualLayerNorm(g, x, inner, l.ffnOut, l.ffnNorm, cfg.eps, `l${n}_ffn_out`, fused);
  });
  const lastHiddenState = g.output("last_hidden_state", x);
  const pooled = g.output("pooled", maskedMean(g, lastHiddenState, inp.mask));
  return {
    graph: g,
    inputs: { inputsEmbeds: inp.inputsEmbeds, prefixKeys: inp.prefixKeys, prefixValues: inp.prefixValues },
    outputs: { lastHiddenState, pooled },
  };
}
