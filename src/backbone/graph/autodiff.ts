/**
 * Reverse mode over a recorded `Graph`: appends the vector-Jacobian products of the seeded values
 * with respect to `wrt` as ordinary ONNX ops in the same graph (rules in ./vjp/rules.ts).
 *
 * Only ops on a path from some `wrt` value to some seeded value are differentiated, and an input
 * only gets a gradient when it lies on such a path: frozen weights, masks, shapes and other
 * integer/bool values (and float values computed only from them, such as the timing signal) cost
 * nothing. Gradients of values used more than once are summed.
 */
import type { Graph, OpRecord, TensorData, Value } from "./graph.js";
import { Emit } from "./vjp/emit.js";
import { NO_GRADIENT_OPS, VJP_RULES } from "./vjp/rules.js";

export interface GradientSeed {
  /** A float value of the graph… */
  of: Value;
  /** …and the upstream gradient dLoss/d`of` (same dtype and shape). */
  grad: Value;
}

const isFloat = (v: Value): boolean => v.dtype === "float32" || v.dtype === "float64";

/**
 * Returns, for each `wrt` value's name, the value holding d(Σ seeds' ⟨of, grad⟩)/d`wrt`
 * (a zero tensor when no seed depends on it).
 */
export function addGradients(graph: Graph, seeds: GradientSeed[], wrt: Value[]): Map<string, Value> {
  for (const w of wrt)
    if (!isFloat(w)) throw new Error(`autodiff: cannot differentiate with respect to ${w.dtype} value ${w.name}`);
  for (const s of seeds) {
    if (s.of.dtype !== s.grad.dtype || s.of.shape.length !== s.grad.shape.length) {
      throw new Error(
        `autodiff: seed for ${s.of.name} is ${s.grad.dtype}[${s.grad.shape}], value is ${s.of.dtype}[${s.of.shape}]`,
      );
    }
  }
  const forward = graph.ops.slice(); // ops are recorded in topological order

  // Forward sweep: float values that depend on some wrt value.
  const depends = new Set(wrt.map((v) => v.name));
  for (const op of forward) {
    if (NO_GRADIENT_OPS.has(op.type) || !op.inputs.some((v) => depends.has(v.name))) continue;
    for (const o of op.outputs) if (isFloat(o)) depends.add(o.name);
  }

  // Backward sweep: of those, the values some seed depends on; their consumers on the path are `active`.
  const wanted = new Set(seeds.filter((s) => depends.has(s.of.name)).map((s) => s.of.name));
  const active: OpRecord[] = [];
  for (let i = forward.length - 1; i >= 0; i--) {
    const op = forward[i];
    if (!op.outputs.some((o) => wanted.has(o.name))) continue;
    const inputs = op.inputs.filter((v) => depends.has(v.name) && isFloat(v));
    if (inputs.length === 0) continue;
    if (!VJP_RULES[op.type])
      throw new Error(`autodiff: no VJP rule for ${op.type} (on the path to ${[...op.outputs].map((o) => o.name)})`);
    active.push(op);
    for (const v of inputs) wanted.add(v.name);
  }

  const constants = new Map<string, TensorData>(graph.initializers.map((i) => [i.value.name, i.data]));
  const e = new Emit(graph, constants);
  const pending = new Map<string, Value[]>();
  const contribute = (v: Value, d: Value): void => {
    if (d.shape.length !== v.shape.length || d.dtype !== v.dtype) {
      throw new Error(`autodiff: gradient of ${v.name} ${v.dtype}[${v.shape}] came out ${d.dtype}[${d.shape}]`);
    }
    pending.set(v.name, [...(pending.get(v.name) ?? []), d]);
  };
  /** The summed gradient of `v` so far (all contributions are in once its producer is reached). */
  const total = (v: Value): Value | null => {
    const parts = pending.get(v.name);
    if (!parts) return null;
    if (parts.length === 1) return parts[0];
    const sum = e.op("Sum", parts, {}, v.shape);
    pending.set(v.name, [sum]);
    return sum;
  };

  for (const s of seeds) if (wanted.has(s.of.name)) contribute(s.of, s.grad);
  for (const op of active) {
    const dy = op.outputs.map(total);
    if (dy.every((d) => d === null)) continue;
    const needs = (i: number): boolean => wanted.has(op.inputs[i].name);
    const dx = VJP_RULES[op.type]({ e, op, dy, needs });
    dx.forEach((d, i) => {
      if (d && needs(i)) contribute(op.inputs[i], d);
    });
  }

  return new Map(wrt.map((w) => [w.name, total(w) ?? e.zerosLike(w)]));
}

/**
 * Drops the ops and initializers no graph output depends on (graph inputs are kept: they are the
 * graph's interface). Use after replacing a graph's outputs, e.g. a training graph that does not
 * need the serving graph's other heads.
 */
export function pruneToOutputs(graph: Graph): void {
  const live = new Set(graph.outputs.map((o) => o.name));
  const kept: OpRecord[] = [];
  for (let i = graph.ops.length - 1; i >= 0; i--) {
    const op = graph.ops[i];
    if (!op.outputs.some((o) => live.has(o.name))) continue;
    kept.push(op);
    for (const v of op.inputs) live.add(v.name);
  }
  kept.reverse();
  graph.ops.length = 0;
  for (const op of kept) graph.ops.push(op);
  const initializers = graph.initializers.filter((i) => live.has(i.value.name));
  graph.initializers.length = 0;
  for (const i of initializers) graph.initializers.push(i);
}
