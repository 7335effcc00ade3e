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
  halfPrecisionOutputs,
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

export function hfBackboneDir(modelsDir: string, fingerprint: string): string {
  return path.join(modelsDir, `hf-${fingerprint.slice(0, 16)}`);
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
export async function ensureHfBackboneBuilt(
  modelsDir: string,
  folder: string,
  log: (msg: string) => void = () => {},
): Promise<{ dir: string; manifest: BackboneManifest }> {
  const source = await readHfFolder(folder);
  const dir = hfBackboneDir(modelsDir, source.fingerprint);
  const existing = await readManifestIn(dir);
  if (
    existing &&
    existing.buildFormat === BUILD_FORMAT &&
    existing.fingerprint === source.fingerprint &&
    existing.outputs[BUILD_FILES.fp16Model] !== undefined && // builds from before the fp16 graphs gain them
    (await changedOutput(dir, existing)) === null
  ) {
    return { dir, manifest: existing };
  }
  log(`building ${source.config.modelType} backbone from ${folder} into ${dir}`);
  const weights = readFamilyWeights(source);
  const table = wordEmbeddings(weights);
  const plain = buildHfNetwork(weights).graph;
  const prefix = buildHfNetwork(weights, { prefix: true }).graph;
  const outputs: Record<string, Uint8Array> = {
    [BUILD_FILES.model]: onnxBytes(plain, source.config.modelType),
    [BUILD_FILES.prefixModel]: onnxBytes(prefix, `${source.config.modelType}_prefix`),
    ...halfPrecisionOutputs(plain, prefix, source.config.modelType, onnxBytes),
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
    builtAt: new Date().toISOString(),
  };
  await writeBuild(modelsDir, dir, outputs, manifest);
  return { dir, manifest };
}
