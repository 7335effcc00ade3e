/**
 * Several threads of one process using WebGPU sessions at once, as several inference workers on
 * SKT_DEVICE=webgpu do: each thread opens its own device prefix banks (prefix-banks.ts: three small
 * WebGPU sessions whose outputs stay on the device) and runs `--iters` upload + read batches, then
 * releases them. With the process's device lock (device-lock.ts) the threads take turns; with
 * `--no-lock` each thread keeps a lock of its own, i.e. none, and onnxruntime's shared WebGPU
 * context is used from several threads at once.
 *
 * Measured on SwiftShader (2-core VM, 2026-12-01): 3 threads × 300 batches without the lock died in
 * 7 of 7 runs (5 with a first draft of this script, 2 with `--no-lock`: SIGSEGV in 6, glibc's
 * "malloc(): unsorted double linked list corrupted" in 1); with the lock 3 of 3 finished, and one
 * thread alone never crashed (docs/webgpu.md "Threads and the device").
 *
 *   npx tsx scripts/webgpu-thread-race.ts [--threads 3] [--iters 200] [--no-lock]
 */
import { parseArgs } from "node:util";
import { isMainThread, threadId, workerData } from "node:worker_threads";
import { adoptDeviceLock, deviceLockHandle } from "../src/backbone/device-lock.js";
import { PrefixBanks } from "../src/backbone/prefix-banks.js";
import { startThread } from "../src/engine/thread.js";
import { prepareWebGpuEnv } from "./lib/webgpu-env.js";

interface RaceThread {
  iters: number;
  /** The main thread's lock, or null: this thread keeps its own (no exclusion). */
  lock: SharedArrayBuffer | null;
}

const LAYERS = [
  { heads: 4, headDim: 8 },
  { heads: 4, headDim: 8 },
];
const P_MAX = 4;

/** One thread's work: open banks, `iters` batches that upload one slot and read three rows, release. */
async function raceThread({ iters, lock }: RaceThread): Promise<void> {
  if (lock) adoptDeviceLock(lock);
  const banks = await PrefixBanks.open(LAYERS);
  const items = LAYERS[0].heads * P_MAX * LAYERS[0].headDim;
  for (let i = 0; i < iters; i++) {
    const slot = BigInt(1 + (i % 3));
    const upload = {
      slots: BigInt64Array.of(slot),
      keys: LAYERS.map(() => new Float32Array(items).fill(i)),
      values: LAYERS.map(() => new Float32Array(items).fill(-i)),
    };
    const rows = BigInt64Array.of(slot, 0n, slot);
    const out = await banks.inputs({ generation: 1, capacity: 4, pMax: P_MAX, rowSlots: rows, upload }, 3);
    for (const t of Object.values(out)) t.dispose();
  }
  await banks.release();
}

/** A worker thread running this file; resolves with its exit code. */
function spawn(data: RaceThread): Promise<number> {
  return new Promise((resolve, reject) => {
    const worker = startThread(import.meta.url, data);
    worker.on("error", reject);
    worker.on("exit", resolve);
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      threads: { type: "string", default: "3" },
      iters: { type: "string", default: "200" },
      "no-lock": { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: npx tsx scripts/webgpu-thread-race.ts [--threads N] [--iters N] [--no-lock]");
    return;
  }
  const env = prepareWebGpuEnv();
  if (!env.available) throw new Error(env.reason);
  const threads = Number(values.threads);
  const iters = Number(values.iters);
  const lock = values["no-lock"] ? null : deviceLockHandle();
  const started = performance.now();
  const codes = await Promise.all(Array.from({ length: threads }, () => spawn({ iters, lock })));
  const ms = performance.now() - started;
  if (codes.some((c) => c !== 0)) throw new Error(`thread exit codes ${codes.join(", ")}`);
  console.log(
    `${threads} threads × ${iters} bank batches, ${lock ? "one device lock" : "no lock"}: all threads finished in ${ms.toFixed(0)} ms`,
  );
}

if (isMainThread) await main();
else
  await raceThread(workerData as RaceThread).catch((e) => {
    console.error(`thread ${threadId}:`, e);
    process.exitCode = 1;
  });
