/**
 * The admin API's guards, built once from the configuration: the token table, the failed-attempt
 * limiter and the audit log, and the middleware pair every `/admin/*` request passes through
 * (audit outside, auth inside, so refusals are audited).
 */
import path from "node:path";
import type { MiddlewareHandler } from "hono";
import type { ServerConfig } from "../config.js";
import { TrustedKeys, type SignaturePolicy } from "../adapters/signature.js";
import { SktError } from "../errors.js";
import { AUDIT_FILE_NAME, AuditLog } from "./audit/audit-log.js";
import { FailureLimiter } from "./auth/failure-limiter.js";
import { AdminTokens } from "./auth/tokens.js";
import type { AppDeps, AppEnv } from "./context.js";
import { adminAudit } from "./middleware/admin-audit.js";
import { adminAuth } from "./middleware/admin-auth.js";
import { errorContent } from "./schemas.js";

export interface AdminSecurity {
  tokens: AdminTokens;
  limiter: FailureLimiter;
  audit: AuditLog;
  /** Which adapter signatures uploads need (SKT_TRUSTED_KEYS, SKT_REQUIRE_SIGNATURE). */
  signatures: SignaturePolicy;
}

/** The audit log's path: `SKT_AUDIT_LOG`, else `audit.jsonl` in the adapter store's root. */
export function auditLogPath(config: Pick<ServerConfig, "auditLog" | "adaptersDir">): string {
  return config.auditLog ?? path.join(config.adaptersDir, AUDIT_FILE_NAME);
}

/** Reads and validates SKT_ADMIN_TOKENS_FILE: throws `invalid_config` naming the bad entry. */
export function adminSecurityFromConfig(config: ServerConfig): AdminSecurity {
  return {
    tokens: AdminTokens.load(config),
    limiter: new FailureLimiter({ maxFailures: config.adminMaxAuthFailures }),
    audit: new AuditLog(auditLogPath(config)),
    signatures: signaturePolicyFromConfig(config),
  };
}

/** Loads SKT_TRUSTED_KEYS (throws `invalid_config` naming a bad file). */
export function signaturePolicyFromConfig(
  config: Pick<ServerConfig, "trustedKeys" | "requireSignature">,
): SignaturePolicy {
  const keys = TrustedKeys.load(config.trustedKeys);
  if (config.requireSignature && keys.size === 0) {
    throw new SktError(
      "bad_request",
      "invalid_config",
      "SKT_REQUIRE_SIGNATURE=true needs at least one key in SKT_TRUSTED_KEYS.",
    );
  }
  return { keys, required: config.requireSignature };
}

export function adminGuards(deps: AppDeps): MiddlewareHandler<AppEnv>[] {
  const { tokens, limiter, audit } = deps.adminSecurity;
  return [adminAudit(audit, deps.logger, deps.metrics.registry), adminAuth({ tokens, limiter })];
}

/** Statuses every admin route can answer before its handler runs (for the OpenAPI document); an
 * Authorization header that is not `Bearer <token>` is a 400 too, which routes list with their own. */
export const ADMIN_AUTH_ERRORS = {
  401: errorContent("Missing or unknown bearer token"),
  403: errorContent(
    "Admin API disabled (no token configured: `admin_disabled`), the token lacks the route's scope (`insufficient_scope`) or may not act on this task (`task_not_allowed`)",
  ),
  429: errorContent("Too many failed authentications from this address (`too_many_auth_failures`; see Retry-After)"),
} as const;
