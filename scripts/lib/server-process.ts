/**
 * The real server as a child process on a free loopback port, as a user runs it (`skt serve`,
 * i.e. `node bin/skt.js serve`, which loads src/ through tsx), with its output captured and a wait
 * for /readyz.
 *
 * Dev tooling shared by the benchmarks, the soak script and the tests: it may import from src/, but
 * nothing in src/ imports it. Callers bring their own server settings (admin token, models folder,
 * threads, log level…) in `env`; this module only sets where the server listens and its adapters.
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const SKT = path.join(REPO_ROOT, "bin/skt.js");
const READY_POLL_MS = 150;

/** A port that was free on 127.0.0.1 a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

export interface ServerProcess {
  proc: ChildProcess;
  pid: number;
  port: number;
  /** `http://127.0.0.1:<port>`. */
  base: string;
  /** stdout + stderr so far (the last 100–200 kB). */
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (if still running) and wait for the exit. */
  kill(): Promise<void>;
}

export interface SpawnServerOptions {
  adaptersDir: string;
  /** Server environment on top of the parent's, PORT, HOST and SKT_ADAPTERS_DIR (wins over them). */
  env?: Record<string, string>;
  /** Node flags before the script (e.g. `--cpu-prof`). */
  nodeArgs?: string[];
  /** Arguments after `serve` (e.g. `--max-wait-ms 5`). */
  serveArgs?: string[];
  /** A port chosen beforehand (default: a free one). */
  port?: number;
  /** How long `spawnServerProcess` waits for /readyz (default 90 s). */
  readyWithinMs?: number;
  /** Names the server in errors (default "server"). */
  label?: string;
  /**
   * The server's working folder (default: the repository root, for callers that pass relative
   * paths). Tests pass a temporary folder so that nothing the server writes lands in the repository.
   */
  cwd?: string;
  /** The `skt` entry point to run (default: this checkout's bin/skt.js; benchmarks pass another checkout's to compare). */
  entry?: string;
}

/** Starts the server process without waiting for it (for callers that register clean-up first). */
export async function launchServerProcess(opts: SpawnServerOptions): Promise<ServerProcess> {
  const port = opts.port ?? (await freePort());
  const proc = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), opts.entry ?? SKT, "serve", ...(opts.serveArgs ?? [])],
    {
      cwd: opts.cwd ?? REPO_ROOT,
      env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", SKT_ADAPTERS_DIR: opts.adaptersDir, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  const keep = (d: Buffer) => {
    out += d.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  proc.stdout.on("data", keep);
  proc.stderr.on("data", keep);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    proc,
    pid: proc.pid!,
    port,
    base: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    async kill() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * Polls /readyz until it answers 200. Throws, with the tail of the output, when the process exits
 * first or `withinMs` passes; the process is left as it is (the caller decides how to stop it).
 */
export async function waitUntilReady(server: ServerProcess, withinMs: number, label = "server"): Promise<void> {
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  void server.exited.then((e) => (exit = e));
  const tail = () => server.output().split("\n").slice(-60).join("\n");
  const until = Date.now() + withinMs;
  for (;;) {
    if (
      await fetch(`${server.base}/readyz`).then(
        (r) => r.status === 200,
        () => false,
      )
    )
      return;
    if (exit)
      throw new Error(
        `${label} exited (code ${exit.code}, signal ${exit.signal}) before it was ready; output:\n${tail()}`,
      );
    if (Date.now() > until) throw new Error(`${label} not ready within ${withinMs} ms; output:\n${tail()}`);
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}

/** Starts the server and waits until it is ready; if it is not, kills it and throws. */
export async function spawnServerProcess(opts: SpawnServerOptions): Promise<ServerProcess> {
  const server = await launchServerProcess(opts);
  try {
    await waitUntilReady(server, opts.readyWithinMs ?? 90_000, opts.label);
  } catch (e) {
    await server.kill();
    throw e;
  }
  return server;
}
