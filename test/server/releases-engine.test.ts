/**
 * The evaluation gate and inactive uploads end to end on the real engine (USE-lite, real adapter
 * store): adapters forced to one label by their head bias, an evaluation set of the first 40 SST-2
 * dev rows, and expected accuracies counted here from those rows (read by the test's own reader).
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdapterStore } from "../../src/adapters/store.js";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { defaultConfig } from "../../src/config.js";
import { Engine } from "../../src/engine/engine.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { withContractCheck } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { readSst2 } from "../../scripts/lib/sst2.js";
import { ADMIN_TOKEN, auth, errorOf, postJson } from "./setup.js";

const ROWS = readSst2("dev").slice(0, 40);
const TSV = `sentence\tlabel\n${ROWS.map((r) => `${r.sentence}\t${r.label}`).join("\n")}\n`;
const share = (label: number) => ROWS.filter((r) => r.label === label).length / ROWS.length;

let assets: BackboneAssets;
let engine: Engine;
let tmp: string;
let app: ReturnType<typeof createApp>;

const ALWAYS_NEGATIVE = { task: "sst2", seed: 1, headBias: [50, -50] };
const ALWAYS_POSITIVE = { task: "sst2", seed: 2, headBias: [-50, 50] };

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  tmp = await mkdtemp(path.join(os.tmpdir(), "skt-releases-"));
  const adaptersDir = path.join(tmp, "adapters");
  engine = await Engine.create(
    testEngineOptions(adaptersDir, { store: new AdapterStore(adaptersDir, { maxVersionsPerTask: 3 }) }),
  );
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const config = defaultConfig({ adminToken: ADMIN_TOKEN, adaptersDir, auditLog: path.join(tmp, "audit.jsonl") });
  app = withContractCheck(
    createApp({
      service: engine,
      metrics: createMetrics({ collectDefaults: false }),
      config,
      logger: createLogger({ level: "error", destination: sink }),
    }),
  );
}, 120_000);

afterAll(async () => {
  await engine?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function put(query: string, bytes: Uint8Array) {
  return app.request(`/admin/adapters/sst2${query}`, {
    method: "PUT",
    headers: { ...auth(), "Content-Type": "application/octet-stream" },
    body: bytes as BodyInit,
  });
}

async function finalReport(version: number) {
  for (let i = 0; i < 600; i++) {
    const res = await app.request(`/admin/adapters/sst2/versions/${version}/report`, { headers: auth() });
    expect(res.status).toBe(200);
    const r = (await res.json()) as {
      status: string;
      activated: boolean;
      candidate: { score: number };
      baseline: { version: number; score: number } | null;
      progress: { done: number; total: number };
    };
    if (r.status !== "pending" && r.status !== "running") return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error("the gate did not finish");
}

async function servedVersion(): Promise<number> {
  const res = await postJson({ app } as never, "/classify?task=sst2", { text: "a fine film" });
  expect(res.status).toBe(200);
  return ((await res.json()) as { adapter_version: number }).adapter_version;
}

describe("safe releases on the real engine", () => {
  it("gates versions by accuracy on SST-2 rows, keeps inactive uploads, never prunes them", async () => {
    // The first 40 dev rows are not balanced, so one constant classifier is strictly better.
    expect(share(0)).not.toBe(share(1));
    const [better, worse] =
      share(0) > share(1) ? [ALWAYS_NEGATIVE, ALWAYS_POSITIVE] : [ALWAYS_POSITIVE, ALWAYS_NEGATIVE];
    const accuracy = (spec: typeof better) => (spec === ALWAYS_NEGATIVE ? share(0) : share(1));

    expect((await put("", servableAdapterBytes(assets, worse))).status).toBe(201);
    const set = await app.request("/admin/adapters/sst2/eval-set", {
      method: "PUT",
      headers: { ...auth(), "Content-Type": "text/tab-separated-values" },
      body: TSV,
    });
    expect(set.status).toBe(200);
    expect(await set.json()).toMatchObject({ rows: 40, label_mapping: "position", labels: ["negative", "positive"] });

    // v2 (better) passes against v1 and is served.
    expect((await put("?gate=true", servableAdapterBytes(assets, better))).status).toBe(202);
    const r2 = await finalReport(2);
    expect(r2).toMatchObject({ status: "passed", activated: true, progress: { done: 40, total: 40 } });
    expect(r2.candidate.score).toBeCloseTo(accuracy(better), 12);
    expect(r2.baseline).toMatchObject({ version: 1 });
    expect(r2.baseline!.score).toBeCloseTo(accuracy(worse), 12);
    expect(await servedVersion()).toBe(2);

    // v3 (worse) fails and stays inactive; v2 is still served.
    expect((await put("?gate=true", servableAdapterBytes(assets, { ...worse, seed: 3 }))).status).toBe(202);
    const r3 = await finalReport(3);
    expect(r3).toMatchObject({ status: "failed", activated: false });
    expect(r3.candidate.score).toBeCloseTo(accuracy(worse), 12);
    expect(await servedVersion()).toBe(2);

    // Two more inactive uploads: with a limit of 3 versions, the staged v3, v4, v5 and the current v2
    // all stay (only v1 is pruned), and a fourth staged version is refused.
    for (const seed of [4, 5]) {
      const res = await put("?activate=false", servableAdapterBytes(assets, { ...better, seed }));
      expect(res.status).toBe(201);
      expect(await res.json()).toMatchObject({ active: false, current: 2 });
    }
    const files = (await readdir(path.join(tmp, "adapters", "sst2"))).filter((f) => f.endsWith(".safetensors"));
    expect(files.sort()).toEqual([
      "v000002.safetensors",
      "v000003.safetensors",
      "v000004.safetensors",
      "v000005.safetensors",
    ]);
    const full = await put("?activate=false", servableAdapterBytes(assets, { ...better, seed: 6 }));
    expect(full.status).toBe(409);
    expect((await errorOf(full)).code).toBe("too_many_staged_versions");

    const details = (await (await app.request("/admin/adapters/sst2", { headers: auth() })).json()) as {
      current: number;
      versions: { version: number; state: string; staged: boolean; gate: { status: string } | null }[];
    };
    expect(details.versions.map((v) => [v.version, v.state, v.staged, v.gate?.status ?? null])).toEqual([
      [2, "current", false, "passed"],
      [3, "inactive", true, "failed"],
      [4, "inactive", true, null],
      [5, "inactive", true, null],
    ]);
  }, 300_000);

  it("an inactive upload goes through the same validation: a file for another task is refused, nothing stored", async () => {
    const before = await readdir(path.join(tmp, "adapters", "sst2"));
    const res = await put("?activate=false", servableAdapterBytes(assets, { task: "other", seed: 7 }));
    expect(res.status).toBe(422);
    expect((await errorOf(res)).code).toBe("task_mismatch");
    expect(await readdir(path.join(tmp, "adapters", "sst2"))).toEqual(before);
  });

  it("activate with expectCurrent (the gate's guard) refuses when the current version moved, and unstages on success", async () => {
    await expect(engine.activate("sst2", 4, { expectCurrent: 1 })).rejects.toMatchObject({ code: "current_changed" });
    expect((await engine.adapterDetails("sst2")).current).toBe(2);
    expect((await engine.activate("sst2", 4, { expectCurrent: 2 })).version).toBe(4);
    const d = await engine.adapterDetails("sst2");
    expect(d.current).toBe(4);
    expect(d.versions.map((v) => [v.version, v.staged])).toEqual([
      [2, false],
      [3, true],
      [4, false],
      [5, true],
    ]);
    expect(await servedVersion()).toBe(4);
  });
});
