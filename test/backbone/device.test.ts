/**
 * Device selection without a GPU: `openOnDevice` with sessions that succeed or fail on demand, so
 * every branch (explicit device, auto's fallback, the errors' wording, precision refusals) is pinned
 * on any machine. The real WebGPU path is exercised in webgpu.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  checkPrecision,
  executionProviders,
  openOnDevice,
  type Device,
  type WebGpuAdapterInfo,
} from "../../src/backbone/device.js";
import { SktError } from "../../src/errors.js";

/** An `open` that records the devices tried and fails on the ones in `failing`. */
function opener(failing: Device[]) {
  const tried: Device[] = [];
  const open = async (d: Device) => {
    tried.push(d);
    if (failing.includes(d)) throw new Error(`no ${d} here\nsecond line`);
    return `sessions on ${d}`;
  };
  return { tried, open };
}

const gpu: WebGpuAdapterInfo = { name: "Test GPU", shaderF16: false };
const found = async () => gpu;
const none = async () => null;

async function errorOf(p: Promise<unknown>): Promise<SktError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(SktError);
  return e as SktError;
}

describe("openOnDevice", () => {
  it("opens cpu directly and never probes a GPU", async () => {
    const o = opener([]);
    let probed = false;
    const r = await openOnDevice("cpu", "fp32", o.open, async () => ((probed = true), gpu));
    expect(r).toEqual({
      sessions: "sessions on cpu",
      info: { requested: "cpu", device: "cpu", adapter: null, reason: "SKT_DEVICE=cpu" },
    });
    expect(o.tried).toEqual(["cpu"]);
    expect(probed).toBe(false);
  });

  it("webgpu: reports the adapter name", async () => {
    const o = opener([]);
    const r = await openOnDevice("webgpu", "fp32", o.open, found);
    expect(r.info).toEqual({ requested: "webgpu", device: "webgpu", adapter: "Test GPU", reason: "SKT_DEVICE=webgpu" });
    expect(o.tried).toEqual(["webgpu"]);
  });

  it("webgpu: fails with webgpu_unavailable (503 kind) and the provider's message, without falling back", async () => {
    const o = opener(["webgpu"]);
    const e = await errorOf(openOnDevice("webgpu", "fp32", o.open, none));
    expect(e.kind).toBe("not_ready");
    expect(e.code).toBe("webgpu_unavailable");
    expect(e.message).toMatch(/no webgpu here/);
    expect(e.message).toMatch(/Vulkan driver/);
    expect(o.tried).toEqual(["webgpu"]);
  });

  it("auto: takes WebGPU when a session opens there", async () => {
    const o = opener([]);
    const r = await openOnDevice("auto", "fp32", o.open, found);
    expect(r.sessions).toBe("sessions on webgpu");
    expect(r.info).toMatchObject({ requested: "auto", device: "webgpu", adapter: "Test GPU" });
    expect(r.info.reason).toMatch(/auto.*found a WebGPU adapter/);
  });

  it("auto: falls back to the CPU and says why (first line of the provider's error)", async () => {
    const o = opener(["webgpu"]);
    const r = await openOnDevice("auto", "fp32", o.open, none);
    expect(r.sessions).toBe("sessions on cpu");
    expect(r.info).toEqual({
      requested: "auto",
      device: "cpu",
      adapter: null,
      reason: "SKT_DEVICE=auto: no usable WebGPU adapter (no webgpu here), so the CPU",
    });
    expect(o.tried).toEqual(["webgpu", "cpu"]);
  });

  it("auto: quotes onnxruntime's adapter failure without its source location", async () => {
    const open = async (d: Device) => {
      if (d === "webgpu")
        throw new Error(
          "/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 lambda adapter_result.status == Success was false. Failed to get a WebGPU adapter: No supported adapters",
        );
      return d;
    };
    const r = await openOnDevice("auto", "fp32", open, none);
    expect(r.info.reason).toBe(
      "SKT_DEVICE=auto: no usable WebGPU adapter (Failed to get a WebGPU adapter: No supported adapters), so the CPU",
    );
  });

  it("cuda: the error says the provider is not shipped and how to get it", async () => {
    const e = await errorOf(openOnDevice("cuda", "fp32", opener(["cuda"]).open, none));
    expect(e.code).toBe("cuda_unavailable");
    expect(e.message).toMatch(/not part of the onnxruntime-node npm package/);
    expect(e.message).toMatch(/onnxruntime-node-install=cuda12/);
    expect(e.message).toMatch(/SKT_DEVICE=webgpu/);
  });

  it("fp16 on WebGPU without shader-f16 (or an unreadable adapter) and on cuda is refused before any session opens", async () => {
    for (const [setting, describe, pattern] of [
      ["webgpu", none, /shader-f16, but the adapter could not be read/],
      ["webgpu", found, /needs the WebGPU feature shader-f16, which the adapter "Test GPU" does not offer/],
      ["cuda", found, /has not been tried on the CUDA provider/],
    ] as const) {
      const o = opener([]);
      const e = await errorOf(openOnDevice(setting, "fp16", o.open, describe));
      expect(e.code).toBe("precision_unsupported");
      expect(e.kind).toBe("bad_request");
      expect(e.message).toMatch(pattern);
      expect(o.tried).toEqual([]);
    }
  });
});

describe("openOnDevice with SKT_PRECISION=fp16", () => {
  const f16 = async () => ({ name: "F16 GPU", shaderF16: true });

  it("webgpu opens the WebGPU sessions when the adapter offers shader-f16", async () => {
    const o = opener([]);
    const r = await openOnDevice("webgpu", "fp16", o.open, f16);
    expect(o.tried).toEqual(["webgpu"]);
    expect(r.info).toEqual({ requested: "webgpu", device: "webgpu", adapter: "F16 GPU", reason: "SKT_DEVICE=webgpu" });
  });

  it("cpu opens the CPU sessions (onnxruntime's CPU provider runs the fp16 graphs)", async () => {
    const o = opener([]);
    const r = await openOnDevice("cpu", "fp16", o.open, none);
    expect(o.tried).toEqual(["cpu"]);
    expect(r.info.device).toBe("cpu");
  });

  it("auto takes WebGPU with shader-f16, and the CPU without it, saying which feature was missing", async () => {
    const a = opener([]);
    expect((await openOnDevice("auto", "fp16", a.open, f16)).info.device).toBe("webgpu");
    expect(a.tried).toEqual(["webgpu"]);

    const b = opener([]);
    const r = await openOnDevice("auto", "fp16", b.open, found);
    expect(b.tried).toEqual(["cpu"]); // WebGPU is not even tried
    expect(r.info).toEqual({
      requested: "auto",
      device: "cpu",
      adapter: null,
      reason:
        'SKT_DEVICE=auto with SKT_PRECISION=fp16: fp16 needs the WebGPU feature shader-f16, which the adapter "Test GPU" does not offer, so the CPU',
    });
  });
});

describe("openOnDevice with SKT_PRECISION=int8", () => {
  it("cpu opens the CPU sessions", async () => {
    const o = opener([]);
    const r = await openOnDevice("cpu", "int8", o.open, found);
    expect(o.tried).toEqual(["cpu"]);
    expect(r.info.device).toBe("cpu");
  });

  it("auto goes straight to the CPU without trying WebGPU, and says why", async () => {
    const o = opener([]);
    const r = await openOnDevice("auto", "int8", o.open, found);
    expect(o.tried).toEqual(["cpu"]);
    expect(r.info).toEqual({
      requested: "auto",
      device: "cpu",
      adapter: null,
      reason: "SKT_DEVICE=auto with SKT_PRECISION=int8: int8 graphs run on the CPU",
    });
  });

  it("webgpu and cuda are refused before any session opens, naming the operator", async () => {
    for (const setting of ["webgpu", "cuda"] as const) {
      const o = opener([]);
      const e = await errorOf(openOnDevice(setting, "int8", o.open, found));
      expect(e.code).toBe("precision_unsupported");
      expect(e.message).toMatch(/SKT_PRECISION=int8 runs only on SKT_DEVICE=cpu/);
      expect(e.message).toMatch(/DynamicQuantizeMatMul/);
      expect(e.message).toContain(`the ${setting} provider`);
      expect(o.tried).toEqual([]);
    }
  });
});

describe("executionProviders / checkPrecision", () => {
  it("maps each device to onnxruntime's provider", () => {
    expect(executionProviders("cpu")).toEqual(["cpu"]);
    expect(executionProviders("webgpu")).toEqual([{ name: "webgpu" }]);
    expect(executionProviders("webgpu", ["Sin_8"])).toEqual([{ name: "webgpu", forceCpuNodeNames: ["Sin_8"] }]);
    expect(executionProviders("cuda")).toEqual(["cuda"]);
  });

  it("accepts fp32 everywhere", () => {
    expect(() => checkPrecision("fp32", "cpu", null)).not.toThrow();
    expect(() => checkPrecision("fp32", "webgpu", gpu)).not.toThrow();
  });

  it("accepts fp16 on the CPU and on a WebGPU adapter with shader-f16 only", () => {
    expect(() => checkPrecision("fp16", "cpu", null)).not.toThrow();
    expect(() => checkPrecision("fp16", "webgpu", { name: "F16 GPU", shaderF16: true })).not.toThrow();
    expect(() => checkPrecision("fp16", "webgpu", gpu)).toThrow(/shader-f16/);
  });
});
