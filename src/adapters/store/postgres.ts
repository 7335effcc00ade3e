/**
 * The shared adapter store: every replica reads and writes one PostgreSQL database (node-postgres).
 *
 *   skt_tasks             one row per task: its current version (NULL once deleted) and the last
 *                         version number handed out (kept after a delete, so numbers never repeat
 *                         and a replica can never mistake an old `task@v3` for a new one)
 *   skt_adapter_versions  one row per version: sha256, size, bytes, listing summary, created_at/by
 *
 * Upload (writeVersion), promotion/rollback (setCurrent) and delete are single transactions: the
 * version number comes from an `UPDATE … RETURNING` on the task's row, which serialises writers of
 * one task across replicas, and bytes and row commit together, so no reader ever sees a partial
 * version. Every change of a current pointer sends `NOTIFY skt_adapter_changes` in its transaction
 * (delivered at commit); each replica LISTENs on a dedicated connection and re-reads the task's row
 * (never trusting the payload), so notifications may arrive late, twice or out of order.
 *
 * When the listening connection drops the store is `degraded`: the in-memory index and the local
 * read-through copy (local-copy.ts) keep serving, changes fail with 503 `store_unavailable`, and a
 * reconnect loop with backoff re-LISTENs and re-reads every task, so a notification missed while
 * away is never a lasting divergence.
 */
import os from "node:os";
import pg from "pg";
import { Counter, Gauge, type Registry } from "prom-client";
import { SktError, isSktError } from "../../errors.js";
import { KeyedMutex } from "../keyed-mutex.js";
import { TaskIndex } from "../task-index.js";
import { validateTaskName } from "../task-name.js";
import { DEFAULT_MAX_VERSIONS_PER_TASK, versionNotFound, type Describe, type OpenResult, type StoredVersion } from "../store.js";
import type { AdapterStore, StoreChangeHandler, StoreHealth } from "./interface.js";
import { LocalCopy, sha256Hex } from "./local-copy.js";
import { migrate } from "./migrations.js";

export const CHANGE_CHANNEL = "skt_adapter_changes";

/** TCP keep-alive, so a database that vanished without closing the connection is noticed in about half a minute. */
const KEEPALIVE = { keepAlive: true, keepAliveInitialDelayMillis: 10_000 } as const;

type Log = (level: "info" | "warn" | "error", msg: string, fields?: Record<string, unknown>) => void;

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:5432/db` (SKT_STORE). */
  url: string;
  /** Where this replica keeps its read-through copy of adapter bytes and its RECENT hint. */
  localDir: string;
  maxVersionsPerTask?: number;
  /** Prometheus registry for the store's own metrics (skt_adapter_store_*). */
  metricsRegistry?: Registry;
  log?: Log;
  /** Reconnect backoff bounds (default 200 ms doubling to 5 s, with jitter). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long a connection attempt may take before the database counts as unreachable (default 3 s). */
  connectTimeoutMs?: number;
  /** Names this replica in `created_by` (default hostname:pid). */
  replicaName?: string;
}

interface CurrentRow {
  version: number;
  sha256: string;
  metadata: unknown;
}

/** SQLSTATE classes and socket errors that mean "the database is not reachable now", not "the query is wrong". */
const UNREACHABLE_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

export function isUnreachable(e: unknown): boolean {
  if (typeof e !== "object" || e === null) return false;
  const code = "code" in e ? String((e).code) : "";
  if (UNREACHABLE_ERRNOS.has(code) || /^(08|57P|53)/.test(code)) return true;
  const message = e instanceof Error ? e.message : "";
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|connection is closed|Client was closed/i.test(message);
}

export class PostgresAdapterStore implements AdapterStore {
  private readonly pool: pg.Pool;
  private readonly local: LocalCopy;
  private readonly locks = new KeyedMutex();
  private readonly taskIndex = new TaskIndex();
  /** sha256 of each task's current version (checks the local copy). */
  private readonly shas = new Map<string, string>();
  private readonly maxVersions: number;
  private readonly replicaName: string;
  private describe: Describe | undefined;
  private handler: StoreChangeHandler | undefined;
  private listener: pg.Client | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private reconnectAttempt = 0;
  private degradedReason: string | null = "not opened yet";
  private closed = false;
  /** Tasks with a refresh queued and not started (later notifications for them coalesce). */
  private readonly queued = new Set<string>();
  private readonly metrics: { up: Gauge; applied: Counter; reconnects: Counter } | null;

  constructor(private readonly opts: PostgresStoreOptions) {
    this.local = new LocalCopy(opts.localDir);
    this.maxVersions = opts.maxVersionsPerTask ?? DEFAULT_MAX_VERSIONS_PER_TASK;
    this.replicaName = opts.replicaName ?? `${os.hostname()}:${process.pid}`;
    this.pool = new pg.Pool({ connectionString: opts.url, max: 4, connectionTimeoutMillis: opts.connectTimeoutMs ?? 3000, ...KEEPALIVE });
    // An idle client losing its connection must not crash the process; the next query reconnects.
    this.pool.on("error", (e) => opts.log?.("warn", "adapter database: idle connection lost", { error: e.message }));
    const registers = opts.metricsRegistry ? [opts.metricsRegistry] : [];
    this.metrics = opts.metricsRegistry
      ? {
          up: new Gauge({ name: "skt_adapter_store_up", help: "1 while the shared adapter store is connected and listening for changes, 0 while degraded (serving what this replica holds, refusing changes)", registers }),
          applied: new Counter({ name: "skt_adapter_store_changes_applied_total", help: "Changes made by other replicas (uploads, rollbacks, deletes) applied by this one", registers }),
          reconnects: new Counter({ name: "skt_adapter_store_reconnects_total", help: "Times this replica reconnected to the adapter database after losing it", registers }),
        }
      : null;
    this.metrics?.up.set(0);
  }

  get index(): TaskIndex {
    return this.taskIndex;
  }

  health(): StoreHealth {
    return { backend: "postgres", state: this.degradedReason === null ? "ok" : "degraded", reason: this.degradedReason };
  }

  watch(handler: StoreChangeHandler): void {
    this.handler = handler;
  }

  /**
   * Migrates the schema, starts listening, and reads every task's current version (no bytes). A
   * database that is not reachable yet (replicas started before it) is retried with backoff until
   * it is, or until `close()`; readiness waits meanwhile. Any other error (bad credentials, no such
   * database) stops the start-up at once.
   */
  async open(describe?: Describe): Promise<OpenResult> {
    this.describe = describe;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.connectAndRead();
        break;
      } catch (e) {
        if (this.closed || !(isSktError(e) && e.code === "store_unavailable")) throw e;
        const delay = this.backoffMs(attempt);
        this.opts.log?.("warn", "adapter database not reachable at start-up; retrying", { inMs: Math.round(delay), reason: e.details?.reason });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    this.markOk();
    return { tasks: this.taskIndex.size, reread: 0, rebuilt: false, removedTempFiles: [] };
  }

  private async connectAndRead(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e);
    }
    try {
      const applied = await migrate(client);
      if (applied.length) this.opts.log?.("info", "adapter database migrated", { applied });
    } catch (e) {
      throw this.mapError(e);
    } finally {
      client.release();
    }
    await this.connectListener();
    try {
      await this.resyncAll();
    } catch (e) {
      const listener = this.listener;
      this.listener = null;
      await listener?.end().catch(() => undefined);
      throw e;
    }
  }

  private backoffMs(attempt: number): number {
    const min = this.opts.reconnectMinMs ?? 200;
    const max = this.opts.reconnectMaxMs ?? 5000;
    return Math.min(max, min * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const listener = this.listener;
    this.listener = null;
    await listener?.end().catch(() => undefined);
    await this.pool.end().catch(() => undefined);
  }

  // ---- readers ----

  async listVersions(task: string): Promise<StoredVersion[]> {
    validateTaskName(task);
    const { rows } = await this.query<{ version: number; size: number; created_at: Date }>(
      "SELECT version, size, created_at FROM skt_adapter_versions WHERE task = $1 ORDER BY version",
      [task],
    );
    return rows.map((r) => ({ version: r.version, bytes: r.size, createdAt: r.created_at.toISOString() }));
  }

  /** The bytes of a version: from the local copy when it matches the current version's sha256, else the database. */
  async read(task: string, version: number): Promise<Uint8Array> {
    validateTaskName(task);
    validateVersion(version);
    const sha = this.taskIndex.get(task)?.version === version ? this.shas.get(task) : undefined;
    return this.bytesOf(task, version, sha);
  }

  // ---- mutations ----

  get maxVersionsPerTask(): number {
    return this.maxVersions;
  }

  async stagedVersions(task: string): Promise<number[]> {
    validateTaskName(task);
    const { rows } = await this.query<{ version: number }>(
      "SELECT version FROM skt_adapter_versions WHERE task = $1 AND staged ORDER BY version",
      [task],
    );
    return rows.map((r) => r.version);
  }

  async readDocument(task: string, name: string): Promise<Uint8Array | null> {
    validateTaskName(task);
    const { rows } = await this.query<{ bytes: Buffer }>(
      "SELECT bytes FROM skt_task_documents WHERE task = $1 AND name = $2",
      [task, name],
    );
    return rows.length ? new Uint8Array(rows[0].bytes.buffer, rows[0].bytes.byteOffset, rows[0].bytes.byteLength) : null;
  }

  async writeDocument(task: string, name: string, bytes: Uint8Array): Promise<void> {
    validateTaskName(task);
    await this.transaction(async (c) => {
      // The task's row is the documents' parent (a task with only an eval set has no versions yet).
      await c.query("INSERT INTO skt_tasks (task, last_version) VALUES ($1, 0) ON CONFLICT (task) DO NOTHING", [task]);
      await c.query(
        `INSERT INTO skt_task_documents (task, name, bytes) VALUES ($1, $2, $3)
         ON CONFLICT (task, name) DO UPDATE SET bytes = EXCLUDED.bytes, updated_at = now()`,
        [task, name, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)],
      );
    });
  }

  async deleteDocument(task: string, name: string): Promise<boolean> {
    validateTaskName(task);
    const r = await this.query("DELETE FROM skt_task_documents WHERE task = $1 AND name = $2", [task, name]);
    return (r.rowCount ?? 0) > 0;
  }

  /**
   * Traffic splits live in the database, so a replica (re)started reads the newest; a change is not
   * announced to running replicas (each keeps the split it read or set itself).
   */
  async readTraffic(): Promise<string | null> {
    const { rows } = await this.query<{ body: string }>("SELECT body FROM skt_store_documents WHERE name = 'traffic'");
    return rows.length ? rows[0].body : null;
  }

  async writeTraffic(text: string): Promise<void> {
    await this.query(
      `INSERT INTO skt_store_documents (name, body) VALUES ('traffic', $1)
       ON CONFLICT (name) DO UPDATE SET body = EXCLUDED.body, updated_at = now()`,
      [text],
    );
  }

  async writeVersion(task: string, bytes: Uint8Array, options: { staged?: boolean; keep?: readonly number[] } = {}): Promise<number> {
    validateTaskName(task);
    const sha = sha256Hex(bytes);
    const metadata = this.summaryOf(task, bytes);
    const version = await this.transaction(async (c) => {
      const { rows } = await c.query<{ last_version: number; current_version: number | null }>(
        `INSERT INTO skt_tasks (task, last_version) VALUES ($1, 1)
         ON CONFLICT (task) DO UPDATE SET last_version = skt_tasks.last_version + 1, updated_at = now()
         RETURNING last_version, current_version`,
        [task],
      );
      const { last_version: v, current_version: current } = rows[0];
      await c.query(
        "INSERT INTO skt_adapter_versions (task, version, sha256, size, bytes, metadata, created_by, staged) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [task, v, sha, bytes.byteLength, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), JSON.stringify(metadata), this.replicaName, options.staged === true],
      );
      await this.prune(c, task, v, current, options.keep ?? []);
      return v;
    });
    await this.local.put(task, version, bytes);
    return version;
  }

  async setCurrent(task: string, version: number, bytes?: Uint8Array): Promise<void> {
    validateTaskName(task);
    validateVersion(version);
    await this.locks.run(task, async () => {
      const row = await this.transaction(async (c) => {
        // Locks the task's row: concurrent pointer moves and deletes of this task queue here.
        const { rows: tasks } = await c.query("SELECT 1 FROM skt_tasks WHERE task = $1 FOR UPDATE", [task]);
        const { rows } = await c.query<{ sha256: string; metadata: unknown }>(
          "SELECT sha256, metadata FROM skt_adapter_versions WHERE task = $1 AND version = $2",
          [task, version],
        );
        if (tasks.length === 0 || rows.length === 0) throw versionNotFound(task, version);
        await c.query("UPDATE skt_tasks SET current_version = $2, updated_at = now() WHERE task = $1", [task, version]);
        await c.query("UPDATE skt_adapter_versions SET staged = false WHERE task = $1 AND version = $2", [task, version]);
        await c.query("SELECT pg_notify($1, $2)", [CHANGE_CHANNEL, JSON.stringify({ task })]);
        return rows[0];
      });
      this.setEntry(task, { version, sha256: row.sha256, metadata: row.metadata });
      if (bytes) await this.local.put(task, version, bytes);
    });
  }

  /** Removes a version that is not current (an upload whose promotion failed takes its row back). */
  async deleteVersion(task: string, version: number): Promise<void> {
    validateTaskName(task);
    validateVersion(version);
    await this.transaction(async (c) => {
      const { rows } = await c.query<{ current_version: number | null }>("SELECT current_version FROM skt_tasks WHERE task = $1 FOR UPDATE", [task]);
      if (rows[0]?.current_version === version) {
        throw new SktError("conflict", "version_is_current", `v${version} of task "${task}" is current; roll back or delete the task instead`);
      }
      await c.query("DELETE FROM skt_adapter_versions WHERE task = $1 AND version = $2", [task, version]);
    });
  }

  async deleteTask(task: string): Promise<void> {
    validateTaskName(task);
    await this.locks.run(task, async () => {
      await this.transaction(async (c) => {
        const { rows } = await c.query("SELECT 1 FROM skt_tasks WHERE task = $1 FOR UPDATE", [task]);
        const removed = rows.length ? (await c.query("DELETE FROM skt_adapter_versions WHERE task = $1", [task])).rowCount : 0;
        const documents = rows.length ? (await c.query("DELETE FROM skt_task_documents WHERE task = $1", [task])).rowCount : 0;
        if (!removed && !documents) throw new SktError("not_found", "task_not_found", `no adapter task "${task}"`, { task });
        await c.query("UPDATE skt_tasks SET current_version = NULL, updated_at = now() WHERE task = $1", [task]);
        await c.query("SELECT pg_notify($1, $2)", [CHANGE_CHANNEL, JSON.stringify({ task })]);
      });
      this.dropEntry(task);
    });
  }

  readRecent(): Promise<string[]> {
    return this.local.readRecent();
  }

  writeRecent(tasks: readonly string[]): Promise<void> {
    return this.local.writeRecent(tasks);
  }

  // ---- convergence ----

  private async connectListener(): Promise<void> {
    const client = new pg.Client({ connectionString: this.opts.url, connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 3000, ...KEEPALIVE });
    client.on("error", (e) => this.lost(client, e.message));
    client.on("end", () => this.lost(client, "connection closed"));
    client.on("notification", (msg) => this.onNotification(msg.payload));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_CHANNEL}`);
    } catch (e) {
      await client.end().catch(() => undefined);
      throw this.mapError(e);
    }
    this.listener = client;
  }

  private lost(client: pg.Client, reason: string): void {
    if (this.closed || this.listener !== client) return;
    this.listener = null;
    void client.end().catch(() => undefined);
    this.markDegraded(`lost the adapter database (${reason}); reconnecting`);
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return;
    const delay = this.backoffMs(this.reconnectAttempt);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      void this.reconnect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private async reconnect(): Promise<void> {
    try {
      await this.connectListener();
      // LISTEN first, then read: a change committed in between is both read and notified, never neither.
      await this.resyncAll();
      this.reconnectAttempt = 0;
      this.metrics?.reconnects.inc();
      this.markOk();
      this.opts.log?.("info", "adapter database back: listening again and re-read every task", { tasks: this.taskIndex.size });
    } catch (e) {
      this.reconnectAttempt++;
      const listener = this.listener;
      this.listener = null;
      await listener?.end().catch(() => undefined);
      this.markDegraded(`adapter database unreachable (${e instanceof Error ? e.message : String(e)}); retrying`);
      this.scheduleReconnect();
    }
  }

  private onNotification(payload: string | undefined): void {
    let task: unknown;
    try {
      task = (JSON.parse(payload ?? "") as { task?: unknown }).task;
    } catch {
      return;
    }
    if (typeof task !== "string" || this.queued.has(task)) return;
    this.queued.add(task);
    void this.locks
      .run(task, async () => {
        this.queued.delete(task);
        const { rows } = await this.query<CurrentRow>(
          `SELECT t.current_version AS version, v.sha256, v.metadata FROM skt_tasks t
           JOIN skt_adapter_versions v ON v.task = t.task AND v.version = t.current_version WHERE t.task = $1`,
          [task],
        );
        await this.apply(task, rows[0] ?? null);
      })
      .catch((e: unknown) => {
        this.queued.delete(task);
        // The reconnect's full re-read covers it when the database went away meanwhile.
        this.opts.log?.("warn", "could not apply a change from another replica", { task, error: (e as Error).message });
      });
  }

  /** Every task's current version from the database, applied where it differs from the index. */
  private async resyncAll(): Promise<void> {
    const { rows } = await this.query<CurrentRow & { task: string }>(
      `SELECT t.task, t.current_version AS version, v.sha256, v.metadata FROM skt_tasks t
       JOIN skt_adapter_versions v ON v.task = t.task AND v.version = t.current_version`,
    );
    const seen = new Set<string>();
    for (const row of rows) {
      seen.add(row.task);
      await this.locks.run(row.task, () => this.apply(row.task, row));
    }
    for (const task of [...this.taskIndex.names()]) {
      if (!seen.has(task)) await this.locks.run(task, () => this.apply(task, null));
    }
  }

  /** Makes the index say `row` for `task` (under the task's lock); prepares first when the registry holds the task. */
  private async apply(task: string, row: CurrentRow | null): Promise<void> {
    const had = this.taskIndex.get(task);
    if (row === null) {
      if (!had) return;
      this.dropEntry(task);
      this.handler?.applied(task, null, undefined);
      this.metrics?.applied.inc();
      return;
    }
    if (had?.version === row.version && this.shas.get(task) === row.sha256) return;
    let prepared: unknown;
    if (this.handler?.holds(task)) {
      try {
        prepared = await this.handler.prepare(task, row.version, await this.bytesOf(task, row.version, row.sha256));
      } catch (e) {
        this.opts.log?.("warn", "could not prepare a version another replica made current; it is prepared at first use", { task, version: row.version, error: (e as Error).message });
      }
    }
    this.setEntry(task, row);
    this.handler?.applied(task, row.version, prepared);
    this.metrics?.applied.inc();
  }

  private setEntry(task: string, row: CurrentRow): void {
    const before = this.taskIndex.get(task)?.version;
    this.taskIndex.set(task, { version: row.version, summary: row.metadata });
    this.shas.set(task, row.sha256);
    // The local copy holds current versions only (older ones are read from the database if asked).
    if (before !== row.version) void this.local.keepOnly(task, row.version);
  }

  private dropEntry(task: string): void {
    this.taskIndex.delete(task);
    this.shas.delete(task);
    void this.local.drop(task);
  }

  private markOk(): void {
    this.degradedReason = null;
    this.metrics?.up.set(1);
  }

  private markDegraded(reason: string): void {
    if (this.degradedReason === null) this.opts.log?.("error", "adapter store degraded: serving held adapters, refusing changes", { reason });
    this.degradedReason = reason;
    this.metrics?.up.set(0);
  }

  // ---- internals ----

  private async bytesOf(task: string, version: number, sha256?: string): Promise<Uint8Array> {
    if (sha256) {
      const held = await this.local.get(task, version, sha256);
      if (held) return held;
    }
    const { rows } = await this.query<{ sha256: string; bytes: Buffer }>(
      "SELECT sha256, bytes FROM skt_adapter_versions WHERE task = $1 AND version = $2",
      [task, version],
    );
    if (rows.length === 0) throw versionNotFound(task, version);
    const bytes = new Uint8Array(rows[0].bytes.buffer, rows[0].bytes.byteOffset, rows[0].bytes.byteLength);
    if (sha256Hex(bytes) !== rows[0].sha256) {
      throw new SktError("storage", "read_failed", `adapter database: v${version} of task "${task}" does not match its sha256`, { task, version });
    }
    await this.local.put(task, version, bytes);
    return bytes;
  }

  /** Deletes the oldest versions that are neither current, staged, kept nor just written, down to maxVersions. */
  private async prune(c: pg.PoolClient, task: string, written: number, current: number | null, keep: readonly number[]): Promise<void> {
    if (this.maxVersions === Infinity) return;
    const { rows } = await c.query<{ version: number; staged: boolean }>("SELECT version, staged FROM skt_adapter_versions WHERE task = $1 ORDER BY version", [task]);
    const excess = rows.length - this.maxVersions;
    if (excess <= 0) return;
    const doomed = rows
      .filter((r) => !r.staged)
      .map((r) => r.version)
      .filter((v) => v !== written && v !== current && !keep.includes(v))
      .slice(0, excess);
    if (doomed.length) await c.query("DELETE FROM skt_adapter_versions WHERE task = $1 AND version = ANY($2::int[])", [task, doomed]);
  }

  private summaryOf(task: string, bytes: Uint8Array): unknown {
    try {
      return this.describe?.(task, bytes) ?? null;
    } catch {
      return null; // the registry reports an unreadable adapter at first use
    }
  }

  private async query<R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (e) {
      throw this.mapError(e);
    }
  }

  private async transaction<T>(body: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw this.mapError(e);
    }
    let broken = false;
    try {
      await client.query("BEGIN");
      const result = await body(client);
      await client.query("COMMIT");
      return result;
    } catch (e) {
      broken = isUnreachable(e);
      if (!broken) await client.query("ROLLBACK").catch(() => undefined);
      throw this.mapError(e);
    } finally {
      client.release(broken);
    }
  }

  private mapError(e: unknown): unknown {
    if (isSktError(e)) return e;
    const reason = e instanceof Error ? e.message : String(e);
    if (isUnreachable(e)) {
      return new SktError(
        "not_ready",
        "store_unavailable",
        "the adapter database is unreachable: adapters already held are still served, changes are refused until it is back; retry shortly",
        { reason },
      );
    }
    return new SktError("storage", "database_error", "adapter database: the query failed", { reason });
  }
}

function validateVersion(v: number): void {
  if (!(Number.isSafeInteger(v) && v >= 1 && v <= 2 ** 31 - 1)) {
    throw new SktError("bad_request", "invalid_version", `invalid adapter version ${String(v)}: expected an integer ≥ 1`);
  }
}
