/**
 * The real server as a separate process on a free loopback port: classify over HTTP, upload,
 * roll back, scrape metrics, and shut down gracefully with requests in flight.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { MODELS_DIR, REPO_ROOT } from "../helpers/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";

const TOKEN = "e2e-secret-token";
let assets: BackboneAssets;
let adaptersDir: string;
let server: ChildProcess;
let base: string;
let exitCode: Promise<number | null>;
let output = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

async function waitReady(deadlineMs: number): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until) {
    const ok = await fetch(`${base}/readyz`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`server not ready in time; output:\n${output}`);
}

const admin = { authorization: `Bearer ${TOKEN}` };

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  adaptersDir = await mkdtemp(path.join(os.tmpdir(), "skt-e2e-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, ["--import", "tsx", "src/cli.ts", "serve", "--max-wait-ms", "5"], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", SKT_ADMIN_TOKEN: TOKEN, SKT_ADAPTERS_DIR: adaptersDir, SKT_MODELS_DIR: MODELS_DIR, SKT_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout!.on("data", (d) => (output += d));
  server.stderr!.on("data", (d) => (output += d));
  exitCode = new Promise((resolve) => server.on("exit", (code) => resolve(code)));
  await waitReady(60_000);
});

afterAll(async () => {
  if (server.exitCode === null) server.kill("SIGKILL");
  await rm(adaptersDir, { recursive: true, force: true });
});

describe("server process end to end", () => {
  it("uploads, classifies, rolls back and reports metrics over HTTP", async () => {
    const v1 = servableAdapterBytes(assets, { task: "sentiment", seed: 1, headBias: [30, -30] });
    const v2 = servableAdapterBytes(assets, { task: "sentiment", seed: 2, headBias: [-30, 30] });
    const put = (bytes: Uint8Array) => fetch(`${base}/admin/adapters/sentiment`, { method: "PUT", headers: { ...admin, "content-type": "application/octet-stream" }, body: Buffer.from(bytes) });

    expect((await put(v1)).status).toBe(201);
    const classify = async () => {
      const r = await fetch(`${base}/classify?task=sentiment`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ texts: ["a fine film", "awful"] }) });
      expect(r.status).toBe(200);
      return (await r.json()) as { adapter_version: number; predictions: { label: string }[] };
    };
    expect(await classify()).toMatchObject({ adapter_version: 1, predictions: [{ label: "negative" }, { label: "negative" }] });

    expect((await put(v2)).status).toBe(201);
    expect(await classify()).toMatchObject({ adapter_version: 2, predictions: [{ label: "positive" }, { label: "positive" }] });

    const rb = await fetch(`${base}/admin/adapters/sentiment/rollback`, { method: "POST", headers: { ...admin, "content-type": "application/json" }, body: "{}" });
    expect(rb.status).toBe(200);
    expect(await classify()).toMatchObject({ adapter_version: 1 });

    const tasks = (await (await fetch(`${base}/tasks`)).json()) as { tasks: { task: string; version: number }[] };
    expect(tasks.tasks).toEqual([expect.objectContaining({ task: "sentiment", version: 1 })]);

    const unauthorized = await fetch(`${base}/admin/adapters/sentiment`, { method: "PUT", headers: { "content-type": "application/octet-stream" }, body: Buffer.from(v1) });
    expect(unauthorized.status).toBe(401);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(/skt_requests_total\{task="sentiment",status="200"\} 3/);
    expect(metrics).toMatch(/skt_uploads_total\{outcome="ok"\} 2/);
    expect(metrics).toMatch(/skt_semantic_passes_total\{task="sentiment"\} 3/); // v1, v2, v1 again on rollback
  });

  it("finishes accepted requests on SIGTERM and exits cleanly", async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `request ${i} `.repeat(10));
    const inflight = Array.from({ length: 12 }, () =>
      fetch(`${base}/classify?task=sentiment`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ texts }) }).then((r) => r.status));
    await new Promise((r) => setTimeout(r, 30));
    server.kill("SIGTERM");
    const statuses = await Promise.all(inflight.map((p) => p.catch(() => "refused")));
    // Every request the server accepted was answered; none failed server-side.
    expect(statuses.filter((s) => s !== 200 && s !== "refused")).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(await exitCode).toBe(0);
  });
});
