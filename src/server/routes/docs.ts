/**
 * `GET /openapi.json` (OpenAPI 3.0 document generated from the route definitions) and `GET /docs`
 * (Swagger UI). The page's stylesheet and script are Swagger UI's browser bundle, served by the
 * server itself from the installed `swagger-ui-dist` package, and the online validator is off, so
 * the docs work on a machine with no internet and the viewer's browser fetches nothing elsewhere.
 */
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import type { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../context.js";

export const OPENAPI_PATH = "/openapi.json";
export const DOCS_PATH = "/docs";

/** Files served from the swagger-ui-dist package under /docs/, with their content types. */
const DOCS_ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};
/** The page's own start-up script (a file rather than inline, so the page has no inline script). */
const INIT_SCRIPT = "init.js";

/** The package has no `exports` map; its files sit next to its package.json. */
function swaggerUiDir(): string {
  return path.dirname(createRequire(import.meta.url).resolve("swagger-ui-dist/package.json"));
}

const docsPage = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>SK-Tuning inference server API</title>
  <link rel="stylesheet" href="${DOCS_PATH}/swagger-ui.css">
</head>
<body>
  <div id="docs"></div>
  <script src="${DOCS_PATH}/swagger-ui-bundle.js"></script>
  <script src="${DOCS_PATH}/${INIT_SCRIPT}"></script>
</body>
</html>
`;

// validatorUrl: null switches off the badge that sends the document to validator.swagger.io.
const initScript = `window.ui = SwaggerUIBundle(${JSON.stringify({
  url: OPENAPI_PATH,
  dom_id: "#docs",
  deepLinking: true,
  validatorUrl: null,
})});
`;

export function registerDocsRoutes(app: OpenAPIHono<AppEnv>, version: string): void {
  app.doc(OPENAPI_PATH, {
    openapi: "3.0.3",
    info: {
      title: "SK-Tuning inference server",
      version,
      description:
        "One frozen backbone, many hot-swappable SK-Tuning adapters. Errors are always " +
        '`{"error": {"code", "message"}}`.',
      license: { name: "Apache-2.0", url: "https://www.apache.org/licenses/LICENSE-2.0" },
    },
    // Relative: clients resolve it against wherever they fetched this document from.
    servers: [{ url: "/", description: "The server that serves this document" }],
    tags: [
      { name: "inference", description: "Classify texts" },
      { name: "admin", description: "Manage adapters (bearer token)" },
      { name: "operations", description: "Health, readiness, metrics" },
    ],
  });

  app.get(DOCS_PATH, (c) => c.html(docsPage));
  app.get(`${DOCS_PATH}/${INIT_SCRIPT}`, (c) =>
    c.body(initScript, 200, { "content-type": "text/javascript; charset=utf-8" }),
  );
  // Each asset is read once, on first use (the bundle is 1.7 MB; most servers never serve the docs).
  const cache = new Map<string, Promise<Uint8Array>>();
  for (const [file, contentType] of Object.entries(DOCS_ASSETS)) {
    app.get(`${DOCS_PATH}/${file}`, async (c) => {
      let bytes = cache.get(file);
      if (!bytes) {
        bytes = readFile(path.join(swaggerUiDir(), file)).catch((e: unknown) => {
          cache.delete(file);
          throw e;
        });
        cache.set(file, bytes);
      }
      const body = await bytes;
      return c.body(body as Uint8Array<ArrayBuffer>, 200, {
        "content-type": contentType,
        "cache-control": "public, max-age=3600",
      });
    });
  }
}
