/**
 * The quality metrics' bookkeeping (src/quality.ts) against naive recomputations: the windowed
 * label counts, low-confidence share and total-variation drift after the ring wraps, the label
 * bound, the task-label cap, a new version starting afresh, and the trainer's recorded distribution.
 */
import { describe, expect, it } from "vitest";
import { trainingDistribution } from "../../src/adapters/prepared.js";
import type { AdapterMetadata } from "../../src/adapters/format.js";
import { MAX_TASK_LABELS, createMetrics } from "../../src/metrics.js";
import { OTHER_LABEL, type AnsweringAdapter } from "../../src/quality.js";
import { labelDistribution } from "../../src/train/trainer.js";
import { seededRandom } from "../../src/random.js";

function adapter(version: number, labels: string[], training: number[] | null): AnsweringAdapter {
  return {
    version,
    metadata: { labels, problemType: "single_label_classification" },
    trainingDistribution: training ? Float64Array.from(training) : null,
  };
}

async function value(m: ReturnType<typeof createMetrics>, name: string, labels: Record<string, string>) {
  const metric = m.registry.getSingleMetric(name)!;
  const { values } = await metric.get();
  return values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe("prediction quality", () => {
  it("window counts, low-confidence share and drift equal a naive recomputation over the last N rows", async () => {
    const N = 50;
    const m = createMetrics({ collectDefaults: false, quality: { window: N, lowConfidence: 0.55, maxLabels: 20 } });
    const labels = ["a", "b", "c", "d"];
    const q = [0.1, 0.2, 0.3, 0.4];
    const rand = seededRandom(7);
    const all: { label: string; score: number }[] = [];
    for (let call = 0; call < 23; call++) {
      const rows = Array.from({ length: 1 + Math.floor(rand() * 9) }, () => {
        const r = rand();
        return { label: labels[r < 0.5 ? 0 : r < 0.7 ? 1 : r < 0.9 ? 2 : 3], score: 0.25 + 0.75 * rand() };
      });
      all.push(...rows);
      m.quality.record("t", adapter(1, labels, q), rows);
    }
    expect(all.length).toBeGreaterThan(N); // the ring wrapped
    const last = all.slice(-N);
    const counts = labels.map((l) => last.filter((r) => r.label === l).length);
    const naiveTv = counts.reduce((s, c, i) => s + Math.abs(c / N - q[i]), 0) / 2;
    const naiveLow = last.filter((r) => r.score < 0.55).length / N;
    const stats = m.quality.stats("t");
    expect(stats.window.rows).toBe(N);
    expect(labels.map((l) => stats.window.labels[l])).toEqual(counts);
    expect(stats.total.rows).toBe(all.length);
    expect(stats.window.drift).toBeCloseTo(naiveTv, 12);
    expect(stats.window.lowConfidenceShare).toBeCloseTo(naiveLow, 12);
    expect(await value(m, "skt_label_drift", { task: "t" })).toBeCloseTo(naiveTv, 12);
    for (const l of labels)
      expect(await value(m, "skt_predictions_total", { task: "t", label: l })).toBe(
        all.filter((r) => r.label === l).length,
      );
  });

  it("a head with more labels than the bound aggregates the rest; tasks past the label cap share __other__", async () => {
    const m = createMetrics({ collectDefaults: false, quality: { maxLabels: 2 } });
    const labels = ["x", "y", "z", "w"];
    m.quality.record(
      "big",
      adapter(1, labels, null),
      ["x", "z", "w", "y", "z"].map((label) => ({ label, score: 0.9 })),
    );
    expect(await value(m, "skt_predictions_total", { task: "big", label: "x" })).toBe(1);
    expect(await value(m, "skt_predictions_total", { task: "big", label: "y" })).toBe(1);
    expect(await value(m, "skt_predictions_total", { task: "big", label: OTHER_LABEL })).toBe(3);
    expect(await value(m, "skt_label_drift", { task: "big" })).toBeUndefined(); // no training distribution
    for (let i = 0; i < MAX_TASK_LABELS; i++) m.taskLabel(`filler-${i}`);
    m.quality.record("late", adapter(1, labels, [0.25, 0.25, 0.25, 0.25]), [{ label: "x", score: 0.3 }]);
    expect(await value(m, "skt_predictions_total", { task: "__other__", label: OTHER_LABEL })).toBe(1);
    expect(m.quality.stats("late")).toMatchObject({ tracked: false, total: { rows: 0 }, window: { drift: null } });
  });

  it("a new version starts a fresh window; forgetting a task removes its series", async () => {
    const m = createMetrics({ collectDefaults: false });
    m.taskLabel("t");
    m.quality.record("t", adapter(1, ["a", "b"], [0.5, 0.5]), [{ label: "a", score: 0.9 }]);
    m.quality.record("t", adapter(2, ["p", "q"], [1, 0]), [{ label: "q", score: 0.9 }]);
    expect(m.quality.stats("t")).toMatchObject({ adapterVersion: 2, total: { rows: 1 }, window: { drift: 1 } });
    expect(await value(m, "skt_predictions_total", { task: "t", label: "a" })).toBeUndefined();
    await m.forgetTask("t");
    const text = await m.registry.metrics();
    expect(text).not.toMatch(/task="t"/);
  });

  it("the trainer records each label's share, and the server reads it back over the head's labels", () => {
    const labelsIn = ["0", "1", "2"];
    const examples = ["1", "0", "1", "2", "1", "1", "0"].map((label) => ({ text: "x", label }));
    const dist = labelDistribution(
      { path: "t", examples, labels: labelsIn, hasPairs: false, multiLabel: false } as never,
      ["neg", "neu", "pos"],
    );
    expect(dist).toEqual({ neg: 2 / 7, neu: 4 / 7, pos: 1 / 7 });
    const meta = {
      labels: ["neg", "neu", "pos"],
      problemType: "single_label_classification",
      training: { label_distribution: dist },
    };
    expect([...trainingDistribution(meta as unknown as AdapterMetadata)!]).toEqual([2 / 7, 4 / 7, 1 / 7]);
    expect(trainingDistribution({ ...meta, training: {} } as unknown as AdapterMetadata)).toBeNull();
    expect(
      trainingDistribution({ ...meta, training: { label_distribution: { neg: -1 } } } as unknown as AdapterMetadata),
    ).toBeNull();
  });
});
