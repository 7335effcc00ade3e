/**
 * Symmetric int8 quantization of a weight matrix, one scale per output column, done once at build
 * time. The int8 graphs feed these to onnxruntime's DynamicQuantizeMatMul, which quantizes the
 * activations to uint8 per tensor at run time.
 */

/**
 * Largest weight magnitude after quantization. 63, not 127 ("reduce range"): on AVX2 onnxruntime
 * multiplies uint8 activations by int8 weights with VPMADDUBSW, which saturates its int16 pair sums
 * when 2 · 255 · |w| > 32767; with |w| ≤ 63 (2 · 255 · 63 = 32130) it cannot.
 */
export const INT8_WEIGHT_MAX = 63;

export interface QuantizedMatrix {
  /** [rows, cols] row-major, |q| ≤ INT8_WEIGHT_MAX. */
  q: Int8Array;
  /** [cols]: w ≈ q · scale. */
  scale: Float32Array;
}

/** Quantizes `w` ([rows, cols] row-major) per column. An all-zero column gets scale 1 (q = 0). */
export function quantizePerColumn(
  w: ArrayLike<number>,
  rows: number,
  cols: number,
  max = INT8_WEIGHT_MAX,
): QuantizedMatrix {
  if (w.length !== rows * cols)
    throw new Error(`quantize: ${w.length} values, [${rows}, ${cols}] needs ${rows * cols}`);
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) scale[c] = Math.max(scale[c], Math.abs(w[r * cols + c]));
  for (let c = 0; c < cols; c++) scale[c] = scale[c] > 0 ? scale[c] / max : 1;
  const q = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      q[r * cols + c] = Math.max(-max, Math.min(max, Math.round(w[r * cols + c] / scale[c])));
  return { q, scale };
}
