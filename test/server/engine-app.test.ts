/**
 * The HTTP app on a real engine (USE-lite, synthetic adapters): a multi-task call mixing prompt- and
 * prefix-variant tasks answers what the single-task calls answer, with the rows sharing batches;
 * uploads renamed with `?rename=true` (signed and unsigned, signatures required or not).
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
import { MODELS_DIR } from "../helpers/paths.js";
import { peekMetadata } from "../../src/adapters/format.js";
import { checkAdapterSignature, signAdapter, TrustedKeys } from "../../src/adapters/signature.js";
import { servableAdapterBytes, type ServableOptions } from "../helpers/servable-adapter.js";
import { ADMIN_TOKEN, auth } from "./setup.js";

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
