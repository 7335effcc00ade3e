/**
 * The API contract: the served document passes Redocly's recommended rules, and the response
 * checker every HTTP test runs through (test/helpers/openapi-contract.ts) really catches drift.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../src/logger.js";
import { startServer } from "../../src/server/serve.js";
import { servedOpenApiDocument } from "../../scripts/lib/openapi-document.js";
import { formatLintReport, lintIsClean, redoclyLint } from "../../scripts/lib/redocly-lint.js";
import { defaultConfig } from "../../src/config.js";
import { createApp } from "../../src/server/app.js";
import {
  ContractViolation,
  checkResponsesFrom,
  createContractChecker,
  takeContractViolations,
  type OpenApiDocument,
} from "../helpers/openapi-contract.js";
import { makeRig } from "./setup.js";

const json = { "content-type": "application/json" };
const reply = (status: number, body: unknown, headers: Record<string, string> = json) =>
  new Response(body === undefined ? null : typeof body === "string" ? body : JSON.stringify(body), { status, headers });
const errorJson = (code: string) => ({ error: { code, message: `${code} happened` } });

const taskInfo = {
  task: "sst2",
  version: 1,
  variant: "prompt",
  pooling: true,
  labels: ["negative", "positive"],
  problem_type: "single_label_classification",
  prompt_text: "sentiment:",
  max_length: 128,
  parameters: 1234,
};

async function servedDocument(): Promise<OpenApiDocument> {
  return (await servedOpenApiDocument(defaultConfig())) as unknown as OpenApiDocument;
}

describe("the served OpenAPI document", () => {
  it("passes redocly lint (recommended rules, no ignore file) with no errors and no warnings", async () => {
    const report = await redoclyLint(await servedDocument());
    expect(lintIsClean(report), formatLintReport(report)).toBe(true);
  });

  it("lint counts a warning or an error as a failure (a missing operationId, a nullable without type)", async () => {
    const doc = structuredClone(await servedDocument()) as unknown as {
      paths: Record<string, Record<string, { operationId?: string }>>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    delete doc.paths["/healthz"].get.operationId;
    doc.components.schemas.TaskInfo.properties.version = { nullable: true };
    const report = await redoclyLint(doc);
    expect(lintIsClean(report)).toBe(false);
    const rules = report.problems.map((p) => p.ruleId);
    expect(rules).toContain("operation-operationId");
    expect(rules).toContain("nullable-type-sibling");
  });

  it("names every operation with a stable verb-first operationId, public routes with explicit empty security", async () => {
    const doc = (await servedDocument()) as unknown as {
      paths: Record<string, Record<string, { operationId: string; security: unknown[] }>>;
    };
    const ids = Object.fromEntries(
      Object.entries(doc.paths).flatMap(([p, ops]) =>
        Object.entries(ops).map(([m, op]) => [`${m.toUpperCase()} ${p}`, op.operationId]),
      ),
    );
    expect(ids).toMatchObject({
      "POST /classify": "classifyTexts",
      "GET /tasks": "listTasks",
      "GET /healthz": "getHealth",
      "GET /readyz": "getReadiness",
      "GET /metrics": "getMetrics",
      "GET /admin/adapters": "listAdapters",
      "GET /admin/adapters/{task}": "getAdapter",
      "PUT /admin/adapters/{task}": "uploadAdapter",
      "POST /admin/adapters/{task}/rollback": "rollbackAdapter",
      "DELETE /admin/adapters/{task}": "deleteAdapter",
      "GET /admin/adapters/{task}/traffic": "getTraffic",
      "PUT /admin/adapters/{task}/traffic": "setTraffic",
    });
    expect(new Set(Object.values(ids)).size).toBe(Object.keys(ids).length);
    expect(doc.paths["/classify"].post.security).toEqual([]);
    expect(doc.paths["/admin/adapters/{task}"].put.security).toEqual([{ adminToken: [] }]);
  });

  it("the contract checker's document (the app's route registry) is the one /openapi.json serves", async () => {
    const rig = makeRig();
    const served = (await (await rig.app.request("/openapi.json")).json()) as OpenApiDocument;
    const registry = rig.app.getOpenAPIDocument({ openapi: "3.0.3", info: { title: "t", version: "0" } });
    expect(registry.paths).toEqual(served.paths);
    expect(registry.components).toEqual(served.components);
  });
});

describe("the contract checker", () => {
  it("accepts responses that match the document (templates, nullable, empty bodies, text, HEAD)", async () => {
    const check = createContractChecker(await servedDocument()).check;
    expect(await check("GET", "/healthz", reply(200, { status: "ok" }))).toEqual([]);
    expect(await check("HEAD", "/healthz", reply(200, undefined))).toEqual([]);
    expect(
      await check(
        "GET",
        "/tasks",
        reply(200, { tasks: [{ ...taskInfo, label_count: 2, truncated: false }], total: 1, next_cursor: null }),
      ),
    ).toEqual([]);
    const uploaded = {
      ...taskInfo,
      sha256: "0".repeat(64),
      renamed_from: null,
      signature_dropped: false,
      active: true,
      current: taskInfo.version,
    };
    expect(await check("PUT", "http://localhost/admin/adapters/sst2", reply(201, uploaded))).toEqual([]);
    expect(
      await check("GET", "/admin/adapters/sst2", reply(200, { task: "sst2", current: null, versions: [] })),
    ).toEqual([]);
    expect(await check("DELETE", "/admin/adapters/sst2", reply(204, undefined, {}))).toEqual([]);
    expect(
      await check(
        "GET",
        "/metrics",
        reply(200, "# HELP x\nx 1\n", { "content-type": "text/plain; version=0.0.4; charset=utf-8" }),
      ),
    ).toEqual([]);
    expect(await check("POST", "/classify?task=sst2", reply(413, errorJson("too_many_texts")))).toEqual([]);
    // No such operation: a 4xx in the error shape is the only right answer.
    expect(await check("GET", "/nope", reply(404, errorJson("route_not_found")))).toEqual([]);
    expect(await check("POST", "/healthz", reply(404, errorJson("route_not_found")))).toEqual([]);
  });

  it("fails a status the operation does not declare", async () => {
    const check = createContractChecker(await servedDocument()).check;
    const problems = await check("POST", "/classify", reply(410, errorJson("gone")));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/status 410 is not declared for POST \/classify/);
    expect(await check("GET", "/healthz", reply(503, errorJson("not_ready")))).toHaveLength(1);
  });

  it("fails a body that breaks its schema: wrong type, missing field, undocumented field, wrong enum", async () => {
    const check = createContractChecker(await servedDocument()).check;
    const cases: Array<[string, string, Response, RegExp]> = [
      ["GET", "/healthz", reply(200, { status: "fine" }), /\/status must be equal to one of the allowed values/],
      [
        "GET",
        "/admin/adapters/sst2",
        reply(200, { task: "sst2", current: "1", versions: [] }),
        /\/current must be integer/,
      ],
      [
        "GET",
        "/tasks",
        reply(200, { tasks: [{ ...taskInfo, labels: undefined }] }),
        /must have required property 'labels'/,
      ],
      [
        "GET",
        "/tasks",
        reply(200, { tasks: [{ ...taskInfo, secret: "x" }] }),
        /must NOT have additional properties.*secret/,
      ],
      ["POST", "/classify", reply(400, { error: { code: "bad" } }), /must have required property 'message'/],
      ["POST", "/classify", reply(400, "not json at all"), /body is not JSON/],
    ];
    for (const [method, url, res, expected] of cases) {
      const problems = await check(method, url, res);
      expect(problems, `${method} ${url}`).toHaveLength(1);
      expect(problems[0]).toMatch(expected);
    }
  });

  it("fails an undeclared content type, a body where none is declared, an undocumented route that answers, a missing header", async () => {
    const check = createContractChecker(await servedDocument()).check;
    expect((await check("GET", "/tasks", reply(200, "tasks", { "content-type": "text/plain" })))[0]).toMatch(
      /content-type text\/plain is not declared/,
    );
    // (Response refuses to build a 204 with a body; a server could still send one.)
    const noContentWithBody = Object.defineProperty(reply(200, "x", { "content-type": "text/plain" }), "status", {
      value: 204,
    });
    expect((await check("DELETE", "/admin/adapters/sst2", noContentWithBody))[0]).toMatch(/declares no body/);
    expect((await check("GET", "/secret-route", reply(200, { ok: true })))[0]).toMatch(
      /no operation in the document, yet status 200/,
    );
    expect((await check("GET", "/nope", reply(404, "gone", { "content-type": "text/plain" })))[0]).toMatch(
      /not the Error schema: content-type text\/plain/,
    );
    expect((await check("GET", "/healthz/extra", reply(500, errorJson("internal"))))[0]).toMatch(/yet status 500/);
    // A required response header (429's Retry-After).
    expect((await check("POST", "/classify", reply(429, errorJson("queue_full"))))[0]).toMatch(
      /required header Retry-After is missing/,
    );
    expect(
      await check("POST", "/classify", reply(429, errorJson("queue_full"), { ...json, "retry-after": "1" })),
    ).toEqual([]);
  });
});

describe("every HTTP test is checked (withContractCheck in makeRig)", () => {
  it("app.request throws on a route that answers outside the document, and the violation is recorded", async () => {
    const rig = makeRig();
    rig.app.get("/undocumented", (c) => c.json({ ok: true }));
    rig.app.openapi(
      createRoute({
        method: "get",
        path: "/drifted",
        operationId: "getDrifted",
        security: [],
        responses: {
          200: { description: "ok", content: { "application/json": { schema: z.object({ n: z.number() }) } } },
        },
      }),
      // A handler that drifted from its definition (the cast is the drift).
      (c) => c.json({ n: "one" } as unknown as { n: number }, 200),
    );
    await expect(rig.app.request("/undocumented")).rejects.toThrow(ContractViolation);
    await expect(rig.app.request("/drifted")).rejects.toThrow(/\/n must be number/);
    const seen = takeContractViolations(); // taken, so this test's own afterEach check passes
    expect(seen).toHaveLength(2);
    expect(seen[0]).toMatch(/GET \/undocumented → 200: no operation in the document/);
  });

  it("a real server on the app: the violation is recorded even though the server turns the throw into a 500", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    rig.app.get("/undocumented", (c) => c.json({ ok: true }));
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/undocumented`);
      expect(res.status).toBe(500);
      await res.arrayBuffer();
      const seen = takeContractViolations();
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(/GET \/undocumented → 200/);
    } finally {
      await server.close();
    }
  });

  it("a server registered with checkResponsesFrom (how child-process servers are checked): global fetch throws", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    // A plain app, as a child process runs it: only the global fetch wrapper checks it.
    const app = createApp({
      service: rig.service,
      metrics: rig.metrics,
      config: rig.config,
      logger: createLogger({ level: "silent" }),
    });
    app.get("/undocumented", (c) => c.json({ ok: true }));
    const server = await startServer(app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    try {
      const base = `http://127.0.0.1:${server.port}`;
      const before = await fetch(`${base}/undocumented`); // not registered yet: unchecked
      expect(before.status).toBe(200);
      await before.arrayBuffer();
      checkResponsesFrom(base);
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      await expect(fetch(`${base}/undocumented`)).rejects.toThrow(
        /GET \/undocumented → 200: no operation in the document/,
      );
      expect(takeContractViolations()).toHaveLength(1);
    } finally {
      await server.close();
    }
  });
});
