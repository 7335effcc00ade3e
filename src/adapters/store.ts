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
 *
 *   <root>/<task>/STAGED                                          text: versions uploaded inactive, not yet current
 *   <root>/<task>/eval-set.json, v000003.report.json, …           the server's documents about the task (`writeDocument`)
 *
 * The task index (task-index.ts, `<root>/INDEX`) lets `open()` learn every task's current version
 * without reading each folder: every change of CURRENT is preceded by a durable intent line and
 * followed by a commit line, so after a crash only the tasks caught mid-change are read again.
 * Folders added or removed behind the store's back are noticed at `open()` (one listing of the
 * root); edits inside an existing folder by other tools are not: delete INDEX to force a rebuild.
 */
import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import path from "node:path";
import { SktError, isSktError } from "../errors.js";
import { KeyedMutex } from "./keyed-mutex.js";
import { INDEX_FILE, TaskIndex, commitLine, intentLine, parseIndex, type IndexEntry } from "./task-index.js";
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
  /** INDEX is rewritten as one line per task once it holds more than 2 lines per task plus this many. */
  indexSlackLines?: number;
}

/** Makes the listing summary of a version from its bytes (the store never parses adapters itself). */
export type Describe = (task: string, bytes: Uint8Array) => unknown;

export interface OpenResult {
  tasks: number;
  /** Tasks read from their files (all of them when the index was missing or unreadable). */
  reread: number;
  rebuilt: boolean;
  removedTempFiles: string[];
}

export const DEFAULT_ADAPTER_ROOT = "adapters";
export const RECENT_FILE = "RECENT";
/** The registry's traffic splits (canary/shadow per task; see traffic.ts), JSON. */
export const TRAFFIC_FILE = "TRAFFIC";
/** Folders read at once while (re)building the index. */
const REBUILD_PARALLEL = 16;
export const DEFAULT_MAX_VERSIONS_PER_TASK = 20;
export const CURRENT_FILE = "CURRENT";
export const TEMP_PREFIX = ".tmp-";
/** Versions uploaded without being made current and not current since: pruning keeps them. */
export const STAGED_FILE = "STAGED";

/** Names of the documents a caller may keep in a task's folder: lower case, `.json`, never a version file. */
const DOCUMENT_NAME = /^[a-z0-9][a-z0-9-]*(\.[a-z0-9-]+)*\.json$/;

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
  return typeof e === "object" && e !== null && "code" in e ? String((e).code) : undefined;
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

export class AdapterStore {
  readonly root: string;
  private readonly fs: StoreFs;
  private readonly maxVersions: number;
  private readonly locks = new KeyedMutex();
  /** Null until `open()`; afterwards every change of CURRENT keeps it and INDEX in step. */
  private taskIndex: TaskIndex | null = null;
  private describe: Describe | undefined;
  /** Tasks with an intent line and no commit yet (a compaction must keep their intents). */
  private readonly changing = new Set<string>();
  private indexLines = 0;
  private readonly indexSlack: number;
  private appendTail: Promise<unknown> = Promise.resolve();

  constructor(root: string = DEFAULT_ADAPTER_ROOT, options: AdapterStoreOptions = {}) {
    this.root = path.resolve(root);
    this.fs = options.fs ?? fsp;
    const max = options.maxVersionsPerTask ?? DEFAULT_MAX_VERSIONS_PER_TASK;
    if (!(max === Infinity || (Number.isSafeInteger(max) && max >= 1))) {
      throw new SktError("bad_request", "invalid_option", `maxVersionsPerTask must be an integer ≥ 1 or Infinity, got ${max}`);
    }
    this.maxVersions = max;
    this.indexSlack = options.indexSlackLines ?? 1000;
  }

  /** The pruning limit (Infinity: keep everything). */
  get maxVersionsPerTask(): number {
    return this.maxVersions;
  }

  // ---- readers (lock-free: they only ever observe renamed, complete files) ----

  /** The open index (tasks with a current version, and their summaries); throws before `open()`. */
  get index(): Pick<TaskIndex, "count" | "get" | "has" | "names" | "page" | "size"> {
    if (!this.taskIndex) throw new SktError("internal", "store_not_open", "the adapter store's index is not open; call open() first");
    return this.taskIndex;
  }

  /**
   * Reads the task index (or rebuilds it from the files when it is missing or unreadable), reads
   * again the tasks a crash caught mid-change and folders the index does not know, removes their
   * leftover temp files, and from then on keeps the index current. `describe` makes each entry's
   * summary from the current version's bytes.
   */
  async open(describe?: Describe): Promise<OpenResult> {
    this.describe = describe;
    let text: string | null = null;
    try {
      text = new TextDecoder().decode(await this.fs.readFile(this.indexPath()));
    } catch (e) {
      if (!isAbsent(e)) throw storageError("read_failed", "reading", this.indexPath(), e);
    }
    const parsed = text === null ? null : parseIndex(text, isValidTaskName);
    const names = (await this.readdirOrEmpty(this.root)).filter(isValidTaskName);
    const present = new Set(names);
    const entries = parsed?.entries ?? new Map<string, IndexEntry>();
    let changed = parsed === null;
    for (const task of [...entries.keys()]) {
      if (!present.has(task)) {
        entries.delete(task); // removed behind our back
        changed = true;
      }
    }
    const stale = names.filter((t) => parsed === null || parsed.pending.has(t) || !entries.has(t));
    const removedTempFiles: string[] = [];
    let next = 0;
    const workers = Array.from({ length: Math.min(REBUILD_PARALLEL, stale.length) }, async () => {
      while (next < stale.length) {
        const task = stale[next++];
        removedTempFiles.push(...(await this.removeTempFiles(task)));
        const entry = await this.readEntry(task);
        if (entry) entries.set(task, entry);
        else entries.delete(task);
      }
    });
    await Promise.all(workers);
    if (stale.length > 0) changed = true;
    this.taskIndex = new TaskIndex(entries);
    this.indexLines = parsed?.lines ?? 0;
    if (changed || this.indexLines > 2 * entries.size + this.indexSlack) await this.compactIndex();
    return { tasks: entries.size, reread: stale.length, rebuilt: parsed === null, removedTempFiles: removedTempFiles.sort() };
  }

  /** Rewrites INDEX as one line per task (call at shutdown so the next start reads a short file). */
  async close(): Promise<void> {
    if (this.taskIndex) await this.compactIndex();
  }

  /** Tasks whose CURRENT names an existing version, sorted. */
  async listTasks(): Promise<string[]> {
    if (this.taskIndex) return [...this.taskIndex.names()];
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
      const version = await this.changingTask(task, async () => {
        const v = await this.writeVersionLocked(task, bytes);
        // If this fails the new file stays behind as a non-current version; CURRENT is untouched.
        await this.writePointer(task, v);
        return v;
      }, (v) => ({ version: v, bytes }));
      await this.prune(task, version);
      return version;
    });
  }

  /** Store `bytes` as version max+1 without touching CURRENT, so a caller can prepare it and only
   * then `setCurrent` (the hot-swap order). `staged`: the version is to wait, inactive, for an
   * activation; it is listed in STAGED so pruning keeps it. Pruning spares `keep` too (versions a
   * traffic split still routes to). */
  async writeVersion(task: string, bytes: Uint8Array, options: { staged?: boolean; keep?: readonly number[] } = {}): Promise<number> {
    validateTaskName(task);
    return this.locks.run(task, async () => {
      const version = await this.changingTask(task, async () => {
        const v = await this.writeVersionLocked(task, bytes);
        if (options.staged) {
          try {
            await this.writeStaged(task, [...(await this.readStaged(task)), v]);
          } catch (e) {
            // Unlisted, a staged version could be pruned: take it back so the upload fails whole.
            await this.fs.unlink(this.versionPath(task, v)).catch(() => undefined);
            await this.removeUnborn(task);
            throw e;
          }
        }
        return v;
      });
      await this.prune(task, version, options.keep ?? []);
      return version;
    });
  }

  /** Versions uploaded inactive and not made current since, ascending (pruning keeps them). */
  async stagedVersions(task: string): Promise<number[]> {
    validateTaskName(task);
    const present = new Set(await this.versionNumbers(task));
    return (await this.readStaged(task)).filter((v) => present.has(v));
  }

  /** A document kept next to the task's versions (the server's eval set, gate reports), or null. */
  async readDocument(task: string, name: string): Promise<Uint8Array | null> {
    const file = this.documentPath(task, name);
    try {
      const data = await this.fs.readFile(file);
      return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    } catch (e) {
      if (isAbsent(e)) return null;
      throw storageError("read_failed", "reading", file, e);
    }
  }

  /** Writes a document atomically (creating the task's folder if needed). Removed with the task. */
  async writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    const file = this.documentPath(task, name);
    await this.locks.run(task, async () => {
      await this.ensureTaskDir(task);
      await this.atomicWrite(path.dirname(file), name, bytes);
    });
  }

  /** Removes a document; false when there was none. */
  async deleteDocument(task: string, name: string): Promise<boolean> {
    const file = this.documentPath(task, name);
    return this.locks.run(task, async () => {
      try {
        await this.fs.unlink(file);
      } catch (e) {
        if (isAbsent(e)) return false;
        throw storageError("write_failed", "deleting", file, e);
      }
      await this.fsyncDir(path.dirname(file)).catch(() => undefined);
      await this.removeUnborn(task);
      return true;
    });
  }

  /** Point CURRENT at an existing version (promote or roll back). `bytes`, when the caller has the
   * version's bytes at hand, spares the index's describer a read. */
  async setCurrent(task: string, version: number, bytes?: Uint8Array): Promise<void> {
    validateTaskName(task);
    validateVersion(version);
    await this.locks.run(task, async () => {
      if (!(await this.isVersionFile(task, version))) throw versionNotFound(task, version);
      await this.changingTask(task, () => this.writePointer(task, version), () => ({ version, bytes }));
      await this.unstage(task, version);
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
      await this.unstage(task, version);
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
        await this.changingTask(task, async () => {
          await this.unlinkOrThrow(path.join(dir, CURRENT_FILE));
          await this.fsyncDir(dir);
        }, () => null);
      }
      const owned = entries.filter(
        (n) => parseVersionFileName(n) !== null || n.startsWith(TEMP_PREFIX) || n === STAGED_FILE || DOCUMENT_NAME.test(n),
      );
      for (const name of owned) await this.unlinkOrThrow(path.join(dir, name));
      await this.removeDirIfEmpty(dir);
    });
  }

  /** Start-up clean-up: delete `.tmp-*` files left in task folders by a crash; nothing else. */
  async recover(): Promise<{ removedTempFiles: string[] }> {
    const removedTempFiles: string[] = [];
    for (const task of (await this.readdirOrEmpty(this.root)).filter(isValidTaskName)) {
      removedTempFiles.push(...(await this.removeTempFiles(task)));
    }
    return { removedTempFiles: removedTempFiles.sort() };
  }

  /** The task names in RECENT (most recently used first; written by `writeRecent`), or []. */
  async readRecent(): Promise<string[]> {
    try {
      const text = new TextDecoder().decode(await this.fs.readFile(path.join(this.root, RECENT_FILE)));
      return text.split("\n").filter(isValidTaskName);
    } catch {
      return []; // a hint for warm-up only: missing or unreadable means "no hint"
    }
  }

  async writeRecent(tasks: readonly string[]): Promise<void> {
    await this.fs.mkdir(this.root, { recursive: true }).catch(() => undefined);
    await this.atomicWrite(this.root, RECENT_FILE, new TextEncoder().encode(tasks.filter(isValidTaskName).join("\n")));
  }

  /** The TRAFFIC file's text, or null when there is none. */
  async readTraffic(): Promise<string | null> {
    const file = path.join(this.root, TRAFFIC_FILE);
    try {
      return new TextDecoder().decode(await this.fs.readFile(file));
    } catch (e) {
      if (isAbsent(e)) return null;
      throw storageError("read_failed", "reading", file, e);
    }
  }

  /** Replaces TRAFFIC atomically (callers serialize their writes; the last one holds every split). */
  async writeTraffic(text: string): Promise<void> {
    await this.fs.mkdir(this.root, { recursive: true }).catch(() => undefined);
    await this.atomicWrite(this.root, TRAFFIC_FILE, new TextEncoder().encode(text));
  }

  // ---- internals ----

  private indexPath(): string {
    return path.join(this.root, INDEX_FILE);
  }

  /** Locked so it cannot delete a live write's temp file. */
  private removeTempFiles(task: string): Promise<string[]> {
    return this.locks.run(task, async () => {
      const removed: string[] = [];
      const dir = this.taskDir(task);
      for (const name of await this.readdirOrEmpty(dir)) {
        if (!name.startsWith(TEMP_PREFIX)) continue;
        const file = path.join(dir, name);
        if (!(await this.isFile(file))) continue;
        await this.unlinkOrThrow(file);
        removed.push(file);
      }
      return removed;
    });
  }

  /** A task's index entry from its files, or null when it has no servable CURRENT. */
  private async readEntry(task: string): Promise<IndexEntry | null> {
    const version = await this.current(task);
    if (version === null) return null;
    return { version, summary: await this.summaryOf(task, version) };
  }

  /** The describer's summary of a version; null when it cannot say (the registry reports that at first use). */
  private async summaryOf(task: string, version: number, bytes?: Uint8Array): Promise<unknown> {
    if (!this.describe) return null;
    try {
      return this.describe(task, bytes ?? (await this.read(task, version)));
    } catch {
      return null;
    }
  }

  /**
   * Runs `change` (anything that writes into the task's folder) between a durable intent line and a
   * commit line in INDEX; `after` gives the task's new current version, or null when it is gone
   * (omitted: CURRENT did not move). A crash in between leaves the intent, so the next `open()`
   * reads the task from its files and removes its temp files. Without an open index, an existing
   * INDEX still gets the intent, so the next `open()` does not trust an old entry.
   */
  private async changingTask<T>(task: string, change: () => Promise<T>, after?: (result: T) => { version: number; bytes?: Uint8Array } | null): Promise<T> {
    if (!this.taskIndex) {
      if (await this.exists(this.indexPath())) await this.appendIndex(intentLine(task), true);
      return change();
    }
    this.changing.add(task);
    let result: T;
    try {
      await this.appendIndex(intentLine(task), true);
      result = await change();
    } catch (e) {
      this.changing.delete(task); // the intent line stays: the next open() reads this task again
      throw e;
    }
    if (after) {
      const moved = after(result);
      if (moved) this.taskIndex.set(task, { version: moved.version, summary: await this.summaryOf(task, moved.version, moved.bytes) });
      else this.taskIndex.delete(task);
    }
    this.changing.delete(task);
    // Not fsynced: if it is lost, the intent before it makes the next open() read the task again.
    await this.appendIndex(commitLine(task, this.taskIndex.get(task) ?? null), false).catch(() => undefined);
    if (this.indexLines > 2 * this.taskIndex.size + this.indexSlack) await this.compactIndex().catch(() => undefined);
    return result;
  }

  /** Appends one line to INDEX, one append at a time (lines from different tasks never interleave). */
  private appendIndex(line: string, durable: boolean): Promise<void> {
    const run = this.appendTail.then(async () => {
      let handle: StoreFileHandle | undefined;
      try {
        await this.fs.mkdir(this.root, { recursive: true });
        handle = await this.fs.open(this.indexPath(), "a", 0o644);
        await writeAll(handle, new TextEncoder().encode(line), true);
        if (durable) await handle.sync();
      } catch (e) {
        throw storageError("write_failed", "appending to", this.indexPath(), e);
      } finally {
        await handle?.close().catch(() => undefined);
      }
      this.indexLines++;
    });
    this.appendTail = run.catch(() => undefined);
    return run;
  }

  /** INDEX as one line per task (plus the intents of changes in flight), written atomically. */
  private compactIndex(): Promise<void> {
    const run = this.appendTail.then(async () => {
      const index = this.taskIndex!;
      const text = index.serialize() + [...this.changing].map(intentLine).join("");
      await this.fs.mkdir(this.root, { recursive: true }).catch(() => undefined);
      await this.atomicWrite(this.root, INDEX_FILE, new TextEncoder().encode(text));
      this.indexLines = index.size + this.changing.size + 1;
    });
    this.appendTail = run.catch(() => undefined);
    return run;
  }

  private async exists(file: string): Promise<boolean> {
    try {
      await this.fs.stat(file);
      return true;
    } catch (e) {
      if (isAbsent(e)) return false;
      throw storageError("read_failed", "stat", file, e);
    }
  }

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

  private documentPath(task: string, name: string): string {
    if (!DOCUMENT_NAME.test(name) || parseVersionFileName(name) !== null) {
      throw new SktError("internal", "invalid_document_name", `not a document name: ${JSON.stringify(name)}`);
    }
    return path.join(this.taskDir(task), name);
  }

  /** STAGED's versions (unreadable or corrupt lines are ignored: the list only protects from pruning). */
  private async readStaged(task: string): Promise<number[]> {
    const file = path.join(this.taskDir(task), STAGED_FILE);
    let text: string;
    try {
      text = new TextDecoder().decode(await this.fs.readFile(file));
    } catch (e) {
      if (isAbsent(e)) return [];
      throw storageError("read_failed", "reading", file, e);
    }
    return [...new Set(text.split("\n").map(parseCurrent).filter((v): v is number => v !== null))].sort((a, b) => a - b);
  }

  private async writeStaged(task: string, versions: number[]): Promise<void> {
    const dir = this.taskDir(task);
    if (versions.length === 0) {
      await this.unlinkOrThrow(path.join(dir, STAGED_FILE));
      return;
    }
    await this.atomicWrite(dir, STAGED_FILE, new TextEncoder().encode(versions.map((v) => `${v}\n`).join("")));
  }

  /** `version` is current or gone: it no longer waits. Best effort (a stale line only delays pruning). */
  private async unstage(task: string, version: number): Promise<void> {
    try {
      const staged = await this.readStaged(task);
      if (staged.includes(version)) await this.writeStaged(task, staged.filter((v) => v !== version));
    } catch {
      // see above
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

  /** Drop old versions beyond the limit, oldest first, never the current one, `keep` or a staged one
   * (uploaded inactive and waiting for its activation). Best effort:
   * the write already succeeded, and a leftover old file is harmless (the next write retries). */
  private async prune(task: string, keep: number, alsoKeep: readonly number[] = []): Promise<void> {
    if (this.maxVersions === Infinity) return;
    try {
      const versions = await this.versionNumbers(task);
      const excess = versions.length - this.maxVersions;
      if (excess <= 0) return;
      const current = await this.readPointer(task);
      const staged = new Set(await this.readStaged(task));
      const victims = versions
        .filter((v) => v !== current && v !== keep && !staged.has(v) && !alsoKeep.includes(v))
        .slice(0, excess);
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

export function versionNotFound(task: string, version: number): SktError {
  return new SktError("not_found", "version_not_found", `adapter task "${task}" has no version ${version}`, {
    task,
    version,
  });
}

/** `write` may write fewer bytes than asked; loop until all are on the file. With `append` the file
 * was opened with O_APPEND, where Linux ignores the position and writes at the end. */
async function writeAll(handle: StoreFileHandle, bytes: Uint8Array, append = false): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, offset, bytes.length - offset, append ? 0 : offset);
    if (bytesWritten <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    offset += bytesWritten;
  }
}
