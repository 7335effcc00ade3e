/**
 * The `skt` program: every command, its help and its exit code. Commands live in their own modules
 * (server-commands, client-commands, train/cli); this file assembles them and maps failures to
 * exit codes. With no command at all it runs `serve`, as `npm start` always has.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { isSktError } from "../errors.js";
import { addClientCommands } from "./client-commands.js";
import { ServerError } from "../client/client.js";
import { addSecurityCommands } from "./security-commands.js";
import { addServerCommands } from "./server-commands.js";
import { addTrainCommands } from "../train/commands.js";

/** Exit codes, as documented in `skt --help` and the README. */
export const EXIT = {
  ok: 0,
  /** The work failed: a training or evaluation error, an invalid adapter file, an error answer from the server. */
  failed: 1,
  /** The command line or configuration is wrong: unknown command or flag, a missing or bad value. */
  usage: 2,
  /** The server could not be reached. */
  unreachable: 3,
} as const;

const USAGE_ERROR_CODES = new Set(["invalid_config", "invalid_arguments"]);

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };

/** Commander's "error: …\n(Did you mean x?)" as one line, with where to look next. */
function oneLine(message: string, cmd: Command): string {
  const text = message
    .replace(/^error: /, "")
    .replace(/\s*\n\(Did you mean (.+)\?\)/, " (did you mean $1?)")
    .replace(/\s+/g, " ")
    .trim();
  const path: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) path.unshift(c.name());
  return `${path.join(" ")}: ${text}; see '${path.join(" ")} --help'\n`;
}

/** Same settings on every command: errors on one line, suggestions, no process.exit from commander. */
function configure(cmd: Command): void {
  cmd
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureHelp({ sortSubcommands: false, showGlobalOptions: false })
    .configureOutput({ outputError: (message, write) => write(oneLine(message, cmd)) });
  for (const sub of cmd.commands) configure(sub);
}

export function buildProgram(): Command {
  const program = new Command("skt")
    .description("SK-Tuning adapter server: serve, train and evaluate adapters, and manage a running server.")
    .version(pkg.version, "-V, --version", "print the version")
    .enablePositionalOptions()
    .addHelpText(
      "after",
      [
        "",
        "Run 'skt <command> --help' for a command's flags, defaults and environment variables.",
        "",
        "Examples:",
        '  $ skt train --task sst2 --data train.tsv --prompt "is this review positive or negative?" --out build/sst2.safetensors',
        "  $ skt serve --port 8080",
        "",
        "Exit codes: 0 success; 1 the work failed (training error, invalid file, an error answer from the server);",
        "  2 wrong command line or configuration (unknown command or flag, missing or bad value); 3 server unreachable.",
      ].join("\n"),
    );
  addServerCommands(program);
  addTrainCommands(program);
  addClientCommands(program);
  addSecurityCommands(program);
  configure(program);
  return program;
}

/** The exit code for a failure, after printing it on one line (never the admin token: it is in no message). */
export function reportFailure(e: unknown): number {
  if (e instanceof CommanderError) {
    // Commander has already printed its message, or the help (asked for: exit code 0; shown because a
    // subcommand is missing: not 0) or the version.
    return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
  }
  if (e instanceof ServerError) {
    console.error(
      e.status === 0 ? `error (${e.code}): ${e.message}` : `server error ${e.status} (${e.code}): ${e.message}`,
    );
    return e.status === 0 ? EXIT.unreachable : EXIT.failed;
  }
  if (isSktError(e)) {
    console.error(`error (${e.code}): ${e.message}`);
    return USAGE_ERROR_CODES.has(e.code) ? EXIT.usage : EXIT.failed;
  }
  console.error(e);
  return EXIT.failed;
}

/** Runs one command line (`argv` without node and the script). Resolves when the command's work has started or finished. */
export async function runCli(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv.length === 0 ? ["serve"] : [...argv], { from: "user" });
    return EXIT.ok;
  } catch (e) {
    return reportFailure(e);
  }
}
