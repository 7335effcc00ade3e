/**
 * The HTTP face of the server: middleware, routes and error mapping around an `InferenceService`.
 * No model logic lives here; `createApp` is pure wiring, so tests drive it with `app.request()`.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { requestId } from "hono/request-id";
import pkg from "../../package.json" with { type: "json" };
import { adminSecurityFromConfig, type AdminSecurity } from "./admin-security.js";
import type { AppDeps, AppEnv } from "./context.js";
import { createErrorHandler, notFoundHandler, validationHook } from "./errors.js";
import { requestLog } from "./middleware/request-log.js";
import { registerAdminRoutes } from "./routes/admin.js";
import { registerAuditRoutes } from "./routes/audit.js";
import { registerClassifyRoutes } from "./routes/classify.js";
import { registerDocsRoutes } from "./routes/docs.js";
import { registerEmbedRoutes } from "./routes/embed.js";
import { registerHealthRoutes } from "./routes/health.js";
import { registerTaskRoutes } from "./routes/tasks.js";
import { registerTrafficRoutes } from "./routes/traffic.js";

export type { AppDeps, AppEnv } from "./context.js";

export interface CreateAppOptions extends Omit<AppDeps, "adminSecurity"> {
  /** Default: built from `config` (reads and validates SKT_ADMIN_TOKENS_FILE; throws `invalid_config`). */
  adminSecurity?: AdminSecurity;
  /** Version shown in the OpenAPI document (default: the package version). */
  version?: string;
}

export function createApp(opts: CreateAppOptions): OpenAPIHono<AppEnv> {
  const deps: AppDeps = {
    service: opts.service,
    metrics: opts.metrics,
    config: opts.config,
    logger: opts.logger,
    adminSecurity: opts.adminSecurity ?? adminSecurityFromConfig(opts.config),
  };
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  app.use(requestId());
  app.use(requestLog(deps.logger));
  app.onError(createErrorHandler({ logger: deps.logger, retryAfterSeconds: deps.config.retryAfterSeconds }));
  app.notFound(notFoundHandler);

  registerHealthRoutes(app, deps);
  registerTaskRoutes(app, deps);
  registerClassifyRoutes(app, deps);
  registerEmbedRoutes(app, deps);
  registerAdminRoutes(app, deps);
  registerTrafficRoutes(app, deps);
  registerAuditRoutes(app, deps);
  registerDocsRoutes(app, opts.version ?? pkg.version);
  return app;
}
