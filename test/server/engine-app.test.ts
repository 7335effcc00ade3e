/**
 * The HTTP app on a real engine (USE-lite, synthetic adapters): a multi-task call mixing prompt- and
 * prefix-variant tasks answers what the single-task calls answer, with the rows sharing batches;
 * uploads renamed with `?rename=true` (signed and unsigned, signatures required or not); quality
 * metrics and /stats counted from the responses the test received.
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { Engine } from "../../src/engine/engine.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { withContractCheck } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { encodeAdapter, peekMetadata } from "../../src/adapters/format.js";
import { checkAdapterSignature, signAdapter, TrustedKeys } from "../../src/adapters/signature.js";
import { servableAdapter, servableAdapterBytes, type ServableOptions } from "../helpers/servable-adapter.js";
import { ADMIN_TOKEN, auth, parseMetrics, sampleValue, type Sample } from "./setup.js";

interface PredictionJson {
  label?: string;
  score?: number;
  scores?: Record<string, number>;
  value?: number;
  tokens: number;
  truncated: boolean;
}
interface ResultJson {
  task: string;
  adapter_version: number;
  predictions: PredictionJson[];
}

const TASKS: ServableOptions[] = [
  { task: "prompt-a", variant: "prompt", pooling: true, seed: 11 },
  { task: "prefix-b", variant: "prefix", pooling: true, seed: 12, scale: 0.02, labels: ["x", "y", "z"] },
  {
    task: "prompt-c",
    variant: "prompt",
    pooling: false,
    seed: 13,
    promptText: "is this review happy or sad ?",
    maxLength: 24,
  },
  { task: "prefix-d", variant: "prefix", pooling: false, seed: 14, scale: 0.02, promptText: "sentiment :" },
];

let assets: BackboneAssets;
let engine: Engine;
let metrics: SktMetrics;
let app: ReturnType<typeof createApp>;
let config: ServerConfig;
let dir: string;

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  dir = await mkdtemp(path.join(os.tmpdir(), "skt-engine-app-"));
  metrics = createMetrics({ collectDefaults: false });
  // A wide batching window and no padding limit, so a call's rows (prompt rows are longer by their
  // soft prompt) surely meet in one batch on a loaded machine: what is tested is that they can.
  engine = await Engine.create(testEngineOptions(dir, { metrics, maxWaitMs: 50, maxPaddingRatio: 100 }));
  for (const t of TASKS) await engine.upload(t.task, servableAdapterBytes(assets, t));
  config = defaultConfig({ adminToken: ADMIN_TOKEN, auditLog: path.join(dir, "audit.jsonl"), adaptersDir: dir });
  app = appWith(config);
});

function appWith(cfg: ServerConfig): ReturnType<typeof createApp> {
  return withContractCheck(
    createApp({ service: engine, metrics, config: cfg, logger: createLogger({ level: "silent" }) }),
  );
}
afterAll(async () => {
  await engine?.close();
  await rm(dir, { recursive: true, force: true });
});

async function classify(query: string, body: unknown): Promise<Response> {
  return app.request(`/classify?${query}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function batchCount(): Promise<number> {
  return (await metrics.batchSize.get()).values.find((v) => v.metricName === "skt_batch_size_count")!.value;
}

describe("multi-task /classify on the real engine", () => {
  it("mixing prompt- and prefix-variant tasks gives each task's single-task answer, in order, in shared batches", async () => {
    const texts = [
      "a gripping , funny film",
      "an utterly forgettable , overlong and tedious exercise in style over substance that goes on and on",
      "fine .",
    ];
    const order = ["prefix-d", "prompt-a", "prefix-b", "prompt-c"];
    const singles = new Map<string, ResultJson>();
    for (const task of order) {
      const res = await classify(`task=${task}`, { texts });
      expect(res.status).toBe(200);
      singles.set(task, (await res.json()) as ResultJson);
    }
    const before = await batchCount();
    const res = await classify(order.map((t) => `task=${t}`).join("&"), { texts });
    expect(res.status).toBe(200);
    const { results } = (await res.json()) as { results: ResultJson[] };
    // 12 rows of four tasks, two variants, in fewer passes than tasks: the tasks shared batches.
    expect((await batchCount()) - before).toBeLessThan(order.length);
    expect(results.map((r) => r.task)).toEqual(order);
    for (const r of results) {
      const single = singles.get(r.task)!;
      expect(r.adapter_version).toBe(single.adapter_version);
      r.predictions.forEach((p, i) => {
        const want = single.predictions[i];
        expect(p.label).toBe(want.label);
        expect(p.tokens).toBe(want.tokens);
        expect(p.truncated).toBe(want.truncated);
        // Alone vs. in a mixed batch the backbone runs different shapes (padding, masked prefix
        // slots), so float32 sums may differ in the last bits: the same 1e-5 bound as the engine's
        // mixed-batch test (test/engine/engine.test.ts).
        for (const [label, s] of Object.entries(want.scores!))
          expect(Math.abs(p.scores![label] - s)).toBeLessThanOrEqual(1e-5);
      });
    }
    // prompt-c truncates the long text to its own budget: tokenization stays per task.
    expect(results[3].predictions[1].truncated).toBe(true);
    expect(results[0].predictions[1].truncated).toBe(false);
  });

  it("one unknown task fails the call with 404 and queues no rows", async () => {
    const before = await batchCount();
    const res = await classify("task=prompt-a&task=missing", { text: "fine" });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain('"missing"');
    expect(await batchCount()).toBe(before);
  });
});

interface UploadJson {
  task: string;
  version: number;
  sha256: string;
  renamed_from: string | null;
  signature_dropped: boolean;
}

async function upload(a: ReturnType<typeof createApp>, task: string, bytes: Uint8Array, query = ""): Promise<Response> {
  return a.request(`/admin/adapters/${task}${query}`, {
    method: "PUT",
    headers: { "Content-Type": "application/octet-stream", ...auth() },
    body: Buffer.from(bytes),
  });
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

describe("PUT /admin/adapters/{task}?rename=true", () => {
  const source = () => servableAdapterBytes(assets, TASKS[0]); // metadata names "prompt-a"

  it("without the flag a file for another task stays a 422 task_mismatch that mentions ?rename=true", async () => {
    const res = await upload(app, "prompt-a-canary", source());
    expect(res.status).toBe(422);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    expect(error.code).toBe("task_mismatch");
    expect(error.message).toContain("?rename=true");
    expect(engine.hasTask("prompt-a-canary")).toBe(false);
  });

  it("stores the file under the new name, reports the stored file's sha256, and serves the same answers", async () => {
    const res = await upload(app, "prompt-a-canary", source(), "?rename=true");
    expect(res.status).toBe(201);
    const body = (await res.json()) as UploadJson;
    expect(body).toMatchObject({
      task: "prompt-a-canary",
      version: 1,
      renamed_from: "prompt-a",
      signature_dropped: false,
    });
    const stored = new Uint8Array(await readFile(path.join(dir, "prompt-a-canary", "v000001.safetensors")));
    expect(body.sha256).toBe(sha256(stored));
    expect(body.sha256).not.toBe(sha256(source()));
    expect(peekMetadata(stored).task).toBe("prompt-a-canary");
    // Only the task name changed: the same tensors give the same predictions.
    const texts = ["a gripping , funny film", "dull"];
    const [a, b] = await Promise.all(["prompt-a", "prompt-a-canary"].map((t) => classify(`task=${t}`, { texts })));
    const pa = ((await a.json()) as ResultJson).predictions;
    const pb = ((await b.json()) as ResultJson).predictions;
    expect(pb).toEqual(pa);
  });

  it("a file already naming the task is stored unchanged with the flag (sha256 of the upload itself)", async () => {
    const bytes = servableAdapterBytes(assets, { ...TASKS[1], seed: 99 });
    const res = await upload(app, "prefix-b", bytes, "?rename=true");
    expect(res.status).toBe(201);
    expect((await res.json()) as UploadJson).toMatchObject({
      sha256: sha256(bytes),
      renamed_from: null,
      signature_dropped: false,
    });
  });

  describe("signed files", () => {
    const { privateKey, publicKey } = generateKeyPairSync("ed25519");
    const signed = () => signAdapter(source(), privateKey);

    it("signatures not required: the rename drops the signature and says so", async () => {
      const res = await upload(app, "prompt-a-signed", signed(), "?rename=true");
      expect(res.status).toBe(201);
      expect((await res.json()) as UploadJson).toMatchObject({ renamed_from: "prompt-a", signature_dropped: true });
      const stored = new Uint8Array(await readFile(path.join(dir, "prompt-a-signed", "v000001.safetensors")));
      expect(checkAdapterSignature(stored, TrustedKeys.of([publicKey]))).toEqual({ state: "unsigned" });
    });

    it("SKT_REQUIRE_SIGNATURE=true: a rename is refused with 422 rename_breaks_signature and nothing is stored", async () => {
      const pem = path.join(dir, "trusted.pem");
      await writeFile(pem, publicKey.export({ type: "spki", format: "pem" }));
      const strict = appWith({ ...config, trustedKeys: pem, requireSignature: true });
      const res = await upload(strict, "prompt-a-strict", signed(), "?rename=true");
      expect(res.status).toBe(422);
      const { error } = (await res.json()) as { error: { code: string; message: string } };
      expect(error.code).toBe("rename_breaks_signature");
      expect(error.message).toContain("SKT_REQUIRE_SIGNATURE");
      expect(engine.hasTask("prompt-a-strict")).toBe(false);
      // The signed file under its own name is still accepted there.
      expect((await upload(strict, "prompt-a", signed(), "?rename=true")).status).toBe(201);
    });
  });
});

interface StatsJson {
  task: string;
  tracked: boolean;
  adapter_version: number | null;
  low_confidence_threshold: number;
  total: { rows: number; labels: Record<string, number> };
  window: {
    size: number;
    rows: number;
    labels: Record<string, number>;
    low_confidence_share: number | null;
    drift: number | null;
  };
  training_distribution: Record<string, number> | null;
}

async function scrapeApp(): Promise<Sample[]> {
  return parseMetrics(await (await app.request("/metrics")).text());
}

async function statsOf(task: string): Promise<StatsJson> {
  const res = await app.request(`/admin/adapters/${task}/stats`, { headers: auth() });
  expect(res.status).toBe(200);
  return (await res.json()) as StatsJson;
}

describe("quality metrics per task", () => {
  const labels = ["neg", "neu", "pos"];
  const training = { neg: 0.5, neu: 0.2, pos: 0.3 };
  const texts = Array.from(
    { length: 14 },
    (_, i) => `review number ${i} : ${"good ".repeat(i % 4)}${"bad ".repeat(i % 3)}film`,
  );

  beforeAll(async () => {
    const withDist = servableAdapter(assets, { task: "drift-on", variant: "prompt", seed: 21, labels, scale: 0.2 });
    withDist.metadata.training = { label_distribution: training };
    expect((await upload(app, "drift-on", encodeAdapter(withDist, assets.dims))).status).toBe(201);
    const plain = servableAdapterBytes(assets, { task: "drift-off", variant: "prefix", seed: 22, labels, scale: 0.05 });
    expect((await upload(app, "drift-off", plain)).status).toBe(201);
  });

  it("counts, low-confidence share and drift equal what the test computes from the responses", async () => {
    const predictions: PredictionJson[] = [];
    // Two calls, one of them multi-task, so both paths record.
    const first = await classify("task=drift-on", { texts: texts.slice(0, 5) });
    predictions.push(...((await first.json()) as ResultJson).predictions);
    const second = await classify("task=drift-off&task=drift-on", { texts: texts.slice(5) });
    const { results } = (await second.json()) as { results: ResultJson[] };
    predictions.push(...results[1].predictions);
    const offPredictions = results[0].predictions;

    const counts: Record<string, number> = { neg: 0, neu: 0, pos: 0 };
    for (const p of predictions) counts[p.label!]++;
    const n = predictions.length;
    const naiveDrift =
      labels.reduce((s, l) => s + Math.abs(counts[l] / n - training[l as keyof typeof training]), 0) / 2;
    const low = predictions.filter((p) => p.score! < config.lowConfidence).length / n;

    const samples = await scrapeApp();
    for (const l of labels)
      expect(sampleValue(samples, "skt_predictions_total", { task: "drift-on", label: l }) ?? 0).toBe(counts[l]);
    expect(sampleValue(samples, "skt_winning_score_count", { task: "drift-on" })).toBe(n);
    expect(sampleValue(samples, "skt_winning_score_sum", { task: "drift-on" })).toBeCloseTo(
      predictions.reduce((s, p) => s + p.score!, 0),
      9,
    );
    expect(sampleValue(samples, "skt_label_drift", { task: "drift-on" })).toBeCloseTo(naiveDrift, 12);
    expect(sampleValue(samples, "skt_low_confidence_share", { task: "drift-on" })).toBeCloseTo(low, 12);
    // The file without a recorded distribution has no drift series, but its other series.
    expect(sampleValue(samples, "skt_label_drift", { task: "drift-off" })).toBeUndefined();
    expect(sampleValue(samples, "skt_winning_score_count", { task: "drift-off" })).toBe(offPredictions.length);

    const stats = await statsOf("drift-on");
    expect(stats).toMatchObject({ task: "drift-on", tracked: true, adapter_version: 1, total: { rows: n } });
    expect(stats.total.labels).toEqual(counts);
    expect(stats.window.labels).toEqual(counts);
    expect(stats.window.drift).toBeCloseTo(naiveDrift, 12);
    expect(stats.window.low_confidence_share).toBeCloseTo(low, 12);
    expect(stats.training_distribution).toEqual(training);
    const off = await statsOf("drift-off");
    expect(off.window.drift).toBeNull();
    expect(off.training_distribution).toBeNull();
    expect(off.total.rows).toBe(offPredictions.length);
  });

  it("stats of an unknown task is 404; deleting a task removes its series", async () => {
    expect((await app.request("/admin/adapters/nope/stats", { headers: auth() })).status).toBe(404);
    await classify("task=drift-off", { text: "fine" });
    expect(sampleValue(await scrapeApp(), "skt_winning_score_count", { task: "drift-off" })).toBeGreaterThan(0);
    const res = await app.request("/admin/adapters/drift-off", { method: "DELETE", headers: auth() });
    expect(res.status).toBe(204);
    const left = (await scrapeApp()).filter((s) => s.labels.task === "drift-off");
    expect(left).toEqual([]);
  });
});
