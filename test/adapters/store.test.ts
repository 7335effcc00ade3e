import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AdapterStore, CURRENT_FILE, parseVersionFileName, versionFileName } from "../../src/adapters/store.js";
import { isValidTaskName, validateTaskName } from "../../src/adapters/task-name.js";
import { SktError } from "../../src/errors.js";
import { type FsCall, deferred, errnoError, hookedFs, never } from "../helpers/hooked-fs.js";

const enc = (s: string) => new TextEncoder().encode(s);
/** Distinct, non-trivial content per label so a mixed-up file would be noticed. */
const payload = (label: string, size = 4096) => enc(label.repeat(Math.ceil(size / label.length)).slice(0, size));

let tmp: string;
let root: string;

beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "skt-store-"));
  root = path.join(tmp, "adapters");
});

afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

async function expectSkt(p: Promise<unknown>, kind: string, code: string): Promise<SktError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SktError);
  expect(err).toMatchObject({ kind, code });
  return err as SktError;
}

/** Relative paths of every entry under `dir` (folders end in "/"), sorted: a whole-tree snapshot. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fsp.readdir(dir, { withFileTypes: true, recursive: true })) {
    const rel = path.relative(dir, path.join(e.parentPath, e.name));
    out.push(e.isDirectory() ? `${rel}/` : rel);
  }
  return out.sort();
}

async function tempFilesIn(task: string): Promise<string[]> {
  return (await fsp.readdir(path.join(root, task))).filter((n) => n.startsWith(".tmp-"));
}

describe("task names", () => {
  const hostile = [
    "",
    ".",
    "..",
    "../x",
    "..\\x",
    "a/b",
    "a\\b",
    "/abs",
    "%2e%2e",
    "%2f",
    "a.b",
    "a".repeat(65),
    "tâche",
    "ｓｓｔ２", // full-width look-alike
    "Upper",
    "SST2",
    "-lead",
    "_lead",
    " a",
    "a ",
    "a\n",
    "a\0b",
    "CURRENT",
  ];

  it.each(hostile)("refuses %j", (name) => {
    expect(isValidTaskName(name)).toBe(false);
    expect(() => validateTaskName(name)).toThrow(expect.objectContaining({ kind: "bad_request", code: "invalid_task_name" }));
  });

  it("accepts the documented alphabet up to 64 characters", () => {
    for (const ok of ["a", "0", "sst2", "mnli_matched", "cola-v2", "9lives", "a".repeat(64), "a_-_b"]) {
      expect(isValidTaskName(ok)).toBe(true);
      expect(() => validateTaskName(ok)).not.toThrow();
    }
  });

  it("refuses non-strings", () => {
    for (const v of [undefined, null, 1, ["sst2"], { toString: () => "sst2" }]) {
      expect(isValidTaskName(v)).toBe(false);
      expect(() => validateTaskName(v)).toThrow(SktError);
    }
  });

  it("rejects hostile names in every store method before touching the disk", async () => {
    const calls: FsCall[] = [];
    const store = new AdapterStore(root, { fs: hookedFs((c) => void calls.push(c)) });
    for (const name of hostile) {
      await expectSkt(store.write(name, enc("x")), "bad_request", "invalid_task_name");
      await expectSkt(store.writeVersion(name, enc("x")), "bad_request", "invalid_task_name");
      await expectSkt(store.read(name, 1), "bad_request", "invalid_task_name");
      await expectSkt(store.current(name), "bad_request", "invalid_task_name");
      await expectSkt(store.listVersions(name), "bad_request", "invalid_task_name");
      await expectSkt(store.setCurrent(name, 1), "bad_request", "invalid_task_name");
      await expectSkt(store.deleteTask(name), "bad_request", "invalid_task_name");
    }
    expect(calls).toEqual([]);
    expect(await fsp.readdir(tmp)).toEqual([]); // not even the root was created
  });
});

describe("version file names", () => {
  it("round-trips and only accepts the canonical spelling", () => {
    expect(versionFileName(1)).toBe("v000001.safetensors");
    expect(versionFileName(1234567)).toBe("v1234567.safetensors");
    expect(parseVersionFileName("v000042.safetensors")).toBe(42);
    expect(parseVersionFileName("v1234567.safetensors")).toBe(1234567);
    for (const bad of ["v0000001.safetensors", "v000000.safetensors", "v1.safetensors", "v000001.safetensors.tmp", ".tmp-v000001.safetensors", "CURRENT"]) {
      expect(parseVersionFileName(bad)).toBeNull();
    }
  });
});

describe("AdapterStore basics", () => {
  it("is empty before anything is written (root need not exist)", async () => {
    const store = new AdapterStore(root);
    expect(await store.listTasks()).toEqual([]);
    expect(await store.current("sst2")).toBeNull();
    expect(await store.listVersions("sst2")).toEqual([]);
    await expectSkt(store.read("sst2", 1), "not_found", "version_not_found");
  });

  it("writes, reads, lists and reports the current version", async () => {
    const store = new AdapterStore(root);
    const bytes = payload("sst2-v1-");
    expect(await store.write("sst2", bytes)).toBe(1);

    expect(await store.listTasks()).toEqual(["sst2"]);
    expect(await store.current("sst2")).toBe(1);
    expect(await store.read("sst2", 1)).toEqual(bytes);
    const [v] = await store.listVersions("sst2");
    expect(v).toMatchObject({ version: 1, bytes: bytes.length });
    expect(new Date(v.createdAt).toISOString()).toBe(v.createdAt);

    expect(await fsp.readdir(path.join(root, "sst2"))).toEqual(expect.arrayContaining(["v000001.safetensors", "CURRENT"]));
    expect(await fsp.readFile(path.join(root, "sst2", CURRENT_FILE), "utf8")).toBe("1\n");
    expect(await tempFilesIn("sst2")).toEqual([]);
  });

  it("stores empty and binary content byte-for-byte", async () => {
    const store = new AdapterStore(root);
    const binary = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 131) % 256);
    expect(await store.write("bin", new Uint8Array(0))).toBe(1);
    expect(await store.write("bin", binary)).toBe(2);
    expect(await store.read("bin", 1)).toEqual(new Uint8Array(0));
    expect(await store.read("bin", 2)).toEqual(binary);
  });

  it("numbers versions upward and moves CURRENT on each write", async () => {
    const store = new AdapterStore(root);
    for (let i = 1; i <= 3; i++) {
      expect(await store.write("cola", payload(`v${i}-`))).toBe(i);
      expect(await store.current("cola")).toBe(i);
    }
    expect((await store.listVersions("cola")).map((v) => v.version)).toEqual([1, 2, 3]);
    expect(await store.read("cola", 2)).toEqual(payload("v2-"));
  });

  it("lists tasks sorted and ignores folders that are not valid task names", async () => {
    const store = new AdapterStore(root);
    await store.write("mrpc", enc("m"));
    await store.write("cola", enc("c"));
    await store.write("sst2", enc("s"));
    await fsp.mkdir(path.join(root, "Bad"));
    await fsp.writeFile(path.join(root, "Bad", "CURRENT"), "1\n");
    await fsp.writeFile(path.join(root, "Bad", "v000001.safetensors"), "x");
    await fsp.writeFile(path.join(root, "stray-file"), "not a folder");
    expect(await store.listTasks()).toEqual(["cola", "mrpc", "sst2"]);
  });

  it("rejects invalid version numbers", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("x"));
    for (const v of [0, -1, 1.5, Number.NaN, Infinity, 2 ** 60]) {
      await expectSkt(store.read("sst2", v), "bad_request", "invalid_version");
      await expectSkt(store.setCurrent("sst2", v), "bad_request", "invalid_version");
    }
    await expectSkt(store.read("sst2", 2), "not_found", "version_not_found");
  });

  it("rejects a bad maxVersionsPerTask", () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new AdapterStore(root, { maxVersionsPerTask: bad })).toThrow(SktError);
    }
    expect(() => new AdapterStore(root, { maxVersionsPerTask: Infinity })).not.toThrow();
  });
});

describe("CURRENT pointer", () => {
  it("writeVersion stores a version without moving CURRENT", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    expect(await store.writeVersion("sst2", enc("two"))).toBe(2);
    expect(await store.current("sst2")).toBe(1);
    expect(await store.read("sst2", 2)).toEqual(enc("two"));
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([1, 2]);
  });

  it("a task with only writeVersion'd files is not listed", async () => {
    const store = new AdapterStore(root);
    expect(await store.writeVersion("fresh", enc("x"))).toBe(1);
    expect(await store.listTasks()).toEqual([]);
    expect(await store.current("fresh")).toBeNull();
    await store.setCurrent("fresh", 1);
    expect(await store.listTasks()).toEqual(["fresh"]);
  });

  it("setCurrent promotes and rolls back", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    await store.write("sst2", enc("two"));
    await store.setCurrent("sst2", 1);
    expect(await store.current("sst2")).toBe(1);
    // The next write still takes max+1, never reuses a number.
    expect(await store.write("sst2", enc("three"))).toBe(3);
    await store.setCurrent("sst2", 2);
    expect(await store.current("sst2")).toBe(2);
  });

  it("deleteVersion removes a non-current version and refuses the current one", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    const two = await store.writeVersion("sst2", enc("two"));
    await store.deleteVersion("sst2", two);
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([1]);
    await expectSkt(store.deleteVersion("sst2", 1), "conflict", "version_is_current");
    expect(await store.read("sst2", 1)).toEqual(enc("one"));
  });

  it("setCurrent to a missing version fails and changes nothing", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    const before = await tree(root);
    await expectSkt(store.setCurrent("sst2", 5), "not_found", "version_not_found");
    await expectSkt(store.setCurrent("nosuch", 1), "not_found", "version_not_found");
    expect(await store.current("sst2")).toBe(1);
    expect(await tree(root)).toEqual(before);
  });

  it("does not guess when CURRENT is missing, corrupt or dangling", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    await store.write("sst2", enc("two"));
    const pointer = path.join(root, "sst2", CURRENT_FILE);
    for (const content of ["garbage", "", "0", "-1", "1.5", "2 3", "0x2", "7\n"]) {
      await fsp.writeFile(pointer, content);
      expect(await store.current("sst2"), content).toBeNull();
      expect(await store.listTasks(), content).toEqual([]);
    }
    await fsp.rm(pointer);
    expect(await store.current("sst2")).toBeNull();
    expect(await store.listTasks()).toEqual([]);
    // The versions themselves are still there for an operator to inspect or re-point.
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([1, 2]);
    await store.setCurrent("sst2", 2);
    expect(await store.listTasks()).toEqual(["sst2"]);
  });
});

describe("deleteTask", () => {
  it("removes the pointer first, then the files; the number sequence restarts", async () => {
    const unlinks: string[] = [];
    const store = new AdapterStore(root, {
      fs: hookedFs((c) => {
        if (c.op === "unlink") unlinks.push(path.basename(c.path));
      }),
    });
    await store.write("sst2", enc("one"));
    await store.write("sst2", enc("two"));
    await store.write("cola", enc("c"));
    unlinks.length = 0;

    await store.deleteTask("sst2");
    expect(unlinks[0]).toBe(CURRENT_FILE);
    expect(unlinks.slice(1).sort()).toEqual(["v000001.safetensors", "v000002.safetensors"]);
    expect(await store.listTasks()).toEqual(["cola"]);
    expect(await store.current("sst2")).toBeNull();
    await expectSkt(store.read("sst2", 1), "not_found", "version_not_found");
    expect(await fsp.readdir(root)).toEqual(["cola"]);

    expect(await store.write("sst2", enc("again"))).toBe(1);
  });

  it("an unknown task is not_found", async () => {
    const store = new AdapterStore(root);
    await expectSkt(store.deleteTask("nosuch"), "not_found", "task_not_found");
  });

  it("leaves foreign files (and so the folder) alone", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    await fsp.writeFile(path.join(root, "sst2", "NOTES.md"), "operator notes");
    await store.deleteTask("sst2");
    expect(await fsp.readdir(path.join(root, "sst2"))).toEqual(["NOTES.md"]);
    expect(await store.listTasks()).toEqual([]);
  });

  it("the task is already gone if removing its files fails part-way", async () => {
    const store = new AdapterStore(root, {
      fs: hookedFs((c) => {
        if (c.op === "unlink" && c.path.endsWith(".safetensors")) throw errnoError("EACCES", c.path);
      }),
    });
    await store.write("sst2", enc("one"));
    const err = await expectSkt(store.deleteTask("sst2"), "storage", "write_failed");
    expect(err.message).toContain("EACCES");
    expect(await store.listTasks()).toEqual([]);
    expect(await store.current("sst2")).toBeNull();
  });
});

describe("concurrency", () => {
  it("20 concurrent writes to one task get 20 distinct versions, all intact", async () => {
    const store = new AdapterStore(root);
    const bodies = Array.from({ length: 20 }, (_, i) => payload(`write-${i}-`, 8192 + i));
    const versions = await Promise.all(bodies.map((b) => store.write("sst2", b)));

    expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    for (const [i, v] of versions.entries()) expect(await store.read("sst2", v)).toEqual(bodies[i]);
    expect(await store.current("sst2")).toBe(Math.max(...versions));
    expect((await store.listVersions("sst2")).length).toBe(20);
    expect(await tempFilesIn("sst2")).toEqual([]);
  });

  it("concurrent writes to two tasks both land", async () => {
    const store = new AdapterStore(root);
    const writes = [];
    for (let i = 0; i < 5; i++) {
      writes.push(store.write("alpha", payload(`a${i}-`)), store.write("beta", payload(`b${i}-`)));
    }
    await Promise.all(writes);
    expect(await store.listTasks()).toEqual(["alpha", "beta"]);
    for (let i = 0; i < 5; i++) {
      expect(await store.read("alpha", i + 1)).toEqual(payload(`a${i}-`));
      expect(await store.read("beta", i + 1)).toEqual(payload(`b${i}-`));
    }
  });

  it("a write stalled on one task does not block another task", { timeout: 10_000 }, async () => {
    const gate = deferred();
    const reached = deferred();
    const store = new AdapterStore(root, {
      fs: hookedFs(async (c) => {
        if (c.op === "rename" && c.to?.endsWith(path.join("alpha", "v000001.safetensors"))) {
          reached.resolve();
          await gate.promise;
        }
      }),
    });
    const alpha = store.write("alpha", enc("a"));
    await reached.promise;
    // alpha holds its lock; beta must still complete (a regression would deadlock until the timeout).
    expect(await store.write("beta", enc("b"))).toBe(1);
    expect(await store.listTasks()).toEqual(["beta"]);
    gate.resolve();
    expect(await alpha).toBe(1);
    expect(await store.listTasks()).toEqual(["alpha", "beta"]);
  });
});

describe("crash safety", () => {
  it("a crash mid-write (partial temp file) is invisible, and recover() removes the temp", async () => {
    await new AdapterStore(root).write("sst2", enc("good version one"));

    // Writes 4 bytes per call, then "dies" inside the second call: a partial temp file stays on disk.
    const reached = deferred();
    let writes = 0;
    const dying = new AdapterStore(root, {
      fs: hookedFs(async (c) => {
        if (c.op === "write" && ++writes === 2) {
          reached.resolve();
          await never();
        }
      }, { maxWriteChunk: 4 }),
    });
    void dying.write("sst2", enc("new version two, never finished"));
    await reached.promise;

    const [temp] = await tempFilesIn("sst2");
    expect(await fsp.readFile(path.join(root, "sst2", temp), "utf8")).toBe("new ");

    // A fresh process sees only the old state.
    const restarted = new AdapterStore(root);
    expect(await restarted.listTasks()).toEqual(["sst2"]);
    expect(await restarted.current("sst2")).toBe(1);
    expect((await restarted.listVersions("sst2")).map((v) => v.version)).toEqual([1]);
    expect(await restarted.read("sst2", 1)).toEqual(enc("good version one"));

    expect(await restarted.recover()).toEqual({ removedTempFiles: [path.join(root, "sst2", temp)] });
    expect(await tempFilesIn("sst2")).toEqual([]);
    expect(await restarted.write("sst2", enc("two"))).toBe(2);
  });

  it("a crash between the version rename and the CURRENT rename keeps the old current", async () => {
    await new AdapterStore(root).write("sst2", enc("one"));
    const reached = deferred();
    const dying = new AdapterStore(root, {
      fs: hookedFs(async (c) => {
        if (c.op === "rename" && c.to?.endsWith(CURRENT_FILE)) {
          reached.resolve();
          await never();
        }
      }),
    });
    void dying.write("sst2", enc("two"));
    await reached.promise;

    const restarted = new AdapterStore(root);
    expect(await restarted.current("sst2")).toBe(1);
    expect(await restarted.read("sst2", 1)).toEqual(enc("one"));
    // The complete v2 is there as a non-current version; a later write takes 3.
    expect(await restarted.read("sst2", 2)).toEqual(enc("two"));
    const { removedTempFiles } = await restarted.recover();
    expect(removedTempFiles).toHaveLength(1); // CURRENT's fully written but never renamed temp
    expect(await restarted.current("sst2")).toBe(1);
    expect(await restarted.write("sst2", enc("three"))).toBe(3);
  });

  it("hand-made leftovers (partial temps, a task with only a temp) are invisible", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    await fsp.writeFile(path.join(root, "sst2", ".tmp-0123456789abcdef"), "partial safetens");
    await fsp.writeFile(path.join(root, "sst2", ".tmp-fedcba9876543210"), "2");
    await fsp.mkdir(path.join(root, "newtask"));
    await fsp.writeFile(path.join(root, "newtask", ".tmp-aaaaaaaaaaaaaaaa"), "half");

    expect(await store.listTasks()).toEqual(["sst2"]);
    expect(await store.current("sst2")).toBe(1);
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([1]);
    expect(await store.current("newtask")).toBeNull();
    expect(await store.listVersions("newtask")).toEqual([]);
  });
});

describe("recover", () => {
  it("removes .tmp-* files in task folders and nothing else", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("one"));
    await store.writeVersion("sst2", enc("two"));
    const leftovers = [
      path.join(root, "sst2", ".tmp-1111111111111111"),
      path.join(root, "sst2", ".tmp-2222222222222222"),
      path.join(root, "orphan", ".tmp-3333333333333333"),
    ];
    await fsp.mkdir(path.join(root, "orphan"));
    for (const f of leftovers) await fsp.writeFile(f, "junk");
    // Things recover() must not touch:
    await fsp.writeFile(path.join(root, "sst2", "NOTES.md"), "keep");
    await fsp.writeFile(path.join(root, "sst2", "v1.safetensors"), "not canonical, but not ours to delete");
    await fsp.mkdir(path.join(root, "sst2", ".tmp-dir"));
    await fsp.writeFile(path.join(root, ".tmp-at-root"), "not in a task folder");
    await fsp.mkdir(path.join(root, "Bad"));
    await fsp.writeFile(path.join(root, "Bad", ".tmp-4444444444444444"), "not a task folder");

    const before = await tree(root);
    const { removedTempFiles } = await store.recover();
    expect(removedTempFiles).toEqual([...leftovers].sort());
    const removed = leftovers.map((f) => path.relative(root, f));
    expect(await tree(root)).toEqual(before.filter((e) => !removed.includes(e)));
    expect(await store.current("sst2")).toBe(1);
    expect(await store.read("sst2", 2)).toEqual(enc("two"));
  });

  it("is a no-op on a missing root", async () => {
    expect(await new AdapterStore(root).recover()).toEqual({ removedTempFiles: [] });
  });
});

describe("disk failures", () => {
  /** A store over `root` whose fs throws `code` at the first call matching `when`. */
  function failingStore(when: (c: FsCall) => boolean, code: string) {
    let armed = false;
    const store = new AdapterStore(root, {
      fs: hookedFs((c) => {
        if (armed && when(c)) {
          armed = false;
          throw errnoError(code, c.path);
        }
      }),
    });
    return { store, arm: () => (armed = true) };
  }

  const isVersionTemp = (c: FsCall) => path.basename(c.path).startsWith(".tmp-");
  const cases: { name: string; when: (c: FsCall) => boolean; code: string }[] = [
    { name: "ENOSPC while writing bytes", when: (c) => c.op === "write", code: "ENOSPC" },
    { name: "EACCES opening the temp file", when: (c) => c.op === "open" && isVersionTemp(c), code: "EACCES" },
    { name: "EIO on fsync", when: (c) => c.op === "sync", code: "EIO" },
    { name: "EROFS renaming the version", when: (c) => c.op === "rename" && !!c.to?.endsWith(".safetensors"), code: "EROFS" },
    { name: "EROFS renaming CURRENT", when: (c) => c.op === "rename" && !!c.to?.endsWith(CURRENT_FILE), code: "EROFS" },
  ];

  it.each(cases)("$name: write fails with storage/write_failed and v1 still serves", async ({ when, code }) => {
    const { store, arm } = failingStore(when, code);
    await store.write("sst2", enc("one"));
    arm();
    const err = await expectSkt(store.write("sst2", enc("two")), "storage", "write_failed");
    expect(err.message).toContain(code);
    // The message reaches clients: it names the file within the store, never the server's folders.
    expect(err.message).not.toContain(root);
    expect(err.message).toMatch(/sst2\//);
    expect(err.details).toMatchObject({ errno: code });
    expect(String(err.details?.path)).toContain(path.join(root, "sst2"));

    expect(await store.current("sst2")).toBe(1);
    expect(await store.read("sst2", 1)).toEqual(enc("one"));
    expect(await store.listTasks()).toEqual(["sst2"]);
    expect(await tempFilesIn("sst2")).toEqual([]); // temp cleaned up
    // The store keeps working once the disk does.
    const next = await store.write("sst2", enc("three"));
    expect(await store.current("sst2")).toBe(next);
    expect(await store.read("sst2", next)).toEqual(enc("three"));
  });

  it.each(["EMFILE", "ENFILE"])("%s (out of descriptors) is not_ready/too_many_open_files without the store's path", async (errno) => {
    const { store, arm } = failingStore((c) => c.op === "readFile" || c.op === "open", errno);
    await store.write("sst2", enc("one"));
    for (const call of [() => store.read("sst2", 1), () => store.write("sst2", enc("two"))]) {
      arm();
      const err = await expectSkt(call(), "not_ready", "too_many_open_files");
      expect(err.message).toContain(errno);
      expect(err.message).not.toContain(root);
    }
  });

  it("a failed setCurrent leaves the pointer where it was", async () => {
    const { store, arm } = failingStore((c) => c.op === "rename", "EROFS");
    await store.write("sst2", enc("one"));
    await store.write("sst2", enc("two"));
    arm();
    await expectSkt(store.setCurrent("sst2", 1), "storage", "write_failed");
    expect(await store.current("sst2")).toBe(2);
    expect(await tempFilesIn("sst2")).toEqual([]);
  });

  it("a file where the root's parent should be gives write_failed, not a crash", async () => {
    const blocker = path.join(tmp, "blocker");
    await fsp.writeFile(blocker, "I am a file");
    const store = new AdapterStore(path.join(blocker, "adapters"));
    const err = await expectSkt(store.write("sst2", enc("one")), "storage", "write_failed");
    expect(err.message).toMatch(/ENOTDIR|EEXIST/);
    expect(await store.listTasks()).toEqual([]);
    expect(await fsp.readFile(blocker, "utf8")).toBe("I am a file");
  });
});

describe("retention", () => {
  it("keeps at most maxVersionsPerTask, deleting the oldest", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: 3 });
    for (let i = 1; i <= 5; i++) await store.write("sst2", enc(`v${i}`));
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([3, 4, 5]);
    expect(await store.current("sst2")).toBe(5);
  });

  it("never deletes the current version, even when it is the oldest", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: 3 });
    for (let i = 1; i <= 3; i++) await store.write("sst2", enc(`v${i}`));
    await store.setCurrent("sst2", 1); // rolled back
    expect(await store.writeVersion("sst2", enc("v4"))).toBe(4);
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([1, 3, 4]);
    expect(await store.current("sst2")).toBe(1);
    expect(await store.read("sst2", 1)).toEqual(enc("v1"));
  });

  it("defaults to 20 versions per task", async () => {
    const store = new AdapterStore(root);
    for (let i = 1; i <= 22; i++) await store.write("sst2", enc(`v${i}`));
    const versions = (await store.listVersions("sst2")).map((v) => v.version);
    expect(versions).toEqual(Array.from({ length: 20 }, (_, i) => i + 3));
  });

  it("Infinity keeps everything", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: Infinity });
    for (let i = 1; i <= 25; i++) await store.write("sst2", enc(`v${i}`));
    expect((await store.listVersions("sst2")).length).toBe(25);
  });
});

describe("staged versions (uploaded inactive)", () => {
  it("pruning never deletes a staged version, and keeps the current one", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: 3 });
    await store.write("sst2", enc("v1"));
    expect(await store.writeVersion("sst2", enc("v2"), { staged: true })).toBe(2);
    for (let i = 3; i <= 5; i++) await store.write("sst2", enc(`v${i}`));
    // Oldest first, skipping the staged v2: v1 and v3 go.
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([2, 4, 5]);
    expect(await store.stagedVersions("sst2")).toEqual([2]);
    expect(await store.read("sst2", 2)).toEqual(enc("v2"));
  });

  it("a staged version stops being staged once current or deleted", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: 3 });
    await store.write("sst2", enc("v1"));
    await store.writeVersion("sst2", enc("v2"), { staged: true });
    await store.writeVersion("sst2", enc("v3"), { staged: true });
    await store.setCurrent("sst2", 2);
    expect(await store.stagedVersions("sst2")).toEqual([3]);
    await store.deleteVersion("sst2", 3);
    expect(await store.stagedVersions("sst2")).toEqual([]);
    expect(await fsp.readdir(path.join(root, "sst2"))).not.toContain("STAGED");
    // Nothing is staged any more: plain retention (numbers restart after the deleted v3).
    for (let i = 3; i <= 5; i++) await store.write("sst2", enc(`v${i}`));
    expect((await store.listVersions("sst2")).map((v) => v.version)).toEqual([3, 4, 5]);
  });

  it("a first upload staged leaves a task with no current version, invisible to the index", async () => {
    const store = new AdapterStore(root);
    await store.open();
    expect(await store.writeVersion("fresh", enc("v1"), { staged: true })).toBe(1);
    expect(store.index.has("fresh")).toBe(false);
    expect(await store.current("fresh")).toBeNull();
    const reopened = new AdapterStore(root);
    await reopened.open();
    expect(reopened.index.has("fresh")).toBe(false);
    expect(await reopened.stagedVersions("fresh")).toEqual([1]);
    await reopened.setCurrent("fresh", 1);
    expect(reopened.index.get("fresh")?.version).toBe(1);
  });

  it("documents are written atomically next to the task and removed with it", async () => {
    const store = new AdapterStore(root);
    await store.write("sst2", enc("v1"));
    await store.writeVersion("sst2", enc("v2"), { staged: true });
    await store.writeDocument("sst2", "eval-set.json", enc('{"rows":1}'));
    await store.writeDocument("sst2", "gate-v000002.json", enc("{}"));
    expect(await store.readDocument("sst2", "eval-set.json")).toEqual(enc('{"rows":1}'));
    expect(await store.readDocument("sst2", "missing.json")).toBeNull();
    await expectSkt(store.writeDocument("sst2", "v000009.safetensors", enc("x")), "internal", "invalid_document_name");
    await expectSkt(store.writeDocument("sst2", "../escape.json", enc("x")), "internal", "invalid_document_name");
    expect(await tree(root)).toEqual([
      "sst2/",
      "sst2/CURRENT",
      "sst2/STAGED",
      "sst2/eval-set.json",
      "sst2/gate-v000002.json",
      "sst2/v000001.safetensors",
      "sst2/v000002.safetensors",
    ]);
    await store.deleteTask("sst2");
    expect(await tree(root)).toEqual([]);
  });
});
