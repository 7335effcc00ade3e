/**
 * Untrusted uploads against the real engine, over a real HTTP socket (so paths reach the server
 * exactly as sent, without a client normalizing `..`): auth first; task names validated, with no
 * write anywhere outside the adapters folder; the size limit enforced while the body streams in;
 * another task's file refused; only safetensors accepted (pickle, zip, JSON, GGUF, ONNX refused,
 * and nothing in them runs).
 */
import http from "node:http";
import { existsSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADAPTER_ERROR_CODES } from "../../src/adapters/format.js";
import { createApp } from "../../src/server/app.js";
import { startServer, type RunningServer } from "../../src/server/serve.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { rawFile } from "../helpers/random-adapter.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { ADMIN_TOKEN, adminHeaders, expectErrorBody, listTree, startEngineRig, type EngineRig } from "./helpers.js";

const LIMIT = 1024 * 1024; // a small upload limit, so streaming past it is cheap
let rig: EngineRig;
let server: RunningServer;
let v1: Uint8Array;

beforeAll(async () => {
  rig = await startEngineRig({ maxUploadBytes: LIMIT, host: "127.0.0.1", port: 0 });
  server = await startServer(rig.app, rig.config, rig.engine, createLogger({ level: "silent" }), {
    handleSignals: false,
  });
  v1 = servableAdapterBytes(rig.engine.assets, { task: "guarded", seed: 1 });
  expect(
    (await send("PUT", "/admin/adapters/guarded", { ...adminHeaders, "content-type": "application/octet-stream" }, v1))
      .status,
  ).toBe(201);
});

afterAll(async () => {
  await server?.close(); // also closes the engine
  await rig?.close();
});

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request with the path sent byte for byte as given (node's http client does not normalize). */
function send(
  method: string,
  urlPath: string,
  headers: Record<string, string> = {},
  body?: Uint8Array,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port: server.port,
        method,
        path: urlPath,
        headers: { ...headers, ...(body ? { "content-length": String(body.length) } : {}) },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
      },
    );
    req.on("error", reject);
    req.end(body ? Buffer.from(body) : undefined);
  });
}

async function errorOf(r: RawResponse): Promise<{ code: string; message: string }> {
  return expectErrorBody(
    new Response(r.text, { status: r.status, headers: { "content-type": String(r.headers["content-type"]) } }),
  );
}

const octet = { ...adminHeaders, "content-type": "application/octet-stream" };

describe("auth comes first", () => {
  const routes: Array<[string, string]> = [
    ["GET", "/admin/adapters"],
    ["GET", "/admin/adapters/guarded"],
    ["PUT", "/admin/adapters/guarded"],
    ["POST", "/admin/adapters/guarded/rollback"],
    ["DELETE", "/admin/adapters/guarded"],
    ["PUT", "/admin/adapters/..%2f..%2fescape"],
  ];
  const cases: Array<[string, Record<string, string>, number, string]> = [
    ["no token", {}, 401, "unauthorized"],
    ["a wrong token", { authorization: "Bearer not-the-token" }, 401, "invalid_token"],
    ["the token with a wrong case", { authorization: `Bearer ${ADMIN_TOKEN.toUpperCase()}` }, 401, "invalid_token"],
    ["the token as a prefix", { authorization: `Bearer ${ADMIN_TOKEN}x` }, 401, "invalid_token"],
    [
      "Basic auth",
      { authorization: `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64")}` },
      400,
      "invalid_authorization_header",
    ],
    ["an empty bearer", { authorization: "Bearer " }, 400, "invalid_authorization_header"],
  ];
  for (const [what, headers, status, code] of cases) {
    it(`${what} → ${status} ${code} on every admin route, nothing changes`, async () => {
      const before = await listTree(rig.root);
      for (const [method, p] of routes) {
        const r = await send(
          method,
          p,
          { ...headers, "content-type": "application/octet-stream" },
          method === "PUT" ? v1 : undefined,
        );
        expect(r.status, `${method} ${p}`).toBe(status);
        expect((await errorOf(r)).code).toBe(code);
      }
      expect(await listTree(rig.root)).toEqual(before);
      expect(rig.engine.registry.currentVersion("guarded")).toBe(1);
    });
  }

  it("with no admin token configured every admin route is 403 admin_disabled, even with a bearer header", async () => {
    const app = createApp({
      service: rig.engine,
      metrics: createMetrics({ collectDefaults: false }),
      config: { ...rig.config, adminToken: undefined },
      logger: createLogger({ level: "silent" }),
    });
    const before = await listTree(rig.root);
    for (const [method, p] of routes) {
      for (const headers of [{}, adminHeaders, { authorization: "Bearer anything" }]) {
        const res = await app.request(p, {
          method,
          headers: { ...headers, "content-type": "application/octet-stream" },
          ...(method === "PUT" ? { body: v1 as Uint8Array<ArrayBuffer> } : {}),
        });
        expect(res.status).toBe(403);
        expect((await expectErrorBody(res)).code).toBe("admin_disabled");
      }
    }
    expect(await listTree(rig.root)).toEqual(before);
  });
});

describe("task names in the URL cannot reach outside the adapters folder", () => {
  const escapeFile = () => servableAdapterBytes(rig.engine.assets, { task: "escape", seed: 5 });
  const ATTEMPTS = [
    "/admin/adapters/..%2f..%2fescape",
    "/admin/adapters/..%2Fescape",
    "/admin/adapters/%2e%2e%2fescape",
    "/admin/adapters/%2E%2E%2F%2E%2E%2Fescape",
    "/admin/adapters/..%252f..%252fescape",
    "/admin/adapters/%252e%252e%252fescape",
    "/admin/adapters/..%5cescape",
    "/admin/adapters/..%5c..%5cescape",
    "/admin/adapters/../escape",
    "/admin/adapters/../../escape",
    "/admin/adapters/..",
    "/admin/adapters/.",
    "/admin/adapters/%2e%2e",
    "/admin/adapters/%2e",
    "/admin/adapters/%c0%ae%c0%ae%2fescape",
    "/admin/adapters/%e0%80%ae%e0%80%ae",
    "/admin/adapters/escape%00",
    "/admin/adapters/escape%00.safetensors",
    "/admin/adapters/escape%2f..%2f..%2fx",
    "/admin/adapters/escape/..%2f..%2fx",
    "/admin/adapters/escape%2fv000001.safetensors",
    "/admin/adapters/%2fetc%2fpasswd",
    "/admin/adapters/%2Ftmp%2Fescape",
    "/admin/adapters/ESCAPE",
    "/admin/adapters/escape%20",
    "/admin/adapters/escape%0a",
    "/admin/adapters/%ef%bd%85scape", // fullwidth e
    "/admin/adapters/.tmp-escape",
    "/admin/adapters/CURRENT",
    "/admin/adapters/" + "a".repeat(65),
    "/admin/adapters/" + "%2e%2e%2f".repeat(300) + "escape",
    "/admin/adapters//escape",
    "//admin/adapters/escape",
    "/admin/adapters/escape/",
    "/admin//adapters/escape",
    "/admin/adapters/escape;../../x",
    "/admin/adapters/%",
    "/admin/adapters/%zz",
  ];

  it.each(ATTEMPTS)("PUT %s is refused (4xx, our error body) and writes nothing", async (p) => {
    const before = await listTree(rig.root);
    const r = await send("PUT", p, octet, escapeFile());
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    await errorOf(r);
    expect(await listTree(rig.root)).toEqual(before);
  });

  it("the same names on GET, DELETE and rollback are refused too; nothing is read or removed", async () => {
    const before = await listTree(rig.root);
    for (const p of ATTEMPTS) {
      for (const [method, suffix] of [
        ["GET", ""],
        ["DELETE", ""],
        ["POST", "/rollback"],
      ] as const) {
        const r = await send(
          method,
          p + suffix,
          { ...adminHeaders, "content-type": "application/json" },
          method === "POST" ? new TextEncoder().encode("{}") : undefined,
        );
        expect(r.status, `${method} ${p}${suffix}`).toBeGreaterThanOrEqual(400);
        expect(r.status).toBeLessThan(500);
        await errorOf(r);
      }
    }
    expect(await listTree(rig.root)).toEqual(before);
    expect(rig.engine.registry.currentVersion("guarded")).toBe(1);
  });

  it("a valid name writes only inside adapters/<name>", async () => {
    const before = await listTree(rig.root);
    const r = await send("PUT", "/admin/adapters/escape", octet, escapeFile());
    expect(r.status).toBe(201);
    const added = (await listTree(rig.root)).filter((p) => !before.includes(p));
    expect(added.sort()).toEqual(["adapters/escape", "adapters/escape/CURRENT", "adapters/escape/v000001.safetensors"]);
    expect((await send("DELETE", "/admin/adapters/escape", adminHeaders)).status).toBe(204);
    expect(await listTree(rig.root)).toEqual(before);
  });

  it("a file whose metadata names a traversal task is refused as bad metadata", async () => {
    const bad = rawFile({ __metadata__: { task: "../escape" } });
    const r = await send("PUT", "/admin/adapters/escape", octet, bad);
    expect(r.status).toBe(422);
    expect(await listTree(rig.root)).not.toContain("adapters/escape");
  });
});

describe("the size limit is enforced while the body streams", () => {
  /** Streams `total` bytes chunked (no Content-Length) until the response arrives; returns it with the bytes sent by then. */
  function streamUpload(
    total: number,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; text: string; sentWhenAnswered: number; sent: number }> {
    return new Promise((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const chunk = Buffer.alloc(64 * 1024, 0x41);
      const req = http.request({
        host: "127.0.0.1",
        port: server.port,
        method: "PUT",
        path: "/admin/adapters/guarded",
        headers: { ...octet, ...headers },
      });
      req.on("response", (res) => {
        answered = true;
        const sentWhenAnswered = sent;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          req.destroy();
          resolve({ status: res.statusCode!, text, sentWhenAnswered, sent });
        });
      });
      req.on("error", (e) => {
        if (!answered) reject(e); // EPIPE/ECONNRESET after the answer is expected
      });
      const pump = () => {
        while (!answered && sent < total) {
          sent += chunk.length;
          if (!req.write(chunk)) return void req.once("drain", pump);
        }
        if (!answered) req.end();
      };
      pump();
    });
  }

  it("a chunked body 64× over the limit gets 413 upload_too_large long before it has all been sent", async () => {
    const before = await listTree(rig.root);
    const total = 64 * LIMIT;
    const r = await streamUpload(total);
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text).error.code).toBe("upload_too_large");
    console.log(
      `[upload-safety] 413 after ${(r.sentWhenAnswered / 2 ** 20).toFixed(1)} MiB of a ${total / 2 ** 20} MiB chunked upload (limit ${LIMIT / 2 ** 20} MiB)`,
    );
    expect(r.sentWhenAnswered).toBeLessThan(total / 2);
    expect(await listTree(rig.root)).toEqual(before);
    expect(rig.engine.registry.currentVersion("guarded")).toBe(1);
  });

  it("a declared Content-Length over the limit is refused before the body is read", async () => {
    const r = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = http.request(
        {
          host: "127.0.0.1",
          port: server.port,
          method: "PUT",
          path: "/admin/adapters/guarded",
          headers: { ...octet, "content-length": String(1024 * LIMIT) },
        },
        (res) => {
          let text = "";
          res.on("data", (d) => (text += d));
          res.on("end", () => {
            req.destroy();
            resolve({ status: res.statusCode!, text });
          });
        },
      );
      req.on("error", () => undefined);
      req.write(Buffer.alloc(1024)); // 1 KiB of a declared 1 GiB, then wait for the answer
      req.on("timeout", () => reject(new Error("no answer")));
    });
    expect(r.status).toBe(413);
    expect(JSON.parse(r.text).error.code).toBe("upload_too_large");
  });

  it("the server answers normally afterwards", async () => {
    const r = await send(
      "POST",
      "/classify?task=guarded",
      { "content-type": "application/json" },
      new TextEncoder().encode('{"text":"fine"}'),
    );
    expect(r.status).toBe(200);
  });
});

describe("an upload may only replace its own task", () => {
  it("another task's valid adapter → 422 task_mismatch; neither task changes", async () => {
    const other = servableAdapterBytes(rig.engine.assets, { task: "someone-else", seed: 9 });
    const before = await listTree(rig.root);
    const r = await send("PUT", "/admin/adapters/guarded", octet, other);
    expect(r.status).toBe(422);
    expect((await errorOf(r)).code).toBe("task_mismatch");
    expect(await listTree(rig.root)).toEqual(before);
    expect(rig.engine.registry.currentVersion("guarded")).toBe(1);
    expect(rig.engine.hasTask("someone-else")).toBe(false);
    // And to a task that does not exist yet: refused the same way, no folder created.
    const r2 = await send("PUT", "/admin/adapters/brand-new", octet, other);
    expect(r2.status).toBe(422);
    expect((await errorOf(r2)).code).toBe("task_mismatch");
    expect(await listTree(rig.root)).toEqual(before);
  });
});

describe("only safetensors adapters are accepted; nothing in a file runs", () => {
  const canary = () => path.join(rig.root, "pwned");
  const formats: Array<[string, () => Uint8Array]> = [
    // A protocol-0 pickle that would run `touch <root>/pwned` if anything unpickled it.
    ["a pickle (os.system payload)", () => new TextEncoder().encode(`cos\nsystem\n(S'touch ${canary()}'\ntR.`)],
    [
      "a protocol-4 pickle",
      () =>
        new Uint8Array([
          0x80,
          0x04,
          0x95,
          0x1f,
          0,
          0,
          0,
          0,
          0,
          0,
          0,
          0x8c,
          0x02,
          0x6f,
          0x73,
          0x94,
          0x8c,
          0x06,
          ...new TextEncoder().encode("system"),
          0x94,
          0x93,
          0x94,
          0x2e,
        ]),
    ],
    [
      "a zip (torch.save format)",
      () =>
        new Uint8Array([
          0x50,
          0x4b,
          0x03,
          0x04,
          0x14,
          0,
          0,
          0,
          0x08,
          0,
          ...new TextEncoder().encode("archive/data.pkl"),
          ...new Uint8Array(64),
        ]),
    ],
    ["JSON", () => new TextEncoder().encode(JSON.stringify({ weights: [1, 2, 3], task: "guarded" }))],
    ["GGUF", () => new Uint8Array([0x47, 0x47, 0x55, 0x46, 3, 0, 0, 0, ...new Uint8Array(56)])],
    [
      "ONNX protobuf",
      () =>
        new Uint8Array([
          0x08,
          0x07,
          0x12,
          0x07,
          ...new TextEncoder().encode("pytorch"),
          0x1a,
          0x03,
          ...new TextEncoder().encode("2.1"),
          ...new Uint8Array(32),
        ]),
    ],
    [
      "a JavaScript module",
      () => new TextEncoder().encode(`import fs from "node:fs"; fs.writeFileSync(${JSON.stringify(canary())}, "x");`),
    ],
    [
      "a safetensors model that is not an adapter",
      () => rawFile({ weight: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8)),
    ],
    [
      "safetensors with an object-dtype tensor",
      () =>
        rawFile(
          {
            __metadata__: { format: "sk-tuning-adapter" },
            "head.weight": { dtype: "O", shape: [1], data_offsets: [0, 8] },
          },
          new Uint8Array(8),
        ),
    ],
    [
      "safetensors whose metadata carries code",
      () =>
        rawFile({
          __metadata__: {
            format: "sk-tuning-adapter",
            format_version: "1",
            code: "require('child_process').execSync('touch /tmp/x')",
          },
        }),
    ],
  ];

  it.each(formats)("%s → 422 with a format error; nothing written, nothing run", async (_what, make) => {
    const before = await listTree(rig.root);
    const r = await send("PUT", "/admin/adapters/guarded", octet, make());
    expect(r.status).toBe(422);
    expect(ADAPTER_ERROR_CODES as readonly string[]).toContain((await errorOf(r)).code);
    expect(await listTree(rig.root)).toEqual(before);
    expect(existsSync(canary())).toBe(false);
    expect(rig.engine.registry.currentVersion("guarded")).toBe(1);
  });

  it("the same bodies sent as application/json or text/plain → 415", async () => {
    for (const [, make] of formats) {
      for (const type of ["application/json", "text/plain", "application/x-python-pickle", "application/zip"]) {
        const r = await send("PUT", "/admin/adapters/guarded", { ...adminHeaders, "content-type": type }, make());
        expect(r.status).toBe(415);
        expect((await errorOf(r)).code).toBe("unsupported_media_type");
      }
    }
  });
});
