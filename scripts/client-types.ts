/** `npm run client:types`: regenerate src/client/openapi-types.ts from the routes (see scripts/lib/client-types.ts). */
import { writeFile } from "node:fs/promises";
import { CLIENT_TYPES_FILE, renderClientTypes } from "./lib/client-types.js";

await writeFile(CLIENT_TYPES_FILE, await renderClientTypes());
console.log(`wrote ${CLIENT_TYPES_FILE}`);
