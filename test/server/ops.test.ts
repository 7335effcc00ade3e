import { describe, expect, it } from "vitest";
import { errorOf, makeRig, parseMetrics, postJson, sampleValue, scrape } from "./setup.js";

describe("GET /tasks", () => {
  it("lists tasks with snake_case keys", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/tasks");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { tasks: Array<Record<string, unknown>> };
    expect(body.tasks.map((t) => t.task)).toEqual(["mnli", "sst2", "stsb"]);
    expect(Object.keys(body.tasks[1]!).sort()).toEqual(
      ["labels", "max_length", "parameters", "pooling", "problem_type", "prompt_text", "task", "variant", "version"].sort(),
    );
    expect(body.tasks[1]).toMatchObject({ task: "sst2", version: 1, labels: ["negative", "positive"], problem_type: "single_label_classification" });
    expect(body.tasks[2]).toMatchObject({ task: "stsb", problem_type: "regression" });
  });

  it("maps engine errors", async () => {
    const rig = makeRig();
    rig.service.failNextWith("listTasks", "not_ready");
    const res = await rig.app.request("/tasks");
    expect(res.status).toBe(503);
  });
});

describe("health", () => {
  it("GET /healthz is 200 even when not ready", async () => {
    const rig = makeRig({}, { ready: false });
    const res = await rig.app.request("/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("GET /readyz follows service.isReady()", async () => {
    const rig = makeRig({}, { ready: false });
    let res = await rig.app.request("/readyz");
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("not_ready");
    rig.service.ready = true;
    res = await rig.app.request("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ready" });
    await rig.service.close();
    expect((await rig.app.request("/readyz")).status).toBe(503);
  });
});

describe("GET /metrics", () => {
  it("serves parseable Prometheus text with every skt_ metric", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    const samples = parseMetrics(text);
    const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.fromEntries(types)).toMatchObject({
      skt_requests_total: "counter",
      skt_request_duration_seconds: "histogram",
      skt_queue_duration_seconds: "histogram",
      skt_inference_duration_seconds: "histogram",
      skt_batch_size: "histogram",
      skt_batch_tokens: "histogram",
      skt_queue_depth: "gauge",
      skt_tokens_total: "counter",
      skt_semantic_passes_total: "counter",
      skt_adapter_cache_hits_total: "counter",
      skt_adapter_cache_misses_total: "counter",
      skt_adapter_cache_evictions_total: "counter",
      skt_adapter_cache_bytes: "gauge",
      skt_adapters_loaded: "gauge",
      skt_adapter_load_duration_seconds: "histogram",
      skt_uploads_total: "counter",
    });
    expect(sampleValue(samples, "skt_uploads_total", { outcome: "ok" })).toBe(0);
    expect(sampleValue(samples, "skt_tokens_total", { kind: "padding" })).toBe(0);
  });

  it("counts move after requests, and engine-side metrics show up", async () => {
    const rig = makeRig();
    const before = await scrape(rig);
    expect(sampleValue(before, "skt_requests_total", { task: "sst2", status: "200" })).toBeUndefined();
    await postJson(rig, "/classify?task=sst2", { text: "a" });
    await postJson(rig, "/classify?task=sst2", { texts: ["a", "b"] });
    await postJson(rig, "/classify?task=sst2", { texts: [] });
    rig.metrics.batchSize.observe(3);
    rig.metrics.queueDepth.set(7);
    rig.metrics.tokens.inc({ kind: "real" }, 12);
    const after = await scrape(rig);
    expect(sampleValue(after, "skt_requests_total", { task: "sst2", status: "200" })).toBe(2);
    expect(sampleValue(after, "skt_requests_total", { task: "sst2", status: "400" })).toBe(1);
    expect(sampleValue(after, "skt_request_duration_seconds_count", { task: "sst2" })).toBe(3);
    expect(sampleValue(after, "skt_batch_size_bucket", { le: "4" })).toBe(1);
    expect(sampleValue(after, "skt_batch_size_bucket", { le: "2" })).toBe(0);
    expect(sampleValue(after, "skt_queue_depth")).toBe(7);
    expect(sampleValue(after, "skt_tokens_total", { kind: "real" })).toBe(12);
  });

  it("does not count non-classify routes as requests", async () => {
    const rig = makeRig();
    await rig.app.request("/tasks");
    await rig.app.request("/healthz");
    await rig.app.request("/metrics");
    const samples = await scrape(rig);
    expect(samples.filter((s) => s.name === "skt_requests_total")).toEqual([]);
  });
});

describe("errors and plumbing", () => {
  it("answers unknown routes with a JSON 404", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/nope/nothing");
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/application\/json/);
    expect((await errorOf(res)).code).toBe("route_not_found");
  });

  it("returns X-Request-Id (generated or echoed) on success and error responses", async () => {
    const rig = makeRig();
    const ok = await rig.app.request("/healthz");
    expect(ok.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    const echoed = await rig.app.request("/healthz", { headers: { "X-Request-Id": "abc-123" } });
    expect(echoed.headers.get("x-request-id")).toBe("abc-123");
    for (const res of [
      await rig.app.request("/nope"),
      await rig.app.request("/admin/adapters"),
      await postJson(rig, "/classify?task=sst2", "{bad"),
    ]) {
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it("logs one line per request with its request id", async () => {
    const rig = makeRig();
    const res = await postJson(rig, "/classify?task=sst2", { text: "a" }, { "X-Request-Id": "req-42" });
    expect(res.headers.get("x-request-id")).toBe("req-42");
    await rig.app.request("/tasks");
    const lines = rig.logs.filter((l) => l.msg === "request");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ reqId: "req-42", method: "POST", path: "/classify", task: "sst2", status: 200, level: "info" });
    expect(typeof lines[0]!.ms).toBe("number");
    expect(lines[1]).toMatchObject({ path: "/tasks", status: 200 });
  });
});

describe("OpenAPI and docs", () => {
  it("serves an OpenAPI 3 document describing every route", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as {
      openapi: string;
      paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>>;
      components: { securitySchemes: Record<string, unknown>; schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        "/admin/adapters",
        "/admin/adapters/{task}",
        "/admin/adapters/{task}/rollback",
        "/classify",
        "/embed",
        "/healthz",
        "/metrics",
        "/readyz",
        "/tasks",
      ].sort(),
    );
    expect(Object.keys(doc.paths["/admin/adapters/{task}"]!).sort()).toEqual(["delete", "get", "put"]);
    expect(doc.paths["/classify"]!.post!.responses).toHaveProperty("413");
    expect(doc.paths["/admin/adapters"]!.get!.security).toEqual([{ adminToken: [] }]);
    expect(doc.components.securitySchemes).toHaveProperty("adminToken");
    expect(doc.components.schemas).toHaveProperty("ClassifyRequest");
    expect(doc.components.schemas).toHaveProperty("TaskInfo");
  });

  it("serves the Scalar page at /docs pointing at /openapi.json", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain("/openapi.json");
  });

  it("/docs works offline: its script comes from the server, and the page names no other host", async () => {
    const rig = makeRig();
    const html = await (await rig.app.request("/docs")).text();
    const scripts = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(["/docs/scalar.js"]);
    expect(html).not.toMatch(/https?:\/\//);
    // Scalar's own fetches from its hosts are switched off in the page's configuration.
    expect(html).toMatch(/"withDefaultFonts": false/);
    expect(html).toMatch(/"telemetry": false/);
    const js = await rig.app.request("/docs/scalar.js");
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    const body = await js.text();
    expect(body.length).toBeGreaterThan(1_000_000);
    expect(body).toContain("createApiReference"); // the bundle the page's inline script calls
  });
});
