/**
 * The one place that turns failures into HTTP: `SktError.kind` → status, everything as
 * `{"error": {"code", "message"}}`. Unknown errors become a generic 500 (stack logged, never sent).
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Hook } from "@hono/zod-openapi";
import { SktError, isSktError, type ErrorKind } from "../errors.js";
import type { Logger } from "../logger.js";
import type { AppEnv } from "./context.js";

export const STATUS_BY_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  bad_request: 400,
  not_found: 404,
  too_large: 413,
  unsupported_media: 415,
  invalid_adapter: 422,
  conflict: 409,
  overloaded: 429,
  not_ready: 503,
  timeout: 504,
  storage: 507,
  internal: 500,
};

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export function errorBody(code: string, message: string, details?: Record<string, unknown>): ErrorBody {
  return { error: details ? { code, message, details } : { code, message } };
}

/** A JSON error response in our shape. */
export function errorResponse(
  c: Context,
  status: ContentfulStatusCode,
  code: string,
  message: string,
  details?: Record<string, unknown>,
): Response {
  return c.json(errorBody(code, message, details), status);
}

/** Codes for hono's own HTTPExceptions (validator, body limit, media-type gate, …). */
function codeForHttpStatus(status: number, message: string): { code: string; message: string } {
  if (status === 400 && /malformed json/i.test(message)) {
    return { code: "malformed_json", message: "The request body is not valid JSON." };
  }
  switch (status) {
    case 400:
      return { code: "bad_request", message: message || "Bad request." };
    case 401:
      return { code: "unauthorized", message: message || "Unauthorized." };
    case 404:
      return { code: "not_found", message: message || "Not found." };
    case 413:
      return { code: "payload_too_large", message: "The request body is too large." };
    case 415:
      return { code: "unsupported_media_type", message: "Unsupported Content-Type for this route." };
    case 504:
      return { code: "timeout", message: message || "The request deadline passed." };
    default:
      return { code: status >= 500 ? "internal" : "http_error", message: message || "Request failed." };
  }
}

export interface ErrorHandlerOptions {
  logger: Logger;
  retryAfterSeconds: number;
}

export function createErrorHandler(opts: ErrorHandlerOptions): ErrorHandler<AppEnv> {
  return (err, c) => {
    // An HTTPException may carry one of our errors as its cause (e.g. the timeout middleware).
    const cause = err instanceof HTTPException && isSktError(err.cause) ? err.cause : undefined;
    const skt = isSktError(err) ? err : cause;
    if (skt) {
      const status = STATUS_BY_KIND[skt.kind] ?? 500;
      if (skt.kind === "overloaded") c.header("Retry-After", String(opts.retryAfterSeconds));
      if (status >= 500) {
        // Bugs and disk failures need a human; not-ready and timeouts are load/lifecycle signals.
        const level = skt.kind === "internal" || skt.kind === "storage" ? "error" : "warn";
        opts.logger[level]({ reqId: c.get("requestId"), err: skt, code: skt.code }, "request failed");
      }
      if (skt.kind === "internal") return errorResponse(c, 500, "internal", "Internal server error.");
      // Details help clients fix their input (e.g. which tensor shape was wrong); never sent on 5xx.
      return errorResponse(c, status, skt.code, skt.message, status < 500 ? skt.details : undefined);
    }
    if (err instanceof HTTPException) {
      // Our own middleware (auth) builds its response in our shape already; pass it through.
      const res = err.res;
      if (res && (res.headers.get("content-type") ?? "").includes("application/json")) {
        return c.newResponse(res.body, res.status as ContentfulStatusCode, Object.fromEntries(res.headers));
      }
      const { code, message } = codeForHttpStatus(err.status, err.message);
      if (res) {
        const headers = Object.fromEntries(res.headers);
        delete headers["content-type"];
        delete headers["content-length"];
        return c.json(errorBody(code, message), err.status as ContentfulStatusCode, headers);
      }
      return errorResponse(c, err.status as ContentfulStatusCode, code, message);
    }
    opts.logger.error({ reqId: c.get("requestId"), err }, "unhandled error");
    return errorResponse(c, 500, "internal", "Internal server error.");
  };
}

export const notFoundHandler: NotFoundHandler<AppEnv> = (c) =>
  errorResponse(c, 404, "route_not_found", `No route for ${c.req.method} ${c.req.path}.`);

// ---- zod validation failures -------------------------------------------------------------------

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  origin?: string;
}

function fieldName(target: string, path: PropertyKey[]): string {
  const where = path.length === 0 ? (target === "json" ? "body" : target) : path.map(String).join(".");
  return where;
}

/**
 * The `defaultHook` for every OpenAPI route: turn a zod failure into an `SktError` naming the field.
 * `too_big` limits (texts per request, characters per text) are 413s; a bad task name in a path or
 * query is `invalid_task_name`; everything else is 400 `invalid_request`.
 */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return;
  const issues = result.error.issues as unknown as Issue[];
  const target = result.target;
  const first = issues.find((i) => i.code !== "too_big") ?? issues[0];
  if (!first) throw new SktError("bad_request", "invalid_request", "Invalid request.");
  const field = fieldName(target, first.path);
  if ((target === "param" || target === "query") && first.path[0] === "task") {
    throw new SktError("bad_request", "invalid_task_name", `task: ${first.message}`);
  }
  if (first.code === "too_big" && target === "json") {
    if (first.origin === "array") {
      throw new SktError("too_large", "too_many_texts", `${field}: ${first.message}`);
    }
    if (first.origin === "string") {
      throw new SktError("too_large", "text_too_long", `${field}: ${first.message}`);
    }
  }
  throw new SktError("bad_request", "invalid_request", `${field}: ${first.message}`);
};
