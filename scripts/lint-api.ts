/**
 * `npm run lint:api`: lint the OpenAPI document the server serves with Redocly CLI's built-in
 * `recommended` rules, and fail on any error OR warning (redocly itself exits 0 on warnings).
 *
 * The document comes from the real app (scripts/lib/openapi-document.ts) with the settings the
 * server would use: the environment's SKT_* variables and any flags after `--`.
 */
import { loadConfig } from "../src/config.js";
import { servedOpenApiDocument } from "./lib/openapi-document.js";
import { formatLintReport, lintIsClean, redoclyLint } from "./lib/redocly-lint.js";

const report = await redoclyLint(await servedOpenApiDocument(loadConfig({ argv: process.argv.slice(2) })));
console.log(`GET /openapi.json\n${formatLintReport(report)}`);
if (!lintIsClean(report)) process.exitCode = 1;
