/**
 * The classification head against a naive float64 reference (issue 18, defect 2): the same logits,
 * probabilities and labels for ordinary weights; finite probabilities that sum to 1 for logits far
 * beyond where the naive softmax overflows; and every label in `scores`, whatever its name (defect 5).
 */
import { describe, expect, it } from "vitest";
import { applyHead, prepareFromOutput, sigmoid, softmax } from "../../src/adapters/prepared.js";
import { USE_LITE_DIMS } from "../../src/backbone/dims.js";
import { seededRandom } from "../../src/random.js";
import { makeAdapter, type AdapterOptions } from "../helpers/random-adapter.js";

const H = USE_LITE_DIMS.hiddenDim;

function adapterWith(o: AdapterOptions, headScale = 1, biasOverride?: number[]) {
  const file = makeAdapter(o);
  for (const name of ["head.weight", "head.bias"]) file.tensors[name].data.forEach((v, i, a) => (a[i] = v * headScale));
  if (biasOverride) file.tensors["head.bias"].data.set(biasOverride);
  const z = new Float32Array(file.metadata.promptLength * USE_LITE_DIMS.embedDim);
  return { file, prepared: prepareFromOutput(file, 1, z, USE_LITE_DIMS) };
}

/** The textbook computation in float64, no tricks. */
function naiveHead(weight: Float32Array, bias: Float32Array, pooled: Float32Array, kind: "softmax" | "sigmoid" | "identity"): number[] {
  const logits = Array.from(bias, (b, c) => {
    let s = Number(b);
    for (let i = 0; i < H; i++) s += Number(weight[c * H + i]) * Number(pooled[i]);
    return s;
  });
  if (kind === "identity") return logits;
  if (kind === "sigmoid") return logits.map((x) => 1 / (1 + Math.exp(-x)));
  const e = logits.map((x) => Math.exp(x));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / z);
}

function randomPooled(seed: number, scale = 1): Float32Array {
  const r = seededRandom(seed);
  return Float32Array.from({ length: H }, () => (r() * 2 - 1) * scale);
}

describe("applyHead against a naive float64 reference", () => {
  it.each([
    ["single_label_classification", ["a", "b", "c", "d"], "softmax"],
    ["multi_label_classification", ["x", "y", "z"], "sigmoid"],
    ["regression", ["score"], "identity"],
  ] as const)("%s: same outputs on random weights and states", (problemType, labels, kind) => {
    const { file, prepared } = adapterWith({ problemType, labels: [...labels] });
    for (let seed = 1; seed <= 25; seed++) {
      const pooled = randomPooled(seed, 2);
      const want = naiveHead(file.tensors["head.weight"].data, file.tensors["head.bias"].data, pooled, kind);
      const got = applyHead(prepared, pooled);
      if (kind === "identity") {
        expect(got.value).toBeCloseTo(want[0], 10);
        continue;
      }
      labels.forEach((label, c) => expect(Math.abs(got.scores![label] - want[c])).toBeLessThan(1e-12));
      const best = want.indexOf(Math.max(...want));
      expect(got.label).toBe(labels[best]);
      expect(got.score).toBe(got.scores![labels[best]]);
    }
  });

  it("logits of ±1e6 (where exp overflows): the naive softmax gives NaN, the head finite probabilities summing to 1", () => {
    const { file, prepared } = adapterWith({ labels: ["a", "b", "c"] }, 0, [1e6, -1e6, 1e6 - 1]);
    const pooled = randomPooled(3);
    const naive = naiveHead(file.tensors["head.weight"].data, file.tensors["head.bias"].data, pooled, "softmax");
    expect(naive.some(Number.isNaN)).toBe(true);
    const got = applyHead(prepared, pooled);
    const p = ["a", "b", "c"].map((l) => got.scores![l]);
    for (const x of p) expect(Number.isFinite(x)).toBe(true);
    expect(p[0] + p[1] + p[2]).toBeCloseTo(1, 12);
    // Reference on the shifted logits (mathematically the same softmax): 1/(1+e^-1), e^-1/(1+e^-1), 0.
    expect(p[0]).toBeCloseTo(1 / (1 + Math.exp(-1)), 12);
    expect(p[2]).toBeCloseTo(Math.exp(-1) / (1 + Math.exp(-1)), 12);
    expect(p[1]).toBe(0);
    expect(got.label).toBe("a");
  });

  it("softmax and sigmoid stay finite and exact for any finite input", () => {
    const extreme = Float64Array.from([1.7e308, -1.7e308, 0, 1.7e308]);
    const p = softmax(extreme);
    expect(Array.from(p)).toEqual([0.5, 0, 0, 0.5]);
    for (const x of [-1e308, -800, -745, -40, -1e-9, 0, 1e-9, 40, 800, 1e308]) {
      const s = sigmoid(x);
      expect(Number.isFinite(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThanOrEqual(1);
      // The naive formula where it does not underflow, and symmetry everywhere.
      if (Math.abs(x) < 700) expect(Math.abs(s - 1 / (1 + Math.exp(-x)))).toBeLessThan(1e-15);
      expect(s + sigmoid(-x)).toBeCloseTo(1, 15);
    }
    expect(sigmoid(-745)).toBeGreaterThan(0); // e^-745 is representable; 1/(1+e^745) is not
  });
});

describe("labels named like Object.prototype members (issue 18, defect 5)", () => {
  it.each([[["__proto__", "b"]], [["constructor", "toString", "__proto__", "hasOwnProperty", "valueOf"]]])("%j: every label is an own key of scores and survives JSON", (labels) => {
    const { prepared } = adapterWith({ labels, problemType: "single_label_classification" });
    const got = applyHead(prepared, randomPooled(5));
    expect(Object.keys(got.scores!).sort()).toEqual([...labels].sort());
    const roundTrip = JSON.parse(JSON.stringify(got.scores)) as Record<string, number>;
    expect(Object.keys(roundTrip).sort()).toEqual([...labels].sort());
    expect(Object.values(roundTrip).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });
});
