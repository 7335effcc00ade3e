/**
 * What every route module receives, and the hono environment (typed context variables) they share.
 */
import type { HttpBindings } from "@hono/node-server";
import type { RequestIdVariables } from "hono/request-id";
import type { ServerConfig } from "../config.js";
import type { InferenceService } from "../engine/service.js";
import type { Logger } from "../logger.js";
import type { SktMetrics } from "../metrics.js";
import type { AdminSecurity } from "./admin-security.js";
import type { AdminIdentity } from "./auth/tokens.js";
import type { AuditSubject } from "./middleware/admin-audit.js";

export interface AppDeps {
  service: InferenceService;
  metrics: SktMetrics;
  config: ServerConfig;
  logger: Logger;
  /** Admin tokens, failed-attempt limiter and audit log. */
  adminSecurity: AdminSecurity;
}

export type AppEnv = {
  /** Node's request and response when served by @hono/node-server; absent under `app.request()`. */
  Bindings: Partial<HttpBindings> | undefined;
  Variables: RequestIdVariables & {
    /** Aborts the engine call when the client goes away or the server-side deadline fires. */
    abort?: AbortController;
    /** The inference request's deadline (ms since epoch), computed once on arrival (see deadlineBackstop). */
    deadline?: number;
    /** The admin token that was accepted (set by the admin auth middleware). */
    admin?: AdminIdentity;
    /** Facts a route adds to its audit entry (see `noteAudit`). */
    auditSubject?: AuditSubject;
    /** Leave this request out of the audit log (repeated 429s). */
    auditSkip?: boolean;
  };
};
