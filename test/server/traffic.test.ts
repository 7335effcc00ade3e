/**
 * Canary and shadow traffic (`/admin/adapters/{task}/traffic`) through the HTTP API on the real
 * engine: the split's proportion, the shadow's rows scored in the same batch and never returned,
 * its agreement against single-version calls, splits changing and versions leaving while requests
 * flow, validation, scopes, the audit entry, the per-version metrics and persistence.
 */
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { parseBatchLog } from "../../src/engine/batch-log.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { defaultConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { TRAFFIC_FILE } from "../../src/adapters/store.js";
import type { TrafficState as TrafficJson } from "../../src/client/client.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { withContractCheck } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { ADMIN_TOKEN, auth, errorOf, parseMetrics, sampleValue, type Sample } from "./setup.js";

const TOKENS = {
  reader: "reader-token-0123456789abcdef",
  writer: "writer-token-0123456789abcdef",
  traffic: "traffic-token-0123456789abcdef",
};
const sha = (s: string) => createHash("sha256").update(s).digest("hex");

interface Rig {
  engine: Engine;
  app: ReturnType<typeof createApp>;
  metrics: SktMetrics;
  dir: string;
  batchLog: string;
}

/** The documented answer of GET/PUT …/traffic (the client's type for it). */
type StateJson = TrafficJson;

interface ClassifyJson {
  adapter_version: number;
  predictions: { label: string; score: number }[];
}

let assets: BackboneAssets;
const dirs: string[] = [];
const rigs: Rig[] = [];

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
});
afterAll(async () => {
  for (const r of rigs) await r.engine.close().catch(() => undefined);
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function startRig(dir?: string, overrides: Partial<EngineOptions> = {}): Promise<Rig> {
  const adaptersDir = dir ?? (await tempDir("skt-traffic-"));
  const batchLog = path.join(await tempDir("skt-traffic-log-"), "batches.jsonl");
  const metrics = createMetrics({ collectDefaults: false });
  const engine = await Engine.create(testEngineOptions(adaptersDir, { metrics, batchLog, ...overrides }));
  const tokensDir = await tempDir("skt-traffic-tokens-");
  const tokensFile = path.join(tokensDir, "tokens.json");
  await writeFile(
    tokensFile,
    JSON.stringify([
      { name: "reader", sha256: sha(TOKENS.reader), scopes: ["read"] },
      { name: "writer", sha256: sha(TOKENS.writer), scopes: ["read", "write"] },
      { name: "ops", sha256: sha(TOKENS.traffic), scopes: ["read", "traffic"], tasks: "canary-*" },
    ]),
  );
  const config = defaultConfig({
    adminToken: ADMIN_TOKEN,
    adminTokensFile: tokensFile,
    auditLog: path.join(tokensDir, "audit.jsonl"),
  });
  const logger = createLogger({ level: "silent" });
  const app = withContractCheck(createApp({ service: engine, metrics, config, logger }));
  const rig = { engine, app, metrics, dir: adaptersDir, batchLog };
  rigs.push(rig);
  return rig;
}

function request(rig: Rig, method: string, url: string, body?: unknown, token = ADMIN_TOKEN) {
  const headers: Record<string, string> = { ...auth(token) };
  let payload: BodyInit | undefined;
  if (body instanceof Uint8Array) {
    headers["Content-Type"] = "application/octet-stream";
    payload = body as unknown as BodyInit;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  return rig.app.request(url, { method, headers, body: payload });
}

/** Uploads versions 1..seeds.length of `task` (seed i is version i+1) and activates version 1. */
async function addTask(rig: Rig, task: string, seeds: number[]): Promise<void> {
  for (const seed of seeds) {
    const res = await request(
      rig,
      "PUT",
      `/admin/adapters/${task}`,
      servableAdapterBytes(assets, { task, seed, scale: 0.3 }),
    );
    expect(res.status).toBe(201);
  }
  if (seeds.length > 1)
    expect((await request(rig, "POST", `/admin/adapters/${task}/activate`, { version: 1 })).status).toBe(200);
}

async function setTraffic(rig: Rig, task: string, body: unknown, token?: string): Promise<StateJson> {
  const res = await request(rig, "PUT", `/admin/adapters/${task}/traffic`, body, token);
  expect(res.status, JSON.stringify(await res.clone().json())).toBe(200);
  return (await res.json()) as StateJson;
}

async function traffic(rig: Rig, task: string): Promise<StateJson> {
  const res = await request(rig, "GET", `/admin/adapters/${task}/traffic`);
  expect(res.status).toBe(200);
  return (await res.json()) as StateJson;
}

async function classify(rig: Rig, task: string, texts: string[]): Promise<Response> {
  return rig.app.request(`/classify?task=${task}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ texts }),
  });
}

async function classifyOk(rig: Rig, task: string, texts: string[]): Promise<ClassifyJson> {
  const res = await classify(rig, task, texts);
  expect(res.status).toBe(200);
  return (await res.json()) as ClassifyJson;
}

async function scrape(rig: Rig): Promise<Sample[]> {
  return parseMetrics(await rig.metrics.registry.metrics());
}

/** Waits (by polling, no time limit asserted) until `done` holds; the shadow settles after the answer. */
async function until<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 3000; i++) {
    const v = await read();
    if (done(v)) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  return read();
}

const TEXTS = Array.from(
  { length: 40 },
  (_, i) =>
    `review number ${i}: ${["a dull and tedious film", "a warm, funny and clever story", "the plot went nowhere at all", "great acting, weak script", "i would watch it again"][i % 5]} ${"really ".repeat(i % 4)}`,
);

/**
 * Starts `count` clients that each send one-text requests to `task` until the returned stop() is
 * awaited. Each waits for the event loop's next turn before every request: an in-process answer that
 * needs no worker run and no I/O (a 404 once the task is deleted) settles in microtasks alone, and a
 * loop of those never lets timers or I/O run. The DELETE awaiting its file writes then never ends, no
 * test timeout can fire, and memory grows (~5 MB/s of RSS measured) until the fork dies: the "exited
 * unexpectedly" after a long stall that once made these suites opt-in.
 */
function startClients(
  rig: Rig,
  task: string,
  count: number,
  onResponse: (res: Response) => Promise<void>,
): () => Promise<void> {
  let stopped = false;
  const loops = Array.from({ length: count }, async () => {
    for (let i = 0; !stopped; i++) {
      await nextTurn();
      await onResponse(await classify(rig, task, [TEXTS[i % TEXTS.length]]));
    }
  });
  return async () => {
    stopped = true;
    await Promise.all(loops);
  };
}

describe("traffic splits on the real engine", () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig();
    await addTask(rig, "canary-a", [11, 12, 13]);
  }, 120_000);

  it("refuses bad splits with clear codes and changes nothing", async () => {
    const cases: [unknown, number, string][] = [
      [{ canary: { version: 2, percent: 150 } }, 422, "invalid_percent"],
      [{ canary: { version: 2, percent: -1 } }, 422, "invalid_percent"],
      [{ canary: { version: 1, percent: 10 } }, 409, "version_is_current"],
      [{ shadow: { version: 1 } }, 409, "version_is_current"],
      [{ canary: { version: 9, percent: 10 } }, 404, "version_not_found"],
      [{ canary: { version: 2, percent: 10 }, shadow: { version: 2 } }, 422, "canary_is_shadow"],
      [{ canary: { version: 2 } }, 400, "invalid_request"],
      [{ canary: { version: 0, percent: 5 } }, 400, "invalid_request"],
      [{ mirror: { version: 2 } }, 400, "invalid_request"],
    ];
    for (const [body, status, code] of cases) {
      const res = await request(rig, "PUT", "/admin/adapters/canary-a/traffic", body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect((await errorOf(res)).code).toBe(code);
    }
    const unknown = await request(rig, "PUT", "/admin/adapters/canary-none/traffic", { shadow: { version: 1 } });
    expect(unknown.status).toBe(404);
    expect((await errorOf(unknown)).code).toBe("unknown_task");
    expect((await request(rig, "GET", "/admin/adapters/canary-none/traffic")).status).toBe(404);
    const state = await traffic(rig, "canary-a");
    expect(state).toMatchObject({ current: 1, canary: null, shadow: null, since: null, versions: [] });
    expect(await readFile(path.join(rig.dir, TRAFFIC_FILE), "utf8").catch(() => "none")).toBe("none");
  });

  it("sends about P % of the rows to the canary and says which version answered", async () => {
    await setTraffic(rig, "canary-a", { canary: { version: 2, percent: 30 } });
    const answered: number[] = [];
    // The split is deterministic by rows (adapters/traffic.ts), so 80 rows show the share well inside the bounds.
    for (let round = 0; round < 4; round++) {
      // 20 concurrent one-text requests a round: 80 rows in all.
      const bodies = await Promise.all(TEXTS.slice(0, 20).map((t) => classifyOk(rig, "canary-a", [t])));
      answered.push(...bodies.map((b) => b.adapter_version));
    }
    expect(new Set(answered)).toEqual(new Set([1, 2]));
    const share = answered.filter((v) => v === 2).length / answered.length;
    expect(share).toBeGreaterThan(0.2);
    expect(share).toBeLessThan(0.4);
    const state = await traffic(rig, "canary-a");
    expect(state.canary).toEqual({ version: 2, percent: 30 });
    expect(state.versions).toEqual([
      {
        version: 1,
        role: "current",
        requests: answered.filter((v) => v === 1).length,
        rows: answered.filter((v) => v === 1).length,
      },
      {
        version: 2,
        role: "canary",
        requests: answered.filter((v) => v === 2).length,
        rows: answered.filter((v) => v === 2).length,
      },
    ]);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_traffic_requests_total", { task: "canary-a", version: "2", role: "canary" })).toBe(
      answered.filter((v) => v === 2).length,
    );
    expect(
      sampleValue(samples, "skt_traffic_duration_seconds_count", { task: "canary-a", version: "1", role: "current" }),
    ).toBe(answered.filter((v) => v === 1).length);
    const labelled = samples.filter((s) => s.name === "skt_traffic_labels_total" && s.labels.version === "2");
    expect(labelled.reduce((a, s) => a + s.value, 0)).toBe(answered.filter((v) => v === 2).length);

    // Multi-text requests: one version answers all rows of a request; the row share still holds.
    await setTraffic(rig, "canary-a", { canary: { version: 3, percent: 50 } });
    let canaryRows = 0;
    let rows = 0;
    for (let i = 0; i < 16; i++) {
      const n = 1 + (i % 4);
      const body = await classifyOk(rig, "canary-a", TEXTS.slice(i, i + n));
      expect([1, 3]).toContain(body.adapter_version);
      rows += n;
      if (body.adapter_version === 3) canaryRows += n;
    }
    expect(canaryRows / rows).toBeGreaterThan(0.35);
    expect(canaryRows / rows).toBeLessThan(0.65);
    // The series of version 2, which left the split, are gone.
    const after = await scrape(rig);
    expect(
      after.some((s) => s.name.startsWith("skt_traffic_") && s.labels.task === "canary-a" && s.labels.version === "2"),
    ).toBe(false);

    for (const [percent, expected] of [
      [0, 1],
      [100, 2],
    ] as const) {
      await setTraffic(rig, "canary-a", { canary: { version: 2, percent } });
      const versions = await Promise.all(
        TEXTS.slice(0, 10).map(async (t) => (await classifyOk(rig, "canary-a", [t])).adapter_version),
      );
      expect(versions).toEqual(Array(10).fill(expected));
    }
    await setTraffic(rig, "canary-a", {});
    expect((await traffic(rig, "canary-a")).canary).toBeNull();
  });

  it("scores every row with the shadow in the same batch, returns only the current's, and measures agreement", async () => {
    await setTraffic(rig, "canary-a", {});
    await writeFile(rig.batchLog, "");
    // Reference: each version alone, no split.
    const alone1 = await classifyOk(rig, "canary-a", TEXTS);
    expect((await request(rig, "POST", "/admin/adapters/canary-a/activate", { version: 3 })).status).toBe(200);
    const alone3 = await classifyOk(rig, "canary-a", TEXTS);
    expect((await request(rig, "POST", "/admin/adapters/canary-a/activate", { version: 1 })).status).toBe(200);
    const expectedAgreed = alone1.predictions.filter((p, i) => p.label === alone3.predictions[i].label).length;
    expect(expectedAgreed).toBeGreaterThan(0);
    expect(expectedAgreed).toBeLessThan(TEXTS.length); // the two versions really differ

    // The batch log is appended in the background, in order: once both reference runs' rows are in it,
    // every earlier batch is too, and what follows the offset is this test's shadowed request (and
    // the shadow's probe pass).
    const rowsOf = (logged: ReturnType<typeof parseBatchLog>, version: number) =>
      logged.flatMap((b) => b.rows.filter((r) => r.task === "canary-a" && r.version === version)).length;
    await until(
      async () => parseBatchLog(await readFile(rig.batchLog, "utf8")),
      (logged) => rowsOf(logged, 1) >= TEXTS.length && rowsOf(logged, 3) >= TEXTS.length,
    );
    await setTraffic(rig, "canary-a", { shadow: { version: 3 } });
    const offset = (await readFile(rig.batchLog)).byteLength;
    const withShadow = await classifyOk(rig, "canary-a", TEXTS);
    expect(withShadow.adapter_version).toBe(1);
    expect(withShadow.predictions.map((p) => p.label)).toEqual(alone1.predictions.map((p) => p.label));
    withShadow.predictions.forEach((p, i) => expect(p.score).toBeCloseTo(alone1.predictions[i].score, 5));

    const state = await until(
      () => traffic(rig, "canary-a"),
      (s) => (s.shadow_counts?.compared ?? 0) >= TEXTS.length,
    );
    expect(state.shadow_counts).toEqual({
      version: 3,
      compared: TEXTS.length,
      agreed: expectedAgreed,
      agreement: expectedAgreed / TEXTS.length,
      skipped: 0,
    });
    expect(state.versions).toEqual([{ version: 1, role: "current", requests: 1, rows: TEXTS.length }]);
    const samples = await scrape(rig);
    const series = { task: "canary-a", version: "3" };
    expect(sampleValue(samples, "skt_traffic_shadow_compared_total", series)).toBe(TEXTS.length);
    expect(sampleValue(samples, "skt_traffic_shadow_agreed_total", series)).toBe(expectedAgreed);
    expect(sampleValue(samples, "skt_traffic_shadow_agreement_ratio", series)).toBeCloseTo(
      expectedAgreed / TEXTS.length,
      9,
    );
    expect(sampleValue(samples, "skt_traffic_rows_total", { ...series, role: "shadow" })).toBe(TEXTS.length);

    // Every shadow row ran in a batch together with the current version's rows: count the shadow's
    // rows in batches that also hold v1 rows (a shadow pushed separately would run in batches of its own).
    const shadowedWithCurrent = (logged: ReturnType<typeof parseBatchLog>) =>
      logged
        .filter((b) => b.rows.some((r) => r.task === "canary-a" && r.version === 1))
        .flatMap((b) => b.rows.filter((r) => r.task === "canary-a" && r.version === 3)).length;
    const batches = await until(
      async () => parseBatchLog((await readFile(rig.batchLog)).subarray(offset).toString("utf8")),
      (logged) => shadowedWithCurrent(logged) >= TEXTS.length,
    );
    expect(shadowedWithCurrent(batches)).toBe(TEXTS.length);
    await setTraffic(rig, "canary-a", {});
  });

  it("keeps every request answered while the split changes under load", async () => {
    await setTraffic(rig, "canary-a", { canary: { version: 2, percent: 50 } });
    const seen: number[] = [];
    const failures: number[] = [];
    const stopClients = startClients(rig, "canary-a", 6, async (res) => {
      if (res.status !== 200) failures.push(res.status);
      else seen.push(((await res.json()) as ClassifyJson).adapter_version);
    });
    try {
      const splits = [
        { canary: { version: 3, percent: 50 }, shadow: { version: 2 } },
        { canary: { version: 2, percent: 80 } },
        {},
        { shadow: { version: 3 } },
        { canary: { version: 3, percent: 20 }, shadow: { version: 2 } },
      ];
      for (let round = 0; round < 3; round++)
        for (const split of splits) {
          const before = seen.length + failures.length;
          await setTraffic(rig, "canary-a", split);
          await until(
            async () => seen.length + failures.length,
            (n) => n >= before + 3,
          ); // some traffic between changes
        }
    } finally {
      await stopClients();
    }
    expect(failures).toEqual([]);
    expect(seen.length).toBeGreaterThan(15);
    expect(new Set(seen.filter((v) => ![1, 2, 3].includes(v)))).toEqual(new Set());
    await setTraffic(rig, "canary-a", {});
  }, 180_000);
});

describe("a canary that leaves while traffic flows", () => {
  it("is removed from the split when it becomes current, is deleted, or its task goes, and no request fails", async () => {
    const rig = await startRig();
    await addTask(rig, "canary-b", [21, 22, 23]);
    await setTraffic(rig, "canary-b", { canary: { version: 2, percent: 50 }, shadow: { version: 3 } });
    const bad: string[] = [];
    const seen: number[] = [];
    let unknownTask = 0;
    const stopClients = startClients(rig, "canary-b", 6, async (res) => {
      if (res.status === 200) seen.push(((await res.json()) as ClassifyJson).adapter_version);
      else if (res.status === 404 && (await errorOf(res)).code === "unknown_task") unknownTask++;
      else bad.push(`${res.status} ${await res.text()}`);
    });
    try {
      await until(
        async () => seen.length,
        (n) => n >= 10,
      );

      // Rolling back to the canary: it becomes current and leaves the split, the shadow stays.
      expect((await request(rig, "POST", "/admin/adapters/canary-b/rollback", { version: 2 })).status).toBe(200);
      let state = await traffic(rig, "canary-b");
      expect(state).toMatchObject({ current: 2, canary: null, shadow: { version: 3 } });
      const saved = JSON.parse(await readFile(path.join(rig.dir, TRAFFIC_FILE), "utf8")) as {
        splits: Record<string, unknown>;
      };
      expect(saved.splits["canary-b"]).toEqual({ shadow: { version: 3 } });
      const mark = seen.length;
      await until(
        async () => seen.length,
        (n) => n >= mark + 10,
      );
      // Responses that started after the rollback are all from v2 (a few in flight at the switch may be v1).
      expect(seen.slice(mark + 6).every((v) => v === 2)).toBe(true);

      // A deleted version leaves the split in the same step.
      await setTraffic(rig, "canary-b", { canary: { version: 1, percent: 50 }, shadow: { version: 3 } });
      await rig.engine.registry.deleteVersion("canary-b", 1);
      state = await traffic(rig, "canary-b");
      expect(state).toMatchObject({ current: 2, canary: null, shadow: { version: 3 } });
      const mark2 = seen.length;
      await until(
        async () => seen.length,
        (n) => n >= mark2 + 10,
      );
      expect(seen.slice(mark2 + 6).every((v) => v === 2)).toBe(true);

      // The task goes: its split and its series go with it; requests then meet 404 unknown_task.
      expect(unknownTask).toBe(0);
      expect((await request(rig, "DELETE", "/admin/adapters/canary-b")).status).toBe(204);
      await until(
        async () => unknownTask,
        (n) => n >= 6,
      );
    } finally {
      await stopClients();
    }
    expect(unknownTask).toBeGreaterThanOrEqual(6);
    expect(bad).toEqual([]);
    const samples = await scrape(rig);
    expect(samples.some((s) => s.name.startsWith("skt_traffic_") && s.labels.task === "canary-b")).toBe(false);
    const savedAfter = JSON.parse(await readFile(path.join(rig.dir, TRAFFIC_FILE), "utf8")) as {
      splits: Record<string, unknown>;
    };
    expect(savedAfter.splits).toEqual({});
    // A new task of that name starts without a split.
    await addTask(rig, "canary-b", [24, 25]);
    expect((await traffic(rig, "canary-b")).canary).toBeNull();
  }, 180_000);

  it("spares routed versions when old versions are pruned, and drops the old current's series", async () => {
    const { AdapterStore } = await import("../../src/adapters/store.js");
    const dir = await tempDir("skt-traffic-prune-");
    const rig = await startRig(dir, { store: new AdapterStore(dir, { maxVersionsPerTask: 2 }) });
    await addTask(rig, "canary-c", [31, 32]);
    await setTraffic(rig, "canary-c", { canary: { version: 2, percent: 50 } });
    const answered = await Promise.all(
      TEXTS.slice(0, 4).map(async (t) => (await classifyOk(rig, "canary-c", [t])).adapter_version),
    );
    expect(answered.sort()).toEqual([1, 1, 2, 2]);
    const versionsWithSeries = async () =>
      new Set(
        (await scrape(rig))
          .filter((x) => x.name === "skt_traffic_requests_total" && x.labels.task === "canary-c")
          .map((x) => x.labels.version),
      );
    expect(await versionsWithSeries()).toEqual(new Set(["1", "2"]));
    for (const seed of [33, 34]) {
      expect(
        (
          await request(
            rig,
            "PUT",
            "/admin/adapters/canary-c",
            servableAdapterBytes(assets, { task: "canary-c", seed }),
          )
        ).status,
      ).toBe(201);
    }
    const details = (await (await request(rig, "GET", "/admin/adapters/canary-c")).json()) as {
      versions: { version: number }[];
    };
    expect(details.versions.map((v) => v.version)).toContain(2);
    expect((await traffic(rig, "canary-c")).canary).toEqual({ version: 2, percent: 50 });
    // v1 is no longer current: its series went when the pointer moved; the canary's stay.
    expect(await versionsWithSeries()).toEqual(new Set(["2"]));
  }, 240_000);
});

describe("a shadow without room in the queue", () => {
  it("is skipped and counted; the request is answered as without a shadow", async () => {
    const rig = await startRig(undefined, { queueSize: TEXTS.length });
    await addTask(rig, "canary-e", [51, 52]);
    const alone = await classifyOk(rig, "canary-e", TEXTS);
    await setTraffic(rig, "canary-e", { shadow: { version: 2 } });
    const shadowed = await classifyOk(rig, "canary-e", TEXTS); // 2 × 40 rows do not fit a 40-row queue
    expect(shadowed.adapter_version).toBe(1);
    expect(shadowed.predictions.map((p) => p.label)).toEqual(alone.predictions.map((p) => p.label));
    const state = await until(
      () => traffic(rig, "canary-e"),
      (s) => (s.shadow_counts?.skipped ?? 0) > 0,
    );
    expect(state.shadow_counts).toEqual({ version: 2, compared: 0, agreed: 0, agreement: null, skipped: TEXTS.length });
    // Nothing was dropped: the answer's rows ran, and the shadow's are counted as skipped, not as refused.
    const refused = async () =>
      sampleValue(await scrape(rig), "skt_queue_dropped_total", { reason: "queue_full" }) ?? 0;
    expect(await refused()).toBe(0);
    // One text more than the queue holds: the answer alone does not fit either, and only its rows count.
    const tooMany = await classify(rig, "canary-e", [...TEXTS, "one text more than the queue holds"]);
    expect(tooMany.status).toBe(429);
    expect((await errorOf(tooMany)).code).toBe("queue_full");
    expect(await refused()).toBe(TEXTS.length + 1);
  }, 120_000);
});

describe("scopes, audit and persistence", () => {
  it("needs the traffic scope to set and read to show, audits the change, and restores the split after a restart", async () => {
    const dir = await tempDir("skt-traffic-persist-");
    const rig = await startRig(dir);
    await addTask(rig, "canary-d", [41, 42]);
    await addTask(rig, "other", [43, 44]);
    const body = { canary: { version: 2, percent: 25 } };

    const writer = await request(rig, "PUT", "/admin/adapters/canary-d/traffic", body, TOKENS.writer);
    expect(writer.status).toBe(403);
    expect((await errorOf(writer)).code).toBe("insufficient_scope");
    const reader = await request(rig, "PUT", "/admin/adapters/canary-d/traffic", body, TOKENS.reader);
    expect(reader.status).toBe(403);
    const otherTask = await request(
      rig,
      "PUT",
      "/admin/adapters/other/traffic",
      { canary: { version: 2, percent: 5 } },
      TOKENS.traffic,
    );
    expect(otherTask.status).toBe(403);
    expect((await errorOf(otherTask)).code).toBe("task_not_allowed");
    expect((await traffic(rig, "canary-d")).canary).toBeNull();

    await setTraffic(rig, "canary-d", body, TOKENS.traffic);
    expect((await request(rig, "GET", "/admin/adapters/canary-d/traffic", undefined, TOKENS.reader)).status).toBe(200);
    const audit = (await (await request(rig, "GET", "/admin/audit?task=canary-d")).json()) as {
      entries: { action: string; actor: string | null; version: number | null; result: string; code: string | null }[];
    };
    const traffics = audit.entries.filter((e) => e.action === "set_traffic");
    expect(traffics).toEqual([
      expect.objectContaining({ actor: "writer", result: "refused", code: "insufficient_scope" }),
      expect.objectContaining({ actor: "reader", result: "refused", code: "insufficient_scope" }),
      expect.objectContaining({ actor: "ops", result: "ok", version: 2 }),
    ]);

    // Restart on the same store: the split is back (its counts start again).
    await rig.engine.close();
    const again = await startRig(dir);
    expect(await traffic(again, "canary-d")).toMatchObject({
      current: 1,
      canary: { version: 2, percent: 25 },
      versions: [],
    });
    const versions = await Promise.all(
      TEXTS.slice(0, 8).map(async (t) => (await classifyOk(again, "canary-d", [t])).adapter_version),
    );
    expect(versions.filter((v) => v === 2)).toHaveLength(2);

    // A saved split that no longer applies (edited behind the server's back) is dropped at start-up.
    await again.engine.close();
    await writeFile(
      path.join(dir, TRAFFIC_FILE),
      JSON.stringify({
        splits: { "canary-d": { canary: { version: 7, percent: 5 } }, other: { shadow: { version: 2 } } },
      }),
    );
    const third = await startRig(dir);
    expect((await traffic(third, "canary-d")).canary).toBeNull();
    expect((await traffic(third, "other")).shadow).toEqual({ version: 2 });
  }, 240_000);
});
