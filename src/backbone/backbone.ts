/**
 * The frozen backbone at run time: the built assets (tokenizer, embedding table, fingerprint) and
 * a runner that executes the ONNX graphs. The runner blocks its thread while a graph runs, so the
 * server uses it inside a worker (src/engine/worker.ts); tests and benchmarks may use it directly.
 */
import { open, readFile } from "node:fs/promises";
import path from "node:path";
import ort from "onnxruntime-node";
import {
  backboneDir,
  BUILD_FILES,
  ensureBackboneBuilt,
  GRAPH_FILES,
  PACKED_GRAPH_FILES,
  type BackboneManifest,
} from "./build.js";
import {
  executionProviders,
  openOnDevice,
  type Device,
  type DeviceInfo,
  type DeviceSetting,
  type Precision,
} from "./device.js";
import type { BackboneDims } from "./dims.js";
import { SktError } from "../errors.js";
import { ensureHfBackboneBuilt, TOKENIZER_CONFIG_FILE, type HfBuildOptions } from "./hf/build.js";
import { HfTokenizer } from "./hf/tokenizer.js";
import { UseLiteTokenizer, type BackboneTokenizer } from "./tokenizer.js";
import { INPUT_IDS, PROMPT_ROWS, type GraphInput } from "./token-input.js";
import { cpuPinnedNodeNames } from "./webgpu-placement.js";
import { onDevice, onDeviceSync } from "./device-lock.js";
import { DEVICE_BANKS_UNAVAILABLE, PrefixBanks, type BankedPrefix } from "./prefix-banks.js";
import { chooseLayout, packingIndices, type GraphLayout, type PackedSetting, type PackingIndices } from "./packing.js";

export interface BackboneAssets {
  /** The built backbone's folder (what the runner loads). */
  dir: string;
  /** "use-lite", or the Hugging Face folder's name. */
  name: string;
  manifest: BackboneManifest;
  fingerprint: string;
  dims: BackboneDims;
  tokenizer: BackboneTokenizer;
  /** Token-embedding table E, [vocab, embedDim] row-major. */
  embeddings: Float32Array;
  /** The graph output that is the backbone's sentence vector (/embed). */
  sentenceOutput: "pooled" | "sentence_embedding";
}

/** The embedded USE-lite, or with `model` the Hugging Face folder it names; built on first use. */
export async function loadBackboneAssets(
  modelsDir: string,
  log?: (msg: string) => void,
  model?: string,
  hfBuild: HfBuildOptions = {},
): Promise<BackboneAssets> {
  const { dir, manifest } = model
    ? await ensureHfBackboneBuilt(modelsDir, model, log, hfBuild)
    : { dir: backboneDir(modelsDir), manifest: await ensureBackboneBuilt(modelsDir, log) };
  const readJson = async (file: string) =>
    JSON.parse(await readFile(path.join(dir, file), "utf8")) as Record<string, unknown>;
  const tokenizerJson = await readJson(BUILD_FILES.tokenizer);
  const tokenizer = model
    ? new HfTokenizer(tokenizerJson, await readJson(TOKENIZER_CONFIG_FILE))
    : new UseLiteTokenizer(tokenizerJson);
  const embeddings = await readFloat32File(path.join(dir, BUILD_FILES.embeddings));
  const sentenceOutput = manifest.sentenceOutput ?? "sentence_embedding"; // USE-lite builds from before the field
  return {
    dir,
    name: manifest.backbone,
    manifest,
    fingerprint: manifest.fingerprint,
    dims: manifest.dims,
    tokenizer,
    embeddings,
    sentenceOutput,
  };
}

/** A little-endian float32 file read straight into its array (no second, byte-array copy of a large table). */
async function readFloat32File(file: string): Promise<Float32Array> {
  const handle = await open(file, "r");
  try {
    const size = (await handle.stat()).size;
    if (size % 4 !== 0) throw new Error(`${file}: ${size} bytes is not a whole number of float32 values`);
    const out = new Float32Array(size / 4);
    const bytes = new Uint8Array(out.buffer);
    for (let done = 0; done < size;) {
      const { bytesRead } = await handle.read(bytes, done, size - done, done);
      if (bytesRead === 0) throw new Error(`${file}: ended early`);
      done += bytesRead;
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Writes the embedding rows of `ids` into `out` starting at row `row` (rows of width `dim`). */
export function lookupEmbeddings(
  table: Float32Array,
  dim: number,
  ids: ArrayLike<number>,
  out: Float32Array,
  row: number,
): void {
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    out.set(table.subarray(id * dim, (id + 1) * dim), (row + i) * dim);
  }
}

export type BackboneOutputName = "last_hidden_state" | "pooled" | "sentence_embedding";

export interface PrefixInputs {
  /** Prefix length P (may be 0). */
  length: number;
  /** Per layer: [batch, heads, P, headDim]. */
  keys: Float32Array[];
  values: Float32Array[];
  /** [batch, P], 1 for a real prefix position. */
  mask: BigInt64Array;
}

interface BatchCommon {
  batch: number;
  seq: number;
  /** [batch, seq] 1 for real positions. */
  attentionMask: BigInt64Array;
  /** [batch, seq] token type ids for graphs that take them (BERT-family pairs); zeros when absent. */
  tokenTypeIds?: BigInt64Array;
  prefix?: PrefixInputs;
  /** Instead of `prefix`: the prefix read from the worker's device banks (WebGPU only; prefix-banks.ts). */
  bankedPrefix?: BankedPrefix;
  /**
   * The packed graphs' index inputs (see packing.ts), computed where the batch is assembled; a
   * runner serving packed graphs computes them from the mask when absent, a padded one ignores them.
   */
  packing?: PackingIndices;
  outputs: BackboneOutputName[];
}

/** The "embeds" graphs' input: the rows themselves, looked up on the host. */
export interface EmbedsBatch extends BatchCommon {
  /** [batch, seq, embedDim] rows of E (and soft prompts), before the graph's ×2 and timing. */
  inputsEmbeds: Float32Array;
  tokenIds?: undefined;
}

/** The "ids" graphs' input (token-input.ts): ids, and the batch's distinct soft-prompt rows. */
export interface IdsBatch extends BatchCommon {
  tokenIds: {
    /** [batch, seq]: a token id (< vocab), or vocab + k for row k of `promptRows`. */
    ids: BigInt64Array;
    /** [rows, embedDim], rows ≥ 1 (a zero row when the batch has no soft prompt). */
    promptRows: Float32Array;
  };
  inputsEmbeds?: undefined;
}

export type BackboneBatch = EmbedsBatch | IdsBatch;

export type BackboneOutputs = Partial<Record<BackboneOutputName, Float32Array>>;

export interface RunnerOptions {
  /** onnxruntime intra-op threads (on WebGPU: for the nodes onnxruntime keeps on the CPU). */
  threads: number;
  device?: DeviceSetting;
  precision?: Precision;
  /**
   * The graphs' input stage (token-input.ts). Default: `ids` on WebGPU (a batch uploads ids, not
   * [seq, hidden] floats; the table goes to the device once), `embeds` elsewhere (on the CPU the main
   * thread's one copy of the table serves every worker; docs/webgpu.md "What crosses the bus").
   */
  input?: GraphInput;
  /** SKT_PACKED: serve the padding-free graphs (default auto; see packing.ts). */
  packed?: PackedSetting;
  /**
   * SKT_SHARE_WEIGHTS (default true): for builds whose weights are external data, open the sessions
   * with prepacking off so they all read the one mapped copy (see createSession).
   */
  shareWeights?: boolean;
  /**
   * SKT_ORT_SPINNING (default true, onnxruntime's own default): whether idle intra-op threads spin
   * before they sleep. Spinning is faster on idle cores and takes cycles the main thread, other
   * workers and other processes could use (docs/benchmarks.md "Less work on the main thread").
   */
  spinning?: boolean;
}

/** The input stage a runner on `device` uses unless told otherwise (int8 and fp16 graphs exist only as embeds). */
export function defaultGraphInput(device: Device, precision: Precision): GraphInput {
  return device === "webgpu" && precision === "fp32" ? "ids" : "embeds";
}

/**
 * `mappedWeights` (builds whose weights are ONNX external data): onnxruntime maps the data file
 * and, with prepacking off, its MatMuls read the weights from the mapping — one copy in the page
 * cache shared by the plain and the prefix session (and by every worker) instead of a packed
 * private copy per session. Measured on BERT-base: the two sessions add 666 MiB of private memory
 * with prepacking, none with it off (the weights show up once, ~330 MiB, as file-backed pages);
 * `npm run bench:models` measures the cost in speed.
 */
async function createSession(
  file: string,
  threads: number,
  device: Device,
  mappedWeights: boolean,
  spinning: boolean,
): Promise<ort.InferenceSession> {
  // onnxruntime's session config keys (onnxruntime_session_options_config_keys.h), nested at the dots.
  const session: Record<string, unknown> = {};
  if (mappedWeights) session.disable_prepacking = "1";
  if (!spinning) session.intra_op = { allow_spinning: "0" };
  const cpuNodes = device === "webgpu" ? await cpuPinnedNodeNames(file) : [];
  return onDevice(device, () =>
    ort.InferenceSession.create(file, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
      ...(Object.keys(session).length > 0 ? { extra: { session } } : {}),
      executionProviders: executionProviders(device, cpuNodes),
      // On WebGPU onnxruntime warns at every session that shape ops stay on the CPU, which is by design.
      ...(device === "webgpu" ? { logSeverityLevel: 3 as const } : {}),
    }),
  );
}

/**
 * The build's plain and prefix graph files for `precision` and `layout` (embeds input), or null when
 * it has none (packed graphs exist for fp32 and int8 only).
 */
function graphFiles(manifest: BackboneManifest, precision: Precision, layout: GraphLayout): [string, string] | null {
  const files = (layout === "packed" ? PACKED_GRAPH_FILES : GRAPH_FILES)[precision];
  return files && files.every((f) => manifest.outputs[f]) ? [files[0], files[1]] : null;
}

/**
 * The one place that picks a runner's graph files: the input stage first (token ids: fp32, padded),
 * then precision (int8 and fp16 only where built), then the layout SKT_PACKED and the device choose
 * (packed only where built; older builds fall back to padded).
 */
function chooseGraphs(
  manifest: BackboneManifest,
  precision: Precision,
  input: GraphInput,
  packed: PackedSetting,
  device: Device,
): { layout: GraphLayout; files: [string, string] } {
  if (precision !== "fp32" && (input === "ids" || !graphFiles(manifest, precision, "padded"))) {
    throw new SktError(
      "bad_request",
      "precision_unsupported",
      input === "ids"
        ? `SKT_PRECISION=${precision} graphs take embeddings, not token ids (SKT_PRECISION=fp32 runs the token-id graphs).`
        : precision === "int8"
          ? `SKT_PRECISION=int8 graphs are built for the embedded USE-lite only; the backbone "${manifest.backbone}" has none. Set SKT_PRECISION=fp32.`
          : `the build of the backbone "${manifest.backbone}" has no SKT_PRECISION=${precision} graphs (it predates them; delete its folder to rebuild it). Set SKT_PRECISION=fp32.`,
    );
  }
  if (input === "ids") {
    const files: [string, string] = [BUILD_FILES.idsModel, BUILD_FILES.idsPrefixModel];
    if (!files.every((f) => manifest.outputs[f]))
      throw new SktError(
        "not_ready",
        "backbone_load_failed",
        `the build of "${manifest.backbone}" has no token-id graphs (built by an older version); rebuild it (npm run build, or delete its folder under the models directory)`,
      );
    return { layout: "padded", files };
  }
  const layout = chooseLayout(packed, graphFiles(manifest, precision, "packed") !== null, device);
  return { layout, files: graphFiles(manifest, precision, layout)! };
}

export class BackboneRunner {
  /** The device prefix banks, opened at the first banked batch (WebGPU only). */
  private banks: Promise<PrefixBanks> | null = null;
  /** The same banks once open (for the synchronous release before a worker thread exits). */
  private openBanks: PrefixBanks | null = null;
  private released = false;

  private constructor(
    readonly dims: BackboneDims,
    private readonly plain: ort.InferenceSession,
    private readonly withPrefix: ort.InferenceSession,
    /** The device the sessions run on and why (see device.ts). */
    readonly deviceInfo: DeviceInfo,
    /** What a batch must carry: `inputsEmbeds` or `tokenIds` (token-input.ts). */
    readonly input: GraphInput,
    /** Whether the sessions are the padding-free graphs (they then take `packed_index`/`padded_index`). */
    readonly layout: GraphLayout,
    /** Whether the sessions read the build's one mapped copy of the weights (prepacking off; SKT_SHARE_WEIGHTS). */
    readonly sharedWeights: boolean,
  ) {}

  /** The embedded USE-lite's runner. */
  static async create(modelsDir: string, opts: RunnerOptions): Promise<BackboneRunner> {
    return BackboneRunner.open(backboneDir(modelsDir), opts);
  }

  /** The runner of the build in `dir` (any backbone). */
  static async open(dir: string, opts: RunnerOptions): Promise<BackboneRunner> {
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as BackboneManifest;
    const precision = opts.precision ?? "fp32";
    const mapped = BUILD_FILES.weightsData in manifest.outputs && opts.shareWeights !== false;
    const spinning = opts.spinning !== false;
    const { sessions, info } = await openOnDevice(opts.device ?? "cpu", precision, async (device) => {
      // A Hugging Face build has token-id graphs only when a command asked for them (hf/build.ts).
      const hasIds = BUILD_FILES.idsModel in manifest.outputs;
      const input = opts.input ?? (hasIds ? defaultGraphInput(device, precision) : "embeds");
      const { layout, files } = chooseGraphs(manifest, precision, input, opts.packed ?? "auto", device);
      const plain = await createSession(path.join(dir, files[0]), opts.threads, device, mapped, spinning);
      try {
        return {
          input,
          layout,
          plain,
          prefix: await createSession(path.join(dir, files[1]), opts.threads, device, mapped, spinning),
        };
      } catch (e) {
        await onDevice(device, () => plain.release());
        throw e;
      }
    });
    return new BackboneRunner(
      manifest.dims,
      sessions.plain,
      sessions.prefix,
      info,
      sessions.input,
      sessions.layout,
      mapped,
    );
  }

  /** Runs one batch; on WebGPU holding the process's device lock for the whole batch (device-lock.ts). */
  async run(b: BackboneBatch): Promise<BackboneOutputs> {
    return onDevice(this.deviceInfo.device, () => this.runBatch(b));
  }

  private async runBatch(b: BackboneBatch): Promise<BackboneOutputs> {
    const D = this.dims.embedDim;
    const feeds: Record<string, ort.Tensor> = {
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seq]),
    };
    if (this.input === "ids") {
      if (!b.tokenIds) throw new Error("this runner's graphs take token ids, but the batch carries embeddings");
      feeds[INPUT_IDS] = new ort.Tensor("int64", b.tokenIds.ids, [b.batch, b.seq]);
      const rows = b.tokenIds.promptRows;
      feeds[PROMPT_ROWS] = new ort.Tensor("float32", rows, [rows.length / D, D]);
    } else {
      if (!b.inputsEmbeds) throw new Error("this runner's graphs take embeddings, but the batch carries token ids");
      feeds.inputs_embeds = new ort.Tensor("float32", b.inputsEmbeds, [b.batch, b.seq, D]);
    }
    let session = this.plain;
    if (b.prefix || b.bankedPrefix) session = this.withPrefix;
    if (session.inputNames.includes("token_type_ids")) {
      feeds.token_type_ids = new ort.Tensor("int64", b.tokenTypeIds ?? new BigInt64Array(b.batch * b.seq), [
        b.batch,
        b.seq,
      ]);
    }
    if (this.layout === "packed") {
      const { packedIndex, paddedIndex } = b.packing ?? packingIndices(b.attentionMask);
      feeds.packed_index = new ort.Tensor("int64", packedIndex, [packedIndex.length]);
      feeds.padded_index = new ort.Tensor("int64", paddedIndex, [paddedIndex.length]);
    }
    if (b.prefix) {
      const P = b.prefix.length;
      this.dims.layers.forEach((l, n) => {
        feeds[`prefix_key_${n}`] = new ort.Tensor("float32", b.prefix!.keys[n], [b.batch, l.heads, P, l.headDim]);
        feeds[`prefix_value_${n}`] = new ort.Tensor("float32", b.prefix!.values[n], [b.batch, l.heads, P, l.headDim]);
      });
      feeds.prefix_mask = new ort.Tensor("int64", b.prefix.mask, [b.batch, P]);
    }
    const deviceInputs = b.bankedPrefix ? await this.bankedInputs(b.bankedPrefix, b.batch) : {};
    Object.assign(feeds, deviceInputs);
    try {
      const result = await session.run(feeds, b.outputs);
      const out: BackboneOutputs = {};
      for (const name of b.outputs) out[name] = result[name].data as Float32Array;
      return out;
    } finally {
      for (const t of Object.values(deviceInputs)) if (t.location === "gpu-buffer") t.dispose();
    }
  }

  /** The prefix graph's key/value inputs read on the device from the banks, and its mask. */
  private async bankedInputs(p: BankedPrefix, batch: number): Promise<Record<string, ort.Tensor>> {
    const unavailable = (why: string) =>
      new SktError("internal", DEVICE_BANKS_UNAVAILABLE, `device prefix banks unavailable: ${why}`);
    if (this.deviceInfo.device !== "webgpu")
      throw unavailable(`this runner is on ${this.deviceInfo.device}, not webgpu`);
    if (this.input !== "ids") throw unavailable("they serve the token-id graphs only");
    this.banks ??= PrefixBanks.open(this.dims.layers);
    let banks: PrefixBanks;
    try {
      banks = await this.banks;
      this.openBanks = banks;
    } catch (e) {
      this.banks = null;
      throw unavailable((e as Error).message);
    }
    const read = await banks.inputs(p.bank, p.length);
    const mask = new ort.Tensor("int64", p.mask, [batch, p.length]);
    return { ...read, prefix_mask: mask };
  }

  /**
   * Releases the sessions and the device banks now, synchronously, under the device lock: for a
   * worker thread about to exit (a crash included), so that nothing is left to finalizers that
   * would free device memory during the thread's teardown while another thread uses the device.
   * onnxruntime-node's `release()` frees the native session before its promise (backend.js).
   */
  releaseBeforeExit(): void {
    if (this.released) return;
    this.released = true;
    onDeviceSync(this.deviceInfo.device, () => {
      this.openBanks?.releaseNow();
      for (const s of [this.plain, this.withPrefix]) void s.release();
    });
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const banks = this.banks && (await this.banks.catch(() => null));
    await onDevice(this.deviceInfo.device, async () => {
      await Promise.all([this.plain.release(), this.withPrefix.release(), banks?.release()]);
    });
  }
}

/**
 * Right-padded batch of token-id sequences (no soft prompt), the plain input the backbone takes, in
 * the form a runner with input stage `input` wants. Used by the semantic pass, the benchmarks' raw
 * baseline and the tests.
 */
export function tokenBatch(
  table: Float32Array,
  dim: number,
  sequences: number[][],
  outputs: BackboneOutputName[],
): EmbedsBatch;
export function tokenBatch(
  table: Float32Array,
  dim: number,
  sequences: number[][],
  outputs: BackboneOutputName[],
  input: GraphInput,
): BackboneBatch;
export function tokenBatch(
  table: Float32Array,
  dim: number,
  sequences: number[][],
  outputs: BackboneOutputName[],
  input: GraphInput = "embeds",
): BackboneBatch {
  const batch = sequences.length;
  const seq = Math.max(1, ...sequences.map((s) => s.length));
  const attentionMask = new BigInt64Array(batch * seq);
  sequences.forEach((ids, b) => attentionMask.fill(1n, b * seq, b * seq + ids.length));
  if (input === "ids") {
    const ids = new BigInt64Array(batch * seq);
    sequences.forEach((s, b) => s.forEach((id, t) => (ids[b * seq + t] = BigInt(id))));
    return { batch, seq, tokenIds: { ids, promptRows: new Float32Array(dim) }, attentionMask, outputs };
  }
  const inputsEmbeds = new Float32Array(batch * seq * dim);
  sequences.forEach((ids, b) => lookupEmbeddings(table, dim, ids, inputsEmbeds, b * seq));
  return { batch, seq, inputsEmbeds, attentionMask, outputs };
}
