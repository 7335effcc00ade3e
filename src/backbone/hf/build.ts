/**
 * The build cache for a Hugging Face folder: `models/hf-<fingerprint prefix>/` holds the same files
 * as USE-lite's build (model.onnx, model-prefix.onnx, tokenizer.json, embeddings.f32, manifest.json)
 * plus tokenizer_config.json. Keyed by the checkpoint's fingerprint (config, tokenizer and weight
 * bytes + network version), so a changed folder builds afresh and an unchanged one loads at once.
 */
import path from "node:path";
import { readFile } from "node:fs/promises";
import {
  BUILD_FILES,
  BUILD_FORMAT,
  changedOutput,
  describeOutputs,
  writeBuild,
  type BackboneManifest,
} from "../build.js";
import type { BackboneDims } from "../dims.js";
import type { Graph } from "../graph/graph.js";
import { toOnnxBytes } from "../graph/onnx.js";
import { modelError } from "./errors.js";
import { buildHfNetwork, wordEmbeddings } from "./build-graph.js";
import { positionLimit, type FamilyConfig } from "./config.js";
import { HF_NETWORK_VERSION, readFamilyWeights, readHfFolder } from "./folder.js";

export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";

/** Protobuf caps a message at 2 GiB; bigger graphs need ONNX external data, which is not written yet. */
const ONNX_INLINE_LIMIT = 2 ** 31 - 64 * 2 ** 20;

export function onnxBytes(graph: Graph, name: string, limit = ONNX_INLINE_LIMIT): Uint8Array {
  const weightBytes = graph.initializers.reduce((n, i) => n + i.data.byteLength, 0);
  if (weightBytes > limit) {
    throw modelError(
      "model_too_large",
      `the ${name} graph holds ${(weightBytes / 2 ** 30).toFixed(2)} GiB of weights; graphs over 2 GiB need ONNX external data, which this version does not write yet`,
    );
  }
  return toOnnxBytes(graph, name);
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

/** Reads and validates `folder`, builds it unless a current build exists; returns the build's folder and manifest. */
export interface HfBuildOptions {
  /** Serving graphs with onnxruntime's fused operators (default false); the fingerprint does not depend on it. */
  fusedOps?: boolean;
}

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
  if (
    existing &&
    existing.buildFormat === BUILD_FORMAT &&
    existing.fingerprint === source.fingerprint &&
    (existing.fusedOps ?? false) === fused &&
    (await changedOutput(dir, existing)) === null
  ) {
    return { dir, manifest: existing };
  }
  log(`building ${source.config.modelType} backbone from ${folder} into ${dir}`);
  const weights = readFamilyWeights(source);
  const table = wordEmbeddings(weights);
  const outputs: Record<string, Uint8Array> = {
    [BUILD_FILES.model]: onnxBytes(buildHfNetwork(weights, { fused }).graph, source.config.modelType),
    [BUILD_FILES.prefixModel]: onnxBytes(
      buildHfNetwork(weights, { prefix: true, fused }).graph,
      `${source.config.modelType}_prefix`,
    ),
    [BUILD_FILES.tokenizer]: new TextEncoder().encode(JSON.stringify(source.tokenizerJson)),
    [TOKENIZER_CONFIG_FILE]: new TextEncoder().encode(JSON.stringify(source.tokenizerConfig)),
    [BUILD_FILES.embeddings]: new Uint8Array(table.buffer, table.byteOffset, table.byteLength),
  };
  const manifest: BackboneManifest = {
    backbone: path.basename(path.resolve(folder)),
    buildFormat: BUILD_FORMAT,
    networkVersion: HF_NETWORK_VERSION,
    source: { folder: path.resolve(folder), modelType: source.config.modelType, files: source.files },
    dims: hfDims(source.config),
    sentenceOutput: "pooled",
    outputs: describeOutputs(outputs),
    fingerprint: source.fingerprint,
    fusedOps: fused,
    builtAt: new Date().toISOString(),
  };
  await writeBuild(modelsDir, dir, outputs, manifest);
  return { dir, manifest };
}
