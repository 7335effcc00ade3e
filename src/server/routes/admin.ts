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
import { GateRunner, gateReportPath } from "../releases/gate.js";
import { registerReleaseRoutes } from "./releases.js";
import { clientAddress } from "../middleware/client-address.js";
import {
  AdapterDetailsSchema,
  GateSummarySchema,
  TaskInfoSchema,
  TaskParam,
  adapterDetailsJson,
  COMMON_ERRORS,
  errorContent,
  taskInfoJson,
} from "../schemas.js";

export const ADMIN_SECURITY_SCHEME = "adminToken";

/** The gate's default tolerance: the candidate may score this much below the current version. */
export const DEFAULT_GATE_TOLERANCE = 0;

const BooleanText = z.enum(["true", "false"]);

const UploadQuery = z.object({
  activate: BooleanText.optional().openapi({
    description: "false: store and prepare the version without making it current (default true).",
  }),
  gate: BooleanText.optional().openapi({
    description:
      "true: store inactive and make current only if it passes the evaluation gate on the task's eval set (answers 202).",
  }),
  tolerance: z.coerce
    .number()
    .min(0)
    .max(1)
    .optional()
    .openapi({
      type: "number",
      description: `With gate=true: how far below the current version's score the new version may score and still pass (default ${DEFAULT_GATE_TOLERANCE}).`,
    }),
});

const UploadResultSchema = z
  .object({
    ...TaskInfoSchema.shape,
    active: z.boolean().openapi({ description: "Whether the uploaded version is now current." }),
    current: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The task's current version after the upload (null: none yet)." }),
  })
  .openapi("UploadResult");

const GatedUploadSchema = z
  .object({
    ...UploadResultSchema.shape,
    gate: GateSummarySchema,
  })
  .openapi("GatedUpload");

/** Every admin route can answer 400 for this (see middleware/admin-auth.ts). */
const NOT_BEARER = "an Authorization header that is not `Bearer <token>`";
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

  const gate = new GateRunner({
    service,
    logger: deps.logger,
    registry: metrics.registry,
    audit: deps.adminSecurity.audit,
  });

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
    const d = await service.adapterDetails(task);
    const gates = new Map<
      number,
      { status: "pending" | "running" | "passed" | "failed" | "cancelled"; report_url: string }
    >();
    for (const v of d.versions) {
      const report = await gate.report(task, v.version);
      if (report) gates.set(v.version, { status: report.status, report_url: gateReportPath(task, v.version) });
    }
    return c.json(adapterDetailsJson(d, gates), 200);
  });

  const upload = createRoute({
    method: "put",
    path: "/admin/adapters/{task}",
    operationId: "uploadAdapter",
    tags: ["admin"],
    security,
    summary: "Upload a new adapter version (current at once, inactive, or behind the evaluation gate)",
    description:
      `The body is the adapter's \`.safetensors\` file, sent as \`${UPLOAD_MEDIA_TYPE}\` ` +
      `(at most ${config.maxUploadBytes} bytes). It is validated, prepared, probed and written atomically, then ` +
      "swapped in; a failed upload changes nothing. `activate=false` runs the same checks and stores the version " +
      "inactive (201, `active: false`); `gate=true` stores it inactive, answers 202 and evaluates it in the background " +
      "on the task's evaluation set: it becomes current only if its score is not below the current version's minus " +
      "`tolerance`.",
    middleware: [
      uploadMetrics(metrics),
      requireOctetStream(),
      uploadLimit(config.maxUploadBytes),
      uploadSignature(deps.adminSecurity.signatures, config.maxUploadBytes),
    ] as const,
    request: {
      params: TaskParam,
      query: UploadQuery,
      body: {
        required: true,
        content: { [UPLOAD_MEDIA_TYPE]: { schema: z.string().openapi({ type: "string", format: "binary" }) } },
      },
    },
    responses: {
      201: {
        description: "The stored version: current (`active: true`) or, with `activate=false`, inactive",
        content: { "application/json": { schema: UploadResultSchema } },
      },
      202: {
        description: "Stored inactive; its evaluation gate is queued (follow `report_url`)",
        content: { "application/json": { schema: GatedUploadSchema } },
      },
      400: errorContent(
        `Invalid task name, empty body, bad query (\`gate=true\` with \`activate=true\`, \`tolerance\` without the gate), or ${NOT_BEARER}`,
      ),
      409: errorContent(
        "`gate=true` but the task has no evaluation set (`no_eval_set`), or the task already holds as many inactive versions waiting for activation as its version limit (`too_many_staged_versions`)",
      ),
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
    const query = c.req.valid("query");
    const gated = query.gate === "true";
    if (gated && query.activate === "true") {
      throw new SktError("bad_request", "invalid_query", "gate=true stores the version inactive: drop activate=true");
    }
    if (!gated && query.tolerance !== undefined) {
      throw new SktError("bad_request", "invalid_query", "tolerance applies only with gate=true");
    }
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength === 0) {
      throw new SktError("bad_request", "empty_body", "The upload is empty: send the .safetensors bytes as the body.");
    }
    noteAudit(c, { sha256: sha256OfBytes(bytes) });
    const evalSet = gated ? await gate.requireEvalSet(task) : null; // refused before anything is stored
    const activate = !gated && query.activate !== "false";
    const info = await service.upload(task, bytes, { activate });
    noteAudit(c, { version: info.version });
    await gate.forget(task, info.version); // version numbers are reused after deletes
    deps.logger.info(
      { reqId: c.get("requestId"), task, version: info.version, bytes: bytes.byteLength, active: activate, gated },
      "adapter uploaded",
    );
    const body = { ...taskInfoJson(info), active: info.current === info.version, current: info.current };
    if (!evalSet) return c.json(body, 201);
    const report = await gate.start(
      {
        task,
        version: info.version,
        tolerance: query.tolerance ?? DEFAULT_GATE_TOLERANCE,
        actor: c.get("admin")?.name ?? null,
        requestId: c.get("requestId") ?? null,
        client: clientAddress(c),
      },
      evalSet,
    );
    const reportUrl = gateReportPath(task, info.version);
    c.header("Location", reportUrl);
    return c.json({ ...body, gate: { status: report.status, report_url: reportUrl } }, 202);
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
    gate.cancel(task);
    await metrics.forgetTask(task); // a deleted task's series would otherwise stay in /metrics forever
    deps.logger.info({ reqId: c.get("requestId"), task }, "adapter deleted");
    return c.body(null, 204);
  });

  registerReleaseRoutes(app, deps, gate, { security, adminErrors, notBearer: NOT_BEARER });
}
