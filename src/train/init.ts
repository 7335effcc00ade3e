/**
 * Initial adapter tensors for each training method:
 *  - "sk": SK-Tuning. F initialised like PyTorch's Linear (the authors' code). For the prompt
 *    variant the default `token-scale` then rescales F's projection so soft-prompt rows start with
 *    the norm of real token rows (sk-tuning.md: the authors' init gives rows ≈ 7× too large, and
 *    rescaling them raised accuracy).
 *  - "prompt-tuning": plain prompt tuning expressed in the same file format — F's weights are zero
 *    and frozen and proj.bias, a free [L, H_in] soft prompt, is all that trains; initialised at
 *    random (token-sized rows) or from the prompt's own token embeddings E(p).
 *  - "probe": a linear head on the frozen pooled state, no adapter input (study baseline only).
 */
import type { AdapterTensor } from "../adapters/format.js";
import { expectedShapes, numel, type ShapeParams } from "../adapters/spec.js";
import type { BackboneDims } from "../backbone/dims.js";
import { transformForward } from "../adapters/transform.js";
import type { Rng } from "./rng.js";

export type TrainMethod = "sk" | "prompt-tuning" | "probe";
export type InitScheme = "token-scale" | "authors" | "random" | "embedding";

/** The initialisation each method and variant trains best from (the CLI's default for --init). */
export function defaultInit(method: TrainMethod, variant: "prompt" | "prefix"): InitScheme {
  return method === "prompt-tuning" ? "random" : variant === "prompt" ? "token-scale" : "authors";
}

export interface InitContext {
  meta: ShapeParams;
  dims: BackboneDims;
  rng: Rng;
  method: TrainMethod;
  init: InitScheme;
  /** Semantic pass h_p [L, H_out]. */
  hp: Float32Array;
  /** The prompt's token-embedding rows E(p) [L, H_in]. */
  promptEmbeds: Float32Array;
  /** Mean norm of a token-embedding row. */
  tokenNorm: number;
}

function uniform(rng: Rng, n: number, bound: number): Float32Array {
  return Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * bound);
}

function meanRowNorm(z: Float32Array, width: number): number {
  let total = 0;
  const rows = z.length / width;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let i = 0; i < width; i++) s += z[r * width + i] ** 2;
    total += Math.sqrt(s);
  }
  return total / rows;
}

/** PyTorch Linear default: U(±1/√fan_in) for weight and bias. */
function linearInit(shapes: Record<string, number[]>, rng: Rng): Record<string, AdapterTensor> {
  const fanIn: Record<string, number> = {
    "pool.weight": shapes["pool.weight"]?.[1] ?? 0,
    "pool.bias": shapes["pool.weight"]?.[1] ?? 0,
    "proj.weight": shapes["proj.weight"][1],
    "proj.bias": shapes["proj.weight"][1],
    "head.weight": shapes["head.weight"][1],
    "head.bias": shapes["head.weight"][1],
  };
  const out: Record<string, AdapterTensor> = {};
  for (const [name, shape] of Object.entries(shapes))
    out[name] = { shape, data: uniform(rng, numel(shape), 1 / Math.sqrt(fanIn[name])) };
  return out;
}

export function initAdapterTensors(ctx: InitContext): Record<string, AdapterTensor> {
  const { meta, dims, rng } = ctx;
  const shapes = expectedShapes(meta, dims);
  const tensors = linearInit(shapes, rng);
  const W = meta.variant === "prompt" ? dims.embedDim : shapes["proj.bias"][0] / (meta.pooling ? meta.promptLength : 1);
  const params = { pooling: meta.pooling, length: meta.promptLength, width: W, hidden: dims.hiddenDim };

  if (ctx.method === "prompt-tuning") {
    if (meta.variant !== "prompt" || !meta.pooling)
      throw new Error("prompt tuning is expressed as the prompt variant's pooling form");
    for (const name of ["pool.weight", "pool.bias", "proj.weight"]) tensors[name].data.fill(0);
    const bias = tensors["proj.bias"].data;
    if (ctx.init === "embedding") bias.set(ctx.promptEmbeds);
    else {
      // Random rows with token-sized norms: N(0, σ²) with σ = norm/√H_in.
      const sigma = ctx.tokenNorm / Math.sqrt(dims.embedDim);
      for (let i = 0; i < bias.length; i++) bias[i] = ctx.rng.normal(0, sigma);
    }
  } else if (ctx.method === "sk" && ctx.init === "token-scale" && meta.variant === "prompt") {
    const scale = ctx.tokenNorm / meanRowNorm(transformForward(params, tensors, ctx.hp), W);
    for (const name of ["proj.weight", "proj.bias"]) tensors[name].data.forEach((v, i, a) => (a[i] = v * scale));
  }
  return tensors;
}

/** Which tensors a method trains (the rest stay as initialised). */
export function trainableTensors(method: TrainMethod, tensors: Record<string, AdapterTensor>): string[] {
  if (method === "probe") return ["head.weight", "head.bias"];
  if (method === "prompt-tuning") return ["proj.bias", "head.weight", "head.bias"];
  return Object.keys(tensors);
}

export function meanTokenNorm(embeddings: Float32Array, dim: number): number {
  return meanRowNorm(embeddings, dim);
}
