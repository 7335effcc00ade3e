/**
 * The inference worker thread: owns the onnxruntime sessions and runs one batch at a time, so the
 * main thread's event loop never blocks on a graph run (use-lite.md measured 772 ms stalls).
 * Messages are handled strictly in order; "close" waits for the run before it and then exits, since
 * terminating a thread inside a native onnxruntime call aborts the whole process.
 */
import { parentPort, workerData } from "node:worker_threads";
import { BackboneRunner } from "../backbone/backbone.js";
import { adoptDeviceLock } from "../backbone/device-lock.js";
import { lowerThreadPriority } from "./thread-priority.js";
import type { WorkerData, WorkerReply, WorkerRequest } from "./worker-protocol.js";

const init = workerData as WorkerData;
const port = parentPort!;
// Every thread of the process takes the same lock before touching the WebGPU device.
adoptDeviceLock(init.deviceLock);

async function handle(runner: BackboneRunner, msg: WorkerRequest): Promise<void> {
  if (msg.type === "close") {
    await runner.release();
    process.exit(0);
  }
  if (msg.type === "crash") process.exit(70); // fault injection for tests (the exit hook below still runs)
  const started = performance.now();
  try {
    const raw = await runner.run(msg.batch);
    // onnxruntime's output buffers may be views into larger blocks; copy so transfer is safe.
    const outputs = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, Float32Array.from(v)]));
    const reply: WorkerReply = { type: "result", id: msg.id, outputs, runMs: performance.now() - started };
    port.postMessage(
      reply,
      Object.values(outputs).map((a) => a.buffer),
    );
  } catch (e) {
    port.postMessage({
      type: "error",
      id: msg.id,
      message: (e as Error).message,
      code: (e as { code?: string }).code,
    } satisfies WorkerReply);
  }
}

// Before any session exists: onnxruntime's intra-op threads inherit the priority of the thread that creates them.
lowerThreadPriority(init.nice ?? 0);

try {
  const runnerOptions = {
    threads: init.threads,
    device: init.device,
    precision: init.precision,
    packed: init.packed,
    shareWeights: init.shareWeights,
    spinning: init.spinning,
  };
  const runner = await (init.backboneDir
    ? BackboneRunner.open(init.backboneDir, runnerOptions)
    : BackboneRunner.create(init.modelsDir, runnerOptions));
  // However the thread ends (a crash, an uncaught error), its sessions and device buffers are released
  // under the device lock first, not by finalizers during the thread's teardown, which take no lock.
  process.on("exit", () => runner.releaseBeforeExit());
  let chain = Promise.resolve();
  port.on("message", (msg: WorkerRequest) => {
    chain = chain.then(() => handle(runner, msg));
  });
  port.postMessage({
    type: "ready",
    device: runner.deviceInfo,
    input: runner.input,
    layout: runner.layout,
  } satisfies WorkerReply);
} catch (e) {
  port.postMessage({
    type: "failed",
    message: (e as Error).message,
    code: (e as { code?: string }).code,
  } satisfies WorkerReply);
}
