import { request as httpRequest } from "node:http";
import { describe, expect, it } from "vitest";
import { startServer } from "../../src/server/serve.js";
import { createLogger } from "../../src/logger.js";
import { makeRig } from "./setup.js";

describe("startServer", () => {
  it("serves over HTTP on the chosen port and closes gracefully", async () => {
    const rig = makeRig({ port: 0, host: "127.0.0.1" });
    const server = await startServer(rig.app, rig.config, rig.service, createLogger({ level: "silent" }), {
      handleSignals: false,
    });
    expect(server.port).toBeGreaterThan(0);
    const base = `http://127.0.0.1:${server.port}`;
    const health = await fetch(`${base}/healthz`);
    expect(await health.json()).toEqual({ status: "ok" });
    const res = await fetch(`${base}/classify?task=sst2`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ texts: ["a", "b"] }),
    });
    expect(res.status).toBe(200);

    await server.close();
    expect(rig.service.closeCalls).toBe(1);
    await server.close(); // idempotent
    expect(rig.service.closeCalls).toBe(1);
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
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
    const signal = rig.service.classifyCalls[0]!.signal!;
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
});
