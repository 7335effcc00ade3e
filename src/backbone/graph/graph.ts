/**
 * A small typed graph builder. Networks are written once against this API; it records every op
 * (type, inputs, outputs, attributes, output shapes) so the same record can be serialised to ONNX
 * for serving (see `onnx.ts`) and walked backwards for gradients (see `autodiff.ts`).
 */
import { broadcastShapes, type Dim, type Shape } from "./shape.js";

export type DType = "float32" | "float64" | "float16" | "int64" | "int8" | "bool";

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

export interface Value {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export interface OpRecord {
  readonly type: string;
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  /** Operator set domain; absent for the standard ONNX ops ("com.microsoft": onnxruntime's contrib ops). */
  readonly domain?: string;
}

/** float16 tensors hold their IEEE half-precision bit patterns in a Uint16Array (see graph/half.ts). */
export type TensorData = Float32Array | Float64Array | Uint16Array | BigInt64Array | Int8Array;

export interface Initializer {
  readonly value: Value;
  readonly data: TensorData;
}

export class Graph {
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly initializers: Initializer[] = [];
  readonly ops: OpRecord[] = [];
  private readonly used = new Set<string>();
  private counter = 0;

  /** `float` is the dtype of every float tensor in this graph (float64 for gradient checks). */
  constructor(readonly float: "float32" | "float64" = "float32") {}

  private uniqueName(base: string): string {
    let name = base;
    while (this.used.has(name)) name = `${base}_${++this.counter}`;
    this.used.add(name);
    return name;
  }

  private value(name: string, dtype: DType, shape: Shape): Value {
    return Object.freeze({ name: this.uniqueName(name), dtype, shape: Object.freeze([...shape]) });
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    if (this.used.has(name)) throw new Error(`graph: duplicate input name ${name}`);
    const v = this.value(name, dtype, shape);
    this.inputs.push(v);
    return v;
  }

  /** A float initializer in the graph's float dtype (converted from whatever array is given). */
  weight(name: string, data: Float32Array | Float64Array | number[], shape: number[]): Value {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size)
      throw new Error(`graph: ${name} has ${data.length} values, shape [${shape}] needs ${size}`);
    const typed = this.float === "float64" ? Float64Array.from(data) : Float32Array.from(data);
    return this.addInitializer(name, this.float, shape, typed);
  }

  /** An int64 constant (shapes, axes, indices). */
  ints(values: number[], shape: number[] = [values.length], name = "const_i64"): Value {
    return this.addInitializer(name, "int64", shape, BigInt64Array.from(values.map((v) => BigInt(v))));
  }

  /** An int8 initializer (quantized weights). */
  int8Weight(name: string, data: Int8Array, shape: number[]): Value {
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size)
      throw new Error(`graph: ${name} has ${data.length} values, shape [${shape}] needs ${size}`);
    return this.addInitializer(name, "int8", shape, data);
  }

  /** A float16 initializer given as IEEE half-precision bit patterns (see graph/half.ts). */
  float16Weight(name: string, bits: Uint16Array, shape: number[]): Value {
    const size = shape.reduce((a, b) => a * b, 1);
    if (bits.length !== size)
      throw new Error(`graph: ${name} has ${bits.length} values, shape [${shape}] needs ${size}`);
    return this.addInitializer(name, "float16", shape, bits);
  }

  /** A float scalar or vector constant in the graph's float dtype. */
  floats(values: number[], shape: number[] = [], name = "const_f"): Value {
    return this.weight(this.uniqueName(name), values, shape);
  }

  private addInitializer(name: string, dtype: DType, shape: number[], data: TensorData): Value {
    const value = this.value(name, dtype, shape);
    this.initializers.push({ value, data });
    return value;
  }

  output(name: string, v: Value): Value {
    // Graph outputs must carry their public name; route through Identity when it differs.
    const out = v.name === name ? v : this.record("Identity", [v], {}, [{ name, dtype: v.dtype, shape: v.shape }])[0];
    this.outputs.push(out);
    return out;
  }

  /** Records one op. `outs` gives each output's name hint, dtype and shape. */
  record(
    type: string,
    inputs: Value[],
    attrs: Record<string, AttrValue>,
    outs: { name: string; dtype: DType; shape: Shape }[],
    domain?: string,
  ): Value[] {
    const outputs = outs.map((o) => this.value(o.name, o.dtype, o.shape));
    this.ops.push(
      Object.freeze({
        type,
        inputs: Object.freeze([...inputs]),
        outputs: Object.freeze(outputs),
        attrs: Object.freeze({ ...attrs }),
        ...(domain ? { domain } : {}),
      }),
    );
    return outputs;
  }

  private unary(
    type: string,
    x: Value,
    attrs: Record<string, AttrValue> = {},
    shape: Shape = x.shape,
    dtype: DType = x.dtype,
  ): Value {
    return this.record(type, [x], attrs, [{ name: type.toLowerCase(), dtype, shape }])[0];
  }

  private binary(type: string, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`graph: ${type} of ${a.dtype} and ${b.dtype}`);
    const dtype = type === "Equal" || type === "Less" || type === "Greater" ? "bool" : a.dtype;
    return this.record(type, [a, b], {}, [
      { name: type.toLowerCase(), dtype, shape: broadcastShapes(a.shape, b.shape) },
    ])[0];
  }

  add(a: Value, b: Value): Value {
    return this.binary("Add", a, b);
  }
  sub(a: Value, b: Value): Value {
    return this.binary("Sub", a, b);
  }
  mul(a: Value, b: Value): Value {
    return this.binary("Mul", a, b);
  }
  div(a: Value, b: Value): Value {
    return this.binary("Div", a, b);
  }
  max(a: Value, b: Value): Value {
    return this.binary("Max", a, b);
  }
  min(a: Value, b: Value): Value {
    return this.binary("Min", a, b);
  }
  sqrt(x: Value): Value {
    return this.unary("Sqrt", x);
  }
  relu(x: Value): Value {
    return this.unary("Relu", x);
  }
  tanh(x: Value): Value {
    return this.unary("Tanh", x);
  }
  sin(x: Value): Value {
    return this.unary("Sin", x);
  }
  cos(x: Value): Value {
    return this.unary("Cos", x);
  }
  neg(x: Value): Value {
    return this.unary("Neg", x);
  }
  exp(x: Value): Value {
    return this.unary("Exp", x);
  }
  log(x: Value): Value {
    return this.unary("Log", x);
  }
  identity(x: Value): Value {
    return this.unary("Identity", x);
  }
  erf(x: Value): Value {
    return this.unary("Erf", x);
  }
  sigmoid(x: Value): Value {
    return this.unary("Sigmoid", x);
  }
  /** Elementwise a > b as bool. */
  greater(a: Value, b: Value): Value {
    return this.binary("Greater", a, b);
  }

  /** Elementwise `cond ? a : b` (bool `cond`; the three broadcast together). */
  where(cond: Value, a: Value, b: Value): Value {
    if (cond.dtype !== "bool") throw new Error("graph: Where wants a bool condition");
    if (a.dtype !== b.dtype) throw new Error(`graph: Where of ${a.dtype} and ${b.dtype}`);
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape), b.shape);
    return this.record("Where", [cond, a, b], {}, [{ name: "where", dtype: a.dtype, shape }])[0];
  }

  softmax(x: Value, axis = -1): Value {
    return this.unary("Softmax", x, { axis });
  }

  cast(x: Value, to: DType): Value {
    return this.unary("Cast", x, { to: onnxTypeCode(to) }, x.shape, to);
  }

  matmul(a: Value, b: Value): Value {
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error("graph: MatMul wants rank ≥ 2 operands");
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    const shape = [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]];
    return this.record("MatMul", [a, b], {}, [{ name: "matmul", dtype: a.dtype, shape }])[0];
  }

  /**
   * a · dequantize(b) + bias, with `a` quantized per tensor to uint8 at run time: onnxruntime's
   * contrib DynamicQuantizeMatMul (CPU). `b` int8 [K, N], `scale` float [N] (per column) or [],
   * `zeroPoint` int8 like `scale`.
   */
  dynamicQuantizeMatMul(a: Value, b: Value, scale: Value, zeroPoint: Value, bias: Value): Value {
    if (b.dtype !== "int8" || zeroPoint.dtype !== "int8") throw new Error("graph: DynamicQuantizeMatMul wants int8 B");
    const shape = [...a.shape.slice(0, -1), b.shape[b.shape.length - 1]];
    return this.record(
      "DynamicQuantizeMatMul",
      [a, b, scale, zeroPoint, bias],
      {},
      [{ name: "qmatmul", dtype: a.dtype, shape }],
      "com.microsoft",
    )[0];
  }

  private reduce(type: "ReduceMean" | "ReduceSum", x: Value, axes: number[], keepdims: boolean): Value {
    const rank = x.shape.length;
    const norm = axes.map((a) => (a < 0 ? a + rank : a));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!norm.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    // Opset 17: ReduceSum takes axes as an input, ReduceMean as an attribute.
    if (type === "ReduceSum")
      return this.record(type, [x, this.ints(norm)], { keepdims: keepdims ? 1 : 0 }, [
        { name: "reducesum", dtype: x.dtype, shape },
      ])[0];
    return this.record(type, [x], { axes: norm, keepdims: keepdims ? 1 : 0 }, [
      { name: "reducemean", dtype: x.dtype, shape },
    ])[0];
  }

  reduceMean(x: Value, axes: number[], keepdims = true): Value {
    return this.reduce("ReduceMean", x, axes, keepdims);
  }
  reduceSum(x: Value, axes: number[], keepdims = true): Value {
    return this.reduce("ReduceSum", x, axes, keepdims);
  }

  transpose(x: Value, perm: number[]): Value {
    return this.unary(
      "Transpose",
      x,
      { perm },
      perm.map((p) => x.shape[p]),
    );
  }

  /** `target` uses ONNX Reshape semantics (0 copies a dim, −1 infers); `shape` states the result. */
  reshape(x: Value, target: number[], shape: Shape): Value {
    return this.record("Reshape", [x, this.ints(target)], {}, [{ name: "reshape", dtype: x.dtype, shape }])[0];
  }

  /** Reshape to a shape computed at run time (an int64 value). */
  reshapeTo(x: Value, target: Value, shape: Shape): Value {
    return this.record("Reshape", [x, target], {}, [{ name: "reshape", dtype: x.dtype, shape }])[0];
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const shape: Dim[] = [...x.shape];
    for (const a of [...axes].sort((p, q) => p - q)) shape.splice(a < 0 ? a + shape.length + 1 : a, 0, 1);
    return this.record("Unsqueeze", [x, this.ints(axes)], {}, [{ name: "unsqueeze", dtype: x.dtype, shape }])[0];
  }

  concat(xs: Value[], axis: number): Value {
    const rank = xs[0].shape.length;
    const ax = axis < 0 ? axis + rank : axis;
    const shape = [...xs[0].shape];
    shape[ax] = sumDims(xs.map((x) => x.shape[ax]));
    return this.record("Concat", xs, { axis }, [{ name: "concat", dtype: xs[0].dtype, shape }])[0];
  }

  /** Static slice on one axis: [start, end). */
  slice(x: Value, axis: number, start: number, end: number): Value {
    const shape = [...x.shape];
    const ax = axis < 0 ? axis + shape.length : axis;
    const d = shape[ax];
    shape[ax] = typeof d === "number" ? Math.min(end, d) - start : end - start;
    return this.record("Slice", [x, this.ints([start]), this.ints([end]), this.ints([axis])], {}, [
      { name: "slice", dtype: x.dtype, shape },
    ])[0];
  }

  /** Splits `axis` into equal static parts. */
  split(x: Value, axis: number, parts: number[]): Value[] {
    const ax = axis < 0 ? axis + x.shape.length : axis;
    const outs = parts.map((p) => {
      const shape = [...x.shape];
      shape[ax] = p;
      return { name: "split", dtype: x.dtype, shape };
    });
    return this.record("Split", [x, this.ints(parts)], { axis }, outs);
  }

  /** int64 [rank] shape of `x` at run time. */
  shapeOf(x: Value): Value {
    return this.record("Shape", [x], {}, [{ name: "shape", dtype: "int64", shape: [x.shape.length] }])[0];
  }

  /** Element `index` of an int64 vector, as a scalar. */
  gatherScalar(x: Value, index: number): Value {
    return this.record("Gather", [x, this.ints([index], [])], { axis: 0 }, [
      { name: "gather", dtype: x.dtype, shape: [] },
    ])[0];
  }

  /** Rows of `table` ([N, …]) picked by int64 `indices` (any shape): indices.shape + table.shape[1:]. */
  gather(table: Value, indices: Value): Value {
    if (indices.dtype !== "int64") throw new Error("graph: Gather wants int64 indices");
    return this.record("Gather", [table, indices], { axis: 0 }, [
      { name: "gather", dtype: table.dtype, shape: [...indices.shape, ...table.shape.slice(1)] },
    ])[0];
  }

  /** `data` with the slices named by `indices` ([…, k] int64) replaced by `updates` (ONNX ScatterND). */
  scatterND(data: Value, indices: Value, updates: Value): Value {
    if (indices.dtype !== "int64") throw new Error("graph: ScatterND wants int64 indices");
    return this.record("ScatterND", [data, indices, updates], {}, [
      { name: "scatter", dtype: data.dtype, shape: data.shape },
    ])[0];
  }

  /** 0, 1, … n−1 in dtype of `start`; `length` is the symbolic size. */
  range(start: Value, limit: Value, delta: Value, length: Dim): Value {
    return this.record("Range", [start, limit, delta], {}, [{ name: "range", dtype: start.dtype, shape: [length] }])[0];
  }
}

function sumDims(dims: Dim[]): Dim {
  if (dims.every((d) => typeof d === "number")) return dims.reduce((a, b) => a + b, 0);
  return dims.join("+");
}

export function onnxTypeCode(dtype: DType): number {
  switch (dtype) {
    case "float32":
      return 1;
    case "int8":
      return 3;
    case "int64":
      return 7;
    case "bool":
      return 9;
    case "float16":
      return 10;
    case "float64":
      return 11;
  }
}
