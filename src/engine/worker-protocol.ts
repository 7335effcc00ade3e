/** Messages between the engine (main thread) and its inference worker. */
import type { BackboneBatch, BackboneOutputs } from "../backbone/backbone.js";
import type { DeviceInfo, DeviceSetting, Precision } from "../backbone/device.js";
import type { GraphInput } from "../backbone/token-input.js";
import type { GraphLayout, PackedSetting } from "../backbone/packing.js";

export interface WorkerInit {
  modelsDir: string;
  /** The built backbone to load; default: USE-lite's build under modelsDir. */
  backboneDir?: string;
  threads: number;
  device: DeviceSetting;
  precision: Precision;
  /** SKT_PACKED (default auto). */
  packed?: PackedSetting;
  /** SKT_SHARE_WEIGHTS (RunnerOptions.shareWeights). */
  shareWeights?: boolean;
  /** SKT_ORT_SPINNING (RunnerOptions.spinning). */
  spinning?: boolean;
  /** SKT_INFERENCE_NICE: nice levels the worker thread (and the onnxruntime threads it creates) gives up. */
  nice?: number;
}

/** What a worker thread gets in `workerData`: its init, and the process's device lock (device-lock.ts). */
export interface WorkerData extends WorkerInit {
  deviceLock: SharedArrayBuffer;
}

export type WorkerRequest = { type: "run"; id: number; batch: BackboneBatch } | { type: "close" } | { type: "crash" };

export type WorkerReply =
  /** `input`, `layout`: what the worker's graphs take, so the engine assembles batches in that form. */
  | { type: "ready"; device: DeviceInfo; input: GraphInput; layout: GraphLayout }
  | { type: "failed"; message: string; code?: string }
  | { type: "result"; id: number; outputs: BackboneOutputs; runMs: number }
  | { type: "error"; id: number; message: string; code?: string };
