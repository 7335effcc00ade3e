/**
 * Several tasks over the same texts in one call, built on the per-task `classify`: every task is
 * checked to be served before anything is queued, then each task's rows are submitted at once, so
 * they land in the same batching window and share backbone passes (prompt- and prefix-variant rows
 * mix in one batch, see assemble.ts). Each task keeps its own tokenization, because the truncation
 * budget is the adapter's (a soft prompt takes positions a prefix does not). The first failure
 * cancels the other tasks' rows, so a failed call does not keep the queue busy.
 */
import { SktError } from "../errors.js";
import type { ClassifyRequest, ClassifyResult, InferenceService } from "./service.js";

export interface MultiClassifyRequest extends Omit<ClassifyRequest, "task"> {
  /** Distinct task names, in the order the results are wanted. */
  tasks: string[];
}

export async function classifyTasks(service: InferenceService, req: MultiClassifyRequest): Promise<ClassifyResult[]> {
  if (!service.isReady())
    throw new SktError(
      "not_ready",
      "not_ready",
      "the backbone is not loaded or the inference worker is restarting; retry shortly",
    );
  const unknown = req.tasks.find((task) => !service.hasTask(task));
  if (unknown !== undefined)
    throw new SktError(
      "not_found",
      "unknown_task",
      `no adapter is registered for task "${unknown}"; nothing was run for the other tasks (GET /tasks lists the servable tasks)`,
      { task: unknown },
    );

  const { tasks, signal, ...shared } = req;
  const group = new AbortController();
  const onCallerAbort = () => group.abort(signal?.reason);
  if (signal?.aborted) onCallerAbort();
  else signal?.addEventListener("abort", onCallerAbort, { once: true });
  try {
    return await Promise.all(
      tasks.map((task) =>
        service.classify({ ...shared, task, signal: group.signal }).catch((e: unknown) => {
          group.abort(e); // the siblings settle with the same error; Promise.all reports the first
          throw e;
        }),
      ),
    );
  } finally {
    signal?.removeEventListener("abort", onCallerAbort);
  }
}
