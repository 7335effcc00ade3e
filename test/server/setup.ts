/** Shared wiring for the server tests: an app around the fake service, captured logs, helpers. */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { createLogger, type Logger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import type { ErrorBody } from "../../src/client/client.js";
import { parseMetrics, type Sample } from "../../scripts/lib/prometheus.js";
import { FakeInferenceService, type FakeServiceOptions } from "../helpers/fake-service.js";
import { withContractCheck } from "../helpers/openapi-contract.js";

export const ADMIN_TOKEN = "test-admin-token_0123456789";

export interface TestRig {
  app: ReturnType<typeof createApp>;
  service: FakeInferenceService;
  metrics: ReturnType<typeof createMetrics>;
  config: ServerConfig;
  logs: Record<string, unknown>[];
}

/** A debug-level logger whose lines are parsed into `logs` as they are written. */
export function capturingLogger(): { logger: Logger; logs: Record<string, unknown>[] } {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  return { logger: createLogger({ level: "debug", destination: sink }), logs };
}

export function makeRig(config: Partial<ServerConfig> = {}, serviceOpts: FakeServiceOptions = {}): TestRig {
  const { logger, logs } = capturingLogger();
  const service = new FakeInferenceService(serviceOpts);
  const metrics = createMetrics({ collectDefaults: false });
  // Each rig audits to its own temp file (the default, inside SKT_ADAPTERS_DIR, is the repository's adapters/).
  const auditLog = path.join(mkdtempSync(path.join(os.tmpdir(), "skt-audit-")), "audit.jsonl");
  const cfg = defaultConfig({ adminToken: ADMIN_TOKEN, auditLog, ...config });
  // Every response is checked against the app's own /openapi.json (test/helpers/openapi-contract.ts).
  const app = withContractCheck(createApp({ service, metrics, config: cfg, logger }));
  return { app, service, metrics, config: cfg, logs };
}

export function postJson(rig: TestRig, path: string, body: unknown, headers: Record<string, string> = {}) {
  return rig.app.request(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export function auth(token = ADMIN_TOKEN): Record<string, string> {
  return { Authorization: `Bearer ${token}` };
}

export async function errorOf(res: Response): Promise<ErrorBody["error"]> {
  const body = (await res.json()) as ErrorBody;
  return body.error;
}

// ---- /metrics, parsed by the shared Prometheus reader (re-exported: the server tests use it through here)

export { parseMetrics, sampleValue, type Sample } from "../../scripts/lib/prometheus.js";

export async function scrape(rig: TestRig): Promise<Sample[]> {
  const res = await rig.app.request("/metrics");
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}
