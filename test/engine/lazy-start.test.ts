/**
 * Lazy start (issue 21): the engine is ready once the backbone and the task index are loaded;
 * adapters are prepared at first use (once), or by the background warm-up; an adapter found invalid
 * at first use fails that task only. And memory held per version stays within the cache's budget
 * however many versions are uploaded (issue 18, defect 3).
 */
import { spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeAdapter } from "../../src/adapters/format.js";
import { AdapterStore } from "../../src/adapters/store.js";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { defaultConfig } from "../../src/config.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { createLogger } from "../../src/logger.js";
import { createApp } from "../../src/server/app.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapter, servableAdapterBytes } from "../helpers/servable-adapter.js";

let assets: BackboneAssets;
const dirs: string[] = [];
const engines: Engine[] = [];

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
});
afterAll(async () => {
  await Promise.all(engines.map((e) => e.close()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempStore(files: Record<string, Uint8Array>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-lazy-"));
  dirs.push(dir);
  const store = new AdapterStore(dir); // raw bytes, no validation: how a bad file gets onto a disk
  for (const [task, bytes] of Object.entries(files)) await store.write(task, bytes);
  return dir;
}

interface LogLine {
  level: string;
  msg: string;
  fields?: Record<string, unknown>;
}

async function startEngine(
  adaptersDir: string,
  overrides: Partial<EngineOptions> = {},
): Promise<{ engine: Engine; metrics: SktMetrics; logs: LogLine[] }> {
  const metrics = createMetrics({ collectDefaults: false });
  const logs: LogLine[] = [];
  const engine = await Engine.create(
    testEngineOptions(adaptersDir, {
      threads: 1,
      maxWaitMs: 2,
      metrics,
      log: (level, msg, fields) => void logs.push({ level, msg, fields }),
      ...overrides,
    }),
  );
  engines.push(engine);
  return { engine, metrics, logs };
}

async function value(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

const loads = async (m: SktMetrics) =>
  (await m.adapterLoadDuration.get()).values.find((v) => v.metricName === "skt_adapter_load_duration_seconds_count")
    ?.value ?? 0;
const good = (task: string, seed = 1) => servableAdapterBytes(assets, { task, seed });

describe("lazy start", () => {
  it("is ready without reading or preparing any adapter, and prepares each at first use exactly once", async () => {
    const dir = await tempStore({ alpha: good("alpha"), beta: good("beta", 2), gamma: good("gamma", 3) });
    const { engine, metrics } = await startEngine(dir);
    expect(engine.isReady()).toBe(true);
    expect(engine.registry.taskCount).toBe(3);
    expect(await value(metrics.adaptersLoaded)).toBe(0);
    expect(await value(metrics.semanticPasses)).toBe(0);
    expect(await loads(metrics)).toBe(0);

    const page = await engine.listTasks({ limit: 10 });
    expect(page).toMatchObject({ total: 3, last: null });
    expect(page.tasks.map((t) => [t.task, t.version, t.labels])).toEqual([
      ["alpha", 1, ["negative", "positive"]],
      ["beta", 1, ["negative", "positive"]],
      ["gamma", 1, ["negative", "positive"]],
    ]);
    expect(await loads(metrics)).toBe(0); // listing reads no adapter either

    const results = await Promise.all(
      Array.from({ length: 8 }, () => engine.classify({ task: "beta", texts: ["a fine film"] })),
    );
    for (const r of results) expect(r.predictions[0].score).toBeCloseTo(results[0].predictions[0].score!, 5);
    expect(await loads(metrics)).toBe(1);
    expect(await value(metrics.adaptersLoaded)).toBe(1);
    expect(await value(metrics.semanticPasses)).toBe(1);
  });

  it("an adapter invalid at first use answers 409 adapter_invalid for that task only, logged and counted once", async () => {
    const wrongBackbone = servableAdapter(assets, { task: "foreign" });
    wrongBackbone.metadata = { ...wrongBackbone.metadata, backboneFingerprint: "f".repeat(64) };
    const dir = await tempStore({
      fine: good("fine"),
      foreign: encodeAdapter(wrongBackbone, assets.dims),
      broken: new TextEncoder().encode("not an adapter at all"),
    });
    const { engine, metrics, logs } = await startEngine(dir);
    expect(engine.isReady()).toBe(true);

    for (let i = 0; i < 3; i++) {
      await expect(engine.classify({ task: "foreign", texts: ["x"] })).rejects.toMatchObject({
        kind: "conflict",
        code: "adapter_invalid",
        details: { task: "foreign", version: 1, reason: "fingerprint_mismatch" },
      });
    }
    await expect(engine.classify({ task: "broken", texts: ["x"] })).rejects.toMatchObject({
      kind: "conflict",
      code: "adapter_invalid",
      details: { task: "broken", version: 1 },
    });
    expect((await engine.classify({ task: "fine", texts: ["x"] })).adapterVersion).toBe(1);

    expect(await value(metrics.adaptersInvalid, { code: "fingerprint_mismatch" })).toBe(1);
    expect(await value(metrics.adaptersInvalid)).toBe(2);
    const errors = logs.filter((l) => l.level === "error" && l.msg === "adapter cannot be served");
    expect(errors.map((l) => [l.fields?.task, l.fields?.code])).toEqual([
      ["foreign", "fingerprint_mismatch"],
      ["broken", expect.any(String)],
    ]);

    // Listed while its metadata reads (the file cannot tell it is for another backbone until it is
    // decoded); a file with no readable metadata is left out of the page but still counted.
    const page = await engine.listTasks({ limit: 10 });
    expect(page.tasks.map((t) => t.task)).toEqual(["fine", "foreign"]);
    expect(page.total).toBe(3);

    // An admin fixes it: the new version serves at once.
    await engine.upload("foreign", good("foreign", 7));
    expect((await engine.classify({ task: "foreign", texts: ["x"] })).adapterVersion).toBe(2);
  });

  it("over HTTP: 409 adapter_invalid with the JSON error body, documented in /openapi.json", async () => {
    const dir = await tempStore({ fine: good("fine"), broken: new TextEncoder().encode("not an adapter at all") });
    const { engine, metrics } = await startEngine(dir);
    const app = createApp({
      service: engine,
      metrics,
      config: defaultConfig({ adaptersDir: dir, modelsDir: MODELS_DIR }),
      logger: createLogger({ level: "silent" }),
    });
    const post = (task: string) =>
      app.request(`/classify?task=${task}`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"text":"x"}',
      });
    const bad = await post("broken");
    expect(bad.status).toBe(409);
    const body = (await bad.json()) as { error: { code: string; message: string; details: Record<string, unknown> } };
    expect(body.error).toMatchObject({ code: "adapter_invalid", details: { task: "broken", version: 1 } });
    expect(body.error.message).toMatch(/upload a new version or roll back/);
    expect((await post("fine")).status).toBe(200);
    const doc = (await (await app.request("/openapi.json")).json()) as {
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
    };
    expect(Object.keys(doc.paths["/classify"].post.responses)).toContain("409");
    expect(Object.keys(doc.paths["/tasks"].get.responses)).toContain("400");
  });

  it("lists long fields cut (issue 18, defect 4) and keeps the full values for the admin view", async () => {
    const promptText = "中".repeat(600); // accepted (1,800 UTF-8 bytes, under the 2,048 cap): it tokenizes to a few tokens
    const labels = Array.from({ length: 40 }, (_, i) => `category-number-${i}`);
    const dir = await tempStore({});
    const { engine } = await startEngine(dir);
    await engine.upload("wide", servableAdapterBytes(assets, { task: "wide", promptText, labels }));
    const [listed] = (await engine.listTasks({ limit: 1 })).tasks;
    expect(listed).toMatchObject({ task: "wide", labelCount: 40, truncated: true, promptText: "中".repeat(100) });
    expect(listed.labels).toEqual(labels.slice(0, listed.labels.length));
    expect(listed.labels.length).toBeGreaterThan(0);
    expect(listed.labels.length).toBeLessThan(40);
    expect(JSON.stringify(listed).length).toBeLessThan(1000);
    const details = await engine.adapterDetails("wide");
    expect(details.versions[0].metadata.promptText).toBe(promptText);
    expect(details.versions[0].metadata.labels).toEqual(labels);
    // The same after a restart, from the index file alone.
    await engine.close();
    const again = await startEngine(dir);
    expect((await again.engine.listTasks({ limit: 1 })).tasks[0]).toEqual(listed);
  });

  it("warms the tasks in use at the last clean shutdown in the background", async () => {
    const dir = await tempStore({ a: good("a"), b: good("b", 2), c: good("c", 3) });
    const first = await startEngine(dir);
    await first.engine.classify({ task: "c", texts: ["x"] });
    await first.engine.classify({ task: "a", texts: ["x"] });
    await first.engine.close();

    const cold = await startEngine(dir);
    expect(await value(cold.metrics.adaptersLoaded)).toBe(0); // SKT_WARM_TASKS=0: nothing prepared
    await cold.engine.close(); // its cache was empty: the hint is now empty too

    const again = await startEngine(dir);
    await again.engine.classify({ task: "a", texts: ["x"] });
    await again.engine.classify({ task: "c", texts: ["x"] });
    await again.engine.close();

    const warm = await startEngine(dir, { warmTasks: 1 });
    await expect.poll(async () => value(warm.metrics.adaptersLoaded), { timeout: 60_000 }).toBe(1);
    // The most recently used one ("c") came first; nothing else was read.
    expect(await loads(warm.metrics)).toBe(1);
    const hits = await value(warm.metrics.cacheHits);
    await warm.engine.classify({ task: "c", texts: ["x"] });
    expect(await value(warm.metrics.cacheHits)).toBe(hits + 1);
  });
});

describe("memory with many uploads (issue 18, defect 3)", () => {
  it("heap after GC stays flat over 60 uploads with ~900 KB metadata each and a 1 MiB cache", () => {
    // A child process with --expose-gc: the registry with a stand-in semantic pass (zeros), so only
    // what the registry, cache and store hold is measured.
    const script = `
      const { mkdtempSync, rmSync } = await import("node:fs");
      const os = await import("node:os");
      const path = await import("node:path");
      const src = (p) => ${JSON.stringify(path.resolve("src"))} + "/" + p;
      const { loadBackboneAssets } = await import(src("backbone/backbone.ts"));
      const { AdapterRegistry } = await import(src("adapters/registry.ts"));
      const { AdapterStore } = await import(src("adapters/store.ts"));
      const { syntheticAdapter } = await import(src("adapters/synthetic.ts"));
      const { encodeAdapter } = await import(src("adapters/format.ts"));
      const assets = await loadBackboneAssets(${JSON.stringify(MODELS_DIR)});
      const dir = mkdtempSync(path.join(os.tmpdir(), "skt-mem-"));
      const registry = new AdapterRegistry({
        store: new AdapterStore(dir), dims: assets.dims, fingerprint: assets.fingerprint, tokenizer: assets.tokenizer,
        semanticPass: async (ids) => new Float32Array(ids.length * assets.dims.hiddenDim),
        cacheBytes: 1024 * 1024, maxParameters: 1_000_000, maxUploadBytes: 16 * 1024 * 1024,
      });
      await registry.init();
      const heap = [];
      for (let i = 1; i <= 60; i++) {
        const file = syntheticAdapter(assets, { task: "big", seed: i });
        file.metadata.training = { run: i, log: Array.from({ length: 35000 }, (_, k) => ({ step: k + i, loss: 0.5 })) };
        await registry.installAdapter("big", encodeAdapter(file, assets.dims));
        if (i % 20 === 0) { gc(); gc(); heap.push(process.memoryUsage().heapUsed); }
      }
      rmSync(dir, { recursive: true, force: true });
      console.log(JSON.stringify({ heap }));
    `;
    const out = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      maxBuffer: 1 << 20,
    });
    expect(out.status, out.stderr.slice(-2000)).toBe(0);
    const { heap } = JSON.parse(out.stdout.trim().split("\n").pop()!) as { heap: number[] };
    const mb = heap.map((h) => h / 2 ** 20);
    console.log(`[memory] heap after GC at 20/40/60 uploads: ${mb.map((x) => x.toFixed(1)).join(" / ")} MiB`);
    // Each upload's metadata is ~0.9 MB of JSON (over 1 MB parsed); holding one per upload, as before
    // the fix, grows the heap by ~40 MB or more between 20 and 60 uploads.
    expect(mb[2] - mb[0]).toBeLessThan(16);
  }, 300_000);
});
