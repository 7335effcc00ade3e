/**
 * The trainer's one-run-per-step graph: USE-lite forward (the same definition as serving), the
 * task head and its loss, and the reverse pass back to the head's parameters, the inputs_embeds
 * rows (where soft prompts sit) and the key/value prefixes. F itself is chained in TypeScript
 * (transform-grad.ts): it is tiny and its input, the semantic pass, is a constant of training.
 *
 * Inputs:  inputs_embeds, attention_mask, [prefix_key_n, prefix_value_n, prefix_mask],
 *          head_weight [C, H], head_bias [C], targets [batch, C], pooled_dropout [batch, H]
 *          (0 or 1/(1−p): dropout on the pooled state, decided by the trainer's seeded RNG).
 * Outputs: loss [], logits [batch, C], grad_head_weight, grad_head_bias, grad_inputs_embeds (when
 *          asked for), and for the prefix graph grad_prefix_key_n / grad_prefix_value_n.
 */
import { addGradients, pruneToOutputs } from "../backbone/graph/autodiff.js";
import type { Graph, Value } from "../backbone/graph/graph.js";
import { buildUseLiteNetwork } from "../backbone/use-lite/network.js";
import type { UseLiteWeights } from "../backbone/use-lite/weights.js";
import { buildHfNetwork, wordEmbeddings } from "../backbone/hf/build-graph.js";
import type { FamilyWeights } from "../backbone/hf/folder.js";
import type { ProblemType } from "../adapters/spec.js";

export interface ClassifierGraphOptions {
  prefix: boolean;
  problemType: ProblemType;
  /** Head outputs C. */
  outputs: number;
  /** Differentiate with respect to inputs_embeds (soft-prompt rows); off for prefix and probe runs. */
  embedsGrad: boolean;
  float?: "float32" | "float64";
}

/** What training needs of a backbone network: its graph, the inputs gradients flow to, the pooled state. */
export interface TrainableNetwork {
  graph: Graph;
  inputs: { inputsEmbeds: Value; prefixKeys: Value[]; prefixValues: Value[] };
  outputs: { pooled: Value };
}

/** A frozen backbone as the trainer sees it: its network (any float dtype, with or without prefix inputs) and token-embedding table. */
export interface TrainableBackbone {
  network(opts: { float: "float32" | "float64"; prefix: boolean }): TrainableNetwork;
  /** [vocab, embedDim] row-major. */
  embeddings: Float32Array;
}

export function useLiteTrainable(weights: UseLiteWeights): TrainableBackbone {
  return { network: (o) => buildUseLiteNetwork(weights, o), embeddings: weights.embeddings };
}

export function hfTrainable(weights: FamilyWeights): TrainableBackbone {
  return { network: (o) => buildHfNetwork(weights, o), embeddings: wordEmbeddings(weights) };
}

export function asTrainable(backbone: UseLiteWeights | TrainableBackbone): TrainableBackbone {
  return "network" in backbone ? backbone : useLiteTrainable(backbone);
}

export function buildClassifierTrainingGraph(
  backbone: UseLiteWeights | TrainableBackbone,
  opts: ClassifierGraphOptions,
): Graph {
  const net = asTrainable(backbone).network({ float: opts.float ?? "float32", prefix: opts.prefix });
  const g = net.graph;
  const H = net.outputs.pooled.shape[1] as number;
  const C = opts.outputs;
  const headWeight = g.input("head_weight", g.float, [C, H]);
  const headBias = g.input("head_bias", g.float, [C]);
  const targets = g.input("targets", g.float, ["batch", C]);
  const dropout = g.input("pooled_dropout", g.float, ["batch", H]);

  const pooled = g.mul(net.outputs.pooled, dropout);
  const logits = g.add(g.matmul(pooled, g.transpose(headWeight, [1, 0])), headBias);
  const batchSize = g.cast(g.gatherScalar(g.shapeOf(logits), 0), g.float);
  const { loss, dLogits } = lossAndGradient(g, opts.problemType, logits, targets, batchSize, C);

  const { inputsEmbeds, prefixKeys, prefixValues } = net.inputs;
  const wrt = [
    headWeight,
    headBias,
    ...(opts.embedsGrad ? [inputsEmbeds] : []),
    ...prefixKeys.flatMap((k, n) => [k, prefixValues[n]]),
  ];
  // The loss's gradient with respect to the logits has a closed form; seeding with it keeps the
  // softmax/sigmoid of the loss out of the differentiated path.
  const grads = addGradients(g, [{ of: logits, grad: dLogits }], wrt);

  g.outputs.length = 0;
  g.output("loss", loss);
  g.output("logits", logits);
  for (const v of wrt) g.output(`grad_${v.name}`, grads.get(v.name)!);
  pruneToOutputs(g);
  return g;
}

/** Mean loss over the batch and its gradient with respect to the logits. */
function lossAndGradient(
  g: Graph,
  problem: ProblemType,
  logits: Value,
  targets: Value,
  batch: Value,
  C: number,
): { loss: Value; dLogits: Value } {
  const tiny = g.floats([1e-30]);
  const one = g.floats([1]);
  const sumAll = (x: Value) => g.reduceSum(g.reduceSum(x, [1], false), [0], false);
  if (problem === "single_label_classification") {
    // Cross-entropy: −Σ t·log softmax(z) / B; d/dz = (softmax(z) − t) / B.
    const probs = g.softmax(logits, -1);
    const loss = g.div(g.neg(sumAll(g.mul(targets, g.log(g.max(probs, tiny))))), batch);
    return { loss, dLogits: g.div(g.sub(probs, targets), batch) };
  }
  if (problem === "multi_label_classification") {
    // BCE with logits averaged over B·C elements; d/dz = (σ(z) − t) / (B·C).
    const sig = g.div(one, g.add(one, g.exp(g.neg(logits))));
    const perElement = g.add(
      g.mul(targets, g.log(g.max(sig, tiny))),
      g.mul(g.sub(one, targets), g.log(g.max(g.sub(one, sig), tiny))),
    );
    const count = g.mul(batch, g.floats([C]));
    return { loss: g.div(g.neg(sumAll(perElement)), count), dLogits: g.div(g.sub(sig, targets), count) };
  }
  // Regression: mean squared error; d/dz = 2(z − t) / B.
  const diff = g.sub(logits, targets);
  return { loss: g.div(sumAll(g.mul(diff, diff)), batch), dLogits: g.div(g.mul(diff, g.floats([2])), batch) };
}
