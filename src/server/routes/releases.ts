/**
 * Admin routes for safe releases: a task's evaluation set, gate reports, and deleting one stored
 * version. Registered by routes/admin.ts (behind the same admin guards), which owns the gate runner
 * that uploads with `gate=true` start.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { SktError } from "../../errors.js";
import type { AdapterMetadata } from "../../adapters/format.js";
import type { AppDeps, AppEnv } from "../context.js";
import { bodySizeLimit } from "../middleware/body-limit.js";
import { noteAudit } from "../middleware/admin-audit.js";
import {
  EVAL_SET_DOCUMENT,
  EVAL_SET_MEDIA_TYPES,
  decodeEvalSet,
  evalSetSummary,
  mediaTypeFormat,
  parseEvalSet,
} from "../releases/eval-set.js";
import type { GateRunner } from "../releases/gate.js";
import { COMMON_ERRORS, TaskParam, errorContent } from "../schemas.js";

interface AdminRouteShared {
  security: Record<string, string[]>[];
  adminErrors: Record<number, ReturnType<typeof errorContent>>;
  notBearer: string;
}

const VersionParams = TaskParam.extend({
  version: z.coerce
    .number()
    .int()
    .min(1)
    .openapi({ param: { name: "version", in: "path" }, type: "integer", example: 2 }),
});

const EvalSetSchema = z
  .object({
    format: z.enum(["tsv", "csv", "jsonl"]),
    rows: z.number().int(),
    sha256: z.string(),
    created_at: z.string(),
    problem_type: z.enum(["single_label_classification", "multi_label_classification", "regression"]),
    labels: z.array(z.string()).openapi({ description: "The adapter's labels the set was checked against." }),
    label_mapping: z
      .enum(["names", "position"])
      .openapi({ description: '"position": the file labelled rows by index into `labels` (GLUE-style 0/1).' }),
    text_pair: z.boolean(),
  })
  .openapi("EvalSet");

const VersionScoreSchema = z.object({
  version: z.number().int(),
  score: z.number().nullable(),
  metrics: z.record(z.string(), z.number()).openapi({ type: "object", additionalProperties: { type: "number" } }),
});

const GateReportSchema = z
  .object({
    task: z.string(),
    version: z.number().int(),
    status: z.enum(["pending", "running", "passed", "failed", "cancelled"]),
    metric: z.enum(["accuracy", "micro_f1", "pearson"]).nullable(),
    tolerance: z.number(),
    eval_set: z.object({ rows: z.number().int(), sha256: z.string() }).nullable(),
    progress: z.object({ done: z.number().int(), total: z.number().int() }),
    candidate: VersionScoreSchema.nullable(),
    baseline: VersionScoreSchema.nullable().openapi({
      description: "The current version's score on the same set (null: there was no current version).",
    }),
    activated: z.boolean(),
    reason: z.string().nullable(),
    requested_by: z.string().nullable(),
    created_at: z.string(),
    started_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  })
  .openapi("GateReport");

export function registerReleaseRoutes(
  app: OpenAPIHono<AppEnv>,
  deps: AppDeps,
  gate: GateRunner,
  shared: AdminRouteShared,
): void {
  const { service, config } = deps;
  const { security, adminErrors, notBearer } = shared;

  const putEvalSet = createRoute({
    method: "put",
    path: "/admin/adapters/{task}/eval-set",
    operationId: "putEvalSet",
    tags: ["admin"],
    security,
    summary: "Store the task's labelled evaluation set (for uploads with gate=true)",
    description:
      "The trainer's formats: TSV (GLUE layout), CSV or JSONL, chosen by Content-Type. Labels must be the " +
      "adapter's label names (or, for single-label tasks, indices 0..n-1 into them). Replaces the task's " +
      `previous set atomically. At most ${config.maxEvalSetBytes} bytes and ${config.maxEvalSetRows} rows.`,
    middleware: [
      bodySizeLimit(config.maxEvalSetBytes, () => {
        throw new SktError(
          "too_large",
          "eval_set_too_large",
          `Evaluation sets are limited to ${config.maxEvalSetBytes} bytes (SKT_MAX_EVAL_SET_BYTES).`,
          { limit: config.maxEvalSetBytes },
        );
      }),
    ] as const,
    request: {
      params: TaskParam,
      body: {
        required: true,
        content: Object.fromEntries(
          // Plain schema objects, not zod: the validator would read application/jsonl as JSON.
          Object.keys(EVAL_SET_MEDIA_TYPES).map((type) => [type, { schema: { type: "string" as const } }]),
        ),
      },
    },
    responses: {
      200: {
        description: "The stored set (without its rows)",
        content: { "application/json": { schema: EvalSetSchema } },
      },
      400: errorContent(
        `A row the trainer's reader refuses (\`dataset_*\`, naming the line), labels that are not the adapter's (\`eval_set_unknown_label\`), text pairs that do not match the task (\`eval_set_pair_mismatch\`), invalid UTF-8, or ${notBearer}`,
      ),
      ...adminErrors,
      404: errorContent("Unknown task"),
      413: errorContent("More bytes than SKT_MAX_EVAL_SET_BYTES or rows than SKT_MAX_EVAL_SET_ROWS"),
      415: errorContent(
        "Content-Type is not text/tab-separated-values, text/csv, application/jsonl or application/x-ndjson",
      ),
      507: errorContent("The disk refused the write"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(putEvalSet, async (c) => {
    const { task } = c.req.valid("param");
    const format = mediaTypeFormat(c.req.header("content-type"));
    const meta = targetMetadata(await service.adapterDetails(task));
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const set = parseEvalSet(
      bytes,
      format,
      { labels: meta.labels, problemType: meta.problemType, textPair: meta.textPair },
      config.maxEvalSetRows,
    );
    noteAudit(c, { sha256: set.sha256 });
    await service.writeDocument(task, EVAL_SET_DOCUMENT, new TextEncoder().encode(JSON.stringify(set)));
    deps.logger.info({ reqId: c.get("requestId"), task, rows: set.rows }, "evaluation set stored");
    return c.json(evalSetSummary(set), 200);
  });

  const getEvalSet = createRoute({
    method: "get",
    path: "/admin/adapters/{task}/eval-set",
    operationId: "getEvalSet",
    tags: ["admin"],
    security,
    summary: "The task's evaluation set (its description, not its rows)",
    request: { params: TaskParam },
    responses: {
      200: { description: "The stored set", content: { "application/json": { schema: EvalSetSchema } } },
      400: errorContent(`Invalid task name, or ${notBearer}`),
      ...adminErrors,
      404: errorContent("The task has no evaluation set (`eval_set_not_found`)"),
      507: errorContent("Reading the stored set failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(getEvalSet, async (c) => {
    const { task } = c.req.valid("param");
    const set = decodeEvalSet(await service.readDocument(task, EVAL_SET_DOCUMENT));
    if (!set) throw evalSetNotFound(task);
    return c.json(evalSetSummary(set), 200);
  });

  const deleteEvalSet = createRoute({
    method: "delete",
    path: "/admin/adapters/{task}/eval-set",
    operationId: "deleteEvalSet",
    tags: ["admin"],
    security,
    summary: "Remove the task's evaluation set (gates already queued fail: they read it when they start)",
    request: { params: TaskParam },
    responses: {
      204: { description: "Removed" },
      400: errorContent(`Invalid task name, or ${notBearer}`),
      ...adminErrors,
      404: errorContent("The task has no evaluation set (`eval_set_not_found`)"),
      507: errorContent("The disk refused to remove the file"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(deleteEvalSet, async (c) => {
    const { task } = c.req.valid("param");
    if (!(await service.deleteDocument(task, EVAL_SET_DOCUMENT))) throw evalSetNotFound(task);
    return c.body(null, 204);
  });

  const report = createRoute({
    method: "get",
    path: "/admin/adapters/{task}/versions/{version}/report",
    operationId: "getGateReport",
    tags: ["admin"],
    security,
    summary: "Progress and result of a version's evaluation gate",
    request: { params: VersionParams },
    responses: {
      200: { description: "The gate's report", content: { "application/json": { schema: GateReportSchema } } },
      400: errorContent(`Invalid task name or version, or ${notBearer}`),
      ...adminErrors,
      404: errorContent("The version has no gate report (`report_not_found`)"),
      507: errorContent("Reading the stored report failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(report, async (c) => {
    const { task, version } = c.req.valid("param");
    const r = await gate.report(task, version);
    if (!r) {
      throw new SktError(
        "not_found",
        "report_not_found",
        `v${version} of task "${task}" has no evaluation-gate report`,
        {
          task,
          version,
        },
      );
    }
    return c.json(r, 200);
  });

  const deleteVersion = createRoute({
    method: "delete",
    path: "/admin/adapters/{task}/versions/{version}",
    operationId: "deleteAdapterVersion",
    tags: ["admin"],
    security,
    summary: "Remove one stored version that is not current (its running gate is cancelled)",
    request: { params: VersionParams },
    responses: {
      204: { description: "Deleted" },
      400: errorContent(`Invalid task name or version, or ${notBearer}`),
      ...adminErrors,
      404: errorContent("Unknown task or version"),
      409: errorContent("The version is current (`version_is_current`): activate another one first"),
      507: errorContent("The disk refused to remove the file"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(deleteVersion, async (c) => {
    const { task, version } = c.req.valid("param");
    noteAudit(c, { version });
    await service.deleteVersion(task, version);
    gate.cancel(task, version);
    deps.logger.info({ reqId: c.get("requestId"), task, version }, "adapter version deleted");
    return c.body(null, 204);
  });
}

function evalSetNotFound(task: string): SktError {
  return new SktError("not_found", "eval_set_not_found", `task "${task}" has no evaluation set`, { task });
}

/** What an eval set is checked against: the current version, else the newest stored one. */
function targetMetadata(d: { current: number | null; versions: { version: number; metadata: AdapterMetadata }[] }) {
  const v = d.versions.find((x) => x.version === d.current) ?? d.versions.at(-1);
  if (!v) throw new SktError("not_found", "unknown_task", "the task has no stored version");
  return v.metadata;
}
