/**
 * Redocly CLI's `lint` with its built-in `recommended` rules on an OpenAPI document, as a report.
 * Redocly runs in an empty temporary folder with `--extends recommended`, so no redocly.yaml or
 * ignore file can soften the rules; telemetry and the update check are off (CI has no internet).
 *
 * Dev tooling (`npm run lint:api` and its test); nothing in src/ imports it.
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";

export interface LintProblem {
  ruleId: string;
  severity: "error" | "warn";
  message: string;
  location?: { pointer?: string }[];
}

export interface LintReport {
  totals: { errors: number; warnings: number; ignored: number };
  problems: LintProblem[];
}

function redoclyBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("@redocly/cli/package.json")), "bin", "cli.js");
}

function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [redoclyBin(), ...args], {
      cwd,
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

export async function redoclyLint(document: unknown): Promise<LintReport> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-lint-api-"));
  try {
    const file = path.join(dir, "openapi.json");
    await writeFile(file, JSON.stringify(document, null, 2));
    const out = await run(
      ["lint", file, "--extends", "recommended", "--format", "json", "--max-problems", "1000"],
      dir,
    );
    // The JSON report is the one object on stdout; banners (e.g. a Node version notice) are not JSON.
    const start = out.stdout.indexOf("{");
    if (start < 0) throw new Error(`redocly lint produced no report (exit ${out.code}):\n${out.stdout}${out.stderr}`);
    return JSON.parse(out.stdout.slice(start)) as LintReport;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** One line per problem, then the totals. */
export function formatLintReport(report: LintReport): string {
  const lines = report.problems.map(
    (p) => `${p.severity.padEnd(5)} ${p.ruleId.padEnd(28)} ${p.location?.[0]?.pointer ?? ""}\n      ${p.message}`,
  );
  const { errors, warnings, ignored } = report.totals;
  lines.push(`redocly lint (recommended): ${errors} errors, ${warnings} warnings, ${ignored} ignored`);
  return lines.join("\n");
}

/** Clean means nothing at all: no error, no warning, nothing ignored. */
export function lintIsClean(report: LintReport): boolean {
  const { errors, warnings, ignored } = report.totals;
  return errors + warnings + ignored === 0 && report.problems.length === 0;
}
