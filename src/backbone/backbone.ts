/**
 * The frozen backbone at run time: the built assets (tokenizer, embedding table, fingerprint) and
 * a runner that executes the ONNX graphs. The runner blocks its thread while a graph runs, so the
 * server uses it inside a worker (src/engine/worker.ts); tests and benchmarks may use it directly.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import ort from "onnxruntime-node";
import { backboneDir, BUILD_FILES, ensureBackboneBuilt, GRAPH_FILES, type BackboneManifest } from "./build.js";
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
import { ensureHfBackboneBuilt, TOKENIZER_CONFIG_FILE } from "./hf/build.js";
import { HfTokenizer } from "./hf/tokenizer.js";
import { UseLiteTokenizer, type BackboneTokenizer } from "./tokenizer.js";
import { cpuPinnedNodeNames } from "./webgpu-placement.js";

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
): Promise<BackboneAssets> {
  const { dir, manifest } = model
    ? await ensureHfBackboneBuilt(modelsDir, model, log)
    : { dir: backboneDir(modelsDir), manifest: await ensureBackboneBuilt(modelsDir, log) };
  const readJson = async (file: string) =>
    JSON.parse(await readFile(path.join(dir, file), "utf8")) as Record<string, unknown>;
  const tokenizerJson = await readJson(BUILD_FILES.tokenizer);
  const tokenizer = model
    ? new HfTokenizer(tokenizerJson, await readJson(TOKENIZER_CONFIG_FILE))
    : new UseLiteTokenizer(tokenizerJson);
  const raw = await readFile(path.join(dir, BUILD_FILES.embeddings));
  const embeddings = new Float32Array(new Uint8Array(raw).buffer);
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

export interface BackboneBatch {
  batch: number;
  seq: number;
  /** [batch, seq, embedDim] rows of E (and soft prompts), before the graph's ×2 and timing. */
  inputsEmbeds: Float32Array;
  /** [batch, seq] 1 for real positions. */
  attentionMask: BigInt64Array;
  /** [batch, seq] token type ids for graphs that take them (BERT-family pairs); zeros when absent. */
  tokenTypeIds?: BigInt64Array;
  prefix?: PrefixInputs;
  outputs: BackboneOutputName[];
}

export type BackboneOutputs = Partial<Record<BackboneOutputName, Float32Array>>;

export interface RunnerOptions {
  /** onnxruntime intra-op threads (on WebGPU: for the nodes onnxruntime keeps on the CPU). */
  threads: number;
  device?: DeviceSetting;
  precision?: Precision;
}

async function createSession(file: string, threads: number, device: Device): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(file, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionProviders: executionProviders(device, device === "webgpu" ? await cpuPinnedNodeNames(file) : []),
    // On WebGPU onnxruntime warns at every session that shape ops stay on the CPU, which is by design.
    ...(device === "webgpu" ? { logSeverityLevel: 3 as const } : {}),
  });
}

/** The build's plain and prefix graph files for `precision`, refused when the build has none. */
function graphFiles(manifest: BackboneManifest, precision: Precision): readonly [string, string] {
  const files = GRAPH_FILES[precision];
  if (precision === "fp32" || files.every((f) => manifest.outputs[f])) return files;
  throw new SktError(
    "bad_request",
    "precision_unsupported",
    precision === "int8"
      ? `SKT_PRECISION=int8 graphs are built for the embedded USE-lite only; the backbone "${manifest.backbone}" has none. Set SKT_PRECISION=fp32.`
      : `the build of the backbone "${manifest.backbone}" has no SKT_PRECISION=${precision} graphs (it predates them; delete its folder to rebuild it). Set SKT_PRECISION=fp32.`,
  );
}

export class BackboneRunner {
  private constructor(
    readonly dims: BackboneDims,
    private readonly plain: ort.InferenceSession,
    private readonly withPrefix: ort.InferenceSession,
    /** The device the sessions run on and why (see device.ts). */
    readonly deviceInfo: DeviceInfo,
  ) {}

  /** The embedded USE-lite's runner. */
  static async create(modelsDir: string, opts: RunnerOptions): Promise<BackboneRunner> {
    return BackboneRunner.open(backboneDir(modelsDir), opts);
  }

  /** The runner of the build in `dir` (any backbone). */
  static async open(dir: string, opts: RunnerOptions): Promise<BackboneRunner> {
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as BackboneManifest;
    const precision = opts.precision ?? "fp32";
    const [model, prefixModel] = graphFiles(manifest, precision);
    const { sessions, info } = await openOnDevice(opts.device ?? "cpu", precision, async (device) => {
      const plain = await createSession(path.join(dir, model), opts.threads, device);
      try {
        return [plain, await createSession(path.join(dir, prefixModel), opts.threads, device)] as const;
      } catch (e) {
        await plain.release();
        throw e;
      }
    });
    return new BackboneRunner(manifest.dims, sessions[0], sessions[1], info);
  }

  async run(b: BackboneBatch): Promise<BackboneOutputs> {
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor("float32", b.inputsEmbeds, [b.batch, b.seq, this.dims.embedDim]),
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seq]),
    };
    let session = this.plain;
    if (b.prefix) session = this.withPrefix;
    if (session.inputNames.includes("token_type_ids")) {
      feeds.token_type_ids = new ort.Tensor("int64", b.tokenTypeIds ?? new BigInt64Array(b.batch * b.seq), [
        b.batch,
        b.seq,
      ]);
    }
    if (b.prefix) {
      const P = b.prefix.length;
      this.dims.layers.forEach((l, n) => {
        feeds[`prefix_key_${n}`] = new ort.Tensor("float32", b.prefix!.keys[n], [b.batch, l.heads, P, l.headDim]);
        feeds[`prefix_value_${n}`] = new ort.Tensor("float32", b.prefix!.values[n], [b.batch, l.heads, P, l.headDim]);
      });
      feeds.prefix_mask = new ort.Tensor("int64", b.prefix.mask, [b.batch, P]);
    }
    const result = await session.run(feeds, b.outputs);
    const out: BackboneOutputs = {};
    for (const name of b.outputs) out[name] = result[name].data as Float32Array;
    return out;
  }

  async release(): Promise<void> {
    await Promise.all([this.plain.release(), this.withPrefix.release()]);
  }
}

/**
 * Right-padded batch of token-id sequences (no soft prompt), the plain input the backbone takes.
 * Used by the semantic pass, the benchmarks' raw baseline and the tests.
 */
export function tokenBatch(
  table: Float32Array,
  dim: number,
  sequences: number[][],
  outputs: BackboneOutputName[],
): BackboneBatch {
  const batch = sequences.length;
  const seq = Math.max(1, ...sequences.map((s) => s.length));
  const inputsEmbeds = new Float32Array(batch * seq * dim);
  const attentionMask = new BigInt64Array(batch * seq);
  sequences.forEach((ids, b) => {
    lookupEmbeddings(table, dim, ids, inputsEmbeds, b * seq);
    attentionMask.fill(1n, b * seq, b * seq + ids.length);
  });
  return { batch, seq, inputsEmbeds, attentionMask, outputs };
}
