/**
 * Which onnxruntime execution provider runs the backbone, and what was found when choosing it.
 *
 * `webgpu` is onnxruntime-node's bundled WebGPU provider (Dawn over Vulkan on Linux): it needs only
 * a Vulkan driver, no extra download. `cuda` is opt-in for people who install onnxruntime's CUDA
 * provider themselves (it is not in the npm package). `auto` takes WebGPU when a session can be
 * created on it and falls back to the CPU otherwise, saying why.
 */
import type ort from "onnxruntime-node";
import { SktError } from "../errors.js";

/** What `SKT_DEVICE` accepts (the one definition; config, worker and engine use these types). */
export const DEVICE_SETTINGS = ["cpu", "webgpu", "auto", "cuda"] as const;
export type DeviceSetting = (typeof DEVICE_SETTINGS)[number];
/** The devices a session actually runs on (`auto` resolved). */
export const DEVICES = ["cpu", "webgpu", "cuda"] as const satisfies readonly Exclude<DeviceSetting, "auto">[];
export type Device = (typeof DEVICES)[number];

export const PRECISIONS = ["fp32", "fp16", "int8"] as const;
export type Precision = (typeof PRECISIONS)[number];
export const isPrecision = (s: string): s is Precision => (PRECISIONS as readonly string[]).includes(s);

/** The outcome of device selection, shown in /readyz, the startup log and `skt_device_info`. */
export interface DeviceInfo {
  /** What was asked for. */
  requested: DeviceSetting;
  /** What the sessions run on. */
  device: Device;
  /** The GPU adapter's name when the device is WebGPU and it could be read; otherwise null. */
  adapter: string | null;
  /** One sentence saying why this device was chosen. */
  reason: string;
}

export interface WebGpuAdapterInfo {
  name: string;
  /** The adapter offers WebGPU's `shader-f16` feature (half-precision arithmetic in shaders). */
  shaderF16: boolean;
}

/**
 * Reads the default high-performance adapter's name and features through the optional `webgpu`
 * package (Dawn's Node binding). onnxruntime does not expose its adapter, so this is a separate
 * Dawn instance asking the same Vulkan loader; null when the package is missing or no adapter is
 * found (onnxruntime's own attempt is what decides whether WebGPU is usable).
 */
export async function describeWebGpuAdapter(): Promise<WebGpuAdapterInfo | null> {
  try {
    const { create } = await import("webgpu");
    const adapter = await create([]).requestAdapter({ powerPreference: "high-performance" });
    if (!adapter) return null;
    const i = adapter.info;
    const name = i.description || [i.vendor, i.architecture, i.device].filter(Boolean).join(" ") || "unnamed adapter";
    return { name, shaderF16: adapter.features.has("shader-f16") };
  } catch {
    return null;
  }
}

/**
 * onnxruntime's provider list for a device (onnxruntime adds the CPU provider for unsupported nodes).
 * `cpuNodes`: on WebGPU, node names to run on the CPU anyway (see webgpu-placement.ts).
 */
export function executionProviders(
  device: Device,
  cpuNodes: readonly string[] = [],
): ort.InferenceSession.ExecutionProviderConfig[] {
  // onnxruntime-node refuses an empty forceCpuNodeNames ("key/value cannot be empty").
  if (device === "webgpu")
    return [cpuNodes.length > 0 ? { name: "webgpu", forceCpuNodeNames: cpuNodes } : { name: "webgpu" }];
  if (device === "cuda") return ["cuda"];
  return ["cpu"];
}

/** The error for a device that was asked for explicitly and could not start. */
export function deviceUnavailable(device: Device, cause: string): SktError {
  if (device === "cuda") {
    return new SktError(
      "not_ready",
      "cuda_unavailable",
      `SKT_DEVICE=cuda but onnxruntime could not start its CUDA execution provider (${cause}). The CUDA provider is not part of the onnxruntime-node npm package and this project does not ship it: install it yourself (npm install onnxruntime-node with onnxruntime-node-install=cuda12, on a machine with CUDA 12 and cuDNN 9), or use SKT_DEVICE=webgpu (bundled; needs a Vulkan driver) or SKT_DEVICE=cpu.`,
    );
  }
  if (device === "webgpu") {
    return new SktError(
      "not_ready",
      "webgpu_unavailable",
      `SKT_DEVICE=webgpu but onnxruntime could not start its WebGPU execution provider (${cause}). It needs a Vulkan driver (libvulkan1 and the GPU vendor's Vulkan ICD; see docs/server.md "GPU"), or use SKT_DEVICE=auto to fall back to the CPU.`,
    );
  }
  return new SktError("not_ready", "backbone_load_failed", `onnxruntime could not create a CPU session: ${cause}`);
}

/**
 * Refuses `SKT_PRECISION=fp16` or `int8` wherever it cannot run, with the reason. fp16 runs on
 * WebGPU only where the adapter offers `shader-f16`, and on the CPU, where onnxruntime computes the
 * ops it has no float16 kernel for in float32 between Casts (for checking fp16's accuracy without a
 * GPU, not for speed; docs/webgpu.md "Precision").
 */
export function checkPrecision(precision: Precision, device: Device, adapter: WebGpuAdapterInfo | null): void {
  if (precision === "fp32") return;
  if (precision === "int8") {
    if (device === "cpu") return;
    throw new SktError(
      "bad_request",
      "precision_unsupported",
      `SKT_PRECISION=int8 runs only on SKT_DEVICE=cpu: its matrix multiplications are onnxruntime's CPU operator DynamicQuantizeMatMul, which the ${device} provider does not have (the backbone would run on ${device}); set SKT_DEVICE=cpu or SKT_PRECISION=fp32.`,
    );
  }
  if (device === "cpu") return;
  if (device === "cuda") {
    throw new SktError(
      "bad_request",
      "precision_unsupported",
      "SKT_PRECISION=fp16 runs on SKT_DEVICE=webgpu (adapters with shader-f16) and cpu; it has not been tried on the CUDA provider; set SKT_PRECISION=fp32.",
    );
  }
  const missing = halfPrecisionMissing(adapter);
  if (missing) throw new SktError("bad_request", "precision_unsupported", `SKT_PRECISION=fp16 ${missing}`);
}

/** Why a WebGPU adapter cannot run the fp16 graphs, or null when it can. */
function halfPrecisionMissing(adapter: WebGpuAdapterInfo | null): string | null {
  if (!adapter)
    return "needs to know that the WebGPU adapter supports the feature shader-f16, but the adapter could not be read (the optional `webgpu` package is missing or found no adapter); set SKT_PRECISION=fp32 (or SKT_DEVICE=cpu).";
  if (!adapter.shaderF16)
    return `needs the WebGPU feature shader-f16, which the adapter "${adapter.name}" does not offer; set SKT_PRECISION=fp32 (or SKT_DEVICE=cpu).`;
  return null;
}

/**
 * Opens the sessions on the device `setting` asks for. `open` creates every session the caller
 * needs on one device (and throws if the provider cannot start); `auto` tries WebGPU first.
 */
export async function openOnDevice<T>(
  setting: DeviceSetting,
  precision: Precision,
  open: (device: Device) => Promise<T>,
  describe: () => Promise<WebGpuAdapterInfo | null> = describeWebGpuAdapter,
): Promise<{ sessions: T; info: DeviceInfo }> {
  // int8 graphs are CPU-only (checkPrecision), so `auto` resolves to the CPU without trying WebGPU.
  const int8Auto = setting === "auto" && precision === "int8";
  if (setting === "cpu" || setting === "cuda" || int8Auto) {
    const device: Device = int8Auto || setting === "auto" ? "cpu" : setting;
    checkPrecision(precision, device, null);
    try {
      return {
        sessions: await open(device),
        info: {
          requested: setting,
          device,
          adapter: null,
          reason: int8Auto
            ? "SKT_DEVICE=auto with SKT_PRECISION=int8: int8 graphs run on the CPU"
            : `SKT_DEVICE=${setting}`,
        },
      };
    } catch (e) {
      if (e instanceof SktError) throw e;
      throw deviceUnavailable(device, (e as Error).message);
    }
  }
  const autoOnCpu = async (reason: string) => ({
    sessions: await open("cpu"),
    info: { requested: "auto", device: "cpu", adapter: null, reason } satisfies DeviceInfo,
  });
  const adapter = await describe();
  // fp16 with `auto` falls back to the CPU (which runs it) when the adapter lacks shader-f16.
  const noHalf = setting === "auto" && precision === "fp16" ? halfPrecisionMissing(adapter) : null;
  if (noHalf) return autoOnCpu(`SKT_DEVICE=auto with SKT_PRECISION=fp16: fp16 ${noHalf.split(";")[0]}, so the CPU`);
  // Checked before any session opens, so a refused precision leaves nothing half-started.
  checkPrecision(precision, "webgpu", adapter);
  let sessions: T;
  try {
    sessions = await open("webgpu");
  } catch (e) {
    const cause = (e as Error).message;
    if (setting === "webgpu") throw deviceUnavailable("webgpu", cause);
    return autoOnCpu(`SKT_DEVICE=auto: no usable WebGPU adapter (${firstLine(cause)}), so the CPU`);
  }
  const reason = setting === "auto" ? "SKT_DEVICE=auto: onnxruntime found a WebGPU adapter" : "SKT_DEVICE=webgpu";
  return { sessions, info: { requested: setting, device: "webgpu", adapter: adapter?.name ?? null, reason } };
}

/** The provider's error in one short line (onnxruntime prefixes its source location and assertion). */
function firstLine(s: string): string {
  const adapterMissing = /Failed to get a WebGPU adapter[^\n]*/.exec(s);
  return (adapterMissing?.[0] ?? s.split("\n")[0]).slice(0, 300);
}
