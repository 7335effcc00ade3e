/**
 * Guards `/admin/*` with hono's `bearerAuth`, answering in our error shape:
 * no token configured → 403 `admin_disabled`; no `Authorization` header → 401 `unauthorized`;
 * wrong token → 401 `invalid_token`; a header that is not `Bearer <token68>` → 400
 * `invalid_authorization_header` (bearerAuth's own statuses, with our bodies).
 */
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";
import type { AppEnv } from "../context.js";
import { errorBody, errorResponse } from "../errors.js";

export function adminAuth(token: string | undefined): MiddlewareHandler<AppEnv> {
  if (!token) {
    return async function adminDisabled(c) {
      return errorResponse(
        c,
        403,
        "admin_disabled",
        "The admin API is disabled: set SKT_ADMIN_TOKEN (or --admin-token) to enable it.",
      );
    };
  }
  return bearerAuth({
    token,
    realm: "skt-admin",
    noAuthenticationHeader: {
      message: errorBody("unauthorized", "Admin routes need an 'Authorization: Bearer <token>' header."),
    },
    invalidAuthenticationHeader: {
      message: errorBody(
        "invalid_authorization_header",
        "The Authorization header must be 'Bearer <token>' (token characters: A-Z a-z 0-9 . _ ~ + / -).",
      ),
    },
    invalidToken: { message: errorBody("invalid_token", "The bearer token is not valid.") },
  });
}
