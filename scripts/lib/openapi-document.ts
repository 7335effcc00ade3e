/**
 * The OpenAPI document exactly as the server serves it: the real app (`createApp`) built in-process
 * with the given settings, asked for `GET /openapi.json`. The document is generated from the route
 * definitions alone, so no model is loaded: the app gets a service that is never ready and refuses
 * every call (nothing here calls it).
 *
 * Dev tooling (the `lint:api` script): it may import from src/, but nothing in src/ imports it.
 */
import type { ServerConfig } from "../../src/config.js";
import type { InferenceService } from "../../src/engine/service.js";
import { SktError } from "../../src/errors.js";
import { createLogger } from "../../src/logger.js";
import { createMetrics } from "../../src/metrics.js";
import { createApp } from "../../src/server/app.js";
import { OPENAPI_PATH } from "../../src/server/routes/docs.js";

/** A service with no engine behind it; a Proxy, so methods added to the interface later are covered. */
function serviceWithoutEngine(): InferenceService {
  const refuse = () =>
    Promise.reject(new SktError("not_ready", "not_ready", "No engine: this app only serves its OpenAPI document."));
  return new Proxy({} as InferenceService, {
    get: (_target, name) => (name === "isReady" || name === "hasTask" ? () => false : refuse),
  });
}

export async function servedOpenApiDocument(config: ServerConfig): Promise<Record<string, unknown>> {
  const app = createApp({
    service: serviceWithoutEngine(),
    metrics: createMetrics({ collectDefaults: false }),
    config,
    logger: createLogger({ level: "silent" }),
  });
  const res = await app.request(OPENAPI_PATH);
  if (res.status !== 200) throw new Error(`GET ${OPENAPI_PATH} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}
