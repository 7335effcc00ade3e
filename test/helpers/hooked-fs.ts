/**
 * A `StoreFs` over the real `node:fs/promises` that calls a hook before every operation, so a test
 * can fail one (throw an errno error), pause one (await a gate) or "crash" at one (never resolve),
 * deterministically and without timers. Tests run as root, where chmod cannot make a folder
 * read-only, hence injection instead of permissions.
 */
import * as fsp from "node:fs/promises";
import type { StoreFileHandle, StoreFs } from "../../src/adapters/store.js";

export type FsOp =
  "mkdir" | "readdir" | "readFile" | "stat" | "open" | "rename" | "unlink" | "rmdir" | "write" | "sync" | "close";

export interface FsCall {
  op: FsOp;
  path: string;
  /** rename's destination. */
  to?: string;
}

export type FsHook = (call: FsCall) => void | Promise<void>;

export interface HookedFsOptions {
  /** Cap each handle.write at this many bytes, to exercise short writes. */
  maxWriteChunk?: number;
}

export function hookedFs(hook: FsHook, options: HookedFsOptions = {}): StoreFs {
  const wrapHandle = (file: string, handle: StoreFileHandle): StoreFileHandle => ({
    async write(buffer, offset, length, position) {
      await hook({ op: "write", path: file });
      return handle.write(buffer, offset, Math.min(length, options.maxWriteChunk ?? length), position);
    },
    async sync() {
      await hook({ op: "sync", path: file });
      return handle.sync();
    },
    async close() {
      await hook({ op: "close", path: file });
      return handle.close();
    },
  });
  return {
    async mkdir(p, o) {
      await hook({ op: "mkdir", path: p });
      return fsp.mkdir(p, o);
    },
    async readdir(p) {
      await hook({ op: "readdir", path: p });
      return fsp.readdir(p);
    },
    async readFile(p) {
      await hook({ op: "readFile", path: p });
      return fsp.readFile(p);
    },
    async stat(p) {
      await hook({ op: "stat", path: p });
      return fsp.stat(p);
    },
    async open(p, flags, mode) {
      await hook({ op: "open", path: p });
      return wrapHandle(p, await fsp.open(p, flags, mode));
    },
    async rename(from, to) {
      await hook({ op: "rename", path: from, to });
      return fsp.rename(from, to);
    },
    async unlink(p) {
      await hook({ op: "unlink", path: p });
      return fsp.unlink(p);
    },
    async rmdir(p) {
      await hook({ op: "rmdir", path: p });
      return fsp.rmdir(p);
    },
  };
}

/** An error shaped like the ones node's fs throws. */
export function errnoError(code: string, file = ""): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure, '${file}'`), { code });
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** A promise that never settles: the process "died" at this point. */
export const never = (): Promise<never> => new Promise<never>(() => undefined);
