/**
 * Shared wiring for the reliability suites: the REAL engine behind the real app (in-process, driven
 * with `app.request`), the real server as a child process, and small assertions every suite uses.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { expect } from "vitest";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { AUDIT_FILE_NAME } from "../../src/server/audit/audit-log.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { checkResponsesFrom, withContractCheck } from "../helpers/openapi-contract.js";
import { MODELS_DIR } from "../helpers/paths.js";

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
    threads: 1,
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
  const app = withContractCheck(createApp({ service: engine, metrics, config: cfg, logger: createLogger({ level: "silent" }) }));
  return {
    engine,
    app,
    config: cfg,
    root,
    adaptersDir,
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
    env: { SKT_ADMIN_TOKEN: ADMIN_TOKEN, SKT_MODELS_DIR: MODELS_DIR, SKT_LOG_LEVEL: "warn", SKT_THREADS: "1", ...opts.env },
    readyWithinMs: opts.readyWithinMs ?? 90_000,
    // The test's temporary folder: nothing the server writes can land in the repository.
    cwd: path.dirname(path.resolve(opts.adaptersDir)),
  });
  checkResponsesFrom(server.base);
  return server;
}

// ---- assertions and small utilities -----------------------------------------------------------

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

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
