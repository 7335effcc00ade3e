/**
 * `GET /openapi.json` (OpenAPI 3.0 document generated from the route definitions) and `GET /docs`
 * (Scalar API reference). The page's JavaScript is Scalar's standalone browser bundle served by the
 * server itself from the installed npm package (`GET /docs/scalar.js`), with Scalar's web fonts and
 * telemetry off, so the docs work on a machine with no internet, and the viewer's browser fetches
 * nothing from a CDN.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "../context.js";

export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";
export const DOCS_SCRIPT_PATH = "/docs/scalar.js";

/** The UMD bundle inside @scalar/api-reference (not in its package exports, so found next to its entry). */
function scalarBundlePath(): string {
  const entry = createRequire(import.meta.url).resolve("@scalar/api-reference");
  return path.join(path.dirname(entry), "browser", "standalone.js");
}

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
  // Offline and self-contained: no CDN, no web fonts, no telemetry, none of the hosted (scalar.com) features.
  app.get(
    DOCS_PATH,
    Scalar({
      url: OPENAPI_PATH,
      pageTitle: "SK-Tuning inference server API",
      cdn: DOCS_SCRIPT_PATH,
      withDefaultFonts: false,
      telemetry: false,
      showDeveloperTools: "never",
      agent: { disabled: true },
      mcp: { disabled: true },
    }),
  );
  let bundle: Promise<Uint8Array> | undefined;
  app.get(DOCS_SCRIPT_PATH, async (c) => {
    // Read once (4.8 MB), on first use: most servers never serve the docs page.
    bundle ??= readFile(scalarBundlePath()).catch((e: unknown) => {
      bundle = undefined;
      throw e;
    });
    const body = await bundle;
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "public, max-age=3600" });
  });
}
