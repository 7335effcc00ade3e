/**
 * SKT_PRECISION=fp16 against the real adapter (SwiftShader in CI): the optional `webgpu` package
 * reads its features, SwiftShader has no `shader-f16`, so `webgpu` refuses before any session opens,
 * naming the feature and the adapter, and `auto` takes the CPU and says why.
 */
import { describe, expect, it } from "vitest";
import { BackboneRunner } from "../../src/backbone/backbone.js";
import { describeWebGpuAdapter } from "../../src/backbone/device.js";
import { SktError } from "../../src/errors.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";

describe.skipIf(skipWebGpu)(webgpuSuite("fp16 on the WebGPU adapter found"), { timeout: 120_000 }, () => {
  it("webgpu: refused naming shader-f16 when the adapter lacks it; auto: the CPU, with the reason", async () => {
    requireWebGpuDriver();
    const adapter = await describeWebGpuAdapter();
    expect(adapter, "the optional webgpu package reads the adapter").not.toBeNull();
    if (adapter!.shaderF16) {
      // A real GPU with shader-f16: the fp16 graphs open on it.
      const runner = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "webgpu", precision: "fp16" });
      expect(runner.deviceInfo.device).toBe("webgpu");
      await runner.release();
      return;
    }
    const e = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "webgpu", precision: "fp16" }).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(SktError);
    expect((e as SktError).code).toBe("precision_unsupported");
    expect((e as SktError).message).toContain(
      `needs the WebGPU feature shader-f16, which the adapter "${adapter!.name}" does not offer`,
    );

    const auto = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "auto", precision: "fp16" });
    try {
      expect(auto.deviceInfo).toMatchObject({ requested: "auto", device: "cpu", adapter: null });
      expect(auto.deviceInfo.reason).toContain("shader-f16");
    } finally {
      await auto.release();
    }
  });
});
