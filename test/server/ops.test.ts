import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { encodeFakeAdapter } from "../helpers/fake-service.js";
import { ADMIN_TOKEN, errorOf, makeRig, parseMetrics, postJson, sampleValue, scrape } from "./setup.js";

describe("GET /tasks", () => {
  it("lists tasks with snake_case keys", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/tasks");
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      tasks: Array<Record<string, unknown>>;
      total: number;
      next_cursor: string | null;
    };
    expect(body.tasks.map((t) => t.task)).toEqual(["mnli", "sst2", "stsb"]);
    expect(body.total).toBe(3);
    expect(body.next_cursor).toBeNull();
    expect(Object.keys(body.tasks[1]).sort()).toEqual(
      [
        "label_count",
        "labels",
        "max_length",
        "parameters",
        "pooling",
        "problem_type",
        "prompt_text",
        "task",
        "truncated",
        "variant",
        "version",
      ].sort(),
    );
    expect(body.tasks[1]).toMatchObject({
      task: "sst2",
      version: 1,
      labels: ["negative", "positive"],
      problem_type: "single_label_classification",
    });
    expect(body.tasks[2]).toMatchObject({ task: "stsb", problem_type: "regression" });
  });

  it("walks every task exactly once with limit and cursor, in name order", async () => {
    const rig = makeRig();
    for (const t of ["zeta", "alpha", "m-1", "m_2", "b0"]) {
      const r = await rig.app.request(`/admin/adapters/${t}`, {
        method: "PUT",
        headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, "Content-Type": "application/octet-stream" },
        body: encodeFakeAdapter({}) as BodyInit,
      });
      expect(r.status).toBe(201);
    }
    const all = ["alpha", "b0", "m-1", "m_2", "mnli", "sst2", "stsb", "zeta"]; // code-unit order: "-" < "_"
    for (const limit of [1, 2, 3, 7, 8, 1000]) {
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 20; pages++) {
        const res: Response = await rig.app.request(`/tasks?limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
        expect(res.status).toBe(200);
        const body = (await res.json()) as { tasks: { task: string }[]; total: number; next_cursor: string | null };
        expect(body.total).toBe(all.length);
        expect(body.tasks.length).toBeLessThanOrEqual(limit);
        seen.push(...body.tasks.map((t) => t.task));
        cursor = body.next_cursor;
        if (cursor === null) break;
      }
      expect(seen, `limit ${limit}`).toEqual(all);
    }
  });

  it("a task deleted between pages neither shifts nor repeats the rest", async () => {
    const rig = makeRig();
    const first = (await (await rig.app.request("/tasks?limit=1")).json()) as {
      tasks: { task: string }[];
      next_cursor: string;
    };
    expect(first.tasks.map((t) => t.task)).toEqual(["mnli"]);
    await rig.service.deleteTask("mnli");
    const rest = (await (await rig.app.request(`/tasks?cursor=${first.next_cursor}`)).json()) as {
      tasks: { task: string }[];
      total: number;
    };
    expect(rest.tasks.map((t) => t.task)).toEqual(["sst2", "stsb"]);
    expect(rest.total).toBe(2);
  });

  it("refuses a bad limit or cursor with 400", async () => {
    const rig = makeRig();
    for (const [query, code] of [
      ["limit=0", "invalid_request"],
      ["limit=1001", "invalid_request"],
      ["limit=-1", "invalid_request"],
      ["limit=abc", "invalid_request"],
      ["cursor=" + "a".repeat(300), "invalid_request"],
      ["cursor=%2F%2F", "invalid_cursor"],
      ["cursor=" + Buffer.from("after:../etc").toString("base64url"), "invalid_cursor"],
      ["cursor=" + Buffer.from("sst2").toString("base64url"), "invalid_cursor"],
    ] as const) {
      const res = await rig.app.request(`/tasks?${query}`);
      expect(res.status, query).toBe(400);
      expect((await errorOf(res)).code, query).toBe(code);
    }
    expect((await rig.app.request("/tasks?limit=1000")).status).toBe(200);
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
    expect(await res.json()).toEqual({
      status: "ready",
      device: { requested: "cpu", device: "cpu", adapter: null, reason: "SKT_DEVICE=cpu" },
      store: { backend: "filesystem", state: "ok", reason: null },
    });
    // A shared store whose database is away: still ready (held adapters are served), and says so.
    rig.service.store = { backend: "postgres", state: "degraded", reason: "lost the adapter database" };
    res = await rig.app.request("/readyz");
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "ready", store: { backend: "postgres", state: "degraded" } });
    rig.service.device = {
      requested: "auto",
      device: "webgpu",
      adapter: "SwiftShader driver 5.0.0",
      reason: "SKT_DEVICE=auto: onnxruntime found a WebGPU adapter",
    };
    expect(await (await rig.app.request("/readyz")).json()).toMatchObject({
      device: { device: "webgpu", adapter: "SwiftShader driver 5.0.0" },
    });
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
    expect(lines[0]).toMatchObject({
      reqId: "req-42",
      method: "POST",
      path: "/classify",
      task: "sst2",
      status: 200,
      level: "info",
    });
    expect(typeof lines[0].ms).toBe("number");
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
        "/admin/adapters/{task}/activate",
        "/admin/adapters/{task}/eval-set",
        "/admin/adapters/{task}/rollback",
        "/admin/adapters/{task}/stats",
        "/admin/adapters/{task}/versions/{version}",
        "/admin/adapters/{task}/versions/{version}/report",
        "/admin/adapters/{task}/traffic",
        "/admin/audit",
        "/classify",
        "/embed",
        "/healthz",
        "/metrics",
        "/readyz",
        "/tasks",
      ].sort(),
    );
    expect(Object.keys(doc.paths["/admin/adapters/{task}"]).sort()).toEqual(["delete", "get", "put"]);
    expect(doc.paths["/classify"].post.responses).toHaveProperty("413");
    expect(doc.paths["/admin/adapters"].get.security).toEqual([{ adminToken: [] }]);
    expect(Object.keys(doc.paths["/admin/audit"].get.responses).sort()).toEqual([
      "200",
      "400",
      "401",
      "403",
      "429",
      "431",
      "500",
      "503",
    ]);
    expect(Object.keys(doc.paths["/admin/adapters/{task}"].put.responses)).toEqual(
      expect.arrayContaining(["401", "403", "429"]),
    );
    expect(doc.components.securitySchemes).toHaveProperty("adminToken");
    expect(doc.components.schemas).toHaveProperty("ClassifyRequest");
    expect(doc.components.schemas).toHaveProperty("TaskInfo");
  });

  it("serves the Swagger UI page at /docs, set up to load /openapi.json", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const init = await rig.app.request("/docs/init.js");
    expect(init.status).toBe(200);
    expect(init.headers.get("content-type")).toMatch(/javascript/);
    const script = await init.text();
    expect(script).toContain("SwaggerUIBundle(");
    expect(script).toContain('"url":"/openapi.json"');
  });

  it("/docs works offline: every file comes from the server (the installed package), no other host is named", async () => {
    const rig = makeRig();
    const html = await (await rig.app.request("/docs")).text();
    const scripts = [...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g)].map((m) => m[1]);
    const styles = [...html.matchAll(/<link[^>]*\bhref="([^"]+)"/g)].map((m) => m[1]);
    expect(scripts).toEqual(["/docs/swagger-ui-bundle.js", "/docs/init.js"]);
    expect(styles).toEqual(["/docs/swagger-ui.css"]);
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script>/); // no inline script
    const init = await (await rig.app.request("/docs/init.js")).text();
    expect(init).not.toMatch(/https?:\/\//);
    // The badge that would send the document to validator.swagger.io is off.
    expect(init).toContain('"validatorUrl":null');

    const pkgDir = path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
    for (const [file, type] of [
      ["swagger-ui-bundle.js", /javascript/],
      ["swagger-ui.css", /text\/css/],
    ] as const) {
      const res = await rig.app.request(`/docs/${file}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(type);
      const served = Buffer.from(await res.arrayBuffer());
      expect(served.equals(await readFile(path.join(pkgDir, file)))).toBe(true);
    }
    // The stylesheet loads nothing: its only url()s are inline data: URIs (no fonts, no images elsewhere).
    const css = await (await rig.app.request("/docs/swagger-ui.css")).text();
    const urls = [...css.matchAll(/url\(\s*["']?([^"')]*)/g)].map((m) => m[1]);
    expect(urls.length).toBeGreaterThan(0);
    for (const u of urls) expect(u).toMatch(/^data:/);
    expect(css).not.toMatch(/@import/);
  });

  it("an unknown file under /docs is a 404 in the error shape", async () => {
    const rig = makeRig();
    const res = await rig.app.request("/docs/swagger-ui.js.map"); // in the package, not served
    expect(res.status).toBe(404);
    expect((await errorOf(res)).code).toBe("route_not_found");
  });
});
