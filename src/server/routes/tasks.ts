/** `GET /tasks` — every served task with its current adapter's public description. */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps, AppEnv } from "../context.js";
import { COMMON_ERRORS, NO_AUTH, TaskInfoSchema, errorContent, taskInfoJson } from "../schemas.js";

export function registerTaskRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const route = createRoute({
    method: "get",
    path: "/tasks",
    operationId: "listTasks",
    security: NO_AUTH,
    tags: ["inference"],
    summary: "List the tasks this server can classify",
    responses: {
      200: {
        description: "Served tasks",
        content: { "application/json": { schema: z.object({ tasks: z.array(TaskInfoSchema) }) } },
      },
      503: errorContent("Not ready"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(route, async (c) => {
    const tasks = await deps.service.listTasks();
    return c.json({ tasks: tasks.map(taskInfoJson) }, 200);
  });
}
