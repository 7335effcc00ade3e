/**
 * What onnxruntime-node 1.30 offers for keeping tensors on the GPU (docs/webgpu.md "Device memory"):
 * a WebGPU session asked for `preferredOutputLocation: "gpu-buffer"` returns tensors that stay on
 * the device, and any WebGPU session takes them back as inputs without a copy through the CPU.
 * (Their `getData()` download aborts the whole process in this version, so it is never called.)
 */
import ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { executionProviders } from "../../src/backbone/device.js";
import { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";

/** y = x · 2 + 1 on a [4] float tensor. */
function affineGraph(): Uint8Array {
  const g = new Graph("float32");
  const x = g.input("x", "float32", [4]);
  g.output("y", g.add(g.mul(x, g.floats([2])), g.floats([1])));
  return toOnnxBytes(g);
}

describe.skipIf(skipWebGpu)(webgpuSuite("GPU-located tensors on onnxruntime-node's WebGPU provider"), () => {
  it("keeps an output on the device and feeds it to another session", async () => {
    requireWebGpuDriver();
    const bytes = affineGraph();
    const onDevice = await ort.InferenceSession.create(bytes, {
      executionProviders: executionProviders("webgpu"),
      preferredOutputLocation: "gpu-buffer",
    });
    const toHost = await ort.InferenceSession.create(bytes, { executionProviders: executionProviders("webgpu") });
    const first = (await onDevice.run({ x: new ort.Tensor("float32", Float32Array.from([0, 1, 2, -3]), [4]) })).y;
    expect(first.location).toBe("gpu-buffer");
    expect(() => first.data).toThrow(/not on CPU/);
    // Device-resident again after a second run on the device session, then brought back once.
    const second = (await onDevice.run({ x: first })).y;
    expect(second.location).toBe("gpu-buffer");
    const back = (await toHost.run({ x: second })).y;
    expect(back.location).toBe("cpu");
    // x → 2x+1 three times: 0 → 1 → 3 → 7, 1 → 3 → 7 → 15, 2 → 5 → 11 → 23, −3 → −5 → −9 → −17.
    expect(Array.from(back.data as Float32Array)).toEqual([7, 15, 23, -17]);
    await Promise.all([onDevice.release(), toHost.release()]);
  });
});
