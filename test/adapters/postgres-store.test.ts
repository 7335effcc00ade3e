/**
 * The PostgreSQL adapter store against a real PostgreSQL (test/helpers/postgres.ts): migrations
 * under concurrent start-ups, unique versions under concurrent writers, convergence by
 * LISTEN/NOTIFY, reconnect and re-read after a lost connection, serving from the local copy while
 * the database is down, and no torn version after a writer is killed with SIGKILL.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSktError } from "../../src/errors.js";
import type { StoreChangeHandler } from "../../src/adapters/store/interface.js";
import { MIGRATIONS } from "../../src/adapters/store/migrations.js";
import { PostgresAdapterStore } from "../../src/adapters/store/postgres.js";
import { postgresOrSkip, type PostgresCluster } from "../helpers/postgres.js";

const cluster = await postgresOrSkip();
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let tmp: string;
let dbCount = 0;
const stores: PostgresAdapterStore[] = [];

/** A fresh database per test, so tests do not see each other's tasks. */
async function freshDatabase(c: PostgresCluster): Promise<string> {
  const name = `t${++dbCount}_${process.pid}`;
  const admin = new pg.Client({ connectionString: c.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return c.url.replace(/\/postgres$/, `/${name}`);
}

function store(url: string, extra: Partial<ConstructorParameters<typeof PostgresAdapterStore>[0]> = {}): PostgresAdapterStore {
  const s = new PostgresAdapterStore({ url, localDir: path.join(tmp, `local-${stores.length}`), reconnectMinMs: 50, reconnectMaxMs: 400, connectTimeoutMs: 1000, ...extra });
  stores.push(s);
  return s;
}

async function until(what: string, check: () => boolean | Promise<boolean>, withinMs = 20_000): Promise<void> {
  const end = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const bytesOf = (text: string) => new TextEncoder().encode(text);
const textOf = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Records what the registry would be told. */
function recorder(holds = false): StoreChangeHandler & { applied: (t: string, v: number | null) => void; log: [string, number | null][]; prepared: [string, number, string][] } {
  const log: [string, number | null][] = [];
  const prepared: [string, number, string][] = [];
  return {
    log,
    prepared,
    holds: () => holds,
    prepare: (task, version, bytes) => {
      prepared.push([task, version, textOf(bytes)]);
      return Promise.resolve(`prepared ${task}@${version}`);
    },
    applied: (task, version) => log.push([task, version]),
  };
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), "skt-pgstore-"));
});

afterAll(async () => {
  for (const s of stores) await s.close();
  await cluster?.destroy();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe.skipIf(!cluster)("PostgreSQL adapter store", () => {
  it("migrates once when several replicas start at the same time", async () => {
    const url = await freshDatabase(cluster!);
    const opened = await Promise.all([store(url), store(url), store(url), store(url)].map((s) => s.open()));
    expect(opened.map((o) => o.tasks)).toEqual([0, 0, 0, 0]);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ version: number }>("SELECT version FROM skt_schema_migrations ORDER BY version");
    await c.end();
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    // A later start finds nothing to do and still works.
    const late = store(url);
    await late.open();
    expect(late.health()).toEqual({ backend: "postgres", state: "ok", reason: null });
  });

  it("gives unique versions to concurrent uploads of one task from two replicas, and one current pointer", async () => {
    const url = await freshDatabase(cluster!);
    const [a, b] = [store(url), store(url)];
    await Promise.all([a.open(), b.open()]);
    const writes = Array.from({ length: 16 }, (_, i) => (i % 2 ? a : b).writeVersion("race", bytesOf(`payload ${i}`)));
    const versions = await Promise.all(writes);
    expect([...versions].sort((x, y) => x - y)).toEqual(Array.from({ length: 16 }, (_, i) => i + 1));
    // Each version holds what its writer sent.
    for (let i = 0; i < 16; i++) expect(textOf(await a.read("race", versions[i]))).toBe(`payload ${i}`);
    // Racing promotions: whichever commits last wins, and both replicas agree on it.
    await Promise.all(versions.map((v, i) => (i % 2 ? b : a).setCurrent("race", v)));
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const current = (await c.query<{ current_version: number }>("SELECT current_version FROM skt_tasks WHERE task = 'race'")).rows[0].current_version;
    await c.end();
    await until("both replicas agree with the database", () => a.index.get("race")?.version === current && b.index.get("race")?.version === current);
  });

  it("propagates uploads, rollbacks and deletes to the other replica, preparing held tasks first", async () => {
    const url = await freshDatabase(cluster!);
    const [a, b] = [store(url), store(url)];
    await Promise.all([a.open((task, bytes) => ({ task, length: bytes.length })), b.open()]);
    const seen = recorder(true);
    b.watch(seen);

    const v1 = await a.writeVersion("sentiment", bytesOf("first"));
    await a.setCurrent("sentiment", v1);
    await until("B sees v1", () => b.index.get("sentiment")?.version === v1);
    expect(b.index.get("sentiment")?.summary).toEqual({ task: "sentiment", length: 5 });
    expect(seen.prepared).toContainEqual(["sentiment", v1, "first"]);

    const v2 = await a.writeVersion("sentiment", bytesOf("second"));
    await a.setCurrent("sentiment", v2);
    await until("B sees v2", () => b.index.get("sentiment")?.version === v2);
    expect(textOf(await b.read("sentiment", v2))).toBe("second");

    await b.setCurrent("sentiment", v1); // a rollback on B reaches A
    await until("A sees the rollback", () => a.index.get("sentiment")?.version === v1);
    expect((await a.listVersions("sentiment")).map((v) => v.version)).toEqual([v1, v2]);

    await a.deleteTask("sentiment");
    await until("B drops the task", () => !b.index.has("sentiment"));
    expect(seen.log.at(-1)).toEqual(["sentiment", null]);
    await expect(b.deleteTask("sentiment")).rejects.toMatchObject({ code: "task_not_found" });
    // Numbers never repeat after a delete: no replica can confuse a new v1 with the deleted one.
    expect(await b.writeVersion("sentiment", bytesOf("third"))).toBe(v2 + 1);
  });

  it("refuses to delete or promote what does not exist, and to delete the current version", async () => {
    const url = await freshDatabase(cluster!);
    const a = store(url);
    await a.open();
    await expect(a.setCurrent("ghost", 1)).rejects.toMatchObject({ code: "version_not_found" });
    await expect(a.deleteTask("ghost")).rejects.toMatchObject({ code: "task_not_found" });
    const v = await a.writeVersion("t", bytesOf("x"));
    await a.setCurrent("t", v);
    await expect(a.deleteVersion("t", v)).rejects.toMatchObject({ code: "version_is_current" });
    await expect(a.read("t", v + 5)).rejects.toMatchObject({ code: "version_not_found" });
  });

  it("re-reads every task after losing its connection, so a change missed meanwhile is applied", async () => {
    const url = await freshDatabase(cluster!);
    const a = store(url);
    // B waits a while before reconnecting: A's change lands while B is not listening.
    const b = store(url, { reconnectMinMs: 1500, reconnectMaxMs: 1500, replicaName: "replica-b" });
    await Promise.all([a.open(), b.open()]);
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' AND datname = current_database() AND pid <> pg_backend_pid()");
    await c.end();
    const v = await a.writeVersion("missed", bytesOf("while away"));
    await a.setCurrent("missed", v);
    await until("B converges without the notification", () => b.index.get("missed")?.version === v);
    await until("B is ok again", () => b.health().state === "ok");
  });

  it("keeps serving held versions from the local copy while the database is down, refuses changes, and converges when it is back", async () => {
    const url = await freshDatabase(cluster!);
    const [a, b] = [store(url), store(url)];
    await Promise.all([a.open(), b.open()]);
    const v = await a.writeVersion("held", bytesOf("held bytes"));
    await a.setCurrent("held", v);
    await until("B sees it", () => b.index.get("held")?.version === v);
    expect(textOf(await b.read("held", v))).toBe("held bytes"); // fetched once, copied locally

    await cluster!.stop();
    try {
      await until("both degraded", () => a.health().state === "degraded" && b.health().state === "degraded");
      expect(textOf(await b.read("held", v))).toBe("held bytes");
      for (const change of [() => a.writeVersion("held", bytesOf("new")), () => b.setCurrent("held", v), () => a.deleteTask("held")]) {
        const err = await change().then(() => null, (e: unknown) => e);
        expect(isSktError(err) && { kind: err.kind, code: err.code }).toEqual({ kind: "not_ready", code: "store_unavailable" });
      }
      expect(a.index.get("held")?.version).toBe(v); // nothing changed
    } finally {
      await cluster!.start();
    }
    await until("both ok again", () => a.health().state === "ok" && b.health().state === "ok");
    const v2 = await b.writeVersion("held", bytesOf("after"));
    await b.setCurrent("held", v2);
    await until("A converges", () => a.index.get("held")?.version === v2);
  });

  it("a replica started while the database is down waits for it, then opens with every task", async () => {
    const url = await freshDatabase(cluster!);
    const a = store(url);
    await a.open();
    await a.setCurrent("early", await a.writeVersion("early", bytesOf("early bytes")));
    await cluster!.stop();
    const late = store(url);
    let opened = false;
    const opening = late.open().then((r) => {
      opened = true;
      return r;
    });
    try {
      await new Promise((r) => setTimeout(r, 600)); // a few refused attempts
      expect(opened).toBe(false);
      expect(late.health().state).toBe("degraded");
    } finally {
      await cluster!.start();
    }
    expect((await opening).tasks).toBe(1);
    expect(late.health().state).toBe("ok");
    expect(textOf(await late.read("early", 1))).toBe("early bytes");
  });

  it("a writer killed with SIGKILL mid-upload leaves only complete versions and a valid pointer", async () => {
    const url = await freshDatabase(cluster!);
    const script = path.join(tmp, "writer.mts");
    const storeModule = path.join(REPO, "src/adapters/store/postgres.ts");
    await writeFile(
      script,
      `import { randomBytes } from "node:crypto";
       import { PostgresAdapterStore } from ${JSON.stringify(storeModule)};
       const s = new PostgresAdapterStore({ url: process.env.URL!, localDir: process.env.LOCAL!, maxVersionsPerTask: Infinity });
       await s.open();
       for (;;) {
         const v = await s.writeVersion("crash", randomBytes(4 * 1024 * 1024));
         await s.setCurrent("crash", v);
         process.stdout.write("w");
       }`,
    );
    for (let round = 0; round < 3; round++) {
      const child = spawn(process.execPath, ["--import", "tsx", script], { env: { ...process.env, URL: url, LOCAL: path.join(tmp, "writer-local") }, cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
      let written = 0;
      child.stdout.on("data", (d: Buffer) => (written += d.length));
      await until("the writer has committed a version", () => written >= round + 1, 60_000);
      // Random moment: somewhere inside the next 4 MiB upload (or between two).
      await new Promise((r) => setTimeout(r, Math.random() * 150));
      child.kill("SIGKILL");
      await new Promise((r) => child.once("exit", r));
    }
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ version: number; sha256: string; size: number; bytes: Buffer }>("SELECT version, sha256, size, bytes FROM skt_adapter_versions WHERE task = 'crash'");
    const current = (await c.query<{ current_version: number }>("SELECT current_version FROM skt_tasks WHERE task = 'crash'")).rows[0].current_version;
    await c.end();
    expect(rows.length).toBeGreaterThanOrEqual(3);
    for (const r of rows) {
      expect(r.size).toBe(4 * 1024 * 1024);
      expect(createHash("sha256").update(r.bytes).digest("hex")).toBe(r.sha256);
    }
    expect(rows.map((r) => r.version)).toContain(current);
    // A fresh replica opens it and reads the current version whole.
    const fresh = store(url);
    await fresh.open();
    expect((await fresh.read("crash", current)).length).toBe(4 * 1024 * 1024);
  });
});
