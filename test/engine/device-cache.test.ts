/**
 * The device adapter cache's slot table (src/engine/device-cache.ts), pure: against a naive LRU
 * model, its byte accounting, the too-large and too-many fallbacks, a longer prefix re-creating the
 * banks, and the identity that keys a slot. Also the uploads' layout against the host assembly, and
 * the runner turning the cache off for a worker whose banks cannot open.
 */
import { EventEmitter } from "node:events";
import { describe, expect, it } from "vitest";
import type { BackboneAssets, BackboneBatch, BackboneOutputs } from "../../src/backbone/backbone.js";
import { DEVICE_BANKS_UNAVAILABLE } from "../../src/backbone/prefix-banks.js";
import { Batcher } from "../../src/engine/batcher.js";
import type { InferenceWorker } from "../../src/engine/inference-worker.js";
import { Runner, type Row } from "../../src/engine/runner.js";
import { SktError } from "../../src/errors.js";
import { createMetrics } from "../../src/metrics.js";
import { copyPrefixInto, type PreparedAdapter } from "../../src/adapters/prepared.js";
import { USE_LITE_DIMS, prefixWidth } from "../../src/backbone/dims.js";
import { deviceCacheId, prefixUploads, PrefixSlotTable } from "../../src/engine/device-cache.js";
import { seededRandom } from "../helpers/numeric.js";

const POSITION_BYTES = 100;

/** The naive model: an array in use order (oldest first) of capacity `slots`, evicting the oldest not in the batch. */
function naiveLru(slots: number) {
  const order: string[] = [];
  return (batch: string[]) => {
    let hits = 0;
    let evictions = 0;
    const wanted = new Set(batch);
    for (const id of wanted) {
      const at = order.indexOf(id);
      if (at >= 0) {
        order.splice(at, 1);
        order.push(id);
        hits++;
      }
    }
    for (const id of wanted) {
      if (order.includes(id)) continue;
      if (order.length === slots) {
        order.splice(
          order.findIndex((v) => !wanted.has(v)),
          1,
        );
        evictions++;
      }
      order.push(id);
    }
    return { hits, evictions, resident: [...order] };
  };
}

describe("PrefixSlotTable", () => {
  it("matches a naive LRU model over a random sequence of batches, with distinct live slots", () => {
    // Slots of 12 positions × 100 bytes; budget for 1 zero slot + 5 adapter slots (and a bit).
    const table = new PrefixSlotTable(6 * 12 * POSITION_BYTES + 500, POSITION_BYTES);
    expect(table.maxSlots(12)).toBe(5);
    const model = naiveLru(5);
    const rand = seededRandom(3);
    let totalHits = 0;
    let totalEvictions = 0;
    for (let i = 0; i < 300; i++) {
      const batch = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => `a${Math.floor(rand() * 9)}`);
      const plan = table.plan(batch.map((id) => ({ id, length: 12 })))!;
      const expected = model(batch);
      expect(plan.hits).toBe(expected.hits);
      expect(plan.evictions).toBe(expected.evictions);
      expect(table.residentIds()).toEqual(expected.resident);
      const distinct = new Set(batch);
      expect(plan.uploads.length).toBe(distinct.size - plan.hits);
      // Every adapter of the batch has a slot, none is the zero slot, no two share one, all < capacity.
      const slots = [...distinct].map((id) => plan.slotOf.get(id)!);
      expect(new Set(slots).size).toBe(slots.length);
      for (const s of slots) expect(s >= 1 && s < plan.capacity).toBe(true);
      expect(plan.capacity).toBeLessThanOrEqual(6);
      expect(table.bytes).toBe(plan.capacity * 12 * POSITION_BYTES);
      expect(table.bytes).toBeLessThanOrEqual(table.budgetBytes);
      expect(plan.generation).toBe(1); // one shape all along: never re-created
      totalHits += plan.hits;
      totalEvictions += plan.evictions;
    }
    expect(totalHits).toBeGreaterThan(100);
    expect(totalEvictions).toBeGreaterThan(30);
  });

  it("grows by doubling before it evicts, and uploads only the misses", () => {
    const table = new PrefixSlotTable(1_000_000, POSITION_BYTES);
    const first = table.plan([{ id: "a", length: 4 }])!;
    expect([first.capacity, first.uploads, first.hits]).toEqual([2, [{ id: "a", slot: 1 }], 0]);
    const second = table.plan([
      { id: "a", length: 4 },
      { id: "b", length: 4 },
    ])!;
    expect(second.capacity).toBe(4);
    expect(second.hits).toBe(1);
    expect(second.uploads).toEqual([{ id: "b", slot: 2 }]);
    expect(second.slotOf.get("a")).toBe(1);
    expect(table.bytes).toBe(4 * 4 * POSITION_BYTES);
  });

  it("a longer prefix re-creates the banks in a new generation: every resident adapter is evicted", () => {
    const table = new PrefixSlotTable(1_000_000, POSITION_BYTES);
    table.plan([
      { id: "a", length: 4 },
      { id: "b", length: 4 },
    ]);
    const before = table.generation;
    const plan = table.plan([
      { id: "a", length: 4 },
      { id: "c", length: 9 },
    ])!;
    expect(plan.generation).toBe(before + 1);
    expect(plan.pMax).toBe(9);
    expect(plan.evictions).toBe(2);
    expect(plan.hits).toBe(0);
    expect(plan.uploads.map((u) => u.id)).toEqual(["a", "c"]);
    // A shorter one later fits the longer slots without a new generation.
    expect(table.plan([{ id: "d", length: 2 }])!.generation).toBe(plan.generation);
  });

  it("refuses (null: the batch sends its prefixes) an adapter bigger than the budget, or more adapters than slots, changing nothing", () => {
    const table = new PrefixSlotTable(3 * 10 * POSITION_BYTES, POSITION_BYTES); // zero slot + 2 slots of 10
    expect(table.plan([{ id: "a", length: 10 }])).not.toBeNull();
    const generation = table.generation;
    // 16 positions: zero slot + one slot = 3,200 bytes > 3,000.
    expect(table.plan([{ id: "huge", length: 16 }])).toBeNull();
    expect(
      table.plan([
        { id: "a", length: 10 },
        { id: "b", length: 10 },
        { id: "c", length: 10 },
      ]),
    ).toBeNull();
    expect(table.residentIds()).toEqual(["a"]);
    expect(table.generation).toBe(generation);
    expect(table.plan([{ id: "a", length: 10 }])!.hits).toBe(1);
    expect(new PrefixSlotTable(0, POSITION_BYTES).plan([{ id: "a", length: 1 }])).toBeNull();
  });

  it("clear() forgets every slot and starts a new generation (a restarted worker has no banks)", () => {
    const table = new PrefixSlotTable(1_000_000, POSITION_BYTES);
    table.plan([{ id: "a", length: 4 }]);
    const generation = table.generation;
    table.clear();
    expect(table.bytes).toBe(0);
    const plan = table.plan([{ id: "a", length: 4 }])!;
    expect(plan.generation).toBeGreaterThan(generation);
    expect(plan.hits).toBe(0);
    expect(plan.uploads).toEqual([{ id: "a", slot: 1 }]);
  });
});

/** A prepared prefix adapter of `length` positions with seeded values (only the fields used here). */
function prefixAdapter(task: string, version: number, length: number, seed: number): PreparedAdapter {
  const rand = seededRandom(seed);
  const layer = (l: { heads: number; headDim: number }) =>
    Float32Array.from({ length: l.heads * length * l.headDim }, () => rand() * 2 - 1);
  return {
    key: `${task}@v${version}`, // deviceCacheId must not depend on it
    task,
    version,
    prefix: { length, keys: USE_LITE_DIMS.layers.map(layer), values: USE_LITE_DIMS.layers.map(layer) },
  } as unknown as PreparedAdapter;
}

describe("deviceCacheId and prefixUploads", () => {
  it("keys by content: other bytes (a new version, or a re-created task at the same version) are another slot", () => {
    const a = prefixAdapter("t", 1, 3, 1);
    expect(deviceCacheId(prefixAdapter("t", 1, 3, 2))).not.toBe(deviceCacheId(a));
    expect(deviceCacheId(prefixAdapter("t", 2, 3, 2))).not.toBe(deviceCacheId(a));
    expect(deviceCacheId(prefixAdapter("u", 1, 3, 1))).not.toBe(deviceCacheId(a));
    // The same bytes under another version number (the upload's draft v0, then v1) share the slot.
    expect(deviceCacheId(prefixAdapter("t", 0, 3, 1))).toBe(deviceCacheId(a));
    // One value changed in the last layer's values: another key.
    const b = prefixAdapter("t", 1, 3, 1);
    b.prefix!.values[1][5] += 1e-6;
    expect(deviceCacheId(b)).not.toBe(deviceCacheId(a));
  });

  it("lays each miss out as [heads, Pmax, headDim] per layer, zero past its own length", () => {
    const adapters = [prefixAdapter("a", 1, 2, 4), prefixAdapter("b", 1, 5, 5)];
    const pMax = 7;
    const { keys, values } = prefixUploads(adapters, pMax, USE_LITE_DIMS);
    USE_LITE_DIMS.layers.forEach((l, n) => {
      adapters.forEach((a, m) => {
        for (let h = 0; h < l.heads; h++)
          for (let p = 0; p < pMax; p++)
            for (let d = 0; d < l.headDim; d += 17) {
              const at = ((m * l.heads + h) * pMax + p) * l.headDim + d;
              const src = (h * a.prefix!.length + p) * l.headDim + d;
              expect(keys[n][at]).toBe(p < a.prefix!.length ? a.prefix!.keys[n][src] : 0);
              expect(values[n][at]).toBe(p < a.prefix!.length ? a.prefix!.values[n][src] : 0);
            }
      });
    });
    expect(prefixWidth(USE_LITE_DIMS) * 4).toBe(6144); // the bytes of one position, as the table counts them
    // The same layout the upload path's host assembly writes for one row.
    const k = USE_LITE_DIMS.layers.map((l) => new Float32Array(l.heads * pMax * l.headDim));
    const v = USE_LITE_DIMS.layers.map((l) => new Float32Array(l.heads * pMax * l.headDim));
    copyPrefixInto(adapters[1].prefix!, USE_LITE_DIMS, k, v, 0, pMax);
    expect(Array.from(keys[1].subarray(k[1].length, 2 * k[1].length))).toEqual(Array.from(k[1]));
  });
});

/** A WebGPU-looking worker whose banks cannot open: it refuses banked batches as the real runner would. */
class BanklessWorker extends EventEmitter {
  readonly deviceInfo = { device: "webgpu" };
  readonly graphInput = "ids";
  readonly layout = "padded";
  readonly seen: ("banked" | "sent")[] = [];
  isReady(): boolean {
    return true;
  }
  run(batch: BackboneBatch): Promise<{ outputs: BackboneOutputs; runMs: number }> {
    this.seen.push(batch.bankedPrefix ? "banked" : "sent");
    if (batch.bankedPrefix)
      return Promise.reject(
        new SktError("internal", DEVICE_BANKS_UNAVAILABLE, "device prefix banks unavailable: test"),
      );
    return Promise.resolve({ outputs: { pooled: new Float32Array(batch.batch * 4).fill(1) }, runMs: 1 });
  }
}

describe("a worker whose device banks cannot open", () => {
  it("runs the batch again with its prefixes sent, and sends them from then on (no failed request)", async () => {
    const worker = new BanklessWorker();
    const batcher = new Batcher<Row>({
      maxBatchSize: 8,
      maxBatchTokens: 4096,
      maxWaitMs: 0,
      maxPaddingRatio: 10,
      queueSize: 64,
      requestTimeoutMs: 60_000,
    });
    const metrics = createMetrics({ collectDefaults: false });
    const warnings: string[] = [];
    const dims = { ...USE_LITE_DIMS, embedDim: 4 };
    const runner = new Runner(
      [worker as unknown as InferenceWorker],
      batcher,
      {
        assets: { dims, embeddings: new Float32Array(dims.vocabSize * 4) } as unknown as BackboneAssets,
        metrics,
        deviceCacheBytes: 1024 * 1024,
        log: (_level, msg) => warnings.push(msg),
      },
      1,
    );
    runner.start();
    const adapter = prefixAdapter("t", 1, 3, 1);
    const submit = () => batcher.submit([{ adapter, ids: [5, 6], output: "pooled", length: 2 }]);
    expect((await submit())[0]).toEqual(new Float32Array(4).fill(1));
    expect((await submit())[0]).toEqual(new Float32Array(4).fill(1));
    expect(worker.seen).toEqual(["banked", "sent", "sent"]);
    expect(warnings).toEqual(["device adapter cache off for this worker: its banks could not open"]);
    expect((await metrics.registry.getSingleMetric("skt_device_cache_bytes")!.get()).values[0].value).toBe(0);
    await batcher.drain();
    await runner.stopped();
  });
});
