import { describe, expect, it } from "vitest";
import type { AdapterTensor } from "../../src/adapters/format.js";
import { transformBackward, transformForward, type TransformParams } from "../../src/train/transform-grad.js";
import { seededRandom } from "../helpers/numeric.js";

function tensors(p: TransformParams, rand: () => number): Record<string, AdapterTensor> {
  const t = (shape: number[]) => ({
    shape,
    data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rand() * 2 - 1),
  });
  return p.pooling
    ? {
        "pool.weight": t([1, p.hidden]),
        "pool.bias": t([1]),
        "proj.weight": t([p.length * p.width, p.length]),
        "proj.bias": t([p.length * p.width]),
      }
    : { "proj.weight": t([p.width, p.hidden]), "proj.bias": t([p.width]) };
}

describe.each([true, false])("F backward (pooling = %s)", (pooling) => {
  it("matches central finite differences of Σ z ⊙ R", () => {
    const rand = seededRandom(pooling ? 3 : 4);
    const p: TransformParams = { pooling, length: 3, width: 5, hidden: 4 };
    const t = tensors(p, rand);
    const hp = Float32Array.from({ length: p.length * p.hidden }, () => rand() * 2 - 1);
    const R = Float64Array.from({ length: p.length * p.width }, () => rand() * 2 - 1);
    const objective = () => transformForward(p, t, hp).reduce((s, v, i) => s + v * R[i], 0);
    const grads = transformBackward(p, t, hp, R);
    for (const [name, tensor] of Object.entries(t)) {
      expect(grads[name]).toHaveLength(tensor.data.length);
      for (let i = 0; i < tensor.data.length; i++) {
        // float32 storage: use a step large enough for float32 rounding, compare loosely.
        const h = 1e-2;
        const keep = tensor.data[i];
        tensor.data[i] = keep + h;
        const up = objective();
        tensor.data[i] = keep - h;
        const down = objective();
        tensor.data[i] = keep;
        const fd = (up - down) / (2 * h);
        expect(Math.abs(grads[name][i] - fd)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd)));
      }
    }
  });
});
