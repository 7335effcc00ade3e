/**
 * Synthetic adapters that the real registry accepts: the loaded backbone's fingerprint, the prompt's
 * true token count, and small seeded weights (soft prompts of token-like size, not ±1 noise). Used by
 * the tests, the benchmarks and the soak script to exercise serving without a trained adapter.
 */
import type { BackboneAssets } from "../backbone/backbone.js";
import { seededRandom } from "../random.js";
import { encodeAdapter, type AdapterFile, type AdapterTensor } from "./format.js";
import { expectedShapes, numel, type ProblemType, type Variant } from "./spec.js";

export const DEFAULT_PROMPT = "classify the text as positive or negative, text:";

export interface SyntheticOptions {
  task: string;
  variant?: Variant;
  pooling?: boolean;
  problemType?: ProblemType;
  labels?: string[];
  promptText?: string;
  /** Default: the backbone's maximum. */
  maxLength?: number;
  textPair?: boolean;
  seed?: number;
  /** Uniform(−scale, scale) weights. */
  scale?: number;
  /** Overwrite the head bias (e.g. to force one label). */
  headBias?: number[];
}

export function syntheticAdapter(assets: BackboneAssets, o: SyntheticOptions): AdapterFile {
  const problemType = o.problemType ?? "single_label_classification";
  const promptText = o.promptText ?? DEFAULT_PROMPT;
  const metadata = {
    task: o.task,
    variant: o.variant ?? "prompt",
    pooling: o.pooling ?? true,
    promptText,
    promptLength: assets.tokenizer.ids(promptText).length,
    labels: o.labels ?? (problemType === "regression" ? ["score"] : ["negative", "positive"]),
    problemType,
    backbone: assets.name,
    backboneFingerprint: assets.fingerprint,
    maxLength: o.maxLength ?? assets.dims.maxPositions,
    textPair: o.textPair ?? false,
  };
  const rand = seededRandom(o.seed ?? 1); // the same seed always gives the same adapter
  const scale = o.scale ?? 0.05;
  const tensors: Record<string, AdapterTensor> = {};
  for (const [name, shape] of Object.entries(expectedShapes(metadata, assets.dims))) {
    tensors[name] = { shape, data: Float32Array.from({ length: numel(shape) }, () => (rand() * 2 - 1) * scale) };
  }
  if (o.headBias) tensors["head.bias"].data.set(o.headBias);
  return { metadata, tensors };
}

export function syntheticAdapterBytes(assets: BackboneAssets, o: SyntheticOptions): Uint8Array {
  return encodeAdapter(syntheticAdapter(assets, o), assets.dims);
}
