/**
 * One thread at a time on the WebGPU device, process-wide.
 *
 * onnxruntime's WebGPU provider (1.30) keeps one context per process — one command encoder, one
 * buffer cache — and every session of every thread records into it without synchronisation
 * (microsoft/onnxruntime#32561, #27592; the fix proposed in #29851 / #32587 is not released). Two
 * threads creating, running or releasing WebGPU sessions at the same time corrupt the heap:
 * `scripts/webgpu-thread-race.ts` crashed (SIGSEGV, or glibc's "malloc(): unsorted double linked
 * list corrupted") in 7 of 7 runs with 3 threads, never with one thread or with this lock.
 *
 * The lock is a word in a SharedArrayBuffer: the main thread makes it, every inference worker adopts
 * the main thread's (worker-protocol.ts carries it in `workerData`). It is re-entrant per thread: the
 * sessions of one thread are only ever called from that thread's single JS stack, so async sections
 * of the same thread may interleave; other threads block in `Atomics.wait` (allowed in Node on every
 * thread) until the holder's outermost section ends. CPU sessions never take it.
 */
import { threadId } from "node:worker_threads";
import type { Device } from "./device.js";

const FREE = 0;
/** This thread's mark in the lock word (the main thread's threadId is 0). */
const ME = threadId + 1;

let word = new Int32Array(new SharedArrayBuffer(4));
/** How many of this thread's sections hold the lock now (only this thread reads or writes it). */
let depth = 0;

/** The lock to hand to a worker thread (`adoptDeviceLock` there). */
export function deviceLockHandle(): SharedArrayBuffer {
  return word.buffer;
}

/** Makes this thread share the lock of the thread that made `handle`; call before any device work. */
export function adoptDeviceLock(handle: SharedArrayBuffer): void {
  if (depth > 0) throw new Error("adoptDeviceLock: this thread holds the device lock");
  word = new Int32Array(handle);
}

function acquire(): void {
  if (depth > 0) {
    depth++;
    return;
  }
  for (;;) {
    const holder = Atomics.compareExchange(word, 0, FREE, ME);
    if (holder === FREE) break;
    if (holder === ME) throw new Error("device lock: held by this thread with no open section (leaked)");
    Atomics.wait(word, 0, holder);
  }
  depth = 1;
}

function release(): void {
  if (--depth > 0) return;
  Atomics.store(word, 0, FREE);
  Atomics.notify(word, 0, 1);
}

/** Runs `fn` holding the device lock when `device` is WebGPU (and as is on any other device). */
export async function onDevice<T>(device: Device, fn: () => Promise<T>): Promise<T> {
  if (device !== "webgpu") return fn();
  acquire();
  try {
    return await fn();
  } finally {
    release();
  }
}

/** The synchronous form, for a thread's exit hook. */
export function onDeviceSync<T>(device: Device, fn: () => T): T {
  if (device !== "webgpu") return fn();
  acquire();
  try {
    return fn();
  } finally {
    release();
  }
}

/**
 * Frees the lock if the thread `deadThreadId` (a worker that has exited) still holds it: a thread
 * stopped inside a section (terminated, or killed by an error that skipped its `finally`) would
 * otherwise keep every other thread off the device for good. Returns whether it held the lock.
 */
export function freeDeviceLockOf(deadThreadId: number): boolean {
  if (Atomics.compareExchange(word, 0, deadThreadId + 1, FREE) !== deadThreadId + 1) return false;
  Atomics.notify(word, 0, 1);
  return true;
}

/** Whether another thread holds the lock now (tests). */
export function deviceLockHeldElsewhere(): boolean {
  const holder = Atomics.load(word, 0);
  return holder !== FREE && holder !== ME;
}
