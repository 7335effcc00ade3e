/**
 * SKT_WORKERS' default on a 16-core machine (availableCores mocked): 7 workers on the CPU,
 * one with SKT_DEVICE=webgpu (workers take turns on the device: src/backbone/device-lock.ts), as
 * many as a given SKT_THREADS fits in the 15 cores left to workers, and an explicit SKT_WORKERS
 * always wins.
 */
import { describe, expect, it, vi } from "vitest";

// The cores the process may use (affinity and cgroup quota: tested in test/server/cores.test.ts).
vi.mock("../../src/cores.js", () => ({ availableCores: () => 16 }));

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

  it("follows a given SKT_THREADS: the 15 cores left to the workers, divided into workers of that many threads", () => {
    const shape = (env: Record<string, string>, argv: string[] = []) => {
      const c = loadConfig({ env, argv });
      return `${c.workers}x${c.threads}`;
    };
    expect(shape({})).toBe("7x2");
    expect(shape({ SKT_THREADS: "1" })).toBe("15x1");
    expect(shape({ SKT_THREADS: "4" })).toBe("3x4");
    expect(shape({}, ["--threads", "5"])).toBe("3x5");
    expect(shape({ SKT_THREADS: "64" })).toBe("1x64");
    expect(shape({ SKT_THREADS: "1", SKT_WORKERS: "2" })).toBe("2x1");
    expect(shape({ SKT_THREADS: "1", SKT_DEVICE: "webgpu" })).toBe("1x1");
  });

  it("holds one batch per worker when there are several, two with one worker; an explicit value wins", () => {
    const inFlight = (env: Record<string, string>) => loadConfig({ env, argv: [] }).maxInFlightBatches;
    expect(inFlight({})).toBe(1); // 7 workers
    expect(inFlight({ SKT_WORKERS: "1" })).toBe(2);
    expect(inFlight({ SKT_DEVICE: "webgpu" })).toBe(2); // one worker
    expect(inFlight({ SKT_THREADS: "15" })).toBe(2); // one worker of 15 threads
    expect(inFlight({ SKT_MAX_IN_FLIGHT_BATCHES: "3" })).toBe(3);
    expect(inFlight({ SKT_WORKERS: "1", SKT_MAX_IN_FLIGHT_BATCHES: "1" })).toBe(1);
  });

  it("lets single-thread workers carry at most 10 % padding, others 25 %; an explicit value wins", () => {
    const ratio = (env: Record<string, string>) => loadConfig({ env, argv: [] }).maxPaddingRatio;
    expect(ratio({})).toBe(0.25); // 7×2
    expect(ratio({ SKT_THREADS: "1" })).toBe(0.1);
    expect(ratio({ SKT_THREADS: "1", SKT_WORKERS: "1" })).toBe(0.1);
    expect(ratio({ SKT_THREADS: "1", SKT_MAX_PADDING_RATIO: "0.5" })).toBe(0.5);
    expect(ratio({ SKT_MAX_PADDING_RATIO: "0.05" })).toBe(0.05);
  });
});
