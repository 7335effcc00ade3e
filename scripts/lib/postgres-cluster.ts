/**
 * A throwaway PostgreSQL cluster for tests and benchmarks: `initdb` in a temporary folder, a server
 * on a free loopback port (and a Unix socket in the same folder), trust authentication, fsync off.
 * `stop()`/`start()` take the database away and bring it back on the same port (failure tests);
 * `destroy()` stops it and removes the folder.
 *
 * initdb and postgres refuse to run as root, so as root the cluster runs as the `postgres` user when
 * it exists (Debian's package creates it), else as `nobody`, through `runuser`. Binaries come from
 * PATH or Debian's /usr/lib/postgresql/<version>/bin (scripts/ci/install-postgres.sh installs them).
 *
 * Dev tooling: nothing in src/ imports it.
 */
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort } from "./server-process.js";

const run = promisify(execFile);

export interface PostgresCluster {
  /** `postgres://skt@127.0.0.1:<port>/postgres` */
  url: string;
  port: number;
  dir: string;
  /** Fast shutdown (open connections are cut, as when a database goes away). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  destroy(): Promise<void>;
  /** The server log so far (for failure messages). */
  log(): Promise<string>;
}

/** The folder holding initdb/pg_ctl, or null when PostgreSQL is not installed. */
export function findPostgresBin(): string | null {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, "initdb")) && existsSync(path.join(dir, "pg_ctl"))) return dir;
  }
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    for (const v of versions) if (existsSync(path.join(debian, v, "bin", "initdb"))) return path.join(debian, v, "bin");
  }
  return null;
}

/** As root: the user to run PostgreSQL as, with its uid and gid. */
async function unprivilegedUser(): Promise<{ name: string; uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  for (const name of ["postgres", "nobody"]) {
    try {
      const uid = Number((await run("id", ["-u", name])).stdout.trim());
      const gid = Number((await run("id", ["-g", name])).stdout.trim());
      return { name, uid, gid };
    } catch {
      // no such user
    }
  }
  throw new Error("running as root and neither a postgres nor a nobody user exists to run PostgreSQL as");
}

export async function startPostgresCluster(): Promise<PostgresCluster> {
  const bin = findPostgresBin();
  if (!bin)
    throw new Error(
      "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin); run scripts/ci/install-postgres.sh",
    );
  const user = await unprivilegedUser();
  const dir = await mkdtemp(path.join(os.tmpdir(), "skt-pg-"));
  if (user) await chown(dir, user.uid, user.gid);
  const data = path.join(dir, "data");
  const logFile = path.join(dir, "server.log");
  const as = (cmd: string, args: string[]) =>
    user ? run("runuser", ["-u", user.name, "--", path.join(bin, cmd), ...args]) : run(path.join(bin, cmd), args);
  const port = await freePort();
  const pgCtl = (action: "start" | "stop") =>
    action === "start"
      ? as("pg_ctl", [
          "-D",
          data,
          "-l",
          logFile,
          "-w",
          "-t",
          "60",
          "-o",
          `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c max_connections=200`,
          "start",
        ])
      : as("pg_ctl", ["-D", data, "-m", "fast", "-w", "-t", "60", "stop"]);
  let running = false;
  const cluster: PostgresCluster = {
    url: `postgres://skt@127.0.0.1:${port}/postgres`,
    port,
    dir,
    async stop() {
      if (!running) return;
      await pgCtl("stop");
      running = false;
    },
    async start() {
      if (running) return;
      await pgCtl("start");
      running = true;
    },
    async destroy() {
      await cluster.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
    async log() {
      const { readFile } = await import("node:fs/promises");
      return readFile(logFile, "utf8").catch(() => "");
    },
  };
  try {
    await as("initdb", ["-D", data, "-A", "trust", "-U", "skt", "--no-sync", "-E", "UTF8"]);
    await cluster.start();
  } catch (e) {
    const log = await cluster.log();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`could not start PostgreSQL from ${bin}: ${(e as Error).message}\n${log}`, { cause: e });
  }
  return cluster;
}
