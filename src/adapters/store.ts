/**
 * The on-disk adapter store: bytes only (it never parses an adapter).
 *
 *   <root>/<task>/v000001.safetensors, v000002.safetensors, …   immutable once renamed into place
 *   <root>/<task>/CURRENT                                         text: the current version number
 *
 * Every file is written to a `.tmp-*` sibling, fsynced, renamed over its final name and the folder
 * fsynced, so after a crash readers see either the old or the new complete file, never a partial
 * one. A task is visible only while CURRENT names an existing version; nothing is guessed when it
 * does not. Mutations are serialized per task inside this process; readers take no lock because
 * renames are atomic. One process owns a root: two processes writing the same task could both pick
 * the same next version number.
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { SktError, isSktError } from "../errors.js";
import { isValidTaskName, validateTaskName } from "./task-name.js";

export interface StoredVersion {
  version: number;
  bytes: number;
  /** ISO time, from the file's mtime (when its bytes were written). */
  createdAt: string;
}

/** The slice of a file handle the store uses; node's `FileHandle` satisfies it. */
export interface StoreFileHandle {
  write(buffer: Uint8Array, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** The slice of `node:fs/promises` the store uses; injectable so tests can make the disk fail. */
export interface StoreFs {
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>;
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  stat(path: string): Promise<{ size: number; mtime: Date; isFile(): boolean }>;
  open(path: string, flags: string, mode?: number): Promise<StoreFileHandle>;
  rename(oldPath: string, newPath: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
}

export interface AdapterStoreOptions {
  /** After a successful write, the oldest versions that are neither current nor just written are
   * deleted until at most this many remain. Integer ≥ 1, or Infinity to keep everything. */
  maxVersionsPerTask?: number;
  fs?: StoreFs;
}

export const DEFAULT_ADAPTER_ROOT = "adapters";
export const DEFAULT_MAX_VERSIONS_PER_TASK = 20;
export const CURRENT_FILE = "CURRENT";
export const TEMP_PREFIX = ".tmp-";

const VERSION_FILE = /^v(\d{6,})\.safetensors$/;

/** `v000042.safetensors`; wider than 6 digits only past 999999. */
export function versionFileName(version: number): string {
  return `v${String(version).padStart(6, "0")}.safetensors`;
}

/** The version a file name holds, or null. Only the canonical spelling counts, so `v0000001…` and
 * `v000001.safetensors` cannot both claim version 1. */
export function parseVersionFileName(name: string): number | null {
  const m = VERSION_FILE.exec(name);
  if (!m) return null;
  const version = Number(m[1]);
  return isValidVersion(version) && versionFileName(version) === name ? version : null;
}

function isValidVersion(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 1;
}

function validateVersion(v: unknown): asserts v is number {
  if (!isValidVersion(v)) {
    throw new SktError("bad_request", "invalid_version", `invalid adapter version ${String(v)}: expected an integer ≥ 1`);
  }
}

/** CURRENT holds one positive integer; anything else is corrupt and treated as absent. */
function parseCurrent(text: string): number | null {
  const trimmed = text.trim();
  if (!/^[1-9]\d*$/.test(trimmed)) return null;
  const version = Number(trimmed);
  return isValidVersion(version) ? version : null;
}

function errnoOf(e: unknown): string | undefined {
  return typeof e === "object" && e !== null && "code" in e ? String((e as { code: unknown }).code) : undefined;
}

/** ENOTDIR too: a file sitting where a task folder should be means "no such task". */
function isAbsent(e: unknown): boolean {
  const code = errnoOf(e);
  return code === "ENOENT" || code === "ENOTDIR";
}

/** Out of file descriptors (process or system): load, not a broken disk; retrying later can work. */
const DESCRIPTOR_ERRNOS = new Set(["EMFILE", "ENFILE"]);

/**
 * The message names the file relative to the store (`task/v000003.safetensors`): it reaches
 * clients, and the server's folders are none of their business. The absolute path and the
 * system's own message stay in `details`, which the server logs and never sends on a 5xx.
 */
function storageError(code: "write_failed" | "read_failed", action: string, target: string, e: unknown): SktError {
  if (isSktError(e)) return e;
  const errno = errnoOf(e) ?? "EUNKNOWN";
  const reason = e instanceof Error ? e.message : String(e);
  const details = { path: target, errno, reason };
  if (DESCRIPTOR_ERRNOS.has(errno)) {
    return new SktError("not_ready", "too_many_open_files", `adapter store: the server has no file descriptor left (${errno}); retry shortly`, details);
  }
  const shown = target.split(path.sep).slice(-2).join("/");
  return new SktError("storage", code, `adapter store: ${action} ${shown} failed (${errno})`, details);
}

/** Per-key FIFO mutex: callers on one key run one at a time, different keys never wait on each other. */
class KeyedMutex {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(key, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      // Drop the entry once nobody queued behind us, so the map does not grow with every task ever seen.
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

export class AdapterStore {
  readonly root: string;
  private readonly fs: StoreFs;
  private readonly maxVersions: number;
  private readonly locks = new KeyedMutex();

  constructor(root: string = DEFAULT_ADAPTER_ROOT, options: AdapterStoreOptions = {}) {
    this.root = path.resolve(root);
    this.fs = options.fs ?? fsp;
    const max = options.maxVersionsPerTask ?? DEFAULT_MAX_VERSIONS_PER_TASK;
    if (!(max === Infinity || (Number.isSafeInteger(max) && max >= 1))) {
      throw new SktError("bad_request", "invalid_option", `maxVersionsPerTask must be an integer ≥ 1 or Infinity, got ${max}`);
    }
    this.maxVersions = max;
  }

  // ---- readers (lock-free: they only ever observe renamed, complete files) ----

  /** Tasks whose CURRENT names an existing version, sorted. */
  async listTasks(): Promise<string[]> {
    const names = (await this.readdirOrEmpty(this.root)).filter(isValidTaskName).sort();
    const visible: string[] = [];
    for (const task of names) {
      if ((await this.current(task)) !== null) visible.push(task);
    }
    return visible;
  }

  /** Every complete version file of the task, ascending (current or not). */
  async listVersions(task: string): Promise<StoredVersion[]> {
    validateTaskName(task);
    const out: StoredVersion[] = [];
    for (const version of await this.versionNumbers(task)) {
      const file = this.versionPath(task, version);
      try {
        const st = await this.fs.stat(file);
        if (st.isFile()) out.push({ version, bytes: st.size, createdAt: st.mtime.toISOString() });
      } catch (e) {
        if (!isAbsent(e)) throw storageError("read_failed", "stat", file, e); // else: pruned meanwhile
      }
    }
    return out;
  }

  /** The current version, or null when CURRENT is missing, corrupt or names a missing version. */
  async current(task: string): Promise<number | null> {
    validateTaskName(task);
    const version = await this.readPointer(task);
    if (version === null) return null;
    return (await this.isVersionFile(task, version)) ? version : null;
  }

  async read(task: string, version: number): Promise<Uint8Array> {
    validateTaskName(task);
    validateVersion(version);
    const file = this.versionPath(task, version);
    try {
      const data = await this.fs.readFile(file);
      // A plain Uint8Array view (no copy): callers get exactly the declared type, not a Buffer.
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (e) {
      if (isAbsent(e) || errnoOf(e) === "EISDIR") throw versionNotFound(task, version);
      throw storageError("read_failed", "reading", file, e);
    }
  }

  // ---- mutations (serialized per task) ----

  /** Store `bytes` as version max+1 and make it current; returns the new version. */
  async write(task: string, bytes: Uint8Array): Promise<number> {
    validateTaskName(task);
    return this.locks.run(task, async () => {
      const version = await this.writeVersionLocked(task, bytes);
      // If this fails the new file stays behind as a non-current version; CURRENT is untouched.
      await this.writePointer(task, version);
      await this.prune(task, version);
      return version;
    });
  }

  /** Store `bytes` as version max+1 without touching CURRENT, so a caller can prepare it and only
   * then `setCurrent` (the hot-swap order). */
  async writeVersion(task: string, bytes: Uint8Array): Promise<number> {
    validateTaskName(task);
    return this.locks.run(task, async () => {
      const version = await this.writeVersionLocked(task, bytes);
      await this.prune(task, version);
      return version;
    });
  }

  /** Point CURRENT at an existing version (promote or roll back). */
  async setCurrent(task: string, version: number): Promise<void> {
    validateTaskName(task);
    validateVersion(version);
    await this.locks.run(task, async () => {
      if (!(await this.isVersionFile(task, version))) throw versionNotFound(task, version);
      await this.writePointer(task, version);
    });
  }

  /**
   * Remove one version that is not current (an upload whose promotion failed takes its file back,
   * so a failed upload leaves nothing behind). Best effort on the unlink: the version is invisible
   * to readers unless CURRENT names it, which this refuses.
   */
  async deleteVersion(task: string, version: number): Promise<void> {
    validateTaskName(task);
    validateVersion(version);
    await this.locks.run(task, async () => {
      if ((await this.readPointer(task)) === version) {
        throw new SktError("conflict", "version_is_current", `v${version} of task "${task}" is current; roll back or delete the task instead`);
      }
      await this.fs.unlink(this.versionPath(task, version)).catch(() => undefined);
      await this.fsyncDir(this.taskDir(task)).catch(() => undefined);
      await this.removeUnborn(task);
    });
  }

  /** Remove a task: CURRENT goes first (durably), so the task vanishes in one step; then its files.
   * Foreign files in the folder are left alone (and then so is the folder). */
  async deleteTask(task: string): Promise<void> {
    validateTaskName(task);
    await this.locks.run(task, async () => {
      const dir = this.taskDir(task);
      const entries = await this.readdirOrNull(dir);
      if (entries === null) {
        throw new SktError("not_found", "task_not_found", `no adapter task "${task}"`, { task });
      }
      if (entries.includes(CURRENT_FILE)) {
        await this.unlinkOrThrow(path.join(dir, CURRENT_FILE));
        await this.fsyncDir(dir);
      }
      const owned = entries.filter((n) => parseVersionFileName(n) !== null || n.startsWith(TEMP_PREFIX));
      for (const name of owned) await this.unlinkOrThrow(path.join(dir, name));
      await this.removeDirIfEmpty(dir);
    });
  }

  /** Start-up clean-up: delete `.tmp-*` files left in task folders by a crash; nothing else. */
  async recover(): Promise<{ removedTempFiles: string[] }> {
    const removedTempFiles: string[] = [];
    for (const task of (await this.readdirOrEmpty(this.root)).filter(isValidTaskName)) {
      // Locked so a recover() racing a live write cannot delete that write's temp file.
      await this.locks.run(task, async () => {
        const dir = this.taskDir(task);
        for (const name of await this.readdirOrEmpty(dir)) {
          if (!name.startsWith(TEMP_PREFIX)) continue;
          const file = path.join(dir, name);
          if (!(await this.isFile(file))) continue;
          await this.unlinkOrThrow(file);
          removedTempFiles.push(file);
        }
      });
    }
    return { removedTempFiles: removedTempFiles.sort() };
  }

  // ---- internals ----

  /** The only place task paths are built: from a validated name, under the resolved root. */
  private taskDir(task: string): string {
    validateTaskName(task);
    return path.join(this.root, task);
  }

  private versionPath(task: string, version: number): string {
    validateVersion(version);
    return path.join(this.taskDir(task), versionFileName(version));
  }

  private async writeVersionLocked(task: string, bytes: Uint8Array): Promise<number> {
    await this.ensureTaskDir(task);
    const existing = await this.versionNumbers(task);
    const version = (existing.length > 0 ? existing[existing.length - 1] : 0) + 1;
    try {
      await this.atomicWrite(this.taskDir(task), versionFileName(version), bytes);
    } catch (e) {
      // A failure after the rename (the folder fsync) would leave a complete file nobody asked for;
      // the number is ours (taken under the task's lock), so take the file back.
      await this.fs.unlink(this.versionPath(task, version)).catch(() => undefined);
      await this.removeUnborn(task);
      throw e;
    }
    return version;
  }

  /** A task folder with no CURRENT and nothing in it was made by a first upload that failed: remove it (best effort). */
  private async removeUnborn(task: string): Promise<void> {
    try {
      if ((await this.readPointer(task)) === null) await this.removeDirIfEmpty(this.taskDir(task));
    } catch {
      // An empty folder without CURRENT is invisible; leaving it is harmless.
    }
  }

  private async writePointer(task: string, version: number): Promise<void> {
    await this.atomicWrite(this.taskDir(task), CURRENT_FILE, new TextEncoder().encode(`${version}\n`));
  }

  private async readPointer(task: string): Promise<number | null> {
    const file = path.join(this.taskDir(task), CURRENT_FILE);
    try {
      return parseCurrent(new TextDecoder().decode(await this.fs.readFile(file)));
    } catch (e) {
      if (isAbsent(e) || errnoOf(e) === "EISDIR") return null;
      throw storageError("read_failed", "reading", file, e);
    }
  }

  /** Temp file → all bytes → fsync → close → rename → fsync folder. On failure before the rename the
   * temp file is removed and the final name is untouched. */
  private async atomicWrite(dir: string, name: string, bytes: Uint8Array): Promise<void> {
    const target = path.join(dir, name);
    const temp = path.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString("hex")}`);
    let handle: StoreFileHandle | undefined;
    try {
      handle = await this.fs.open(temp, "wx", 0o644); // wx: never reuse someone else's file
      await writeAll(handle, bytes);
      await handle.sync();
      const h = handle;
      handle = undefined;
      await h.close();
      await this.fs.rename(temp, target);
    } catch (e) {
      await handle?.close().catch(() => undefined);
      await this.fs.unlink(temp).catch(() => undefined); // may never have been created
      throw storageError("write_failed", "writing", target, e);
    }
    await this.fsyncDir(dir);
  }

  /** Makes renames/unlinks in `dir` durable. Windows cannot open folders for fsync. */
  private async fsyncDir(dir: string): Promise<void> {
    if (process.platform === "win32") return;
    let handle: StoreFileHandle | undefined;
    try {
      handle = await this.fs.open(dir, "r");
      await handle.sync();
    } catch (e) {
      throw storageError("write_failed", "syncing folder", dir, e);
    } finally {
      await handle?.close().catch(() => undefined);
    }
  }

  private async ensureTaskDir(task: string): Promise<void> {
    const dir = this.taskDir(task);
    let created: string | undefined;
    try {
      created = await this.fs.mkdir(dir, { recursive: true });
    } catch (e) {
      throw storageError("write_failed", "creating folder", dir, e);
    }
    // A new folder's own entry lives in its parent; without this a crash could lose the whole task.
    if (created !== undefined) await this.fsyncDir(path.dirname(dir));
  }

  /** Drop old versions beyond the limit, oldest first, never the current one or `keep`. Best effort:
   * the write already succeeded, and a leftover old file is harmless (the next write retries). */
  private async prune(task: string, keep: number): Promise<void> {
    if (this.maxVersions === Infinity) return;
    try {
      const versions = await this.versionNumbers(task);
      const excess = versions.length - this.maxVersions;
      if (excess <= 0) return;
      const current = await this.readPointer(task);
      const victims = versions.filter((v) => v !== current && v !== keep).slice(0, excess);
      for (const v of victims) await this.fs.unlink(this.versionPath(task, v));
    } catch {
      // Intentionally swallowed; see above.
    }
  }

  /** Version numbers present as canonically named entries, ascending. */
  private async versionNumbers(task: string): Promise<number[]> {
    const names = await this.readdirOrEmpty(this.taskDir(task));
    return names
      .map(parseVersionFileName)
      .filter((v): v is number => v !== null)
      .sort((a, b) => a - b);
  }

  private async isVersionFile(task: string, version: number): Promise<boolean> {
    return this.isFile(this.versionPath(task, version));
  }

  private async isFile(file: string): Promise<boolean> {
    try {
      return (await this.fs.stat(file)).isFile();
    } catch (e) {
      if (isAbsent(e)) return false;
      throw storageError("read_failed", "stat", file, e);
    }
  }

  private async readdirOrNull(dir: string): Promise<string[] | null> {
    try {
      return await this.fs.readdir(dir);
    } catch (e) {
      if (isAbsent(e)) return null;
      throw storageError("read_failed", "listing", dir, e);
    }
  }

  private async readdirOrEmpty(dir: string): Promise<string[]> {
    return (await this.readdirOrNull(dir)) ?? [];
  }

  private async unlinkOrThrow(file: string): Promise<void> {
    try {
      await this.fs.unlink(file);
    } catch (e) {
      if (!isAbsent(e)) throw storageError("write_failed", "deleting", file, e);
    }
  }

  private async removeDirIfEmpty(dir: string): Promise<void> {
    try {
      await this.fs.rmdir(dir);
    } catch (e) {
      const code = errnoOf(e);
      if (code === "ENOTEMPTY" || code === "EEXIST" || isAbsent(e)) return; // foreign files stay
      throw storageError("write_failed", "removing folder", dir, e);
    }
  }
}

function versionNotFound(task: string, version: number): SktError {
  return new SktError("not_found", "version_not_found", `adapter task "${task}" has no version ${version}`, {
    task,
    version,
  });
}

/** `write` may write fewer bytes than asked; loop until all are on the file. */
async function writeAll(handle: StoreFileHandle, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, offset);
    if (bytesWritten <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    offset += bytesWritten;
  }
}
