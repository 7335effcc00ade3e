/**
 * The PostgreSQL store's schema, as numbered migrations applied at start-up. Several replicas may
 * start at once: one session-level advisory lock serialises them, and each migration runs in its
 * own transaction together with the row that records it, so a crash mid-migration leaves it
 * unapplied and the next start runs it again.
 */
import type pg from "pg";

/** Arbitrary constant: the advisory lock every replica takes while migrating. */
export const MIGRATION_LOCK_KEY = 0x534b_5401;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "adapter versions and current pointers",
    sql: `
      CREATE TABLE skt_tasks (
        task text PRIMARY KEY,
        -- NULL: no version is current (the task was deleted); the row stays so numbers never repeat.
        current_version integer,
        last_version integer NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );
      CREATE TABLE skt_adapter_versions (
        task text NOT NULL REFERENCES skt_tasks (task),
        version integer NOT NULL CHECK (version >= 1),
        sha256 text NOT NULL,
        size integer NOT NULL,
        bytes bytea NOT NULL,
        -- The server's listing summary of this version (made from its bytes at upload).
        metadata jsonb,
        created_at timestamptz NOT NULL DEFAULT now(),
        created_by text NOT NULL,
        PRIMARY KEY (task, version)
      );`,
  },
  {
    version: 2,
    name: "staged versions and task documents",
    sql: `
      -- An inactive upload waiting for activation: never pruned (the registry caps how many wait).
      ALTER TABLE skt_adapter_versions ADD COLUMN staged boolean NOT NULL DEFAULT false;
      -- The server's documents about a task (eval set, gate reports), removed with the task.
      CREATE TABLE skt_task_documents (
        task text NOT NULL REFERENCES skt_tasks (task),
        name text NOT NULL,
        bytes bytea NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (task, name)
      );`,
  },
  {
    version: 3,
    name: "store-wide documents (traffic splits)",
    sql: `
      CREATE TABLE skt_store_documents (
        name text PRIMARY KEY,
        body text NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
      );`,
  },
];

/** Applies the migrations this database lacks; returns the versions applied now. */
export async function migrate(client: pg.ClientBase, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
  try {
    await client.query(
      "CREATE TABLE IF NOT EXISTS skt_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
    );
    const { rows } = await client.query<{ version: number }>("SELECT version FROM skt_schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const applied: number[] = [];
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(m.sql);
        await client.query("INSERT INTO skt_schema_migrations (version, name) VALUES ($1, $2)", [m.version, m.name]);
        await client.query("COMMIT");
      } catch (e) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw e;
      }
      applied.push(m.version);
    }
    return applied;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]).catch(() => undefined);
  }
}
