/** Progress without a terminal: a line per interval, one per evaluation; JSON lines; quiet. */
import { describe, expect, it } from "vitest";
import { createProgressReporter, formatDuration, progressMode } from "../../src/train/progress.js";
import type { ProgressEvent } from "../../src/train/trainer.js";

const report = { examples: 10, accuracy: 0.9, macroF1: 0.88 };

/** 100 steps, one per simulated second, an evaluation after step 50; the clock is the step number. */
function drive(mode: "lines" | "json" | "quiet", everySeconds: number): string[] {
  const lines: string[] = [];
  let t = 0;
  const r = createProgressReporter({ mode, everySeconds, write: (l) => lines.push(l), now: () => t });
  for (let step = 1; step <= 100; step++) {
    t = step * 1000;
    const p: ProgressEvent = { step, totalSteps: 100, epoch: step > 50 ? 1 : 0, loss: 1 / step, examplesPerSec: 32 };
    r.onProgress(p);
    if (step === 50) r.onProgress({ ...p, eval: { step, score: 0.875, report } });
  }
  r.stop();
  return lines;
}

describe("progress reporter", () => {
  it("lines: the first step, one line per interval, every evaluation and the last step", () => {
    const lines = drive("lines", 10);
    const steps = lines.filter((l) => l.startsWith("step ")).map((l) => Number(/^step (\d+)/.exec(l)![1]));
    expect(steps).toEqual([1, 11, 21, 31, 41, 51, 61, 71, 81, 91, 100]);
    expect(lines.filter((l) => l.startsWith("eval "))).toEqual(["eval at step 50/100 · dev 0.8750"]);
    // Step 11 after 10 s of 1 s steps: 89 steps left → 89 s; no evaluation yet.
    expect(lines[1]).toBe("step 11/100 · epoch 1 · loss 0.0909 · 32 ex/s · ETA 1m 29s · dev –");
    // After the evaluation the last dev score rides along.
    expect(lines.find((l) => l.startsWith("step 51/"))).toMatch(/epoch 2 .* · dev 0\.8750$/);
  });

  it("json: every line parses, with the same cadence and the evaluation's report", () => {
    const events = drive("json", 25).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.filter((e) => e.event === "progress").map((e) => e.step)).toEqual([1, 26, 51, 76, 100]);
    expect(events.find((e) => e.event === "eval")).toEqual({
      event: "eval",
      step: 50,
      total_steps: 100,
      score: 0.875,
      report,
    });
    expect(events.find((e) => e.step === 26)).toEqual({
      event: "progress",
      step: 26,
      total_steps: 100,
      epoch: 0,
      loss: 1 / 26,
      examples_per_sec: 32,
      eta_seconds: 74,
      dev_score: null,
    });
    expect(events.find((e) => e.event === "progress" && e.step === 51)).toMatchObject({ dev_score: 0.875 });
  });

  it("quiet writes nothing", () => {
    expect(drive("quiet", 0)).toEqual([]);
  });

  it("picks the bar only on a terminal, and --json over --quiet", () => {
    expect(progressMode({}, true)).toBe("bar");
    expect(progressMode({}, false)).toBe("lines");
    expect(progressMode({ quiet: true }, true)).toBe("quiet");
    expect(progressMode({ json: true, quiet: true }, true)).toBe("json");
  });

  it("formats durations", () => {
    expect([formatDuration(5), formatDuration(89), formatDuration(3725), formatDuration(NaN)]).toEqual([
      "5s",
      "1m 29s",
      "1h 02m",
      "–",
    ]);
  });
});
