/**
 * Adapters that the real registry accepts: the real backbone fingerprint, the prompt's true token
 * count, and small seeded weights (soft prompts of token-like size, not ±1 noise).
 */
import type { BackboneAssets } from "../../src/backbone/backbone.js";
import { encodeAdapter, type AdapterFile, type AdapterTensor } from "../../src/adapters/format.js";
import { expectedShapes, numel, type ProblemType, type Variant } from "../../src/adapters/spec.js";
import { seededRandom } from "./numeric.js";

export interface ServableOptions {
  task: string;
  variant?: Variant;
  pooling?: boolean;
  problemType?: ProblemType;
  labels?: string[];
  promptText?: string;
  maxLength?: number;
  textPair?: boolean;
  seed?: number;
  /** Uniform(−scale, scale) weights. */
  scale?: number;
  /** Overwrite the head bias (e.g. to force one label). */
  headBias?: number[];
}

export function servableAdapter(assets: BackboneAssets, o: ServableOptions): AdapterFile {
  const problemType = o.problemType ?? "single_label_classification";
  const promptText = o.promptText ?? "classify the text as positive or negative, text:";
  const metadata = {
    task: o.task,
    variant: o.variant ?? "prompt",
    pooling: o.pooling ?? true,
    promptText,
    promptLength: assets.tokenizer.ids(promptText).length,
    labels: o.labels ?? (problemType === "regression" ? ["score"] : ["negative", "positive"]),
    problemType,
    backbone: "use-lite",
    backboneFingerprint: assets.fingerprint,
    maxLength: o.maxLength ?? 128,
    textPair: o.textPair ?? false,
  };
  const rand = seededRandom(o.seed ?? 1);
  const scale = o.scale ?? 0.05;
  const tensors: Record<string, AdapterTensor> = {};
  for (const [name, shape] of Object.entries(expectedShapes(metadata, assets.dims))) {
    const data = Float32Array.from({ length: numel(shape) }, () => (rand() * 2 - 1) * scale);
    tensors[name] = { shape, data };
  }
  if (o.headBias) tensors["head.bias"].data.set(o.headBias);
  return { metadata, tensors };
}

export function servableAdapterBytes(assets: BackboneAssets, o: ServableOptions): Uint8Array {
  return encodeAdapter(servableAdapter(assets, o), assets.dims);
}
