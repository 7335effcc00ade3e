import { spawnSync } from "node:child_process";
import * as fsp from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AdapterStore, CURRENT_FILE } from "../../src/adapters/store.js";
import { SUMMARY_LABEL_CHARS, SUMMARY_MAX_LABELS, SUMMARY_PROMPT_CHARS, packSummary, summarize, unpackSummary } from "../../src/adapters/summary.js";
import { INDEX_FILE, TaskIndex, commitLine, headerLine, intentLine, parseIndex } from "../../src/adapters/task-index.js";
import { isValidTaskName } from "../../src/adapters/task-name.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { seededRandom } from "../../src/random.js";
import { type FsCall, hookedFs, never } from "../helpers/hooked-fs.js";
import { makeMetadata } from "../helpers/random-adapter.js";

const enc = (s: string) => new TextEncoder().encode(s);
/** A describer the tests can read back: the summary is the file's text. */
const describeText = (task: string, bytes: Uint8Array) => ({ task, text: new TextDecoder().decode(bytes) });

let tmp: string;
let root: string;
beforeEach(async () => {
  tmp = await fsp.mkdtemp(path.join(os.tmpdir(), "skt-index-"));
  root = path.join(tmp, "adapters");
});
afterEach(async () => {
  await fsp.rm(tmp, { recursive: true, force: true });
});

describe("TaskIndex pages", () => {
  it("match a naive filter-sort-slice through random inserts and deletes", () => {
    const rand = seededRandom(7);
    const index = new TaskIndex();
    const naive = new Map<string, number>();
    const alphabet = "ab-_0z";
    for (let step = 0; step < 3000; step++) {
      const name = alphabet[Math.floor(rand() * 6)] + Array.from({ length: Math.floor(rand() * 3) }, () => alphabet[Math.floor(rand() * 6)]).join("");
      if (!isValidTaskName(name)) continue;
      if (rand() < 0.3) {
        index.delete(name);
        naive.delete(name);
      } else {
        index.set(name, { version: step + 1, summary: null });
        naive.set(name, step + 1);
      }
      if (step % 50 === 0) {
        const sorted = [...naive.keys()].sort();
        expect(index.names()).toEqual(sorted);
        expect(index.size).toBe(sorted.length);
        const limit = 1 + Math.floor(rand() * 5);
        const after = rand() < 0.5 ? undefined : name; // present or just deleted: both work as cursors
        expect(index.page(after, limit)).toEqual(sorted.filter((t) => after === undefined || t > after).slice(0, limit));
        // A scoped token's glob: the page and the count see only matching names.
        const match = (t: string) => t.charCodeAt(t.length - 1) % 2 === 0;
        expect(index.page(after, limit, match)).toEqual(sorted.filter((t) => (after === undefined || t > after) && match(t)).slice(0, limit));
        expect(index.count(match)).toBe(sorted.filter(match).length);
      }
    }
    for (const [task, version] of naive) expect(index.get(task)?.version).toBe(version);
  });

  it("serializes to a file that parses back to the same entries", () => {
    const index = new TaskIndex();
    index.set("b", { version: 2, summary: { x: "é\n\"" } });
    index.set("a", { version: 1, summary: null });
    const parsed = parseIndex(index.serialize(), isValidTaskName)!;
    expect([...parsed.entries]).toEqual([
      ["a", { version: 1, summary: null }],
      ["b", { version: 2, summary: { x: "é\n\"" } }],
    ]);
    expect(parsed.pending.size).toBe(0);
  });
});

describe("parseIndex", () => {
  it("later lines win; an intent without a commit leaves the task pending; a torn last line is dropped", () => {
    const text = headerLine() + commitLine("a", { version: 1, summary: null }) + intentLine("a") + commitLine("a", { version: 2, summary: null })
      + commitLine("b", { version: 1, summary: null }) + intentLine("b") + commitLine("c", { version: 4, summary: null }) + commitLine("c", null)
      + intentLine("d") + '["e",3,["pro';
    const parsed = parseIndex(text, isValidTaskName)!;
    expect(Object.fromEntries([...parsed.entries].map(([t, e]) => [t, e.version]))).toEqual({ a: 2, b: 1 });
    expect([...parsed.pending].sort()).toEqual(["b", "d"]);
  });

  it("refuses a file it did not write (then the store rebuilds)", () => {
    for (const bad of ["", "garbage\n", '{"format":"other","version":2}\n', '{"format":"skt-task-index","version":1}\n',
      headerLine() + '["../x",1]\n', headerLine() + '["a",0]\n', headerLine() + '{"t":"a","v":1}\n', headerLine() + '["a",1,null,4]\n',
      headerLine() + "not json\n" + commitLine("a", { version: 1, summary: null })]) {
      expect(parseIndex(bad, isValidTaskName), bad).toBeNull();
    }
  });
});

describe("summaries", () => {
  it("cut the prompt and the labels, say so, and keep the counts", () => {
    const short = summarize(makeMetadata(), USE_LITE_DIMS);
    expect(short).toMatchObject({ labels: ["negative", "positive"], labelCount: 2, truncated: false });
    expect(unpackSummary(JSON.parse(JSON.stringify(packSummary(short))))).toEqual(short);
    for (const bad of [null, {}, [], packSummary(short).slice(0, 8), [...packSummary(short).slice(0, 5), "x".repeat(SUMMARY_PROMPT_CHARS + 1), ...packSummary(short).slice(6)]]) {
      expect(unpackSummary(bad)).toBeNull();
    }
    const labels = Array.from({ length: 500 }, (_, i) => `label-${i}-${"x".repeat(20)}`);
    const long = summarize({ ...makeMetadata({ labels }), promptText: "中".repeat(5000) }, USE_LITE_DIMS);
    expect(long.promptText).toBe("中".repeat(SUMMARY_PROMPT_CHARS));
    expect(long.labels).toEqual(labels.slice(0, long.labels.length));
    expect(long.labels.join("").length).toBeLessThanOrEqual(SUMMARY_LABEL_CHARS);
    expect(long.labels.join("").length + labels[long.labels.length].length).toBeGreaterThan(SUMMARY_LABEL_CHARS);
    expect(long).toMatchObject({ labelCount: 500, truncated: true });
    const many = summarize(makeMetadata({ labels: Array.from({ length: 50 }, (_, i) => String.fromCharCode(97 + (i % 26)) + i) }), USE_LITE_DIMS);
    expect(many.labels).toHaveLength(SUMMARY_MAX_LABELS);
    // Never half a surrogate pair.
    const emoji = summarize({ ...makeMetadata(), promptText: "a" + "😀".repeat(100) }, USE_LITE_DIMS);
    expect(emoji.promptText).toBe("a" + "😀".repeat((SUMMARY_PROMPT_CHARS - 2) / 2));
  });

  it("hold at most 1 KB of heap per task, worst case included (heap after GC, child process)", () => {
    // Worst case: the longest listed prompt and labels in two-byte characters.
    const script = `
      const { TaskIndex } = await import(${JSON.stringify(path.resolve("src/adapters/task-index.ts"))});
      const { packSummary, summarize } = await import(${JSON.stringify(path.resolve("src/adapters/summary.ts"))});
      const { USE_LITE_DIMS } = await import(${JSON.stringify(path.resolve("src/backbone/dims.ts"))});
      // Two worst cases: the longest listed labels in two-byte characters, and as many tiny labels as are listed.
      const meta = (i, tiny) => ({ task: "t", variant: "prompt", pooling: true, promptText: "中".repeat(400) + i, promptLength: 4,
        labels: Array.from({ length: 40 }, (_, j) => tiny ? String.fromCharCode(97 + j) : "标签".repeat(4) + i + "-" + j), problemType: "single_label_classification",
        backbone: "use-lite", backboneFingerprint: "0".repeat(64), maxLength: 64, textPair: false });
      const N = 20000;
      const perTask = [];
      for (const tiny of [false, true]) {
        const index = new TaskIndex();
        gc(); gc();
        const before = process.memoryUsage().heapUsed;
        for (let i = 0; i < N; i++) index.set("task-" + String(i).padStart(8, "0"), { version: i + 1, summary: JSON.parse(JSON.stringify(packSummary(summarize(meta(i, tiny), USE_LITE_DIMS)))) });
        gc(); gc();
        perTask.push((process.memoryUsage().heapUsed - before) / N);
        if (index.size !== N) throw new Error("lost entries");
      }
      console.log(JSON.stringify({ perTask: Math.max(...perTask), size: N }));
    `;
    const out = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" });
    expect(out.status, out.stderr).toBe(0);
    const { perTask, size } = JSON.parse(out.stdout.trim().split("\n").pop()!) as { perTask: number; size: number };
    expect(size).toBe(20000);
    expect(perTask).toBeGreaterThan(0);
    expect(perTask).toBeLessThanOrEqual(1024);
  });
});

describe("AdapterStore.open", () => {
  async function seed(tasks: Record<string, string[]>): Promise<void> {
    const plain = new AdapterStore(root);
    for (const [task, versions] of Object.entries(tasks)) for (const text of versions) await plain.write(task, enc(text));
  }

  it("rebuilds a missing index from the files, then starts from the index alone", async () => {
    await seed({ sst2: ["one", "two"], cola: ["c1"] });
    const first = new AdapterStore(root);
    expect(await first.open(describeText)).toMatchObject({ tasks: 2, reread: 2, rebuilt: true });
    expect(first.index.get("sst2")).toEqual({ version: 2, summary: { task: "sst2", text: "two" } });
    expect(await fsp.readdir(root)).toContain(INDEX_FILE);

    const calls: FsCall[] = [];
    const second = new AdapterStore(root, { fs: hookedFs((c) => void calls.push(c)) });
    expect(await second.open(describeText)).toMatchObject({ tasks: 2, reread: 0, rebuilt: false });
    expect(second.index.names()).toEqual(["cola", "sst2"]);
    expect(second.index.get("cola")).toEqual({ version: 1, summary: { task: "cola", text: "c1" } });
    // Only the index file and the root listing: no task folder is read.
    expect(calls.map((c) => `${c.op} ${path.relative(root, c.path)}`)).toEqual([`readFile ${INDEX_FILE}`, "readdir "]);
  });

  it("keeps the index current through write, setCurrent and deleteTask, across a restart", async () => {
    const store = new AdapterStore(root);
    await store.open(describeText);
    await store.write("a", enc("a1"));
    await store.write("a", enc("a2"));
    await store.write("b", enc("b1"));
    await store.setCurrent("a", 1);
    await store.deleteTask("b");
    expect(store.index.names()).toEqual(["a"]);
    expect(store.index.get("a")).toEqual({ version: 1, summary: { task: "a", text: "a1" } });
    const again = new AdapterStore(root);
    expect(await again.open(describeText)).toMatchObject({ tasks: 1, reread: 0, rebuilt: false });
    expect(again.index.get("a")).toEqual({ version: 1, summary: { task: "a", text: "a1" } });
    expect(await again.listTasks()).toEqual(await new AdapterStore(root).listTasks());
  });

  it("a crash between the intent and the commit makes the next open read that task from its files", async () => {
    await seed({ a: ["a1"], b: ["b1"] });
    await new AdapterStore(root).open(describeText);
    // The process "dies" while renaming CURRENT for a's v2: the intent is durable, nothing after it happens.
    const crashing = new AdapterStore(root, { fs: hookedFs((c) => (c.op === "rename" && c.to?.endsWith(path.join("a", CURRENT_FILE)) ? never() : undefined)) });
    await crashing.open(describeText);
    void crashing.write("a", enc("a2"));
    await expect.poll(async () => (await fsp.readdir(path.join(root, "a"))).filter((n) => n.startsWith(".tmp-")).length).toBe(1);
    const restarted = new AdapterStore(root);
    const opened = await restarted.open(describeText);
    expect(opened).toMatchObject({ tasks: 2, reread: 1, rebuilt: false });
    expect(opened.removedTempFiles).toHaveLength(1);
    expect(restarted.index.get("a")).toEqual({ version: 1, summary: { task: "a", text: "a1" } }); // CURRENT never moved
    expect(restarted.index.get("b")?.version).toBe(1);
  });

  it("notices folders added or removed behind its back, and a store without the index open still marks what it changes", async () => {
    await seed({ a: ["a1"], b: ["b1"] });
    await new AdapterStore(root).open(describeText);
    await fsp.rm(path.join(root, "b"), { recursive: true });
    const plain = new AdapterStore(root); // e.g. a tool that never opens the index
    await plain.write("c", enc("c1"));
    await plain.write("a", enc("a2"));
    const store = new AdapterStore(root);
    expect(await store.open(describeText)).toMatchObject({ tasks: 2, reread: 2 });
    expect(store.index.names()).toEqual(["a", "c"]);
    expect(store.index.get("a")).toEqual({ version: 2, summary: { task: "a", text: "a2" } });
  });

  it("rebuilds from the files when the index is damaged", async () => {
    await seed({ a: ["a1"] });
    await new AdapterStore(root).open(describeText);
    await fsp.writeFile(path.join(root, INDEX_FILE), "garbage\n" + commitLine("zzz", { version: 9, summary: null }));
    const store = new AdapterStore(root);
    expect(await store.open(describeText)).toMatchObject({ tasks: 1, rebuilt: true });
    expect(store.index.names()).toEqual(["a"]);
  });

  it("a failed intent write changes nothing", async () => {
    await seed({ a: ["a1"] });
    const failing = new AdapterStore(root, { fs: hookedFs((c) => { if (c.op === "open" && c.path.endsWith(INDEX_FILE)) throw Object.assign(new Error("disk full"), { code: "ENOSPC" }); }) });
    await failing.open(describeText);
    await expect(failing.setCurrent("a", 1)).rejects.toMatchObject({ kind: "storage", code: "write_failed" });
    await expect(failing.write("a", enc("a2"))).rejects.toMatchObject({ kind: "storage" });
    expect(failing.index.get("a")?.version).toBe(1);
    expect(await new AdapterStore(root).current("a")).toBe(1);
  });

  it("compacts the file once it has grown, keeping every entry", async () => {
    const store = new AdapterStore(root, { maxVersionsPerTask: 2, indexSlackLines: 10 });
    await store.open(describeText);
    let longest = 0;
    for (let i = 0; i < 60; i++) {
      await store.write("a", enc(`a${i}`));
      longest = Math.max(longest, (await fsp.readFile(path.join(root, INDEX_FILE), "utf8")).split("\n").filter(Boolean).length);
    }
    expect(longest).toBeGreaterThan(5);
    expect(longest).toBeLessThanOrEqual(2 + 10 + 1);
    await store.close();
    expect((await fsp.readFile(path.join(root, INDEX_FILE), "utf8")).split("\n").filter(Boolean)).toHaveLength(2);
    const again = new AdapterStore(root);
    await again.open(describeText);
    expect(again.index.get("a")).toEqual({ version: 60, summary: { task: "a", text: "a59" } });
  });
});
