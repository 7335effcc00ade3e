/**
 * A replica's local read-through copy of adapter bytes held in a shared store:
 * `<root>/<task>/v000042.safetensors`. It lets a replica keep serving (and prepare again after an
 * eviction) while the database is away. Every read is checked against the sha256 the database
 * gave, so a stale, torn or foreign file is never served: it is simply a miss.
 */
import { createHash, randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { validateTaskName } from "../task-name.js";
import { RECENT_FILE, TEMP_PREFIX, parseVersionFileName, versionFileName } from "../store.js";
import { isValidTaskName } from "../task-name.js";

export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

export class LocalCopy {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The bytes of `task`@`version` when the local file matches `sha256`, else null. */
  async get(task: string, version: number, sha256: string): Promise<Uint8Array | null> {
    try {
      const data = await fsp.readFile(this.file(task, version));
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return sha256Hex(bytes) === sha256 ? bytes : null;
    } catch {
      return null;
    }
  }

  /** Best effort: a full disk only costs the copy, never the request that fetched the bytes. */
  async put(task: string, version: number, bytes: Uint8Array): Promise<void> {
    const file = this.file(task, version);
    await writeAtomically(file, bytes).catch(() => undefined);
  }

  /** Removes the task's other versions (best effort). */
  async keepOnly(task: string, version: number): Promise<void> {
    validateTaskName(task);
    const dir = path.join(this.root, task);
    const keep = versionFileName(version);
    const names = await fsp.readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name !== keep && parseVersionFileName(name) !== null) await fsp.unlink(path.join(dir, name)).catch(() => undefined);
    }
  }

  /** Drops the task's files (it was deleted in the shared store). */
  async drop(task: string): Promise<void> {
    validateTaskName(task);
    await fsp.rm(path.join(this.root, task), { recursive: true, force: true }).catch(() => undefined);
  }

  async readRecent(): Promise<string[]> {
    try {
      return (await fsp.readFile(path.join(this.root, RECENT_FILE), "utf8")).split("\n").filter(isValidTaskName);
    } catch {
      return [];
    }
  }

  async writeRecent(tasks: readonly string[]): Promise<void> {
    await writeAtomically(path.join(this.root, RECENT_FILE), new TextEncoder().encode(tasks.filter(isValidTaskName).join("\n")));
  }

  private file(task: string, version: number): string {
    validateTaskName(task);
    return path.join(this.root, task, versionFileName(version));
  }
}

/** Temp sibling + rename: a crash leaves the old file or the new one (and a temp file), never a torn one. */
async function writeAtomically(file: string, bytes: Uint8Array): Promise<void> {
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const tmp = path.join(path.dirname(file), `${TEMP_PREFIX}${randomBytes(6).toString("hex")}`);
  try {
    await fsp.writeFile(tmp, bytes);
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw e;
  }
}
