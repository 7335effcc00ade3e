/**
 * `GET|PUT /admin/adapters/{task}/traffic`: a task's canary and shadow split (adapters/traffic.ts).
 * Reading needs the `read` scope, setting the `traffic` scope (auth/admin-request.ts); every PUT is
 * audited like other admin mutations.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { TrafficSplit, TrafficState } from "../../engine/service.js";
import type { AppDeps, AppEnv } from "../context.js";
import { noteAudit } from "../middleware/admin-audit.js";
import { COMMON_ERRORS, TaskParam, errorContent } from "../schemas.js";
import { ADMIN_SECURITY_SCHEME, NOT_BEARER, adminErrors } from "./admin.js";

const Version = z.number().int().min(1);

const TrafficBody = z
  .strictObject({
    canary: z
      .strictObject({
        version: Version.openapi({ description: "Stored version, not the current one." }),
        percent: z.number().openapi({
          description: "Share of the task's rows it answers, 0-100 (else 422 `invalid_percent`).",
          minimum: 0,
          maximum: 100,
          example: 10,
        }),
      })
      .optional(),
    shadow: z
      .strictObject({ version: Version.openapi({ description: "Stored version, not the current one." }) })
      .optional(),
  })
  .openapi("TrafficSplitRequest");

const TrafficStateSchema = z
  .object({
    task: z.string(),
    current: z.number().int().nullable(),
    canary: z.object({ version: z.number().int(), percent: z.number() }).nullable(),
    shadow: z.object({ version: z.number().int() }).nullable(),
    since: z.string().nullable().openapi({ description: "ISO time the split was set; the counts start there." }),
    versions: z
      .array(
        z.object({
          version: z.number().int(),
          role: z.enum(["current", "canary"]),
          requests: z.number().int(),
          rows: z.number().int(),
        }),
      )
      .openapi({ description: "Requests and rows each version answered since `since`." }),
    shadow_counts: z
      .object({
        version: z.number().int(),
        compared: z.number().int().openapi({ description: "Rows the shadow scored next to the current version." }),
        agreed: z.number().int().openapi({ description: "Of those, rows with the same top label." }),
        agreement: z
          .number()
          .nullable()
          .openapi({ description: "agreed / compared; null before any row or for regression." }),
        skipped: z.number().int().openapi({ description: "Rows not shadowed (queue full, shadow not loadable)." }),
      })
      .nullable(),
  })
  .openapi("TrafficState");

function stateJson(s: TrafficState): z.infer<typeof TrafficStateSchema> {
  return {
    task: s.task,
    current: s.current,
    canary: s.canary,
    shadow: s.shadow,
    since: s.since,
    versions: s.versions,
    shadow_counts: s.shadowCounts,
  };
}

export function registerTrafficRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service } = deps;
  const security = [{ [ADMIN_SECURITY_SCHEME]: [] }];

  const show = createRoute({
    method: "get",
    path: "/admin/adapters/{task}/traffic",
    operationId: "getTraffic",
    tags: ["admin"],
    security,
    summary: "A task's canary/shadow split and what each version answered since it was set",
    request: { params: TaskParam },
    responses: {
      200: { description: "The split and its counts", content: { "application/json": { schema: TrafficStateSchema } } },
      400: errorContent(`Invalid task name, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(show, async (c) => {
    const { task } = c.req.valid("param");
    return c.json(stateJson(await service.trafficState(task)), 200);
  });

  const set = createRoute({
    method: "put",
    path: "/admin/adapters/{task}/traffic",
    operationId: "setTraffic",
    tags: ["admin"],
    security,
    summary: "Set a task's canary (a share of its rows) and/or shadow (scores every row, never answers); {} clears",
    description:
      "The body replaces the whole split: a field left out is cleared. Each version named must be stored and not " +
      "current; it is prepared and probed before the split applies. Counts restart. The split is saved next to the " +
      "store and survives a restart; it loses a version that becomes current (rollback/activate) or is deleted, and " +
      "goes with its task.",
    request: {
      params: TaskParam,
      body: { required: true, content: { "application/json": { schema: TrafficBody } } },
    },
    responses: {
      200: { description: "The new split", content: { "application/json": { schema: TrafficStateSchema } } },
      400: errorContent(`Invalid task name or body, or ${NOT_BEARER}`),
      ...adminErrors,
      404: errorContent("Unknown task, or a version that is not stored (`version_not_found`)"),
      409: errorContent("A version named is the current one (`version_is_current`)"),
      415: errorContent("Content-Type is not application/json"),
      422: errorContent(
        "Percent outside 0-100 (`invalid_percent`), the same version as canary and shadow (`canary_is_shadow`), a version that takes other inputs or gives another kind of output than the current one (`incompatible_version`), or one that fails validation",
      ),
      507: errorContent("Reading a version or saving the split failed"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(set, async (c) => {
    const { task } = c.req.valid("param");
    const body = c.req.valid("json");
    const split: TrafficSplit = {};
    if (body.canary) split.canary = { version: body.canary.version, percent: body.canary.percent };
    if (body.shadow) split.shadow = { version: body.shadow.version };
    const version = split.canary?.version ?? split.shadow?.version;
    if (version !== undefined) noteAudit(c, { version });
    const state = await service.setTraffic(task, split);
    deps.logger.info(
      { reqId: c.get("requestId"), task, canary: state.canary, shadow: state.shadow },
      "traffic split set",
    );
    return c.json(stateJson(state), 200);
  });
}
