/**
 * Several threads on the WebGPU device at once (src/backbone/device-lock.ts), on SwiftShader.
 * onnxruntime's WebGPU provider shares one unsynchronised context per process; without the lock,
 * three threads of `scripts/webgpu-thread-race.ts` crashed the process in 7 of 7 runs (SIGSEGV or glibc's
 * heap checks), so the first test runs that script with the lock in a child process (a crash there
 * fails the test with its exit code instead of taking this file's fork down). The second is the
 * server's case: two inference workers on WebGPU serving concurrent requests of three tasks give
 * exactly the answers of one worker (the provider is deterministic: lifecycle.test.ts).
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";
import { startEngineRig, type EngineRig } from "../reliability/helpers.js";

describe.skipIf(skipWebGpu)(webgpuSuite("threads sharing the WebGPU device"), { timeout: 600_000 }, () => {
  let one: EngineRig;
  let two: EngineRig;
  const tasks = ["a", "b", "c"] as const;

  beforeAll(async () => {
    requireWebGpuDriver();
    // Started together: two workers of one engine, and the other engine's, load sessions at once.
    // Batches of one row: both engines run the same batches whatever the timing, so exact equality
    // holds (rows batched differently pad differently, which moves the floats by ~1e-7).
    const config = { device: "webgpu", requestTimeoutMs: 300_000, maxBatchSize: 1, maxWaitMs: 0 } as const;
    [one, two] = await Promise.all([
      startEngineRig({ ...config, workers: 1 }),
      startEngineRig({ ...config, workers: 2 }),
    ]);
    for (const r of [one, two])
      for (const [i, task] of tasks.entries())
        await r.engine.upload(
          task,
          servableAdapterBytes(r.engine.assets, { task, variant: i === 1 ? "prompt" : "prefix", seed: i + 1 }),
        );
  });
  afterAll(async () => Promise.all([one?.close(), two?.close()]));

  it("three threads running bank sessions at once finish cleanly with the lock", () => {
    const tsx = path.join(REPO_ROOT, "node_modules", ".bin", "tsx");
    const script = path.join(REPO_ROOT, "scripts", "webgpu-thread-race.ts");
    const run = spawnSync(tsx, [script, "--threads", "3", "--iters", "100"], { encoding: "utf8", timeout: 300_000 });
    expect({ status: run.status, signal: run.signal, stderr: run.stderr.slice(-2000) }).toEqual({
      status: 0,
      signal: null,
      stderr: "",
    });
    expect(run.stdout).toMatch(/3 threads × 100 bank batches, one device lock: all threads finished/);
  });

  it("two WebGPU workers serving concurrent requests of three tasks answer as one worker", async () => {
    const calls = Array.from({ length: 12 }, (_, i) => ({
      task: tasks[i % 3],
      texts: [i % 2 ? `text number ${i}` : `and a longer text, number ${i}`],
    }));
    const scores = (r: EngineRig) =>
      Promise.all(calls.map(async (c) => (await r.engine.classify(c)).predictions.map((p) => p.scores)));
    const runs = two.engine.workers.map((w) => vi.spyOn(w, "run"));
    const [single, pair] = await Promise.all([scores(one), scores(two)]);
    expect(pair).toEqual(single);
    // Both of the pair's workers ran batches.
    expect(runs.map((r) => r.mock.calls.length > 0)).toEqual([true, true]);
  });
});
