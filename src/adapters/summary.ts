/**
 * A task's listing summary: the few metadata fields `GET /tasks` shows, with the long ones cut, so
 * the task index holds well under 1 KB per task and a page of 100 tasks stays small. Full values
 * (whole prompt text, every label, the training summary) are in the per-task admin view.
 */
import type { BackboneDims } from "../backbone/dims.js";
import type { AdapterMetadata } from "./format.js";
import { PROBLEM_TYPES, VARIANTS, parameterCount, type ProblemType, type Variant } from "./spec.js";

/** Longest prompt text a listing shows, in UTF-16 code units. */
export const SUMMARY_PROMPT_CHARS = 100;
/** Labels are listed until there are this many or their names add up to SUMMARY_LABEL_CHARS code
 * units; the rest are only counted. */
export const SUMMARY_MAX_LABELS = 10;
export const SUMMARY_LABEL_CHARS = 100;

export interface TaskSummary {
  variant: Variant;
  pooling: boolean;
  problemType: ProblemType;
  /** The first labels (all of them unless `truncated`). */
  labels: string[];
  labelCount: number;
  /** The prompt text, cut to SUMMARY_PROMPT_CHARS. */
  promptText: string;
  maxLength: number;
  parameters: number;
  /** True when the prompt text or the label list was cut. */
  truncated: boolean;
}

export function summarize(meta: AdapterMetadata, dims: BackboneDims): TaskSummary {
  const labels: string[] = [];
  let chars = 0;
  for (const label of meta.labels) {
    if (labels.length === SUMMARY_MAX_LABELS || chars + label.length > SUMMARY_LABEL_CHARS) break;
    labels.push(label);
    chars += label.length;
  }
  const promptText = cut(meta.promptText, SUMMARY_PROMPT_CHARS);
  return {
    variant: meta.variant,
    pooling: meta.pooling,
    problemType: meta.problemType,
    labels,
    labelCount: meta.labels.length,
    promptText,
    maxLength: meta.maxLength,
    parameters: parameterCount(meta, dims),
    truncated: promptText.length < meta.promptText.length || labels.length < meta.labels.length,
  };
}

/** At most `n` code units, never splitting a surrogate pair. */
function cut(s: string, n: number): string {
  if (s.length <= n) return s;
  const code = s.charCodeAt(n - 1);
  return s.slice(0, code >= 0xd800 && code <= 0xdbff ? n - 1 : n);
}

/** The summary as the task index stores it: a fixed-order array (smaller and faster to parse than
 * an object, 100,000 times at every start). */
export type PackedSummary = [Variant, 0 | 1, ProblemType, string[], number, string, number, number, 0 | 1];

export function packSummary(s: TaskSummary): PackedSummary {
  return [s.variant, s.pooling ? 1 : 0, s.problemType, s.labels, s.labelCount, s.promptText, s.maxLength, s.parameters, s.truncated ? 1 : 0];
}

/** A summary read back from the index file, or null when it is not one this code wrote. */
export function unpackSummary(x: unknown): TaskSummary | null {
  if (!Array.isArray(x) || x.length !== 9) return null;
  const [variant, pooling, problemType, labels, labelCount, promptText, maxLength, parameters, truncated] = x as unknown[];
  const ok =
    (VARIANTS as readonly unknown[]).includes(variant) &&
    (pooling === 0 || pooling === 1) &&
    (PROBLEM_TYPES as readonly unknown[]).includes(problemType) &&
    Array.isArray(labels) &&
    labels.length <= SUMMARY_MAX_LABELS &&
    labels.every((l) => typeof l === "string") &&
    Number.isSafeInteger(labelCount) &&
    typeof promptText === "string" &&
    promptText.length <= SUMMARY_PROMPT_CHARS &&
    Number.isSafeInteger(maxLength) &&
    Number.isSafeInteger(parameters) &&
    (truncated === 0 || truncated === 1);
  if (!ok) return null;
  return {
    variant: variant as Variant,
    pooling: pooling === 1,
    problemType: problemType as ProblemType,
    labels: labels,
    labelCount: labelCount as number,
    promptText: promptText,
    maxLength: maxLength as number,
    parameters: parameters as number,
    truncated: truncated === 1,
  };
}
