/**
 * Benchmark adapters: the synthetic generator from src/adapters/synthetic.ts, plus helpers to hit a
 * parameter count and to fill a store directly.
 */
import type { BackboneAssets } from "../src/backbone/backbone.js";
import type { AdapterFile } from "../src/adapters/format.js";
import { parameterCount } from "../src/adapters/spec.js";
import { AdapterStore } from "../src/adapters/store.js";
import type { SyntheticOptions } from "../src/adapters/synthetic.js";

export {
  DEFAULT_PROMPT,
  syntheticAdapter,
  syntheticAdapterBytes,
  type SyntheticOptions,
} from "../src/adapters/synthetic.js";

export function adapterParameters(assets: BackboneAssets, file: AdapterFile): number {
  return parameterCount(file.metadata, assets.dims);
}

/** A prompt text of exactly `tokens` backbone tokens (built word by word from SST-2-like words). */
export function promptOfLength(assets: BackboneAssets, tokens: number): string {
  const words =
    "read the following movie review and decide whether the opinion it expresses about the film is positive or negative then answer with one word only review text follows here now please".split(
      " ",
    );
  const parts: string[] = [];
  for (let i = 0; parts.length < 1000; i++) {
    const next = [...parts, words[i % words.length]].join(" ");
    const n = assets.tokenizer.ids(next).length;
    if (n === tokens) return next;
    if (n > tokens) break;
    parts.push(words[i % words.length]);
  }
  // Top up with single characters, which are one token each in this vocabulary.
  let text = parts.join(" ");
  for (const c of "abcdefghijklmnopqrstuvwxyz".repeat(4)) {
    const n = assets.tokenizer.ids(text).length;
    if (n === tokens) return text;
    text = `${text} ${c}`;
  }
  if (assets.tokenizer.ids(text).length === tokens) return text;
  throw new Error(`could not build a prompt of exactly ${tokens} tokens`);
}

/**
 * The largest pooling prefix adapter within `maxParams` (the server's default limit is 1,000,000):
 * parameters = H + 1 + L²·S + L·S + C·H + C, with S the prefix width.
 */
export function largestPrefixAdapterOptions(
  assets: BackboneAssets,
  task: string,
  maxParams = 1_000_000,
): SyntheticOptions & { promptText: string; parameters: number } {
  let best = 0;
  for (let L = 1; L <= 64; L++) {
    const meta = {
      variant: "prefix" as const,
      pooling: true,
      promptLength: L,
      problemType: "single_label_classification" as const,
      labels: ["negative", "positive"],
    };
    if (parameterCount(meta, assets.dims) <= maxParams) best = L;
  }
  const promptText = promptOfLength(assets, best);
  const meta = {
    variant: "prefix" as const,
    pooling: true,
    promptLength: best,
    problemType: "single_label_classification" as const,
    labels: ["negative", "positive"],
  };
  return { task, variant: "prefix", pooling: true, promptText, parameters: parameterCount(meta, assets.dims) };
}

/** Writes adapters straight into a store folder (as the server's own store does), `parallel` at a time. */
export async function fillStore(
  dir: string,
  count: number,
  make: (i: number) => { task: string; bytes: Uint8Array },
  parallel = 16,
): Promise<void> {
  const store = new AdapterStore(dir);
  let next = 0;
  const workers = Array.from({ length: Math.min(parallel, count) }, async () => {
    while (next < count) {
      const { task, bytes } = make(next++);
      await store.write(task, bytes);
    }
  });
  await Promise.all(workers);
}
