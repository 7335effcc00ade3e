/**
 * The server's settings as commander options, generated from `CONFIG_OPTIONS` (src/config.ts), and
 * back: the flags the user typed, for `loadConfig` (which applies the environment and defaults and
 * validates everything, so there is one parser of settings).
 */
import { Option, type Command } from "commander";
import { CONFIG_OPTIONS, type ServerConfig } from "../config.js";
import { describeFlag, flagValue, plainText } from "../flags.js";

/**
 * Adds the server settings `keys` (all of them when omitted) as options of `cmd`, described from
 * the settings table. Booleans take an optional value and have a `--no-` form, as `loadConfig` does.
 */
export function addConfigFlags(cmd: Command, keys?: readonly (keyof ServerConfig)[]): Command {
  for (const o of CONFIG_OPTIONS.filter((c) => !keys || keys.includes(c.key))) {
    const def = o.defaultDoc ?? (o.default === undefined ? "unset" : o.default);
    const option = new Option(
      o.boolean ? `${o.flag} [bool]` : `${o.flag} <value>`,
      describeFlag(plainText(o.meaning), def, o.env),
    );
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
