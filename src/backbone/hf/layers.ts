/**
 * Building blocks the Hugging Face families share, written against the graph builder. The `fused`
 * forms emit onnxruntime's fused operators (contrib ops in com.microsoft, and ONNX's
 * LayerNormalization): for serving graphs only, as the reverse mode has no rules for them.
 */
import type { Graph, Value } from "../graph/graph.js";
import { CONTRIB_DOMAIN } from "../graph/onnx.js";

/** A torch Linear: weight [out, in] row-major, optional bias [out]. */
export interface LinearWeights {
  weight: Float32Array;
  bias: Float32Array | null;
  in: number;
  out: number;
}

/** [in, out] copy of a torch [out, in] weight, so the graph computes x·Wᵀ with one MatMul. */
function transposed(w: LinearWeights): Float32Array {
  const t = new Float32Array(w.in * w.out);
  for (let o = 0; o < w.out; o++) for (let i = 0; i < w.in; i++) t[i * w.out + o] = w.weight[o * w.in + i];
  return t;
}

/** x·Wᵀ and the bias kept apart, for fused operators that add the bias themselves. */
export function linearParts(
  g: Graph,
  x: Value,
  w: LinearWeights,
  name: string,
): { product: Value; bias: Value | null } {
  return {
    product: g.matmul(x, g.weight(`${name}_weight`, transposed(w), [w.in, w.out])),
    bias: w.bias ? g.weight(`${name}_bias`, w.bias, [w.out]) : null,
  };
}

export function linear(g: Graph, x: Value, w: LinearWeights, name: string): Value {
  const { product, bias } = linearParts(g, x, w, name);
  return bias ? g.add(product, bias) : product;
}

const eps32 = (eps: number) => ({ float: eps });

/** ONNX LayerNormalization (opset 17) over the last axis. */
function layerNormOp(g: Graph, x: Value, scale: Value, bias: Value, eps: number): Value {
  return g.record("LayerNormalization", [x, scale, bias], { axis: -1, epsilon: eps32(eps) }, [
    { name: "layernorm", dtype: x.dtype, shape: x.shape },
  ])[0];
}

export function layerNorm(
  g: Graph,
  x: Value,
  scale: Float32Array,
  bias: Float32Array,
  eps: number,
  name: string,
  fused = false,
): Value {
  if (fused)
    return layerNormOp(
      g,
      x,
      g.weight(`${name}_scale`, scale, [scale.length]),
      g.weight(`${name}_bias`, bias, [bias.length]),
      eps,
    );
  const centered = g.sub(x, g.reduceMean(x, [-1]));
  const variance = g.reduceMean(g.mul(centered, centered), [-1]);
  const normed = g.div(centered, g.sqrt(g.add(variance, g.floats([eps]))));
  return g.add(
    g.mul(normed, g.weight(`${name}_scale`, scale, [scale.length])),
    g.weight(`${name}_bias`, bias, [bias.length]),
  );
}

/**
 * LayerNorm(residual + x·Wᵀ + b), the post-LayerNorm residual of BERT's blocks. Fused: one
 * SkipLayerNormalization (input x·Wᵀ, skip the residual, its bias input b).
 */
export function residualLayerNorm(
  g: Graph,
  residual: Value,
  x: Value,
  w: LinearWeights,
  norm: { scale: Float32Array; bias: Float32Array },
  eps: number,
  name: string,
  fused: boolean,
): Value {
  const { product, bias } = linearParts(g, x, w, name);
  if (!fused)
    return layerNorm(
      g,
      g.add(residual, bias ? g.add(product, bias) : product),
      norm.scale,
      norm.bias,
      eps,
      `${name}_ln`,
    );
  const gamma = g.weight(`${name}_ln_scale`, norm.scale, [norm.scale.length]);
  const beta = g.weight(`${name}_ln_bias`, norm.bias, [norm.bias.length]);
  return g.record(
    "SkipLayerNormalization",
    [product, residual, gamma, beta, ...(bias ? [bias] : [])],
    { epsilon: eps32(eps) },
    [{ name: "skip_layernorm", dtype: product.dtype, shape: product.shape }],
    CONTRIB_DOMAIN,
  )[0];
}

/** Llama's RMSNorm: x / sqrt(mean(x²) + eps) · scale. Fused: SimplifiedLayerNormalization. */
export function rmsNorm(g: Graph, x: Value, scale: Float32Array, eps: number, name: string, fused = false): Value {
  if (fused) {
    // Registered by onnxruntime in the ONNX domain (since version 1), not in com.microsoft.
    return g.record(
      "SimplifiedLayerNormalization",
      [x, g.weight(`${name}_scale`, scale, [scale.length])],
      { axis: -1, epsilon: eps32(eps), stash_type: 1 },
      [{ name: "rmsnorm", dtype: x.dtype, shape: x.shape }],
    )[0];
  }
  const meanSquare = g.reduceMean(g.mul(x, x), [-1]);
  return g.mul(g.div(x, g.sqrt(g.add(meanSquare, g.floats([eps])))), g.weight(`${name}_scale`, scale, [scale.length]));
}

/**
 * erf. onnxruntime has no float64 Erf kernel, so float64 graphs (built only for gradient checks)
 * use Abramowitz & Stegun 7.1.26 (|error| ≤ 1.5e-7), written with differentiable ops.
 */
function erf(g: Graph, x: Value): Value {
  if (g.float === "float32") return g.erf(x);
  const abs = g.sqrt(g.mul(x, x));
  const t = g.div(g.floats([1]), g.add(g.floats([1]), g.mul(abs, g.floats([0.3275911]))));
  let poly = g.floats([1.061405429]);
  for (const a of [-1.453152027, 1.421413741, -0.284496736, 0.254829592]) poly = g.add(g.mul(poly, t), g.floats([a]));
  const tail = g.mul(g.mul(poly, t), g.exp(g.neg(g.mul(x, x))));
  return g.mul(g.div(x, abs), g.sub(g.floats([1]), tail));
}

/** GELU: erf form (Hugging Face "gelu") or the tanh approximation ("gelu_new", "gelu_pytorch_tanh"). */
export function gelu(g: Graph, x: Value, kind: "gelu_erf" | "gelu_tanh"): Value {
  const half = g.mul(x, g.floats([0.5]));
  if (kind === "gelu_erf") return g.mul(half, g.add(g.floats([1]), erf(g, g.mul(x, g.floats([Math.SQRT1_2])))));
  const cubic = g.add(x, g.mul(g.mul(g.mul(x, x), x), g.floats([0.044715])));
  return g.mul(half, g.add(g.floats([1]), g.tanh(g.mul(cubic, g.floats([Math.sqrt(2 / Math.PI)])))));
}

/**
 * The residual step of pre-norm decoders: sum = residual + delta, normed = RMSNorm(sum). Fused:
 * SkipSimplifiedLayerNormalization, whose fourth output is the sum (the second and third, mean and
 * inverse standard deviation, are named but not produced by the CPU kernel and never read).
 */
export function residualRmsNorm(
  g: Graph,
  residual: Value,
  delta: Value,
  scale: Float32Array,
  eps: number,
  name: string,
  fused: boolean,
): { normed: Value; sum: Value } {
  if (!fused) {
    const sum = g.add(residual, delta);
    return { normed: rmsNorm(g, sum, scale, eps, name), sum };
  }
  const stat = { dtype: delta.dtype, shape: [...delta.shape.slice(0, -1), 1] };
  const [normed, , , sum] = g.record(
    "SkipSimplifiedLayerNormalization",
    [delta, residual, g.weight(`${name}_scale`, scale, [scale.length])],
    { epsilon: eps32(eps) },
    [
      { name: "skip_rmsnorm", dtype: delta.dtype, shape: delta.shape },
      { name: "skip_rmsnorm_mean", ...stat },
      { name: "skip_rmsnorm_inv_std", ...stat },
      { name: "skip_rmsnorm_sum", dtype: delta.dtype, shape: delta.shape },
    ],
    CONTRIB_DOMAIN,
  );
  return { normed, sum };
}

/**
 * GELU(x·Wᵀ + b). Fused: BiasGelu (erf; Gelu without a bias) or FastGelu (tanh form, with its
 * optional bias input), onnxruntime's contrib ops.
 */
export function geluLinear(
  g: Graph,
  x: Value,
  w: LinearWeights,
  kind: "gelu_erf" | "gelu_tanh",
  name: string,
  fused: boolean,
): Value {
  const { product, bias } = linearParts(g, x, w, name);
  if (!fused) return gelu(g, bias ? g.add(product, bias) : product, kind);
  const type = kind === "gelu_tanh" ? "FastGelu" : bias ? "BiasGelu" : "Gelu";
  return g.record(
    type,
    [product, ...(bias ? [bias] : [])],
    {},
    [{ name: type.toLowerCase(), dtype: product.dtype, shape: product.shape }],
    CONTRIB_DOMAIN,
  )[0];
}

export function silu(g: Graph, x: Value): Value {
  return g.mul(x, g.sigmoid(x));
}

/** [B, T, heads·d] → [B, heads, T, d] */
export function splitHeads(g: Graph, x: Value, heads: number, headDim: number): Value {
  const [B, T] = x.shape;
  return g.transpose(g.reshape(x, [0, 0, heads, headDim], [B, T, heads, headDim]), [0, 2, 1, 3]);
}

/** [B, heads, T, d] → [B, T, heads·d] */
export function mergeHeads(g: Graph, x: Value, heads: number, headDim: number): Value {
  const [B, , T] = x.shape;
  return g.reshape(g.transpose(x, [0, 2, 1, 3]), [0, 0, heads * headDim], [B, T, heads * headDim]);
}

/** Added to masked attention scores; exp() of it underflows to exactly 0 like Hugging Face's finfo.min. */
export const MASKED = -1e9;

/**
 * softmax(q·kᵀ/√d + bias)·v with grouped-query attention: q has `heads` heads, k and v have
 * `kvHeads`, and query head h reads key/value head ⌊h / (heads / kvHeads)⌋ (Hugging Face's
 * repeat_kv). Folding each group's query heads into the row axis lets one MatMul serve the
 * group without copying k and v. `bias` broadcasts against [B, heads, T, K].
 */
export function attention(
  g: Graph,
  q: Value,
  k: Value,
  v: Value,
  bias: Value,
  heads: number,
  kvHeads: number,
  headDim: number,
): Value {
  const [B, , T, d] = q.shape;
  const K = k.shape[2];
  const scaled = g.mul(q, g.floats([1 / Math.sqrt(headDim)]));
  if (heads === kvHeads) {
    const probs = g.softmax(g.add(g.matmul(scaled, g.transpose(k, [0, 1, 3, 2])), bias), -1);
    return g.matmul(probs, v);
  }
  const grouped = `${heads / kvHeads}*${String(T)}`;
  const qGroups = g.reshape(scaled, [0, kvHeads, -1, headDim], [B, kvHeads, grouped, d]);
  const scores = g.reshape(g.matmul(qGroups, g.transpose(k, [0, 1, 3, 2])), [0, heads, -1, 0], [B, heads, T, K]);
  const probs = g.reshape(g.softmax(g.add(scores, bias), -1), [0, kvHeads, -1, 0], [B, kvHeads, grouped, K]);
  return g.reshape(g.matmul(probs, v), [0, heads, -1, headDim], [B, heads, T, d]);
}

/** [B, 1, 1, K] bias: 0 where `keyMask` (float [B, K]) is 1, MASKED where it is 0. */
export function keyPaddingBias(g: Graph, keyMask: Value): Value {
  return g.unsqueeze(g.mul(g.sub(g.floats([1]), keyMask), g.floats([MASKED])), [1, 2]);
}

/** Mean of `hidden` [B, T, H] over the positions where `mask` (float [B, T]) is 1; all-padding rows pool to 0. */
export function maskedMean(g: Graph, hidden: Value, mask: Value): Value {
  const summed = g.reduceSum(g.mul(hidden, g.unsqueeze(mask, [2])), [1], false);
  const count = g.max(g.reduceSum(mask, [1], true), g.floats([1]));
  return g.div(summed, count);
}
