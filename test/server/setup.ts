/** Shared wiring for the server tests: an app around the fake service, captured logs, helpers. */
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { defaultConfig, type ServerConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
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

export function makeRig(config: Partial<ServerConfig> = {}, serviceOpts: FakeServiceOptions = {}): TestRig {
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split("\n")) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = createLogger({ level: "debug", destination: sink });
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

export interface ErrorJson {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export async function errorOf(res: Response): Promise<ErrorJson["error"]> {
  const body = (await res.json()) as ErrorJson;
  return body.error;
}

// ---- Prometheus text exposition, parsed with a small regex --------------------------------------

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL)) labels[l[1]] = l[2]!;
    const raw = m[3];
    const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : Number(raw);
    if (Number.isNaN(value) && raw !== "NaN") throw new Error(`bad value in: ${line}`);
    out.push({ name: m[1], labels, value });
  }
  return out;
}

/** Value of the sample with this name whose labels include `labels` (undefined when absent). */
export function sampleValue(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

export async function scrape(rig: TestRig): Promise<Sample[]> {
  const res = await rig.app.request("/metrics");
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}
