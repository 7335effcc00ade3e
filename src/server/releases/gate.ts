/**
 * The evaluation gate: a version uploaded with `?gate=true` is stored inactive, scored on the task's
 * evaluation set through the serving engine, and made current only if its score is not below the
 * current version's score on the same set minus a tolerance.
 *
 * - One evaluation runs at a time for the whole server, in small chunks through the serving queue
 *   (InferenceService.evaluate), so live traffic is never queued behind a whole set.
 * - The decision (score the current version, compare, activate) runs under a per-task lock, and the
 *   activation names the current version it was compared with (`expectCurrent`): if another request
 *   moved the pointer meanwhile, the gate compares again with the new current version.
 * - Deleting the version or the task cancels its gate; nothing is activated.
 * - Reports are kept in memory and, while the task exists, as `gate-v000005.json` next to it.
 *
 * The score is accuracy for single-label tasks, micro-F1 for multi-label tasks and Pearson r for
 * regression (train/metrics.ts, a leaf module). A task with no current version has nothing to
 * compare with: the gate passes on the candidate's own score.
 */
import { Counter, type Registry } from "prom-client";
import { KeyedMutex } from "../../adapters/keyed-mutex.js";
import { SktError, isSktError } from "../../errors.js";
import type { InferenceService, Prediction } from "../../engine/service.js";
import type { Logger } from "../../logger.js";
import { classificationReport, multiLabelReport, regressionReport } from "../../train/metrics.js";
import type { AuditLog } from "../audit/audit-log.js";
import { EVAL_SET_DOCUMENT, decodeEvalSet, type EvalSet } from "./eval-set.js";

export type GateStatus = "pending" | "running" | "passed" | "failed" | "cancelled";
export type GateMetric = "accuracy" | "micro_f1" | "pearson";
export const GATE_OUTCOMES = ["passed", "failed", "cancelled"] as const;

export interface VersionScore {
  version: number;
  /** The gate's metric; null when the set cannot score this version (other labels). */
  score: number | null;
  /** Every metric computed (accuracy, macro_f1, micro_f1, subset_accuracy, mse, pearson by problem type). */
  metrics: Record<string, number>;
}

export interface GateReport {
  task: string;
  version: number;
  status: GateStatus;
  metric: GateMetric | null;
  tolerance: number;
  eval_set: { rows: number; sha256: string } | null;
  progress: { done: number; total: number };
  candidate: VersionScore | null;
  baseline: VersionScore | null;
  /** Whether the version was made current, and why (or why not). */
  activated: boolean;
  reason: string | null;
  requested_by: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface GateRequest {
  task: string;
  version: number;
  tolerance: number;
  /** The uploading token's name and the request, for the report and the audit log. */
  actor: string | null;
  requestId: string | null;
  client: string;
}

interface Job {
  report: GateReport;
  abort: AbortController;
  /** Set when the task itself was deleted: nothing may be written next to it any more. */
  taskGone: boolean;
  request: GateRequest;
}

/** Finished reports kept in memory (for versions deleted since, whose files are gone). */
const FINISHED_KEPT = 256;

export function gateReportDocument(version: number): string {
  return `gate-v${String(version).padStart(6, "0")}.json`;
}

export function gateReportPath(task: string, version: number): string {
  return `/admin/adapters/${task}/versions/${version}/report`;
}

export interface GateRunnerOptions {
  service: InferenceService;
  logger: Logger;
  registry: Registry;
  audit: AuditLog;
}

export class GateRunner {
  private readonly jobs = new Map<string, Job>();
  private readonly finished = new Map<string, GateReport>();
  private readonly decisions = new KeyedMutex();
  private queue: Promise<void> = Promise.resolve();
  private readonly outcomes: Counter<"outcome">;

  constructor(private readonly opts: GateRunnerOptions) {
    const name = "skt_gate_outcomes_total";
    this.outcomes =
      (opts.registry.getSingleMetric(name) as Counter<"outcome"> | undefined) ??
      new Counter({
        name,
        help: "Evaluation-gate results: passed (made current), failed (kept inactive), cancelled (version or task deleted, or an error).",
        labelNames: ["outcome"],
        registers: [opts.registry],
      });
    for (const outcome of GATE_OUTCOMES) this.outcomes.inc({ outcome }, 0);
  }

  /** Refuses with 409 `no_eval_set` when the task has none (call before storing the upload). */
  async requireEvalSet(task: string): Promise<EvalSet> {
    const set = decodeEvalSet(await this.opts.service.readDocument(task, EVAL_SET_DOCUMENT));
    if (!set) {
      throw new SktError(
        "conflict",
        "no_eval_set",
        `task "${task}" has no evaluation set: PUT /admin/adapters/${task}/eval-set first, or upload without gate=true`,
        { task },
      );
    }
    return set;
  }

  /** Queues the gate of a stored inactive version; returns its first (pending) report. */
  async start(req: GateRequest, set: EvalSet): Promise<GateReport> {
    const key = keyOf(req.task, req.version);
    this.finished.delete(key);
    const report: GateReport = {
      task: req.task,
      version: req.version,
      status: "pending",
      metric: metricOf(set.problem_type),
      tolerance: req.tolerance,
      eval_set: { rows: set.rows, sha256: set.sha256 },
      progress: { done: 0, total: set.rows },
      candidate: null,
      baseline: null,
      activated: false,
      reason: null,
      requested_by: req.actor,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
    };
    const job: Job = { report, abort: new AbortController(), taskGone: false, request: req };
    this.jobs.set(key, job);
    await this.persist(job);
    this.queue = this.queue.then(() => this.run(job));
    return { ...report };
  }

  /** The report of a version's gate (in progress or finished), or null when it has none. */
  async report(task: string, version: number): Promise<GateReport | null> {
    const key = keyOf(task, version);
    const live = this.jobs.get(key)?.report ?? this.finished.get(key);
    if (live) return structuredClone(live);
    const bytes = await this.opts.service.readDocument(task, gateReportDocument(version));
    if (!bytes) return null;
    let stored: GateReport;
    try {
      stored = JSON.parse(new TextDecoder().decode(bytes)) as GateReport;
    } catch {
      throw new SktError("storage", "gate_report_unreadable", `the gate report of v${version} is not valid JSON`);
    }
    if (stored.status === "pending" || stored.status === "running") {
      // No job holds it: the server stopped while it ran.
      return { ...stored, status: "cancelled", reason: "the server stopped before the gate finished; upload again" };
    }
    return stored;
  }

  /** The version (or, without one, every version of the task) was deleted: stop its gate. */
  cancel(task: string, version?: number): void {
    for (const job of this.jobs.values()) {
      if (job.report.task !== task || (version !== undefined && job.report.version !== version)) continue;
      if (version === undefined) job.taskGone = true;
      job.abort.abort(
        new SktError(
          "conflict",
          "gate_cancelled",
          version === undefined ? `task "${task}" was deleted` : `v${version} was deleted`,
        ),
      );
    }
    // A deleted task's old reports must not describe what is uploaded under its name next.
    if (version === undefined) {
      for (const key of [...this.finished.keys()]) if (key.startsWith(`${task}@`)) this.finished.delete(key);
    }
  }

  /** A new upload took this version number (numbers are reused after deletes): forget the old report. */
  async forget(task: string, version: number): Promise<void> {
    this.finished.delete(keyOf(task, version));
    await this.opts.service.deleteDocument(task, gateReportDocument(version)).catch(() => undefined);
  }

  private async run(job: Job): Promise<void> {
    const { report } = job;
    const { task, version } = report;
    const signal = job.abort.signal;
    try {
      signal.throwIfAborted();
      report.status = "running";
      report.started_at = new Date().toISOString();
      await this.persist(job);
      const set = await this.requireEvalSet(task);
      report.eval_set = { rows: set.rows, sha256: set.sha256 };
      report.metric = metricOf(set.problem_type);
      report.progress = { done: 0, total: set.rows };
      report.candidate = await this.score(task, version, set, signal, (done) => (report.progress.done = done));
      if (report.candidate.score === null) {
        this.finish(job, "failed", `the evaluation set cannot score v${version}: its labels differ from the set's`);
      } else {
        await this.decisions.run(task, () => this.decide(job, set, signal));
      }
    } catch (e) {
      const reason: unknown = signal.aborted ? signal.reason : e;
      if (isSktError(reason) && (reason.code === "gate_cancelled" || reason.code === "version_not_found")) {
        this.finish(job, "cancelled", reason.message);
      } else {
        this.opts.logger.error({ err: e, task, version }, "evaluation gate failed");
        this.finish(
          job,
          "cancelled",
          `the evaluation could not run: ${isSktError(e) ? `${e.code}: ${e.message}` : "internal error"}`,
        );
      }
    }
    this.jobs.delete(keyOf(task, version));
    this.finished.set(keyOf(task, version), report);
    while (this.finished.size > FINISHED_KEPT) this.finished.delete(this.finished.keys().next().value!);
    if (!job.taskGone) await this.persist(job);
    await this.record(job);
  }

  /** Under the task's decision lock: score the current version, compare, activate if not worse. */
  private async decide(job: Job, set: EvalSet, signal: AbortSignal): Promise<void> {
    const { report } = job;
    const { task, version } = report;
    const candidate = report.candidate!.score!;
    for (let attempt = 0; attempt < 3; attempt++) {
      signal.throwIfAborted();
      const current = (await this.opts.service.adapterDetails(task)).current;
      if (current === version) {
        this.finish(job, "cancelled", `v${version} was made current by another request while its gate ran`);
        return;
      }
      report.baseline = current === null ? null : await this.score(task, current, set, signal);
      const baseline = report.baseline?.score ?? null;
      const threshold = baseline === null ? null : baseline - report.tolerance;
      if (threshold !== null && candidate < threshold) {
        this.finish(
          job,
          "failed",
          `${report.metric} ${fmt(candidate)} is below v${current}'s ${fmt(baseline!)} minus the tolerance ${report.tolerance}`,
        );
        return;
      }
      signal.throwIfAborted();
      try {
        await this.opts.service.activate(task, version, { expectCurrent: current });
      } catch (e) {
        if (isSktError(e) && e.code === "current_changed") continue; // compare again with the new current
        throw e;
      }
      report.activated = true;
      this.finish(
        job,
        "passed",
        current === null
          ? `no current version to compare with: activated on its own ${report.metric} ${fmt(candidate)}`
          : `${report.metric} ${fmt(candidate)} is not below v${current}'s ${fmt(baseline!)} minus the tolerance ${report.tolerance}`,
      );
      return;
    }
    this.finish(job, "cancelled", "the current version kept changing while the gate decided; upload again");
  }

  private async score(
    task: string,
    version: number,
    set: EvalSet,
    signal: AbortSignal,
    onProgress?: (done: number) => void,
  ): Promise<VersionScore> {
    const predictions = await this.opts.service.evaluate({
      task,
      version,
      texts: set.examples.map((e) => e.text),
      ...(set.text_pair ? { pairs: set.examples.map((e) => e.pair ?? "") } : {}),
      signal,
      onProgress,
    });
    return { version, ...scorePredictions(set, predictions) };
  }

  private finish(job: Job, status: GateStatus, reason: string): void {
    job.report.status = status;
    job.report.reason = reason;
    job.report.finished_at = new Date().toISOString();
  }

  private async persist(job: Job): Promise<void> {
    const { task, version } = job.report;
    try {
      await this.opts.service.writeDocument(
        task,
        gateReportDocument(version),
        new TextEncoder().encode(JSON.stringify(job.report)),
      );
    } catch (e) {
      // The report stays readable from memory; the gate's decision does not depend on the file.
      this.opts.logger.warn({ err: e, task, version }, "could not write the gate report");
    }
  }

  private async record(job: Job): Promise<void> {
    const { report, request } = job;
    const outcome = report.status as (typeof GATE_OUTCOMES)[number];
    this.outcomes.inc({ outcome });
    this.opts.logger.info(
      { task: report.task, version: report.version, outcome, reason: report.reason },
      "evaluation gate finished",
    );
    try {
      await this.opts.audit.append({
        request_id: request.requestId,
        actor: request.actor,
        action: `gate_${outcome}`,
        method: "GATE",
        path: gateReportPath(report.task, report.version),
        task: report.task,
        version: report.version,
        sha256: null,
        status: outcome === "passed" ? 200 : 409,
        result: outcome === "passed" ? "ok" : "failed",
        code: outcome === "passed" ? null : `gate_${outcome}`,
        client: request.client,
      });
    } catch (e) {
      this.opts.logger.error({ err: e, task: report.task }, "audit log write failed for a gate result");
    }
  }
}

function keyOf(task: string, version: number): string {
  return `${task}@${version}`;
}

function fmt(x: number): string {
  return x.toFixed(4);
}

export function metricOf(problemType: EvalSet["problem_type"]): GateMetric {
  return problemType === "regression"
    ? "pearson"
    : problemType === "multi_label_classification"
      ? "micro_f1"
      : "accuracy";
}

/**
 * The set's metrics for these predictions. Predictions are matched to the set's labels by name; a
 * version whose labels are not the set's cannot be scored (score null).
 */
export function scorePredictions(set: EvalSet, predictions: Prediction[]): Omit<VersionScore, "version"> {
  const metric = metricOf(set.problem_type);
  if (set.problem_type === "regression") {
    const gold = set.examples.map((e) => e.label as number);
    const pred = predictions.map((p) => p.value ?? NaN);
    if (!pred.every(Number.isFinite)) return { score: null, metrics: {} };
    const r = regressionReport(gold, pred);
    return { score: r.pearson, metrics: { pearson: r.pearson, mse: r.mse } };
  }
  const index = new Map(set.labels.map((l, i) => [l, i]));
  const sameLabels = (p: Prediction) =>
    p.scores !== undefined &&
    Object.keys(p.scores).length === set.labels.length &&
    set.labels.every((l) => l in p.scores!);
  if (!predictions.every(sameLabels)) return { score: null, metrics: {} };
  if (set.problem_type === "multi_label_classification") {
    const gold = set.examples.map((e) => (e.label as string[]).map((l) => index.get(l)!));
    // A label applies when its sigmoid probability reaches 0.5 (the head's logit ≥ 0).
    const pred = predictions.map((p) => set.labels.flatMap((l, i) => (p.scores![l] >= 0.5 ? [i] : [])));
    const r = multiLabelReport(gold, pred, set.labels.length);
    return {
      score: r.microF1,
      metrics: { micro_f1: r.microF1, macro_f1: r.macroF1, subset_accuracy: r.subsetAccuracy },
    };
  }
  const gold = set.examples.map((e) => index.get(e.label as string)!);
  const pred = predictions.map((p) => index.get(p.label!)!);
  const r = classificationReport(gold, pred, set.labels.length);
  return {
    score: metric === "accuracy" ? r.accuracy : r.macroF1,
    metrics: { accuracy: r.accuracy, macro_f1: r.macroF1 },
  };
}
