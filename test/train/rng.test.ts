import { describe, expect, it } from "vitest";
import { Rng } from "../../src/train/rng.js";

describe("Rng", () => {
  it("implements xoshiro128** (reference vector from state [1,2,3,4])", () => {
    const rng = new Rng(0);
    // Overwrite the seeded state with the reference C implementation's test state.
    Object.assign(rng as unknown as Record<string, number>, { s0: 1, s1: 2, s2: 3, s3: 4 });
    const out = Array.from({ length: 6 }, () => rng.nextUint32());
    expect(out).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492]);
  });

  it("gives the same sequence for the same seed", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => [a.next(), a.normal(), a.int(17)]);
    const ys = Array.from({ length: 1000 }, () => [b.next(), b.normal(), b.int(17)]);
    expect(xs).toEqual(ys);
  });

  it("gives different sequences for different (even adjacent) seeds", () => {
    const seqs = [0, 1, 2, 12345].map((seed) => {
      const r = new Rng(seed);
      return Array.from({ length: 8 }, () => r.nextUint32());
    });
    for (let i = 0; i < seqs.length; i++) {
      for (let j = i + 1; j < seqs.length; j++) {
        expect(seqs[i]).not.toEqual(seqs[j]);
        // Not just shifted copies: no shared values at all in the first few draws.
        expect(seqs[i].filter((x) => seqs[j].includes(x))).toEqual([]);
      }
    }
  });

  it("next() stays in [0, 1) and int(n) in [0, n) covering every value", () => {
    const r = new Rng(7);
    const counts = new Array(10).fill(0);
    let outOfRange = 0;
    for (let i = 0; i < 20_000; i++) {
      const u = r.next();
      if (!(u >= 0 && u < 1)) outOfRange++;
      const k = r.int(10);
      if (!(Number.isInteger(k) && k >= 0 && k < 10)) outOfRange++;
      else counts[k]++;
    }
    expect(outOfRange).toBe(0);
    for (const c of counts) expect(c).toBeGreaterThan(1700); // expected 2000 each
    expect(r.int(1)).toBe(0);
    expect(() => r.int(0)).toThrow();
    expect(() => r.int(2.5)).toThrow();
  });

  it("shuffle is an in-place permutation, deterministic per seed", () => {
    const arr = Array.from({ length: 1000 }, (_, i) => i);
    const shuffled = new Rng(3).shuffle([...arr]);
    expect(shuffled).not.toEqual(arr);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(arr);
    expect(new Rng(3).shuffle([...arr])).toEqual(shuffled);
    expect(new Rng(4).shuffle([...arr])).not.toEqual(shuffled);
    const same = [1, 2, 3];
    expect(new Rng(1).shuffle(same)).toBe(same);
    expect(new Rng(1).shuffle([])).toEqual([]);
  });

  it("normal() has mean ~0 and variance ~1 over 100k draws", () => {
    const r = new Rng(2024);
    const n = 100_000;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < n; i++) {
      const z = r.normal();
      sum += z;
      sumSq += z * z;
    }
    const mean = sum / n;
    const variance = sumSq / n - mean * mean;
    expect(Number.isFinite(variance)).toBe(true);
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
    const s = new Rng(1);
    let m = 0;
    for (let i = 0; i < 10_000; i++) m += s.normal(5, 0.1);
    expect(Math.abs(m / 10_000 - 5)).toBeLessThan(0.01);
  });
});
