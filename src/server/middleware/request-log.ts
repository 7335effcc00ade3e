/**
 * One log line per request, carrying the request id that hono's `requestId` middleware assigned
 * (also returned to the client as `X-Request-Id`). Probe and scrape routes log at debug so a
 * health check every few seconds does not drown the log at the default level.
 */
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../../logger.js";
import type { AppEnv } from "../context.js";

/** Probe and scrape routes: logged at debug whatever their status (a 503 from /readyz while starting). */
export const QUIET_PATHS: ReadonlySet<string> = new Set(["/healthz", "/readyz", "/metrics"]);

export function requestLog(logger: Logger): MiddlewareHandler<AppEnv> {
  return async function requestLog(c, next) {
    const start = performance.now();
    await next();
    const reqId = c.get("requestId");
    // Responses built from an HTTPException's own Response do not carry prepared headers.
    if (reqId && !c.res.headers.has("X-Request-Id")) {
      try {
        c.res.headers.set("X-Request-Id", reqId);
      } catch {
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set("X-Request-Id", reqId);
      }
    }
    logRequest(logger, {
      reqId,
      method: c.req.method,
      path: c.req.path,
      task: c.req.path === "/classify" ? c.req.query("task") : undefined,
      status: c.res.status,
      started: start,
    });
  };
}

/** One answered request, as its log line records it. */
export interface RequestLine {
  reqId: string | undefined;
  method: string;
  path: string;
  /** /classify's first `task` parameter, if any. */
  task: string | undefined;
  status: number;
  /** performance.now() when the request arrived. */
  started: number;
}

/** Writes a request's line (also used by the /classify fast lane, which runs outside hono). */
export function logRequest(logger: Logger, r: RequestLine): void {
  const line = {
    reqId: r.reqId,
    method: r.method,
    path: r.path,
    ...(r.path === "/classify" ? { task: r.task?.slice(0, 100) } : {}),
    status: r.status,
    ms: Math.round((performance.now() - r.started) * 100) / 100,
  };
  if (QUIET_PATHS.has(r.path)) logger.debug(line, "request");
  else if (r.status >= 500) logger.warn(line, "request");
  else logger.info(line, "request");
}
