/**
 * The real server with SKT_DEVICE=webgpu (SwiftShader in CI), against a CPU server on the same
 * adapters: readiness names the device, prompt- and prefix-variant tasks share one WebGPU batch and
 * score as on the CPU, and a hot swap under a little load answers every request from one whole
 * version. Small on purpose: the software GPU takes about a second per batch. The WebGPU server
 * sends token ids and the batch's distinct soft-prompt rows (its graphs look the rows up), the CPU
 * server embedding rows: the mixed batch pins the two forms against each other through the server.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import type { LoggedBatch } from "../../src/engine/batch-log.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { PARITY_RELATIVE_TO_SCALE, requireWebGpuDriver, skipWebGpu, webgpu, webgpuSuite } from "../helpers/webgpu.js";

const TOKEN = "webgpu-test-token";
const admin = { authorization: `Bearer ${TOKEN}` };
/**
 * |WebGPU − CPU| allowed on a class probability. The backbone's pooled state agrees to 2e-5 of its
 * scale (~9, so ≤ 2e-4 absolute: helpers/webgpu.ts); a synthetic head (weights ≤ 0.05, 512 inputs)
 * moves a logit by at most 512 · 0.05 · 2e-4 ≈ 5e-3, and a probability moves by at most 1/4 of a
 * logit difference of twice that: 2.5e-3. Measured differences are ~1e-6.
 */
const SCORE_TOLERANCE = 2.5e-3;

let assets: BackboneAssets;
let dirs: string[] = [];
let gpu: ServerProcess;
let cpu: ServerProcess;
let batchLog: string;

interface Classified {
  adapter_version: number;
  predictions: { label: string; scores: Record<string, number> }[];
}

async function classify(server: ServerProcess, task: string, texts: string[]): Promise<Classified> {
  const r = await fetch(`${server.base}/classify?task=${task}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ texts }),
  });
  expect(r.status, await r.clone().text()).toBe(200);
  return (await r.json()) as Classified;
}

async function upload(server: ServerProcess, task: string, bytes: Uint8Array): Promise<void> {
  const r = await fetch(`${server.base}/admin/adapters/${task}`, {
    method: "PUT",
    headers: { ...admin, "content-type": "application/octet-stream" },
    body: Buffer.from(bytes),
  });
  expect(r.status, await r.clone().text()).toBe(201);
}

async function start(device: "webgpu" | "cpu", extraEnv: Record<string, string> = {}): Promise<ServerProcess> {
  const adaptersDir = await mkdtemp(path.join(os.tmpdir(), `skt-${device}-`));
  dirs.push(adaptersDir);
  return spawnServerProcess({
    adaptersDir,
    env: {
      ...webgpu.env,
      SKT_ADMIN_TOKEN: TOKEN,
      SKT_MODELS_DIR: MODELS_DIR,
      SKT_LOG_LEVEL: "warn",
      SKT_DEVICE: device,
      SKT_THREADS: "1",
      ...extraEnv,
    },
    // A long wait lets requests sent together share a batch even on a slow software GPU; the
    // padding limit is lifted because soft-prompt rows are much longer than prefix rows.
    // One batch in flight: rows that arrive while it runs queue up together.
    serveArgs: [
      "--max-wait-ms",
      "300",
      "--max-padding-ratio",
      "1000",
      "--max-in-flight-batches",
      "1",
      "--request-timeout-ms",
      "120000",
    ],
    readyWithinMs: 180_000,
    label: `${device} server`,
  });
}

// SwiftShader on a loaded machine takes up to ~5 s per batch and compiles shaders per new shape.
describe.skipIf(skipWebGpu)(webgpuSuite("server on SKT_DEVICE=webgpu"), { timeout: 300_000 }, () => {
  beforeAll(async () => {
    requireWebGpuDriver();
    assets = await loadBackboneAssets(MODELS_DIR);
    batchLog = path.join(await mkdtemp(path.join(os.tmpdir(), "skt-batchlog-")), "batches.jsonl");
    dirs.push(path.dirname(batchLog));
    [gpu, cpu] = await Promise.all([start("webgpu", { SKT_DEBUG_BATCH_LOG: batchLog }), start("cpu")]);
    for (const server of [gpu, cpu]) {
      await upload(
        server,
        "prompted",
        servableAdapterBytes(assets, { task: "prompted", variant: "prompt", seed: 3, labels: ["a", "b", "c"] }),
      );
      await upload(server, "prefixed", servableAdapterBytes(assets, { task: "prefixed", variant: "prefix", seed: 4 }));
    }
  });

  afterAll(async () => {
    await gpu?.kill();
    await cpu?.kill();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
    dirs = [];
  });

  it("says in /readyz and skt_device_info that it runs on WebGPU, with the adapter's name", async () => {
    const ready = (await (await fetch(`${gpu.base}/readyz`)).json()) as {
      device: { device: string; requested: string; adapter: string | null };
    };
    expect(ready.device).toMatchObject({ requested: "webgpu", device: "webgpu", adapter: expect.any(String) });
    const metrics = await (await fetch(`${gpu.base}/metrics`)).text();
    const adapter = ready.device.adapter!.replace(/[\\"]/g, "\\$&");
    expect(metrics).toContain(`skt_device_info{device="webgpu",requested="webgpu",adapter="${adapter}"} 1`);
    expect(await (await fetch(`${cpu.base}/readyz`)).json()).toMatchObject({
      device: { device: "cpu", adapter: null },
    });
  });

  it("runs prompt- and prefix-variant tasks in one batch and scores them as the CPU does", async () => {
    const texts = ["a fine film", "dull and far too long , with no redeeming scene", "ok"];
    const [cp, cx] = await Promise.all([classify(cpu, "prompted", texts), classify(cpu, "prefixed", texts)]);
    const mixedBatches = async () => {
      await new Promise((r) => setTimeout(r, 600)); // the batch log flushes every 250 ms
      const batches = (await readFile(batchLog, "utf8"))
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as LoggedBatch);
      return { batches, mixed: batches.filter((b) => new Set(b.rows.map((r) => r.task)).size === 2).length };
    };
    // The first request ends a quiet spell and runs alone; the two sent while it runs share a batch.
    // (Retried in case a fast GPU finishes the first one before the others arrive.)
    for (let attempt = 1; attempt <= 3; attempt++) {
      const occupying = classify(gpu, "prompted", ["keeps the worker busy"]);
      await new Promise((r) => setTimeout(r, 50));
      const [gp, gx] = await Promise.all([classify(gpu, "prompted", texts), classify(gpu, "prefixed", texts)]);
      await occupying;
      for (const [g, c] of [
        [gp, cp],
        [gx, cx],
      ] as const) {
        g.predictions.forEach((p, i) => {
          expect(p.label).toBe(c.predictions[i].label);
          for (const [label, score] of Object.entries(p.scores))
            expect(Math.abs(score - c.predictions[i].scores[label])).toBeLessThan(SCORE_TOLERANCE);
        });
      }
      const { batches, mixed } = await mixedBatches();
      if (mixed > 0) break;
      if (attempt === 3)
        expect(mixed, JSON.stringify(batches.map((b) => b.rows.map((r) => r.task)))).toBeGreaterThan(0);
    }
  });

  it("answers /embed from the token-id graphs as the CPU server does", async () => {
    const embed = async (server: ServerProcess) => {
      const r = await fetch(`${server.base}/embed`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ texts: ["a fine film", "dull and far too long"] }),
      });
      expect(r.status, await r.clone().text()).toBe(200);
      return ((await r.json()) as { embeddings: number[][] }).embeddings;
    };
    const [g, c] = await Promise.all([embed(gpu), embed(cpu)]);
    expect(g).toHaveLength(2);
    g.forEach((v, i) => {
      const scale = Math.max(...c[i].map(Math.abs));
      expect(scale).toBeGreaterThan(0);
      const diff = Math.max(...v.map((x, k) => Math.abs(x - c[i][k])));
      expect(diff / scale).toBeLessThan(PARITY_RELATIVE_TO_SCALE);
    });
  });

  it("hot-swaps a task under load: every answer comes whole from v1 or v2, and v2 after the swap", async () => {
    const v1 = servableAdapterBytes(assets, { task: "swap", seed: 1, headBias: [30, -30] });
    const v2 = servableAdapterBytes(assets, { task: "swap", seed: 2, headBias: [-30, 30] });
    await upload(gpu, "swap", v1);
    let swapped = false;
    const answers: Classified[] = [];
    // Each client keeps sending until the swap is done, then two more (however fast the GPU).
    const client = async () => {
      for (let after = 0; after < 2;) {
        answers.push(await classify(gpu, "swap", ["first text", "second text"]));
        if (swapped) after++;
      }
    };
    const load = Promise.all([client(), client()]);
    await new Promise((r) => setTimeout(r, 500));
    await upload(gpu, "swap", v2);
    swapped = true;
    await load;
    const after = await classify(gpu, "swap", ["after the swap"]);
    expect(after).toMatchObject({ adapter_version: 2, predictions: [{ label: "positive" }] });
    const expected: Record<number, string> = { 1: "negative", 2: "positive" };
    for (const a of answers) for (const p of a.predictions) expect(p.label).toBe(expected[a.adapter_version]);
    expect(new Set(answers.map((a) => a.adapter_version))).toEqual(new Set([1, 2]));
  });
});
