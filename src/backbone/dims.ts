/** Widths of the embedded backbone that adapters must agree with. */
export interface AttentionLayerDims {
  heads: number;
  headDim: number;
}

export interface BackboneDims {
  /** Rows of the token-embedding table. */
  vocabSize: number;
  /** Width of token embeddings, H_in (soft-prompt width). */
  embedDim: number;
  /** Width of the last hidden state, H_out. */
  hiddenDim: number;
  /** The graph clips inputs to this many positions (soft prompt + text). */
  maxPositions: number;
  /** Per attention layer: heads × headDim = that layer's key/value width. */
  layers: AttentionLayerDims[];
}

export const USE_LITE_DIMS: BackboneDims = Object.freeze({
  vocabSize: 8002,
  embedDim: 256,
  hiddenDim: 512,
  maxPositions: 128,
  layers: Object.freeze([
    Object.freeze({ heads: 4, headDim: 64 }),
    Object.freeze({ heads: 4, headDim: 128 }),
  ]) as AttentionLayerDims[],
});

/** Σ over layers of 2·heads·headDim: the width of one prompt token's key+value prefix. */
export function prefixWidth(dims: BackboneDims): number {
  return dims.layers.reduce((s, l) => s + 2 * l.heads * l.headDim, 0);
}
