/**
 * SKT_INFERENCE_NICE: an inference worker thread lowers its own scheduling priority, so that when
 * the cores are all busy the kernel runs the main thread (HTTP, tokenization, batching, /metrics)
 * first instead of making it queue behind onnxruntime's threads.
 *
 * On Linux a thread is a task with its own nice value: `setpriority(PRIO_PROCESS, 0, …)` (what
 * `os.setPriority(0, …)` calls) changes the calling thread only, and threads it creates later
 * (onnxruntime's intra-op pool) inherit it. Elsewhere the same call changes the whole process, so
 * nothing is done there.
 */
import os from "node:os";

/** The most a nice value can be. */
const NICEST = 19;

/**
 * Raises the calling thread's nice value by `levels` (relative, so a server started under `nice`
 * keeps its offset; raising needs no privilege). Returns the thread's nice value, or undefined
 * when nothing was changed.
 */
export function lowerThreadPriority(levels: number): number | undefined {
  if (process.platform !== "linux" || levels <= 0) return undefined;
  const target = Math.min(NICEST, os.getPriority(0) + levels);
  os.setPriority(0, target);
  return target;
}
