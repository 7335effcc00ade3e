/**
 * The process-wide WebGPU device lock (src/backbone/device-lock.ts), without a GPU: threads that
 * adopted the main thread's lock never have two device sections open at once, while the same threads
 * with a lock each (no exclusion) do overlap (the control, so the count can fail); a thread's own
 * async sections re-enter instead of deadlocking; a section that throws frees the lock; CPU work
 * never waits for it; a thread stopped inside its section can be freed (inference-worker.ts does on
 * every worker exit). test/webgpu/device-lock.test.ts runs real WebGPU sessions from several threads.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  deviceLockHandle,
  deviceLockHeldElsewhere,
  freeDeviceLockOf,
  onDevice,
} from "../../src/backbone/device-lock.js";
import { enterCounted, runLockThread, startLockThread } from "../helpers/device-lock-thread.js";

const counters = () => new SharedArrayBuffer(3 * 4);

async function threadsMaxInside(lock: SharedArrayBuffer | null, threads = 3): Promise<number> {
  const shared = counters();
  const codes = await Promise.all(
    Array.from({ length: threads }, () => runLockThread({ lock, counters: shared, sections: 12, holdMs: 15, threads })),
  );
  expect(codes).toEqual(Array(threads).fill(0));
  const c = new Int32Array(shared);
  expect(Atomics.load(c, 0)).toBe(0);
  return Atomics.load(c, 1);
}

describe("the WebGPU device lock", { timeout: 60_000 }, () => {
  it("threads sharing the main thread's lock never overlap; with a lock each they do", async () => {
    expect(await threadsMaxInside(deviceLockHandle())).toBe(1);
    expect(await threadsMaxInside(null)).toBeGreaterThan(1);
  });

  it("one thread's interleaved async sections re-enter, then the lock is free for other threads", async () => {
    const c = new Int32Array(counters());
    await Promise.all(
      Array.from({ length: 4 }, () =>
        onDevice("webgpu", async () => {
          enterCounted(c);
          await sleep(20);
          Atomics.sub(c, 0, 1);
        }),
      ),
    );
    expect(Atomics.load(c, 1)).toBe(4);
    expect(await threadsMaxInside(deviceLockHandle(), 1)).toBe(1);
  });

  it("a section that throws frees the lock", async () => {
    await expect(
      onDevice("webgpu", async () => {
        await sleep(1);
        throw new Error("run failed");
      }),
    ).rejects.toThrow("run failed");
    expect(await threadsMaxInside(deviceLockHandle(), 2)).toBe(1);
  });

  it("blocks this thread while another holds it; CPU work does not wait", async () => {
    const shared = counters();
    const c = new Int32Array(shared);
    const holder = runLockThread({ lock: deviceLockHandle(), counters: shared, sections: 1, holdMs: 400, threads: 1 });
    while (Atomics.load(c, 0) === 0) await sleep(5);
    expect(deviceLockHeldElsewhere()).toBe(true);
    // On the CPU the section runs at once, while the other thread is still inside.
    expect(await onDevice("cpu", async () => Atomics.load(c, 0))).toBe(1);
    // On WebGPU this thread waits until the holder has left its section.
    expect(await onDevice("webgpu", async () => Atomics.load(c, 0))).toBe(0);
    expect(await holder).toBe(0);
    expect(deviceLockHeldElsewhere()).toBe(false);
  });

  it("a thread terminated inside its section keeps the lock until freeDeviceLockOf frees it", async () => {
    const shared = counters();
    const c = new Int32Array(shared);
    const worker = startLockThread({
      lock: deviceLockHandle(),
      counters: shared,
      sections: 1,
      holdMs: 60_000,
      threads: 1,
    });
    const id = worker.threadId;
    while (Atomics.load(c, 0) === 0) await sleep(5);
    await worker.terminate();
    expect(deviceLockHeldElsewhere()).toBe(true);
    expect(freeDeviceLockOf(id + 1)).toBe(false); // another thread's id frees nothing
    expect(freeDeviceLockOf(id)).toBe(true);
    expect(deviceLockHeldElsewhere()).toBe(false);
    expect(await onDevice("webgpu", async () => "ran")).toBe("ran");
  });
});
