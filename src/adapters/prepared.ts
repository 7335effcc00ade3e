/**
 * Preparation: the input-independent half of SK-Tuning's dual forward pass. The semantic pass
 * (backbone over the prompt text, h_p = [L, H_out]) runs once per adapter version; F turns it into
 * the soft prompt [L, H_in] or the per-layer key/value prefix. The result is immutable and cached.
 */
import type { BackboneDims } from "../backbone/dims.js";
import type { AdapterFile, AdapterMetadata } from "./format.js";
import { headWidth, outputWidth, parameterCount, prefixLayout } from "./spec.js";
import { transformForward } from "./transform.js";

export interface PreparedPrefix {
  /** Prefix length L. */
  length: number;
  /** Per layer: [heads, L, headDim]. */
  keys: Float32Array[];
  values: Float32Array[];
}

export interface PreparedHead {
  weight: Float32Array; // [C, H_out]
  bias: Float32Array; // [C]
  outputs: number;
}

export interface PreparedAdapter {
  /** Unique per task version: what the cache and the batcher key on. */
  readonly key: string;
  readonly task: string;
  readonly version: number;
  readonly metadata: AdapterMetadata;
  readonly parameters: number;
  /** Memory held by the prepared tensors (the cache's byte budget counts this). */
  readonly bytes: number;
  readonly softPrompt: Float32Array | null;
  readonly prefix: PreparedPrefix | null;
  readonly head: PreparedHead;
  /** Text tokens that fit: max_length minus the soft prompt's positions (prompt variant). */
  readonly textBudget: number;
  /** The training label distribution over `metadata.labels` (see trainingDistribution), or null. */
  readonly trainingDistribution: Float64Array | null;
}

/** z = F(h_p): [L, W] with W = H_in (prompt) or Σ 2·H_attn (prefix). */
export function applyTransform(file: AdapterFile, hp: Float32Array, dims: BackboneDims): Float32Array {
  const meta = file.metadata;
  const params = { pooling: meta.pooling, length: meta.promptLength, width: outputWidth(meta.variant, dims), hidden: dims.hiddenDim };
  return transformForward(params, file.tensors, hp);
}

/** Rows of width S → per layer keys/values laid out [heads, L, headDim] as the graph wants. */
export function splitPrefix(z: Float32Array, length: number, dims: BackboneDims): PreparedPrefix {
  const S = outputWidth("prefix", dims);
  const keys: Float32Array[] = [];
  const values: Float32Array[] = [];
  for (const slice of prefixLayout(dims)) {
    const k = new Float32Array(slice.heads * length * slice.headDim);
    const v = new Float32Array(slice.heads * length * slice.headDim);
    for (let h = 0; h < slice.heads; h++) {
      for (let l = 0; l < length; l++) {
        const src = l * S + h * slice.headDim;
        const dst = (h * length + l) * slice.headDim;
        k.set(z.subarray(src + slice.keyOffset, src + slice.keyOffset + slice.headDim), dst);
        v.set(z.subarray(src + slice.valueOffset, src + slice.valueOffset + slice.headDim), dst);
      }
    }
    keys.push(k);
    values.push(v);
  }
  return { length, keys, values };
}

/**
 * Copies a prefix ([heads, L, headDim] per layer) into row `row` of per-layer [rows, heads, P,
 * headDim] arrays (P ≥ L); the positions past L are left as they are (zero in a fresh array).
 */
export function copyPrefixInto(
  prefix: PreparedPrefix,
  dims: BackboneDims,
  keys: Float32Array[],
  values: Float32Array[],
  row: number,
  P: number,
): void {
  const L = prefix.length;
  dims.layers.forEach((l, n) => {
    for (let h = 0; h < l.heads; h++) {
      const src = h * L * l.headDim;
      const dst = (row * l.heads + h) * P * l.headDim;
      keys[n].set(prefix.keys[n].subarray(src, src + L * l.headDim), dst);
      values[n].set(prefix.values[n].subarray(src, src + L * l.headDim), dst);
    }
  });
}

/**
 * The label distribution the trainer recorded (`training.label_distribution`, see train/trainer.ts),
 * as probabilities over the head's labels; null for files without one and for other problem types.
 */
export function trainingDistribution(meta: AdapterMetadata): Float64Array | null {
  if (meta.problemType !== "single_label_classification") return null;
  const recorded = meta.training?.label_distribution;
  if (typeof recorded !== "object" || recorded === null || Array.isArray(recorded)) return null;
  const values = meta.labels.map((l) => (Object.hasOwn(recorded, l) ? (recorded as Record<string, unknown>)[l] : 0));
  if (!values.every((v): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0)) return null;
  const sum = values.reduce((a, b) => a + b, 0);
  return sum > 0 ? Float64Array.from(values, (v) => v / sum) : null;
}

export function prepareAdapter(file: AdapterFile, version: number, hp: Float32Array, dims: BackboneDims): PreparedAdapter {
  return prepareFromOutput(file, version, applyTransform(file, hp, dims), dims);
}

/** A prepared adapter from F's output z [L, W] (the trainer passes z with its dropout applied). */
export function prepareFromOutput(file: AdapterFile, version: number, z: Float32Array, dims: BackboneDims): PreparedAdapter {
  const meta = file.metadata;
  const softPrompt = meta.variant === "prompt" ? z : null;
  const prefix = meta.variant === "prefix" ? splitPrefix(z, meta.promptLength, dims) : null;
  const head: PreparedHead = {
    weight: Float32Array.from(file.tensors["head.weight"].data),
    bias: Float32Array.from(file.tensors["head.bias"].data),
    outputs: headWidth(meta),
  };
  const tensorBytes = (softPrompt?.byteLength ?? 0)
    + (prefix ? [...prefix.keys, ...prefix.values].reduce((s, a) => s + a.byteLength, 0) : 0)
    + head.weight.byteLength + head.bias.byteLength;
  // Serving never reads the free-form training summary (the admin view reads it from the file), so
  // a cached adapter does not hold it; what it does hold is counted against the cache's budget.
  const { training: _training, ...served } = meta;
  const training = trainingDistribution(meta); // the one part of it serving reads (drift, src/quality.ts)
  return Object.freeze({
    key: `${meta.task}@v${version}`,
    task: meta.task,
    version,
    metadata: Object.freeze(served),
    parameters: parameterCount(meta, dims),
    bytes: tensorBytes + metadataBytes(served) + (training?.byteLength ?? 0),
    trainingDistribution: training,
    softPrompt,
    prefix,
    head: Object.freeze(head),
    textBudget: meta.variant === "prompt" ? meta.maxLength - meta.promptLength : meta.maxLength,
  });
}

/** Heap held by the metadata strings (UTF-16, two bytes per code unit) plus the objects around them. */
function metadataBytes(meta: AdapterMetadata): number {
  let units = meta.task.length + meta.promptText.length + meta.backbone.length + meta.backboneFingerprint.length;
  for (const label of meta.labels) units += label.length + 16;
  return 2 * units + 1024;
}

export interface HeadOutput {
  label?: string;
  score?: number;
  scores?: Record<string, number>;
  value?: number;
}

/**
 * The row's head on its pooled state: softmax, sigmoid or the raw value by problem type. Logits are
 * float64 sums of float32 products, so they are finite whenever the pooled state is; the shifted
 * softmax and the two-sided sigmoid then stay finite for any finite logit.
 */
export function applyHead(adapter: PreparedAdapter, pooled: Float32Array): HeadOutput {
  const { weight, bias, outputs } = adapter.head;
  const H = pooled.length;
  const logits = new Float64Array(outputs);
  for (let c = 0; c < outputs; c++) {
    let s = bias[c];
    for (let i = 0; i < H; i++) s += weight[c * H + i] * pooled[i];
    logits[c] = s;
  }
  const meta = adapter.metadata;
  if (meta.problemType === "regression") return { value: logits[0] };
  const probs = meta.problemType === "multi_label_classification" ? logits.map(sigmoid) : softmax(logits);
  let best = 0;
  for (let c = 1; c < outputs; c++) if (probs[c] > probs[best]) best = c;
  // No prototype: a label may be named "__proto__", which an ordinary object would swallow.
  const scores: Record<string, number> = Object.create(null) as Record<string, number>;
  meta.labels.forEach((label, c) => (scores[label] = probs[c]));
  return { label: meta.labels[best], score: probs[best], scores };
}

/** True when every number in the output is finite (what the response schema promises). */
export function isFiniteOutput(out: HeadOutput): boolean {
  if (out.value !== undefined && !Number.isFinite(out.value)) return false;
  if (out.score !== undefined && !Number.isFinite(out.score)) return false;
  return Object.values(out.scores ?? {}).every(Number.isFinite);
}

/**
 * The log-sum-exp shift: exp(x − max) / Σ exp(x − max). No exp of a positive number (no overflow)
 * and a sum of at least 1 (no division by zero) for any finite logits; dividing rather than
 * subtracting log Σ keeps full precision when the logits are large.
 */
export function softmax(logits: Float64Array): Float64Array {
  let max = -Infinity;
  for (const x of logits) if (x > max) max = x;
  const e = logits.map((x) => Math.exp(x - max));
  let sum = 0;
  for (const x of e) sum += x;
  return e.map((x) => x / sum);
}

/** 1 / (1 + e^−x), computed from e^−|x| so that neither side overflows. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}
