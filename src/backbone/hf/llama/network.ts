/**
 * Llama, Mistral and Qwen2 decoders with Hugging Face's semantics: pre-RMSNorm blocks of causal
 * grouped-query attention with rotary embeddings (rotate-half layout) and a SwiGLU MLP, then the
 * final norm. Graph contract: ../network.ts; prefix keys are used as given (they are a KV cache,
 * already rotated), the text's keys and queries are rotated at their own positions.
 */
import type { Graph, Value } from "../../graph/graph.js";
import type { DecoderConfig } from "../config.js";
import {
  attention,
  keyPaddingBias,
  linear,
  maskedMean,
  mergeHeads,
  MASKED,
  residualRmsNorm,
  rmsNorm,
  silu,
  splitHeads,
  type LinearWeights,
} from "../layers.js";
import {
  declareInputs,
  keyMask,
  positionIds,
  textIndices,
  type HfNetworkGraph,
  type HfNetworkOptions,
  type NetworkInputs,
} from "../network.js";
import type { CheckpointWeights } from "../tensors.js";
import { ropeInverseFrequencies } from "./rope.js";

interface DecoderLayer {
  inputNorm: Float32Array;
  q: LinearWeights;
  k: LinearWeights;
  v: LinearWeights;
  o: LinearWeights;
  postAttentionNorm: Float32Array;
  gate: LinearWeights;
  up: LinearWeights;
  down: LinearWeights;
}

export interface DecoderWeights {
  config: DecoderConfig;
  embedTokens: Float32Array;
  layers: DecoderLayer[];
  finalNorm: Float32Array;
}

export const DECODER_PREFIXES = { prefixes: ["model."], probe: "embed_tokens.weight" };

export function readDecoderWeights(cfg: DecoderConfig, w: CheckpointWeights): DecoderWeights {
  const H = cfg.hidden;
  const qWidth = cfg.heads * cfg.headDim;
  const kvWidth = cfg.kvHeads * cfg.headDim;
  const lin = (name: string, inDim: number, outDim: number, bias: boolean): LinearWeights => ({
    weight: w.get(`${name}.weight`, [outDim, inDim]),
    bias: bias ? w.get(`${name}.bias`, [outDim]) : null,
    in: inDim,
    out: outDim,
  });
  const layers: DecoderLayer[] = [];
  for (let n = 0; n < cfg.layers; n++) {
    const p = `layers.${n}`;
    layers.push({
      inputNorm: w.get(`${p}.input_layernorm.weight`, [H]),
      q: lin(`${p}.self_attn.q_proj`, H, qWidth, cfg.qkvBias),
      k: lin(`${p}.self_attn.k_proj`, H, kvWidth, cfg.qkvBias),
      v: lin(`${p}.self_attn.v_proj`, H, kvWidth, cfg.qkvBias),
      o: lin(`${p}.self_attn.o_proj`, qWidth, H, cfg.outputBias),
      postAttentionNorm: w.get(`${p}.post_attention_layernorm.weight`, [H]),
      gate: lin(`${p}.mlp.gate_proj`, H, cfg.intermediate, false),
      up: lin(`${p}.mlp.up_proj`, H, cfg.intermediate, false),
      down: lin(`${p}.mlp.down_proj`, cfg.intermediate, H, false),
    });
  }
  return {
    config: cfg,
    embedTokens: w.get("embed_tokens.weight", [cfg.vocabSize, H]),
    layers,
    finalNorm: w.get("norm.weight", [H]),
  };
}

/** cos and sin of the text positions, [T, d] or [B, 1, T, d] (with a prefix), halves repeated as HF does. */
function rotaryTables(inp: NetworkInputs, cfg: DecoderConfig): { cos: Value; sin: Value } {
  const { g } = inp;
  const inv = ropeInverseFrequencies(cfg.headDim, cfg.ropeTheta, cfg.ropeScaling);
  const positions = g.cast(positionIds(inp, 0), g.float);
  const freqs = g.mul(g.unsqueeze(positions, [-1]), g.weight("rope_inv_freq", Float64Array.from(inv), [inv.length])); // [..., T, d/2]
  let angles = g.concat([freqs, freqs], -1);
  if (inp.prefixMask) angles = g.unsqueeze(angles, [1]); // [B, 1, T, d]
  return { cos: g.cos(angles), sin: g.sin(angles) };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁]. */
function rotate(g: Graph, x: Value, cos: Value, sin: Value, headDim: number): Value {
  const [x1, x2] = g.split(x, -1, [headDim / 2, headDim / 2]);
  return g.add(g.mul(x, cos), g.mul(g.concat([g.neg(x2), x1], -1), sin));
}

/** [T, K] bias hiding from text position i every text key after it (prefix slots stay visible). */
function causalBias(inp: NetworkInputs): Value {
  const { g } = inp;
  const text = textIndices(inp);
  if (!inp.prefixSlots)
    return g.mul(g.cast(g.greater(g.unsqueeze(text, [0]), g.unsqueeze(text, [1])), g.float), g.floats([MASKED]));
  const rows = g.add(g.unsqueeze(text, [1]), inp.prefixSlots); // [T, 1]: i + P
  const keys = g.range(
    g.ints([0], [], "zero"),
    g.add(g.gatherScalar(g.shapeOf(inp.inputsEmbeds), 1), inp.prefixSlots),
    g.ints([1], [], "one"),
    "keys",
  );
  const future = g.greater(g.unsqueeze(keys, [0]), rows); // [T, K]
  return g.mul(g.cast(future, g.float), g.floats([MASKED]));
}

export function buildDecoderNetwork(w: DecoderWeights, opts: HfNetworkOptions = {}): HfNetworkGraph {
  const cfg = w.config;
  const { heads, kvHeads, headDim } = cfg;
  const inp = declareInputs(cfg.hidden, cfg.layers, kvHeads, headDim, opts, w.embedTokens);
  const { g } = inp;
  const { cos, sin } = rotaryTables(inp, cfg);
  const bias = g.add(keyPaddingBias(g, keyMask(inp)), causalBias(inp)); // [B, 1, T, K]

  const fused = opts.fused ?? false;
  // Each norm after the first is fused with the residual add before it; the last is the final norm.
  let x = inp.inputsEmbeds;
  let h = rmsNorm(g, x, w.layers[0].inputNorm, cfg.eps, "l0_input_norm", fused);
  w.layers.forEach((l, n) => {
    const q = rotate(g, splitHeads(g, linear(g, h, l.q, `l${n}_q`), heads, headDim), cos, sin, headDim);
    let k = rotate(g, splitHeads(g, linear(g, h, l.k, `l${n}_k`), kvHeads, headDim), cos, sin, headDim);
    let v = splitHeads(g, linear(g, h, l.v, `l${n}_v`), kvHeads, headDim);
    if (inp.prefixMask) {
      k = g.concat([inp.prefixKeys[n], k], 2);
      v = g.concat([inp.prefixValues[n], v], 2);
    }
    const context = mergeHeads(g, attention(g, q, k, v, bias, heads, kvHeads, headDim), heads, headDim);
    const attended = residualRmsNorm(
      g,
      x,
      linear(g, context, l.o, `l${n}_o`),
      l.postAttentionNorm,
      cfg.eps,
      `l${n}_post_attn_norm`,
      fused,
    );
    const m = attended.normed;
    const down = linear(
      g,
      g.mul(silu(g, linear(g, m, l.gate, `l${n}_gate`)), linear(g, m, l.up, `l${n}_up`)),
      l.down,
      `l${n}_down`,
    );
    const last = n === w.layers.length - 1;
    const next = residualRmsNorm(
      g,
      attended.sum,
      down,
      last ? w.finalNorm : w.layers[n + 1].inputNorm,
      cfg.eps,
      last ? "final_norm" : `l${n + 1}_input_norm`,
      fused,
    );
    x = next.sum;
    h = next.normed;
  });
  const lastHiddenState = g.output("last_hidden_state", h);
  const pooled = g.output("pooled", maskedMean(g, lastHiddenState, inp.mask));
  return {
    graph: g,
    inputs: { inputsEmbeds: inp.inputsEmbeds, prefixKeys: inp.prefixKeys, prefixValues: inp.prefixValues },
    outputs: { lastHiddenState, pooled },
  };
}
