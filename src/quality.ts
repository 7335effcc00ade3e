/**
 * What the classifiers answer, per task: `skt_predictions_total{task,label}`, the winning score's
 * histogram, and over the last N rows (a ring buffer per task) the share under a confidence
 * threshold and the drift of the label distribution from the one the adapter was trained on
 * (total-variation distance, ½ Σ |p − q|; the trainer records q as `training.label_distribution`).
 *
 * Bounded however many tasks and labels exist: only tasks with their own metrics label (at most
 * MAX_TASK_LABELS; see metrics.ts taskLabel) get a window; the rest share `task="__other__"` with
 * `label="__other__"`. A head's first `maxLabels` labels get their own label value, the rest
 * `__other__`. A new adapter version starts a fresh window (its labels may differ). Regression rows
 * have no label or score and are not recorded.
 */
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { AdapterMetadata } from "./adapters/format.js";

/** What recording needs of the adapter that answered (a PreparedAdapter has it). */
export interface AnsweringAdapter {
  version: number;
  metadata: Pick<AdapterMetadata, "labels" | "problemType">;
  /** The training label distribution over `metadata.labels`, or null when the file records none. */
  trainingDistribution: Float64Array | null;
}

export const OTHER_LABEL = "__other__";

export interface QualityOptions {
  /** Rows per task in the window behind the share and drift gauges. */
  window: number;
  /** A row whose winning score is below this is low confidence. */
  lowConfidence: number;
  /** Label values per task; a head's labels past this share OTHER_LABEL. */
  maxLabels: number;
}

export const DEFAULT_QUALITY: QualityOptions = { window: 1000, lowConfidence: 0.6, maxLabels: 20 };

/** A row as the quality metrics see it: its top label and that label's score. */
export interface ScoredRow {
  label?: string;
  score?: number;
}

export interface TaskQualityStats {
  task: string;
  /** False for tasks past the per-task label cap: counted under `__other__`, no window kept. */
  tracked: boolean;
  /** The adapter version the window holds rows of (null before the first row). */
  adapterVersion: number | null;
  lowConfidenceThreshold: number;
  /** Rows and rows per label since this version's first row (this process). */
  total: { rows: number; labels: Record<string, number> };
  window: {
    size: number;
    rows: number;
    labels: Record<string, number>;
    lowConfidenceShare: number | null;
    /** Total-variation distance from the training distribution; null without one or without rows. */
    drift: number | null;
  };
  trainingDistribution: Record<string, number> | null;
}

/** ½ Σ |p − q| between counts (normalised here) and a distribution over the same labels. */
export function totalVariation(counts: ArrayLike<number>, q: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < counts.length; i++) n += counts[i];
  let sum = 0;
  for (let i = 0; i < counts.length; i++) sum += Math.abs(counts[i] / n - q[i]);
  return sum / 2;
}

/** One tracked task's current version: the ring of label indices and low-confidence flags. */
class TaskWindow {
  readonly labelIndex: Map<string, number>;
  readonly ring: Int32Array;
  readonly low: Uint8Array;
  readonly windowCounts: Float64Array;
  readonly totalCounts: Float64Array;
  next = 0;
  filled = 0;
  lowCount = 0;
  totalRows = 0;

  constructor(
    readonly version: number,
    readonly labels: readonly string[],
    readonly training: Float64Array | null,
    size: number,
  ) {
    this.labelIndex = new Map(labels.map((l, i) => [l, i]));
    this.ring = new Int32Array(size);
    this.low = new Uint8Array(size);
    this.windowCounts = new Float64Array(labels.length);
    this.totalCounts = new Float64Array(labels.length);
  }

  add(index: number, isLow: boolean): void {
    if (this.filled === this.ring.length) {
      this.windowCounts[this.ring[this.next]]--;
      this.lowCount -= this.low[this.next];
    } else this.filled++;
    this.ring[this.next] = index;
    this.low[this.next] = isLow ? 1 : 0;
    this.windowCounts[index]++;
    this.lowCount += isLow ? 1 : 0;
    this.totalCounts[index]++;
    this.totalRows++;
    this.next = (this.next + 1) % this.ring.length;
  }

  drift(): number | null {
    return this.training && this.filled > 0 ? totalVariation(this.windowCounts, this.training) : null;
  }

  lowShare(): number | null {
    return this.filled > 0 ? this.lowCount / this.filled : null;
  }
}

const SCORE_BUCKETS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99];

export class PredictionQuality {
  readonly predictions: Counter<"task" | "label">;
  readonly winningScore: Histogram<"task">;
  readonly lowConfidenceShare: Gauge<"task">;
  readonly drift: Gauge<"task">;
  private readonly windows = new Map<string, TaskWindow>();

  constructor(
    registry: Registry,
    readonly opts: QualityOptions,
    /** The metrics label of a served task (its name, or `__other__` past the cap). */
    private readonly taskLabel: (task: string) => string,
  ) {
    const registers = [registry];
    this.predictions = new Counter({
      name: "skt_predictions_total",
      help: `Classified rows by task and top label (a head's labels past SKT_METRICS_MAX_LABELS, and every task past the per-task label cap, are "${OTHER_LABEL}").`,
      labelNames: ["task", "label"] as const,
      registers,
    });
    this.winningScore = new Histogram({
      name: "skt_winning_score",
      help: "The top label's score of each classified row, by task.",
      labelNames: ["task"] as const,
      buckets: SCORE_BUCKETS,
      registers,
    });
    this.lowConfidenceShare = new Gauge({
      name: "skt_low_confidence_share",
      help: "Share of the task's last SKT_QUALITY_WINDOW rows whose winning score is below SKT_LOW_CONFIDENCE.",
      labelNames: ["task"] as const,
      registers,
    });
    this.drift = new Gauge({
      name: "skt_label_drift",
      help: "Total-variation distance between the label distribution of the task's last SKT_QUALITY_WINDOW rows and the adapter's training label distribution (absent when the adapter file does not record one).",
      labelNames: ["task"] as const,
      registers,
    });
  }

  /** One call's rows of `task`, answered by `adapter`. */
  record(task: string, adapter: AnsweringAdapter, rows: readonly ScoredRow[]): void {
    if (adapter.metadata.problemType === "regression") return;
    const label = this.taskLabel(task);
    const window = label === task ? this.windowFor(task, adapter) : null;
    for (const row of rows) {
      if (row.label === undefined || row.score === undefined) continue;
      const index = window?.labelIndex.get(row.label);
      const labelValue = window && index !== undefined && index < this.opts.maxLabels ? row.label : OTHER_LABEL;
      this.predictions.inc({ task: label, label: labelValue });
      this.winningScore.observe({ task: label }, row.score);
      if (window && index !== undefined) window.add(index, row.score < this.opts.lowConfidence);
    }
    if (!window) return;
    const share = window.lowShare();
    if (share !== null) this.lowConfidenceShare.set({ task }, share);
    const drift = window.drift();
    if (drift !== null) this.drift.set({ task }, drift);
  }

  private windowFor(task: string, adapter: AnsweringAdapter): TaskWindow {
    const held = this.windows.get(task);
    if (held?.version === adapter.version) return held;
    // A new version: its labels and training distribution may differ, so its series start afresh.
    if (held) this.removeSeries(task, held);
    const fresh = new TaskWindow(
      adapter.version,
      adapter.metadata.labels,
      adapter.trainingDistribution,
      this.opts.window,
    );
    this.windows.set(task, fresh);
    return fresh;
  }

  stats(task: string): TaskQualityStats {
    const w = this.windows.get(task);
    const tracked = this.taskLabel(task) === task;
    const byLabel = (counts: Float64Array | undefined) => {
      const out: Record<string, number> = Object.create(null) as Record<string, number>;
      w?.labels.forEach((l, i) => (out[l] = counts![i]));
      return out;
    };
    let training: Record<string, number> | null = null;
    if (w?.training) {
      training = Object.create(null) as Record<string, number>;
      w.labels.forEach((l, i) => (training![l] = w.training![i]));
    }
    return {
      task,
      tracked,
      adapterVersion: w?.version ?? null,
      lowConfidenceThreshold: this.opts.lowConfidence,
      total: { rows: w?.totalRows ?? 0, labels: byLabel(w?.totalCounts) },
      window: {
        size: this.opts.window,
        rows: w?.filled ?? 0,
        labels: byLabel(w?.windowCounts),
        lowConfidenceShare: w?.lowShare() ?? null,
        drift: w?.drift() ?? null,
      },
      trainingDistribution: training,
    };
  }

  /** A deleted task: its window and every series labelled with it go. */
  forget(task: string): void {
    const held = this.windows.get(task);
    this.windows.delete(task);
    if (held) this.removeSeries(task, held);
  }

  /** A tracked task's series: the label values its window's version can have used. */
  private removeSeries(task: string, window: TaskWindow): void {
    this.winningScore.remove({ task });
    this.lowConfidenceShare.remove({ task });
    this.drift.remove({ task });
    for (const label of [...window.labels.slice(0, this.opts.maxLabels), OTHER_LABEL])
      this.predictions.remove({ task, label });
  }
}
