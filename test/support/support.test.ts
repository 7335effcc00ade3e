/**
 * The support module the benchmarks, scripts and tests share (scripts/lib/): the Prometheus reader
 * against a hand-written exposition and prom-client's own output, and the SST-2 reader against the
 * trainer's dataset loader.
 */
import path from "node:path";
import { Registry, Counter, Histogram } from "prom-client";
import { describe, expect, it } from "vitest";
import { parseMetrics, sampleSum, sampleValue } from "../../scripts/lib/prometheus.js";
import { REPO_ROOT, SST2_DIR } from "../../scripts/lib/paths.js";
import { readSst2, readSst2Sentences } from "../../scripts/lib/sst2.js";
import { loadDataset } from "../../src/train/datasets.js";

describe("parseMetrics", () => {
  it("reads names, escaped label values, infinities and timestamps", () => {
    const text = [
      "# HELP x_total things",
      "# TYPE x_total counter",
      'x_total{task="a",kind="real"} 3',
      'x_total{task="b \\"quoted\\", with comma",kind="real"} 4 1700000000000',
      'x_total{task="a",kind="padding"} 5',
      'h_bucket{le="+Inf"} +Inf',
      "g -Inf",
      "n NaN",
      "",
    ].join("\n");
    const s = parseMetrics(text);
    expect(s).toHaveLength(6);
    expect(s[1]).toEqual({ name: "x_total", labels: { task: 'b \\"quoted\\", with comma', kind: "real" }, value: 4 });
    expect(sampleValue(s, "x_total", { task: "a" })).toBe(3);
    expect(sampleValue(s, "x_total", { task: "a", kind: "padding" })).toBe(5);
    expect(sampleValue(s, "x_total", { task: "c" })).toBeUndefined();
    expect(sampleSum(s, "x_total")).toBe(12);
    expect(sampleSum(s, "x_total", { kind: "real" })).toBe(7);
    expect(sampleSum(s, "missing")).toBe(0);
    expect(sampleValue(s, "h_bucket")).toBe(Infinity);
    expect(sampleValue(s, "g")).toBe(-Infinity);
    expect(sampleValue(s, "n")).toBeNaN();
  });

  it("refuses a line that is not a sample or a bad value", () => {
    expect(() => parseMetrics("not a sample line at all")).toThrow(/unparseable/);
    expect(() => parseMetrics("x_total abc")).toThrow(/bad value/);
  });

  it('reads prom-client\'s "Nan" (an event-loop gauge between two close scrapes) as NaN, case-blind', () => {
    const s = parseMetrics("nodejs_eventloop_lag_mean_seconds Nan\nm nan\n");
    expect(sampleValue(s, "nodejs_eventloop_lag_mean_seconds")).toBeNaN();
    expect(sampleValue(s, "m")).toBeNaN();
    expect(() => parseMetrics("x_total NaNa")).toThrow(/bad value/);
  });

  it("reads prom-client's own exposition: counters by label and histogram sums and counts", async () => {
    const registry = new Registry();
    const c = new Counter({ name: "c_total", help: "c", labelNames: ["task"], registers: [registry] });
    const h = new Histogram({ name: "h_seconds", help: "h", buckets: [0.1, 1], registers: [registry] });
    c.inc({ task: "x" }, 2);
    c.inc({ task: "y" }, 5);
    for (const v of [0.05, 0.5, 2]) h.observe(v);
    const s = parseMetrics(await registry.metrics());
    expect(sampleValue(s, "c_total", { task: "y" })).toBe(5);
    expect(sampleSum(s, "c_total")).toBe(7);
    expect(sampleValue(s, "h_seconds_count")).toBe(3);
    expect(sampleValue(s, "h_seconds_sum")).toBeCloseTo(2.55, 12);
    expect(sampleValue(s, "h_seconds_bucket", { le: "1" })).toBe(2);
  });
});

describe("data paths and the SST-2 reader", () => {
  it("finds SST-2 from the repository, not the working directory", () => {
    expect(path.isAbsolute(SST2_DIR)).toBe(true);
    if (process.env.SST2_DIR === undefined) expect(SST2_DIR).toBe(path.resolve(REPO_ROOT, "../shared/data/sst2"));
  });

  it("reads the dev split as the trainer's loader does", async () => {
    const rows = readSst2("dev");
    const ds = await loadDataset(path.join(SST2_DIR, "dev.tsv"), { labels: ["0", "1"] });
    expect(rows.length).toBe(ds.examples.length);
    expect(rows.length).toBeGreaterThan(800);
    expect(rows.map((r) => r.sentence)).toEqual(ds.examples.map((e) => e.text));
    expect(rows.map((r) => String(r.label))).toEqual(ds.examples.map((e) => e.label));
    expect(readSst2Sentences("dev")).toEqual(rows.map((r) => r.sentence));
  });
});
