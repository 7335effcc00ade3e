/**
 * Points Vulkan (and so onnxruntime's WebGPU provider) at a driver for tests and benchmarks on
 * machines without a GPU: the SwiftShader ICD that Debian's chromium package ships
 * (scripts/ci/install-webgpu.sh installs it). Dev tooling: nothing in src/ imports it.
 *
 * An existing VK_ICD_FILENAMES wins (a real GPU's driver, or another software one). Dawn's Vulkan
 * backend also wants XDG_RUNTIME_DIR to be a writable folder; one is made when it is unset.
 */
import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";
const LOADER_PATHS = [
  "/usr/lib/x86_64-linux-gnu/libvulkan.so.1",
  "/lib/x86_64-linux-gnu/libvulkan.so.1",
  "/usr/lib64/libvulkan.so.1",
  "/usr/lib/libvulkan.so.1",
];

export interface WebGpuEnv {
  /** A Vulkan loader and a driver manifest were found. */
  available: boolean;
  /** Why not (install hint), or which driver. */
  reason: string;
  /** Variables to give a server process (already applied to process.env by prepareWebGpuEnv). */
  env: Record<string, string>;
}

/**
 * Finds a Vulkan driver and sets VK_ICD_FILENAMES / XDG_RUNTIME_DIR in this process for it.
 * `driver: "system"` (benchmarks on a real GPU) leaves the driver choice to the Vulkan loader.
 */
export function prepareWebGpuEnv(opts: { driver?: "swiftshader-unless-set" | "system" } = {}): WebGpuEnv {
  const loader = LOADER_PATHS.find((p) => existsSync(p));
  if (!loader)
    return { available: false, reason: "no Vulkan loader (libvulkan.so.1); run scripts/ci/install-webgpu.sh", env: {} };
  const runtimeDir = process.env.XDG_RUNTIME_DIR || mkdtempSync(path.join(os.tmpdir(), "skt-xdg-"));
  if (opts.driver === "system") {
    const env = {
      XDG_RUNTIME_DIR: runtimeDir,
      ...(process.env.VK_ICD_FILENAMES ? { VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES } : {}),
    };
    Object.assign(process.env, env);
    return { available: true, reason: "the Vulkan loader's own driver choice", env };
  }
  const icd = process.env.VK_ICD_FILENAMES || (existsSync(SWIFTSHADER_ICD) ? SWIFTSHADER_ICD : undefined);
  if (!icd)
    return {
      available: false,
      reason: `no Vulkan driver: VK_ICD_FILENAMES is unset and ${SWIFTSHADER_ICD} is missing; run scripts/ci/install-webgpu.sh`,
      env: {},
    };
  const env = { VK_ICD_FILENAMES: icd, XDG_RUNTIME_DIR: runtimeDir };
  Object.assign(process.env, env);
  return { available: true, reason: `Vulkan driver ${icd}`, env };
}

/** SKT_REQUIRE_WEBGPU=1 (CI): a missing driver fails the WebGPU tests instead of skipping them. */
export function webgpuRequired(): boolean {
  return ["1", "true", "yes"].includes((process.env.SKT_REQUIRE_WEBGPU ?? "").toLowerCase());
}
