/**
 * What the registry needs from an adapter store, whatever keeps the bytes: the filesystem store
 * (../store.ts, the default: one process owns a folder) and the PostgreSQL store (postgres.ts:
 * many replicas share one database) both satisfy it.
 *
 * `index` is an in-memory view (task → current version + summary) that readers use without I/O;
 * a shared store keeps it current from other processes' changes and tells the registry through
 * `watch`, so the registry can prepare the new version before the pointer moves, or drop a task.
 */
import type { TaskIndex } from "../task-index.js";
import type { Describe, OpenResult, StoredVersion } from "../store.js";

export type StoreIndexView = Pick<TaskIndex, "count" | "get" | "has" | "names" | "page" | "size">;

/** How a store is doing: `degraded` means it serves what it holds but cannot take changes now. */
export interface StoreHealth {
  backend: "filesystem" | "postgres";
  state: "ok" | "degraded";
  /** Why it is degraded (null when ok). */
  reason: string | null;
}

/** The registry's side of a change made by another process. */
export interface StoreChangeHandler {
  /** Whether this process holds a prepared version of `task` (worth preparing the new one at once). */
  holds(task: string): boolean;
  /** Prepare `task`@`version` before it becomes current here; may throw (it is then reported at first use). */
  prepare(task: string, version: number, bytes: Uint8Array): Promise<unknown>;
  /** The index now says `version` (null: the task is gone); `prepared` is what `prepare` returned, if it ran. */
  applied(task: string, version: number | null, prepared: unknown): void;
}

export interface AdapterStore {
  readonly index: StoreIndexView;
  open(describe?: Describe): Promise<OpenResult>;
  close(): Promise<void>;
  listVersions(task: string): Promise<StoredVersion[]>;
  read(task: string, version: number): Promise<Uint8Array>;
  /**
   * `staged`: an inactive upload waiting for activation; pruning keeps it (see stagedVersions).
   * `keep`: versions pruning must spare too (a traffic split still routes to them).
   */
  writeVersion(task: string, bytes: Uint8Array, options?: { staged?: boolean; keep?: readonly number[] }): Promise<number>;
  /** Versions uploaded inactive and not made current since, ascending. */
  stagedVersions(task: string): Promise<number[]>;
  /** How many versions a task keeps (pruning); staged versions are capped at it by the registry. */
  readonly maxVersionsPerTask: number;
  /** The server's documents about a task (its eval set, gate reports): null when absent. Removed with the task. */
  readDocument(task: string, name: string): Promise<Uint8Array | null>;
  writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void>;
  /** false when there was none. */
  deleteDocument(task: string, name: string): Promise<boolean>;
  setCurrent(task: string, version: number, bytes?: Uint8Array): Promise<void>;
  deleteVersion(task: string, version: number): Promise<void>;
  deleteTask(task: string): Promise<void>;
  readRecent(): Promise<string[]>;
  /** The saved traffic splits (registry's TrafficTable text), or null when none were saved. */
  readTraffic(): Promise<string | null>;
  /** Replaces the saved traffic splits (callers serialize their writes). */
  writeTraffic(text: string): Promise<void>;
  writeRecent(tasks: readonly string[]): Promise<void>;
  /** Shared stores only: changes made by other processes are passed to `handler`. */
  watch?(handler: StoreChangeHandler): void;
  /** Shared stores only (a filesystem store is always ok). */
  health?(): StoreHealth;
}
