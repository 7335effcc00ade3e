import { describe, expect, it } from "vitest";
import { AdamW, linearSchedule } from "../../src/train/adamw.js";

/**
 * Independent reference, written from the paper/PyTorch docs formula rather than from adamw.ts:
 * plain number arrays, explicit m̂ and v̂, one scalar at a time, float64 throughout except that the
 * parameter is rounded to float32 after each step (the optimizer stores float32 parameters).
 */
function naiveAdamW(
  p0: number[],
  gradOf: (p: number[]) => number[],
  steps: number,
  o: { lr: (t: number) => number; b1: number; b2: number; eps: number; wd: number[] },
): number[][] {
  const p = [...p0];
  const m = p.map(() => 0);
  const v = p.map(() => 0);
  const history: number[][] = [];
  for (let t = 1; t <= steps; t++) {
    const g = gradOf(p);
    const lr = o.lr(t - 1);
    for (let i = 0; i < p.length; i++) {
      let x = p[i] - lr * o.wd[i] * p[i];
      m[i] = o.b1 * m[i] + (1 - o.b1) * g[i];
      v[i] = o.b2 * v[i] + (1 - o.b2) * g[i] ** 2;
      const mHat = m[i] / (1 - Math.pow(o.b1, t));
      const vHat = v[i] / (1 - Math.pow(o.b2, t));
      x -= (lr * mHat) / (Math.sqrt(vHat) + o.eps);
      p[i] = Math.fround(x);
    }
    history.push([...p]);
  }
  return history;
}

// Quadratic f(p) = ½ Σ a_i (p_i − c_i)², gradient a_i (p_i − c_i).
const A = [1, 4, 0.25, 10, 2];
const C = [3, -1, 0.5, 2, -4];
const grad = (p: ArrayLike<number>): number[] => A.map((a, i) => a * (p[i] - C[i]));
const loss = (p: ArrayLike<number>): number => A.reduce((s, a, i) => s + 0.5 * a * (p[i] - C[i]) ** 2, 0);

describe("AdamW", () => {
  it("matches a naive float64 implementation over 20 steps (with decay, a no-decay param and a schedule)", () => {
    const init = [0.5, 2, -1, 0, 1.5];
    const w = new Float32Array(init.slice(0, 3));
    const b = new Float32Array(init.slice(3));
    const sched = linearSchedule({ warmupSteps: 5, totalSteps: 20, peakLr: 0.05 });
    const opt = new AdamW({ w, b }, { weightDecay: 0.1, noDecay: ["b"] });
    const ref = naiveAdamW(init.map(Math.fround), grad, 20, {
      lr: sched,
      b1: 0.9,
      b2: 0.999,
      eps: 1e-8,
      wd: [0.1, 0.1, 0.1, 0, 0],
    });
    for (let t = 0; t < 20; t++) {
      const g = grad([...w, ...b]);
      opt.step({ w: new Float32Array(g.slice(0, 3)), b: new Float32Array(g.slice(3)) }, sched(t));
      const got = [...w, ...b];
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i] - ref[t][i])).toBeLessThan(1e-6);
    }
    expect(opt.stepCount("w")).toBe(20);
  });

  it("matches the naive implementation with non-default betas/eps and a Map of params", () => {
    const init = [1, 1, 1, 1, 1];
    const p = new Float32Array(init);
    const opt = new AdamW(new Map([["p", p]]), { lr: 0.01, betas: [0.8, 0.99], eps: 1e-6, weightDecay: 0.3 });
    const ref = naiveAdamW(init, grad, 20, {
      lr: () => 0.01,
      b1: 0.8,
      b2: 0.99,
      eps: 1e-6,
      wd: [0.3, 0.3, 0.3, 0.3, 0.3],
    });
    for (let t = 0; t < 20; t++) {
      opt.step(new Map([["p", new Float32Array(grad(p))]]));
      for (let i = 0; i < 5; i++) expect(Math.abs(p[i] - ref[t][i])).toBeLessThan(1e-6);
    }
  });

  it("minimises a quadratic", () => {
    const p = new Float32Array([0, 0, 0, 0, 0]);
    const opt = new AdamW({ p }, { lr: 0.05, weightDecay: 0 });
    const start = loss(p);
    for (let t = 0; t < 2000; t++) opt.step({ p: new Float32Array(grad(p)) });
    expect(loss(p)).toBeLessThan(start * 1e-6);
    for (let i = 0; i < 5; i++) expect(p[i]).toBeCloseTo(C[i], 2);
  });

  it("applies decoupled decay only to decayed params, and skips params without a gradient", () => {
    const w = new Float32Array([2, -4]);
    const bias = new Float32Array([2, -4]);
    const frozen = new Float32Array([2, -4]);
    const opt = new AdamW({ w, bias, frozen }, { lr: 0.1, weightDecay: 0.5, noDecay: (n) => n === "bias" });
    // Zero gradient: the Adam part is exactly 0, so only the decay acts.
    opt.step({ w: new Float32Array(2), bias: new Float32Array(2) });
    expect([...w]).toEqual([Math.fround(2 * 0.95), Math.fround(-4 * 0.95)]);
    expect([...bias]).toEqual([2, -4]);
    expect([...frozen]).toEqual([2, -4]);
    expect(opt.stepCount("frozen")).toBe(0);
    expect(opt.names).toEqual(["w", "bias", "frozen"]);
  });

  it("first step moves each coordinate by about lr against the gradient sign", () => {
    const p = new Float32Array([0, 0, 0]);
    new AdamW({ p }, { lr: 0.01, weightDecay: 0 }).step({ p: new Float32Array([5, -0.001, 0]) });
    expect(p[0]).toBeCloseTo(-0.01, 6);
    expect(p[1]).toBeCloseTo(0.01, 4);
    expect(p[2]).toBe(0);
  });

  it("is deterministic", () => {
    const run = (): number[] => {
      const p = new Float32Array([0.3, -0.7, 1.1, 2, 0]);
      const opt = new AdamW({ p });
      for (let t = 0; t < 50; t++) opt.step({ p: new Float32Array(grad(p)) }, 0.02);
      return [...p];
    };
    expect(run()).toEqual(run());
  });

  it("rejects unknown names, wrong lengths and bad options", () => {
    const p = new Float32Array(3);
    const opt = new AdamW({ p });
    expect(() => opt.step({ q: new Float32Array(3) })).toThrow(/unknown parameter/);
    expect(() => opt.step({ p: new Float32Array(2) })).toThrow(/2 values/);
    expect(() => new AdamW({ p }, { betas: [1, 0.999] })).toThrow();
    expect(() => new AdamW({ p }, { lr: -1 })).toThrow();
    expect(() => opt.step({ p: new Float32Array(3) }, NaN)).toThrow();
  });
});

describe("linearSchedule", () => {
  it("warms up linearly then decays linearly to 0 (HF get_linear_schedule_with_warmup)", () => {
    const lr = linearSchedule({ warmupSteps: 10, totalSteps: 110, peakLr: 2e-3 });
    expect(lr(0)).toBe(0);
    expect(lr(5)).toBeCloseTo(1e-3, 15);
    expect(lr(10)).toBeCloseTo(2e-3, 15);
    expect(lr(60)).toBeCloseTo(1e-3, 15);
    expect(lr(109)).toBeCloseTo(2e-5, 15);
    expect(lr(110)).toBe(0);
    expect(lr(200)).toBe(0);
  });

  it("handles no warmup and warmup >= total", () => {
    const noWarm = linearSchedule({ warmupSteps: 0, totalSteps: 4, peakLr: 1 });
    expect([0, 1, 2, 3, 4].map(noWarm)).toEqual([1, 0.75, 0.5, 0.25, 0]);
    const allWarm = linearSchedule({ warmupSteps: 4, totalSteps: 4, peakLr: 1 });
    expect([0, 2, 4, 5].map(allWarm)).toEqual([0, 0.5, 0, 0]);
    expect(() => linearSchedule({ warmupSteps: -1, totalSteps: 4, peakLr: 1 })).toThrow();
    expect(() => linearSchedule({ warmupSteps: 1.5, totalSteps: 4, peakLr: 1 })).toThrow();
  });
});
