/** Maps USE-lite's TF graph weight names to the named, squeezed parameters the network uses. */
import { weightBySuffix, type PackageWeight } from "./package-source.js";

export interface DenseWeights {
  kernel: Float32Array; // [in, out], row-major
  bias: Float32Array; // [out]
  in: number;
  out: number;
}

export interface LayerNormWeights {
  scale: Float32Array;
  bias: Float32Array;
}

export interface AttentionLayerWeights {
  heads: number;
  headDim: number;
  /** Scale applied to queries (0.125 in layer 0, 1/√128 in layer 1), read from the graph. */
  queryScale: number;
  attentionNorm: LayerNormWeights;
  qkv: DenseWeights;
  output: DenseWeights;
  /** Layer 0 widens the residual 256 → 512 with its own projection; layer 1 has none. */
  residualProjection: DenseWeights | null;
  ffnNorm: LayerNormWeights;
  ffnIn: DenseWeights;
  ffnOut: DenseWeights;
}

export interface UseLiteWeights {
  embeddings: Float32Array; // [vocab, embedDim]
  vocabSize: number;
  embedDim: number;
  /** 128 inverse timescales of the sinusoidal timing signal. */
  timingInv: Float32Array;
  layers: AttentionLayerWeights[];
  tanh: DenseWeights;
  /** ε of the final l2_normalize (max(Σx², ε)). */
  l2Epsilon: number;
  /** Additive bias for padded keys (−1e9 in the graph). */
  paddingBias: number;
  layerNormEpsilon: number;
}

const ENC = "Encoder_en/KonaTransformer/Encode";

function f32(w: PackageWeight): Float32Array {
  if (w.dtype !== "float32") throw new Error(`USE-lite weights: ${w.name} is ${w.dtype}, expected float32`);
  return w.data as Float32Array;
}

function dense(weights: Map<string, PackageWeight>, kernelSuffix: string, biasSuffix: string): DenseWeights {
  const k = weightBySuffix(weights, kernelSuffix);
  const b = weightBySuffix(weights, biasSuffix);
  const dims = k.shape.filter((_, i) => i >= k.shape.length - 2); // squeeze [1,1,in,out] to [in,out]
  if (b.shape[0] !== dims[1]) throw new Error(`USE-lite weights: bias ${b.name} does not match ${k.name}`);
  return { kernel: f32(k), bias: f32(b), in: dims[0], out: dims[1] };
}

function layerNorm(weights: Map<string, PackageWeight>, prefix: string): LayerNormWeights {
  return {
    scale: f32(weightBySuffix(weights, `${prefix}/layer_norm/layer_norm_scale/ConcatPartitions/concat`)),
    bias: f32(weightBySuffix(weights, `${prefix}/layer_norm/layer_norm_bias/ConcatPartitions/concat`)),
  };
}

function scalar(weights: Map<string, PackageWeight>, suffix: string): number {
  return f32(weightBySuffix(weights, suffix))[0];
}

function attentionLayer(weights: Map<string, PackageWeight>, n: number): AttentionLayerWeights {
  const layer = `${ENC}/Layer_${n}/TransformerLayer`;
  const stack = `${ENC}/TransformerStack/Layer_${n}/TransformerLayer`;
  const qkv = dense(
    weights,
    `${layer}/MultiheadAttention/qkv_transform_single/kernel/part_0`,
    `${layer}/MultiheadAttention/qkv_transform_single/bias/ConcatPartitions/concat`,
  );
  const width = qkv.out / 3;
  const heads = 4;
  return {
    heads,
    headDim: width / heads,
    queryScale: scalar(weights, `${stack}/MultiheadAttention/mul/y`),
    attentionNorm: layerNorm(weights, `${layer}/layer_prepostprocess`),
    qkv,
    output: dense(
      weights,
      `${layer}/MultiheadAttention/output_transform_single/kernel/part_0`,
      `${layer}/MultiheadAttention/output_transform_single/bias/ConcatPartitions/concat`,
    ),
    residualProjection:
      n === 0
        ? dense(weights, `${layer}/dense/kernel/ConcatPartitions/concat`, `${layer}/dense/bias/ConcatPartitions/concat`)
        : null,
    ffnNorm: layerNorm(weights, `${layer}/FFN/layer_prepostprocess`),
    ffnIn: dense(weights, `${stack}/FFN/conv1/Tensordot/Reshape_1`, `${layer}/FFN/conv1/bias/ConcatPartitions/concat`),
    ffnOut: dense(weights, `${stack}/FFN/conv2/Tensordot/Reshape_1`, `${layer}/FFN/conv2/bias/ConcatPartitions/concat`),
  };
}

export function mapUseLiteWeights(weights: Map<string, PackageWeight>): UseLiteWeights {
  const emb = weightBySuffix(weights, "module/Embeddings_en");
  return {
    embeddings: f32(emb),
    vocabSize: emb.shape[0],
    embedDim: emb.shape[1],
    timingInv: f32(
      weightBySuffix(weights, `${ENC}/TransformerStack/Layer_0/AddTimingSignal/TimingSignal/ExpandDims_1`),
    ),
    layers: [attentionLayer(weights, 0), attentionLayer(weights, 1)],
    tanh: dense(
      weights,
      "module/Encoder_en/hidden_layers/tanh_layer_0/weights",
      "module/Encoder_en/hidden_layers/tanh_layer_0/bias",
    ),
    l2Epsilon: scalar(weights, "hidden_layers/l2_normalize/Maximum/y"),
    paddingBias: scalar(
      weights,
      "Layer_1/TransformerLayer/MultiheadAttention/DotProductAttention/attention_bias_ignore_padding/mul/y",
    ),
    layerNormEpsilon: 1e-6,
  };
}
