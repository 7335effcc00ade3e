/**
 * What every route module receives, and the hono environment (typed context variables) they share.
 */
import type { HttpBindings } from "@hono/node-server";
import type { RequestIdVariables } from "hono/request-id";
import type { ServerConfig } from "../config.js";
import type { InferenceService } from "../engine/service.js";
import type { Logger } from "../logger.js";
import type { SktMetrics } from "../metrics.js";

export interface AppDeps {
  service: InferenceService;
  metrics: SktMetrics;
  config: ServerConfig;
  logger: Logger;
}

export type AppEnv = {
  /** Node's request and response when served by @hono/node-server; absent under `app.request()`. */
  Bindings: Partial<HttpBindings> | undefined;
  Variables: RequestIdVariables & {
    /** Aborts the engine call when the client goes away or the server-side deadline fires. */
    abort?: AbortController;
  };
};
