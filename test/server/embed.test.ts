/**
 * POST /embed: validation, limits, metrics and OpenAPI against the fake service; the real server
 * started with SKT_MODEL on the shared reference checkpoints, checked against their expected.json;
 * and USE-lite's /embed, which is its own sentence_embedding.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../../src/backbone/backbone.js";
import { Engine } from "../../src/engine/engine.js";
import { defaultConfig } from "../../src/config.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { FIXTURES_DIR } from "../helpers/hf-checkpoint.js";
import { cosine, maxAbsDiff } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { errorOf, makeRig, postJson, sampleValue, scrape } from "./setup.js";

interface EmbedJson {
  model: string;
  embeddings: number[][];
  tokens: number[];
}

describe("POST /embed (route)", () => {
  it("returns one vector per text, and honours normalize", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/embed", { texts: ["a fine film", "dull"] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as EmbedJson;
    expect(body.model).toBe("fake");
    expect(body.embeddings).toHaveLength(2);
    expect(body.tokens).toEqual([5, 3]);
    const one = (await (await postJson(rig, "/embed", { text: "dull", normalize: true })).json()) as EmbedJson;
    expect(Math.hypot(...one.embeddings[0])).toBeCloseTo(1, 6);
    expect(rig.service.embedCalls.map((c) => c.normalize)).toEqual([false, true]);
  });

  it.each([
    ["neither text nor texts", {}, 400],
    ["both text and texts", { text: "a", texts: ["b"] }, 400],
    ["an unknown field", { text: "a", task: "sst2" }, 400],
    ["a non-boolean normalize", { text: "a", normalize: "yes" }, 400],
    ["an empty list", { texts: [] }, 400],
    ["too many texts", { texts: Array.from({ length: 65 }, () => "x") }, 413],
    ["a text over the character limit", { text: "x".repeat(10_001) }, 413],
  ])("refuses %s with %i and changes nothing", async (_name, body, status) => {
    const rig = makeRig();
    const res = await postJson(rig, "/embed", body);
    expect(res.status).toBe(status);
    expect((await errorOf(res)).message.length).toBeGreaterThan(0);
    expect(rig.service.embedCalls).toHaveLength(0);
  });

  it("answers 503 while the engine is not ready and counts requests under task=__embed__", async () => {
    const rig = makeRig({}, { ready: false });
    expect((await postJson(rig, "/embed", { text: "a" })).status).toBe(503);
    rig.service.ready = true;
    expect((await postJson(rig, "/embed", { text: "a" })).status).toBe(200);
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_requests_total", { task: "__embed__", status: "200" })).toBe(1);
    expect(sampleValue(samples, "skt_requests_total", { task: "__embed__", status: "503" })).toBe(1);
  });

  it("is in the OpenAPI document with every status it can return", async () => {
    const rig = makeRig();
    const doc = (await (await rig.app.request("/openapi.json")).json()) as {
      paths: Record<string, { post: { responses: Record<string, unknown> } }>;
    };
    expect(Object.keys(doc.paths["/embed"].post.responses).sort()).toEqual([
      "200",
      "400",
      "408",
      "413",
      "415",
      "429",
      "431",
      "500",
      "503",
      "504",
    ]);
  });
});

describe.each(["bert-v", "llama-v"])("the server started with SKT_MODEL=%s", (name) => {
  let server: ServerProcess | undefined;
  let scratch: string | undefined;
  afterAll(async () => {
    await server?.kill();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it("answers /embed with the reference implementation's vectors", async () => {
    scratch = await mkdtemp(path.join(os.tmpdir(), "skt-embed-"));
    const dir = path.join(FIXTURES_DIR, name);
    server = await spawnServerProcess({
      adaptersDir: path.join(scratch, "adapters"),
      env: { SKT_MODEL: dir, SKT_MODELS_DIR: path.join(scratch, "models"), SKT_LOG_LEVEL: "warn" },
      readyWithinMs: 90_000,
    });
    const expected = JSON.parse(await readFile(path.join(dir, "expected.json"), "utf8")) as {
      texts: string[];
      ids: number[][];
      embeddings: number[][];
    };
    const post = async (body: unknown) => {
      const r = await fetch(`${server!.base}/embed`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(200);
      return (await r.json()) as EmbedJson;
    };
    const got = await post({ texts: expected.texts });
    expect(got.model).toBe(name);
    expect(got.tokens).toEqual(expected.ids.map((ids) => ids.length));
    expected.embeddings.forEach((want, i) => {
      expect(cosine(got.embeddings[i], want)).toBeGreaterThanOrEqual(0.99999);
      expect(maxAbsDiff(got.embeddings[i], want)).toBeLessThanOrEqual(1e-4);
    });
    const normalized = await post({ text: expected.texts[3], normalize: true });
    const want = expected.embeddings[3];
    const norm = Math.hypot(...want);
    expect(
      maxAbsDiff(
        normalized.embeddings[0],
        want.map((x) => x / norm),
      ),
    ).toBeLessThanOrEqual(1e-4);
  });
});

describe("USE-lite /embed (the default backbone)", () => {
  it("is the model's own sentence_embedding, unit length", async () => {
    const scratch = await mkdtemp(path.join(os.tmpdir(), "skt-embed-use-"));
    const engine = await Engine.create({
      ...defaultConfig({ modelsDir: MODELS_DIR, adaptersDir: scratch }),
      semanticCache: true,
    });
    const runner = await BackboneRunner.create(MODELS_DIR, { threads: 1 });
    try {
      const texts = ["a gripping, funny film", "dull and far too long ."];
      const got = await engine.embed({ texts });
      expect(got.model).toBe("use-lite");
      const assets = await loadBackboneAssets(MODELS_DIR);
      for (const [i, text] of texts.entries()) {
        const ids = assets.tokenizer.encode(text, assets.dims.maxPositions).ids;
        expect(got.tokens[i]).toBe(ids.length);
        const direct = (
          await runner.run(tokenBatch(assets.embeddings, assets.dims.embedDim, [ids], ["sentence_embedding"]))
        ).sentence_embedding!;
        expect(maxAbsDiff(got.embeddings[i], direct)).toBeLessThanOrEqual(1e-5);
        expect(Math.hypot(...got.embeddings[i])).toBeCloseTo(1, 5);
      }
    } finally {
      await engine.close();
      await runner.release();
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
