/**
 * The build cache for a Hugging Face folder: `models/hf-<fingerprint prefix>/` holds the same files
 * as USE-lite's build (model.onnx, model-prefix.onnx, their token-id variants, tokenizer.json,
 * embeddings.f32, manifest.json) plus tokenizer_config.json and model.onnx.data. Keyed by the
 * checkpoint's fingerprint (config, tokenizer and weight bytes + network version), so a changed
 * folder builds afresh and an unchanged one loads at once.
 *
 * Every Hugging Face build writes its weights as ONNX external data, whatever the model's size:
 * protobuf caps a graph at 2 GiB, the graphs then reference one copy of the weights on disk (and
 * onnxruntime maps it from there), and the build streams tensors to the file one at a time instead
 * of holding an encoded copy of every weight; one code path for every size means the tiny test
 * checkpoints exercise the same writer a 0.5B model uses.
 */
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import {
  BUILD_FILES,
  BUILD_FORMAT,
  changedOutput,
  describeOutputs,
  writeBuildWith,
  type BackboneManifest,
} from "../build.js";
import type { BackboneDims } from "../dims.js";
import type { Graph } from "../graph/graph.js";
import { toHalfPrecision } from "../graph/half.js";
import { ExternalDataFile, writeOnnxWithExternalData } from "../graph/onnx.js";
import { buildHfNetwork, wordEmbeddings } from "./build-graph.js";
import type { HfNetworkOptions } from "./network.js";
import { positionLimit, type FamilyConfig } from "./config.js";
import { HF_NETWORK_VERSION, readFamilyWeights, readHfFolder, type FamilyWeights } from "./folder.js";

export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/**
 * Writes the plain and the prefix graph of `weights`, each with embeddings and with token ids as
 * input and in float16, into `dir`, their large initializers in one shared `model.onnx.data` (identical tensors
 * stored once); one graph exists at a time. `fused`: onnxruntime's fused operators (SKT_FUSED_OPS).
 * `minExternalBytes` (tensors smaller stay inline) is
 * lowered only by tests. Returns the manifest entries of the files written.
 */
export async function writeHfGraphs(
  weights: FamilyWeights,
  name: string,
  dir: string,
  opts: { fused?: boolean; minExternalBytes?: number } & HfGraphVariants = {},
): Promise<BackboneManifest["outputs"]> {
  const { fused = false, minExternalBytes, ids = true, fp16 = true } = opts;
  const data = await ExternalDataFile.create(path.join(dir, BUILD_FILES.weightsData), minExternalBytes);
  let dataInfo: { bytes: number; sha256: string };
  const graphs: Record<string, Uint8Array> = {};
  // fp16 graphs come from the plain (unfused) network: graph/half.ts knows the standard ops only.
  const half = (g: Graph) => toHalfPrecision(g).graph;
  type Variant = readonly [file: string, graphName: string, opts: HfNetworkOptions, transform?: (g: Graph) => Graph];
  const variants: Variant[] = [
    [BUILD_FILES.model, name, { fused }],
    [BUILD_FILES.prefixModel, `${name}_prefix`, { prefix: true, fused }],
    ...(ids
      ? ([
          [BUILD_FILES.idsModel, `${name}_ids`, { input: "ids", fused }],
          [BUILD_FILES.idsPrefixModel, `${name}_prefix_ids`, { prefix: true, input: "ids", fused }],
        ] satisfies Variant[])
      : []),
    ...(fp16
      ? ([
          [BUILD_FILES.fp16Model, `${name}_fp16`, {}, half],
          [BUILD_FILES.fp16PrefixModel, `${name}_prefix_fp16`, { prefix: true }, half],
        ] satisfies Variant[])
      : []),
  ];
  try {
    for (const [file, graphName, opts, transform = (g: Graph) => g] of variants)
      graphs[file] = await writeOnnxWithExternalData(
        transform(buildHfNetwork(weights, opts).graph),
        graphName,
        path.join(dir, file),
        data,
      );
  } finally {
    dataInfo = await data.close();
  }
  return { ...describeOutputs(graphs), [BUILD_FILES.weightsData]: dataInfo };
}

/** Fused and plain builds live side by side, so commands run with different SKT_FUSED_OPS do not rebuild each other's. */
export function hfBackboneDir(modelsDir: string, fingerprint: string, fused = false): string {
  return path.join(modelsDir, `hf-${fingerprint.slice(0, 16)}${fused ? "-fused" : ""}`);
}

export function hfDims(cfg: FamilyConfig): BackboneDims {
  const kvHeads = cfg.family === "llama" ? cfg.kvHeads : cfg.heads;
  const headDim = cfg.family === "llama" ? cfg.headDim : cfg.hidden / cfg.heads;
  return {
    vocabSize: cfg.vocabSize,
    embedDim: cfg.hidden,
    hiddenDim: cfg.hidden,
    maxPositions: positionLimit(cfg),
    layers: Array.from({ length: cfg.layers }, () => ({ heads: kvHeads, headDim })),
  };
}

async function readManifestIn(dir: string): Promise<BackboneManifest | null> {
  try {
    return JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as BackboneManifest;
  } catch {
    return null;
  }
}

/**
 * The optional graph pairs of a Hugging Face build. Each costs build time, memory and disk (BERT-base:
 * 15 s and 922 MiB peak for the plain and prefix graphs alone, 104 s and 1,519 MiB with both pairs
 * below), so a build carries only those some command asked for; a later command that wants more
 * rebuilds once with the union.
 */
export interface HfGraphVariants {
  /** The token-id graphs (WebGPU serving; token-input.ts). */
  ids?: boolean;
  /** The float16 graphs (SKT_PRECISION=fp16; graph/half.ts). */
  fp16?: boolean;
}

export interface HfBuildOptions {
  /** Serving graphs with onnxruntime's fused operators (default false); the fingerprint does not depend on it. */
  fusedOps?: boolean;
  /** Optional graph pairs this command needs (default none). */
  variants?: HfGraphVariants;
}

/** Reads and validates `folder`, builds it unless a current build exists; returns the build's folder and manifest. */
export async function ensureHfBackboneBuilt(
  modelsDir: string,
  folder: string,
  log: (msg: string) => void = () => {},
  opts: HfBuildOptions = {},
): Promise<{ dir: string; manifest: BackboneManifest }> {
  const fused = opts.fusedOps ?? false;
  const source = await readHfFolder(folder);
  const dir = hfBackboneDir(modelsDir, source.fingerprint, fused);
  const existing = await readManifestIn(dir);
  const has = (file: string) => existing?.outputs[file] !== undefined;
  const want = { ids: opts.variants?.ids ?? false, fp16: opts.variants?.fp16 ?? false };
  if (
    existing &&
    existing.buildFormat === BUILD_FORMAT &&
    // Builds from before external data are rebuilt once (for the memory they save).
    existing.outputs[BUILD_FILES.weightsData] &&
    existing.fingerprint === source.fingerprint &&
    (existing.fusedOps ?? false) === fused &&
    (!want.ids || has(BUILD_FILES.idsModel)) &&
    (!want.fp16 || has(BUILD_FILES.fp16Model)) &&
    (await changedOutput(dir, existing)) === null
  ) {
    return { dir, manifest: existing };
  }
  log(`building ${source.config.modelType} backbone from ${folder} into ${dir}`);
  const weights = readFamilyWeights(source);
  const manifest = await writeBuildWith(modelsDir, dir, async (temp) => {
    // Keep what an earlier command asked for, so two commands with different needs do not rebuild each other's.
    const outputs = await writeHfGraphs(weights, source.config.modelType, temp, {
      fused,
      ids: want.ids || has(BUILD_FILES.idsModel),
      fp16: want.fp16 || has(BUILD_FILES.fp16Model),
    });
    const table = wordEmbeddings(weights);
    const files: Record<string, Uint8Array> = {
      [BUILD_FILES.tokenizer]: new TextEncoder().encode(JSON.stringify(source.tokenizerJson)),
      [TOKENIZER_CONFIG_FILE]: new TextEncoder().encode(JSON.stringify(source.tokenizerConfig)),
      [BUILD_FILES.embeddings]: new Uint8Array(table.buffer, table.byteOffset, table.byteLength),
    };
    for (const [file, bytes] of Object.entries(files)) await writeFile(path.join(temp, file), bytes);
    return {
      backbone: path.basename(path.resolve(folder)),
      buildFormat: BUILD_FORMAT,
      networkVersion: HF_NETWORK_VERSION,
      source: { folder: path.resolve(folder), modelType: source.config.modelType, files: source.files },
      dims: hfDims(source.config),
      sentenceOutput: "pooled",
      outputs: { ...outputs, ...describeOutputs(files) },
      fingerprint: source.fingerprint,
      fusedOps: fused,
      builtAt: new Date().toISOString(),
    };
  });
  return { dir, manifest };
}
