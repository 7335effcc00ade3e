/**
 * Vector-Jacobian product rules, one per ONNX op type. A rule receives the op, the gradient of each
 * of its outputs (null where none flows) and `needs(i)`, and returns the gradient contribution for
 * each input (null where not needed: frozen weights, masks, shapes). Rules only emit opset-17 ops.
 */
import { onnxTypeCode, type OpRecord, type Value } from "../graph.js";
import { Emit, staticSize } from "./emit.js";

export interface VjpContext {
  e: Emit;
  op: OpRecord;
  /** Gradient of each output; rules of single-output ops may assume dy[0] is set. */
  dy: (Value | null)[];
  /** Whether input i wants a gradient. */
  needs: (i: number) => boolean;
}

export type VjpRule = (c: VjpContext) => (Value | null)[];

/** Ops whose float outputs are piecewise constant or index-valued in their float inputs. */
export const NO_GRADIENT_OPS = new Set([
  "Range",
  "Shape",
  "Size",
  "Floor",
  "Ceil",
  "Round",
  "Sign",
  "Equal",
  "Less",
  "Greater",
  "LessOrEqual",
  "GreaterOrEqual",
  "NonZero",
  "ConstantOfShape",
]);

const when = (need: boolean, f: () => Value): Value | null => (need ? f() : null);

/** y = f(x) elementwise: dx = dy ⊙ f'(x), with f' built by `deriv`. */
function unary(deriv: (c: VjpContext, x: Value, y: Value, d: Value) => Value): VjpRule {
  return (c) => [deriv(c, c.op.inputs[0], c.op.outputs[0], c.dy[0]!)];
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Reduction axes of ReduceSum/ReduceMean (attribute or constant input), normalised and sorted. */
function reductionAxes(c: VjpContext): number[] {
  const { op, e } = c;
  const rank = op.inputs[0].shape.length;
  let axes: number[] | null;
  if (op.type === "ReduceSum" && op.inputs.length > 1) {
    axes = e.constInts(op.inputs[1]);
    if (!axes) throw new Error("autodiff: ReduceSum with run-time axes is not supported");
  } else axes = (op.attrs.axes as number[] | undefined) ?? [];
  if (axes.length === 0) return op.attrs.noop_with_empty_axes === 1 ? [] : [...Array(rank).keys()];
  return axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
}

function reduceRule(c: VjpContext): (Value | null)[] {
  const { e, op } = c;
  const [x] = op.inputs;
  const axes = reductionAxes(c);
  const keep = (op.attrs.keepdims ?? 1) === 1;
  if (axes.length === 0) return [c.dy[0]];
  // Put the reduced axes back as size 1, then broadcast over them.
  let d = c.dy[0]!;
  if (!keep) d = e.g.unsqueeze(d, axes);
  if (op.type === "ReduceMean") {
    const count = staticSize(axes.map((a) => x.shape[a]));
    const n =
      count !== null
        ? e.scalar(count)
        : e.op(
            "Cast",
            [
              e.op(
                "ReduceProd",
                [e.op("Gather", [e.g.shapeOf(x), e.g.ints(axes)], { axis: 0 }, [axes.length], "int64")],
                { keepdims: 0 },
                [],
                "int64",
              ),
            ],
            { to: onnxTypeCode(e.g.float) },
            [],
          );
    d = e.g.div(d, n);
  }
  return [e.expandLike(d, x)];
}

function matmulRule(c: VjpContext): (Value | null)[] {
  const { e, op, needs } = c;
  const [a, b] = op.inputs;
  const d = c.dy[0]!;
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error("autodiff: MatMul of rank-1 operands is not supported");
  // Batch dims broadcast like elementwise ops, so the per-batch products are summed back.
  return [
    when(needs(0), () => e.unbroadcast(e.g.matmul(d, e.transposeLast(b)), a)),
    when(needs(1), () => e.unbroadcast(e.g.matmul(e.transposeLast(a), d), b)),
  ];
}

function concatRule(c: VjpContext): (Value | null)[] {
  const { e, op, needs } = c;
  const rank = op.outputs[0].shape.length;
  const axis = normAxis(op.attrs.axis as number, rank);
  const dims = op.inputs.map((x) => x.shape[axis]);
  const sizes = dims.every((d) => typeof d === "number")
    ? e.g.ints(dims, [dims.length], "grad_split")
    : e.g.concat(
        op.inputs.map((x) => e.dimOf(x, axis)),
        0,
      );
  const parts = e.g.record(
    "Split",
    [c.dy[0]!, sizes],
    { axis },
    op.inputs.map((x) => ({ name: "grad_split", dtype: e.g.float, shape: x.shape })),
  );
  return parts.map((p, i) => (needs(i) ? p : null));
}

function splitRule(c: VjpContext): (Value | null)[] {
  const { e, op } = c;
  const axis = normAxis((op.attrs.axis as number | undefined) ?? 0, op.inputs[0].shape.length);
  const parts = op.outputs.map((y, i) => c.dy[i] ?? e.zerosLike(y));
  return [parts.length === 1 ? parts[0] : e.op("Concat", parts, { axis }, op.inputs[0].shape)];
}

/** Slice with step 1: the gradient is dy zero-padded back to x's extent on each sliced axis. */
function sliceRule(c: VjpContext): (Value | null)[] {
  const { e, op } = c;
  const [x, startsV, endsV, axesV, stepsV] = op.inputs;
  const y = op.outputs[0];
  const rank = x.shape.length;
  const starts = e.constInts(startsV);
  const ends = e.constInts(endsV);
  const axes = axesV ? e.constInts(axesV) : starts && [...starts.keys()];
  const steps = stepsV ? e.constInts(stepsV) : null;
  if (!starts || !ends || !axes) throw new Error("autodiff: Slice needs constant starts/ends/axes");
  if (steps && steps.some((s) => s !== 1)) throw new Error("autodiff: Slice with step ≠ 1 is not supported");
  const before: Value[] = [];
  const after: Value[] = [];
  const pad = (v: number) => e.g.ints([v], [1], "grad_pad");
  for (let i = 0; i < rank; i++) {
    const k = axes.findIndex((a) => normAxis(a, rank) === i);
    if (k < 0) {
      before.push(pad(0));
      after.push(pad(0));
      continue;
    }
    const n = x.shape[i];
    if (typeof n === "number") {
      const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
      const b = clamp(starts[k]);
      before.push(pad(b));
      after.push(pad(n - Math.max(b, clamp(ends[k]))));
      continue;
    }
    // Run time: before = clamp(start, 0, n); after = n − before − len(y).
    const s = starts[k];
    const dim = e.dimOf(x, i);
    const b =
      s >= 0
        ? e.op("Min", [pad(s), dim], {}, [1], "int64")
        : e.op("Max", [e.g.add(dim, pad(s)), pad(0)], {}, [1], "int64");
    before.push(b);
    after.push(e.g.sub(e.g.sub(dim, b), e.op("Shape", [y], { start: i, end: i + 1 }, [1], "int64")));
  }
  const pads = e.g.concat([...before, ...after], 0);
  return [e.op("Pad", [c.dy[0]!, pads], {}, x.shape)];
}

function softmaxRule(c: VjpContext): (Value | null)[] {
  const { e, op } = c;
  const y = op.outputs[0];
  const d = c.dy[0]!;
  const axis = normAxis((op.attrs.axis as number | undefined) ?? -1, y.shape.length);
  // dx = y ⊙ (dy − Σ_axis dy ⊙ y)
  const dot = e.g.reduceSum(e.g.mul(d, y), [axis], true);
  return [e.g.mul(y, e.g.sub(d, dot))];
}

function maxRule(c: VjpContext): (Value | null)[] {
  const { e, op, needs } = c;
  if (op.inputs.length !== 2) throw new Error("autodiff: Max with other than two inputs is not supported");
  const [a, b] = op.inputs;
  const y = op.outputs[0];
  const d = c.dy[0]!;
  // Ties (a == b) send the whole gradient to the first input: one consistent subgradient.
  const firstWins = e.compare("GreaterOrEqual", a, b, y.shape);
  const zero = e.scalar(0);
  return [
    when(needs(0), () => e.unbroadcast(e.where(firstWins, d, zero, y.shape), a)),
    when(needs(1), () => e.unbroadcast(e.where(firstWins, zero, d, y.shape), b)),
  ];
}

function castRule(c: VjpContext): (Value | null)[] {
  const { e, op } = c;
  const x = op.inputs[0];
  if (x.dtype !== "float32" && x.dtype !== "float64") return [null];
  const d = c.dy[0]!;
  return [d.dtype === x.dtype ? d : e.op("Cast", [d], { to: onnxTypeCode(x.dtype) }, x.shape, x.dtype)];
}

const reshapeBack: VjpRule = (c) => [c.e.reshapeLike(c.dy[0]!, c.op.inputs[0])];

export const VJP_RULES: Readonly<Record<string, VjpRule>> = {
  Identity: (c) => [c.dy[0]],
  Neg: (c) => [c.e.g.neg(c.dy[0]!)],
  Add: ({ e, op, dy, needs }) => op.inputs.map((x, i) => when(needs(i), () => e.unbroadcast(dy[0]!, x))),
  Sub: ({ e, op, dy, needs }) => [
    when(needs(0), () => e.unbroadcast(dy[0]!, op.inputs[0])),
    when(needs(1), () => e.g.neg(e.unbroadcast(dy[0]!, op.inputs[1]))),
  ],
  Mul: ({ e, op, dy, needs }) => {
    const [a, b] = op.inputs;
    return [
      when(needs(0), () => e.unbroadcast(e.g.mul(dy[0]!, b), a)),
      when(needs(1), () => e.unbroadcast(e.g.mul(dy[0]!, a), b)),
    ];
  },
  Div: ({ e, op, dy, needs }) => {
    const [a, b] = op.inputs;
    const y = op.outputs[0];
    return [
      when(needs(0), () => e.unbroadcast(e.g.div(dy[0]!, b), a)),
      // d(a/b)/db = −y/b
      when(needs(1), () => e.g.neg(e.unbroadcast(e.g.div(e.g.mul(dy[0]!, y), b), b))),
    ];
  },
  Max: maxRule,
  Sqrt: unary(({ e }, _x, y, d) => e.g.div(e.g.mul(d, e.scalar(0.5)), y)),
  Relu: unary(({ e }, x, y, d) => e.where(e.compare("Greater", x, e.scalar(0), y.shape), d, e.scalar(0), y.shape)),
  Tanh: unary(({ e }, _x, y, d) => e.g.mul(d, e.g.sub(e.scalar(1), e.g.mul(y, y)))),
  Exp: unary(({ e }, _x, y, d) => e.g.mul(d, y)),
  Log: unary(({ e }, x, _y, d) => e.g.div(d, x)),
  Sin: unary(({ e }, x, _y, d) => e.g.mul(d, e.g.cos(x))),
  Cos: unary(({ e }, x, _y, d) => e.g.neg(e.g.mul(d, e.g.sin(x)))),
  // erf'(x) = 2/√π · exp(−x²)
  Erf: unary(({ e }, x, _y, d) =>
    e.g.mul(d, e.g.mul(e.g.exp(e.g.neg(e.g.mul(x, x))), e.scalar(2 / Math.sqrt(Math.PI)))),
  ),
  Sigmoid: unary(({ e }, _x, y, d) => e.g.mul(d, e.g.mul(y, e.g.sub(e.scalar(1), y)))),
  Softmax: softmaxRule,
  MatMul: matmulRule,
  ReduceSum: reduceRule,
  ReduceMean: reduceRule,
  Transpose: ({ e, op, dy }) => {
    const rank = op.inputs[0].shape.length;
    const perm = (op.attrs.perm as number[] | undefined) ?? [...Array(rank).keys()].reverse();
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [e.g.transpose(dy[0]!, inverse)];
  },
  Reshape: reshapeBack,
  Unsqueeze: reshapeBack,
  Squeeze: reshapeBack,
  Flatten: reshapeBack,
  Expand: ({ e, op, dy }) => [e.unbroadcast(dy[0]!, op.inputs[0])],
  Concat: concatRule,
  Split: splitRule,
  Slice: sliceRule,
  Cast: castRule,
};
