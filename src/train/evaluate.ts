/**
 * Evaluation through the serving code: the adapter is prepared by the same function the registry
 * uses, batches are assembled by the engine's assembler and rows go through the same head, so a
 * score measured here is the score the server gives.
 */
import type { BackboneRunner } from "../backbone/backbone.js";
import type { BackboneDims } from "../backbone/dims.js";
import type { BackboneTokenizer } from "../backbone/tokenizer.js";
import type { AdapterMetadata } from "../adapters/format.js";
import { applyHead, type HeadOutput, type PreparedAdapter } from "../adapters/prepared.js";
import { assembleBatch } from "../engine/assemble.js";
import { classificationReport, multiLabelReport, regressionReport } from "./metrics.js";
import type { Example } from "./datasets.js";

export interface EvalReport {
  examples: number;
  /** Classification: accuracy; multi-label: exact-match (subset) accuracy. */
  accuracy?: number;
  macroF1?: number;
  /** Multi-label only: F1 over all (example, label) decisions. */
  microF1?: number;
  confusion?: number[][];
  labels?: string[];
  mse?: number;
  pearson?: number;
}

export interface EvalContext {
  runner: BackboneRunner;
  tokenizer: BackboneTokenizer;
  embeddings: Float32Array;
  dims: BackboneDims;
  batchSize?: number;
}

/**
 * Token ids of an example within the adapter's text budget (pairs trimmed longest-first), with the
 * tokenizer's token types for pairs on backbones that have them (absent: all type 0).
 */
export function encodeExample(
  tokenizer: BackboneTokenizer,
  e: Pick<Example, "text" | "pair">,
  budget: number,
): { ids: number[]; typeIds?: number[] } {
  const { ids, typeIds } =
    e.pair !== undefined ? tokenizer.encodePair(e.text, e.pair, budget) : tokenizer.encode(e.text, budget);
  return typeIds ? { ids, typeIds } : { ids };
}

/** Gold class index of each example; `datasetLabels[i]` is the dataset's name for class i. */
function goldIndices(examples: Example[], datasetLabels: string[]): number[] {
  return examples.map((e) => datasetLabels.indexOf(String(e.label)));
}

/** Multi-label: the class indices that apply to each example. */
function goldSets(examples: Example[], datasetLabels: string[]): number[][] {
  return examples.map((e) =>
    (Array.isArray(e.label) ? e.label : [String(e.label)]).map((l) => datasetLabels.indexOf(l)),
  );
}

/** A multi-label prediction: every label whose sigmoid score reaches 0.5. */
function predictedSet(scores: Record<string, number>, labels: string[]): number[] {
  return labels.flatMap((l, k) => (scores[l] >= 0.5 ? [k] : []));
}

/**
 * The report for one head output per example (in the examples' order), by problem type. The
 * trainer's dev evaluation and `eval` through the engine both score with this.
 */
export function reportFor(
  meta: Pick<AdapterMetadata, "problemType" | "labels">,
  examples: Example[],
  datasetLabels: string[],
  outputs: HeadOutput[],
): EvalReport {
  if (meta.problemType === "regression") {
    const r = regressionReport(
      examples.map((e) => Number(e.label)),
      outputs.map((o) => o.value!),
    );
    return { examples: examples.length, mse: r.mse, pearson: r.pearson };
  }
  if (meta.problemType === "multi_label_classification") {
    const r = multiLabelReport(
      goldSets(examples, datasetLabels),
      outputs.map((o) => predictedSet(o.scores!, meta.labels)),
      meta.labels.length,
    );
    return {
      examples: examples.length,
      accuracy: r.subsetAccuracy,
      macroF1: r.macroF1,
      microF1: r.microF1,
      labels: meta.labels,
    };
  }
  const r = classificationReport(
    goldIndices(examples, datasetLabels),
    outputs.map((o) => meta.labels.indexOf(o.label!)),
    meta.labels.length,
  );
  return {
    examples: examples.length,
    accuracy: r.accuracy,
    macroF1: r.macroF1,
    confusion: r.confusion,
    labels: meta.labels,
  };
}

export async function evaluatePrepared(
  ctx: EvalContext,
  adapter: PreparedAdapter,
  examples: Example[],
  datasetLabels: string[],
): Promise<EvalReport> {
  const batchSize = ctx.batchSize ?? 64;
  const outputs = new Array<HeadOutput>(examples.length);
  // Sorting by length keeps padding low; results are put back in the examples' order.
  const encoded = examples
    .map((e, i) => ({ i, ...encodeExample(ctx.tokenizer, e, adapter.textBudget) }))
    .sort((a, b) => a.ids.length - b.ids.length);
  for (let start = 0; start < encoded.length; start += batchSize) {
    const chunk = encoded.slice(start, start + batchSize);
    const { batch } = assembleBatch(
      chunk.map((c) => ({ adapter, ids: c.ids, typeIds: c.typeIds })),
      ctx.embeddings,
      ctx.dims,
    );
    const pooled = (await ctx.runner.run(batch)).pooled!;
    chunk.forEach(
      (c, b) =>
        (outputs[c.i] = applyHead(adapter, pooled.subarray(b * ctx.dims.hiddenDim, (b + 1) * ctx.dims.hiddenDim))),
    );
  }
  return reportFor(adapter.metadata, examples, datasetLabels, outputs);
}

/** The score early stopping and the study compare: accuracy, micro-F1 for multi-label, −MSE for regression. */
export function headlineScore(r: EvalReport): number {
  return r.microF1 ?? r.accuracy ?? -(r.mse ?? Infinity);
}
