/**
 * The device-bank mechanism (src/backbone/device-bank.ts): a bank tensor takes one item per update
 * into a slot, a slot can be overwritten (a new version replacing an old one), and a gather by
 * per-row slot index reads back exactly what a naive host-side bank holds. On WebGPU the bank stays
 * on the device between updates (a `gpu-buffer` output fed back as the next update's input); the
 * same sequence on the CPU provider must give the same rows. Exact equality: the graphs only copy
 * floats.
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
import { executionProviders, type Device } from "../../src/backbone/device.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { seededRandom } from "../helpers/numeric.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";

const CAPACITY = 3;
const ITEM_SHAPE = [2, 3, 4]; // [heads, P, headDim] in miniature
const ITEM_SIZE = 24;
const UPDATES = [0, 1, 2, 1]; // slot 1 is written twice
const READ = [2, 0, 1, 1, 0];

/** The naive reference: the same updates applied to a host array, then the slots read. */
function hostRows(): number[] {
  const rand = seededRandom(5);
  const host = new Float32Array(CAPACITY * ITEM_SIZE);
  for (const slot of UPDATES)
    host.set(
      Float32Array.from({ length: ITEM_SIZE }, () => rand() * 2 - 1),
      slot * ITEM_SIZE,
    );
  return READ.flatMap((s) => Array.from(host.subarray(s * ITEM_SIZE, (s + 1) * ITEM_SIZE)));
}

/** Runs the updates and the read on `device`; returns the rows and where each bank lived. */
async function bankRows(device: Device): Promise<{ rows: ort.Tensor; bankLocations: string[] }> {
  const update = await ort.InferenceSession.create(toOnnxBytes(bankUpdateGraph(ITEM_SHAPE)), {
    executionProviders: executionProviders(device),
    ...(device === "webgpu" ? { preferredOutputLocation: "gpu-buffer" as const } : {}),
  });
  const read = await ort.InferenceSession.create(toOnnxBytes(bankReadGraph(ITEM_SHAPE)), {
    executionProviders: executionProviders(device),
  });
  const rand = seededRandom(5);
  let bank: ort.Tensor = new ort.Tensor("float32", new Float32Array(CAPACITY * ITEM_SIZE), [CAPACITY, ...ITEM_SHAPE]);
  const bankLocations: string[] = [];
  for (const slot of UPDATES) {
    const item = Float32Array.from({ length: ITEM_SIZE }, () => rand() * 2 - 1);
    const next = (
      await update.run({
        [BANK]: bank,
        [SLOT]: new ort.Tensor("int64", BigInt64Array.from([BigInt(slot)]), [1, 1]),
        [ITEM]: new ort.Tensor("float32", item, [1, ...ITEM_SHAPE]),
      })
    )[BANK_OUT];
    bankLocations.push(next.location);
    if (bank.location === "gpu-buffer") bank.dispose(); // the old bank's device buffer is released
    bank = next;
  }
  const rows = (
    await read.run({ [BANK]: bank, [SLOTS]: new ort.Tensor("int64", BigInt64Array.from(READ.map(BigInt)), [5]) })
  )[ROWS];
  if (bank.location === "gpu-buffer") bank.dispose();
  await Promise.all([update.release(), read.release()]);
  return { rows, bankLocations };
}

describe("bank update + gather on the CPU provider", () => {
  it("reads back what a host bank holds, the overwritten slot with its newest item", async () => {
    const { rows } = await bankRows("cpu");
    expect(rows.dims).toEqual([READ.length, ...ITEM_SHAPE]);
    expect(Array.from(rows.data as Float32Array)).toEqual(hostRows());
  });
});

describe.skipIf(skipWebGpu)(webgpuSuite("device-resident bank on WebGPU"), { timeout: 300_000 }, () => {
  it("keeps the bank on the device across updates and gathers the same rows as the CPU", async () => {
    requireWebGpuDriver();
    const [gpu, cpu] = [await bankRows("webgpu"), await bankRows("cpu")];
    expect(gpu.bankLocations, "every updated bank stays on the device").toEqual(UPDATES.map(() => "gpu-buffer"));
    expect(gpu.rows.location).toBe("cpu");
    expect(Array.from(gpu.rows.data as Float32Array)).toEqual(Array.from(cpu.rows.data as Float32Array));
    expect(Array.from(gpu.rows.data as Float32Array)).toEqual(hostRows());
  });
});
