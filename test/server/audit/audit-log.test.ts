import * as fsp from "node:fs/promises";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { AuditLog, type AuditEntry, type AuditFs } from "../../../src/server/audit/audit-log.js";

const tmpFile = () => path.join(mkdtempSync(path.join(os.tmpdir(), "skt-auditlog-")), "sub", "audit.jsonl");

function fields(i: number, over: Partial<AuditEntry> = {}): Omit<AuditEntry, "time"> {
  return {
    request_id: `r${i}`,
    actor: i % 3 === 0 ? null : `tok${i % 5}`,
    action: "upload",
    method: "PUT",
    path: `/admin/adapters/t${i % 7}`,
    task: `t${i % 7}`,
    version: i,
    sha256: null,
    status: 201,
    result: "ok",
    code: null,
    client: "127.0.0.1",
    ...over,
  };
}

async function lines(file: string): Promise<AuditEntry[]> {
  const text = await fsp.readFile(file, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  // An empty line is allowed: a second writer can see the other's append half-way and start a fresh line.
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as AuditEntry);
}

/** fs whose writes are counted, and can be made to fail. */
function countingFs(fail: { write?: boolean } = {}) {
  const stats = { writes: 0, syncs: 0 };
  const fs: AuditFs = {
    mkdir: (p, o) => fsp.mkdir(p, o),
    async open(p, flags, mode) {
      const h = await fsp.open(p, flags, mode);
      return {
        write: async (b, off, len, pos) => {
          stats.writes++;
          if (fail.write) throw Object.assign(new Error("no space left"), { code: "ENOSPC" });
          return h.write(b, off, len, pos);
        },
        read: (b, off, len, pos) => h.read(b, off, len, pos),
        stat: () => h.stat(),
        datasync: async () => {
          stats.syncs++;
          await h.datasync();
        },
        close: () => h.close(),
      };
    },
  };
  return { fs, stats };
}

describe("AuditLog appends", () => {
  it("keeps every one of many concurrent appends, whole and in call order, with fewer writes than entries", async () => {
    const file = tmpFile();
    const { fs, stats } = countingFs();
    let t = Date.parse("2026-01-01T00:00:00Z");
    const log = new AuditLog(file, { fs, now: () => new Date(t++) });
    const n = 500;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        log.append(fields(i, { path: `/admin/adapters/t${i}/${"x".repeat(i % 97)}` })),
      ),
    );
    const got = await lines(file);
    expect(got.map((e) => e.request_id)).toEqual(Array.from({ length: n }, (_, i) => `r${i}`));
    expect(got.map((e) => e.path)).toEqual(
      Array.from({ length: n }, (_, i) => `/admin/adapters/t${i}/${"x".repeat(i % 97)}`),
    );
    // Time order = file order.
    const times = got.map((e) => Date.parse(e.time));
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    // Group commit: the queued entries went out in a few batches, each synced.
    expect(stats.writes).toBeLessThan(n);
    expect(stats.syncs).toBe(stats.writes);
  });

  it("two writers in one process interleave whole lines only (appends from overlapping batches)", async () => {
    const file = tmpFile();
    const a = new AuditLog(file);
    const b = new AuditLog(file);
    await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).append(fields(i))));
    const got = await lines(file);
    expect(got.map((e) => e.request_id).sort()).toEqual(Array.from({ length: 200 }, (_, i) => `r${i}`).sort());
  });

  it("a failed write rejects that batch only; later appends still land", async () => {
    const file = tmpFile();
    const fail = { write: true };
    const { fs } = countingFs(fail);
    const log = new AuditLog(file, { fs });
    await expect(log.append(fields(1))).rejects.toThrow(/no space left/);
    fail.write = false;
    await log.append(fields(2));
    expect((await lines(file)).map((e) => e.request_id)).toEqual(["r2"]);
  });

  it("starts a fresh line after a torn last line (a crash mid-write), and reads skip the torn one", async () => {
    const file = tmpFile();
    const log = new AuditLog(file);
    await log.append(fields(1));
    await fsp.appendFile(file, '{"time":"2026-01-01T00:00:00.000Z","request_id":"torn');
    await log.append(fields(2));
    const text = await fsp.readFile(file, "utf8");
    expect(text.split("\n")[1]).toBe('{"time":"2026-01-01T00:00:00.000Z","request_id":"torn');
    expect((await log.query({ limit: 10 })).entries.map((e) => e.request_id)).toEqual(["r1", "r2"]);
  });
});

describe("AuditLog.query", () => {
  /** Reference: read everything, filter, keep the newest `limit`, oldest first. */
  async function naive(file: string, q: { limit: number; since?: number; filter?: (e: AuditEntry) => boolean }) {
    const all = (await fsp.readFile(file, "utf8"))
      .split("\n")
      .filter((l) => l.trim())
      .flatMap((l) => {
        try {
          return [JSON.parse(l) as AuditEntry];
        } catch {
          return [];
        }
      });
    const match = all.filter(
      (e) => (q.since === undefined || Date.parse(e.time) >= q.since) && (!q.filter || q.filter(e)),
    );
    return { entries: match.slice(Math.max(0, match.length - q.limit)), truncated: match.length > q.limit };
  }

  it("agrees with a whole-file reference across many read chunks", async () => {
    const file = tmpFile();
    const start = Date.parse("2026-01-01T00:00:00Z");
    let t = start;
    const log = new AuditLog(file, { fsync: false, now: () => new Date((t += 1000)) });
    // ~3000 entries of varying size (several 64 KiB chunks; lines straddle chunk boundaries).
    for (let i = 0; i < 3000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) => log.append(fields(i + j, { path: `/p/${"y".repeat((i + j) % 300)}` }))),
      );
    }
    const cases = [
      { limit: 1 },
      { limit: 100 },
      { limit: 5000 },
      { limit: 50, filter: (e: AuditEntry) => e.task === "t3" },
      { limit: 2000, filter: (e: AuditEntry) => e.task === "t3" },
      { limit: 100, since: start + 2_950_500 },
      { limit: 10, since: start + 1_000_000, filter: (e: AuditEntry) => e.actor === null },
      { limit: 10, since: start + 10_000_000 },
    ];
    for (const q of cases) {
      const got = await log.query(q);
      const want = await naive(file, q);
      expect(got.entries.map((e) => e.request_id)).toEqual(want.entries.map((e) => e.request_id));
      expect(got.truncated).toBe(want.truncated);
    }
  });

  it("skips lines that are not audit entries, however long", async () => {
    const file = tmpFile();
    const log = new AuditLog(file);
    await log.append(fields(1));
    await fsp.appendFile(file, `${"z".repeat(300_000)}\nnot json\n[1,2]\n`);
    await log.append(fields(2));
    await fsp.appendFile(file, `${"q".repeat(200_000)}\n`);
    await log.append(fields(3));
    expect((await log.query({ limit: 10 })).entries.map((e) => e.request_id)).toEqual(["r1", "r2", "r3"]);
  });

  it("answers an empty page when the file does not exist yet", async () => {
    expect(await new AuditLog(tmpFile()).query({ limit: 10 })).toEqual({ entries: [], truncated: false });
  });
});

describe("default location", () => {
  it("is audit.jsonl in the adapter store's root, which the store neither lists nor cleans up", async () => {
    const { AdapterStore } = await import("../../../src/adapters/store.js");
    const { auditLogPath } = await import("../../../src/server/admin-security.js");
    const root = path.join(mkdtempSync(path.join(os.tmpdir(), "skt-auditroot-")), "adapters");
    const file = auditLogPath({ adaptersDir: root, auditLog: undefined });
    expect(file).toBe(path.join(root, "audit.jsonl"));
    expect(auditLogPath({ adaptersDir: root, auditLog: "/var/log/skt/audit.jsonl" })).toBe("/var/log/skt/audit.jsonl");
    const store = new AdapterStore(root);
    await store.write("sst2", new Uint8Array([1, 2, 3]));
    await new AuditLog(file).append(fields(1));
    expect(await store.listTasks()).toEqual(["sst2"]);
    await store.recover();
    await store.deleteTask("sst2");
    expect(await store.listTasks()).toEqual([]);
    expect((await lines(file)).map((e) => e.request_id)).toEqual(["r1"]);
  });
});
