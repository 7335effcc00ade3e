/** `GET /tasks` — the served tasks, a page at a time, with their current adapter's public description. */
import { createRoute, z, type OpenAPIHono } from "@hono/zod-openapi";
import type { AppDeps, AppEnv } from "../context.js";
import { PageQuery, encodeCursor, pageFields, pageRequest } from "../pagination.js";
import { COMMON_ERRORS, NO_AUTH, TaskListingSchema, errorContent, taskListingJson } from "../schemas.js";

export function registerTaskRoutes(app: OpenAPIHono<AppEnv>, deps: AppDeps): void {
  const route = createRoute({
    method: "get",
    path: "/tasks",
    operationId: "listTasks",
    security: NO_AUTH,
    tags: ["inference"],
    summary: "List the tasks this server can classify (paginated, in name order)",
    description: "Long fields are cut (`truncated`); the admin view `GET /admin/adapters/{task}` has full values.",
    request: { query: PageQuery },
    responses: {
      200: {
        description: "One page of served tasks",
        content: { "application/json": { schema: z.object({ tasks: z.array(TaskListingSchema), ...pageFields }) } },
      },
      400: errorContent("Bad limit or cursor"),
      503: errorContent("Not ready"),
      ...COMMON_ERRORS,
    },
  });
  app.openapi(route, async (c) => {
    const page = await deps.service.listTasks(pageRequest(c.req.valid("query")));
    return c.json(
      { tasks: page.tasks.map(taskListingJson), total: page.total, next_cursor: encodeCursor(page.last) },
      200,
    );
  });
}
