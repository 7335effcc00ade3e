/**
 * Admin tokens: who may call `/admin/*`, with which scopes, on which tasks.
 *
 * Tokens come from `SKT_ADMIN_TOKENS_FILE` (a JSON list of entries holding the sha256 of each token,
 * never the token) and from `SKT_ADMIN_TOKEN` (one all-powerful token, named `admin`). A presented
 * token is hashed once and compared with every entry's hash by `crypto.timingSafeEqual`, with no
 * early exit, so neither the token nor which entry matched leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { SktError } from "../../errors.js";

export const SCOPES = ["read", "write", "traffic"] as const;
export type Scope = (typeof SCOPES)[number];

/** The name the single `SKT_ADMIN_TOKEN` goes by in the audit log. */
export const ENV_TOKEN_NAME = "admin";

/** RFC 6750 token68: the only characters a bearer token can carry. */
export const TOKEN_PATTERN = /^[A-Za-z0-9._~+/-]+=*$/;

/** Task globs: task-name characters plus `*` (any run, also empty). */
const GLOB_PATTERN = /^[a-z0-9_*-]{1,64}$/;

export interface AdminIdentity {
  name: string;
  scopes: ReadonlySet<Scope>;
  /** Task-name glob, e.g. `team-a-*`; `*` = every task. */
  tasks: string;
}

interface TokenEntry extends AdminIdentity {
  digest: Buffer;
}

const EntrySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, { error: "must be 1-64 characters from A-Z a-z 0-9 . _ -" }),
  sha256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, { error: "must be the token's sha256 as 64 hex digits (see `hash-token`)" }),
  scopes: z
    .array(z.enum(SCOPES, { error: `each scope must be one of: ${SCOPES.join(", ")}` }))
    .min(1, { error: "must list at least one scope" })
    .refine((s) => new Set(s).size === s.length, { error: "lists a scope twice" }),
  tasks: z
    .string()
    .regex(GLOB_PATTERN, { error: 'must be a task-name glob such as "team-a-*" (a-z 0-9 _ - and *)' })
    .default("*"),
});

export type TokenFileEntry = z.input<typeof EntrySchema>;

export function sha256Hex(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Whether a task-name glob matches `task` (`*` = any run of characters; nothing else is special). */
export function globMatches(glob: string, task: string): boolean {
  if (glob === "*") return true;
  const parts = glob.split("*");
  if (parts.length === 1) return glob === task;
  const first = parts[0];
  const last = parts[parts.length - 1];
  if (task.length < first.length + last.length || !task.startsWith(first) || !task.endsWith(last)) return false;
  let at = first.length;
  const end = task.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = task.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

export class AdminTokens {
  private constructor(private readonly entries: readonly TokenEntry[]) {}

  /** No tokens at all: the admin API is disabled. */
  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  get names(): string[] {
    return this.entries.map((e) => e.name);
  }

  /**
   * The identity whose hash equals the presented token's, or null. Every entry is compared (same
   * work whether or not, and wherever, a match is).
   */
  authenticate(presented: string): AdminIdentity | null {
    const digest = createHash("sha256").update(presented, "utf8").digest();
    let match: TokenEntry | null = null;
    for (const entry of this.entries) {
      const equal = timingSafeEqual(digest, entry.digest);
      if (equal && match === null) match = entry;
    }
    return match === null ? null : { name: match.name, scopes: match.scopes, tasks: match.tasks };
  }

  /**
   * Build from the raw file contents (or none) and the single env token. Throws
   * `bad_request/invalid_config` naming the file and the bad entry.
   */
  static from(opts: { envToken?: string | undefined; file?: { path: string; text: string } | undefined }): AdminTokens {
    const entries: TokenEntry[] = [];
    if (opts.envToken !== undefined) {
      entries.push({
        name: ENV_TOKEN_NAME,
        scopes: new Set(SCOPES),
        tasks: "*",
        digest: createHash("sha256").update(opts.envToken, "utf8").digest(),
      });
    }
    if (opts.file) entries.push(...parseTokensFile(opts.file.path, opts.file.text, entries));
    return new AdminTokens(entries);
  }

  /** Read `SKT_ADMIN_TOKENS_FILE` (synchronously: it runs once, at start-up) and combine it with `SKT_ADMIN_TOKEN`. */
  static load(config: { adminToken: string | undefined; adminTokensFile: string | undefined }): AdminTokens {
    let file: { path: string; text: string } | undefined;
    if (config.adminTokensFile !== undefined) {
      try {
        file = { path: config.adminTokensFile, text: readFileSync(config.adminTokensFile, "utf8") };
      } catch (e) {
        const reason = e instanceof Error ? e.message : String(e);
        throw invalid(`SKT_ADMIN_TOKENS_FILE: cannot read ${config.adminTokensFile}: ${reason}`);
      }
    }
    return AdminTokens.from({ envToken: config.adminToken, file });
  }
}

function invalid(message: string): SktError {
  return new SktError("bad_request", "invalid_config", message);
}

function parseTokensFile(file: string, text: string, existing: readonly TokenEntry[]): TokenEntry[] {
  const where = `SKT_ADMIN_TOKENS_FILE (${file})`;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw invalid(`${where} is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(raw)) {
    throw invalid(`${where} must hold a JSON list of {"name", "sha256", "scopes", "tasks"} entries`);
  }
  const out: TokenEntry[] = [];
  const names = new Set(existing.map((e) => e.name));
  const digests = new Set(existing.map((e) => e.digest.toString("hex")));
  raw.forEach((item, i) => {
    const label =
      typeof item === "object" && item !== null && typeof (item as { name?: unknown }).name === "string"
        ? `entry ${i} ("${String((item as { name: string }).name).slice(0, 64)}")`
        : `entry ${i}`;
    const r = EntrySchema.safeParse(item);
    if (!r.success) {
      const problems = r.error.issues.map((iss) => `${iss.path.length ? iss.path.join(".") : "entry"}: ${iss.message}`);
      throw invalid(`${where}: ${label}: ${problems.join("; ")}`);
    }
    const { name, sha256, scopes, tasks } = r.data;
    const hex = sha256.toLowerCase();
    if (names.has(name)) {
      const why = name === ENV_TOKEN_NAME ? ` ("${ENV_TOKEN_NAME}" is SKT_ADMIN_TOKEN's name)` : "";
      throw invalid(`${where}: ${label}: the name is used twice${why}`);
    }
    if (digests.has(hex)) throw invalid(`${where}: ${label}: the same token hash appears twice`);
    names.add(name);
    digests.add(hex);
    out.push({ name, scopes: new Set(scopes), tasks, digest: Buffer.from(hex, "hex") });
  });
  return out;
}
