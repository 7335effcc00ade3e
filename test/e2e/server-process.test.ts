/**
 * The real server as a separate process on a free loopback port: classify over HTTP, upload,
 * roll back, scrape metrics, and shut down gracefully with requests in flight.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { checkResponsesFrom } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";

const TOKEN = "e2e-secret-token";
let assets: BackboneAssets;
let adaptersDir: string;
let server: ServerProcess;
let base: string;

const admin = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  adaptersDir = await mkdtemp(path.join(os.tmpdir(), "skt-e2e-"));
  server = await spawnServerProcess({
    adaptersDir,
    env: { SKT_ADMIN_TOKEN: TOKEN, SKT_MODELS_DIR: MODELS_DIR, SKT_LOG_LEVEL: "warn" },
    serveArgs: ["--max-wait-ms", "5"],
    readyWithinMs: 60_000,
    cwd: adaptersDir,
  });
  base = server.base;
  checkResponsesFrom(base); // every response below is checked against the OpenAPI document
});

afterAll(async () => {
  await server?.kill();
  await rm(adaptersDir, { recursive: true, force: true });
});

describe("server process end to end", () => {
  it("uploads, classifies, rolls back and reports metrics over HTTP", async () => {
    const v1 = servableAdapterBytes(assets, { task: "sentiment", seed: 1, headBias: [30, -30] });
    const v2 = servableAdapterBytes(assets, { task: "sentiment", seed: 2, headBias: [-30, 30] });
    const put = (bytes: Uint8Array) =>
      fetch(`${base}/admin/adapters/sentiment`, {
        method: "PUT",
        headers: { ...admin, "content-type": "application/octet-stream" },
        body: Buffer.from(bytes),
      });

    expect((await put(v1)).status).toBe(201);
    const classify = async () => {
      const r = await fetch(`${base}/classify?task=sentiment`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: ["a fine film", "awful"] }),
      });
      expect(r.status).toBe(200);
      return (await r.json()) as { adapter_version: number; predictions: { label: string }[] };
    };
    expect(await classify()).toMatchObject({
      adapter_version: 1,
      predictions: [{ label: "negative" }, { label: "negative" }],
    });

    expect((await put(v2)).status).toBe(201);
    expect(await classify()).toMatchObject({
      adapter_version: 2,
      predictions: [{ label: "positive" }, { label: "positive" }],
    });

    const rb = await fetch(`${base}/admin/adapters/sentiment/rollback`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: "{}",
    });
    expect(rb.status).toBe(200);
    expect(await classify()).toMatchObject({ adapter_version: 1 });

    const tasks = (await (await fetch(`${base}/tasks`)).json()) as { tasks: { task: string; version: number }[] };
    expect(tasks.tasks).toEqual([expect.objectContaining({ task: "sentiment", version: 1 })]);

    const unauthorized = await fetch(`${base}/admin/adapters/sentiment`, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.from(v1),
    });
    expect(unauthorized.status).toBe(401);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/skt_requests_total\{task="sentiment",status="200"\} 3/);
    expect(metrics).toMatch(/skt_uploads_total\{outcome="ok"\} 2/);
    // v1, v2 and the rollback to v1 all have the same prompt text: one semantic pass served all three.
    expect(metrics).toMatch(/skt_semantic_passes_total\{task="sentiment"\} 1\n/);
  });

  it("finishes accepted requests on SIGTERM and exits cleanly", async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `request ${i} `.repeat(10));
    const inflight = Array.from({ length: 12 }, () =>
      fetch(`${base}/classify?task=sentiment`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts }),
      }).then((r) => r.status),
    );
    await new Promise((r) => setTimeout(r, 30));
    server.proc.kill("SIGTERM");
    const statuses = await Promise.all(inflight.map((p) => p.catch(() => "refused")));
    // Every request the server accepted was answered; none failed server-side.
    expect(statuses.filter((s) => s !== 200 && s !== "refused")).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect((await server.exited).code).toBe(0);
  });
});
