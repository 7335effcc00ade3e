/**
 * Admin API (bearer token; see middleware/admin-auth.ts): upload, inspect, roll back, activate and
 * delete adapters. Task names are validated here, before the service sees them.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { SktError } from "../../errors.js";
import { ADMIN_AUTH_ERRORS, adminGuards } from "../admin-security.js";
import { sha256OfBytes } from "../audit/audit-log.js";
import { globMatches } from "../auth/tokens.js";
import type { AppDeps, AppEnv } from "../context.js";
import { noteAudit } from "../middleware/admin-audit.js";
import { uploadSignature } from "../middleware/signature.js";
import { PageQuery, encodeCursor, pageFields, pageRequest } from "../pagination.js";
import { UPLOAD_MEDIA_TYPE, requireOctetStream, uploadLimit, uploadMetrics } from "../middleware/upload.js";
import {
  AdapterDetailsSchema,
  TaskInfoSchema,
  TaskParam,
  adapterDetailsJson,
  COMMON_ERRORS,
  errorContent,
  taskInfoJson,
} from "../schemas.js";

export const ADMIN_SECURITY_SCHEME = "adminToken";

/** Every admin route can answer 400 for this (see middleware/admin-auth.ts). */
export const NOT_BEARER = "an Authorization header that is not `Bearer <token>`";
/** What every admin route can answer besides its own errors. */
export const adminErrors = {
  ...ADMIN_AUTH_ERRORS,
  503: errorContent(
    "Not ready: the server is still starting or the inference worker is restarting (`not_ready`), or the process is out of file descriptors (`too_many_open_files`)",
  ),
} as const;

export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service, metrics, config } = deps;

  app.openAPIRegistry.registerComponent("securitySchemes", ADMIN_SECURITY_SCHEME, {
    type: "http",
    scheme: "bearer",
    description:
      "SKT_ADMIN_TOKEN, or a token whose sha256 is in SKT_ADMIN_TOKENS_FILE (scoped by read/write/traffic and a task glob).",
  });
  const security = [{ [ADMIN_SECURITY_SCHEME]: [] }];

  // Audit, then auth, before anything reads the body.
  app.use("/admin/*", ...adminGuards(deps));

  const list = createRoute({
    method: "get",
    path: "/admin/adapters",
    operationId: "listAdapters",
    tags: ["admin"],
    security,
    summary: "Every task with its current adapter version (paginated, in name order)",
    request: { query: PageQuery },
    responses: {
      200: {
        description: "One page of tasks and current versions",
        content: {
          "application/json": {
            schema: z.object({
              adapters: z.array(z.object({ task: z.string(), version: z.number().int() })),
              ...pageFields,
            }),
          },
        },
      },
      400: errorContent(`Bad limit or cursor, or ${NOT_BEARER}`),
      ...adminErrors,
      ...COMMON_ERRORS,
    },
  });
  app.openapi(list, async (c) => {
    // A token limited to a task glob lists only its tasks; `total` counts those.
    const allowed = c.get("admin")?.tasks ?? "*";
    const match = allowed === "*" ? undefined : (task: string) => globMatches(allowed, task);
    const page = await service.listTasks({ ...pageRequest(c.req.valid("query")), ...(match ? { match } : {}) });
    return c.json(
      {
        adapters: page.tasks.map((t) => ({ task: t.task, version: t.version })),
        total: page.total,
        next_cursor: encodeCursor(page.last),
      },
      200,
    );
  });

  const details = createRoute({
    method: "get",
    path: "/admin/adapters/{task}",
    operationId: "getAdapter",
    tags: ["admin"],
    security,
    summary: "A task's versions and their metadata",
    request: { params: TaskParam },
    responses: {
      200: { description: "Versions", content: { "application/json": { schema: AdapterDetailsSchema } } },
      400: errorContent(`Invalid task name, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task"),
      507: errorContent("Reading the task's adapters from disk failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(details, async (c) => {
    const { task } = c.req.valid("param");
    return c.json(adapterDetailsJson(await service.adapterDetails(task)), 200);
  });

  const upload = createRoute({
    method: "put",
    path: "/admin/adapters/{task}",
    operationId: "uploadAdapter",
    tags: ["admin"],
    security,
    summary: "Upload a new adapter version and make it current",
    description:
      `The body is the adapter's \`.safetensors\` file, sent as \`${UPLOAD_MEDIA_TYPE}\` ` +
      `(at most ${config.maxUploadBytes} bytes). It is validated, written atomically, prepared and then ` +
      "swapped in; a failed upload changes nothing.",
    middleware: [
      uploadMetrics(metrics),
      requireOctetStream(),
      uploadLimit(config.maxUploadBytes),
      uploadSignature(deps.adminSecurity.signatures, config.maxUploadBytes),
    ] as const,
    request: {
      params: TaskParam,
      body: {
        required: true,
        content: { [UPLOAD_MEDIA_TYPE]: { schema: z.string().openapi({ type: "string", format: "binary" }) } },
      },
    },
    responses: {
      201: { description: "The new current version", content: { "application/json": { schema: TaskInfoSchema } } },
      400: errorContent(`Invalid task name, empty body, or ${NOT_BEARER}`),
      ...adminErrors,
      413: errorContent("Upload larger than SKT_MAX_UPLOAD_BYTES"),
      415: errorContent("Content-Type is not application/octet-stream"),
      422: errorContent(
        "The file failed adapter validation, or its signature check (`signature_required`, `unknown_signing_key`, `bad_signature`)",
      ),
      507: errorContent("The disk refused the write"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(upload, async (c) => {
    const { task } = c.req.valid("param");
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength === 0) {
      throw new SktError("bad_request", "empty_body", "The upload is empty: send the .safetensors bytes as the body.");
    }
    noteAudit(c, { sha256: sha256OfBytes(bytes) });
    const info = await service.upload(task, bytes);
    noteAudit(c, { version: info.version });
    deps.logger.info(
      { reqId: c.get("requestId"), task, version: info.version, bytes: bytes.byteLength },
      "adapter uploaded",
    );
    return c.json(taskInfoJson(info), 201);
  });

  const rollback = createRoute({
    method: "post",
    path: "/admin/adapters/{task}/rollback",
    operationId: "rollbackAdapter",
    tags: ["admin"],
    security,
    summary: "Make an earlier version current again (default: the one before the current)",
    request: {
      params: TaskParam,
      body: {
        required: false,
        content: {
          "application/json": {
            schema: z.strictObject({
              version: z.number().int().min(1).optional().openapi({ description: "Version to restore." }),
            }),
          },
        },
      },
    },
    responses: {
      200: { description: "The now-current version", content: { "application/json": { schema: TaskInfoSchema } } },
      400: errorContent(`Invalid task name or body, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task or version"),
      409: errorContent(
        "No earlier version to roll back to (`no_previous_version`), or the version named is already current (`version_is_current`)",
      ),
      415: errorContent("A body whose Content-Type is not application/json"),
      422: errorContent("The version to restore failed validation when it was loaded"),
      507: errorContent("Reading the version or writing the current-version pointer failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(rollback, async (c) => {
    const { task } = c.req.valid("param");
    const { version } = c.req.valid("json");
    if (version !== undefined) noteAudit(c, { version });
    const info = await service.rollback(task, version);
    noteAudit(c, { version: info.version });
    deps.logger.info({ reqId: c.get("requestId"), task, version: info.version }, "adapter rolled back");
    return c.json(taskInfoJson(info), 200);
  });

  const activate = createRoute({
    method: "post",
    path: "/admin/adapters/{task}/activate",
    operationId: "activateAdapter",
    tags: ["admin"],
    security,
    summary: "Make any stored version current (earlier or later than the current one)",
    description:
      "Prepared and probed like a rollback before the current-version pointer moves; a failure changes nothing.",
    request: {
      params: TaskParam,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z.strictObject({
              version: z.number().int().min(1).openapi({ description: "Stored version to make current." }),
            }),
          },
        },
      },
    },
    responses: {
      200: { description: "The now-current version", content: { "application/json": { schema: TaskInfoSchema } } },
      400: errorContent(`Invalid task name or body (\`version\` is required), or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task or version"),
      409: errorContent("The version is already current (`version_is_current`)"),
      415: errorContent("A body whose Content-Type is not application/json"),
      422: errorContent("The version failed validation when it was loaded"),
      507: errorContent("Reading the version or writing the current-version pointer failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(activate, async (c) => {
    const { task } = c.req.valid("param");
    const { version } = c.req.valid("json");
    noteAudit(c, { version });
    // Same service path as rollback with an explicit version: one place prepares, probes and swaps.
    const info = await service.rollback(task, version);
    deps.logger.info({ reqId: c.get("requestId"), task, version: info.version }, "adapter version activated");
    return c.json(taskInfoJson(info), 200);
  });

  const remove = createRoute({
    method: "delete",
    path: "/admin/adapters/{task}",
    operationId: "deleteAdapter",
    tags: ["admin"],
    security,
    summary: "Stop serving a task and remove its adapters",
    request: { params: TaskParam },
    responses: {
      204: { description: "Deleted" },
      400: errorContent(`Invalid task name, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task"),
      507: errorContent("The disk refused to remove the files"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(remove, async (c) => {
    const { task } = c.req.valid("param");
    await service.deleteTask(task);
    await metrics.forgetTask(task); // a deleted task's series would otherwise stay in /metrics forever
    deps.logger.info({ reqId: c.get("requestId"), task }, "adapter deleted");
    return c.body(null, 204);
  });
}
