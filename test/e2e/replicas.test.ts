/**
 * Two server processes sharing one PostgreSQL adapter store (SKT_STORE), each with its own local
 * folder: a change made through one is served by the other without a restart; the database going
 * away leaves serving untouched, refuses changes with 503 + Retry-After, and both converge when it
 * is back; a replica restarted with an empty local folder serves every task; an adapter for
 * another backbone is refused by every replica. The processes are reused across the tests.
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeAdapter } from "../../src/adapters/format.js";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { checkResponsesFrom } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { postgresOrSkip } from "../helpers/postgres.js";
import { servableAdapter, servableAdapterBytes } from "../helpers/servable-adapter.js";

const cluster = await postgresOrSkip();
const TOKEN = "replicas-secret-token";
const admin = { authorization: `Bearer ${TOKEN}` };

let assets: BackboneAssets;
let tmp: string;
let a: ServerProcess;
let b: ServerProcess;
let folders = 0;

async function replica(label: string): Promise<ServerProcess> {
  const adaptersDir = path.join(tmp, `${label}-${++folders}`);
  const server = await spawnServerProcess({
    adaptersDir,
    label,
    env: {
      SKT_ADMIN_TOKEN: TOKEN,
      SKT_MODELS_DIR: MODELS_DIR,
      SKT_LOG_LEVEL: "warn",
      SKT_STORE: cluster!.url,
      SKT_THREADS: "1",
    },
    serveArgs: ["--max-wait-ms", "2"],
    readyWithinMs: 120_000,
    cwd: tmp,
  });
  checkResponsesFrom(server.base);
  return server;
}

const put = (s: ServerProcess, task: string, bytes: Uint8Array) =>
  fetch(`${s.base}/admin/adapters/${task}`, {
    method: "PUT",
    headers: { ...admin, "content-type": "application/octet-stream" },
    body: Buffer.from(bytes),
  });

const post = (s: ServerProcess, route: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${s.base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });

async function classify(
  s: ServerProcess,
  task: string,
): Promise<{ status: number; version?: number; label?: string; code?: string }> {
  const r = await post(s, `/classify?task=${task}`, { texts: ["a fine film"] });
  const body = (await r.json()) as {
    adapter_version?: number;
    predictions?: { label: string }[];
    error?: { code: string };
  };
  return {
    status: r.status,
    version: body.adapter_version,
    label: body.predictions?.[0].label,
    code: body.error?.code,
  };
}

async function until<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, withinMs = 30_000): Promise<T> {
  const end = Date.now() + withinMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Forces the label: bias +30 on the chosen one. */
const adapter = (task: string, seed: number, label: "negative" | "positive") =>
  servableAdapterBytes(assets, { task, seed, headBias: label === "negative" ? [30, -30] : [-30, 30] });

beforeAll(async () => {
  if (!cluster) return;
  assets = await loadBackboneAssets(MODELS_DIR);
  tmp = await mkdtemp(path.join(os.tmpdir(), "skt-replicas-"));
  [a, b] = await Promise.all([replica("replica-a"), replica("replica-b")]);
});

afterAll(async () => {
  await a?.kill();
  await b?.kill();
  await cluster?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!cluster)("replicas sharing a PostgreSQL adapter store", () => {
  it("serves on B what was uploaded on A, and propagates rollback and delete", async () => {
    expect((await put(a, "sentiment", adapter("sentiment", 1, "negative"))).status).toBe(201);
    await until(
      "B serves v1",
      () => classify(b, "sentiment"),
      (r) => r.status === 200 && r.version === 1,
    );
    expect(await classify(b, "sentiment")).toMatchObject({ version: 1, label: "negative" });

    expect((await put(b, "sentiment", adapter("sentiment", 2, "positive"))).status).toBe(201);
    await until(
      "A serves v2",
      () => classify(a, "sentiment"),
      (r) => r.version === 2,
    );
    expect(await classify(a, "sentiment")).toMatchObject({ version: 2, label: "positive" });

    const rb = await post(a, "/admin/adapters/sentiment/rollback", {}, admin);
    expect(rb.status).toBe(200);
    await until(
      "B serves the rollback",
      () => classify(b, "sentiment"),
      (r) => r.version === 1,
    );
    expect(await classify(b, "sentiment")).toMatchObject({ version: 1, label: "negative" });

    const del = await fetch(`${b.base}/admin/adapters/sentiment`, { method: "DELETE", headers: admin });
    expect(del.status).toBe(204);
    await until(
      "A forgets the task",
      () => classify(a, "sentiment"),
      (r) => r.status === 404,
    );
    expect(await classify(a, "sentiment")).toMatchObject({ status: 404, code: "unknown_task" });
  });

  it("gives unique versions to concurrent uploads to one task from both replicas, and both agree on the current one", async () => {
    const uploads = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        put(i % 2 ? a : b, "race", adapter("race", 10 + i, i % 2 ? "positive" : "negative")),
      ),
    );
    expect(uploads.map((r) => r.status)).toEqual([201, 201, 201, 201, 201, 201]);
    const versions = (await Promise.all(uploads.map((r) => r.json() as Promise<{ version: number }>))).map(
      (x) => x.version,
    );
    expect(new Set(versions).size).toBe(6);
    const listing = async (s: ServerProcess) => {
      const r = await fetch(`${s.base}/admin/adapters/race`, { headers: admin });
      return (await r.json()) as { current: number; versions: { version: number }[] };
    };
    const fromA = await listing(a);
    expect(fromA.versions.map((v) => v.version).sort()).toEqual([...versions].sort());
    // A replica's `current` follows the others' changes by notification, so a listing read right
    // after the uploads may still name an earlier one: wait until both listings and both answers agree.
    const agreed = await until(
      "both list and serve the same current version",
      async () => ({
        listed: [(await listing(a)).current, (await listing(b)).current],
        served: [(await classify(a, "race")).version, (await classify(b, "race")).version],
      }),
      ({ listed, served }) => [...listed, ...served].every((v) => v === listed[0]),
    );
    expect(versions).toContain(agreed.listed[0]);
  });

  it("refuses an adapter for another backbone on every replica", async () => {
    const foreign = servableAdapter(assets, { task: "foreign" });
    foreign.metadata = { ...foreign.metadata, backboneFingerprint: "f".repeat(64) };
    const bytes = encodeAdapter(foreign, assets.dims);
    for (const s of [a, b]) {
      const r = await put(s, "foreign", bytes);
      expect(r.status).toBe(422);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("fingerprint_mismatch");
    }
    // Written into the database by something else (a replica of another backbone): served by none.
    const c = new pg.Client({ connectionString: cluster!.url });
    await c.connect();
    await c.query("BEGIN");
    await c.query("INSERT INTO skt_tasks (task, current_version, last_version) VALUES ('foreign', 1, 1)");
    await c.query(
      "INSERT INTO skt_adapter_versions (task, version, sha256, size, bytes, created_by) VALUES ('foreign', 1, $1, $2, $3, 'elsewhere')",
      [createHash("sha256").update(bytes).digest("hex"), bytes.length, Buffer.from(bytes)],
    );
    await c.query("SELECT pg_notify('skt_adapter_changes', '{\"task\":\"foreign\"}')");
    await c.query("COMMIT");
    await c.end();
    for (const s of [a, b]) {
      const r = await until(
        "the replica knows the task",
        () => classify(s, "foreign"),
        (x) => x.status !== 404,
      );
      expect(r).toMatchObject({ status: 409, code: "adapter_invalid" });
    }
  });

  it("keeps classifying while the database is down, answers 503 + Retry-After to changes, and converges when it is back", async () => {
    expect((await put(a, "steady", adapter("steady", 3, "positive"))).status).toBe(201);
    await until(
      "B serves steady",
      () => classify(b, "steady"),
      (r) => r.version === 1,
    );

    let stop = false;
    const failures: string[] = [];
    let served = 0;
    const traffic = (async () => {
      while (!stop) {
        for (const s of [a, b]) {
          const r = await classify(s, "steady");
          if (r.status === 200 && r.version === 1) served++;
          else failures.push(JSON.stringify(r));
        }
      }
    })();

    await cluster!.stop();
    try {
      const ready = await until(
        "A reports the store degraded",
        async () => (await (await fetch(`${a.base}/readyz`)).json()) as { status: string; store: { state: string } },
        (x) => x.store.state === "degraded",
      );
      expect(ready.status).toBe("ready");
      const metrics = await (await fetch(`${b.base}/metrics`)).text();
      await until(
        "B's metric says the store is down",
        async () => (await (await fetch(`${b.base}/metrics`)).text()).includes("skt_adapter_store_up 0"),
        Boolean,
      );
      expect(metrics).toContain("skt_adapter_store_up");
      for (const attempt of [
        () => put(a, "steady", adapter("steady", 4, "negative")),
        () => post(b, "/admin/adapters/steady/rollback", { version: 1 }, admin),
        () => fetch(`${a.base}/admin/adapters/steady`, { method: "DELETE", headers: admin }),
      ]) {
        const r = await attempt();
        expect(r.status).toBe(503);
        expect(r.headers.get("retry-after")).toMatch(/^\d+$/);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe("store_unavailable");
      }
    } finally {
      await cluster!.start();
    }
    for (const s of [a, b]) {
      await until(
        "the store is ok again",
        async () => ((await (await fetch(`${s.base}/readyz`)).json()) as { store: { state: string } }).store.state,
        (x) => x === "ok",
      );
    }
    stop = true;
    await traffic;
    expect(failures).toEqual([]);
    expect(served).toBeGreaterThan(0);

    expect((await put(b, "steady", adapter("steady", 5, "negative"))).status).toBe(201);
    await until(
      "A serves the change made after the outage",
      () => classify(a, "steady"),
      (r) => r.version === 2,
    );
  });

  it("a replica restarted with an empty local folder serves every task", async () => {
    const before = await classify(a, "steady");
    await b.kill();
    b = await replica("replica-b-again");
    expect(await classify(b, "steady")).toMatchObject({ status: 200, version: before.version, label: before.label });
    expect(await classify(b, "race")).toMatchObject({ status: 200, version: (await classify(a, "race")).version });
    expect((await classify(b, "sentiment")).status).toBe(404);
  });
});
