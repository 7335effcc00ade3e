/**
 * Task names become folder names under the adapter root and appear in URLs, so they are held to a
 * deliberately small alphabet: no dots, slashes, percent signs, upper case or non-ASCII, which rules
 * out traversal (`..`, `a/b`), encoded traversal (`%2e%2e`), case-folding collisions on
 * case-insensitive file systems and Unicode look-alikes in one check.
 */
import { SktError } from "../errors.js";
import { TASK_NAME_PATTERN, TASK_NAME_RULE } from "./spec.js";


export const MAX_TASK_NAME_LENGTH = 64;

export function isValidTaskName(name: unknown): name is string {
  return typeof name === "string" && TASK_NAME_PATTERN.test(name);
}

/** Throws `bad_request/invalid_task_name` unless `name` is a valid task name. */
export function validateTaskName(name: unknown): asserts name is string {
  if (isValidTaskName(name)) return;
  throw new SktError(
    "bad_request",
    "invalid_task_name",
    `invalid task name ${describe(name)}: use ${TASK_NAME_RULE}`,
    { task: typeof name === "string" ? name.slice(0, 100) : null },
  );
}

/** Quote the offending value for the message without echoing unbounded client input. */
function describe(name: unknown): string {
  if (typeof name !== "string") return `(${typeof name})`;
  const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
  return JSON.stringify(shown);
}
