/**
 * SKT_INFERENCE_NICE (src/engine/thread-priority.ts): an inference worker's thread and the
 * onnxruntime threads its sessions create run that many nice levels below the main thread, which
 * keeps its own. Read from /proc/self/task/<tid>/stat (Linux only, as the setting is).
 */
import { readdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { describe, expect, it } from "vitest";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { InferenceWorker } from "../../src/engine/inference-worker.js";
import { startPriorityThread } from "../helpers/priority-thread.js";

/** Nice value of every thread of this process, by thread id. */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      // Fields after the command name: state is field 3, nice field 19.
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, "utf8").split(") ")[1].split(" ");
      out.set(Number(tid), Number(fields[16]));
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out;
}

const count = (m: Map<number, number>, nice: number) => [...m.values()].filter((n) => n === nice).length;

describe.runIf(process.platform === "linux")("inference threads' priority (SKT_INFERENCE_NICE)", () => {
  const base = os.getPriority(0);

  it("lowerThreadPriority changes the calling thread only, relative to where it was", async () => {
    const before = count(niceByThread(), base + 3);
    const worker = startPriorityThread(3);
    try {
      const reported = await new Promise((resolve, reject) => {
        worker.once("message", resolve);
        worker.once("error", reject);
      });
      expect(reported).toBe(base + 3);
      const after = niceByThread();
      expect(count(after, base + 3)).toBe(before + 1);
      expect(after.get(process.pid)).toBe(base);
    } finally {
      await worker.terminate();
    }
  });

  it("an inference worker's thread and its onnxruntime threads take SKT_INFERENCE_NICE; 0 leaves them equal", async () => {
    const levels = 4;
    const open = async (nice: number) => {
      const w = new InferenceWorker({ modelsDir: MODELS_DIR, threads: 3, device: "cpu", precision: "fp32", nice });
      await w.start();
      return w;
    };
    const before = count(niceByThread(), base + levels);
    const lowered = await open(levels);
    try {
      const during = niceByThread();
      // The worker thread itself, and onnxruntime's intra-op pool (threads - 1 per session, at least one session).
      expect(count(during, base + levels) - before).toBeGreaterThanOrEqual(3);
      expect(during.get(process.pid)).toBe(base);
    } finally {
      await lowered.close();
    }
    // One thread that the process's first sessions start outlives the worker with its priority
    // (seen: 6 lowered threads while the worker ran, 1 after); the others end with it.
    await new Promise((r) => setTimeout(r, 500));
    const afterClose = count(niceByThread(), base + levels);
    expect(afterClose - before).toBeLessThanOrEqual(1);
    const equal = await open(0);
    try {
      expect(count(niceByThread(), base + levels)).toBe(afterClose);
    } finally {
      await equal.close();
    }
  });
});
