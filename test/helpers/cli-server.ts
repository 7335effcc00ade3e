/**
 * The set-up of the end-to-end `skt` tests: a temporary folder holding two opposite-bias versions of
 * one task (v1.safetensors always answers "negative", v2.safetensors always "positive", so a label
 * tells which file answered), a server process that stores its adapters under that folder, and the
 * `skt` launcher run from the folder against it, as an operator runs it.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { loadBackboneAssets } from "../../src/backbone/backbone.js";
import { spawnServerProcess, type ServerProcess } from "../../scripts/lib/server-process.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { runSkt, type SktRun } from "./skt.js";
import { servableAdapterBytes } from "./servable-adapter.js";

export interface CliServer {
  /** The temporary folder: the adapter files, the server's `adapters/` and `skt`'s working folder. */
  dir: string;
  server: ServerProcess;
  /** The admin API's Authorization header (the server's SKT_ADMIN_TOKEN). */
  admin: { authorization: string };
  /** `skt …` from the folder, with the server's URL and token in the environment unless `env` overrides them. */
  skt(args: string[], o?: { env?: Record<string, string>; stdin?: string }): Promise<SktRun>;
  /** Stops the server and removes the folder. */
  close(): Promise<void>;
}

export async function startCliServer(o: { task: string; token: string }): Promise<CliServer> {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const dir = await mkdtemp(path.join(os.tmpdir(), `skt-cli-${o.task}-`));
  try {
    await writeFile(
      path.join(dir, "v1.safetensors"),
      servableAdapterBytes(assets, { task: o.task, seed: 1, headBias: [30, -30] }),
    );
    await writeFile(
      path.join(dir, "v2.safetensors"),
      servableAdapterBytes(assets, { task: o.task, seed: 2, headBias: [-30, 30] }),
    );
    const server = await spawnServerProcess({
      adaptersDir: path.join(dir, "adapters"),
      env: { SKT_ADMIN_TOKEN: o.token, SKT_MODELS_DIR: MODELS_DIR, SKT_LOG_LEVEL: "warn" },
      readyWithinMs: 60_000,
      cwd: dir,
    });
    return {
      dir,
      server,
      admin: { authorization: `Bearer ${o.token}` },
      skt: (args, run = {}) =>
        runSkt(args, {
          cwd: dir,
          env: { SKT_URL: server.base, SKT_ADMIN_TOKEN: o.token, ...run.env },
          stdin: run.stdin,
        }),
      close: async () => {
        await server.kill();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
}
