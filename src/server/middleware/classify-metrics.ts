/**
 * Counts `/classify` (and `/embed`) requests (`skt_requests_total{task,status}`) and times them
 * (`skt_request_duration_seconds{task}`). Only served tasks get their own label value; invalid or
 * unknown names are all `__unknown__`, so random names cannot blow up label cardinality; past
 * MAX_TASK_LABELS served tasks the rest share `__other__`. A call naming several tasks
 * (`?task=a&task=b`) counts once under each distinct label, so per-task rates stay per task.
 */
import type { MiddlewareHandler } from "hono";
import { TASK_NAME_PATTERN } from "../../adapters/spec.js";
import type { InferenceService } from "../../engine/service.js";
import { UNKNOWN_TASK_LABEL, type SktMetrics } from "../../metrics.js";
import type { AppEnv } from "../context.js";

export function taskLabel(service: InferenceService, metrics: SktMetrics, task: string | undefined): string {
  if (task === undefined || !TASK_NAME_PATTERN.test(task)) return UNKNOWN_TASK_LABEL;
  return service.hasTask(task) ? metrics.taskLabel(task) : UNKNOWN_TASK_LABEL;
}

/** `fixedLabel`: the `task` label for a route that serves no task (e.g. "__embed__" for /embed). */
export function classifyMetrics(
  service: InferenceService,
  metrics: SktMetrics,
  fixedLabel?: string,
): MiddlewareHandler<AppEnv> {
  return async function classifyMetrics(c, next) {
    const start = performance.now();
    try {
      await next();
    } finally {
      const seconds = (performance.now() - start) / 1000;
      const labels =
        fixedLabel !== undefined
          ? [fixedLabel]
          : (c.req.queries("task") ?? [undefined]).map((t) => taskLabel(service, metrics, t));
      recordInferenceRequest(metrics, labels, c.res.status, seconds);
    }
  };
}

/** Counts and times one answered inference request under each distinct task label it named. */
export function recordInferenceRequest(metrics: SktMetrics, labels: string[], status: number, seconds: number): void {
  for (const task of new Set(labels)) {
    metrics.requests.inc({ task, status: String(status) });
    metrics.requestDuration.observe({ task }, seconds);
  }
}
