/**
 * Records admin requests in the audit log: every mutation (whatever its outcome) and every request
 * that did not succeed (auth failures, refusals, bad input); successful reads are not recorded.
 * Runs outside `adminAuth`, so refused requests are seen too. A failed audit write never changes
 * the answer: it is logged and counted in `skt_audit_write_failures_total`.
 */
import type { Context, MiddlewareHandler } from "hono";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "../../logger.js";
import type { AuditLog, AuditResult } from "../audit/audit-log.js";
import { actionOf, isReadMethod, taskOfPath } from "../auth/admin-request.js";
import type { AppEnv } from "../context.js";
import { clientAddress } from "./client-address.js";

/** What a route knows that the path does not say (the version it acted on, the upload's hash). */
export interface AuditSubject {
  version?: number;
  sha256?: string;
}

/** Called by routes: add facts to this request's audit entry. */
export function noteAudit(c: Context<AppEnv>, subject: AuditSubject): void {
  c.set("auditSubject", { ...c.get("auditSubject"), ...subject });
}

function resultOf(status: number): AuditResult {
  if (status < 400) return "ok";
  return status === 401 || status === 403 || status === 429 ? "refused" : "failed";
}

async function errorCodeOf(res: Response): Promise<string | null> {
  if (!(res.headers.get("content-type") ?? "").includes("application/json")) return null;
  try {
    const body = (await res.clone().json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === "string" ? body.error.code.slice(0, 100) : null;
  } catch {
    return null;
  }
}

function counter(registry: Registry, name: string, help: string): Counter {
  return (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, registers: [registry] });
}

export function adminAudit(audit: AuditLog, logger: Logger, registry: Registry): MiddlewareHandler<AppEnv> {
  const written = counter(registry, "skt_audit_entries_total", "Admin audit log entries written.");
  const failed = counter(
    registry,
    "skt_audit_write_failures_total",
    "Admin audit log entries that could not be written (the action itself was not affected).",
  );
  return async function adminAudit(c, next) {
    await next();
    const status = c.res.status;
    const method = c.req.method;
    if ((status < 400 && isReadMethod(method)) || c.get("auditSkip")) return;
    const path = c.req.path.slice(0, 200);
    const subject = c.get("auditSubject") ?? {};
    const action = actionOf(method, c.req.path);
    try {
      await audit.append({
        request_id: c.get("requestId") ?? null,
        actor: c.get("admin")?.name ?? null,
        action,
        method,
        path,
        task: taskOfPath(c.req.path),
        version: subject.version ?? null,
        sha256: subject.sha256 ?? null,
        status,
        result: resultOf(status),
        code: status < 400 ? null : await errorCodeOf(c.res),
        client: clientAddress(c),
      });
      written.inc();
    } catch (err) {
      failed.inc();
      logger.error({ reqId: c.get("requestId"), err, action, file: audit.file }, "audit log write failed");
    }
  };
}
