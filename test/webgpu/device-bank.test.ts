/**
 * The device-bank mechanism (src/backbone/device-bank.ts) on onnxruntime-node's WebGPU provider: a
 * bank tensor kept on the device (a `gpu-buffer` output fed back as the next update's input) takes
 * one item per update into a slot, a slot can be overwritten (a hot swap), and a gather by per-row
 * slot index reads back exactly what a naive host-side bank holds. Exact equality: the graphs only
 * copy floats.
 */
import ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  BANK,
  BANK_OUT,
  bankReadGraph,
  bankUpdateGraph,
  ITEM,
  ROWS,
  SLOT,
  SLOTS,
} from "../../src/backbone/device-bank.js";
import { executionProviders } from "../../src/backbone/device.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { seededRandom } from "../helpers/numeric.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";

const CAPACITY = 3;
const ITEM_SHAPE = [2, 3, 4]; // [heads, P, headDim] in miniature
const ITEM_SIZE = 24;

describe.skipIf(skipWebGpu)(webgpuSuite("device-resident bank on WebGPU"), { timeout: 300_000 }, () => {
  it("updates slots on the device, overwrites one, and gathers per-row slots as a host bank does", async () => {
    requireWebGpuDriver();
    const update = await ort.InferenceSession.create(toOnnxBytes(bankUpdateGraph(ITEM_SHAPE)), {
      executionProviders: executionProviders("webgpu"),
      preferredOutputLocation: "gpu-buffer",
    });
    const read = await ort.InferenceSession.create(toOnnxBytes(bankReadGraph(ITEM_SHAPE)), {
      executionProviders: executionProviders("webgpu"),
    });
    const rand = seededRandom(5);
    const host = new Float32Array(CAPACITY * ITEM_SIZE); // the naive reference bank
    let bank: ort.Tensor = new ort.Tensor("float32", new Float32Array(CAPACITY * ITEM_SIZE), [CAPACITY, ...ITEM_SHAPE]);
    // Slots 0, 1, 2, then slot 1 again with a new item (a new version replacing an old one).
    for (const slot of [0, 1, 2, 1]) {
      const item = Float32Array.from({ length: ITEM_SIZE }, () => rand() * 2 - 1);
      host.set(item, slot * ITEM_SIZE);
      const out = await update.run({
        [BANK]: bank,
        [SLOT]: new ort.Tensor("int64", BigInt64Array.from([BigInt(slot)]), [1, 1]),
        [ITEM]: new ort.Tensor("float32", item, [1, ...ITEM_SHAPE]),
      });
      const next = out[BANK_OUT];
      expect(next.location, "the bank stays on the device").toBe("gpu-buffer");
      if (bank.location === "gpu-buffer") bank.dispose(); // the old bank's GPU buffer is released
      bank = next;
    }
    const slots = [2, 0, 1, 1, 0];
    const rows = (
      await read.run({ [BANK]: bank, [SLOTS]: new ort.Tensor("int64", BigInt64Array.from(slots.map(BigInt)), [5]) })
    )[ROWS];
    expect(rows.location).toBe("cpu");
    expect(rows.dims).toEqual([5, ...ITEM_SHAPE]);
    const want = slots.flatMap((s) => Array.from(host.subarray(s * ITEM_SIZE, (s + 1) * ITEM_SIZE)));
    expect(Array.from(rows.data as Float32Array)).toEqual(want);
    bank.dispose();
    await Promise.all([update.release(), read.release()]);
  });
});
