/**
 * SKT_WORKERS' default on a 16-core machine (os.availableParallelism mocked): 7 workers on the CPU,
 * one with SKT_DEVICE=webgpu (workers take turns on the device: src/backbone/device-lock.ts), and an
 * explicit SKT_WORKERS always wins.
 */
import { describe, expect, it, vi } from "vitest";

vi.mock("node:os", async (importOriginal) => {
  const os = await importOriginal<typeof import("node:os")>();
  const sixteen = { ...os, availableParallelism: () => 16 };
  return { ...sixteen, default: sixteen };
});

// The setup files may have loaded config.ts with the real core count already.
vi.resetModules();
const { loadConfig } = await import("../../src/config.js");

describe("SKT_WORKERS' default on 16 cores", () => {
  it("is 7 on the CPU and with auto, 1 with SKT_DEVICE=webgpu, and SKT_WORKERS wins", () => {
    const workers = (env: Record<string, string>) => loadConfig({ env, argv: [] }).workers;
    expect(workers({})).toBe(7);
    expect(workers({ SKT_DEVICE: "cpu" })).toBe(7);
    expect(workers({ SKT_DEVICE: "auto" })).toBe(7);
    expect(workers({ SKT_DEVICE: "webgpu" })).toBe(1);
    expect(workers({ SKT_DEVICE: "webgpu", SKT_WORKERS: "3" })).toBe(3);
    expect(loadConfig({ env: { SKT_WORKERS: "2" }, argv: ["--device", "webgpu"] }).workers).toBe(2);
    expect(loadConfig({ env: {}, argv: ["--device", "webgpu"] }).workers).toBe(1);
  });
});
