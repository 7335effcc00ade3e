/**
 * `GET /admin/audit`: read the admin audit log (needs the `read` scope). A token limited to a task
 * glob sees only entries about tasks its glob matches.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AuditEntry } from "../audit/audit-log.js";
import { globMatches } from "../auth/tokens.js";
import type { AppDeps, AppEnv } from "../context.js";
import { COMMON_ERRORS, TaskName, errorContent } from "../schemas.js";
import { ADMIN_SECURITY_SCHEME, adminErrors } from "./admin.js";

export const MAX_AUDIT_LIMIT = 1000;
export const DEFAULT_AUDIT_LIMIT = 100;

const AuditEntrySchema = z
  .object({
    time: z.string().openapi({ description: "ISO time the action finished." }),
    request_id: z.string().nullable(),
    actor: z.string().nullable().openapi({ description: "The token's name; null when no token was accepted." }),
    action: z.string().openapi({ example: "upload" }),
    method: z.string(),
    path: z.string(),
    task: z.string().nullable(),
    version: z.number().int().nullable(),
    sha256: z.string().nullable().openapi({ description: "sha256 of the uploaded file (uploads only)." }),
    status: z.number().int(),
    result: z.enum(["ok", "refused", "failed"]),
    code: z.string().nullable().openapi({ description: "Error code of a non-2xx answer." }),
    client: z.string(),
  })
  .openapi("AuditEntry");

const AuditQuery = z.object({
  task: TaskName.optional().openapi({ param: { name: "task", in: "query" } }),
  since: z.iso
    .datetime({ offset: true, error: "must be an ISO date-time such as 2026-01-31T12:00:00Z" })
    .optional()
    .openapi({ param: { name: "since", in: "query" }, example: "2026-01-31T12:00:00Z" }),
  limit: z
    .string()
    .regex(/^\d+$/, { error: "must be a whole number" })
    .transform(Number)
    .pipe(z.number().int().min(1).max(MAX_AUDIT_LIMIT))
    .optional()
    .openapi({ param: { name: "limit", in: "query" }, type: "integer", example: DEFAULT_AUDIT_LIMIT }),
});

export function registerAuditRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { audit } = deps.adminSecurity;
  const route = createRoute({
    method: "get",
    path: "/admin/audit",
    operationId: "listAuditEntries",
    tags: ["admin"],
    security: [{ [ADMIN_SECURITY_SCHEME]: [] }],
    summary: "Read the admin audit log (newest entries, oldest first)",
    description:
      "Returns the newest `limit` entries (default " +
      `${DEFAULT_AUDIT_LIMIT}, at most ${MAX_AUDIT_LIMIT}) that match, ordered oldest first (the newest is last); ` +
      "`truncated` says that older matching entries were left out (narrow with `since`). Successful reads are not " +
      "audited; mutations and every refused or failed request are.",
    request: { query: AuditQuery },
    responses: {
      200: {
        description: "Audit entries",
        content: {
          "application/json": {
            schema: z.object({ entries: z.array(AuditEntrySchema), truncated: z.boolean() }),
          },
        },
      },
      400: errorContent("Invalid query parameter or Authorization header"),
      ...adminErrors,
      ...COMMON_ERRORS,
    },
  });
  app.openapi(route, async (c) => {
    const { task, since, limit } = c.req.valid("query");
    const allowed = c.get("admin")?.tasks ?? "*";
    // A `task` outside the token's glob was refused (403 task_not_allowed) by the auth middleware.
    const filter = (e: AuditEntry): boolean =>
      (task === undefined || e.task === task) && (allowed === "*" || (e.task !== null && globMatches(allowed, e.task)));
    const page = await audit.query({
      limit: limit ?? DEFAULT_AUDIT_LIMIT,
      ...(since !== undefined ? { since: Date.parse(since) } : {}),
      filter,
    });
    return c.json(page, 200);
  });
}
