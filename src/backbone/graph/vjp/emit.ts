/**
 * Small op emitters the VJP rules share. Everything here appends ordinary opset-17 ONNX ops to the
 * graph being differentiated, in its float dtype; shapes given to `record` are the forward values'
 * shapes, so a gradient always carries the (possibly symbolic) shape of the value it belongs to.
 */
import type { DType, Graph, TensorData, Value } from "../graph.js";
import type { Dim, Shape } from "../shape.js";

const isStatic = (s: Shape): s is readonly number[] => s.every((d) => typeof d === "number");

export class Emit {
  private readonly scalars = new Map<number, Value>();

  constructor(
    readonly g: Graph,
    private readonly constants: ReadonlyMap<string, TensorData>,
  ) {}

  op(
    type: string,
    inputs: Value[],
    attrs: Record<string, number | number[]>,
    shape: Shape,
    dtype: DType = this.g.float,
  ): Value {
    return this.g.record(type, inputs, attrs, [{ name: `grad_${type.toLowerCase()}`, dtype, shape }])[0];
  }

  /** A float scalar constant, one initializer per distinct value. */
  scalar(v: number): Value {
    let s = this.scalars.get(v);
    if (!s) this.scalars.set(v, (s = this.g.floats([v], [], "grad_const")));
    return s;
  }

  /** The values of an int64 initializer (axes, starts, split sizes); null when computed at run time. */
  constInts(v: Value | undefined): number[] | null {
    const data = v && this.constants.get(v.name);
    return data instanceof BigInt64Array ? Array.from(data, Number) : null;
  }

  /** int64 [rank] shape of `x`: a constant when static, a Shape op otherwise. */
  shapeOf(x: Value): Value {
    return isStatic(x.shape) ? this.g.ints([...x.shape], [x.shape.length], "grad_shape") : this.g.shapeOf(x);
  }

  /** int64 [1] size of `x` along `axis`. */
  dimOf(x: Value, axis: number): Value {
    const d = x.shape[axis];
    if (typeof d === "number") return this.g.ints([d], [1], "grad_dim");
    return this.op("Shape", [x], { start: axis, end: axis + 1 }, [1], "int64");
  }

  /** Reshape `d` to the run-time shape of `x` (allowzero: a zero-size dim stays zero). */
  reshapeLike(d: Value, x: Value): Value {
    return this.op("Reshape", [d, this.shapeOf(x)], { allowzero: 1 }, x.shape);
  }

  expandLike(d: Value, x: Value): Value {
    return this.op("Expand", [d, this.shapeOf(x)], {}, x.shape);
  }

  zerosLike(x: Value): Value {
    return this.expandLike(this.scalar(0), x);
  }

  where(cond: Value, a: Value, b: Value, shape: Shape): Value {
    return this.op("Where", [cond, a, b], {}, shape);
  }

  compare(type: "Greater" | "GreaterOrEqual" | "Equal", a: Value, b: Value, shape: Shape): Value {
    return this.op(type, [a, b], {}, shape, "bool");
  }

  /** Swap the last two axes. */
  transposeLast(x: Value): Value {
    const r = x.shape.length;
    const perm = [...Array(r).keys()];
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    return this.g.transpose(x, perm);
  }

  /**
   * Sums the gradient `d` of a broadcast result back to the shape of operand `x`: over the leading
   * axes `x` lacks and over the axes where `x` has size 1. A symbolic dim of `x` that differs from
   * the result's dim might be 1 at run time, so those cases reduce over the axes whose run-time size
   * in `x` is 1 (NonZero of Shape(x) == 1).
   */
  unbroadcast(d: Value, x: Value): Value {
    const lead = d.shape.length - x.shape.length;
    const inner: number[] = [];
    let dynamic = false;
    x.shape.forEach((dim, i) => {
      const o = d.shape[lead + i];
      if (dim === o) return;
      if (dim === 1) inner.push(lead + i);
      else if (typeof dim === "string") dynamic = true;
      // A static dim ≠ 1 against a symbolic one: x was not broadcast along it.
    });
    let out = d;
    if (inner.length) out = this.g.reduceSum(out, inner, true);
    if (lead > 0) out = this.g.reduceSum(out, [...Array(lead).keys()], false);
    if (dynamic) {
      const ones = this.compare("Equal", this.g.shapeOf(x), this.g.ints([1], [1], "grad_one"), [x.shape.length]);
      const axes = this.g.reshape(this.op("NonZero", [ones], {}, [1, "axes"], "int64"), [-1], ["axes"]);
      out = this.op("ReduceSum", [out, axes], { keepdims: 1, noop_with_empty_axes: 1 }, x.shape);
    }
    // Without the dynamic step the reductions above already yield exactly x's recorded shape.
    return out;
  }
}

export function staticSize(dims: readonly Dim[]): number | null {
  return isStatic(dims) ? dims.reduce((p, q) => p * q, 1) : null;
}
