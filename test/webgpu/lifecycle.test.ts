/**
 * The worker lifecycle on WebGPU: a crashed inference worker is replaced by one that opens the
 * device again (a second Dawn device in the same process) and serves the same answers, and the
 * server process shuts down gracefully (in-flight requests answered, exit 0) with its sessions on
 * the GPU. Small: SwiftShader takes seconds per batch.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnServerProcess } from "../../scripts/lib/server-process.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { requireWebGpuDriver, skipWebGpu, webgpu, webgpuSuite } from "../helpers/webgpu.js";
import { ADMIN_TOKEN, adminHeaders, startEngineRig, type EngineRig } from "../reliability/helpers.js";

let rig: EngineRig;

const classify = (texts: string[]) =>
  rig.app.request("/classify?task=w", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ texts }),
  });

describe.skipIf(skipWebGpu)(webgpuSuite("worker restart and graceful shutdown on WebGPU"), { timeout: 300_000 }, () => {
  beforeAll(async () => {
    requireWebGpuDriver();
    rig = await startEngineRig({ device: "webgpu", requestTimeoutMs: 120_000 });
    await rig.engine.upload("w", servableAdapterBytes(rig.engine.assets, { task: "w", seed: 1 }));
  });
  afterAll(async () => rig?.close());

  it("a crashed worker comes back on WebGPU and answers as before", async () => {
    const before = (await (await classify(["the same two texts", "before and after"])).json()) as {
      predictions: unknown[];
    };
    const ready = new Promise<void>((resolve) => rig.engine.worker.once("ready", () => resolve()));
    rig.engine.worker.crashForTesting();
    await ready;
    expect(rig.engine.deviceInfo()).toMatchObject({ device: "webgpu", requested: "webgpu" });
    // The restarted worker's graphs take token ids again, so the engine keeps sending ids, not rows.
    expect(rig.engine.worker.graphInput).toBe("ids");
    const after = await classify(["the same two texts", "before and after"]);
    expect(after.status).toBe(200);
    // Same device, same batch shape, same kernels: the same numbers.
    expect(((await after.json()) as { predictions: unknown[] }).predictions).toEqual(before.predictions);
  });

  it("a server on WebGPU answers in-flight requests on SIGTERM and exits 0", async () => {
    const adaptersDir = await mkdtemp(path.join(os.tmpdir(), "skt-webgpu-stop-"));
    const server = await spawnServerProcess({
      adaptersDir,
      env: {
        ...webgpu.env,
        SKT_DEVICE: "webgpu",
        SKT_THREADS: "1",
        SKT_MODELS_DIR: MODELS_DIR,
        SKT_LOG_LEVEL: "warn",
        SKT_ADMIN_TOKEN: ADMIN_TOKEN,
      },
      serveArgs: ["--request-timeout-ms", "120000", "--shutdown-timeout-ms", "120000"],
      readyWithinMs: 180_000,
      label: "webgpu server",
    });
    try {
      const put = await fetch(`${server.base}/admin/adapters/w`, {
        method: "PUT",
        headers: { ...adminHeaders, "content-type": "application/octet-stream" },
        body: Buffer.from(servableAdapterBytes(rig.engine.assets, { task: "w", seed: 1 })),
      });
      expect(put.status).toBe(201);
      const inflight = [1, 2].map(() =>
        fetch(`${server.base}/classify?task=w`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ texts: ["in flight at shutdown"] }),
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
      server.proc.kill("SIGTERM");
      expect((await Promise.all(inflight)).map((r) => r.status)).toEqual([200, 200]);
      expect(await server.exited).toEqual({ code: 0, signal: null });
    } finally {
      await server.kill();
      await rm(adaptersDir, { recursive: true, force: true });
    }
  });
});
