/**
 * USE-lite written once against the graph builder (see ../../../shared docs: use-lite.md).
 *
 * Graph contract (other modules rely on these names):
 *   inputs  inputs_embeds  float [batch, seq, 256]  rows of the embedding table, before ×2 and timing
 *           (with `input: "ids"` instead input_ids int64 [batch, seq] and prompt_rows float [rows, 256],
 *           looked up inside the graph: ../token-input.ts)
 *           attention_mask int64 [batch, seq]
 *   prefix variant also: prefix_key_0/prefix_value_0 [batch, 4, prefix, 64],
 *           prefix_key_1/prefix_value_1 [batch, 4, prefix, 128], prefix_mask int64 [batch, prefix]
 *   outputs last_hidden_state [batch, seq, 512], pooled [batch, 512] (mean over real positions),
 *           sentence_embedding [batch, 512] (tanh layer + L2 norm: the package's own output)
 */
import { Graph, type Value } from "../graph/graph.js";
import { quantizePerColumn } from "../graph/quantize.js";
import { embedTokenIds, type GraphInput } from "../token-input.js";
import type { AttentionLayerWeights, DenseWeights, LayerNormWeights, UseLiteWeights } from "./weights.js";

export interface NetworkOptions {
  /** Float dtype of the whole graph: float32 for serving, float64 for gradient checks. */
  float?: "float32" | "float64";
  /** Add per-layer key/value prefix inputs (P-tuning-v2 style). */
  prefix?: boolean;
  /**
   * The transformer layers' dense layers as int8 weights (per-column scales) with activations
   * quantized at run time (onnxruntime's DynamicQuantizeMatMul, CPU only). Inputs, outputs,
   * attention, norms and the tanh layer stay float, so fp32 adapters feed it unchanged.
   */
  int8?: boolean;
  /**
   * Padding-free layout: the position-wise parts (norms, dense layers, residuals) run on the real
   * tokens only, packed as [tokens, width]; attention alone runs on the padded [batch, seq] layout.
   * Adds the inputs `packed_index` int64 [tokens] (b·seq + t of each real position, in order) and
   * `padded_index` int64 [batch·seq] (1 + the packed row of each position, 0 for padding); see
   * `packingIndices` in ../packing.ts. last_hidden_state is 0 at padded positions.
   */
  packed?: boolean;
  /** The input stage: `embeds` (default; rows looked up on the host) or `ids` (looked up in the graph). */
  input?: GraphInput;
}

export interface NetworkGraph {
  graph: Graph;
  inputs: {
    inputsEmbeds: Value;
    attentionMask: Value;
    prefixKeys: Value[];
    prefixValues: Value[];
    prefixMask: Value | null;
    packedIndex: Value | null;
    paddedIndex: Value | null;
  };
  outputs: { lastHiddenState: Value; pooled: Value; sentenceEmbedding: Value };
}

const B = "batch";
const T = "seq";
const P = "prefix";
const N = "tokens";

/**
 * Moves activations between the padded layout [B, T, width] and the packed one [N, width]; the
 * identity when the graph is not packed.
 */
interface Layout {
  pack(x: Value, width: number): Value;
  unpack(x: Value, width: number): Value;
}

function packedLayout(g: Graph, attentionMask: Value, packedIndex: Value, paddedIndex: Value): Layout {
  return {
    pack: (x, width) => g.gather(g.reshape(x, [-1, width], [`${B}*${T}`, width]), packedIndex),
    unpack: (x, width) => {
      // Row 0 of the table is zeros: padded positions gather it.
      const table = g.concat([g.weight("zero_row", new Float32Array(width), [1, width]), x], 0);
      const target = g.concat([g.shapeOf(attentionMask), g.ints([width])], 0);
      return g.reshapeTo(g.gather(table, paddedIndex), target, [B, T, width]);
    },
  };
}

const PADDED: Layout = { pack: (x) => x, unpack: (x) => x };

export function buildUseLiteNetwork(w: UseLiteWeights, opts: NetworkOptions = {}): NetworkGraph {
  const g = new Graph(opts.float ?? "float32");
  const inputsEmbeds =
    opts.input === "ids"
      ? embedTokenIds(g, w.embeddings, w.vocabSize, w.embedDim, { batch: B, seq: T })
      : g.input("inputs_embeds", g.float, [B, T, w.embedDim]);
  const attentionMask = g.input("attention_mask", "int64", [B, T]);
  const prefixKeys: Value[] = [];
  const prefixValues: Value[] = [];
  let prefixMask: Value | null = null;
  if (opts.prefix) {
    w.layers.forEach((l, n) => {
      prefixKeys.push(g.input(`prefix_key_${n}`, g.float, [B, l.heads, P, l.headDim]));
      prefixValues.push(g.input(`prefix_value_${n}`, g.float, [B, l.heads, P, l.headDim]));
    });
    prefixMask = g.input("prefix_mask", "int64", [B, P]);
  }

  let packedIndex: Value | null = null;
  let paddedIndex: Value | null = null;
  let layout = PADDED;
  if (opts.packed) {
    packedIndex = g.input("packed_index", "int64", [N]);
    paddedIndex = g.input("padded_index", "int64", [`${B}*${T}`]);
    layout = packedLayout(g, attentionMask, packedIndex, paddedIndex);
  }

  const mask = g.cast(attentionMask, g.float); // [B, T]
  const maskCol = g.unsqueeze(mask, [2]); // [B, T, 1]

  // x = 2·E + timing, padded positions zeroed (the graph adds the embeddings twice: a quirk kept on purpose).
  const timing = timingSignal(g, inputsEmbeds, w.timingInv);
  let x = layout.pack(g.mul(g.add(g.mul(inputsEmbeds, g.floats([2])), timing), maskCol), w.embedDim);

  // Keys visible to attention: the prefix (when present) then the sequence itself.
  const keyMask = prefixMask ? g.concat([g.cast(prefixMask, g.float), mask], 1) : mask;
  const keyBias = g.unsqueeze(g.mul(g.sub(g.floats([1]), keyMask), g.floats([w.paddingBias])), [1, 2]); // [B,1,1,K]

  w.layers.forEach((layer, n) => {
    x = transformerLayer(
      g,
      x,
      layer,
      keyBias,
      w.layerNormEpsilon,
      prefixKeys[n] ?? null,
      prefixValues[n] ?? null,
      opts.int8 ?? false,
      layout,
    );
  });
  const lastHiddenState = g.output("last_hidden_state", layout.unpack(x, w.layers[w.layers.length - 1].ffnOut.out));

  // Mean over real positions; max(count, 1) keeps an all-padding row finite (it pools to 0).
  const summed = g.reduceSum(g.mul(lastHiddenState, maskCol), [1], false); // [B, H]
  const count = g.max(g.reduceSum(mask, [1], true), g.floats([1])); // [B, 1]
  const pooled = g.output("pooled", g.div(summed, count));

  const hidden = g.tanh(linear(g, pooled, w.tanh, "tanh_layer"));
  const sumSq = g.reduceSum(g.mul(hidden, hidden), [1], true);
  const sentenceEmbedding = g.output(
    "sentence_embedding",
    g.div(hidden, g.sqrt(g.max(sumSq, g.floats([w.l2Epsilon])))),
  );

  return {
    graph: g,
    inputs: { inputsEmbeds, attentionMask, prefixKeys, prefixValues, prefixMask, packedIndex, paddedIndex },
    outputs: { lastHiddenState, pooled, sentenceEmbedding },
  };
}

/** timing[t] = concat(sin(t·inv), cos(t·inv)) for t = 0 … seq−1, as [seq, 2·|inv|]. */
function timingSignal(g: Graph, like: Value, inv: Float32Array): Value {
  const seqLen = g.cast(g.gatherScalar(g.shapeOf(like), 1), g.float);
  const positions = g.range(g.floats([0]), seqLen, g.floats([1]), T); // [T]
  const scaled = g.mul(g.unsqueeze(positions, [1]), g.weight("timing_inv", inv, [1, inv.length])); // [T, 128]
  return g.concat([g.sin(scaled), g.cos(scaled)], 1);
}

function linear(g: Graph, x: Value, d: DenseWeights, name: string, int8 = false): Value {
  if (int8) {
    const { q, scale } = quantizePerColumn(d.kernel, d.in, d.out);
    return g.dynamicQuantizeMatMul(
      x,
      g.int8Weight(`${name}_kernel_q`, q, [d.in, d.out]),
      g.weight(`${name}_kernel_scale`, scale, [d.out]),
      g.int8Weight(`${name}_kernel_zero`, new Int8Array(d.out), [d.out]),
      g.weight(`${name}_bias`, d.bias, [d.out]),
    );
  }
  return g.add(
    g.matmul(x, g.weight(`${name}_kernel`, d.kernel, [d.in, d.out])),
    g.weight(`${name}_bias`, d.bias, [d.out]),
  );
}

function layerNorm(g: Graph, x: Value, ln: LayerNormWeights, eps: number, name: string): Value {
  const width = ln.scale.length;
  const centered = g.sub(x, g.reduceMean(x, [-1]));
  const variance = g.reduceMean(g.mul(centered, centered), [-1]);
  const normed = g.div(centered, g.sqrt(g.add(variance, g.floats([eps]))));
  return g.add(g.mul(normed, g.weight(`${name}_scale`, ln.scale, [width])), g.weight(`${name}_bias`, ln.bias, [width]));
}

/** [B, T, H·d] → [B, H, T, d] */
function splitHeads(g: Graph, x: Value, heads: number, headDim: number): Value {
  return g.transpose(g.reshape(x, [0, 0, heads, headDim], [B, T, heads, headDim]), [0, 2, 1, 3]);
}

function transformerLayer(
  g: Graph,
  x: Value,
  l: AttentionLayerWeights,
  keyBias: Value,
  eps: number,
  prefixKey: Value | null,
  prefixValue: Value | null,
  int8: boolean,
  layout: Layout,
): Value {
  const n = l.residualProjection ? 0 : 1;
  const width = l.heads * l.headDim;
  const normed = layerNorm(g, x, l.attentionNorm, eps, `l${n}_attn_ln`);
  const qkv = layout.unpack(linear(g, normed, l.qkv, `l${n}_qkv`, int8), 3 * width);
  const [qFlat, kFlat, vFlat] = g.split(qkv, -1, [width, width, width]);
  const q = g.mul(splitHeads(g, qFlat, l.heads, l.headDim), g.floats([l.queryScale]));
  let k = splitHeads(g, kFlat, l.heads, l.headDim);
  let v = splitHeads(g, vFlat, l.heads, l.headDim);
  if (prefixKey && prefixValue) {
    k = g.concat([prefixKey, k], 2);
    v = g.concat([prefixValue, v], 2);
  }
  const scores = g.add(g.matmul(q, g.transpose(k, [0, 1, 3, 2])), keyBias); // [B, H, T, K]
  const context = g.matmul(g.softmax(scores, -1), v); // [B, H, T, d]
  const merged = g.reshape(g.transpose(context, [0, 2, 1, 3]), [0, 0, width], [B, T, width]);
  const attended = linear(g, layout.pack(merged, width), l.output, `l${n}_attn_out`, int8);
  const residual = l.residualProjection ? linear(g, x, l.residualProjection, `l${n}_residual`, int8) : x;
  const h = g.add(residual, attended);

  const ffnIn = layerNorm(g, h, l.ffnNorm, eps, `l${n}_ffn_ln`);
  const ffn = linear(g, g.relu(linear(g, ffnIn, l.ffnIn, `l${n}_ffn_in`, int8)), l.ffnOut, `l${n}_ffn_out`, int8);
  return g.add(h, ffn);
}
