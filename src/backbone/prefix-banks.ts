/**
 * The worker's half of the device adapter cache: per attention layer, a bank of prefix keys and one
 * of values ([capacity, heads, Pmax, headDim]) that stay on the WebGPU device between batches. The
 * engine's slot table (engine/device-cache.ts) decides which adapter lives in which slot; a batch
 * brings the uploads for its misses and one slot index per row, and this class turns that into the
 * prefix graph's `prefix_key_n` / `prefix_value_n` inputs without them leaving the device.
 *
 * Slot 0 is all zeros (rows without a prefix read it), and positions past an adapter's own length
 * are zeros, so the tensors fed to the prefix graph are bit for bit the ones the host assembles on
 * the upload path (engine/assemble.ts).
 */
import ort from "onnxruntime-node";
import type { AttentionLayerDims } from "./dims.js";
import {
  prefixBankGrowGraph,
  prefixBankNames,
  prefixBankReadGraph,
  prefixBankUpdateGraph,
  SLOT,
  SLOTS,
} from "./device-bank.js";
import { executionProviders } from "./device.js";
import { onDevice, onDeviceSync } from "./device-lock.js";
import { toOnnxBytes } from "./graph/onnx.js";

/** The error code of a runner whose banks cannot open (the engine then sends that worker's prefixes). */
export const DEVICE_BANKS_UNAVAILABLE = "device_banks_unavailable";

/** What one batch asks of the banks (built by the engine's slot table, sent with the batch). */
export interface BankRequest {
  /** The table's generation: a new one means the banks start empty (a reset or a restarted table). */
  generation: number;
  /** Slots the banks must have (slot 0 included) and their prefix positions. */
  capacity: number;
  pMax: number;
  /** [batch]: the slot each row reads (0: the zero slot, for rows without a prefix). */
  rowSlots: BigInt64Array;
  /** The misses: `slots` [M] and, per layer, [M, heads, pMax, headDim] zero-padded keys and values. */
  upload: { slots: BigInt64Array; keys: Float32Array[]; values: Float32Array[] } | null;
}

/** A batch's prefix served from the banks: its length P and mask [batch, P], and the bank request. */
export interface BankedPrefix {
  length: number;
  mask: BigInt64Array;
  bank: BankRequest;
}

export class PrefixBanks {
  /** Current banks (device tensors), in prefixBankNames order; null before the first upload. */
  private banks: ort.Tensor[] | null = null;
  private generation = -1;
  private capacity = 0;
  private pMax = 0;
  /** Slots written in this generation: reading any other (but 0) would read a stale or empty slot. */
  private readonly written = new Set<number>();

  private constructor(
    private readonly layers: readonly AttentionLayerDims[],
    private readonly update: ort.InferenceSession,
    private readonly grow: ort.InferenceSession,
    private readonly read: ort.InferenceSession,
  ) {}

  private released = false;

  /**
   * Sessions on WebGPU whose outputs stay on the device (`preferredOutputLocation: "gpu-buffer"`).
   * Every call into them holds the process's device lock (device-lock.ts).
   */
  static async open(layers: readonly AttentionLayerDims[]): Promise<PrefixBanks> {
    return onDevice("webgpu", () => PrefixBanks.openSessions(layers));
  }

  private static async openSessions(layers: readonly AttentionLayerDims[]): Promise<PrefixBanks> {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: executionProviders("webgpu"),
      preferredOutputLocation: "gpu-buffer",
      logSeverityLevel: 3,
    };
    const sessions: ort.InferenceSession[] = [];
    try {
      for (const graph of [prefixBankUpdateGraph(layers), prefixBankGrowGraph(layers), prefixBankReadGraph(layers)])
        sessions.push(await ort.InferenceSession.create(toOnnxBytes(graph), options));
    } catch (e) {
      await Promise.all(sessions.map((s) => s.release()));
      throw e;
    }
    return new PrefixBanks(layers, sessions[0], sessions[1], sessions[2]);
  }

  /**
   * Applies the request's uploads (growing or re-creating the banks first when its geometry says so)
   * and returns the prefix graph's key/value inputs as device tensors; the caller disposes them after
   * its run. Any failure drops the banks, so no later batch of this generation reads them.
   */
  async inputs(req: BankRequest, P: number): Promise<Record<string, ort.Tensor>> {
    return onDevice("webgpu", () => this.readInputs(req, P));
  }

  private async readInputs(req: BankRequest, P: number): Promise<Record<string, ort.Tensor>> {
    try {
      await this.apply(req);
      for (const s of req.rowSlots)
        if (s !== 0n && !this.written.has(Number(s)))
          throw new Error(`device prefix bank: slot ${s} was not written in generation ${req.generation}`);
      if (!this.banks) throw new Error(`device prefix bank: generation ${req.generation} has no banks`);
      const banks = this.banks;
      const names = prefixBankNames(this.layers.length);
      const feeds: Record<string, ort.Tensor> = {
        [SLOTS]: new ort.Tensor("int64", req.rowSlots, [req.rowSlots.length]),
        prefix_length: new ort.Tensor("int64", BigInt64Array.of(BigInt(P)), [1]),
      };
      names.forEach((name, i) => (feeds[name] = banks[i]));
      return await this.read.run(feeds);
    } catch (e) {
      this.drop();
      throw e;
    }
  }

  private async apply(req: BankRequest): Promise<void> {
    if (req.generation !== this.generation) {
      this.drop();
      this.generation = req.generation;
      this.capacity = req.capacity;
      this.pMax = req.pMax;
    } else if (req.pMax !== this.pMax || req.capacity < this.capacity) {
      throw new Error(
        `device prefix bank: generation ${req.generation} changed shape (Pmax ${this.pMax} → ${req.pMax})`,
      );
    } else if (req.capacity > this.capacity && this.banks) {
      await this.replace(this.grow, {
        pads: new ort.Tensor(
          "int64",
          BigInt64Array.from([0, 0, 0, 0, req.capacity - this.capacity, 0, 0, 0].map(BigInt)),
          [8],
        ),
      });
      this.capacity = req.capacity;
    } else this.capacity = req.capacity;
    if (!req.upload) return;
    const M = req.upload.slots.length;
    const feeds: Record<string, ort.Tensor> = { [SLOT]: new ort.Tensor("int64", req.upload.slots, [M, 1]) };
    this.layers.forEach((l, n) => {
      const dims = [M, l.heads, this.pMax, l.headDim];
      feeds[`item_bank_key_${n}`] = new ort.Tensor("float32", req.upload!.keys[n], dims);
      feeds[`item_bank_value_${n}`] = new ort.Tensor("float32", req.upload!.values[n], dims);
    });
    // The first upload of a generation writes into zero banks made on the host (slot 0 stays zero).
    if (!this.banks)
      this.banks = this.layers.flatMap((l) =>
        [0, 1].map(() => {
          const dims = [this.capacity, l.heads, this.pMax, l.headDim];
          return new ort.Tensor("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
        }),
      );
    await this.replace(this.update, feeds);
    for (const s of req.upload.slots) this.written.add(Number(s));
  }

  /** Runs `session` on the banks plus `extra` and keeps its outputs as the new banks. */
  private async replace(session: ort.InferenceSession, extra: Record<string, ort.Tensor>): Promise<void> {
    const names = prefixBankNames(this.layers.length);
    const feeds = { ...extra };
    names.forEach((name, i) => (feeds[name] = this.banks![i]));
    const out = await session.run(feeds);
    this.disposeBanks();
    this.banks = names.map((name) => out[`${name}_out`]);
  }

  private disposeBanks(): void {
    // Host-made zero banks have no device buffer to release.
    for (const t of this.banks ?? []) if (t.location === "gpu-buffer") t.dispose();
    this.banks = null;
  }

  /** Forgets everything (the engine's table starts a new generation after any failed batch). */
  private drop(): void {
    this.disposeBanks();
    this.written.clear();
    this.generation = -1;
    this.capacity = 0;
  }

  /**
   * Releases the banks and the sessions now, synchronously (for a worker thread about to exit: see
   * BackboneRunner.releaseBeforeExit); onnxruntime-node frees a session before its promise resolves.
   */
  releaseNow(): void {
    if (this.released) return;
    this.released = true;
    onDeviceSync("webgpu", () => {
      this.drop();
      for (const s of [this.update, this.grow, this.read]) void s.release();
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await onDevice("webgpu", async () => {
      this.drop();
      await Promise.all([this.update.release(), this.grow.release(), this.read.release()]);
    });
  }
}
