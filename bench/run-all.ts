/**
 * npm run bench — every benchmark in sequence, each in its own process (so one failure does not
 * stop the rest and every script cleans up after itself), then bench/results/summary.md with all
 * tables. BENCH_ONLY=efficiency,latency runs a subset; BENCH_QUICK=1 is a smoke run.
 */
import { spawn } from "node:child_process";
import { readFile, writeFile, mkdir } from "node:fs/promises";
import path from "node:path";
import { QUICK, REPO_ROOT, REPS, RESULTS_DIR, settingsLine } from "./lib.js";

const SCRIPTS = [
  "backbone",
  "efficiency",
  "cross-task",
  "latency",
  "design",
  "event-loop",
  "lifecycle",
  "many-adapters",
  "variants",
  "peer",
];
const PER_SCRIPT_TIMEOUT_S = Number(process.env.BENCH_SCRIPT_TIMEOUT_S ?? 1200);

const only = process.env.BENCH_ONLY?.split(",")
  .map((s) => s.trim())
  .filter(Boolean);
const unknown = only?.filter((s) => !SCRIPTS.includes(s)) ?? [];
if (unknown.length) {
  console.error(`BENCH_ONLY: unknown ${unknown.join(", ")}; choose from ${SCRIPTS.join(", ")}`);
  process.exit(2);
}
const selected = only ?? SCRIPTS;

function run(name: string): Promise<{ code: number | null; seconds: number; stdout: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    // backbone.ts predates BENCH_QUICK; give it the suite's repetitions.
    const env = {
      ...process.env,
      BENCH_SCRIPT_TIMEOUT_S: String(PER_SCRIPT_TIMEOUT_S),
      ...(name === "backbone" && !process.env.BENCH_REPS ? { BENCH_REPS: String(REPS) } : {}),
    };
    const child = spawn(process.execPath, ["--import", "tsx", `bench/${name}.ts`], {
      cwd: REPO_ROOT,
      env,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let stdout = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
      process.stdout.write(d);
    });
    // Backstop: a script's own deadline should fire first; this one kills it (it cleans up on SIGTERM).
    const killer = setTimeout(() => child.kill("SIGTERM"), (PER_SCRIPT_TIMEOUT_S + 60) * 1000);
    const forward = () => child.kill("SIGTERM");
    process.once("SIGINT", forward);
    process.once("SIGTERM", forward);
    child.on("exit", (code) => {
      clearTimeout(killer);
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve({ code, seconds: (performance.now() - started) / 1000, stdout });
    });
  });
}

const started = performance.now();
const outcomes: { name: string; code: number | null; seconds: number; section: string }[] = [];
for (const name of selected) {
  console.log(`\n=== bench/${name}.ts ===`);
  const r = await run(name);
  let section: string;
  if (name === "backbone") {
    // backbone.ts prints its own table; take it from its output.
    const from = r.stdout.indexOf("USE-lite backbone");
    section = `## Raw backbone\n\n${from >= 0 ? r.stdout.slice(from).trim() : "(no output)"}\n`;
  } else {
    section = await readFile(path.join(RESULTS_DIR, `${name}.md`), "utf8").catch(
      () => `## ${name}\n\n(no results: the script failed)\n`,
    );
  }
  if (r.code !== 0) section = `${section}\n**bench/${name}.ts exited with code ${r.code}; see its output.**\n`;
  outcomes.push({ name, code: r.code, seconds: r.seconds, section });
}
const totalS = (performance.now() - started) / 1000;
const failed = outcomes.filter((o) => o.code !== 0);
const summary = [
  "# Benchmark summary",
  "",
  `${new Date().toISOString()} · ${settingsLine()} · total ${totalS.toFixed(0)} s${QUICK ? " · QUICK MODE: smoke run, numbers not meaningful" : ""}`,
  "",
  "| script | status | seconds |",
  "|---|---|---:|",
  ...outcomes.map(
    (o) => `| bench/${o.name}.ts | ${o.code === 0 ? "ok" : `FAILED (${o.code})`} | ${o.seconds.toFixed(0)} |`,
  ),
  "",
  ...outcomes.map((o) => o.section),
].join("\n");
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(path.join(RESULTS_DIR, "summary.md"), summary + "\n");
console.log(
  `\nbench: ${outcomes.length - failed.length}/${outcomes.length} scripts ok in ${totalS.toFixed(0)} s; summary in bench/results/summary.md`,
);
process.exit(failed.length ? 1 : 0);
