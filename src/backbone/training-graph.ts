/**
 * The backbone's training graph: the USE-lite forward graph plus its vector-Jacobian product with
 * respect to the inputs the adapters produce (inputs_embeds rows, per-layer key/value prefixes).
 * The trainer computes dLoss/dpooled through the tiny head in TypeScript, feeds it as
 * `grad_pooled`, and chains the returned gradients through the adapter F itself. Backbone weights
 * are frozen: no weight gradient is computed (autodiff only follows paths from the inputs).
 *
 * Graph contract:
 *   inputs  as the serving graph (inputs_embeds, attention_mask; prefix variant: prefix_key_n,
 *           prefix_value_n, prefix_mask) plus grad_pooled float [batch, 512]
 *   outputs pooled [batch, 512], grad_inputs_embeds [batch, seq, 256]; prefix variant also
 *           grad_prefix_key_0, grad_prefix_value_0, grad_prefix_key_1, grad_prefix_value_1
 *           (each shaped like its input). Padded positions get exactly zero gradient.
 *
 * Built into models/use-lite/ next to the serving graphs by `ensureTrainingGraphs`.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { backboneDir, ensureBackboneBuilt, type BackboneManifest } from "./build.js";
import { addGradients, pruneToOutputs } from "./graph/autodiff.js";
import type { Graph } from "./graph/graph.js";
import { toOnnxBytes } from "./graph/onnx.js";
import { buildUseLiteNetwork } from "./use-lite/network.js";
import { readUseLitePackage } from "./use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "./use-lite/weights.js";

/** Bump when the training graph's construction changes (autodiff rules, contract). */
export const TRAINING_GRAPH_VERSION = 1;

export const TRAINING_FILES = {
  model: "train.onnx",
  prefixModel: "train-prefix.onnx",
  manifest: "train-manifest.json",
} as const;

export interface TrainingGraphOptions {
  prefix: boolean;
  /** float32 to train, float64 for gradient checks. */
  float?: "float32" | "float64";
}

export function buildBackboneTrainingGraph(weights: UseLiteWeights, opts: TrainingGraphOptions): Graph {
  const net = buildUseLiteNetwork(weights, { float: opts.float ?? "float32", prefix: opts.prefix });
  const g = net.graph;
  const { inputsEmbeds, prefixKeys, prefixValues } = net.inputs;
  const { pooled } = net.outputs;
  const gradPooled = g.input("grad_pooled", g.float, pooled.shape);

  const wrt = [inputsEmbeds, ...prefixKeys.flatMap((k, n) => [k, prefixValues[n]])];
  const grads = addGradients(g, [{ of: pooled, grad: gradPooled }], wrt);

  // Replace the serving outputs, then drop what only they needed (the sentence_embedding head).
  g.outputs.length = 0;
  g.output("pooled", pooled);
  for (const v of wrt) g.output(`grad_${v.name}`, grads.get(v.name)!);
  pruneToOutputs(g);
  return g;
}

export interface TrainingGraphsManifest {
  trainingGraphVersion: number;
  /** The backbone build these graphs belong to. */
  fingerprint: string;
  backboneBuiltAt: string;
  outputs: Record<string, { sha256: string; bytes: number }>;
  builtAt: string;
}

export interface TrainingGraphPaths {
  model: string;
  prefixModel: string;
}

function pathsIn(dir: string): TrainingGraphPaths {
  return { model: path.join(dir, TRAINING_FILES.model), prefixModel: path.join(dir, TRAINING_FILES.prefixModel) };
}

/** Why the training graphs in `dir` cannot be used with `backbone`, or null when they are current. */
async function trainingStaleReason(dir: string, backbone: BackboneManifest): Promise<string | null> {
  let m: TrainingGraphsManifest;
  try {
    m = JSON.parse(await readFile(path.join(dir, TRAINING_FILES.manifest), "utf8")) as TrainingGraphsManifest;
  } catch {
    return "no training graphs yet";
  }
  if (m.trainingGraphVersion !== TRAINING_GRAPH_VERSION) return `training graph version ${m.trainingGraphVersion} ≠ ${TRAINING_GRAPH_VERSION}`;
  if (m.fingerprint !== backbone.fingerprint || m.backboneBuiltAt !== backbone.builtAt) return "built for another backbone build";
  for (const [file, { bytes }] of Object.entries(m.outputs)) {
    const size = await stat(path.join(dir, file)).then((s) => s.size, () => -1);
    if (size !== bytes) return `${file} missing or changed`;
  }
  return null;
}

/** Writes `bytes` to `file` through a temp file and a rename, so readers never see half a file. */
async function writeAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const temp = `${file}.tmp-${randomBytes(6).toString("hex")}`;
  try {
    await writeFile(temp, bytes);
    await rename(temp, file);
  } catch (e) {
    await rm(temp, { force: true });
    throw e;
  }
}

/**
 * Builds train.onnx and train-prefix.onnx (float32) into the backbone's folder, manifest last.
 * Assumes the backbone build in `modelsDir` is current (see `ensureTrainingGraphs`).
 */
export async function writeTrainingGraphs(modelsDir: string, backbone: BackboneManifest): Promise<TrainingGraphsManifest> {
  const weights = mapUseLiteWeights((await readUseLitePackage()).weights);
  const dir = backboneDir(modelsDir);
  const outputs: TrainingGraphsManifest["outputs"] = {};
  for (const [file, prefix] of [[TRAINING_FILES.model, false], [TRAINING_FILES.prefixModel, true]] as const) {
    const bytes = toOnnxBytes(buildBackboneTrainingGraph(weights, { prefix }), prefix ? "use_lite_train_prefix" : "use_lite_train");
    await writeAtomic(path.join(dir, file), bytes);
    outputs[file] = { sha256: createHash("sha256").update(bytes).digest("hex"), bytes: bytes.byteLength };
  }
  const manifest: TrainingGraphsManifest = {
    trainingGraphVersion: TRAINING_GRAPH_VERSION,
    fingerprint: backbone.fingerprint,
    backboneBuiltAt: backbone.builtAt,
    outputs,
    builtAt: new Date().toISOString(),
  };
  await writeAtomic(path.join(dir, TRAINING_FILES.manifest), JSON.stringify(manifest, null, 2) + "\n");
  return manifest;
}

/** Builds the backbone and its training graphs when missing or stale; returns the graphs' paths. */
export async function ensureTrainingGraphs(modelsDir: string, log: (msg: string) => void = () => {}): Promise<TrainingGraphPaths> {
  const backbone = await ensureBackboneBuilt(modelsDir, log);
  const dir = backboneDir(modelsDir);
  const reason = await trainingStaleReason(dir, backbone);
  if (reason !== null) {
    log(`building training graphs into ${dir} (${reason})`);
    await writeTrainingGraphs(modelsDir, backbone);
  }
  return pathsIn(dir);
}
