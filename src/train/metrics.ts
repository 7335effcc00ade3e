/**
 * Evaluation metrics for the trainer: a classification report (accuracy, macro-F1, confusion
 * matrix, per-label precision/recall/F1), a multi-label report (exact-match accuracy, micro- and
 * macro-F1, per-label scores) and a regression report (MSE, Pearson r).
 *
 * Zero-division convention (same as scikit-learn with `zero_division=0`): precision of a label never
 * predicted is 0, recall of a label with no gold examples is 0, and F1 is 0 whenever precision + recall
 * is 0 — so a label with neither predictions nor support scores F1 = 0. Macro-F1 averages over all
 * `numLabels` labels, including such absent ones, because the label set is fixed by the task, not by
 * which labels happen to appear in one evaluation split.
 */
import { SktError } from "../errors.js";

export interface LabelScores {
  precision: number;
  recall: number;
  f1: number;
  /** Number of gold examples with this label. */
  support: number;
}

export interface ClassificationReport {
  accuracy: number;
  macroF1: number;
  /** confusion[gold][pred] = count. */
  confusion: number[][];
  perLabel: LabelScores[];
}

export interface RegressionReport {
  mse: number;
  /** Pearson correlation; 0 when either side is constant (correlation undefined). */
  pearson: number;
}

/** `gold` and `pred` are label indices in [0, numLabels). */
export function classificationReport(gold: number[], pred: number[], numLabels: number): ClassificationReport {
  checkInputs(gold, pred, numLabels);
  const confusion = Array.from({ length: numLabels }, () => new Array<number>(numLabels).fill(0));
  for (let i = 0; i < gold.length; i++) {
    checkLabel("gold", i, gold[i], numLabels);
    checkLabel("pred", i, pred[i], numLabels);
    confusion[gold[i]][pred[i]] += 1;
  }

  let correct = 0;
  let f1Sum = 0;
  const perLabel: LabelScores[] = [];
  for (let k = 0; k < numLabels; k++) {
    const tp = confusion[k][k];
    correct += tp;
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < numLabels; j++) {
      support += confusion[k][j];
      predicted += confusion[j][k];
    }
    const precision = predicted === 0 ? 0 : tp / predicted;
    const recall = support === 0 ? 0 : tp / support;
    const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
    f1Sum += f1;
    perLabel.push({ precision, recall, f1, support });
  }
  return { accuracy: correct / gold.length, macroF1: f1Sum / numLabels, confusion, perLabel };
}

export interface MultiLabelReport {
  /** Share of examples whose predicted label set equals the gold set exactly. */
  subsetAccuracy: number;
  /** F1 over all (example, label) decisions pooled. */
  microF1: number;
  macroF1: number;
  perLabel: LabelScores[];
}

/** `gold[i]` and `pred[i]` are the label indices that apply to example i (any number, none included). */
export function multiLabelReport(gold: number[][], pred: number[][], numLabels: number): MultiLabelReport {
  checkInputs(gold, pred, numLabels);
  const tp = new Array<number>(numLabels).fill(0);
  const fp = new Array<number>(numLabels).fill(0);
  const fn = new Array<number>(numLabels).fill(0);
  let exact = 0;
  for (let i = 0; i < gold.length; i++) {
    gold[i].forEach((k) => checkLabel("gold", i, k, numLabels));
    pred[i].forEach((k) => checkLabel("pred", i, k, numLabels));
    const g = new Set(gold[i]);
    const p = new Set(pred[i]);
    for (const k of p) (g.has(k) ? tp : fp)[k]++;
    for (const k of g) if (!p.has(k)) fn[k]++;
    if (g.size === p.size && [...g].every((k) => p.has(k))) exact++;
  }
  const f1Of = (t: number, f: number, n: number) => (2 * t + f + n === 0 ? 0 : (2 * t) / (2 * t + f + n));
  const perLabel = tp.map((t, k) => ({
    precision: t + fp[k] === 0 ? 0 : t / (t + fp[k]),
    recall: t + fn[k] === 0 ? 0 : t / (t + fn[k]),
    f1: f1Of(t, fp[k], fn[k]),
    support: t + fn[k],
  }));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  return {
    subsetAccuracy: exact / gold.length,
    microF1: f1Of(sum(tp), sum(fp), sum(fn)),
    macroF1: sum(perLabel.map((s) => s.f1)) / numLabels,
    perLabel,
  };
}

export function regressionReport(gold: number[], pred: number[]): RegressionReport {
  checkLengths(gold, pred);
  const n = gold.length;
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(gold[i]) || !Number.isFinite(pred[i])) {
      throw new SktError("bad_request", "invalid_metrics_input", `non-finite value at index ${i}`);
    }
  }
  let sumG = 0;
  let sumP = 0;
  let se = 0;
  for (let i = 0; i < n; i++) {
    sumG += gold[i];
    sumP += pred[i];
    const d = pred[i] - gold[i];
    se += d * d;
  }
  // Two-pass (centre first) to avoid the cancellation of the sum-of-squares formula.
  const meanG = sumG / n;
  const meanP = sumP / n;
  let cov = 0;
  let varG = 0;
  let varP = 0;
  for (let i = 0; i < n; i++) {
    const dg = gold[i] - meanG;
    const dp = pred[i] - meanP;
    cov += dg * dp;
    varG += dg * dg;
    varP += dp * dp;
  }
  const denom = Math.sqrt(varG * varP);
  // Clamp: rounding can push |r| a hair above 1 for perfectly correlated inputs.
  const pearson = denom === 0 ? 0 : Math.max(-1, Math.min(1, cov / denom));
  return { mse: se / n, pearson };
}

function checkInputs(gold: unknown[], pred: unknown[], numLabels: number): void {
  if (!Number.isInteger(numLabels) || numLabels < 1) {
    throw new SktError(
      "bad_request",
      "invalid_metrics_input",
      `numLabels must be a positive integer, got ${numLabels}`,
    );
  }
  checkLengths(gold, pred);
}

function checkLengths(gold: unknown[], pred: unknown[]): void {
  if (gold.length !== pred.length) {
    throw new SktError(
      "bad_request",
      "invalid_metrics_input",
      `gold has ${gold.length} values but pred has ${pred.length}`,
    );
  }
  if (gold.length === 0) {
    throw new SktError("bad_request", "invalid_metrics_input", "cannot compute metrics over zero examples");
  }
}

function checkLabel(which: string, i: number, label: number, numLabels: number): void {
  if (!Number.isInteger(label) || label < 0 || label >= numLabels) {
    throw new SktError(
      "bad_request",
      "invalid_metrics_input",
      `${which}[${i}] = ${label} is not a label index in [0, ${numLabels})`,
    );
  }
}
