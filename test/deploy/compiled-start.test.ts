/**
 * The Docker images run compiled JavaScript (`npm run build:js` → dist/, then the Dockerfile's CMD),
 * not TypeScript through tsx. This compiles src/ with tsconfig.build.json into a temporary folder,
 * runs the command the Dockerfile's CMD names against it with no loader, and checks that the
 * compiled server answers /healthz, /readyz and a classification (which runs the compiled inference
 * worker), then stops cleanly on SIGTERM.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm, stat, symlink } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MODELS_DIR, REPO_ROOT } from "../../scripts/lib/paths.js";
import { dockerfileCmd } from "./dockerfile.js";

let temp: string;
let server: ChildProcess | undefined;
let baseUrl: string;
let log = "";

/** Starts `argv` (the image's CMD) in `cwd` and resolves with the port from its "listening" log line. */
function startCompiled(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    const child = spawn(command === "node" ? process.execPath : command, args, { cwd, env, stdio: "pipe" });
    server = child;
    const onData = (d: Buffer) => {
      log += d.toString();
      const m = /"port":(\d+).*"msg":"listening"/.exec(log);
      if (m) resolve(Number(m[1]));
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`compiled server exited early (${code}):\n${log}`)));
  });
}

async function waitReady(): Promise<Response> {
  for (;;) {
    const res = await fetch(`${baseUrl}/readyz`);
    if (res.status === 200) return res;
    await res.body?.cancel();
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("compiled JavaScript (the image's entry point)", () => {
  beforeAll(async () => {
    temp = await mkdtemp(path.join(os.tmpdir(), "skt-compiled-"));
    const outDir = path.join(temp, "dist");
    const tsc = spawnSync(
      process.execPath,
      [path.join(REPO_ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.build.json", "--outDir", outDir],
      { cwd: REPO_ROOT, encoding: "utf8" },
    );
    expect(tsc.stdout + tsc.stderr).toBe("");
    expect(tsc.status).toBe(0);
    // Bare imports resolve from the folder above dist/, as in the image (/app/node_modules).
    await symlink(path.join(REPO_ROOT, "node_modules"), path.join(temp, "node_modules"), "dir");
    await cp(path.join(REPO_ROOT, "adapters"), path.join(temp, "adapters"), { recursive: true });
  });

  afterAll(async () => {
    if (server && server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
    await rm(temp, { recursive: true, force: true });
  });

  it("emits the entry point, the inference worker and the package.json the server reads its version from", async () => {
    for (const f of ["dist/src/cli.js", "dist/src/engine/worker.js", "dist/package.json"])
      expect((await stat(path.join(temp, f))).isFile(), f).toBe(true);
    // No TypeScript is left for a loader to pick up.
    const files = await readdir(path.join(temp, "dist"), { recursive: true });
    expect(files.filter((f) => f.endsWith(".ts"))).toEqual([]);
  });

  it("serves /healthz, /readyz and a classification from the Dockerfile's CMD, then stops on SIGTERM", async () => {
    const cmd = await dockerfileCmd(path.join(REPO_ROOT, "Dockerfile"));
    expect(cmd.slice(0, 2)).toEqual(["node", "dist/src/cli.js"]);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: temp,
      PORT: "0",
      HOST: "127.0.0.1",
      NODE_ENV: "production",
      SKT_MODELS_DIR: MODELS_DIR,
      SKT_ADAPTERS_DIR: path.join(temp, "adapters"),
      SKT_DEVICE: "cpu",
      SKT_THREADS: "1",
    };
    const port = await startCompiled(cmd, temp, env);
    baseUrl = `http://127.0.0.1:${port}`;

    const health = await fetch(`${baseUrl}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });
    const ready = (await (await waitReady()).json()) as { status: string };
    expect(ready.status).toBe("ready");

    const current = Number((await readFile(path.join(temp, "adapters/sst2/CURRENT"), "utf8")).trim());
    const res = await fetch(`${baseUrl}/classify?task=sst2`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts: ["a gripping , funny film", "a tedious mess"] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      adapter_version: number;
      predictions: { label: string; scores: Record<string, number> }[];
    };
    expect(body.adapter_version).toBe(current);
    expect(body.predictions).toHaveLength(2);
    for (const p of body.predictions) {
      expect(Object.keys(p.scores).sort()).toEqual(["negative", "positive"]);
      expect(p.scores.negative + p.scores.positive).toBeCloseTo(1, 5);
    }

    const exited = new Promise<number | null>((resolve) => server!.once("exit", (code) => resolve(code)));
    server!.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(log).toContain("shutdown complete");
  });
});
