/**
 * AdapterRegistry on its own: a real store in a temporary folder, the real tokenizer, and a
 * stand-in semantic pass (a deterministic function of the prompt ids that counts its calls and can
 * be held), so caching, single-flight loads, the semantic-pass cache and per-task serialisation are
 * visible. Prepared adapters are checked against `prepareAdapter` run directly on the same file.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { decodeAdapter, encodeAdapter } from "../../src/adapters/format.js";
import { prepareAdapter, type PreparedAdapter } from "../../src/adapters/prepared.js";
import { AdapterRegistry, type RegistryOptions } from "../../src/adapters/registry.js";
import { AdapterStore } from "../../src/adapters/store.js";
import { syntheticAdapter, type SyntheticOptions } from "../../src/adapters/synthetic.js";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { createMetrics } from "../../src/metrics.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

let assets: BackboneAssets;
const dirs: string[] = [];

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
});
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** h_p as a fixed function of the prompt ids, so a wrong prompt's pass would show in the prepared tensors. */
function hiddenStateFor(ids: number[]): Float32Array {
  const H = assets.dims.hiddenDim;
  const hp = new Float32Array(ids.length * H);
  for (let i = 0; i < ids.length; i++) for (let j = 0; j < H; j++) hp[i * H + j] = Math.sin(ids[i] * 0.37 + j * 0.011);
  return hp;
}

interface Rig {
  registry: AdapterRegistry;
  store: AdapterStore;
  dir: string;
  /** Prompt ids of every semantic pass, in call order. */
  passes: number[][];
  /** While set, each pass waits for it. */
  hold?: Promise<void>;
}

async function makeRig(o: Partial<RegistryOptions> & { dir?: string } = {}): Promise<Rig> {
  const dir = o.dir ?? (await mkdtemp(path.join(os.tmpdir(), "skt-registry-")));
  if (!o.dir) dirs.push(dir);
  const store = new AdapterStore(dir);
  const rig = { store, dir, passes: [] as number[][] } as Rig;
  rig.registry = new AdapterRegistry({
    store,
    dims: assets.dims,
    fingerprint: assets.fingerprint,
    tokenizer: assets.tokenizer,
    semanticPass: async (ids) => {
      rig.passes.push(ids);
      if (rig.hold) await rig.hold;
      return hiddenStateFor(ids);
    },
    cacheBytes: 64 * 1024 * 1024,
    maxParameters: 10_000_000,
    maxUploadBytes: 64 * 1024 * 1024,
    ...o,
  });
  await rig.registry.init();
  return rig;
}

const bytesOf = (o: SyntheticOptions) => encodeAdapter(syntheticAdapter(assets, o), assets.dims);

/** What the registry should have prepared from these bytes: the same function, run directly. */
function expected(bytes: Uint8Array, version: number): PreparedAdapter {
  const file = decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint });
  return prepareAdapter(file, version, hiddenStateFor(assets.tokenizer.ids(file.metadata.promptText)), assets.dims);
}

function expectPrepared(actual: PreparedAdapter, bytes: Uint8Array, version: number): void {
  const want = expected(bytes, version);
  expect(actual.key).toBe(want.key);
  expect(actual.version).toBe(version);
  expect(actual.metadata).toEqual(want.metadata);
  expect(actual.softPrompt).toEqual(want.softPrompt);
  expect(actual.prefix).toEqual(want.prefix);
  expect(actual.head).toEqual(want.head);
}

async function rejection(p: Promise<unknown>): Promise<{ kind: string; code: string; message: string }> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e).not.toBeNull();
  return e as { kind: string; code: string; message: string };
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe("acquire and the cache", () => {
  it("refuses an unknown task; installs, then serves the prepared version from the cache", async () => {
    const rig = await makeRig();
    expect(await rejection(rig.registry.acquire("a"))).toMatchObject({ kind: "not_found", code: "unknown_task" });
    const v1 = bytesOf({ task: "a", seed: 1 });
    const installed = await rig.registry.installAdapter("a", v1);
    expectPrepared(installed, v1, 1);
    expect(rig.passes).toHaveLength(1);
    expect(await rig.registry.acquire("a")).toBe(installed);
    expect(rig.passes).toHaveLength(1);
  });

  it("swaps to a new version while a holder keeps the old prepared object intact", async () => {
    const rig = await makeRig();
    const v1 = bytesOf({ task: "a", seed: 1 });
    const v2 = bytesOf({ task: "a", seed: 2, headBias: [5, -5] });
    await rig.registry.installAdapter("a", v1);
    const held = await rig.registry.acquire("a");
    await rig.registry.installAdapter("a", v2);
    const now = await rig.registry.acquire("a");
    expect(now.key).toBe("a@v2");
    expectPrepared(now, v2, 2);
    expectPrepared(held, v1, 1);
    expect(rig.registry.currentVersion("a")).toBe(2);
  });

  it("after a restart, loads a stored version once however many requests wait (single flight)", async () => {
    const first = await makeRig();
    const v1 = bytesOf({ task: "a", seed: 3 });
    await first.registry.installAdapter("a", v1);
    await first.registry.close();

    const rig = await makeRig({ dir: first.dir });
    expect(rig.registry.tasks()).toEqual(["a"]);
    const gate = deferred();
    rig.hold = gate.promise;
    const waiting = Array.from({ length: 5 }, () => rig.registry.acquire("a"));
    await expect.poll(() => rig.passes.length).toBe(1);
    gate.resolve();
    const got = await Promise.all(waiting);
    for (const g of got) expect(g).toBe(got[0]);
    expectPrepared(got[0], v1, 1);
    expect(rig.passes).toHaveLength(1);
  });

  it("answers a stored current version that fails validation with adapter_invalid, without reading it again", async () => {
    const rig = await makeRig();
    // The store's own write moves CURRENT at once (no validation), as a hand-copied file would.
    await rig.store.write("bad", new TextEncoder().encode("not an adapter"));
    const e1 = await rejection(rig.registry.acquire("bad"));
    expect(e1).toMatchObject({ kind: "conflict", code: "adapter_invalid" });
    expect(e1.message).toMatch(/v1 is invalid/);
    const e2 = await rejection(rig.registry.acquire("bad"));
    expect(e2).toBe(e1);
    // A valid upload clears it.
    const good = bytesOf({ task: "bad", seed: 4 });
    await rig.registry.installAdapter("bad", good);
    expectPrepared(await rig.registry.acquire("bad"), good, 2);
  });
});

describe("installAdapter validation", () => {
  const refusals: [string, (rig: Rig) => Promise<unknown>, string, string][] = [
    ["an invalid task name", (r) => r.registry.installAdapter("../x", bytesOf({ task: "x" })), "bad_request", "invalid_task_name"],
    ["a file for another task", (r) => r.registry.installAdapter("a", bytesOf({ task: "b" })), "invalid_adapter", "task_mismatch"],
    ["bytes that are not an adapter", (r) => r.registry.installAdapter("a", new Uint8Array(64)), "invalid_adapter", ""],
    [
      "a prompt_length that does not match the prompt's tokens",
      (r) => {
        const file = syntheticAdapter(assets, { task: "a", seed: 1 });
        file.metadata.promptText = `${file.metadata.promptText} and three more`;
        return r.registry.installAdapter("a", encodeAdapter(file, assets.dims));
      },
      "invalid_adapter",
      "prompt_length_mismatch",
    ],
  ];

  it.each(refusals)("refuses %s and leaves the store and the current version as they were", async (_what, call, kind, code) => {
    const rig = await makeRig();
    const v1 = bytesOf({ task: "a", seed: 1 });
    await rig.registry.installAdapter("a", v1);
    const e = await rejection(call(rig));
    expect(e.kind).toBe(kind);
    if (code) expect(e.code).toBe(code);
    expect((await rig.store.listVersions("a")).map((v) => v.version)).toEqual([1]);
    expect(rig.registry.tasks()).toEqual(["a"]);
    expect(rig.registry.currentVersion("a")).toBe(1);
    expectPrepared(await rig.registry.acquire("a"), v1, 1);
  });

  it("refuses a version its probe rejects before anything is written", async () => {
    let refuse = false;
    const rig = await makeRig({
      probe: async () => {
        if (refuse) throw Object.assign(new Error("non-finite output"), { code: "non_finite_output" });
      },
    });
    await rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 1 }));
    refuse = true;
    await expect(rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 2 }))).rejects.toThrow(/non-finite/);
    expect((await rig.store.listVersions("a")).map((v) => v.version)).toEqual([1]);
    expect(rig.registry.currentVersion("a")).toBe(1);
  });
});

describe("rollback and delete", () => {
  it("rolls back to the previous or a named version and refuses what cannot be done", async () => {
    const rig = await makeRig();
    const v = [1, 2, 3].map((seed) => bytesOf({ task: "a", seed, headBias: [seed, -seed] }));
    for (const b of v) await rig.registry.installAdapter("a", b);
    expect(await rejection(rig.registry.rollback("zz"))).toMatchObject({ code: "unknown_task" });
    expect(await rejection(rig.registry.rollback("a", 3))).toMatchObject({ kind: "conflict", code: "version_is_current" });
    expect(await rejection(rig.registry.rollback("a", 9))).toMatchObject({ kind: "not_found", code: "version_not_found" });
    expect(await rejection(rig.registry.rollback("a/b"))).toMatchObject({ code: "invalid_task_name" });

    const back = await rig.registry.rollback("a");
    expectPrepared(back, v[1], 2);
    expect(await rig.registry.acquire("a")).toBe(back);
    expect(await rig.store.current("a")).toBe(2);
    expectPrepared(await rig.registry.rollback("a", 1), v[0], 1);
    expect(await rejection(rig.registry.rollback("a"))).toMatchObject({ kind: "conflict", code: "no_previous_version" });
    expectPrepared(await rig.registry.rollback("a", 3), v[2], 3);
    expect(await rig.store.current("a")).toBe(3);
  });

  it("deletes a task and serves nothing cached for it afterwards, even when the version number comes back", async () => {
    const metrics = createMetrics({ collectDefaults: false });
    const loaded = async () => (await metrics.adaptersLoaded.get()).values[0]?.value;
    const rig = await makeRig({ metrics });
    expect(await rejection(rig.registry.delete("a"))).toMatchObject({ kind: "not_found", code: "unknown_task" });
    await rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 1, headBias: [9, -9] }));
    await rig.registry.acquire("a");
    expect(await loaded()).toBe(1);
    await rig.registry.delete("a");
    expect(rig.registry.hasTask("a")).toBe(false);
    expect(await loaded()).toBe(0); // its prepared tensors are no longer held
    expect(await rejection(rig.registry.acquire("a"))).toMatchObject({ code: "unknown_task" });
    // Version numbers restart at 1 after a delete: the new v1 must not be the old cached one.
    const fresh = bytesOf({ task: "a", seed: 2, headBias: [-9, 9] });
    const again = await rig.registry.installAdapter("a", fresh);
    expect(again.version).toBe(1);
    expectPrepared(await rig.registry.acquire("a"), fresh, 1);
  });
});

describe("concurrency and the semantic-pass cache", () => {
  it("serialises installs on one task (in call order) but not across tasks", async () => {
    const rig = await makeRig();
    const gate = deferred();
    rig.hold = gate.promise;
    const first = rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 1, promptText: "first prompt here" }));
    const second = rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 2, promptText: "second one" }));
    const other = rig.registry.installAdapter("b", bytesOf({ task: "b", seed: 3, promptText: "another task" }));
    // "a"'s second install waits for the first's lock; "b" does not.
    await expect.poll(() => rig.passes.length).toBe(2);
    const texts = rig.passes.map((ids) => ids.join(","));
    expect(texts).toContain(assets.tokenizer.ids("first prompt here").join(","));
    expect(texts).toContain(assets.tokenizer.ids("another task").join(","));
    gate.resolve();
    rig.hold = undefined;
    const [a1, a2, b1] = await Promise.all([first, second, other]);
    expect([a1.version, a2.version, b1.version]).toEqual([1, 2, 1]);
    expect(rig.passes.at(-1)).toEqual(assets.tokenizer.ids("second one"));
    expect(rig.registry.currentVersion("a")).toBe(2);
    expect(await rig.registry.acquire("a")).toBe(a2);
  });

  it("runs one semantic pass per distinct prompt: shared by tasks and versions, kept across eviction", async () => {
    // A cache that holds one prepared adapter, so switching tasks evicts.
    const probe = await makeRig();
    const oneBytes = (await probe.registry.installAdapter("x", bytesOf({ task: "x", seed: 1 }))).bytes;
    const rig = await makeRig({ cacheBytes: Math.ceil(oneBytes * 1.5) });
    await rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 1 }));
    await rig.registry.installAdapter("b", bytesOf({ task: "b", seed: 2 }));
    await rig.registry.installAdapter("a", bytesOf({ task: "a", seed: 3 }));
    expect(rig.passes).toHaveLength(1);
    await rig.registry.acquire("b"); // evicted by a's v2, reloaded without a pass
    await rig.registry.acquire("a");
    expect(rig.passes).toHaveLength(1);
    await rig.registry.installAdapter("c", bytesOf({ task: "c", seed: 4, promptText: "a different prompt" }));
    expect(rig.passes).toHaveLength(2);
    // The debug mode that bypasses the cache runs the pass every time.
    await rig.registry.prepareUncached("a");
    expect(rig.passes).toHaveLength(3);
  });
});
