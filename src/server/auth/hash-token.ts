/**
 * `hash-token`: read an admin token from stdin and print the `SKT_ADMIN_TOKENS_FILE` entry for it
 * (the token's sha256, never the token), e.g.
 *
 *   openssl rand -base64 32 | tr -d '\n' | tee team-a.token | skt hash-token --name team-a --scopes read,write --tasks 'team-a-*'
 *
 * Only the first line of stdin is used (a trailing newline is not part of the token).
 */
import { parseArgs } from "node:util";
import { SktError } from "../../errors.js";
import { AdminTokens, SCOPES, TOKEN_PATTERN, sha256Hex, type Scope, type TokenFileEntry } from "./tokens.js";

export const MIN_TOKEN_LENGTH = 16;

function usage(message: string): SktError {
  return new SktError(
    "bad_request",
    "invalid_arguments",
    `hash-token: ${message}\nusage: hash-token --name NAME [--scopes read,write,traffic] [--tasks GLOB] < token`,
  );
}

/** The entry for `token` (pure; the command below does the I/O). */
export function tokenEntry(token: string, opts: { name: string; scopes: Scope[]; tasks: string }): TokenFileEntry {
  if (!TOKEN_PATTERN.test(token)) {
    throw usage(
      "the token may contain only A-Z a-z 0-9 . _ ~ + / - (optionally ending in =), or no client can send it",
    );
  }
  if (token.length < MIN_TOKEN_LENGTH) throw usage(`the token is shorter than ${MIN_TOKEN_LENGTH} characters`);
  const entry = { name: opts.name, sha256: sha256Hex(token), scopes: opts.scopes, tasks: opts.tasks };
  // The server's own check, so this never prints an entry the server would refuse.
  AdminTokens.from({ file: { path: "hash-token", text: JSON.stringify([entry]) } });
  return entry;
}

export interface HashTokenIo {
  stdin: AsyncIterable<Uint8Array | string>;
  stdout: { write(s: string): unknown };
}

export async function hashTokenCommand(
  argv: readonly string[],
  io: HashTokenIo = { stdin: process.stdin, stdout: process.stdout },
): Promise<void> {
  let values: { name?: string; scopes?: string; tasks?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: { name: { type: "string" }, scopes: { type: "string" }, tasks: { type: "string" } },
    }));
  } catch (e) {
    throw usage(e instanceof Error ? e.message : String(e));
  }
  if (!values.name) throw usage("--name is required");
  const scopes = (values.scopes ?? "read").split(",").map((s) => s.trim());
  for (const s of scopes)
    if (!(SCOPES as readonly string[]).includes(s)) throw usage(`unknown scope "${s}" (use ${SCOPES.join(", ")})`);
  const chunks: string[] = [];
  for await (const chunk of io.stdin)
    chunks.push(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
  const token = (chunks.join("").split(/\r?\n/)[0] ?? "").trim();
  if (token === "") throw usage("no token on stdin");
  const entry = tokenEntry(token, { name: values.name, scopes: scopes as Scope[], tasks: values.tasks ?? "*" });
  io.stdout.write(`${JSON.stringify(entry)}\n`);
}
