/**
 * Commander options built from tables, so `--help` and the parsers cannot drift from the code:
 * the server's settings come from `CONFIG_OPTIONS` (src/config.ts), other commands from their own
 * `FlagSpec` tables. Values stay strings here; validation is the job of each command (`loadConfig`
 * for server settings), so the messages are the same with or without the command line.
 */
import { InvalidArgumentError, Option, type Command } from "commander";
import { CONFIG_OPTIONS, type ServerConfig } from "../config.js";

/** One flag of a command: its spelling, value placeholder, default, environment variable and meaning. */
export interface FlagSpec {
  /** e.g. "--batch-size". */
  flag: string;
  /** Placeholder shown in help (e.g. "N"); absent for a switch. */
  value?: string;
  /** The default as the user would type it; `defaultDoc` when that needs words. */
  default?: string;
  defaultDoc?: string;
  /** The environment variable read when the flag is absent. */
  env?: string;
  meaning: string;
}

/** Rejects a value that looks like a flag: `--out --quiet` means a forgotten value, not a file named "--quiet". */
export function flagValue(flag: string) {
  return (value: string): string => {
    if (value.startsWith("--")) throw new InvalidArgumentError(`${flag} needs a value, got "${value}" (values cannot start with "--")`);
    return value;
  };
}

/** "meaning [default: x; env: Y]", the help line of one flag. */
export function describeFlag(meaning: string, defaultText: string | undefined, env: string | undefined): string {
  const extra = [defaultText !== undefined ? `default: ${defaultText}` : undefined, env ? `env: ${env}` : undefined].filter(Boolean);
  return extra.length ? `${meaning} [${extra.join("; ")}]` : meaning;
}

const plain = (s: string) => s.replace(/`/g, "");

/** Adds the options of `specs` to `cmd`; switches (no `value`) are booleans. */
export function addFlags(cmd: Command, specs: readonly FlagSpec[]): Command {
  for (const s of specs) {
    const def = s.defaultDoc ?? s.default;
    const option = new Option(s.value ? `${s.flag} <${s.value}>` : s.flag, describeFlag(plain(s.meaning), def, s.env));
    if (s.value) option.argParser(flagValue(s.flag));
    cmd.addOption(option);
  }
  return cmd;
}

/**
 * Adds the server settings `keys` (all of them when omitted) as options of `cmd`, described from
 * the settings table. Booleans take an optional value and have a `--no-` form, as `loadConfig` does.
 */
export function addConfigFlags(cmd: Command, keys?: readonly (keyof ServerConfig)[]): Command {
  for (const o of CONFIG_OPTIONS.filter((c) => !keys || keys.includes(c.key))) {
    const def = o.defaultDoc ?? (o.default === undefined ? "unset" : o.default);
    const option = new Option(o.boolean ? `${o.flag} [bool]` : `${o.flag} <value>`, describeFlag(plain(o.meaning), def, o.env));
    option.argParser(flagValue(o.flag));
    cmd.addOption(option);
    if (o.boolean) cmd.addOption(new Option(`--no-${o.flag.slice(2)}`, `Same as ${o.flag} false.`));
  }
  return cmd;
}

/**
 * The server-setting flags the user typed on `cmd`'s command line, rewritten as `--flag=value` for
 * `loadConfig` (which applies the environment and defaults and validates everything).
 */
export function configArgv(cmd: Command): string[] {
  const out: string[] = [];
  for (const o of CONFIG_OPTIONS) {
    const attr = o.flag.slice(2).replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (cmd.getOptionValueSource(attr) !== "cli") continue;
    const value: unknown = cmd.getOptionValue(attr);
    out.push(`${o.flag}=${value === true ? "true" : value === false ? "false" : String(value)}`);
  }
  return out;
}
