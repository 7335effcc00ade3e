/**
 * Admin API (bearer token; see middleware/admin-auth.ts): upload, inspect, roll back, activate and
 * delete adapters. Task names are validated here, before the service sees them.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { peekMetadata } from "../../adapters/format.js";
import { renameAdapter } from "../../adapters/signature.js";
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
  rename: z
    .enum(["true", "false"])
    .optional()
    .openapi({
      param: { name: "rename", in: "query" },
      description:
        "`true`: accept a file whose metadata names another task and store it under `{task}` (its metadata rewritten; a signature is dropped, or the upload refused when SKT_REQUIRE_SIGNATURE=true).",
    }),
});

// Flat (not an allOf over TaskInfo), so the contract check's "no unlisted fields" holds for it.
const UploadResultSchema = z
  .object({
    ...TaskInfoSchema.shape,
    sha256: z
      .string()
      .openapi({ description: "sha256 (hex) of the file as stored (after a rename: the rewritten file)." }),
    renamed_from: z
      .string()
      .nullable()
      .openapi({ description: "With `?rename=true`: the task the uploaded file's metadata named; otherwise null." }),
    signature_dropped: z.boolean().openapi({
      description:
        "True when a rename removed the file's signature (it covered the old task name and could not verify again).",
    }),
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
export const NOT_BEARER = "an Authorization header that is not `Bearer <token>`";
/** What every admin route can answer besides its own errors. */
export const adminErrors = {
  ...ADMIN_AUTH_ERRORS,
  503: {
    ...errorContent(
      "Not ready: the server is still starting or the inference worker is restarting (`not_ready`), the process is out of file descriptors (`too_many_open_files`), or the shared adapter store's database is unreachable (`store_unavailable`: nothing was changed; adapters already held are still served)",
    ),
    headers: z.object({
      "Retry-After": z.string().openapi({ description: "Seconds to wait before retrying (SKT_RETRY_AFTER_S)" }),
    }),
  },
} as const;

const LabelCounts = z.record(z.string(), z.number());

const TaskStatsSchema = z
  .object({
    task: z.string(),
    tracked: z.boolean().openapi({
      description:
        "False for a task past the per-task metrics label cap (200): it is counted under `__other__` and no window is kept.",
    }),
    adapter_version: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The version the counts are for (null before its first classified row)." }),
    low_confidence_threshold: z.number().openapi({ description: "SKT_LOW_CONFIDENCE." }),
    total: z.object({
      rows: z.number().int(),
      labels: LabelCounts.openapi({ description: "Rows by top label since this version's first row." }),
    }),
    window: z.object({
      size: z.number().int().openapi({ description: "SKT_QUALITY_WINDOW." }),
      rows: z.number().int().openapi({ description: "Rows in the window now (at most `size`)." }),
      labels: LabelCounts,
      low_confidence_share: z.number().nullable(),
      drift: z.number().nullable().openapi({
        description:
          "Total-variation distance between the window's label distribution and `training_distribution` (0 = same, 1 = disjoint); null when the adapter file records no training distribution or no row was classified yet.",
      }),
    }),
    training_distribution: LabelCounts.nullable().openapi({
      description:
        "The adapter's `training.label_distribution` (single-label tasks trained by this version's trainer).",
    }),
  })
  .openapi("TaskStats");

/**
 * `?rename=true` on a file naming another task: the bytes to store under `task`. Renaming changes the
 * signed header, so a server that only accepts signed files refuses it rather than store an unsigned one.
 */
function renamedUpload(bytes: Uint8Array, task: string, deps: AppDeps) {
  const named = peekMetadata(bytes, { maxBytes: deps.config.maxUploadBytes }).task;
  if (named === task) return { bytes, renamedFrom: null, signatureDropped: false };
  if (deps.adminSecurity.signatures.required)
    throw new SktError(
      "unprocessable",
      "rename_breaks_signature",
      `The file is for task "${named}"; renaming it to "${task}" rewrites its metadata, so its signature would no longer match, and this server only accepts signed adapters (SKT_REQUIRE_SIGNATURE=true). Sign a file whose metadata names "${task}" instead.`,
      { task: named },
    );
  const renamed = renameAdapter(bytes, task, deps.config.maxUploadBytes);
  return { bytes: renamed.bytes, renamedFrom: named, signatureDropped: renamed.signatureDropped };
}

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

  const stats = createRoute({
    method: "get",
    path: "/admin/adapters/{task}/stats",
    operationId: "getAdapterStats",
    tags: ["admin"],
    security,
    summary: "What a task's classifier has been answering: rows per label, low-confidence share, drift",
    description:
      "The same numbers as `skt_predictions_total`, `skt_low_confidence_share` and `skt_label_drift` in /metrics, for this process since the current version's first classified row. Regression tasks have no rows here.",
    request: { params: TaskParam },
    responses: {
      200: { description: "Per-task quality statistics", content: { "application/json": { schema: TaskStatsSchema } } },
      400: errorContent(`Invalid task name, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(stats, (c) => {
    const { task } = c.req.valid("param");
    if (!service.hasTask(task))
      throw new SktError("not_found", "unknown_task", `no adapter is registered for task "${task}"`);
    const s = metrics.quality.stats(task);
    return c.json(
      {
        task: s.task,
        tracked: s.tracked,
        adapter_version: s.adapterVersion,
        low_confidence_threshold: s.lowConfidenceThreshold,
        total: s.total,
        window: {
          size: s.window.size,
          rows: s.window.rows,
          labels: s.window.labels,
          low_confidence_share: s.window.lowConfidenceShare,
          drift: s.window.drift,
        },
        training_distribution: s.trainingDistribution,
      },
      200,
    );
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
      "`tolerance`. A file whose metadata names another task is refused (422 `task_mismatch`) unless " +
      "`?rename=true`, which stores it under `{task}` with its metadata rewritten.",
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
        description:
          "The stored version (current, `active: true`, or with `activate=false` inactive) and the stored file's sha256",
        content: { "application/json": { schema: UploadResultSchema } },
      },
      202: {
        description: "Stored inactive; its evaluation gate is queued (follow `report_url`)",
        content: { "application/json": { schema: GatedUploadSchema } },
      },
      400: errorContent(
        `Invalid task name, empty body, bad query (a \`rename\` value other than true/false, \`gate=true\` with \`activate=true\`, \`tolerance\` without the gate), or ${NOT_BEARER}`,
      ),
      409: errorContent(
        "`gate=true` but the task has no evaluation set (`no_eval_set`), or the task already holds as many inactive versions waiting for activation as its version limit (`too_many_staged_versions`)",
      ),
      ...adminErrors,
      413: errorContent("Upload larger than SKT_MAX_UPLOAD_BYTES"),
      415: errorContent("Content-Type is not application/octet-stream"),
      422: errorContent(
        "The file failed adapter validation (a file for another task without `?rename=true`: `task_mismatch`), its signature check (`signature_required`, `unknown_signing_key`, `bad_signature`), or a rename that would break a required signature (`rename_breaks_signature`)",
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
    const stored =
      query.rename === "true"
        ? renamedUpload(bytes, task, deps)
        : { bytes, renamedFrom: null, signatureDropped: false };
    const evalSet = gated ? await gate.requireEvalSet(task) : null; // refused before anything is stored
    const activate = !gated && query.activate !== "false";
    const info = await service.upload(task, stored.bytes, { activate });
    noteAudit(c, { version: info.version });
    await gate.forget(task, info.version); // version numbers are reused after deletes
    const sha256 = sha256OfBytes(stored.bytes);
    deps.logger.info(
      {
        reqId: c.get("requestId"),
        task,
        version: info.version,
        bytes: stored.bytes.byteLength,
        sha256,
        renamedFrom: stored.renamedFrom,
        active: activate,
        gated,
      },
      "adapter uploaded",
    );
    const body = {
      ...taskInfoJson(info),
      sha256,
      renamed_from: stored.renamedFrom,
      signature_dropped: stored.signatureDropped,
      active: info.current === info.version,
      current: info.current,
    };
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
