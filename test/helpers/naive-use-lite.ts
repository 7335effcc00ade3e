/**
 * A deliberately naive USE-lite (plain loops, Float64Array, one unpadded sequence): the oracle for
 * what the TF.js package cannot check (soft-prompt rows, key/value prefixes). It is itself checked
 * against TF.js in the backbone tests.
 */
import type {
  AttentionLayerWeights,
  DenseWeights,
  LayerNormWeights,
  UseLiteWeights,
} from "../../src/backbone/use-lite/weights.js";

export type Matrix = Float64Array[]; // rows

export interface NaivePrefix {
  /** Per layer, per head: P rows of headDim. */
  keys: Matrix[][];
  values: Matrix[][];
}

export interface NaiveOutputs {
  lastHiddenState: Matrix;
  pooled: Float64Array;
  sentenceEmbedding: Float64Array;
}

function dense(x: Matrix, d: DenseWeights): Matrix {
  return x.map((row) => {
    const out = new Float64Array(d.out);
    for (let o = 0; o < d.out; o++) {
      let s = d.bias[o];
      for (let i = 0; i < d.in; i++) s += row[i] * d.kernel[i * d.out + o];
      out[o] = s;
    }
    return out;
  });
}

function layerNorm(x: Matrix, ln: LayerNormWeights, eps: number): Matrix {
  return x.map((row) => {
    const n = row.length;
    let mean = 0;
    for (const v of row) mean += v / n;
    let variance = 0;
    for (const v of row) variance += (v - mean) ** 2 / n;
    const inv = 1 / Math.sqrt(variance + eps);
    return row.map((v, i) => (v - mean) * inv * ln.scale[i] + ln.bias[i]);
  });
}

function attentionLayer(
  x: Matrix,
  l: AttentionLayerWeights,
  eps: number,
  prefixK: Matrix[] | null,
  prefixV: Matrix[] | null,
): Matrix {
  const T = x.length;
  const width = l.heads * l.headDim;
  const qkv = dense(layerNorm(x, l.attentionNorm, eps), l.qkv);
  const merged: Matrix = Array.from({ length: T }, () => new Float64Array(width));
  for (let h = 0; h < l.heads; h++) {
    const col = (t: number, part: number, d: number) => qkv[t][part * width + h * l.headDim + d];
    const keys: Float64Array[] = [...(prefixK?.[h] ?? [])];
    const values: Float64Array[] = [...(prefixV?.[h] ?? [])];
    for (let t = 0; t < T; t++) {
      keys.push(Float64Array.from({ length: l.headDim }, (_, d) => col(t, 1, d)));
      values.push(Float64Array.from({ length: l.headDim }, (_, d) => col(t, 2, d)));
    }
    for (let t = 0; t < T; t++) {
      const scores = keys.map((k) => {
        let s = 0;
        for (let d = 0; d < l.headDim; d++) s += col(t, 0, d) * l.queryScale * k[d];
        return s;
      });
      const max = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - max));
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < l.headDim; d++) {
        let s = 0;
        for (let j = 0; j < keys.length; j++) s += (e[j] / z) * values[j][d];
        merged[t][h * l.headDim + d] = s;
      }
    }
  }
  const attended = dense(merged, l.output);
  const residual = l.residualProjection ? dense(x, l.residualProjection) : x;
  const h = residual.map((r, t) => r.map((v, i) => v + attended[t][i]));
  const ffn = dense(
    dense(layerNorm(h, l.ffnNorm, eps), l.ffnIn).map((r) => r.map((v) => Math.max(0, v))),
    l.ffnOut,
  );
  return h.map((r, t) => r.map((v, i) => v + ffn[t][i]));
}

/** `embeds`: T rows of width 256 (token-table rows or soft-prompt rows), no padding. */
export function naiveUseLite(w: UseLiteWeights, embeds: Matrix, prefix?: NaivePrefix): NaiveOutputs {
  const half = w.timingInv.length;
  let x: Matrix = embeds.map((row, t) =>
    Float64Array.from(
      { length: w.embedDim },
      (_, i) => 2 * row[i] + (i < half ? Math.sin(t * w.timingInv[i]) : Math.cos(t * w.timingInv[i - half])),
    ),
  );
  w.layers.forEach((l, n) => {
    x = attentionLayer(x, l, w.layerNormEpsilon, prefix?.keys[n] ?? null, prefix?.values[n] ?? null);
  });
  const H = x[0].length;
  const pooled = new Float64Array(H);
  for (const row of x) for (let i = 0; i < H; i++) pooled[i] += row[i] / x.length;
  const hidden = dense([pooled], w.tanh)[0].map(Math.tanh);
  const norm = Math.sqrt(
    Math.max(
      hidden.reduce((s, v) => s + v * v, 0),
      w.l2Epsilon,
    ),
  );
  return { lastHiddenState: x, pooled, sentenceEmbedding: hidden.map((v) => v / norm) };
}

export function tokenRows(w: UseLiteWeights, ids: number[]): Matrix {
  return ids.map((id) => Float64Array.from(w.embeddings.subarray(id * w.embedDim, (id + 1) * w.embedDim)));
}
