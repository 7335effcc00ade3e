/**
 * The typed client cannot drift from the routes: its committed types (src/client/openapi-types.ts)
 * must equal what openapi-typescript generates from the document the server serves now.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { CLIENT_TYPES_FILE, renderClientTypes } from "../../scripts/lib/client-types.js";

describe("src/client/openapi-types.ts", () => {
  it("equals the types generated from the served OpenAPI document (run `npm run client:types` after a route change)", async () => {
    const committed = await readFile(CLIENT_TYPES_FILE, "utf8");
    const generated = await renderClientTypes();
    // Every operation of the document is in the file (so an empty or truncated generation cannot pass).
    for (const operationId of ["classifyTexts", "embedTexts", "uploadAdapter", "listAuditEntries"])
      expect(generated).toContain(`${operationId}: {`);
    expect(committed === generated, "src/client/openapi-types.ts is stale: run `npm run client:types`").toBe(true);
  });
});
