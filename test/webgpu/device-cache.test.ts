/**
 * Adapters resident on the device (SKT_DEVICE_CACHE_BYTES): prefix batches whose keys/values are read
 * from the worker's device banks give exactly the outputs of the same batches sent with their prefixes
 * (the upload path), on SwiftShader. Exact equality is the right bound: the banks only copy floats,
 * slot 0 and the positions past an adapter's length are zeros as the host assembly's are, so the prefix
 * graph gets bit-identical inputs, and the WebGPU provider is deterministic (lifecycle.test.ts).
 *
 * The runner-level sequence forces bank growth (ONNX Pad), LRU evictions, two versions of one task in
 * one batch, a longer prefix re-creating the banks, and a batch that cannot fit (sent instead); the
 * engine-level part covers the metrics, hot swap, a crashed worker and SKT_DEVICE_CACHE_BYTES=0.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, BackboneRunner, type BackboneAssets } from "../../src/backbone/backbone.js";
import type { PreparedAdapter } from "../../src/adapters/prepared.js";
import { assembleBatch, type BatchRow } from "../../src/engine/assemble.js";
import { prefixUploads, PrefixSlotTable } from "../../src/engine/device-cache.js";
import { PrefixBanks } from "../../src/backbone/prefix-banks.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { seededRandom } from "../helpers/numeric.js";
import { servableAdapterBytes } from "../helpers/servable-adapter.js";
import { DEFAULT_PROMPT } from "../../src/adapters/synthetic.js";
import { requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";
import { startEngineRig, type EngineRig } from "../reliability/helpers.js";

/** A prepared adapter with a random prefix of `length` positions (or a soft prompt): what assembly reads. */
function fakeAdapter(
  assets: BackboneAssets,
  key: string,
  length: number,
  seed: number,
  prompt = false,
): PreparedAdapter {
  const rand = seededRandom(seed);
  const randoms = (n: number) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * 0.5);
  const { dims } = assets;
  return {
    key,
    task: key.split("@")[0],
    metadata: { promptLength: length },
    softPrompt: prompt ? randoms(length * dims.embedDim) : null,
    prefix: prompt
      ? null
      : {
          length,
          keys: dims.layers.map((l) => randoms(l.heads * length * l.headDim)),
          values: dims.layers.map((l) => randoms(l.heads * length * l.headDim)),
        },
  } as unknown as PreparedAdapter;
}

describe.skipIf(skipWebGpu)(webgpuSuite("prefixes resident on the WebGPU device"), { timeout: 600_000 }, () => {
  let assets: BackboneAssets;
  let runner: BackboneRunner;

  beforeAll(async () => {
    requireWebGpuDriver();
    assets = await loadBackboneAssets(MODELS_DIR);
    runner = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "webgpu" });
  });
  afterAll(async () => runner?.release());

  it("banked batches equal the upload path through growth, evictions, two versions, a re-creation and a fallback", async () => {
    expect(runner.input).toBe("ids");
    const P = {
      p1: fakeAdapter(assets, "p1@v1", 3, 1),
      p2: fakeAdapter(assets, "p2@v1", 5, 2),
      p2v2: fakeAdapter(assets, "p2@v2", 5, 22),
      p3: fakeAdapter(assets, "p3@v1", 5, 3),
      p4: fakeAdapter(assets, "p4@v1", 4, 4),
      p6: fakeAdapter(assets, "p6@v1", 8, 6),
      soft: fakeAdapter(assets, "s@v1", 6, 7, true),
    };
    // One position is 6,144 bytes; slots of 5 positions: the zero slot and 3 adapters fit.
    const table = PrefixSlotTable.forDims(4 * 5 * 6144, assets.dims);
    const ids = (t: string) => assets.tokenizer.encode(t, 32).ids;
    const row = (adapter: PreparedAdapter | null, text: string): BatchRow => ({ adapter, ids: ids(text) });
    const steps: { rows: BatchRow[]; expect: [hits: number, misses: number, evictions: number] | "fallback" }[] = [
      {
        rows: [row(P.p1, "a fine film"), row(P.soft, "dull"), row(null, "plain row"), row(P.p2, "so so")],
        expect: [0, 2, 0],
      },
      { rows: [row(P.p2, "again"), row(P.p3, "a third task here"), row(null, "x")], expect: [1, 1, 0] }, // grows 3 → 4
      { rows: [row(P.p4, "four"), row(P.p1, "one more time"), row(P.soft, "prompt")], expect: [1, 1, 1] }, // evicts p2
      {
        rows: [row(P.p2, "back"), row(P.p3, "three"), row(null, "y"), row(P.p2, "twice in a batch")],
        expect: [1, 1, 1],
      }, // evicts p1
      { rows: [row(P.p2v2, "new version"), row(P.p2, "new version")], expect: [1, 1, 1] }, // evicts p4
      { rows: [row(P.p6, "a longer prefix"), row(null, "z")], expect: [0, 1, 3] }, // Pmax 8: re-created, 1 slot
      { rows: [row(P.p1, "does not fit"), row(P.p6, "with it")], expect: "fallback" },
      { rows: [row(P.p6, "still resident"), row(P.soft, "and a prompt")], expect: [1, 0, 0] },
    ];
    const generations: number[] = [];
    for (const [i, step] of steps.entries()) {
      const banked = assembleBatch(step.rows, assets.embeddings, assets.dims, "ids", "padded", table);
      const sent = assembleBatch(step.rows, assets.embeddings, assets.dims, "ids", "padded", null);
      expect(sent.batch.prefix, `step ${i}`).toBeDefined();
      const d = banked.deviceCache!;
      if (step.expect === "fallback") {
        expect(d.fallback, `step ${i}`).toBe(true);
        expect(banked.batch.bankedPrefix).toBeUndefined();
      } else {
        expect([d.hits, d.misses, d.evictions], `step ${i}`).toEqual(step.expect);
        expect(banked.batch.prefix).toBeUndefined();
        expect(banked.batch.bankedPrefix!.bank.upload?.slots.length ?? 0).toBe(step.expect[1]);
        generations.push(banked.batch.bankedPrefix!.bank.generation);
      }
      banked.batch.outputs = sent.batch.outputs = ["pooled"];
      const [fromBanks, fromHost] = [await runner.run(banked.batch), await runner.run(sent.batch)];
      expect(Array.from(fromBanks.pooled!), `step ${i}`).toEqual(Array.from(fromHost.pooled!));
      if (i === 4) {
        // Two versions of one task: different prefixes, different outputs.
        const width = fromBanks.pooled!.length / 2;
        expect(Array.from(fromBanks.pooled!.subarray(0, width))).not.toEqual(
          Array.from(fromBanks.pooled!.subarray(width)),
        );
      }
    }
    expect(new Set(generations).size).toBe(2); // one re-creation, at the longer prefix
  });

  it("the banks' read gives device tensors (gpu-buffer) shaped [batch, heads, P, headDim]", async () => {
    const banks = await PrefixBanks.open(assets.dims.layers);
    try {
      const a = fakeAdapter(assets, "g@v1", 4, 11);
      const out = await banks.inputs(
        {
          generation: 1,
          capacity: 2,
          pMax: 4,
          rowSlots: BigInt64Array.of(1n, 0n, 1n),
          upload: { slots: BigInt64Array.of(1n), ...prefixUploads([a], 4, assets.dims) },
        },
        3,
      );
      assets.dims.layers.forEach((l, n) => {
        for (const name of [`prefix_key_${n}`, `prefix_value_${n}`]) {
          expect(out[name].location).toBe("gpu-buffer");
          expect(out[name].dims).toEqual([3, l.heads, 3, l.headDim]);
        }
      });
      for (const t of Object.values(out)) t.dispose();
      // A slot never written in this generation is refused, not read as zeros.
      const again = await banks.inputs(
        { generation: 1, capacity: 2, pMax: 4, rowSlots: BigInt64Array.of(1n), upload: null },
        3,
      ); // slot 1 was written in generation 1
      expect(again.prefix_key_0.location).toBe("gpu-buffer");
      for (const t of Object.values(again)) t.dispose();
      await expect(
        banks.inputs({ generation: 2, capacity: 2, pMax: 4, rowSlots: BigInt64Array.of(1n), upload: null }, 3),
      ).rejects.toThrow(/slot 1 was not written in generation 2/);
    } finally {
      await banks.release();
    }
  });
});

describe.skipIf(skipWebGpu)(webgpuSuite("the device adapter cache in the engine"), { timeout: 600_000 }, () => {
  let rig: EngineRig;
  let plain: EngineRig;

  const scores = async (r: EngineRig, task: string, texts: string[]) =>
    (await r.engine.classify({ task, texts })).predictions.map((p) => p.scores);
  const counter = async (r: EngineRig, name: string) =>
    (await r.metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;

  let slotBytes: number;

  beforeAll(async () => {
    requireWebGpuDriver();
    // Slots of the synthetic prompt's length: the budget holds the zero slot and 2 adapters.
    const assets = await loadBackboneAssets(MODELS_DIR);
    slotBytes = assets.tokenizer.ids(DEFAULT_PROMPT).length * 6144;
    [rig, plain] = await Promise.all([
      startEngineRig({
        device: "webgpu",
        requestTimeoutMs: 300_000,
        deviceCacheBytes: 3 * slotBytes + 100,
        maxWaitMs: 0,
      }),
      startEngineRig({ device: "webgpu", requestTimeoutMs: 300_000, deviceCacheBytes: 0, maxWaitMs: 0 }),
    ]);
    for (const r of [rig, plain])
      for (const [task, seed] of [
        ["a", 1],
        ["b", 2],
        ["c", 3],
      ] as const)
        await r.engine.upload(task, servableAdapterBytes(r.engine.assets, { task, variant: "prefix", seed }));
  });
  afterAll(async () => Promise.all([rig?.close(), plain?.close()]));

  it("answers as the upload path, counting hits, misses and evictions as an LRU of 2 slots would; SKT_DEVICE_CACHE_BYTES=0 uses no banks", async () => {
    const base = {
      hits: await counter(rig, "skt_device_cache_hits_total"),
      misses: await counter(rig, "skt_device_cache_misses_total"),
      evictions: await counter(rig, "skt_device_cache_evictions_total"),
    };
    // One task per request, one at a time: each is its own batch. The uploads' probe passes left
    // [b, c] resident (c's evicted a). LRU of 2 over a b a c b a: miss a (evicts b), miss b (evicts c),
    // hit a, miss c (evicts b), miss b (evicts a), miss a (evicts c).
    for (const task of ["a", "b", "a", "c", "b", "a"])
      expect(await scores(rig, task, ["one text", "another text"])).toEqual(
        await scores(plain, task, ["one text", "another text"]),
      );
    expect(await counter(rig, "skt_device_cache_hits_total")).toBe(base.hits + 1);
    expect(await counter(rig, "skt_device_cache_misses_total")).toBe(base.misses + 5);
    expect(await counter(rig, "skt_device_cache_evictions_total")).toBe(base.evictions + 5);
    expect(await counter(rig, "skt_device_cache_bytes")).toBe(3 * slotBytes);
    expect(await counter(plain, "skt_device_cache_misses_total")).toBe(0);
    expect(await counter(plain, "skt_device_cache_bytes")).toBe(0);
  });

  it("concurrent requests of three tasks over two slots answer as the upload path", async () => {
    const calls: [string, string[]][] = ["a", "b", "c", "a", "c", "b"].map((task, i) => [
      task,
      [`text ${i}`, `another text ${i}`],
    ]);
    const before =
      (await counter(rig, "skt_device_cache_evictions_total")) +
      (await counter(rig, "skt_device_cache_fallbacks_total"));
    const banked = await Promise.all(calls.map(([task, texts]) => scores(rig, task, texts)));
    const sent = await Promise.all(calls.map(([task, texts]) => scores(plain, task, texts)));
    expect(banked).toEqual(sent);
    // Three tasks, two slots: whatever batches formed, one evicted or one batch sent its prefixes.
    const after =
      (await counter(rig, "skt_device_cache_evictions_total")) +
      (await counter(rig, "skt_device_cache_fallbacks_total"));
    expect(after).toBeGreaterThan(before);
  });

  it("a new version of a task gets its own slot and answers at once; a crashed worker's table starts empty", async () => {
    const texts = ["after the swap"];
    const before = await scores(rig, "a", texts);
    const misses0 = await counter(rig, "skt_device_cache_misses_total");
    const hits0 = await counter(rig, "skt_device_cache_hits_total");
    for (const r of [rig, plain])
      await r.engine.upload("a", servableAdapterBytes(r.engine.assets, { task: "a", variant: "prefix", seed: 9 }));
    const after = await scores(rig, "a", texts);
    expect(after).not.toEqual(before);
    expect(after).toEqual(await scores(plain, "a", texts));
    // v2 is a miss (its probe pass uploads it into a slot of its own), then the request's hit.
    expect(await counter(rig, "skt_device_cache_misses_total")).toBe(misses0 + 1);
    expect(await counter(rig, "skt_device_cache_hits_total")).toBe(hits0 + 1);
    const misses = await counter(rig, "skt_device_cache_misses_total");

    const ready = new Promise<void>((resolve) => rig.engine.worker.once("ready", () => resolve()));
    rig.engine.worker.crashForTesting();
    await ready;
    expect(await counter(rig, "skt_device_cache_bytes")).toBe(0);
    const hits = await counter(rig, "skt_device_cache_hits_total");
    // "a" was resident before the crash: now a miss again (a stale slot would be a hit, or fail).
    expect(await scores(rig, "a", texts)).toEqual(after);
    expect(await counter(rig, "skt_device_cache_misses_total")).toBe(misses + 1);
    expect(await counter(rig, "skt_device_cache_hits_total")).toBe(hits);
  });
});
