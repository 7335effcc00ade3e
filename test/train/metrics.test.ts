import { describe, expect, it } from "vitest";
import { classificationReport, multiLabelReport, regressionReport } from "../../src/train/metrics.js";
import { SktError } from "../../src/errors.js";

describe("classificationReport", () => {
  it("matches a hand-computed 3-label example with a label never predicted", () => {
    // gold: 0 0 0 1 1 2 ; pred: 0 0 1 1 0 1  -> label 2 is never predicted.
    const r = classificationReport([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 0, 1], 3);
    expect(r.confusion).toEqual([
      [2, 1, 0],
      [1, 1, 0],
      [0, 1, 0],
    ]);
    expect(r.accuracy).toBeCloseTo(3 / 6, 12);
    // label 0: tp 2, predicted 3, support 3 -> p 2/3, r 2/3, f1 2/3
    expect(r.perLabel[0].precision).toBeCloseTo(2 / 3, 12);
    expect(r.perLabel[0].recall).toBeCloseTo(2 / 3, 12);
    expect(r.perLabel[0].f1).toBeCloseTo(2 / 3, 12);
    expect(r.perLabel[0].support).toBe(3);
    // label 1: tp 1, predicted 3, support 2 -> p 1/3, r 1/2, f1 = 2·(1/6)/(5/6) = 0.4
    expect(r.perLabel[1].precision).toBeCloseTo(1 / 3, 12);
    expect(r.perLabel[1].recall).toBeCloseTo(1 / 2, 12);
    expect(r.perLabel[1].f1).toBeCloseTo(0.4, 12);
    expect(r.perLabel[1].support).toBe(2);
    // label 2: never predicted -> precision 0 (zero division), recall 0, f1 0
    expect(r.perLabel[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(r.macroF1).toBeCloseTo((2 / 3 + 0.4 + 0) / 3, 12);
  });

  it("counts a label with neither support nor predictions as F1 0 in the macro average", () => {
    const r = classificationReport([0, 1, 1], [0, 1, 1], 3);
    expect(r.accuracy).toBe(1);
    expect(r.perLabel[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 0 });
    expect(r.macroF1).toBeCloseTo(2 / 3, 12);
  });

  it("binary example", () => {
    // gold 1 1 1 1 0 0 ; pred 1 1 0 0 0 1 -> tp(1)=2 fp(1)=1 fn(1)=2
    const r = classificationReport([1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 1], 2);
    expect(r.accuracy).toBeCloseTo(0.5, 12);
    expect(r.perLabel[1].precision).toBeCloseTo(2 / 3, 12);
    expect(r.perLabel[1].recall).toBeCloseTo(0.5, 12);
    expect(r.perLabel[1].f1).toBeCloseTo(4 / 7, 12);
    expect(r.perLabel[0].precision).toBeCloseTo(1 / 3, 12);
    expect(r.perLabel[0].recall).toBeCloseTo(0.5, 12);
    expect(r.perLabel[0].f1).toBeCloseTo(0.4, 12);
    expect(r.macroF1).toBeCloseTo((4 / 7 + 0.4) / 2, 12);
  });

  it("rejects bad input", () => {
    expect(() => classificationReport([0], [0, 1], 2)).toThrow(SktError);
    expect(() => classificationReport([], [], 2)).toThrow(SktError);
    expect(() => classificationReport([0, 2], [0, 1], 2)).toThrow(/gold\[1\]/);
    expect(() => classificationReport([0, 1], [0, -1], 2)).toThrow(/pred\[1\]/);
    expect(() => classificationReport([0], [0], 0)).toThrow(SktError);
  });
});

describe("regressionReport", () => {
  it("matches hand-computed MSE and Pearson", () => {
    // gold 1 2 3 4, pred 2 2 4 4: errors 1 0 1 0 -> mse 0.5
    // centred gold -1.5 -.5 .5 1.5, centred pred -1 -1 1 1: cov 4, var 5 and 4 -> r = 4/sqrt(20)
    const r = regressionReport([1, 2, 3, 4], [2, 2, 4, 4]);
    expect(r.mse).toBeCloseTo(0.5, 12);
    expect(r.pearson).toBeCloseTo(4 / Math.sqrt(20), 12);
  });

  it("perfect and anti-correlation, and constant inputs", () => {
    expect(regressionReport([1, 2, 3], [10, 20, 30]).pearson).toBeCloseTo(1, 12);
    expect(regressionReport([1, 2, 3], [3, 2, 1]).pearson).toBeCloseTo(-1, 12);
    const c = regressionReport([1, 2, 3], [2, 2, 2]);
    expect(c.pearson).toBe(0);
    expect(c.mse).toBeCloseTo(2 / 3, 12);
  });

  it("rejects bad input", () => {
    expect(() => regressionReport([1], [1, 2])).toThrow(SktError);
    expect(() => regressionReport([], [])).toThrow(SktError);
    expect(() => regressionReport([1, NaN], [1, 2])).toThrow(SktError);
  });
});

describe("multiLabelReport", () => {
  it("matches a hand-computed example: exact match, micro- and macro-F1, per-label scores", () => {
    // Labels 0..2. Example sets (gold → pred): {0,1}→{0,1}, {0}→{0,2}, {}→{}, {1,2}→{1}.
    const r = multiLabelReport([[0, 1], [0], [], [1, 2]], [[0, 1], [0, 2], [], [1]], 3);
    expect(r.subsetAccuracy).toBe(2 / 4);
    // tp: 0→2, 1→2, 2→0; fp: 2→1; fn: 2→1. micro F1 = 2·4 / (2·4 + 1 + 1).
    expect(r.microF1).toBeCloseTo(8 / 10, 12);
    expect(r.perLabel.map((s) => s.f1)).toEqual([1, 1, 0]);
    expect(r.perLabel[2]).toEqual({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(r.macroF1).toBeCloseTo(2 / 3, 12);
  });

  it("rejects bad input", () => {
    expect(() => multiLabelReport([[0]], [[3]], 3)).toThrow(/pred\[0\] = 3/);
    expect(() => multiLabelReport([[0]], [], 3)).toThrow(/gold has 1/);
    expect(() => multiLabelReport([], [], 3)).toThrow(/zero examples/);
  });
});
