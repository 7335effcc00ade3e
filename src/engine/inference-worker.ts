/**
 * Main-thread handle on the inference worker: sends batches, matches replies, and restarts the
 * worker if it dies (requests in flight then fail with `not_ready`, later ones succeed). Events:
 * "ready" (DeviceInfo), "down" (exit code; after its pending runs failed), "restarting" (count).
 */
import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { BackboneBatch, BackboneOutputs } from "../backbone/backbone.js";
import type { DeviceInfo } from "../backbone/device.js";
import type { GraphInput } from "../backbone/token-input.js";
import type { GraphLayout } from "../backbone/packing.js";
import { SktError } from "../errors.js";
import { deviceLockHandle, freeDeviceLockOf } from "../backbone/device-lock.js";
import { startThread } from "./thread.js";
import type { WorkerData, WorkerInit, WorkerReply } from "./worker-protocol.js";

interface Pending {
  resolve: (r: { outputs: BackboneOutputs; runMs: number }) => void;
  reject: (e: Error) => void;
}

const WORKER_URL = new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);

function spawnWorker(init: WorkerInit): Worker {
  const workerData: WorkerData = { ...init, deviceLock: deviceLockHandle() };
  return startThread(WORKER_URL, workerData);
}

export interface InferenceWorkerOptions extends WorkerInit {
  /** Restart the worker after it dies (default true). */
  restart?: boolean;
}

export class InferenceWorker extends EventEmitter {
  private worker: Worker | null = null;
  private ready = false;
  private closing = false;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private restarts = 0;
  private device: DeviceInfo | null = null;
  private input: GraphInput = "embeds";
  private graphLayout: GraphLayout = "padded";

  constructor(private readonly opts: InferenceWorkerOptions) {
    super();
  }

  isReady(): boolean {
    return this.ready;
  }

  /** The device the worker's sessions run on (null before the first start). */
  get deviceInfo(): DeviceInfo | null {
    return this.device;
  }

  /** What the worker's graphs take (embeddings or token ids; token-input.ts), as of its last start. */
  get graphInput(): GraphInput {
    return this.input;
  }

  /** The layout of the graphs the worker serves (reported when it is ready; batches are assembled for it). */
  get layout(): GraphLayout {
    return this.graphLayout;
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** Starts the worker; resolves once its sessions are loaded. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const init: WorkerInit = {
        modelsDir: this.opts.modelsDir,
        backboneDir: this.opts.backboneDir,
        threads: this.opts.threads,
        device: this.opts.device,
        precision: this.opts.precision,
        packed: this.opts.packed,
        shareWeights: this.opts.shareWeights,
        spinning: this.opts.spinning,
        nice: this.opts.nice,
      };
      const worker = spawnWorker(init);
      this.worker = worker;
      let started = false;
      worker.on("message", (msg: WorkerReply) => {
        if (msg.type === "ready") {
          started = true;
          this.ready = true;
          this.device = msg.device;
          this.input = msg.input;
          this.graphLayout = msg.layout;
          this.emit("ready", msg.device);
          resolve();
        } else if (msg.type === "failed") {
          reject(
            new SktError(
              "not_ready",
              msg.code ?? "backbone_load_failed",
              `inference worker could not load the backbone: ${msg.message}`,
            ),
          );
          void worker.terminate();
        } else this.settle(msg);
      });
      worker.on("error", (e) => this.emit("worker-error", e));
      const threadId = worker.threadId;
      worker.on("exit", (code) => {
        this.ready = false;
        freeDeviceLockOf(threadId);
        if (this.worker === worker) this.worker = null;
        this.failPending(
          new SktError(
            "not_ready",
            "worker_crashed",
            `the inference worker stopped (exit code ${code}); the request was not completed, retry it`,
          ),
        );
        this.emit("down", code);
        if (!started)
          reject(
            new SktError("not_ready", "worker_start_failed", `inference worker exited during start-up (code ${code})`),
          );
        else if (!this.closing && this.opts.restart !== false) this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    this.restarts++;
    this.emit("restarting", this.restarts);
    const delay = Math.min(5_000, 100 * 2 ** Math.min(this.restarts - 1, 6));
    setTimeout(() => {
      if (this.closing) return;
      this.start().catch((e) => {
        this.emit("worker-error", e);
        this.scheduleRestart();
      });
    }, delay).unref();
  }

  private settle(msg: WorkerReply): void {
    if (msg.type !== "result" && msg.type !== "error") return;
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.type === "result") p.resolve({ outputs: msg.outputs, runMs: msg.runMs });
    else p.reject(new SktError("internal", msg.code ?? "inference_failed", `inference failed: ${msg.message}`));
  }

  private failPending(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Runs one batch; its input buffers are transferred to the worker (do not reuse them). */
  run(batch: BackboneBatch): Promise<{ outputs: BackboneOutputs; runMs: number }> {
    const worker = this.worker;
    if (!worker || !this.ready)
      return Promise.reject(
        new SktError(
          "not_ready",
          "worker_not_ready",
          "the inference worker is not running (starting or restarting); retry shortly",
        ),
      );
    const id = this.nextId++;
    const inputs = batch.tokenIds ? [batch.tokenIds.ids, batch.tokenIds.promptRows] : [batch.inputsEmbeds];
    const transfer: ArrayBuffer[] = [...inputs, batch.attentionMask].map((a) => a.buffer as ArrayBuffer);
    if (batch.tokenTypeIds) transfer.push(batch.tokenTypeIds.buffer as ArrayBuffer);
    if (batch.packing)
      transfer.push(batch.packing.packedIndex.buffer as ArrayBuffer, batch.packing.paddedIndex.buffer as ArrayBuffer);
    if (batch.prefix)
      transfer.push(
        ...[...batch.prefix.keys, ...batch.prefix.values, batch.prefix.mask].map((a) => a.buffer as ArrayBuffer),
      );
    const banked = batch.bankedPrefix;
    if (banked) {
      transfer.push(banked.mask.buffer as ArrayBuffer, banked.bank.rowSlots.buffer as ArrayBuffer);
      const up = banked.bank.upload;
      if (up) transfer.push(...[up.slots, ...up.keys, ...up.values].map((a) => a.buffer as ArrayBuffer));
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ type: "run", id, batch }, transfer);
    });
  }

  /** Makes the worker exit abruptly after the run in progress, as a crash would (fault injection). */
  crashForTesting(): void {
    this.worker?.postMessage({ type: "crash" });
  }

  /** Lets the worker finish its current run, release its sessions and exit. */
  async close(): Promise<void> {
    this.closing = true;
    this.ready = false;
    const worker = this.worker;
    if (!worker) return;
    await new Promise<void>((resolve) => {
      worker.once("exit", () => resolve());
      worker.postMessage({ type: "close" });
    });
    this.worker = null;
  }
}
