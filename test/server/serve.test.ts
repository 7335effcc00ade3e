import { request as httpRequest } from "node:http";
import net from "node:net";
import { SktClient } from "../../src/client/client.js";
import { serverErrorFrom } from "../helpers/server-error.js";
import { describe, expect, it } from "vitest";
import { startServer } from "../../src/server/serve.js";
import { createLogger } from "../../src/logger.js";
import { createContractChecker, type OpenApiDocument } from "../helpers/openapi-contract.js";
import { makeRig } from "./setup.js";

/** Sends raw bytes and returns the raw answer (the server closes the connection after it). */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(bytes));
    let out = "";
    socket.on("data", (d: Buffer) => (out += d.toString()));
    socket.on("end", () => resolve(out));
    socket.on("error", reject);
  });
}

function parseRawResponse(raw: string): Response {
  const [head, body = ""] = raw.split("\r\n\r\n", 2) as [string, string?];
  const [statusLine, ...headerLines] = head.split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = new Headers(
    headerLines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1).trim()] as [string, string]),
  );
  return new Response(body, { status, headers });
}

describe("startServer", () => {
  it("serves over HTTP on the chosen port and closes gracefully", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    expect(server.port).toBeGreaterThan(0);
    const client = new SktClient({ url: `http://127.0.0.1:${server.port}` });
    expect(await client.health()).toEqual({ status: "ok" });
    expect((await client.classify("sst2", ["a", "b"])).predictions).toHaveLength(2);

    await server.close();
    expect(rig.service.closeCalls).toBe(1);
    await server.close(); // idempotent
    expect(rig.service.closeCalls).toBe(1);
    expect(await serverErrorFrom(client.health())).toMatchObject({ status: 0, code: "unreachable" });
  });

  it("lets an in-flight request finish while shutting down", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    // Hold the request inside the engine until shutdown has begun.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((resolve) => {
      rig.service.onClassifyStart = () => resolve();
    });
    const original = rig.service.classify.bind(rig.service);
    rig.service.classify = async (req) => {
      const p = original(req);
      await gate;
      return p;
    };
    const pending = fetch(`http://127.0.0.1:${server.port}/classify?task=sst2`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text: "still here" }),
    });
    await started;
    const closing = server.close();
    release();
    const res = await pending;
    expect(res.status).toBe(200);
    await closing;
    expect(rig.service.closeCalls).toBe(1);
  });

  it("aborts the engine call when a real client disconnects", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    rig.service.hang = true;
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    const started = new Promise<void>((resolve) => {
      rig.service.onClassifyStart = () => resolve();
    });
    const body = JSON.stringify({ text: "a" });
    const req = httpRequest({
      host: "127.0.0.1",
      port: server.port,
      path: "/classify?task=sst2",
      method: "POST",
      headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) },
    });
    req.on("error", () => {});
    req.end(body);
    await started;
    const signal = rig.service.classifyCalls[0].signal!;
    const aborted = new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
    req.destroy();
    await aborted;
    expect(signal.aborted).toBe(true);
    await server.close();
  });

  it("on SIGTERM closes the service, stops listening and exits 0", async () => {
    // Only our handler listens here: process.emit calls listeners without sending a real signal.
    expect(process.listenerCount("SIGTERM")).toBe(0);
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    const exited = new Promise<number>((resolve) => {
      void startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
        exit: (code) => resolve(code),
      }).then((server) => {
        expect(process.listenerCount("SIGTERM")).toBe(1);
        expect(process.listenerCount("SIGINT")).toBe(1);
        process.emit("SIGTERM");
        return server;
      });
    });
    expect(await exited).toBe(0);
    expect(rig.service.closeCalls).toBe(1);
    expect(process.listenerCount("SIGTERM")).toBe(0);
    expect(process.listenerCount("SIGINT")).toBe(0);
  });

  it("answers requests Node's HTTP parser rejects in the API's error shape, as the document says", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    try {
      const doc = (await (await rig.app.request("/openapi.json")).json()) as OpenApiDocument;
      const checker = createContractChecker(doc);
      // Node's default limit on the request head is 16 KiB.
      const big = await rawExchange(
        server.port,
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
      );
      const tooLarge = parseRawResponse(big);
      expect(tooLarge.status).toBe(431);
      expect(tooLarge.headers.get("content-type")).toBe("application/json");
      expect(await checker.check("GET", "/healthz", tooLarge)).toEqual([]);
      expect(await tooLarge.json()).toEqual({
        error: { code: "headers_too_large", message: "The request headers are too large." },
      });

      const malformed = parseRawResponse(await rawExchange(server.port, "NOT HTTP AT ALL\r\n\r\n"));
      expect(malformed.status).toBe(400);
      expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe("malformed_http");

      // The server is still fine.
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
