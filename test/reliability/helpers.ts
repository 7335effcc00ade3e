/**
 * Shared wiring for the reliability suites: the REAL engine behind the real app (in-process, driven
 * with `app.request`), the real server as a child process, and small assertions every suite uses.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { AUDIT_FILE_NAME } from "../../src/server/audit/audit-log.js";
import type { ErrorBody } from "../../src/client/client.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { checkResponsesFrom, withContractCheck } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

export const ADMIN_TOKEN = "reliability-admin-token_0123456789";
export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };

// ---- the real engine behind the real app, in-process ---------------------------------------------

export interface EngineRig {
  engine: Engine;
  app: ReturnType<typeof createApp>;
  config: ServerConfig;
  /** A fresh temp folder that holds only `adapters/`, so writes outside the store can be seen. */
  root: string;
  adaptersDir: string;
  /** The engine's metrics (its own registry). */
  metrics: SktMetrics;
  close(): Promise<void>;
}

export async function startEngineRig(
  config: Partial<ServerConfig> = {},
  engineOverrides: Partial<EngineOptions> = {},
): Promise<EngineRig> {
  const root = await mkdtemp(path.join(os.tmpdir(), "skt-rel-"));
  const adaptersDir = path.join(root, "adapters");
  const cfg = defaultConfig({
    adminToken: ADMIN_TOKEN,
    adaptersDir,
    modelsDir: MODELS_DIR,
    // One single-thread worker, whatever the machine's default shape (a test about workers sets its own).
    workers: 1,
    threads: 1,
    // The batching the rig's tests were written against (single-thread workers default to 0.1).
    maxPaddingRatio: 0.25,
    maxWaitMs: 2,
    logLevel: "silent",
    // In-process requests share one client address; fuzzed wrong tokens must not lock the
    // authorized cases out with 429s (the limiter has its own tests).
    adminMaxAuthFailures: 1_000_000,
    ...config,
  });
  const metrics = createMetrics({ collectDefaults: false });
  const engine = await Engine.create({ ...cfg, metrics, ...engineOverrides });
  // Every response is checked against the app's own /openapi.json (test/helpers/openapi-contract.ts).
  const app = withContractCheck(
    createApp({ service: engine, metrics, config: cfg, logger: createLogger({ level: "silent" }) }),
  );
  return {
    engine,
    app,
    config: cfg,
    root,
    adaptersDir,
    metrics,
    async close() {
      await engine.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

// ---- the real server as a child process --------------------------------------------------------

export type { ServerProcess } from "../../scripts/lib/server-process.js";

export interface SpawnOptions {
  adaptersDir: string;
  /** Extra environment (e.g. SKT_QUEUE_SIZE). */
  env?: Record<string, string>;
  /** How long to wait for /readyz (default 90 s: the machine is shared). */
  readyWithinMs?: number;
}

/**
 * The server with this suite's defaults: its admin token, the built models, one thread, quiet logs.
 * Every response `fetch` gets from it is checked against the OpenAPI document.
 */
export async function spawnServer(opts: SpawnOptions): Promise<ServerProcess> {
  const server = await spawnServerProcess({
    adaptersDir: opts.adaptersDir,
    env: {
      SKT_ADMIN_TOKEN: ADMIN_TOKEN,
      SKT_MODELS_DIR: MODELS_DIR,
      SKT_LOG_LEVEL: "warn",
      SKT_THREADS: "1",
      ...opts.env,
    },
    readyWithinMs: opts.readyWithinMs ?? 90_000,
    // The test's temporary folder: nothing the server writes can land in the repository.
    cwd: path.dirname(path.resolve(opts.adaptersDir)),
  });
  checkResponsesFrom(server.base);
  return server;
}

// ---- assertions and small utilities -----------------------------------------------------------

/** Reads the body and checks it is exactly `{"error": {"code", "message"[, "details"]}}`. */
export async function expectErrorBody(res: Response): Promise<ErrorBody["error"]> {
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`status ${res.status} with a non-JSON body: ${text.slice(0, 200)}`);
  }
  expect(res.headers.get("content-type") ?? "").toMatch(/application\/json/);
  expect(Object.keys(body as object)).toEqual(["error"]);
  const err = (body as ErrorBody).error;
  expect(typeof err.code).toBe("string");
  expect(err.code.length).toBeGreaterThan(0);
  expect(typeof err.message).toBe("string");
  expect(err.message.length).toBeGreaterThan(0);
  for (const k of Object.keys(err)) expect(["code", "message", "details"]).toContain(k);
  return err;
}

/** Every file and folder under `dir`, relative and sorted (e.g. ["adapters", "adapters/a", ...]),
 * except the admin audit log (`adapters/audit.jsonl`), which every admin action appends to by design. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string) => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(path.join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = rel ? `${rel}/${e.name}` : e.name;
      if (e.name === AUDIT_FILE_NAME) continue;
      out.push(p);
      if (e.isDirectory()) await walk(p);
    }
  };
  await walk("");
  return out.sort();
}

// ---- raw connections (what fetch cannot send: cut bodies, bad framing, odd request targets) ----

export interface RawExchangeOptions {
  /** After sending: destroy the socket, half-close it (FIN) and read, or just read (default). */
  then?: "destroy" | "half-close" | "read";
  /** Stop reading after this long (default 15 s); whatever arrived is returned. */
  readForMs?: number;
}

/** Sends `parts` one write at a time on a loopback connection; resolves with what came back ("" if nothing). */
export function rawExchange(
  port: number,
  parts: (string | Uint8Array)[],
  opts: RawExchangeOptions = {},
): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let got = "";
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, opts.readForMs ?? 15_000);
    socket.on("data", (d) => (got += d.toString("latin1")));
    socket.on("close", done);
    socket.on("error", () => undefined);
    socket.on("connect", () => {
      void (async () => {
        for (const p of parts) await new Promise<void>((r) => socket.write(p, () => r()));
        // A moment for the bytes to reach the server before the connection goes away.
        if (opts.then === "destroy") setTimeout(done, 30);
        else if (opts.then === "half-close") socket.end();
      })();
    });
  });
}

/** Status, lower-cased headers and body of the first HTTP response in raw text. */
export function parseRawResponse(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const split = raw.indexOf("\r\n\r\n");
  if (!raw.startsWith("HTTP/1.1 ") || split < 0)
    throw new Error(`not an HTTP response: ${JSON.stringify(raw.slice(0, 200))}`);
  const [statusLine, ...lines] = raw.slice(0, split).split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.slice(split + 4);
  if (headers["content-length"] !== undefined) body = body.slice(0, Number(headers["content-length"]));
  return { status: Number(statusLine.split(" ")[1]), headers, body };
}

/** Checks a raw response is a JSON error of `status`; returns its code. */
export function expectRawError(raw: string, status: number): string {
  const res = parseRawResponse(raw);
  expect(res.status, raw.slice(0, 300)).toBe(status);
  expect(res.headers["content-type"] ?? "(no content-type)", raw.slice(0, 300)).toMatch(/application\/json/);
  const body = JSON.parse(res.body) as ErrorBody;
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error.message.length).toBeGreaterThan(0);
  return body.error.code;
}

/** Sum of a Prometheus series' samples whose labels include `labels` (0 when none). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`)))
      sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}
