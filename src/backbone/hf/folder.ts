/**
 * A Hugging Face model folder read from disk: config.json, tokenizer.json (+ tokenizer_config.json)
 * and the safetensors weights, mapped into one family's weights. Nothing is downloaded: a missing
 * file is an error that names it. The fingerprint adapters bind to is sha256 over the network
 * version and the bytes of config, tokenizer and weight files — not over the built ONNX.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { encoderPrefixes, readEncoderWeights, type EncoderWeights } from "./bert/network.js";
import { parseFamilyConfig, type FamilyConfig } from "./config.js";
import { modelError } from "./errors.js";
import { DECODER_PREFIXES, readDecoderWeights, type DecoderWeights } from "./llama/network.js";
import { SafetensorsCheckpoint } from "./safetensors.js";
import { CheckpointWeights } from "./tensors.js";

/** Bump when an HF family's math changes; it is part of the fingerprint. */
export const HF_NETWORK_VERSION = 1;

export type FamilyWeights = { family: "bert"; weights: EncoderWeights } | { family: "llama"; weights: DecoderWeights };

export interface HfFolder {
  folder: string;
  config: FamilyConfig;
  tokenizerJson: Record<string, unknown>;
  tokenizerConfig: Record<string, unknown>;
  fingerprint: string;
  /** sha256 of each source file. */
  files: Record<string, string>;
  checkpoint: SafetensorsCheckpoint;
}

const sha256 = (bytes: Uint8Array | string): string => createHash("sha256").update(bytes).digest("hex");

/** sha256 of a file, streamed (weight files can be larger than what should sit in memory at once). */
async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 2 ** 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

async function readJson(
  folder: string,
  file: string,
  present: Set<string>,
  required: boolean,
): Promise<Record<string, unknown> | null> {
  if (!present.has(file)) {
    if (required) throw modelError("model_file_missing", `${file} is missing from ${folder}`);
    return null;
  }
  const text = await readFile(path.join(folder, file), "utf8");
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw modelError("model_file_invalid", `${file} in ${folder} is not valid JSON (${(e as Error).message})`);
  }
}

export async function readHfFolder(folder: string): Promise<HfFolder> {
  const present = new Set(
    await readdir(folder).catch((e: NodeJS.ErrnoException) => {
      throw modelError("model_folder_missing", `model folder ${folder} cannot be read (${e.code ?? e.message})`);
    }),
  );
  const configJson = (await readJson(folder, "config.json", present, true))!;
  const config = parseFamilyConfig(configJson);
  const tokenizerJson = (await readJson(folder, "tokenizer.json", present, true))!;
  const tokenizerConfig = (await readJson(folder, "tokenizer_config.json", present, false)) ?? {};
  const checkpoint = await SafetensorsCheckpoint.open(folder, present);

  const files: Record<string, string> = {};
  for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json"])
    if (present.has(f)) files[f] = sha256(await readFile(path.join(folder, f)));
  for (const [f, file] of checkpoint.filePaths()) files[f] = await sha256File(file);
  const fingerprint = sha256(
    JSON.stringify({
      backbone: `hf:${config.modelType}`,
      networkVersion: HF_NETWORK_VERSION,
      files: Object.entries(files).sort(([a], [b]) => a.localeCompare(b)),
    }),
  );
  return { folder, config, tokenizerJson, tokenizerConfig, fingerprint, files, checkpoint };
}

/** The family's weights, every tensor found and shape-checked (or a named refusal). */
export function readFamilyWeights(f: HfFolder): FamilyWeights {
  if (f.config.family === "bert") {
    const { prefixes, probe } = encoderPrefixes(f.config);
    return {
      family: "bert",
      weights: readEncoderWeights(f.config, CheckpointWeights.detect(f.checkpoint, prefixes, probe)),
    };
  }
  return {
    family: "llama",
    weights: readDecoderWeights(
      f.config,
      CheckpointWeights.detect(f.checkpoint, DECODER_PREFIXES.prefixes, DECODER_PREFIXES.probe),
    ),
  };
}
