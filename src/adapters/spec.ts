/**
 * The shape rules of an SK-Tuning adapter: which tensors a file must hold and how big each one is,
 * given its metadata and the backbone's widths. The file reader, the writer, the trainer and the
 * preparation step all ask this module, so the rules live in one place.
 *
 * Tensors follow the PyTorch Linear convention (weight is [out, in]). Notation:
 *   H_in  = dims.embedDim   (soft-prompt width)
 *   H_out = dims.hiddenDim  (last hidden state width)
 *   L     = prompt_length   (tokens of the prompt text)
 *   S     = prefixWidth(dims) = Σ_layers 2·heads·headDim (one prompt token's key+value prefix)
 *   C     = labels.length for classification, 1 for regression
 *
 * Prefix row layout. A prefix row of width S (one prompt position) is the concatenation, in layer
 * order, of [layer0 key, layer0 value, layer1 key, layer1 value, ...]; each key or value block has
 * heads·headDim elements laid out head-major: element h·headDim + d is dimension d of head h.
 * `prefixLayout` gives the offsets.
 */
import { prefixWidth, type BackboneDims } from "../backbone/dims.js";

export const ADAPTER_FORMAT = "sk-tuning-adapter";
export const ADAPTER_FORMAT_VERSION = "1";
/** Longest prompt text, in backbone tokens. */
export const MAX_PROMPT_LENGTH = 64;
/** Longest prompt text in UTF-16 code units and in UTF-8 bytes, checked before it is tokenized. */
export const MAX_PROMPT_TEXT_CHARS = 1024;
export const MAX_PROMPT_TEXT_BYTES = 2048;
/** JS `$` (without the `m` flag) only matches at the very end, so a trailing "\n" is refused too. */
export const TASK_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** TASK_NAME_PATTERN in words, for error messages. */
export const TASK_NAME_RULE = '1-64 characters from a-z, 0-9, "_" and "-", starting with a letter or digit';
export const FINGERPRINT_PATTERN = /^[0-9a-f]{64}$/;

export const VARIANTS = ["prompt", "prefix"] as const;
export type Variant = (typeof VARIANTS)[number];

export const PROBLEM_TYPES = [
  "single_label_classification",
  "multi_label_classification",
  "regression",
] as const;
export type ProblemType = (typeof PROBLEM_TYPES)[number];

/** The metadata fields that decide tensor shapes (AdapterMetadata satisfies this). */
export interface ShapeParams {
  variant: Variant;
  pooling: boolean;
  promptLength: number;
  problemType: ProblemType;
  labels: readonly string[];
}

/** C: the head's output width. */
export function headWidth(meta: ShapeParams): number {
  return meta.problemType === "regression" ? 1 : meta.labels.length;
}

/** Width of what F produces per prompt position: H_in (prompt) or S (prefix). */
export function outputWidth(variant: Variant, dims: BackboneDims): number {
  return variant === "prompt" ? dims.embedDim : prefixWidth(dims);
}

/** Every tensor the adapter must hold, by name, with its exact shape. */
export function expectedShapes(meta: ShapeParams, dims: BackboneDims): Record<string, number[]> {
  const L = meta.promptLength;
  const W = outputWidth(meta.variant, dims);
  const C = headWidth(meta);
  const H = dims.hiddenDim;
  const shapes: Record<string, number[]> = meta.pooling
    ? { "pool.weight": [1, H], "pool.bias": [1], "proj.weight": [L * W, L], "proj.bias": [L * W] }
    : { "proj.weight": [W, H], "proj.bias": [W] };
  shapes["head.weight"] = [C, H];
  shapes["head.bias"] = [C];
  return shapes;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** Trainable parameters of the adapter (all tensors). */
export function parameterCount(meta: ShapeParams, dims: BackboneDims): number {
  return Object.values(expectedShapes(meta, dims)).reduce((n, s) => n + numel(s), 0);
}

/**
 * Why a tensor has the shape it has, in words a user can act on (used in shape_mismatch errors).
 */
export function describeShape(name: string, meta: ShapeParams, dims: BackboneDims): string {
  const L = meta.promptLength;
  const C = headWidth(meta);
  const W = outputWidth(meta.variant, dims);
  const wName = meta.variant === "prompt" ? "H_in" : "S";
  const wWhy =
    meta.variant === "prompt"
      ? `H_in = ${W} is the backbone's token-embedding width`
      : `S = ${W} is the backbone's prefix width (sum over layers of 2·heads·headDim)`;
  const form = `${meta.variant} variant, ${meta.pooling ? "pooling" : "non-pooling"}`;
  const H = `H_out = ${dims.hiddenDim} is the backbone's hidden width`;
  switch (name) {
    case "pool.weight":
      return `pool.weight is [1, H_out]: ${H}`;
    case "pool.bias":
      return "pool.bias is [1]";
    case "proj.weight":
      return meta.pooling
        ? `${form}: proj.weight is [L·${wName}, L] with L = prompt_length = ${L}; ${wWhy}`
        : `${form}: proj.weight is [${wName}, H_out]; ${wWhy}; ${H}`;
    case "proj.bias":
      return meta.pooling
        ? `${form}: proj.bias is [L·${wName}] with L = prompt_length = ${L}; ${wWhy}`
        : `${form}: proj.bias is [${wName}]; ${wWhy}`;
    case "head.weight":
      return `head.weight is [C, H_out] with C = ${C} (${headWhy(meta)}); ${H}`;
    case "head.bias":
      return `head.bias is [C] with C = ${C} (${headWhy(meta)})`;
    default:
      return `${name} is not part of a ${form} adapter`;
  }
}

function headWhy(meta: ShapeParams): string {
  return meta.problemType === "regression" ? "regression has one output" : `number of labels`;
}

export interface PrefixSlice {
  layer: number;
  heads: number;
  headDim: number;
  /** Start of this layer's key block within a prefix row of width S. */
  keyOffset: number;
  /** Start of this layer's value block (keyOffset + heads·headDim). */
  valueOffset: number;
}

/** Where each layer's key and value live within one prefix row (see the module comment). */
export function prefixLayout(dims: BackboneDims): PrefixSlice[] {
  let offset = 0;
  return dims.layers.map((l, layer) => {
    const width = l.heads * l.headDim;
    const slice = { layer, heads: l.heads, headDim: l.headDim, keyOffset: offset, valueOffset: offset + width };
    offset += 2 * width;
    return slice;
  });
}
