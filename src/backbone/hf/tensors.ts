/**
 * Checkpoint tensors by their canonical (unprefixed) names: finds them with or without the usual
 * prefix (`bert.`, `roberta.`, `distilbert.`, `model.`) and under the legacy LayerNorm names
 * (`gamma`/`beta`), checks each shape against the config, and refuses by name when one is missing.
 * Tensors the network never asks for (`cls.*`, `pooler.*`, `lm_head.*`, …) are simply not read.
 */
import { modelError } from "./errors.js";
import type { SafetensorsCheckpoint } from "./safetensors.js";

const LEGACY_SUFFIX: Record<string, string> = { ".weight": ".gamma", ".bias": ".beta" };

export class CheckpointWeights {
  private constructor(
    private readonly checkpoint: SafetensorsCheckpoint,
    /** The prefix the checkpoint's tensor names carry ("" when none). */
    readonly prefix: string,
  ) {}

  /** Picks the prefix (among `prefixes`, "" included) under which `probe` exists. */
  static detect(checkpoint: SafetensorsCheckpoint, prefixes: string[], probe: string): CheckpointWeights {
    for (const prefix of ["", ...prefixes])
      if (checkpoint.tensors.has(prefix + probe)) return new CheckpointWeights(checkpoint, prefix);
    const tried = ["", ...prefixes].map((p) => p + probe).join(", ");
    throw modelError("tensor_missing", `tensor ${probe} is missing from the checkpoint (looked for ${tried})`);
  }

  private resolve(name: string): string | null {
    const candidates = [this.prefix + name];
    for (const [modern, legacy] of Object.entries(LEGACY_SUFFIX)) {
      if (name.endsWith(modern) && /LayerNorm|layer_norm/.test(name))
        candidates.push(this.prefix + name.slice(0, -modern.length) + legacy);
    }
    return candidates.find((c) => this.checkpoint.tensors.has(c)) ?? null;
  }

  has(name: string): boolean {
    return this.resolve(name) !== null;
  }

  /** The tensor as float32, after checking its shape is `shape`. */
  get(name: string, shape: number[]): Float32Array {
    const stored = this.resolve(name);
    if (!stored) throw modelError("tensor_missing", `tensor ${this.prefix}${name} is missing from the checkpoint`);
    const actual = this.checkpoint.tensors.get(stored)!.shape;
    if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
      throw modelError(
        "tensor_shape_mismatch",
        `tensor ${stored} has shape [${actual}] but config.json implies [${shape}]`,
      );
    }
    return this.checkpoint.read(stored);
  }
}
