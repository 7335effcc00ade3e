/**
 * `GET /openapi.json` (OpenAPI 3.0 document generated from the route definitions) and `GET /docs`
 * (Scalar API reference). The page is HTML served by us, but the browser loads Scalar's JavaScript
 * from its CDN (jsdelivr); offline, `/openapi.json` still works and `/docs` renders blank.
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "../context.js";

export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";

export function registerDocsRoutes(app: OpenAPIHono<AppEnv>, version: string): void {
  app.doc(OPENAPI_PATH, {
    openapi: "3.0.3",
    info: {
      title: "SK-Tuning inference server",
      version,
      description:
        "One frozen backbone, many hot-swappable SK-Tuning adapters. Errors are always " +
        '`{"error": {"code", "message"}}`.',
    },
    tags: [
      { name: "inference", description: "Classify texts" },
      { name: "admin", description: "Manage adapters (bearer token)" },
      { name: "operations", description: "Health, readiness, metrics" },
    ],
  });
  app.get(DOCS_PATH, Scalar({ url: OPENAPI_PATH, pageTitle: "SK-Tuning inference server API" }));
}
