/**
 * The inference worker dies (fault injection via `crashForTesting`), seen over HTTP: requests in
 * flight get 503 (never 500), /readyz says 503 while the worker restarts and 200 after, requests
 * and uploads that need the worker get 503 and change nothing, and service resumes by itself.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { adminHeaders, expectErrorBody, listTree, startEngineRig, type EngineRig } from "./helpers.js";

let rig: EngineRig;

beforeAll(async () => {
  rig = await startEngineRig();
  await rig.engine.upload("w", servableAdapterBytes(rig.engine.assets, { task: "w", seed: 1 }));
});
afterAll(async () => rig?.close());

/**
 * Holds the worker's next restart until the returned function is called, so the "restarting"
 * window is as long as the test needs (no race with the restart timer on a loaded machine).
 */
function holdNextRestart(): () => void {
  const worker = rig.engine.worker;
  const original = worker.start.bind(worker);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  worker.start = async () => {
    worker.start = original;
    await gate;
    return original();
  };
  return release;
}

const classify = (texts: string[]) =>
  rig.app.request("/classify?task=w", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ texts }),
  });

describe("worker crash and restart over HTTP", () => {
  it("in-flight requests → 200 or 503; /readyz and new requests → 503 during the restart; all 200 after", async () => {
    const worker = rig.engine.worker;
    expect((await rig.app.request("/readyz")).status).toBe(200);

    const restarting = new Promise<void>((resolve) => worker.once("restarting", () => resolve()));
    const ready = new Promise<void>((resolve) => worker.once("ready", () => resolve()));
    const big = Array.from({ length: 32 }, (_, i) => `in flight ${i} `.repeat(12));
    const inflight = Array.from({ length: 6 }, () => classify(big));
    // Crash once rows are really queued behind a batch that the worker is running.
    for (let i = 0; i < 5000 && rig.engine.queueDepth === 0; i++) await new Promise((r) => setTimeout(r, 1));
    expect(rig.engine.queueDepth).toBeGreaterThan(0);
    const release = holdNextRestart();
    worker.crashForTesting();
    await restarting;

    // Between the crash and the new worker's "ready": not ready, and no work accepted.
    const readyz = await rig.app.request("/readyz");
    expect(readyz.status).toBe(503);
    expect((await expectErrorBody(readyz)).code).toBe("not_ready");
    const during = await classify(["during the restart"]);
    expect(during.status).toBe(503);
    expect((await expectErrorBody(during)).code).toBe("not_ready");
    expect((await rig.app.request("/healthz")).status).toBe(200); // alive, just not ready

    // An upload whose prompt has no cached semantic pass cannot be prepared during the restart:
    // 503, nothing written. (A known prompt needs no backbone pass, so such an upload may succeed.)
    const tree = await listTree(rig.root);
    const fresh = servableAdapterBytes(rig.engine.assets, {
      task: "w",
      seed: 2,
      promptText: "a prompt this server has never prepared",
    });
    const up = await rig.app.request("/admin/adapters/w", {
      method: "PUT",
      headers: { ...adminHeaders, "content-type": "application/octet-stream" },
      body: fresh as Uint8Array<ArrayBuffer>,
    });
    expect(up.status).toBe(503);
    await expectErrorBody(up);
    expect(await listTree(rig.root)).toEqual(tree);
    expect(rig.engine.registry.currentVersion("w")).toBe(1);

    const statuses = await Promise.all(
      inflight.map(async (p) => {
        const r = await p;
        if (r.status !== 200)
          expect(["worker_crashed", "worker_not_ready", "not_ready"]).toContain((await expectErrorBody(r)).code);
        return r.status;
      }),
    );
    console.log(`[worker-restart] requests in flight at the crash: ${JSON.stringify(statuses)}`);
    for (const s of statuses) expect([200, 503]).toContain(s);
    expect(statuses).toContain(503);

    release();
    await ready;
    expect((await rig.app.request("/readyz")).status).toBe(200);
    const after = await classify(["works again", "and again"]);
    expect(after.status).toBe(200);
    expect(((await after.json()) as { predictions: unknown[] }).predictions).toHaveLength(2);
  });

  it("a second crash recovers the same way (restart with back-off)", async () => {
    const worker = rig.engine.worker;
    const restarts = worker.restartCount;
    const ready = new Promise<void>((resolve) => worker.once("ready", () => resolve()));
    const restarting = new Promise<void>((resolve) => worker.once("restarting", () => resolve()));
    const release = holdNextRestart();
    worker.crashForTesting();
    await restarting;
    expect((await rig.app.request("/readyz")).status).toBe(503);
    expect((await classify(["not now"])).status).toBe(503);
    release();
    await ready;
    expect(worker.restartCount).toBe(restarts + 1);
    expect((await rig.app.request("/readyz")).status).toBe(200);
    expect((await classify(["back"])).status).toBe(200);
    // The adapter prepared before the crashes is still cached and current.
    expect(rig.engine.registry.currentVersion("w")).toBe(1);
  });
});
