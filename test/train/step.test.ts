/**
 * The whole parameter gradient of one TrainingStep — F forward in TypeScript, the classifier
 * training graph, F's backward chained in TypeScript — against central finite differences of the
 * step's own loss with respect to every element sampled from every adapter tensor, for the prompt
 * and prefix variants, pooling and non-pooling F, with and without dropout on z.
 *
 * Precision. The step runs its graph in float64, but the adapter tensors are Float32Arrays and F's
 * output z is a Float32Array, so the loss is L(θ) = L64(round32(z(θ))); and the backbone's ReLUs
 * make L only piecewise smooth. Two measured consequences fix the design:
 *  - With arbitrary float32 values, z's rounding differs between θ + h and θ − h; its effect on the
 *    quotient grows like 2^-24·|z|/h and is ~1e-3 relative at h ≈ 2^-12 for pool.weight, which moves
 *    all L·W elements of z at once. So no rounding is allowed anywhere: h_p is on a 2^-3 grid, every
 *    tensor's base values on a coarse grid (2^-6; 2^-9 for the prompt variant's non-pooling
 *    proj.weight, which keeps its soft-prompt rows token-sized) and h = 2^-16. Then θ ± h and θ ± 2h
 *    are exact in float32, F's float64 accumulation is exact (every product and partial sum lies on
 *    the 2^-25 grid, far inside 53 bits), and z and z·(z dropout: 0 or 2, p = 0.5) are exact in
 *    float32 (pooling needs |z| < 1/2 for that; non-pooling z lies on the 2^-19 grid). The test
 *    asserts that premise on every evaluation that moves z (`expectExactZ`).
 *  - Along pool.weight (prompt variant, pooling) the loss crosses a ReLU kink every ~2^-11 and its
 *    derivative jumps by ~2e-3 relative there (central differences at h = 2^-8 … 2^-12 were off by
 *    4e-2 … 1e-3 even with z exact): a central difference over ±h that straddles a kink is wrong by
 *    up to half the jump, whatever the code. Each sample therefore evaluates θ ± h and θ ± 2h and
 *    compares the three second differences centred on −h, 0, h: smooth L makes them equal up to
 *    2·L'''·h³; a kink inside (−2h, 2h) adds Δ·(h − |d − c|)⁺ to the one centred on c. A kink's error
 *    in the central difference is at most spread/(2h), so samples whose spread exceeds
 *    2e-5·h·max|gradient| are set aside (at most a quarter of them may be; the count is printed) and
 *    the rest carry an error of at most 1e-5 from kinks. Setting samples aside compares finite
 *    differences with each other only, never with the analytic gradient, so it cannot hide a bug.
 *    The loss is smooth in the head's tensors, which are checked with θ ± h alone.
 *    (At h = 2^-13 this sets aside about half of pool.weight's samples, at h = 2^-16 none.)
 * What is left: float64 evaluation noise (~1e-15/h ≈ 1e-10), truncation L'''·h²/6 (~1e-10) and the
 * step returning its gradients as Float32Arrays (6e-8 relative), which is what the printed errors
 * (≤ 1e-7) show: relative error ≤ 1e-4 is an honest bound with a wide margin.
 */
import { beforeAll, describe, expect, it } from "vitest";
import type { AdapterTensor } from "../../src/adapters/format.js";
import { expectedShapes, numel, outputWidth, type ProblemType, type Variant } from "../../src/adapters/spec.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { TrainingStep, type StepInput, type StepModel } from "../../src/train/step.js";
import { relativeError } from "../helpers/finite-diff.js";
import { seededRandom } from "../helpers/numeric.js";

let weights: UseLiteWeights;
const dims = USE_LITE_DIMS;
const H = dims.hiddenDim;
const L = 3;
const h = 2 ** -16;
const PER_TENSOR = 30;

beforeAll(async () => {
  weights = mapUseLiteWeights((await readUseLitePackage()).weights);
});

interface Case {
  variant: Variant;
  pooling: boolean;
  problemType: ProblemType;
  C: number;
}

// Each variant × F form once; every problem type appears.
const CASES: Case[] = [
  { variant: "prompt", pooling: true, problemType: "single_label_classification", C: 3 },
  { variant: "prompt", pooling: false, problemType: "regression", C: 1 },
  { variant: "prefix", pooling: true, problemType: "multi_label_classification", C: 2 },
  { variant: "prefix", pooling: false, problemType: "single_label_classification", C: 3 },
];

/** Base values: multiples of `grid`, at most 6 grid steps from zero (|v| ≤ 0.094 for 2^-6). */
function gridOf(c: Case, name: string): number {
  return c.variant === "prompt" && !c.pooling && name === "proj.weight" ? 2 ** -9 : 2 ** -6;
}

function makeInput(c: Case, seed: number, withZDropout: boolean): StepInput {
  const rand = seededRandom(seed);
  const labels = Array.from({ length: c.C }, (_, i) => `l${i}`);
  const shapes = expectedShapes(
    { variant: c.variant, pooling: c.pooling, promptLength: L, problemType: c.problemType, labels },
    dims,
  );
  const tensors: Record<string, AdapterTensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const grid = gridOf(c, name);
    tensors[name] = {
      shape,
      data: Float32Array.from({ length: numel(shape) }, () => (Math.floor(rand() * 13) - 6) * grid),
    };
  }
  // h_p is a constant input of the step: random rows on a 2^-3 grid in [−1, 1] (norm ≈ 13, like
  // the real semantic pass's ≈ 15).
  const hp = Float32Array.from({ length: L * H }, () => (Math.floor(rand() * 17) - 8) / 8);
  const rows = [
    { ids: [17, 251, 1203, 42], target: 0 },
    { ids: [5, 9], target: 1 },
    { ids: [77, 300, 8, 1000, 64], target: c.C - 1 },
  ].map((r, b) => (c.problemType === "regression" ? { ids: r.ids, target: [0.7, -0.4, 1.3][b] } : r));
  const mask = (n: number, p: number) => Float32Array.from({ length: n }, () => (rand() < p ? 0 : 1 / (1 - p)));
  return {
    tensors,
    hp,
    rows,
    zDropout: withZDropout ? mask(L * outputWidth(c.variant, dims), 0.5) : null,
    // Any multipliers are exact here (the graph takes them as float64 constants): the trainer's p = 0.1.
    pooledDropout: mask(rows.length * H, 0.1),
  };
}

/** F in float64, written out independently of src/adapters/transform.ts. */
function referenceZ(c: Case, t: Record<string, AdapterTensor>, hp: Float32Array): Float64Array {
  const W = outputWidth(c.variant, dims);
  const proj = t["proj.weight"].data;
  const bias = t["proj.bias"].data;
  const z = new Float64Array(L * W);
  if (c.pooling) {
    const a = Array.from({ length: L }, (_, l) => {
      let s = t["pool.bias"].data[0];
      for (let i = 0; i < H; i++) s += hp[l * H + i] * t["pool.weight"].data[i];
      return s;
    });
    for (let j = 0; j < L * W; j++) z[j] = bias[j] + a.reduce((s, al, l) => s + proj[j * L + l] * al, 0);
  } else {
    for (let l = 0; l < L; l++)
      for (let j = 0; j < W; j++) {
        let s = bias[j];
        for (let i = 0; i < H; i++) s += hp[l * H + i] * proj[j * H + i];
        z[l * W + j] = s;
      }
  }
  return z;
}

/** The premise of the precision argument: z and z ⊙ z-dropout are exact in float32. */
function expectExactZ(c: Case, input: StepInput): void {
  const z = referenceZ(c, input.tensors, input.hp);
  for (let j = 0; j < z.length; j++) {
    const v = input.zDropout ? z[j] * input.zDropout[j] : z[j];
    if (Math.fround(v) !== v) expect.fail(`z[${j}] = ${v} is not exact in float32`);
  }
}

/** ~PER_TENSOR distinct indices of a tensor (all of them when it is smaller). */
function sample(n: number, rand: () => number): number[] {
  if (n <= PER_TENSOR) return [...Array(n).keys()];
  const picked = new Set<number>();
  while (picked.size < PER_TENSOR) picked.add(Math.floor(rand() * n));
  return [...picked];
}

describe("TrainingStep: the whole parameter gradient vs finite differences of its loss (float64 graph)", () => {
  for (const c of CASES)
    for (const withZDropout of [false, true]) {
      const label = `${c.variant}, ${c.pooling ? "pooling" : "non-pooling"}, ${c.problemType}, z dropout ${withZDropout ? "fixed mask" : "none"}`;
      it(label, async () => {
        const model: StepModel = {
          variant: c.variant,
          pooling: c.pooling,
          promptLength: L,
          problemType: c.problemType,
          outputs: c.C,
        };
        const step = await TrainingStep.create(weights, dims, model, { threads: 1, float: "float64" });
        try {
          const input = makeInput(c, withZDropout ? 12 : 11, withZDropout);
          expectExactZ(c, input);
          const base = await step.run(input);
          expect(Number.isFinite(base.loss)).toBe(true);
          expect(base.logits).toHaveLength(input.rows.length * c.C);
          expect(Object.keys(base.grads).sort()).toEqual(Object.keys(input.tensors).sort());
          // The step leaves its inputs alone: a second run gives the identical loss.
          expect((await step.run(input)).loss).toBe(base.loss);

          const rand = seededRandom(5);
          for (const [name, tensor] of Object.entries(input.tensors)) {
            const grad = base.grads[name];
            expect(grad, name).toHaveLength(tensor.data.length);
            const indices = sample(tensor.data.length, rand);
            const analytic = indices.map((i) => grad[i]);
            const scale = Math.max(1e-8, ...analytic.map(Math.abs));
            const smooth = name.startsWith("head.");
            const kept: { analytic: number; numeric: number }[] = [];
            for (const [k, i] of indices.entries()) {
              const keep = tensor.data[i];
              const lossAt = async (steps: number): Promise<number> => {
                tensor.data[i] = keep + steps * h;
                if (tensor.data[i] !== keep + steps * h)
                  expect.fail(`${name}[${i}] ± ${steps}h is not exact in float32`);
                if (!smooth) expectExactZ(c, input);
                return (await step.run(input)).loss;
              };
              const [m1, p1] = [await lossAt(-1), await lossAt(1)];
              // The loss is smooth in the head's parameters (no ReLU after the head): no kink to look for.
              const [m2, p2] = smooth ? [NaN, NaN] : [await lossAt(-2), await lossAt(2)];
              tensor.data[i] = keep;
              const second = [m2 - 2 * m1 + base.loss, p1 - 2 * base.loss + m1, p2 - 2 * p1 + base.loss];
              if (smooth || Math.max(...second) - Math.min(...second) <= 2e-5 * h * scale)
                kept.push({ analytic: analytic[k], numeric: (p1 - m1) / (2 * h) });
            }
            const err = relativeError(
              kept.map((s) => s.analytic),
              kept.map((s) => s.numeric),
            );
            console.log(
              `${label} — ${name}: relative error ${err.toExponential(2)} over ${kept.length} of ${indices.length} elements (${indices.length - kept.length} straddle a kink)`,
            );
            expect(kept.length, `${name}: samples clear of kinks`).toBeGreaterThanOrEqual(
              Math.max(1, Math.ceil(0.75 * indices.length)),
            );
            expect(err, name).toBeLessThanOrEqual(1e-4);
            expect(
              analytic.some((v) => v !== 0),
              `${name} has a nonzero gradient`,
            ).toBe(true);
          }
        } finally {
          await step.release();
        }
      });
    }
});
