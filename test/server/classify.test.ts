import { describe, expect, it } from "vitest";
import { SktError, type ErrorKind } from "../../src/errors.js";
import { auth, errorOf, makeRig, postJson, sampleValue, scrape } from "./setup.js";
import { classifyBodyLimit } from "../../src/server/routes/classify.js";

interface ClassifyJson {
  task: string;
  adapter_version: number;
  predictions: Array<{
    label?: string;
    score?: number;
    scores?: Record<string, number>;
    value?: number;
    tokens: number;
    truncated: boolean;
  }>;
}

describe("POST /classify", () => {
  it("classifies one text", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2", { text: "a gripping, funny film" });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ClassifyJson;
    expect(body.task).toBe("sst2");
    expect(body.adapter_version).toBe(1);
    expect(body.predictions).toHaveLength(1);
    const p = body.predictions[0];
    expect(["negative", "positive"]).toContain(p.label);
    expect(Object.keys(p.scores!).sort()).toEqual(["negative", "positive"]);
    expect(p.score).toBe(p.scores![p.label!]);
    expect(p).toMatchObject({ tokens: 4, truncated: false });
    expect(p.value).toBeUndefined();
    // The engine got the texts, a deadline in the future and an abort signal.
    const call = rig.service.classifyCalls[0];
    expect(call.texts).toEqual(["a gripping, funny film"]);
    expect(call.pairs).toBeUndefined();
    expect(call.deadline).toBeGreaterThan(Date.now());
    expect(call.deadline! - Date.now()).toBeLessThanOrEqual(rig.config.requestTimeoutMs);
    expect(call.signal).toBeInstanceOf(AbortSignal);
  });

  it("classifies a list of texts, in order, deterministically", async () => {
    const rig = makeRig();
    const texts = ["one", "two words", "three little words"];
    const a = (await (await postJson(rig, "/classify?task=sst2", { texts })).json()) as ClassifyJson;
    const b = (await (await postJson(rig, "/classify?task=sst2", { texts })).json()) as ClassifyJson;
    expect(a.predictions.map((p) => p.tokens)).toEqual([1, 2, 3]);
    expect(a).toEqual(b);
  });

  it("returns value (not label/score) for regression tasks", async () => {
    const rig = makeRig();
    const body = (await (await postJson(rig, "/classify?task=stsb", { text: "x y" })).json()) as ClassifyJson;
    const p = body.predictions[0];
    expect(typeof p.value).toBe("number");
    expect(p).not.toHaveProperty("label");
    expect(p).not.toHaveProperty("score");
    expect(p).not.toHaveProperty("scores");
  });

  it("flags truncated inputs", async () => {
    const rig = makeRig();
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(" ");
    const body = (await (
      await postJson(rig, "/classify?task=sst2", { texts: [long, "short"] })
    ).json()) as ClassifyJson;
    expect(body.predictions[0]).toMatchObject({ tokens: 16, truncated: true });
    expect(body.predictions[1]).toMatchObject({ tokens: 1, truncated: false });
  });

  it("passes text_pair and text_pairs through as pairs", async () => {
    const rig = makeRig();
    let res = await postJson(rig, "/classify?task=mnli", { text: "a man sleeps", text_pair: "a person rests" });
    expect(res.status).toBe(200);
    expect(rig.service.classifyCalls.at(-1)!.pairs).toEqual(["a person rests"]);
    res = await postJson(rig, "/classify?task=mnli", { texts: ["a", "b"], text_pairs: ["c", "d"] });
    expect(res.status).toBe(200);
    expect(((await res.json()) as ClassifyJson).predictions).toHaveLength(2);
    expect(rig.service.classifyCalls.at(-1)!.pairs).toEqual(["c", "d"]);
  });

  describe("validation", () => {
    const cases: Array<[string, unknown, string, RegExp]> = [
      ["both text and texts", { text: "a", texts: ["b"] }, "invalid_request", /exactly one of `text`/],
      ["neither text nor texts", {}, "invalid_request", /exactly one of `text`/],
      ["an empty list", { texts: [] }, "invalid_request", /^texts: must not be empty/],
      ["a non-string text", { text: 5 }, "invalid_request", /^text: /],
      ["a non-string in texts", { texts: ["ok", 7] }, "invalid_request", /^texts\.1: /],
      ["texts not a list", { texts: "abc" }, "invalid_request", /^texts: /],
      ["an unknown field", { text: "a", txt: "b" }, "invalid_request", /txt/],
      [
        "pairs of the wrong length",
        { texts: ["a", "b"], text_pairs: ["c"] },
        "invalid_request",
        /^text_pairs: must have the same length/,
      ],
      ["text_pair with texts", { texts: ["a"], text_pair: "c" }, "invalid_request", /^text_pair: /],
      ["text_pairs with text", { text: "a", text_pairs: ["c"] }, "invalid_request", /^text_pairs: /],
      ["a JSON array body", ["a"], "invalid_request", /body/],
    ];
    it.each(cases)("rejects %s with 400", async (_name, body, code, message) => {
      const rig = makeRig();
      const res = await postJson(rig, "/classify?task=mnli", body);
      expect(res.status).toBe(400);
      const err = await errorOf(res);
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
      expect(rig.service.classifyCalls).toHaveLength(0);
    });

    it("rejects malformed JSON with 400 malformed_json", async () => {
      const rig = makeRig();
      const res = await postJson(rig, "/classify?task=sst2", '{"text": "unterminated');
      expect(res.status).toBe(400);
      expect((await errorOf(res)).code).toBe("malformed_json");
    });

    it("rejects a non-JSON content type with 415", async () => {
      const rig = makeRig();
      const res = await rig.app.request("/classify?task=sst2", {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: "hello",
      });
      expect(res.status).toBe(415);
      expect((await errorOf(res)).code).toBe("unsupported_media_type");
    });

    it("rejects too many texts with 413 too_many_texts", async () => {
      const rig = makeRig({ maxTexts: 3 });
      const res = await postJson(rig, "/classify?task=sst2", { texts: ["a", "b", "c", "d"] });
      expect(res.status).toBe(413);
      const err = await errorOf(res);
      expect(err.code).toBe("too_many_texts");
      expect(err.message).toMatch(/^texts: /);
      expect((await postJson(rig, "/classify?task=sst2", { texts: ["a", "b", "c"] })).status).toBe(200);
    });

    it("rejects a text over the character limit with 413 text_too_long", async () => {
      const rig = makeRig({ maxTextChars: 10 });
      let res = await postJson(rig, "/classify?task=sst2", { text: "x".repeat(11) });
      expect(res.status).toBe(413);
      expect(await errorOf(res)).toMatchObject({ code: "text_too_long", message: expect.stringMatching(/^text: /) });
      res = await postJson(rig, "/classify?task=sst2", { texts: ["ok", "y".repeat(11)] });
      expect(res.status).toBe(413);
      expect(await errorOf(res)).toMatchObject({
        code: "text_too_long",
        message: expect.stringMatching(/^texts\.1: /),
      });
      expect((await postJson(rig, "/classify?task=sst2", { text: "x".repeat(10) })).status).toBe(200);
    });

    it("uses the default limits (64 texts, 10,000 chars)", async () => {
      const rig = makeRig();
      expect((await postJson(rig, "/classify?task=sst2", { texts: Array(65).fill("a") })).status).toBe(413);
      expect((await postJson(rig, "/classify?task=sst2", { texts: Array(64).fill("a") })).status).toBe(200);
      expect((await postJson(rig, "/classify?task=sst2", { text: "a".repeat(10_001) })).status).toBe(413);
      expect((await postJson(rig, "/classify?task=sst2", { text: "a".repeat(10_000) })).status).toBe(200);
    });

    it("caps the raw body size before parsing (413 body_too_large)", async () => {
      const rig = makeRig({ maxTexts: 1, maxTextChars: 1 });
      const res = await postJson(rig, "/classify?task=sst2", { text: "x", pad: "y".repeat(100_000) });
      expect(res.status).toBe(413);
      expect((await errorOf(res)).code).toBe("body_too_large");
    });

    it("refuses a declared Content-Length over the cap without reading the body (413), and accepts one under it", async () => {
      const rig = makeRig({ maxTexts: 1, maxTextChars: 1 });
      const over = await postJson(
        rig,
        "/classify?task=sst2",
        { text: "x" },
        { "content-length": String(classifyBodyLimit(rig.config) + 1) },
      );
      expect(over.status).toBe(413);
      expect((await errorOf(over)).code).toBe("body_too_large");
      const body = JSON.stringify({ text: "x" });
      expect((await postJson(rig, "/classify?task=sst2", body, { "content-length": String(body.length) })).status).toBe(
        200,
      );
      expect(rig.service.classifyCalls.length).toBe(1);
    });

    it("requires a valid task name", async () => {
      const rig = makeRig();
      let res = await postJson(rig, "/classify", { text: "a" });
      expect(res.status).toBe(400);
      expect((await errorOf(res)).code).toBe("invalid_task_name");
      res = await postJson(rig, "/classify?task=Bad%20Name", { text: "a" });
      expect(res.status).toBe(400);
      expect(await errorOf(res)).toMatchObject({
        code: "invalid_task_name",
        message: expect.stringMatching(/^task: /),
      });
      expect(rig.service.classifyCalls).toHaveLength(0);
    });
  });

  it("answers 404 for an unknown task and labels it __unknown__ in metrics", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=nope", { text: "a" });
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("unknown_task");
    await postJson(rig, "/classify?task=INVALID!", { text: "a" });
    await postJson(rig, "/classify?task=sst2", { text: "a" });
    const samples = await scrape(rig);
    expect(sampleValue(samples, "skt_requests_total", { task: "__unknown__", status: "404" })).toBe(1);
    expect(sampleValue(samples, "skt_requests_total", { task: "__unknown__", status: "400" })).toBe(1);
    expect(sampleValue(samples, "skt_requests_total", { task: "sst2", status: "200" })).toBe(1);
    expect(samples.some((s) => s.labels.task === "nope" || s.labels.task === "INVALID!")).toBe(false);
    expect(sampleValue(samples, "skt_request_duration_seconds_count", { task: "sst2" })).toBe(1);
    expect(sampleValue(samples, "skt_request_duration_seconds_count", { task: "__unknown__" })).toBe(2);
  });

  describe("engine errors map to statuses", () => {
    const table: Array<[ErrorKind, number]> = [
      ["bad_request", 400],
      ["not_found", 404],
      ["too_large", 413],
      ["unsupported_media", 415],
      ["invalid_adapter", 422],
      ["overloaded", 429],
      ["not_ready", 503],
      ["timeout", 504],
      ["storage", 507],
    ];
    it.each(table)("%s → %i", async (kind, status) => {
      const rig = makeRig();
      rig.service.failNextWith("classify", kind, `some_${kind}`);
      const res = await postJson(rig, "/classify?task=sst2", { text: "a" });
      expect(res.status).toBe(status);
      expect(await errorOf(res)).toMatchObject({ code: `some_${kind}`, message: `fake classify failed with ${kind}` });
      expect(res.headers.get("content-type")).toMatch(/application\/json/);
      const samples = await scrape(rig);
      expect(sampleValue(samples, "skt_requests_total", { task: "sst2", status: String(status) })).toBe(1);
    });

    // /classify cannot conflict with anything (its document says so); rollback can.
    it("conflict → 409 (on rollback, the route that can conflict)", async () => {
      const rig = makeRig();
      rig.service.failNextWith("rollback", "conflict", "some_conflict");
      const res = await postJson(rig, "/admin/adapters/sst2/rollback", {}, auth());
      expect(res.status).toBe(409);
      expect(await errorOf(res)).toMatchObject({
        code: "some_conflict",
        message: "fake rollback failed with conflict",
      });
    });

    it("overloaded → 429 with Retry-After from config", async () => {
      const rig = makeRig({ retryAfterSeconds: 3 });
      rig.service.failNextWith("classify", "overloaded", "queue_full");
      const res = await postJson(rig, "/classify?task=sst2", { text: "a" });
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("3");
      expect((await errorOf(res)).code).toBe("queue_full");
    });

    it("defaults Retry-After to 1 second", async () => {
      const rig = makeRig();
      rig.service.failNextWith("classify", "overloaded");
      expect((await postJson(rig, "/classify?task=sst2", { text: "a" })).headers.get("retry-after")).toBe("1");
    });

    it("internal SktError → 500 with a generic message", async () => {
      const rig = makeRig();
      rig.service.failNext("classify", new SktError("internal", "bug_inside", "secret internal detail"));
      const res = await postJson(rig, "/classify?task=sst2", { text: "a" });
      expect(res.status).toBe(500);
      const err = await errorOf(res);
      expect(err.code).toBe("internal");
      expect(err.message).not.toMatch(/secret/);
    });

    it("a plain Error → 500 internal, logged with its stack, never sent", async () => {
      const rig = makeRig();
      rig.service.failNext("classify", new TypeError("cannot read property x of undefined"));
      const res = await postJson(rig, "/classify?task=sst2", { text: "a" });
      expect(res.status).toBe(500);
      const text = await res.text();
      expect(JSON.parse(text)).toEqual({ error: { code: "internal", message: "Internal server error." } });
      expect(text).not.toMatch(/cannot read|at |\.ts/);
      const logged = rig.logs.find((l) => l.msg === "unhandled error") as { err?: { stack?: string }; reqId?: string };
      expect(logged?.err?.stack).toMatch(/cannot read property x/);
      expect(logged?.reqId).toBe(res.headers.get("x-request-id"));
    });
  });

  it("answers 504 when the engine does not finish by the deadline, and aborts the engine call", async () => {
    const rig = makeRig({ requestTimeoutMs: 5 });
    rig.service.hang = true;
    const res = await postJson(rig, "/classify?task=sst2", { text: "a" });
    expect(res.status).toBe(504);
    expect((await errorOf(res)).code).toBe("timeout");
    const signal = rig.service.classifyCalls[0].signal!;
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toMatchObject({ kind: "timeout" });
    await new Promise((r) => setImmediate(r)); // let the aborted engine call settle
    expect(rig.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
  });

  it("aborts the engine call when the client goes away", async () => {
    const rig = makeRig();
    rig.service.hang = true;
    const client = new AbortController();
    const started = new Promise<void>((resolve) => {
      rig.service.onClassifyStart = () => resolve();
    });
    const pending = rig.app.request(
      new Request("http://localhost/classify?task=sst2", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ text: "a" }),
        signal: client.signal,
      }),
    );
    await started;
    const signal = rig.service.classifyCalls[0].signal!;
    expect(signal.aborted).toBe(false);
    client.abort();
    const res = await pending;
    expect(signal.aborted).toBe(true);
    // Counted as its own outcome (nginx's 499), never as a server error.
    expect(res.status).toBe(499);
    expect((await errorOf(res)).code).toBe("client_closed");
  });
});
