/**
 * Crash safety.
 *
 * In-process: the store's disk fails at each step of an upload (folder creation, temp open, write,
 * fsync, rename, folder fsync, the CURRENT pointer): the client gets 507 `write_failed`, the old
 * version keeps serving, CURRENT does not move and no temp file is left.
 *
 * Real process (`kill -9`): mid-upload with a slow streaming body; right after an upload was
 * acknowledged (it must survive); racing the write itself, with leftovers of an interrupted write
 * planted on disk. Each time a new server on the same folder serves a complete version, recovery
 * removes every `.tmp-*` file, and nothing acknowledged is lost. Last, SIGTERM in the middle of a
 * streaming upload: its connection is dropped at once (a half-received request must not hold the
 * shutdown, issue 18), nothing of it is stored, and the process exits 0.
 */
import http from "node:http";
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { AdapterStore } from "../../src/adapters/store.js";
import { INDEX_FILE, intentLine } from "../../src/adapters/task-index.js";
import { errnoError, hookedFs, type FsCall } from "../helpers/hooked-fs.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import {
  adminHeaders,
  expectErrorBody,
  listTree,
  spawnServer,
  startEngineRig,
  type EngineRig,
  type ServerProcess,
} from "./helpers.js";

/** Adapters whose label shows which one answered: odd seeds say "negative", even ones "positive". */
function adapterBytes(assets: BackboneAssets, task: string, n: number): Uint8Array {
  return servableAdapterBytes(assets, { task, seed: n, headBias: n % 2 ? [40, -40] : [-40, 40] });
}
const labelOf = (n: number) => (n % 2 ? "negative" : "positive");
const octet = { ...adminHeaders, "content-type": "application/octet-stream" };

// ---- disk failures, in-process ----------------------------------------------------------------

describe("a failing disk during an upload → 507 write_failed, the old version keeps serving", () => {
  let rig: EngineRig;
  /** When set, the hook throws for the first call it matches, then disarms. */
  let trap: { match: (c: FsCall) => boolean; error: NodeJS.ErrnoException } | null = null;
  const fired: string[] = [];

  let diskRoot = "";

  beforeAll(async () => {
    const root = (diskRoot = await mkdtemp(path.join(os.tmpdir(), "skt-rel-disk-")));
    const store = new AdapterStore(path.join(root, "adapters"), {
      fs: hookedFs((call) => {
        if (trap && trap.match(call)) {
          const { error } = trap;
          trap = null;
          fired.push(`${call.op} ${path.basename(call.to ?? call.path)}`);
          throw error;
        }
      }),
    });
    rig = await startEngineRig({}, { store });
    await rm(rig.root, { recursive: true, force: true }); // the rig's own temp folder is unused
    Object.assign(rig, { root, adaptersDir: path.join(root, "adapters") });
    await rig.engine.upload("disk", adapterBytes(rig.engine.assets, "disk", 1));
  });
  afterAll(async () => {
    await rig?.close();
    if (diskRoot) await rm(diskRoot, { recursive: true, force: true });
  });

  const isTemp = (p: string) => path.basename(p).startsWith(".tmp-");
  const FAILURES: Array<[string, (c: FsCall) => boolean, string]> = [
    ["creating the task folder", (c) => c.op === "mkdir", "EACCES"],
    ["opening the temp file", (c) => c.op === "open" && isTemp(c.path), "ENOSPC"],
    [
      "appending the intent to the task index",
      (c) => c.op === "write" && c.path.endsWith(`${path.sep}INDEX`),
      "ENOSPC",
    ],
    ["writing the bytes", (c) => c.op === "write" && isTemp(c.path), "ENOSPC"],
    ["fsyncing the file", (c) => c.op === "sync" && isTemp(c.path), "EIO"],
    ["renaming the version into place", (c) => c.op === "rename" && c.to!.endsWith(".safetensors"), "EROFS"],
    [
      "fsyncing the folder after the version rename",
      (c) => c.op === "open" && c.path.endsWith(`${path.sep}disk`),
      "EIO",
    ],
    ["renaming CURRENT into place", (c) => c.op === "rename" && c.to!.endsWith("CURRENT"), "EROFS"],
  ];

  it.each(FAILURES)("failure while %s", async (_what, match, errno) => {
    const before = await listTree(rig.root);
    const current = rig.engine.registry.currentVersion("disk")!;
    trap = { match, error: errnoError(errno) };
    const res = await rig.app.request("/admin/adapters/disk", {
      method: "PUT",
      headers: octet,
      body: adapterBytes(rig.engine.assets, "disk", current + 1) as Uint8Array<ArrayBuffer>,
    });
    expect(trap, "the fault was injected").toBeNull();
    expect(res.status).toBe(507);
    const err = await expectErrorBody(res);
    expect(err.code).toBe("write_failed");
    expect(err.message).toMatch(new RegExp(errno));
    // The old version keeps serving and stays current, in memory and on disk.
    expect(rig.engine.registry.currentVersion("disk")).toBe(current);
    expect((await readFile(path.join(rig.adaptersDir, "disk", "CURRENT"), "utf8")).trim()).toBe(String(current));
    const c = await rig.app.request("/classify?task=disk", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: '{"text":"still the old one"}',
    });
    expect(c.status).toBe(200);
    expect(await c.json()).toMatchObject({ adapter_version: current, predictions: [{ label: labelOf(current) }] });
    // A failed upload leaves nothing behind: no temp file, no orphan version file, nothing removed.
    const after = await listTree(rig.root);
    expect(after.filter(isTemp)).toEqual([]);
    expect(after.filter((p) => !before.includes(p))).toEqual([]);
    expect(before.filter((p) => !after.includes(p))).toEqual([]);
  });

  it.each([
    ["appending the intent to the task index", (c: FsCall) => c.op === "write" && c.path.endsWith(`${path.sep}INDEX`)],
    ["writing the bytes", (c: FsCall) => c.op === "write" && isTemp(c.path)],
    ["renaming CURRENT into place", (c: FsCall) => c.op === "rename" && c.to!.endsWith("CURRENT")],
  ])("a failing disk on a new task's first upload (%s): 507, and not even its folder is left", async (_what, match) => {
    trap = { match, error: errnoError("ENOSPC") };
    const res = await rig.app.request("/admin/adapters/fresh", {
      method: "PUT",
      headers: octet,
      body: adapterBytes(rig.engine.assets, "fresh", 1) as Uint8Array<ArrayBuffer>,
    });
    expect(trap, "the fault was injected").toBeNull();
    expect(res.status).toBe(507);
    expect((await expectErrorBody(res)).code).toBe("write_failed");
    expect(rig.engine.hasTask("fresh")).toBe(false);
    const tasks = (await (await rig.app.request("/tasks")).json()) as { tasks: { task: string }[] };
    expect(tasks.tasks.map((t) => t.task)).toEqual(["disk"]);
    expect((await listTree(rig.root)).filter((p) => p === "adapters/fresh" || p.startsWith("adapters/fresh/"))).toEqual(
      [],
    );
  });

  it("after the disk recovers, the next upload succeeds", async () => {
    const current = rig.engine.registry.currentVersion("disk")!;
    const res = await rig.app.request("/admin/adapters/disk", {
      method: "PUT",
      headers: octet,
      body: adapterBytes(rig.engine.assets, "disk", 2) as Uint8Array<ArrayBuffer>,
    });
    expect(res.status).toBe(201);
    expect(rig.engine.registry.currentVersion("disk")).toBeGreaterThan(current);
    console.log(`[crash-safety] injected disk faults: ${fired.join("; ")}`);
  });
});

// ---- kill -9 of a real server process ----------------------------------------------------------

describe("kill -9 of the server process loses nothing", () => {
  let assets: BackboneAssets;
  let root: string;
  let adaptersDir: string;
  let server: ServerProcess | undefined;
  const TASK = "durable";

  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    root = await mkdtemp(path.join(os.tmpdir(), "skt-rel-kill-"));
    adaptersDir = path.join(root, "adapters");
  });
  afterAll(async () => {
    await server?.kill();
    await rm(root, { recursive: true, force: true });
  });

  async function classify(s: ServerProcess): Promise<{ adapter_version: number; predictions: { label: string }[] }> {
    const r = await fetch(`${s.base}/classify?task=${TASK}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ texts: ["one", "two"] }),
    });
    expect(r.status).toBe(200);
    return (await r.json()) as { adapter_version: number; predictions: { label: string }[] };
  }

  async function put(s: ServerProcess, n: number): Promise<Response> {
    return fetch(`${s.base}/admin/adapters/${TASK}`, {
      method: "PUT",
      headers: octet,
      body: Buffer.from(adapterBytes(assets, TASK, n)),
    });
  }

  /** Starts a chunked upload, sends `fraction` of the bytes, and returns once they are on the wire. */
  async function startSlowUpload(s: ServerProcess, bytes: Uint8Array, fraction: number) {
    const req = http.request({
      host: "127.0.0.1",
      port: s.port,
      method: "PUT",
      path: `/admin/adapters/${TASK}`,
      headers: octet,
    });
    const response = new Promise<number | "aborted">((resolve) => {
      req.on("response", (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      });
      req.on("error", () => resolve("aborted"));
    });
    const cut = Math.floor(bytes.length * fraction);
    await new Promise<void>((resolve) => req.write(Buffer.from(bytes.subarray(0, cut)), () => resolve()));
    return { req, response, rest: bytes.subarray(cut) };
  }

  /** The invariant after any crash: a complete current version, no temp file anywhere. */
  async function checkConsistent(s: ServerProcess, allowed: number[]): Promise<number> {
    const tree = await listTree(root);
    expect(tree.filter((p) => path.basename(p).startsWith(".tmp-"))).toEqual([]);
    const r = await classify(s);
    expect(allowed).toContain(r.adapter_version);
    expect(r.predictions.map((p) => p.label)).toEqual([labelOf(r.adapter_version), labelOf(r.adapter_version)]);
    const details = (await (await fetch(`${s.base}/admin/adapters/${TASK}`, { headers: adminHeaders })).json()) as {
      current: number;
      versions: { version: number }[];
    };
    expect(details.current).toBe(r.adapter_version);
    return r.adapter_version;
  }

  it("mid-upload (slow streaming body): v1 serves after restart, no partial file", async () => {
    server = await spawnServer({ adaptersDir });
    expect((await put(server, 1)).status).toBe(201);
    expect((await classify(server)).adapter_version).toBe(1);

    const upload = await startSlowUpload(server, adapterBytes(assets, TASK, 2), 0.5);
    await server.kill();
    expect(await server.exited).toMatchObject({ signal: "SIGKILL" });
    expect(await upload.response).toBe("aborted");

    server = await spawnServer({ adaptersDir });
    expect(await checkConsistent(server, [1])).toBe(1);
    expect(await listTree(root)).toEqual([
      "adapters",
      "adapters/INDEX",
      `adapters/${TASK}`,
      `adapters/${TASK}/CURRENT`,
      `adapters/${TASK}/v000001.safetensors`,
    ]);
  });

  it("right after an acknowledged upload: the acknowledged version survives", async () => {
    expect((await put(server!, 2)).status).toBe(201);
    await server!.kill(); // the 201 means it is on disk
    server = await spawnServer({ adaptersDir });
    expect(await checkConsistent(server, [2])).toBe(2);
  });

  it("racing the write itself, with an interrupted write's leftovers on disk: recovery cleans up, a complete version serves", async () => {
    // Leftovers of writes that died between open and rename: in the task folder (with the durable
    // intent line the store appends to INDEX before it writes into a folder), and in a new task's
    // folder that never got a CURRENT (a folder the index does not know is always read at start).
    const partial = adapterBytes(assets, TASK, 9).subarray(0, 1000);
    await appendFile(path.join(adaptersDir, INDEX_FILE), intentLine(TASK));
    await writeFile(path.join(adaptersDir, TASK, ".tmp-0123456789abcdef"), partial);
    await mkdir(path.join(adaptersDir, "half-born"), { recursive: true });
    await writeFile(path.join(adaptersDir, "half-born", ".tmp-fedcba9876543210"), partial);

    // Send v3 completely and kill the process as soon as the last byte is on the wire.
    const upload = await startSlowUpload(server!, adapterBytes(assets, TASK, 3), 1);
    await new Promise<void>((resolve) => upload.req.end(() => resolve()));
    await server!.kill();
    const status = await upload.response;

    server = await spawnServer({ adaptersDir });
    const version = await checkConsistent(server, status === 201 ? [3] : [2, 3]);
    console.log(
      `[crash-safety] kill -9 racing an upload: response ${status}, version ${version} current after restart`,
    );
    expect(await listTree(path.join(adaptersDir, "half-born"))).toEqual([]);
    const tasks = (await (await fetch(`${server.base}/tasks`)).json()) as { tasks: { task: string }[] };
    expect(tasks.tasks.map((t) => t.task)).toEqual([TASK]);
  });

  it("SIGTERM in the middle of a streaming upload: the connection is dropped, nothing is stored, the process exits 0", async () => {
    const before = (await classify(server!)).adapter_version;
    const versionsBefore = (await new AdapterStore(adaptersDir).listVersions(TASK)).map((v) => v.version);
    const upload = await startSlowUpload(server!, adapterBytes(assets, TASK, 4), 0.5);
    server!.proc.kill("SIGTERM");
    // The rest never needs to arrive: the half-received upload does not hold the shutdown.
    expect(await upload.response).toBe("aborted");
    expect((await server!.exited).code).toBe(0);
    const store = new AdapterStore(adaptersDir);
    expect(await store.current(TASK)).toBe(before);
    expect((await store.listVersions(TASK)).map((v) => v.version)).toEqual(versionsBefore);
    expect((await store.recover()).removedTempFiles).toEqual([]);
    server = undefined;
  });
});
