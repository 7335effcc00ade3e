/**
 * The one place that turns failures into HTTP: `SktError.kind` → status, everything as
 * `{"error": {"code", "message"}}`. Unknown errors become a generic 500 (stack logged, never sent).
 */
import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Hook } from "@hono/zod-openapi";
import type { IncomingMessage } from "node:http";
import type { ServerConfig } from "../config.js";
import { SktError, isSktError, type ErrorKind } from "../errors.js";
import type { Logger } from "../logger.js";
import { CLIENT_CLOSED_STATUS, clientSideFailure } from "./connection.js";
import type { AppEnv } from "./context.js";
import { QUIET_PATHS } from "./middleware/request-log.js";

export const STATUS_BY_KIND: Record<ErrorKind, ContentfulStatusCode> = {
  bad_request: 400,
  not_found: 404,
  too_large: 413,
  unsupported_media: 415,
  invalid_adapter: 422,
  unprocessable: 422,
  conflict: 409,
  overloaded: 429,
  not_ready: 503,
  timeout: 504,
  request_timeout: 408,
  client_closed: CLIENT_CLOSED_STATUS,
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
    case 408:
      return { code: "request_timeout", message: message || "The request was not received completely in time." };
    case 504:
      return { code: "timeout", message: message || "The request deadline passed." };
    default:
      return { code: status >= 500 ? "internal" : "http_error", message: message || "Request failed." };
  }
}

export interface ErrorHandlerOptions extends Pick<ServerConfig, "retryAfterSeconds"> {
  /** Where 5xx answers are logged with their cause (client-side failures at debug). */
  logger: Logger;
}

/** A failure's answer: status, JSON body and headers (shared by hono's onError and the /classify fast lane). */
export interface FailureAnswer {
  status: ContentfulStatusCode;
  body: ErrorBody;
  headers: Record<string, string>;
}

/** Where a failure happened, for its log line. */
export interface FailureContext {
  reqId: string | undefined;
  path: string;
  /** Node's request, when served over HTTP (absent under `app.request()`). */
  incoming: IncomingMessage | undefined;
}

/**
 * The answer to any failure that is not one of hono's own HTTPExceptions without a cause: a client
 * that went away or sent what the parser refused, an `SktError` (mapped by kind), or a bug (500,
 * logged with its stack, never sent).
 */
export function failureAnswer(err: unknown, where: FailureContext, opts: ErrorHandlerOptions): FailureAnswer {
  // An HTTPException may carry one of our errors as its cause (e.g. the timeout middleware).
  const cause = err instanceof HTTPException && isSktError(err.cause) ? err.cause : undefined;
  const skt = isSktError(err) ? err : cause;
  // A client that went away or sent what the parser refused: not a server failure, whatever the
  // body reader threw ("aborted" and the like). Recorded as its own status, logged without a stack.
  const clientSide = clientSideFailure(where.incoming, skt ?? err);
  if (clientSide) {
    opts.logger.debug({ reqId: where.reqId, code: clientSide.code }, "request not received completely");
    return {
      status: clientSide.status,
      body: errorBody(clientSide.code, clientSide.message),
      headers: { Connection: "close" },
    };
  }
  if (skt) {
    const status = STATUS_BY_KIND[skt.kind] ?? 500;
    const headers: Record<string, string> = {};
    // Both clear by themselves (load, or a store whose database is back): say when to try again.
    if (skt.kind === "overloaded" || skt.kind === "not_ready") headers["Retry-After"] = String(opts.retryAfterSeconds);
    // The client is still sending: nothing more will be read from this connection.
    if (skt.kind === "request_timeout") headers.Connection = "close";
    if (status >= 500) logServerSide(opts.logger, where, skt);
    if (skt.kind === "internal") return { status: 500, body: errorBody("internal", "Internal server error."), headers };
    // Details help clients fix their input (e.g. which tensor shape was wrong); never sent on 5xx.
    return { status, body: errorBody(skt.code, skt.message, status < 500 ? skt.details : undefined), headers };
  }
  opts.logger.error({ reqId: where.reqId, err }, "unhandled error");
  return { status: 500, body: errorBody("internal", "Internal server error."), headers: {} };
}

export function createErrorHandler(opts: ErrorHandlerOptions): ErrorHandler<AppEnv> {
  return (err, c) => {
    const where: FailureContext = { reqId: c.get("requestId"), path: c.req.path, incoming: c.env?.incoming };
    // hono's own exceptions (validator, body limit, media-type gate), unless the client went away.
    if (err instanceof HTTPException && !isSktError(err.cause) && !clientSideFailure(where.incoming, err)) {
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
        return c.json(errorBody(code, message), err.status, headers);
      }
      return errorResponse(c, err.status, code, message);
    }
    const answer = failureAnswer(err, where, opts);
    for (const [name, value] of Object.entries(answer.headers)) c.header(name, value);
    return c.json(answer.body, answer.status);
  };
}

/**
 * Bugs and disk failures need a human: error level, with the stack and the details (paths, errno)
 * that the response leaves out. Not-ready, timeouts and running out of descriptors are load and
 * lifecycle signals: a warning without a stack, and for probes (/readyz during start-up) debug.
 */
function logServerSide(logger: Logger, where: FailureContext, skt: SktError): void {
  const reqId = where.reqId;
  if (skt.kind === "internal" || skt.kind === "storage") {
    logger.error({ reqId, err: skt, code: skt.code, details: skt.details }, "request failed");
    return;
  }
  const level = QUIET_PATHS.has(where.path) ? "debug" : "warn";
  logger[level](
    { reqId, code: skt.code, reason: skt.message, ...(skt.details ? { details: skt.details } : {}) },
    "request failed",
  );
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
