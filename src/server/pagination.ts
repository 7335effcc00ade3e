/**
 * Pagination of the task listings (`GET /tasks`, `GET /admin/adapters`): `limit` (default 100, at
 * most 1,000) and an opaque `cursor` taken from the previous page's `next_cursor`. Pages follow task
 * names in code-unit order; a cursor means "after this task", so tasks added or deleted between
 * pages never shift or repeat the rest.
 */
import { z } from "@hono/zod-openapi";
import { isValidTaskName } from "../adapters/task-name.js";
import { SktError } from "../errors.js";
import type { PageRequest } from "../engine/service.js";

export const DEFAULT_PAGE_LIMIT = 100;
export const MAX_PAGE_LIMIT = 1000;

export const PageQuery = z.object({
  limit: z
    .string()
    .regex(/^\d+$/, { error: "must be a whole number" })
    .transform(Number)
    .pipe(
      z
        .number()
        .int()
        .min(1, { error: "must be at least 1" })
        .max(MAX_PAGE_LIMIT, { error: `must be at most ${MAX_PAGE_LIMIT}` }),
    )
    .optional()
    .openapi({
      param: { name: "limit", in: "query" },
      type: "integer",
      minimum: 1,
      maximum: MAX_PAGE_LIMIT,
      default: DEFAULT_PAGE_LIMIT,
      description: "Most tasks on the page.",
    }),
  cursor: z
    .string()
    .max(200, { error: "is not a cursor from this server" })
    .optional()
    .openapi({
      param: { name: "cursor", in: "query" },
      description: "The previous page's `next_cursor`; omit for the first page.",
    }),
});

export const pageFields = {
  total: z.number().int().openapi({ description: "Tasks served in all (every page)." }),
  next_cursor: z
    .string()
    .nullable()
    .openapi({ description: "Pass as `cursor` for the next page; null on the last page." }),
};

const CURSOR_PREFIX = "after:";

export function encodeCursor(lastTask: string | null): string | null {
  return lastTask === null ? null : Buffer.from(`${CURSOR_PREFIX}${lastTask}`).toString("base64url");
}

/** The page the query asks for; a cursor this server did not make is a 400 `invalid_cursor`. */
export function pageRequest(query: { limit?: number; cursor?: string }): PageRequest {
  const limit = query.limit ?? DEFAULT_PAGE_LIMIT;
  if (query.cursor === undefined) return { limit };
  const text = /^[A-Za-z0-9_-]+$/.test(query.cursor) ? Buffer.from(query.cursor, "base64url").toString("utf8") : "";
  const after = text.startsWith(CURSOR_PREFIX) ? text.slice(CURSOR_PREFIX.length) : "";
  if (!isValidTaskName(after)) {
    throw new SktError(
      "bad_request",
      "invalid_cursor",
      "cursor: not a cursor from this server; pass the next_cursor of the previous page, or omit it for the first page",
    );
  }
  return { limit, after };
}
