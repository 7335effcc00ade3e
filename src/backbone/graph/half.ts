/**
 * Half precision (SKT_PRECISION=fp16): turns a built float32 graph into one that stores its float
 * weights as float16 and computes in float16, with the graph's boundary kept float32 (a Cast after
 * each float input and before each float output), so the runner's feeds and outputs do not change.
 *
 * Where float16 is known to fail, the graph keeps float32 (`float32Ops`):
 * - the arguments of Sin and Cos and of Softmax, back to the nearest MatMul or non-float value:
 *   position × frequency reaches ~127 rad, where float16's spacing is 0.0625 rad (the timing signal,
 *   rotary embeddings), and the attention bias is ±1e9, beyond float16's ±65504 (it would become
 *   −∞, and 0 · −∞ = NaN where the mask is 1);
 * - reductions (ReduceMean, ReduceSum, Softmax): sums of hundreds of terms, and squares x·x (the
 *   variance, the L2 norm), which overflow float16 once |x| > 256;
 * - element-wise ops whose float inputs all come from float32 ops or constants (the LayerNorm's
 *   `variance + ε` and its square root: ε = 1e-12 is 0 in float16; the pooled mean's division).
 * MatMuls, the element-wise work around them and the weights are float16. Float constants beyond
 * ±65504 that still end up float16 are saturated to ±65504 (reported in `saturated`).
 *
 * `emulate: true` builds the same graph in float32 with every value that would be float16 (weights,
 * inputs after the boundary, each float16 op's outputs) rounded to float16 by a Cast pair: a
 * faithful model of float16 storage for machines without float16 kernels, except that the ops'
 * internal arithmetic (a MatMul's accumulation) stays float32.
 */
import { Graph, onnxTypeCode, type DType, type OpRecord, type TensorData, type Value } from "./graph.js";

export const FLOAT16_MAX = 65504;
/** float16's machine epsilon: the spacing of values in [1, 2). Its relative rounding error is half that. */
export const FLOAT16_EPSILON = 2 ** -10;

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return d < 0.5 ? f : f + 1;
  return f % 2 === 0 ? f : f + 1;
}

/** IEEE 754 binary16 bit pattern of `x`, rounded to nearest even (±Infinity beyond the range). */
export function float16Bits(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal (1024 → the smallest normal)
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let m = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (m === 1024) {
    m = 0;
    e++;
  }
  if (e > 15) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | m;
}

/** The number a float16 bit pattern stands for. */
export function float16Value(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** `x` rounded to the nearest float16. */
export function roundToFloat16(x: number): number {
  return float16Value(float16Bits(x));
}

const ELEMENTWISE = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Max",
  "Sqrt",
  "Exp",
  "Log",
  "Neg",
  "Tanh",
  "Relu",
  "Erf",
  "Sigmoid",
  "Identity",
  "Concat",
  "Unsqueeze",
  "Reshape",
  "Transpose",
  "Split",
  "Slice",
]);
const REDUCTIONS = new Set(["ReduceMean", "ReduceSum", "Softmax"]);
/** Ops whose float inputs are computed in float32 back to the nearest MatMul or non-float value. */
const FLOAT32_ARGUMENTS = new Set(["Sin", "Cos", "Softmax"]);

const isFloat = (v: Value): boolean => v.dtype === "float32";

/** The ops of a float32 graph that its half-precision version keeps in float32 (rules above). */
export function float32Ops(graph: Graph): Set<OpRecord> {
  const producer = new Map<Value, OpRecord>();
  for (const op of graph.ops) for (const o of op.outputs) producer.set(o, op);
  const keep = new Set<OpRecord>();

  const pending: Value[] = [];
  for (const op of graph.ops) {
    if (FLOAT32_ARGUMENTS.has(op.type)) {
      keep.add(op);
      pending.push(...op.inputs.filter(isFloat));
    }
    if (REDUCTIONS.has(op.type)) keep.add(op);
    if (op.type === "Mul" && op.inputs[0] === op.inputs[1]) keep.add(op); // a square
  }
  while (pending.length > 0) {
    const op = producer.get(pending.pop()!);
    if (!op || op.type === "MatMul" || keep.has(op)) continue;
    keep.add(op);
    pending.push(...op.inputs.filter(isFloat));
  }

  const initializers = new Set(graph.initializers.map((i) => i.value));
  for (const op of graph.ops) {
    if (keep.has(op) || !ELEMENTWISE.has(op.type) || !op.outputs.some(isFloat)) continue;
    const computed = op.inputs.filter((v) => isFloat(v) && !initializers.has(v));
    const fromFloat32 = (v: Value) => {
      const p = producer.get(v);
      return p !== undefined && keep.has(p);
    };
    if (computed.length > 0 && computed.every(fromFloat32)) keep.add(op);
  }
  return keep;
}

export interface HalfPrecisionGraph {
  graph: Graph;
  /** How many of the source graph's ops run in float32. */
  float32Ops: number;
  /** Float initializers with values beyond ±65504 that were saturated where used as float16. */
  saturated: string[];
}

type Mode = "half" | "float32";

/** The half-precision version of a float32 graph (see the module comment). */
export function toHalfPrecision(src: Graph, opts: { emulate?: boolean } = {}): HalfPrecisionGraph {
  if (src.float !== "float32") throw new Error("half precision: the source graph must be float32");
  const contrib = src.ops.find((op) => op.domain);
  if (contrib) throw new Error(`half precision: ${contrib.domain} op ${contrib.type} cannot be converted`);
  const emulate = opts.emulate ?? false;
  const halfDtype: DType = emulate ? "float32" : "float16";
  const keep = float32Ops(src);
  const g = new Graph("float32");
  const initData = new Map<Value, TensorData>(src.initializers.map((i) => [i.value, i.data]));
  const saturated = new Set<string>();
  const outputNames = new Set(src.outputs.map((o) => o.name));
  /** Each source value's versions in the new graph; non-float values only have `float32`. */
  const versions = new Map<Value, Partial<Record<Mode, Value>>>();

  /** float32 → float16 (emulated: → float16 → float32, i.e. rounded in place). */
  const toHalf = (v: Value): Value => {
    const half = g.record("Cast", [v], { to: onnxTypeCode("float16") }, [
      { name: `${v.name}_f16`, dtype: "float16", shape: v.shape },
    ])[0];
    return emulate ? toFloat32(half) : half;
  };
  const toFloat32 = (v: Value): Value =>
    g.record("Cast", [v], { to: onnxTypeCode("float32") }, [
      { name: `${v.name}_f32`, dtype: "float32", shape: v.shape },
    ])[0];

  const initializer = (v: Value, mode: Mode): Value => {
    const data = initData.get(v)!;
    const shape = v.shape as number[];
    if (!isFloat(v) || mode === "float32") {
      return v.dtype === "int64"
        ? g.ints(Array.from(data as BigInt64Array, Number), shape, v.name)
        : v.dtype === "int8"
          ? g.int8Weight(v.name, data as Int8Array, shape)
          : g.weight(v.name, data as Float32Array, shape);
    }
    const clamped = Array.from(data as Float32Array, (x) => Math.max(-FLOAT16_MAX, Math.min(FLOAT16_MAX, x)));
    if (clamped.some((x, i) => x !== data[i])) saturated.add(v.name);
    if (emulate) return g.weight(`${v.name}_f16`, clamped.map(roundToFloat16), shape);
    return g.float16Weight(`${v.name}_f16`, Uint16Array.from(clamped, float16Bits), shape);
  };

  const get = (v: Value, mode: Mode): Value => {
    const m: Mode = isFloat(v) ? mode : "float32";
    const have = versions.get(v) ?? {};
    if (have[m]) return have[m];
    let made: Value;
    if (initData.has(v)) made = initializer(v, m);
    else if (m === "half") made = toHalf(have.float32!);
    else made = emulate ? have.half! : toFloat32(have.half!);
    versions.set(v, { ...have, [m]: made });
    return made;
  };

  for (const v of src.inputs) versions.set(v, { float32: g.input(v.name, v.dtype, v.shape) });

  for (const op of src.ops) {
    const mode: Mode = keep.has(op) ? "float32" : "half";
    const outs = op.outputs.map((o) => ({
      name: outputNames.has(o.name) ? `${o.name}_inner` : o.name,
      dtype: isFloat(o) && mode === "half" ? halfDtype : o.dtype,
      shape: o.shape,
    }));
    let inputs: Value[];
    let attrs = op.attrs;
    if (op.type === "Cast") {
      // A cast to float becomes a cast to float16 in a half op; a cast from float reads either version.
      const x = op.inputs[0];
      const have = versions.get(x) ?? {};
      inputs = [isFloat(x) && !initData.has(x) ? (have.float32 ?? have.half!) : get(x, mode)];
      if (isFloat(op.outputs[0])) attrs = { to: onnxTypeCode(outs[0].dtype) };
    } else {
      inputs = op.inputs.map((v) => get(v, mode));
    }
    const made = g.record(op.type, inputs, { ...attrs }, outs, op.domain);
    op.outputs.forEach((o, i) => {
      let v = made[i];
      // Emulation: a float16 op's output is rounded as float16 storage would round it.
      if (emulate && mode === "half" && isFloat(o)) v = toHalf(v);
      versions.set(o, { [isFloat(o) ? mode : "float32"]: v });
    });
  }

  for (const o of src.outputs) {
    const have = versions.get(o)!;
    const v = have.float32 ?? (emulate ? have.half! : toFloat32(have.half!));
    const out = g.output(o.name, v);
    if (out.name !== o.name) throw new Error(`half precision: output ${o.name} could not keep its name`);
  }
  return { graph: g, float32Ops: keep.size, saturated: [...saturated] };
}
