/**
 * A thread for test/backbone/device-lock.test.ts: `sections` times, enters an onDevice("webgpu")
 * section that counts itself in `counters[0]` (threads inside now), records the most seen at once
 * in `counters[1]`, sleeps `holdMs` inside and leaves. `lock`: the main thread's device lock, or
 * null to keep this thread's own (no exclusion between threads). The threads start their sections
 * together: each waits until `threads` of them have counted themselves ready in `counters[2]`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isMainThread, workerData, type Worker } from "node:worker_threads";
import { adoptDeviceLock, onDevice } from "../../src/backbone/device-lock.js";
import { startThread } from "../../src/engine/thread.js";

export interface LockThreadData {
  lock: SharedArrayBuffer | null;
  counters: SharedArrayBuffer;
  sections: number;
  holdMs: number;
  threads: number;
}

/** Starts a thread running this file. */
export function startLockThread(data: LockThreadData): Worker {
  return startThread(import.meta.url, data);
}

/** Starts a thread running this file; resolves with its exit code. */
export function runLockThread(data: LockThreadData): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = startLockThread(data);
    worker.on("error", reject);
    worker.on("exit", resolve);
  });
}

/** Counts one section in: returns how many are inside now, and keeps the maximum. */
export function enterCounted(counters: Int32Array): number {
  const inside = Atomics.add(counters, 0, 1) + 1;
  for (let seen = Atomics.load(counters, 1); inside > seen; seen = Atomics.load(counters, 1))
    if (Atomics.compareExchange(counters, 1, seen, inside) === seen) break;
  return inside;
}

if (!isMainThread && (workerData as LockThreadData | undefined)?.counters) {
  const { lock, counters, sections, holdMs, threads } = workerData as LockThreadData;
  if (lock) adoptDeviceLock(lock);
  const c = new Int32Array(counters);
  Atomics.add(c, 2, 1);
  Atomics.notify(c, 2);
  for (let ready = Atomics.load(c, 2); ready < threads; ready = Atomics.load(c, 2)) Atomics.wait(c, 2, ready);
  for (let i = 0; i < sections; i++)
    await onDevice("webgpu", async () => {
      enterCounted(c);
      await sleep(holdMs);
      Atomics.sub(c, 0, 1);
    });
}
