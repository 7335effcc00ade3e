/**
 * Gate for the suites that run the WebGPU provider for real (test/webgpu/). They need a Vulkan
 * driver: scripts/ci/install-webgpu.sh installs the SwiftShader one, scripts/lib/webgpu-env.ts points
 * Vulkan at it. Without one they are skipped with the reason in their name, unless
 * SKT_REQUIRE_WEBGPU=1 (CI), where the missing driver fails them instead.
 */
import { prepareWebGpuEnv, webgpuRequired } from "../../scripts/lib/webgpu-env.js";

export const webgpu = prepareWebGpuEnv();
export const skipWebGpu = !webgpu.available && !webgpuRequired();
if (skipWebGpu) console.warn(`WebGPU suites skipped: ${webgpu.reason} (set SKT_REQUIRE_WEBGPU=1 to fail instead)`);

/** The suite's name, with the skip reason appended when it is skipped. */
export function webgpuSuite(name: string): string {
  return skipWebGpu ? `${name} [skipped: ${webgpu.reason}]` : name;
}

/** Call in beforeAll: under SKT_REQUIRE_WEBGPU=1 a machine without a driver fails here. */
export function requireWebGpuDriver(): void {
  if (!webgpu.available) throw new Error(`SKT_REQUIRE_WEBGPU=1 but ${webgpu.reason}`);
}

/**
 * |WebGPU − CPU| allowed for a backbone output, as a fraction of the output's largest |value|.
 * float32 has 2^-24 ≈ 6e-8 relative rounding; a dot product of n = 256…1536 terms summed in a
 * different order (GPU tiles vs CPU blocks) differs by about √n·6e-8 ≈ 1e-6…2.4e-6 of its scale,
 * and two transformer layers compound a few of those. 2e-5 is ~10× that. Measured on SwiftShader
 * (4 sentences, docs/webgpu.md): 1.1e-6 (last_hidden_state), 1.6e-6 (pooled), 3.1e-6
 * (sentence_embedding). With the timing signal's Sin/Cos on the GPU (webgpu-placement.ts undone)
 * the same ratios are 1.3e-4, 4.5e-4 and 6.3e-4, so this bound also pins that placement.
 */
export const PARITY_RELATIVE_TO_SCALE = 2e-5;
