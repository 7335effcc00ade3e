/**
 * Evaluation through the serving code: the adapter is prepared by the same function the registry
 * uses, batches are assembled by the engine's assembler and rows go through the same head, so a
 * score measured here is the score the server gives.
 */
import type { BackboneRunner } from "../backbone/backbone.js";
import type { BackboneDims } from "../backbone/dims.js";
import type { UseLiteTokenizer } from "../backbone/tokenizer.js";
import type { AdapterMetadata } from "../adapters/format.js";
import { applyHead, type PreparedAdapter } from "../adapters/prepared.js";
import { assembleBatch } from "../engine/assemble.js";
import { classificationReport, regressionReport } from "./metrics.js";
import type { Example } from "./datasets.js";

export interface EvalReport {
  examples: number;
  accuracy?: number;
  macroF1?: number;
  confusion?: number[][];
  labels?: string[];
  mse?: number;
  pearson?: number;
}

export interface EvalContext {
  runner: BackboneRunner;
  tokenizer: UseLiteTokenizer;
  embeddings: Float32Array;
  dims: BackboneDims;
  batchSize?: number;
}

/** Token ids of an example within the adapter's text budget (pairs trimmed longest-first). */
export function encodeExample(tokenizer: UseLiteTokenizer, e: Pick<Example, "text" | "pair">, budget: number): number[] {
  return (e.pair !== undefined ? tokenizer.encodePair(e.text, e.pair, budget) : tokenizer.encode(e.text, budget)).ids;
}

/** Gold class index of each example; `datasetLabels[i]` is the dataset's name for class i. */
export function goldIndices(examples: Example[], datasetLabels: string[]): number[] {
  return examples.map((e) => datasetLabels.indexOf(String(e.label)));
}

export async function evaluatePrepared(ctx: EvalContext, adapter: PreparedAdapter, examples: Example[], datasetLabels: string[]): Promise<EvalReport> {
  const meta: AdapterMetadata = adapter.metadata;
  const batchSize = ctx.batchSize ?? 64;
  const predictions: number[] = [];
  const values: number[] = [];
  // Sorting by length keeps padding low; results are put back in the examples' order.
  const encoded = examples.map((e, i) => ({ i, ids: encodeExample(ctx.tokenizer, e, adapter.textBudget) })).sort((a, b) => a.ids.length - b.ids.length);
  for (let start = 0; start < encoded.length; start += batchSize) {
    const chunk = encoded.slice(start, start + batchSize);
    const { batch } = assembleBatch(chunk.map((c) => ({ adapter, ids: c.ids })), ctx.embeddings, ctx.dims);
    const pooled = (await ctx.runner.run(batch)).pooled!;
    chunk.forEach((c, b) => {
      const out = applyHead(adapter, pooled.subarray(b * ctx.dims.hiddenDim, (b + 1) * ctx.dims.hiddenDim));
      if (out.value !== undefined) values[c.i] = out.value;
      else predictions[c.i] = meta.labels.indexOf(out.label!);
    });
  }
  if (meta.problemType === "regression") {
    const r = regressionReport(examples.map((e) => Number(e.label)), values);
    return { examples: examples.length, mse: r.mse, pearson: r.pearson };
  }
  const r = classificationReport(goldIndices(examples, datasetLabels), predictions, meta.labels.length);
  return { examples: examples.length, accuracy: r.accuracy, macroF1: r.macroF1, confusion: r.confusion, labels: meta.labels };
}

/** The score early stopping and the study compare: accuracy, or −MSE for regression. */
export function headlineScore(r: EvalReport): number {
  return r.accuracy ?? -(r.mse ?? Infinity);
}
