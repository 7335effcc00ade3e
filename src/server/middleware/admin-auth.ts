/**
 * Guards `/admin/*`, answering in our error shape:
 * - no token configured at all → 403 `admin_disabled`;
 * - the client failed too often lately → 429 `too_many_auth_failures` with `Retry-After`;
 * - no `Authorization` header → 401 `unauthorized`; a header that is not `Bearer <token68>` → 400
 *   `invalid_authorization_header`; an unknown token → 401 `invalid_token` (these two count as
 *   failed attempts);
 * - a known token without the route's scope → 403 `insufficient_scope`; one whose task glob does
 *   not match the task in the path → 403 `task_not_allowed`.
 * The accepted identity is left in `c.var.admin` for the routes and the audit log. The token itself
 * is never stored, logged or echoed.
 */
import type { MiddlewareHandler } from "hono";
import type { FailureLimiter } from "../auth/failure-limiter.js";
import { requiredScope, taskSegment } from "../auth/admin-request.js";
import { globMatches, type AdminTokens } from "../auth/tokens.js";
import type { AppEnv } from "../context.js";
import { errorResponse } from "../errors.js";
import { clientAddress } from "./client-address.js";

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const REALM = 'Bearer realm="skt-admin"';

export interface AdminAuthOptions {
  tokens: AdminTokens;
  limiter: FailureLimiter;
}

export function adminAuth({ tokens, limiter }: AdminAuthOptions): MiddlewareHandler<AppEnv> {
  return async function adminAuth(c, next) {
    if (tokens.isEmpty) {
      return errorResponse(
        c,
        403,
        "admin_disabled",
        "The admin API is disabled: set SKT_ADMIN_TOKEN (or --admin-token) or SKT_ADMIN_TOKENS_FILE to enable it.",
      );
    }
    const client = clientAddress(c);
    const verdict = limiter.check(client);
    if (verdict.blocked) {
      // One refusal per client and window reaches the audit log; the rest would only let a
      // guesser fill the disk.
      if (!verdict.firstRefusal) c.set("auditSkip", true);
      c.header("Retry-After", String(verdict.retryAfterSeconds));
      return errorResponse(
        c,
        429,
        "too_many_auth_failures",
        `Too many failed admin authentications from this address; retry in ${verdict.retryAfterSeconds} s.`,
      );
    }
    const header = c.req.header("authorization");
    if (header === undefined) {
      c.header("WWW-Authenticate", REALM);
      return errorResponse(c, 401, "unauthorized", "Admin routes need an 'Authorization: Bearer <token>' header.");
    }
    const presented = BEARER.exec(header)?.[1];
    if (presented === undefined) {
      limiter.recordFailure(client);
      c.header("WWW-Authenticate", `${REALM},error="invalid_request"`);
      return errorResponse(
        c,
        400,
        "invalid_authorization_header",
        "The Authorization header must be 'Bearer <token>' (token characters: A-Z a-z 0-9 . _ ~ + / -).",
      );
    }
    const who = tokens.authenticate(presented);
    if (who === null) {
      limiter.recordFailure(client);
      c.header("WWW-Authenticate", `${REALM},error="invalid_token"`);
      return errorResponse(c, 401, "invalid_token", "The bearer token is not valid.");
    }
    c.set("admin", who);
    const scope = requiredScope(c.req.method, c.req.path);
    if (!who.scopes.has(scope)) {
      return errorResponse(
        c,
        403,
        "insufficient_scope",
        `Token "${who.name}" lacks the "${scope}" scope this route needs.`,
        {
          token: who.name,
          scope,
        },
      );
    }
    const task = taskSegment(c.req.path) ?? (c.req.path === "/admin/audit" ? c.req.query("task") : undefined);
    if (task !== undefined && !globMatches(who.tasks, task)) {
      return errorResponse(
        c,
        403,
        "task_not_allowed",
        `Token "${who.name}" may only act on tasks matching "${who.tasks}".`,
        {
          token: who.name,
          tasks: who.tasks,
        },
      );
    }
    await next();
  };
}
