/** The default validation split: stratified, deterministic, disjoint, bounded. */
import { describe, expect, it } from "vitest";
import type { Example } from "../../src/train/datasets.js";
import { defaultHoldoutSize, stratifiedHoldout } from "../../src/train/holdout.js";

const ex = (label: Example["label"], line: number): Example => ({ text: `text ${line}`, label, line });

/** 700 "a", 250 "b", 50 "c", interleaved as files usually are not (blocks by class). */
const skewed = [
  ...Array.from({ length: 700 }, (_, i) => ex("a", i)),
  ...Array.from({ length: 250 }, (_, i) => ex("b", 700 + i)),
  ...Array.from({ length: 50 }, (_, i) => ex("c", 950 + i)),
];

function countBy(examples: Example[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of examples) out[String(e.label)] = (out[String(e.label)] ?? 0) + 1;
  return out;
}

describe("default hold-out size", () => {
  it.each([
    [1000, 100],
    [19, 2],
    [192, 19],
    [50_000, 2000],
    [4, 0], // 10 % rounds to 0: nothing held out
    [1, 0],
  ])("%i examples → %i held out", (n, size) => expect(defaultHoldoutSize(n)).toBe(size));
});

describe("stratified hold-out", () => {
  it("keeps each class's share (exact for shares that divide evenly)", () => {
    const { train, heldOut } = stratifiedHoldout(skewed, 100, 1);
    expect(countBy(heldOut)).toEqual({ a: 70, b: 25, c: 5 });
    expect(countBy(train)).toEqual({ a: 630, b: 225, c: 45 });
  });

  it("rounds by largest remainder, so the total is exact", () => {
    // 7 / 3 of 10 examples → 2.1 and 0.9 of 3: the 0.9 rounds up.
    const small = [
      ...Array.from({ length: 7 }, (_, i) => ex("x", i)),
      ...Array.from({ length: 3 }, (_, i) => ex("y", 7 + i)),
    ];
    const { heldOut } = stratifiedHoldout(small, 3, 1);
    expect(countBy(heldOut)).toEqual({ x: 2, y: 1 });
  });

  it("is a partition of the file, both parts in file order", () => {
    const { train, heldOut } = stratifiedHoldout(skewed, 100, 3);
    const lines = [...train, ...heldOut].map((e) => e.line).sort((a, b) => a - b);
    expect(lines).toEqual(skewed.map((e) => e.line));
    for (const part of [train, heldOut])
      expect(part.map((e) => e.line)).toEqual([...part.map((e) => e.line)].sort((a, b) => a - b));
  });

  it("is deterministic for a seed and differs between seeds", () => {
    const lines = (seed: number) => stratifiedHoldout(skewed, 100, seed).heldOut.map((e) => e.line);
    expect(lines(5)).toEqual(lines(5));
    expect(lines(5)).not.toEqual(lines(6));
  });

  it("does not take the first examples of each class (a shuffled choice)", () => {
    const { heldOut } = stratifiedHoldout(skewed, 100, 1);
    const a = heldOut.filter((e) => e.label === "a").map((e) => e.line);
    expect(a).not.toEqual(Array.from({ length: 70 }, (_, i) => i));
    expect(Math.max(...a)).toBeGreaterThan(350);
  });

  it("stratifies multi-label data by label set and handles regression as one stratum", () => {
    const multi = Array.from({ length: 40 }, (_, i) =>
      ex(i % 4 === 0 ? ["p", "q"] : i % 4 === 1 ? ["q", "p"] : ["p"], i),
    );
    // {p,q} (in either order) is 20 examples, {p} 20: 2 each out of 4.
    const { heldOut } = stratifiedHoldout(multi, 4, 1);
    expect(heldOut.filter((e) => (e.label as string[]).length === 2)).toHaveLength(2);
    const reg = Array.from({ length: 30 }, (_, i) => ex(i / 10, i));
    expect(stratifiedHoldout(reg, 3, 1).heldOut).toHaveLength(3);
  });
});
