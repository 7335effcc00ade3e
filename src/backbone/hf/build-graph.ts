/** One entry point from a family's weights to its graph (serving and gradient graphs alike). */
import { buildEncoderNetwork } from "./bert/network.js";
import type { FamilyWeights } from "./folder.js";
import { buildDecoderNetwork } from "./llama/network.js";
import type { HfNetworkGraph, HfNetworkOptions } from "./network.js";

export function buildHfNetwork(w: FamilyWeights, opts: HfNetworkOptions = {}): HfNetworkGraph {
  return w.family === "bert" ? buildEncoderNetwork(w.weights, opts) : buildDecoderNetwork(w.weights, opts);
}

/** The word-embedding table the engine looks token rows up in (kept outside the graph). */
export function wordEmbeddings(w: FamilyWeights): Float32Array {
  return w.family === "bert" ? w.weights.wordEmbeddings : w.weights.embedTokens;
}
