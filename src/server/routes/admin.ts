/**
 * Admin API (bearer token; see middleware/admin-auth.ts): upload, inspect, roll back and delete
 * adapters. Task names are validated here, before the service sees them.
 */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import { SktError } from "../../errors.js";
import type { AppDeps, AppEnv } from "../context.js";
import { adminAuth } from "../middleware/admin-auth.js";
import { PageQuery, encodeCursor, pageFields, pageRequest } from "../pagination.js";
import { UPLOAD_MEDIA_TYPE, requireOctetStream, uploadLimit, uploadMetrics } from "../middleware/upload.js";
import {
  AdapterDetailsSchema,
  TaskInfoSchema,
  TaskParam,
  adapterDetailsJson,
  errorContent,
  taskInfoJson,
} from "../schemas.js";

export const ADMIN_SECURITY_SCHEME = "adminToken";

const authErrors = {
  401: errorContent("Missing or wrong bearer token"),
  403: errorContent("Admin API disabled (SKT_ADMIN_TOKEN not set)"),
} as const;

export function registerAdminRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const { service, metrics, config } = deps;

  app.openAPIRegistry.registerComponent("securitySchemes", ADMIN_SECURITY_SCHEME, {
    type: "http",
    scheme: "bearer",
    description: "The value of SKT_ADMIN_TOKEN.",
  });
  const security = [{ [ADMIN_SECURITY_SCHEME]: [] }];

  // Auth runs before anything reads the body.
  app.use("/admin/*", adminAuth(config.adminToken));

  const list = createRoute({
    method: "get",
    path: "/admin/adapters",
    tags: ["admin"],
    security,
    summary: "Every task with its current adapter version (paginated, in name order)",
    request: { query: PageQuery },
    responses: {
      200: {
        description: "One page of tasks and current versions",
        content: {
          "application/json": {
            schema: z.object({ adapters: z.array(z.object({ task: z.string(), version: z.number().int() })), ...pageFields }),
          },
        },
      },
      400: errorContent("Bad limit or cursor"),
      ...authErrors,
      503: errorContent("Not ready"),
    },
  });
  app.openapi(list, async (c) => {
    const page = await service.listTasks(pageRequest(c.req.valid("query")));
    return c.json({ adapters: page.tasks.map((t) => ({ task: t.task, version: t.version })), total: page.total, next_cursor: encodeCursor(page.last) }, 200);
  });

  const details = createRoute({
    method: "get",
    path: "/admin/adapters/{task}",
    tags: ["admin"],
    security,
    summary: "A task's versions and their metadata",
    request: { params: TaskParam },
    responses: {
      200: { description: "Versions", content: { "application/json": { schema: AdapterDetailsSchema } } },
      400: errorContent("Invalid task name"),
      ...authErrors,
      404: errorContent("Unknown task"),
    },
  });
  app.openapi(details, async (c) => {
    const { task } = c.req.valid("param");
    return c.json(adapterDetailsJson(await service.adapterDetails(task)), 200);
  });

  const upload = createRoute({
    method: "put",
    path: "/admin/adapters/{task}",
    tags: ["admin"],
    security,
    summary: "Upload a new adapter version and make it current",
    description:
      `The body is the adapter's \`.safetensors\` file, sent as \`${UPLOAD_MEDIA_TYPE}\` ` +
      `(at most ${config.maxUploadBytes} bytes). It is validated, written atomically, prepared and then ` +
      "swapped in; a failed upload changes nothing.",
    middleware: [uploadMetrics(metrics), requireOctetStream(), uploadLimit(config.maxUploadBytes)] as const,
    request: {
      params: TaskParam,
      body: {
        required: true,
        content: { [UPLOAD_MEDIA_TYPE]: { schema: z.string().openapi({ type: "string", format: "binary" }) } },
      },
    },
    responses: {
      201: { description: "The new current version", content: { "application/json": { schema: TaskInfoSchema } } },
      400: errorContent("Invalid task name or empty body"),
      ...authErrors,
      413: errorContent("Upload larger than SKT_MAX_UPLOAD_BYTES"),
      415: errorContent("Content-Type is not application/octet-stream"),
      422: errorContent("The file failed adapter validation"),
      507: errorContent("The disk refused the write"),
    },
  });
  app.openapi(upload, async (c) => {
    const { task } = c.req.valid("param");
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    if (bytes.byteLength === 0) {
      throw new SktError("bad_request", "empty_body", "The upload is empty: send the .safetensors bytes as the body.");
    }
    const info = await service.upload(task, bytes);
    deps.logger.info({ reqId: c.get("requestId"), task, version: info.version, bytes: bytes.byteLength }, "adapter uploaded");
    return c.json(taskInfoJson(info), 201);
  });

  const rollback = createRoute({
    method: "post",
    path: "/admin/adapters/{task}/rollback",
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
      400: errorContent("Invalid task name or body"),
      ...authErrors,
      404: errorContent("Unknown task or version"),
      409: errorContent("No earlier version to roll back to"),
    },
  });
  app.openapi(rollback, async (c) => {
    const { task } = c.req.valid("param");
    const { version } = c.req.valid("json");
    const info = await service.rollback(task, version);
    deps.logger.info({ reqId: c.get("requestId"), task, version: info.version }, "adapter rolled back");
    return c.json(taskInfoJson(info), 200);
  });

  const remove = createRoute({
    method: "delete",
    path: "/admin/adapters/{task}",
    tags: ["admin"],
    security,
    summary: "Stop serving a task and remove its adapters",
    request: { params: TaskParam },
    responses: {
      204: { description: "Deleted" },
      400: errorContent("Invalid task name"),
      ...authErrors,
      404: errorContent("Unknown task"),
    },
  });
  app.openapi(remove, async (c) => {
    const { task } = c.req.valid("param");
    await service.deleteTask(task);
    deps.logger.info({ reqId: c.get("requestId"), task }, "adapter deleted");
    return c.body(null, 204);
  });
}
