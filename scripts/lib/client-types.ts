/**
 * The typed client's types (src/client/openapi-types.ts), generated with openapi-typescript from the
 * OpenAPI document the server serves with its default settings, formatted as the rest of the tree.
 * `npm run client:types` writes the file; test/client/openapi-types.test.ts regenerates it and fails
 * when the committed file differs, so the client cannot drift from the routes.
 *
 * Dev tooling: it may import from src/, but nothing in src/ imports it (openapi-typescript is a dev
 * dependency).
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import openapiTS, { astToString, type OpenAPI3 } from "openapi-typescript";
import * as prettier from "prettier";
import { defaultConfig } from "../../src/config.js";
import { servedOpenApiDocument } from "./openapi-document.js";

export const CLIENT_TYPES_FILE = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../src/client/openapi-types.ts",
);

const HEADER = `/**
 * Generated from the served OpenAPI document (default settings) by \`npm run client:types\`
 * (scripts/lib/client-types.ts). Do not edit: change the route definitions in src/server/ and
 * regenerate; test/client/openapi-types.test.ts fails while this file and the document differ.
 */
`;

/** The file's text as the current routes produce it. */
export async function renderClientTypes(): Promise<string> {
  const document = await servedOpenApiDocument(defaultConfig());
  const ast = await openapiTS(document as unknown as OpenAPI3);
  const text = HEADER + astToString(ast);
  const options = await prettier.resolveConfig(CLIENT_TYPES_FILE);
  return prettier.format(text, { ...options, filepath: CLIENT_TYPES_FILE });
}
