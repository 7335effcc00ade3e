/**
 * The engine's half of the device adapter cache (SKT_DEVICE_CACHE_BYTES): per WebGPU inference
 * worker, which prepared adapter's prefix lives in which slot of the worker's device banks
 * (backbone/prefix-banks.ts). The main thread decides, the worker executes: a batch carries the
 * uploads of its misses and one slot per row. docs/webgpu.md "Adapters on the device".
 *
 * Banks have fixed-size slots of Pmax prefix positions (the longest prefix seen; a longer one
 * re-creates them), plus slot 0, all zeros, for rows without a prefix. The budget bounds the banks'
 * bytes: capacity × Pmax × (Σ 2·heads·headDim · 4). Capacity grows by doubling as slots are needed;
 * only at the budget's limit are least-recently-used slots evicted (never one the batch uses).
 */
import { createHash } from "node:crypto";
import type { BackboneDims } from "../backbone/dims.js";
import { prefixWidth } from "../backbone/dims.js";
import type { BankRequest } from "../backbone/prefix-banks.js";
import { copyPrefixInto, type PreparedAdapter } from "../adapters/prepared.js";

/** An adapter the batch needs resident: its identity (deviceCacheId) and prefix length. */
export interface SlotRequest {
  id: string;
  length: number;
}

export interface SlotPlan {
  generation: number;
  capacity: number;
  pMax: number;
  /** The slot of every requested adapter. */
  slotOf: Map<string, number>;
  /** The misses, in request order: these must be written before the batch reads. */
  uploads: { id: string; slot: number }[];
  hits: number;
  evictions: number;
}

export class PrefixSlotTable {
  /** id → slot, least recently used first (a Map keeps insertion order; a use re-inserts). */
  private readonly entries = new Map<string, number>();
  private free: number[] = [];
  private gen = 0;
  private cap = 0;
  private positions = 0;

  /** `positionBytes`: one prefix position's keys and values over every layer (float32). */
  constructor(
    readonly budgetBytes: number,
    private readonly positionBytes: number,
  ) {}

  static forDims(budgetBytes: number, dims: BackboneDims): PrefixSlotTable {
    return new PrefixSlotTable(budgetBytes, prefixWidth(dims) * 4);
  }

  get generation(): number {
    return this.gen;
  }

  /** Device bytes the banks hold (every slot of Pmax positions, the zero slot included). */
  get bytes(): number {
    return this.cap * this.positions * this.positionBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Adapter slots (besides the zero slot) that fit the budget with banks of `p` positions. */
  maxSlots(p: number): number {
    return Math.max(0, Math.floor(this.budgetBytes / (p * this.positionBytes)) - 1);
  }

  /** Resident ids, least recently used first (for tests and the docs' model). */
  residentIds(): string[] {
    return [...this.entries.keys()];
  }

  /**
   * Forgets everything: the worker's banks are gone (it restarted) or may disagree with the table (a
   * batch failed). The next plan starts a new generation, which the worker reads as "start empty".
   */
  clear(): void {
    this.entries.clear();
    this.free = [];
    this.cap = 0;
    this.positions = 0;
    this.gen++;
  }

  /**
   * Slots for one batch's distinct prefix adapters, or null when they cannot all be resident at
   * once within the budget (one too large for it, or more of them than slots): the batch then
   * sends its prefixes itself, as without the cache.
   */
  plan(requests: readonly SlotRequest[]): SlotPlan | null {
    const wanted = new Map(requests.map((r) => [r.id, r.length]));
    const p = Math.max(this.positions, ...wanted.values());
    const max = this.maxSlots(p);
    if (wanted.size === 0 || wanted.size > max) return null;
    let evictions = 0;
    if (p > this.positions) {
      // Longer slots: the banks are re-created empty (their contents would not fit the new shape).
      evictions = this.entries.size;
      this.clear();
      this.positions = p;
    }
    const slotOf = new Map<string, number>();
    let hits = 0;
    for (const id of wanted.keys()) {
      const slot = this.entries.get(id);
      if (slot === undefined) continue;
      this.entries.delete(id);
      this.entries.set(id, slot);
      slotOf.set(id, slot);
      hits++;
    }
    const misses = [...wanted.keys()].filter((id) => !slotOf.has(id));
    if (misses.length > this.free.length)
      this.grow(Math.min(max + 1, Math.max(2 * this.cap, 1 + this.entries.size + misses.length)));
    const uploads: { id: string; slot: number }[] = [];
    for (const id of misses) {
      let slot = this.free.shift();
      if (slot === undefined) {
        const victim = [...this.entries.keys()].find((v) => !wanted.has(v))!; // exists: wanted.size ≤ max
        slot = this.entries.get(victim)!;
        this.entries.delete(victim);
        evictions++;
      }
      this.entries.set(id, slot);
      slotOf.set(id, slot);
      uploads.push({ id, slot });
    }
    return { generation: this.gen, capacity: this.cap, pMax: this.positions, slotOf, uploads, hits, evictions };
  }

  private grow(capacity: number): void {
    // Slot 0 is the zero slot; a fresh bank's first adapter slot is 1.
    for (let s = Math.max(1, this.cap); s < capacity; s++) this.free.push(s);
    this.cap = Math.max(this.cap, capacity);
  }
}

const ids = new WeakMap<PreparedAdapter, string>();

/**
 * What a slot is keyed by: the task and the sha256 of the prefix's bytes. A slot holds exactly the
 * bytes its key names, so no version can ever read another's keys/values: a new version (or a task
 * deleted and re-created with other content) is another key. Not the version number: an upload's
 * probe pass runs on a draft numbered 0, and keying by content lets it warm the slot the new
 * version's first request then hits. Computed once per prepared object.
 */
export function deviceCacheId(adapter: PreparedAdapter): string {
  let id = ids.get(adapter);
  if (id === undefined) {
    const hash = createHash("sha256");
    for (const a of [...(adapter.prefix?.keys ?? []), ...(adapter.prefix?.values ?? [])])
      hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
    id = `${adapter.task}#${hash.digest("hex")}`;
    ids.set(adapter, id);
  }
  return id;
}

/** Per layer, the misses' keys and values [M, heads, pMax, headDim], zero past each one's length. */
export function prefixUploads(
  adapters: readonly PreparedAdapter[],
  pMax: number,
  dims: BackboneDims,
): Pick<NonNullable<BankRequest["upload"]>, "keys" | "values"> {
  const M = adapters.length;
  const keys = dims.layers.map((l) => new Float32Array(M * l.heads * pMax * l.headDim));
  const values = dims.layers.map((l) => new Float32Array(M * l.heads * pMax * l.headDim));
  adapters.forEach((a, m) => copyPrefixInto(a.prefix!, dims, keys, values, m, pMax));
  return { keys, values };
}
