/**
 * Commander options built from tables, so `--help` and the parser cannot drift from the code: each
 * command describes its flags once (`FlagSpec`), with default, environment variable and meaning.
 * Values stay strings here; each command validates them, so its messages are the same with or
 * without the command line. (The server's settings use the same helpers: src/cli/config-flags.ts.)
 */
import { InvalidArgumentError, Option, type Command } from "commander";

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
    if (value.startsWith("--"))
      throw new InvalidArgumentError(`${flag} needs a value, got "${value}" (values cannot start with "--")`);
    return value;
  };
}

/** "meaning [default: x; env: Y]", the help line of one flag. */
export function describeFlag(meaning: string, defaultText: string | undefined, env: string | undefined): string {
  const extra = [
    defaultText !== undefined ? `default: ${defaultText}` : undefined,
    env ? `env: ${env}` : undefined,
  ].filter(Boolean);
  return extra.length ? `${meaning} [${extra.join("; ")}]` : meaning;
}

/** Help text is plain: Markdown code quotes from the settings table are dropped. */
export const plainText = (s: string) => s.replace(/`/g, "");

/** Adds the options of `specs` to `cmd`; switches (no `value`) are booleans. */
export function addFlags(cmd: Command, specs: readonly FlagSpec[]): Command {
  for (const s of specs) {
    const def = s.defaultDoc ?? s.default;
    const option = new Option(
      s.value ? `${s.flag} <${s.value}>` : s.flag,
      describeFlag(plainText(s.meaning), def, s.env),
    );
    if (s.value) option.argParser(flagValue(s.flag));
    cmd.addOption(option);
  }
  return cmd;
}
