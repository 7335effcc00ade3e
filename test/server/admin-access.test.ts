/**
 * Scoped admin tokens, the failed-attempt limit and the audit log, through the HTTP API.
 */
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { adminSecurityFromConfig } from "../../src/server/admin-security.js";
import { AuditLog, type AuditEntry, type AuditFs } from "../../src/server/audit/audit-log.js";
import { FakeInferenceService, encodeFakeAdapter } from "../helpers/fake-service.js";
import { ADMIN_TOKEN, auth, errorOf, makeRig, sampleValue, scrape, type TestRig } from "./setup.js";

const TOKENS = {
  reader: "reader-token-0123456789abcdef",
  teamA: "team-a-token-0123456789abcdef",
  traffic: "traffic-token-0123456789abcdef",
};
const sha = (s: string | Uint8Array) => createHash("sha256").update(s).digest("hex");

function tokensFile(entries: unknown): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "skt-tokens-"));
  const file = path.join(dir, "tokens.json");
  writeFileSync(file, JSON.stringify(entries));
  return file;
}

const ENTRIES = [
  { name: "reader", sha256: sha(TOKENS.reader), scopes: ["read"] },
  { name: "team-a", sha256: sha(TOKENS.teamA), scopes: ["read", "write"], tasks: "team-a-*" },
  { name: "ops", sha256: sha(TOKENS.traffic), scopes: ["traffic"] },
];

function scopedRig(config: Partial<ServerConfig> = {}): TestRig {
  return makeRig(
    { adminTokensFile: tokensFile(ENTRIES), ...config },
    { tasks: { sst2: {}, "team-a-spam": {}, "team-a-topic": {}, "team-b-spam": {} } },
  );
}

/** A request as if it came from `client` (what @hono/node-server's conninfo reads). */
function from(client: string) {
  // A fully received request from `client` (what Node's IncomingMessage says once its body has arrived).
  return {
    incoming: {
      complete: true,
      destroyed: false,
      errored: null,
      socket: { remoteAddress: client, remotePort: 5555, remoteFamily: "IPv4", destroyed: false },
    },
  };
}

async function req(
  rig: TestRig,
  method: string,
  p: string,
  token?: string,
  client = "10.0.0.1",
  body?: Uint8Array,
): Promise<Response> {
  const headers: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
  if (body) headers["Content-Type"] = "application/octet-stream";
  return rig.app.request(p, { method, headers, ...(body ? { body: body as BodyInit } : {}) }, from(client));
}

async function auditEntries(rig: TestRig, query = ""): Promise<{ entries: AuditEntry[]; truncated: boolean }> {
  const res = await rig.app.request(`/admin/audit${query}`, { headers: auth() });
  expect(res.status).toBe(200);
  return (await res.json()) as { entries: AuditEntry[]; truncated: boolean };
}

describe("scoped tokens", () => {
  it("SKT_ADMIN_TOKEN keeps working alongside the file, with every scope on every task", async () => {
    const rig = scopedRig();
    expect((await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN)).status).toBe(200);
    expect(
      (await req(rig, "PUT", "/admin/adapters/team-b-spam", ADMIN_TOKEN, undefined, encodeFakeAdapter({}))).status,
    ).toBe(201);
  });

  it("the file alone enables the admin API", async () => {
    const rig = scopedRig({ adminToken: undefined });
    expect((await req(rig, "GET", "/admin/adapters", TOKENS.reader)).status).toBe(200);
    expect((await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN)).status).toBe(401);
  });

  it("GET needs read, mutations need write: 403 insufficient_scope otherwise", async () => {
    const rig = scopedRig();
    expect((await req(rig, "GET", "/admin/adapters/sst2", TOKENS.reader)).status).toBe(200);
    for (const [method, p] of [
      ["PUT", "/admin/adapters/sst2"],
      ["POST", "/admin/adapters/sst2/rollback"],
      ["POST", "/admin/adapters/sst2/activate"],
      ["DELETE", "/admin/adapters/sst2"],
      ["PUT", "/admin/adapters/sst2/eval-set"],
      ["DELETE", "/admin/adapters/sst2/eval-set"],
      ["DELETE", "/admin/adapters/sst2/versions/1"],
    ] as const) {
      const res = await req(
        rig,
        method,
        p,
        TOKENS.reader,
        undefined,
        method === "PUT" ? encodeFakeAdapter({}) : undefined,
      );
      expect(res.status, `${method} ${p}`).toBe(403);
      const err = await errorOf(res);
      expect(err.code).toBe("insufficient_scope");
      expect(err.details).toEqual({ token: "reader", scope: "write" });
    }
    // A traffic-only token can neither read nor write.
    expect((await errorOf(await req(rig, "GET", "/admin/adapters", TOKENS.traffic))).code).toBe("insufficient_scope");
    expect((await rig.service.adapterDetails("sst2")).versions).toHaveLength(1); // nothing changed
  });

  it("a task outside the token's glob is 403 task_not_allowed, for reads and writes", async () => {
    const rig = scopedRig();
    expect(
      (await req(rig, "PUT", "/admin/adapters/team-a-new", TOKENS.teamA, undefined, encodeFakeAdapter({}))).status,
    ).toBe(201);
    for (const [method, p] of [
      ["GET", "/admin/adapters/team-b-spam"],
      ["PUT", "/admin/adapters/team-b-spam"],
      ["DELETE", "/admin/adapters/sst2"],
      ["GET", "/admin/audit?task=sst2"],
    ] as const) {
      const res = await req(
        rig,
        method,
        p,
        TOKENS.teamA,
        undefined,
        method === "PUT" ? encodeFakeAdapter({}) : undefined,
      );
      expect(res.status, `${method} ${p}`).toBe(403);
      const err = await errorOf(res);
      expect(err.code).toBe("task_not_allowed");
      expect(err.message).toContain('"team-a-*"');
    }
    expect((await rig.service.adapterDetails("team-b-spam")).versions).toHaveLength(1);
  });

  it("the task list is filtered to the token's glob", async () => {
    const rig = scopedRig();
    const list = async (token: string) =>
      (
        (await (await req(rig, "GET", "/admin/adapters", token)).json()) as { adapters: { task: string }[] }
      ).adapters.map((a) => a.task);
    expect(await list(TOKENS.teamA)).toEqual(["team-a-spam", "team-a-topic"]);
    expect(await list(TOKENS.reader)).toEqual(["sst2", "team-a-spam", "team-a-topic", "team-b-spam"]);
    // Pages and `total` count only the token's tasks.
    type Page = { adapters: { task: string }[]; total: number; next_cursor: string | null };
    const first = (await (await req(rig, "GET", "/admin/adapters?limit=1", TOKENS.teamA)).json()) as Page;
    expect(first).toMatchObject({ adapters: [{ task: "team-a-spam" }], total: 2 });
    const second = (await (
      await req(rig, "GET", `/admin/adapters?limit=1&cursor=${first.next_cursor}`, TOKENS.teamA)
    ).json()) as Page;
    expect(second).toEqual({
      adapters: [expect.objectContaining({ task: "team-a-topic" })],
      total: 2,
      next_cursor: null,
    });
  });

  it("a bad tokens file stops start-up with a message naming the entry", () => {
    const file = tokensFile([ENTRIES[0], { name: "broken", sha256: "not-hex", scopes: ["read"] }]);
    const config = defaultConfig({ adminTokensFile: file });
    expect(() =>
      createApp({
        service: new FakeInferenceService(),
        metrics: createMetrics({ collectDefaults: false }),
        config,
        logger: createLogger({ level: "silent" }),
      }),
    ).toThrow(/SKT_ADMIN_TOKENS_FILE \(.*tokens\.json\): entry 1 \("broken"\): sha256/);
  });

  it("no token ever reaches the log, accepted or refused", async () => {
    const rig = scopedRig();
    await req(rig, "GET", "/admin/adapters", TOKENS.reader);
    await req(rig, "PUT", "/admin/adapters/sst2", TOKENS.teamA, undefined, encodeFakeAdapter({}));
    await req(rig, "GET", "/admin/adapters", "a-wrong-guess-0123456789");
    await req(rig, "GET", "/admin/adapters", undefined);
    const text = JSON.stringify(rig.logs) + readFileSync(rig.config.auditLog!, "utf8");
    expect(rig.logs.length).toBeGreaterThan(0);
    for (const t of [...Object.values(TOKENS), ADMIN_TOKEN, "a-wrong-guess-0123456789"]) expect(text).not.toContain(t);
  });
});

describe("failed-attempt limit", () => {
  it("N failures from one address → 429 with Retry-After for every admin request from it, others unaffected", async () => {
    const rig = scopedRig({ adminMaxAuthFailures: 3 });
    for (let i = 0; i < 3; i++) {
      expect((await req(rig, "GET", "/admin/adapters", `wrong-guess-${i}-0123456789`, "6.6.6.6")).status).toBe(401);
    }
    const blocked = await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN, "6.6.6.6"); // even the right token
    expect(blocked.status).toBe(429);
    expect((await errorOf(blocked)).code).toBe("too_many_auth_failures");
    const retry = Number(blocked.headers.get("retry-after"));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect((await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN, "7.7.7.7")).status).toBe(200);
  });

  it("malformed headers count as failures; a missing header and scope refusals do not", async () => {
    const rig = scopedRig({ adminMaxAuthFailures: 2 });
    for (let i = 0; i < 5; i++)
      expect((await req(rig, "GET", "/admin/adapters", undefined, "1.1.1.1")).status).toBe(401);
    for (let i = 0; i < 5; i++)
      expect((await req(rig, "PUT", "/admin/adapters/sst2", TOKENS.reader, "1.1.1.1")).status).toBe(403);
    expect((await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN, "1.1.1.1")).status).toBe(200);
    for (let i = 0; i < 2; i++) {
      const res = await rig.app.request(
        "/admin/adapters",
        { headers: { Authorization: "Basic dXNlcjpwYXNz" } },
        from("1.1.1.1"),
      );
      expect(res.status).toBe(400);
    }
    expect((await req(rig, "GET", "/admin/adapters", ADMIN_TOKEN, "1.1.1.1")).status).toBe(429);
  });

  it("concurrent guesses from one address cannot slip past the limit", async () => {
    const rig = scopedRig({ adminMaxAuthFailures: 5 });
    const statuses = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        req(rig, "GET", "/admin/adapters", `guess-${i}-0123456789abc`, "9.9.9.9").then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(35);
  });
});

describe("audit log", () => {
  it("records mutations with who, what, task, version, sha256, result, time and client", async () => {
    const rig = scopedRig();
    const bytes = encodeFakeAdapter({ labels: ["neg", "pos"] });
    const before = Date.now();
    expect((await req(rig, "PUT", "/admin/adapters/team-a-spam", TOKENS.teamA, "10.1.1.1", bytes)).status).toBe(201);
    expect((await req(rig, "POST", "/admin/adapters/team-a-spam/rollback", TOKENS.teamA, "10.1.1.1")).status).toBe(200);
    expect((await req(rig, "DELETE", "/admin/adapters/team-a-spam", ADMIN_TOKEN, "10.1.1.2")).status).toBe(204);
    expect((await req(rig, "GET", "/admin/adapters", TOKENS.reader)).status).toBe(200); // successful reads: not audited
    const { entries, truncated } = await auditEntries(rig);
    expect(truncated).toBe(false);
    expect(
      entries.map((e) => [e.actor, e.action, e.task, e.version, e.sha256, e.status, e.result, e.code, e.client]),
    ).toEqual([
      ["team-a", "upload", "team-a-spam", 2, sha(bytes), 201, "ok", null, "10.1.1.1"],
      ["team-a", "rollback", "team-a-spam", 1, null, 200, "ok", null, "10.1.1.1"],
      ["admin", "delete_task", "team-a-spam", null, null, 204, "ok", null, "10.1.1.2"],
    ]);
    for (const e of entries) {
      expect(Date.parse(e.time)).toBeGreaterThanOrEqual(before - 1000);
      expect(e.request_id).toMatch(/.+/);
    }
  });

  it("activate needs write (a read-only token gets 403 and changes nothing) and is audited as `activate` with its version", async () => {
    const rig = scopedRig();
    const activate = (token: string, version: number) =>
      rig.app.request(
        "/admin/adapters/team-a-spam/activate",
        {
          method: "POST",
          headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
          body: JSON.stringify({ version }),
        },
        from("10.2.2.2"),
      );
    expect(
      (await req(rig, "PUT", "/admin/adapters/team-a-spam", TOKENS.teamA, "10.2.2.2", encodeFakeAdapter({}))).status,
    ).toBe(201); // v2
    const refused = await activate(TOKENS.reader, 1);
    expect(refused.status).toBe(403);
    expect(await errorOf(refused)).toMatchObject({
      code: "insufficient_scope",
      details: { token: "reader", scope: "write" },
    });
    expect((await rig.service.adapterDetails("team-a-spam")).current).toBe(2);
    expect((await activate(TOKENS.teamA, 1)).status).toBe(200);
    expect((await rig.service.adapterDetails("team-a-spam")).current).toBe(1);
    expect((await activate(TOKENS.teamA, 1)).status).toBe(409);
    const { entries } = await auditEntries(rig, "?task=team-a-spam");
    expect(entries.map((e) => [e.actor, e.action, e.version, e.status, e.result])).toEqual([
      ["team-a", "upload", 2, 201, "ok"],
      ["reader", "activate", null, 403, "refused"], // refused before the body is read
      ["team-a", "activate", 1, 200, "ok"],
      ["team-a", "activate", 1, 409, "failed"],
    ]);
  });

  it("records failed and refused actions, auth failures included (once per blocked window for 429s)", async () => {
    const rig = scopedRig({ adminMaxAuthFailures: 2 });
    const bad = new TextEncoder().encode("not an adapter");
    expect((await req(rig, "PUT", "/admin/adapters/sst2", ADMIN_TOKEN, "10.2.2.2", bad)).status).toBe(422);
    expect((await req(rig, "POST", "/admin/adapters/ghost/rollback", ADMIN_TOKEN, "10.2.2.2")).status).toBe(404);
    expect((await req(rig, "DELETE", "/admin/adapters/sst2", TOKENS.reader, "10.2.2.2")).status).toBe(403);
    expect((await req(rig, "GET", "/admin/adapters/team-b-spam", TOKENS.teamA, "10.2.2.2")).status).toBe(403);
    for (let i = 0; i < 2; i++) await req(rig, "GET", "/admin/adapters", `wrong-${i}-0123456789abcdef`, "10.6.6.6");
    for (let i = 0; i < 5; i++)
      expect((await req(rig, "PUT", "/admin/adapters/sst2", ADMIN_TOKEN, "10.6.6.6")).status).toBe(429);
    const { entries } = await auditEntries(rig);
    expect(entries.map((e) => [e.actor, e.action, e.task, e.sha256, e.status, e.result, e.code, e.client])).toEqual([
      ["admin", "upload", "sst2", sha(bad), 422, "failed", "header_not_json", "10.2.2.2"],
      ["admin", "rollback", "ghost", null, 404, "failed", "unknown_task", "10.2.2.2"],
      ["reader", "delete_task", "sst2", null, 403, "refused", "insufficient_scope", "10.2.2.2"],
      ["team-a", "details", "team-b-spam", null, 403, "refused", "task_not_allowed", "10.2.2.2"],
      [null, "list", null, null, 401, "refused", "invalid_token", "10.6.6.6"],
      [null, "list", null, null, 401, "refused", "invalid_token", "10.6.6.6"],
      [null, "upload", "sst2", null, 429, "refused", "too_many_auth_failures", "10.6.6.6"],
    ]);
  });

  it("GET /admin/audit filters by task and since, bounds the page, and limits a scoped token to its glob", async () => {
    const rig = scopedRig();
    for (const task of ["sst2", "team-a-spam", "team-b-spam", "team-a-topic", "sst2"]) {
      expect(
        (await req(rig, "PUT", `/admin/adapters/${task}`, ADMIN_TOKEN, undefined, encodeFakeAdapter({}))).status,
      ).toBe(201);
    }
    const all = (await auditEntries(rig)).entries;
    expect(all.map((e) => e.task)).toEqual(["sst2", "team-a-spam", "team-b-spam", "team-a-topic", "sst2"]);
    expect((await auditEntries(rig, "?task=sst2")).entries.map((e) => e.version)).toEqual([2, 3]);
    const page = await auditEntries(rig, "?limit=2");
    expect(page.entries.map((e) => e.task)).toEqual(["team-a-topic", "sst2"]); // the newest, oldest first
    expect(page.truncated).toBe(true);
    const since = await auditEntries(rig, `?since=${encodeURIComponent(all[3].time)}`);
    expect(since.entries.length).toBeGreaterThanOrEqual(2);
    expect(since.entries.every((e) => Date.parse(e.time) >= Date.parse(all[3].time))).toBe(true);
    const scoped = await req(rig, "GET", "/admin/audit", TOKENS.teamA);
    expect(((await scoped.json()) as { entries: AuditEntry[] }).entries.map((e) => e.task)).toEqual([
      "team-a-spam",
      "team-a-topic",
    ]);
    for (const q of ["?limit=0", "?limit=1001", "?limit=abc", "?since=yesterday", "?task=BAD"]) {
      const res = await rig.app.request(`/admin/audit${q}`, { headers: auth() });
      expect(res.status, q).toBe(400);
    }
    expect((await req(rig, "GET", "/admin/audit", TOKENS.traffic)).status).toBe(403); // needs read
  });

  it("concurrent admin actions each get exactly one entry", async () => {
    const rig = scopedRig();
    const n = 60;
    const statuses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 3 === 0
          ? req(rig, "GET", "/admin/adapters", `wrong-${i}-0123456789abcdef`, `10.9.0.${i}`).then((r) => r.status)
          : req(
              rig,
              "PUT",
              "/admin/adapters/sst2",
              ADMIN_TOKEN,
              undefined,
              encodeFakeAdapter({ labels: [`a${i}`, "b"] }),
            ).then((r) => r.status),
      ),
    );
    expect(statuses.filter((s) => s === 201)).toHaveLength(40);
    const { entries } = await auditEntries(rig, "?limit=1000");
    expect(entries).toHaveLength(n);
    expect(
      entries
        .filter((e) => e.action === "upload")
        .map((e) => e.version)
        .sort((a, b) => a! - b!),
    ).toEqual(Array.from({ length: 40 }, (_, i) => i + 2));
    expect(new Set(entries.map((e) => e.request_id)).size).toBe(n);
  });

  it("a failed audit write leaves the action's answer alone, and is logged and counted", async () => {
    const failingFs: AuditFs = {
      mkdir: async () => undefined,
      open: async () => {
        throw Object.assign(new Error("read-only file system"), { code: "EROFS" });
      },
    };
    const config = defaultConfig({ adminToken: ADMIN_TOKEN, auditLog: "/nonexistent/audit.jsonl" });
    const security = {
      ...adminSecurityFromConfig(config),
      audit: new AuditLog("/nonexistent/audit.jsonl", { fs: failingFs }),
    };
    const base = makeRig({}, {});
    const metrics = createMetrics({ collectDefaults: false });
    const app = createApp({
      service: base.service,
      metrics,
      config,
      logger: createLogger({ level: "silent" }),
      adminSecurity: security,
    });
    const rig = { ...base, app, metrics };
    const res = await req(rig, "PUT", "/admin/adapters/sst2", ADMIN_TOKEN, undefined, encodeFakeAdapter({}));
    expect(res.status).toBe(201);
    expect((await req(rig, "GET", "/admin/adapters", "wrong-0123456789abcdef")).status).toBe(401);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_audit_write_failures_total")).toBe(2);
    expect(sampleValue(samples, "skt_audit_entries_total")).toBe(0);
    expect((await rig.service.adapterDetails("sst2")).current).toBe(2);
  });
});
