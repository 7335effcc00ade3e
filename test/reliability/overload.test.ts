/**
 * Overload against the real server process with a tiny queue (SKT_QUEUE_SIZE=8 texts): find the
 * concurrency that saturates it, then drive ~3× that many closed-loop clients and a burst of
 * simultaneous requests. The server must refuse the excess with 429 + `Retry-After` instead of
 * queueing without bound (the queue-depth gauge never passes the limit), every accepted request
 * must succeed, and once the load stops it serves normally again. No timing is asserted beyond a
 * very generous sanity bound.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets } from "../../src/backbone/backbone.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { adminHeaders, spawnServer, type ServerProcess } from "./helpers.js";

const QUEUE = 8;
const BATCH = 4;
const TEXTS = 4; // per request: the queue holds two waiting requests, the worker runs one
let server: ServerProcess;
let root: string;

beforeAll(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  root = await mkdtemp(path.join(os.tmpdir(), "skt-rel-overload-"));
  server = await spawnServer({
    adaptersDir: path.join(root, "adapters"),
    env: {
      SKT_QUEUE_SIZE: String(QUEUE),
      SKT_MAX_BATCH_SIZE: String(BATCH),
      SKT_MAX_WAIT_MS: "2",
      SKT_RETRY_AFTER_S: "1",
    },
  });
  const r = await fetch(`${server.base}/admin/adapters/load`, {
    method: "PUT",
    headers: { ...adminHeaders, "content-type": "application/octet-stream" },
    body: Buffer.from(servableAdapterBytes(assets, { task: "load", seed: 1 })),
  });
  expect(r.status).toBe(201);
});
afterAll(async () => {
  await server?.kill();
  await rm(root, { recursive: true, force: true });
});

interface Outcome {
  status: number;
  ms: number;
  retryAfter: string | null;
  code?: string;
  predictions?: number;
}

const body = JSON.stringify({ texts: Array.from({ length: TEXTS }, (_, i) => `request text number ${i} `.repeat(8)) });

async function one(): Promise<Outcome> {
  const t0 = performance.now();
  const r = await fetch(`${server.base}/classify?task=load`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  const json = (await r.json()) as { error?: { code: string; message: string }; predictions?: unknown[] };
  const out: Outcome = { status: r.status, ms: performance.now() - t0, retryAfter: r.headers.get("retry-after") };
  if (json.error) {
    expect(Object.keys(json)).toEqual(["error"]);
    expect(typeof json.error.message).toBe("string");
    out.code = json.error.code;
  }
  if (json.predictions) out.predictions = json.predictions.length;
  return out;
}

/** `clients` closed-loop clients, `each` requests apiece, no retries. */
async function closedLoop(clients: number, each: number): Promise<Outcome[]> {
  const all: Outcome[] = [];
  await Promise.all(
    Array.from({ length: clients }, async () => {
      for (let i = 0; i < each; i++) all.push(await one());
    }),
  );
  return all;
}

async function queueDepth(): Promise<number> {
  const text = await (await fetch(`${server.base}/metrics`)).text();
  return Number(/^skt_queue_depth(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN);
}

function summarize(what: string, outs: Outcome[]): void {
  const by = (s: number) =>
    outs
      .filter((o) => o.status === s)
      .map((o) => o.ms)
      .sort((a, b) => a - b);
  const pct = (xs: number[], p: number) =>
    xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))].toFixed(0) : "-";
  const ok = by(200);
  const busy = by(429);
  console.log(
    `[overload] ${what}: ${outs.length} requests, ${ok.length} × 200 (p50 ${pct(ok, 0.5)} ms, max ${pct(ok, 1)} ms), ${busy.length} × 429 (p50 ${pct(busy, 0.5)} ms, max ${pct(busy, 1)} ms), other ${outs.length - ok.length - busy.length}`,
  );
}

function checkOutcomes(outs: Outcome[]): void {
  for (const o of outs) {
    expect([200, 429], JSON.stringify(o)).toContain(o.status);
    if (o.status === 200) expect(o.predictions).toBe(TEXTS);
    else {
      expect(o.code).toBe("queue_full");
      expect(o.retryAfter).toBe("1");
      expect(o.ms).toBeLessThan(30_000); // sanity only: refused, not parked
    }
  }
}

describe("overload with a tiny queue", () => {
  let saturating = 0;

  it("finds the concurrency at which the queue fills", async () => {
    for (let c = 1; c <= 12 && !saturating; c++) {
      const outs = await closedLoop(c, 8);
      checkOutcomes(outs);
      if (outs.some((o) => o.status === 429)) saturating = c;
    }
    // The queue holds QUEUE / TEXTS waiting requests plus the running one; more is refused.
    saturating ||= QUEUE / TEXTS + 2;
    console.log(
      `[overload] saturating concurrency: ${saturating} clients (queue ${QUEUE} texts, ${TEXTS} texts per request)`,
    );
    expect(saturating).toBeGreaterThan(1);
  });

  it("~3× the saturating concurrency: 429 + Retry-After for the excess, every accepted request succeeds, the queue stays bounded", async () => {
    let maxDepth = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxDepth = Math.max(maxDepth, await queueDepth());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const outs = await closedLoop(3 * saturating, 20);
    sampling = false;
    await sampler;
    summarize(`${3 * saturating} closed-loop clients`, outs);
    checkOutcomes(outs);
    expect(outs.filter((o) => o.status === 429).length).toBeGreaterThan(0);
    expect(outs.filter((o) => o.status === 200).length).toBeGreaterThan(0);
    console.log(`[overload] highest queue depth seen: ${maxDepth} (limit ${QUEUE})`);
    expect(maxDepth).toBeLessThanOrEqual(QUEUE);
  });

  it("a burst of 200 simultaneous requests: only 200s and 429s", async () => {
    const outs = await Promise.all(Array.from({ length: 200 }, () => one()));
    summarize("burst of 200", outs);
    checkOutcomes(outs);
    expect(outs.filter((o) => o.status === 429).length).toBeGreaterThan(0);
  });

  it("serves normally once the load stops", async () => {
    const outs = await closedLoop(1, 20);
    expect(outs.map((o) => o.status)).toEqual(Array(20).fill(200));
    expect(await queueDepth()).toBe(0);
    expect((await fetch(`${server.base}/readyz`)).status).toBe(200);
    expect(server.proc.exitCode).toBeNull();
  });
});
