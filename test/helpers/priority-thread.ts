/**
 * A thread for test/engine/thread-priority.test.ts: lowers its own priority by `workerData` levels,
 * posts what lowerThreadPriority returned, and stays alive until terminated.
 */
import { isMainThread, parentPort, workerData, type Worker } from "node:worker_threads";
import { lowerThreadPriority } from "../../src/engine/thread-priority.js";
import { startThread } from "../../src/engine/thread.js";

/** Starts a thread running this file. */
export function startPriorityThread(levels: number): Worker {
  return startThread(import.meta.url, levels);
}

if (!isMainThread && typeof workerData === "number") {
  parentPort!.postMessage(lowerThreadPriority(workerData));
  setInterval(() => {}, 1000);
}
