import { describe, expect, it } from "vitest";
import { createMetrics, MAX_TASK_LABELS, OTHER_TASKS_LABEL, UNKNOWN_TASK_LABEL } from "../../src/metrics.js";
import { parseMetrics, sampleValue } from "./setup.js";

describe("createMetrics", () => {
  it("uses its own registry, so many can coexist", async () => {
    const a = createMetrics({ collectDefaults: false });
    const b = createMetrics({ collectDefaults: false });
    a.requests.inc({ task: "sst2", status: "200" });
    expect(sampleValue(parseMetrics(await a.registry.metrics()), "skt_requests_total", { task: "sst2" })).toBe(1);
    expect(
      sampleValue(parseMetrics(await b.registry.metrics()), "skt_requests_total", { task: "sst2" }),
    ).toBeUndefined();
  });

  it("includes process default metrics unless turned off, with an optional prefix", async () => {
    const withDefaults = createMetrics();
    const text = await withDefaults.registry.metrics();
    expect(text).toMatch(/^process_cpu_user_seconds_total /m);
    expect(text).toMatch(/^nodejs_heap_size_total_bytes /m);
    const prefixed = await createMetrics({ prefix: "skt_app_" }).registry.metrics();
    expect(prefixed).toMatch(/^skt_app_process_cpu_user_seconds_total /m);
    expect(prefixed).toMatch(/^skt_requests_total|# TYPE skt_requests_total counter/m);
    const without = await createMetrics({ collectDefaults: false }).registry.metrics();
    expect(without).not.toMatch(/process_cpu/);
  });

  it("exposes every metric with the agreed names and labels", async () => {
    const m = createMetrics({ collectDefaults: false });
    m.requests.inc({ task: UNKNOWN_TASK_LABEL, status: "404" });
    m.requestDuration.observe({ task: "sst2" }, 0.01);
    m.queueDuration.observe(0.001);
    m.inferenceDuration.observe(0.02);
    m.batchSize.observe(8);
    m.batchTokens.observe(300);
    m.queueDepth.set(2);
    m.tokens.inc({ kind: "real" }, 5);
    m.semanticPasses.inc({ task: "sst2" });
    m.cacheHits.inc();
    m.cacheMisses.inc();
    m.cacheEvictions.inc();
    m.cacheBytes.set(1234);
    m.adaptersLoaded.set(3);
    m.adapterLoadDuration.observe(0.1);
    m.uploads.inc({ outcome: "ok" });
    const s = parseMetrics(await m.registry.metrics());
    expect(sampleValue(s, "skt_requests_total", { task: "__unknown__", status: "404" })).toBe(1);
    expect(sampleValue(s, "skt_request_duration_seconds_count", { task: "sst2" })).toBe(1);
    expect(sampleValue(s, "skt_queue_duration_seconds_count")).toBe(1);
    expect(sampleValue(s, "skt_inference_duration_seconds_count")).toBe(1);
    expect(s.filter((x) => x.name === "skt_batch_size_bucket").map((x) => x.labels.le)).toEqual([
      "1",
      "2",
      "4",
      "8",
      "16",
      "32",
      "64",
      "128",
      "+Inf",
    ]);
    expect(sampleValue(s, "skt_batch_tokens_sum")).toBe(300);
    expect(sampleValue(s, "skt_queue_depth")).toBe(2);
    expect(sampleValue(s, "skt_tokens_total", { kind: "real" })).toBe(5);
    expect(sampleValue(s, "skt_semantic_passes_total", { task: "sst2" })).toBe(1);
    expect(sampleValue(s, "skt_adapter_cache_hits_total")).toBe(1);
    expect(sampleValue(s, "skt_adapter_cache_misses_total")).toBe(1);
    expect(sampleValue(s, "skt_adapter_cache_evictions_total")).toBe(1);
    expect(sampleValue(s, "skt_adapter_cache_bytes")).toBe(1234);
    expect(sampleValue(s, "skt_adapters_loaded")).toBe(3);
    expect(sampleValue(s, "skt_adapter_load_duration_seconds_count")).toBe(1);
    expect(sampleValue(s, "skt_uploads_total", { outcome: "ok" })).toBe(1);
  });

  it("forgetTask removes every series of a task (issue 18, defect 6) and leaves the others", async () => {
    const m = createMetrics({ collectDefaults: false });
    for (const task of ["keep", "gone"]) {
      const label = m.taskLabel(task);
      for (const status of ["200", "400", "429", "499"]) m.requests.inc({ task: label, status });
      m.requestDuration.observe({ task: label }, 0.01);
      m.semanticPasses.inc({ task: label });
    }
    await m.forgetTask("gone");
    const text = await m.registry.metrics();
    expect(text).not.toContain('task="gone"');
    expect(text.split("\n").filter((l) => l.includes('task="keep"')).length).toBeGreaterThan(4 + 1 + 1);
    await m.forgetTask("never-seen"); // a no-op
    // The freed label value can be given out again.
    expect(m.taskLabel("gone")).toBe("gone");
  });

  it("caps the tasks with their own label value; later ones share __other__ until a slot is freed", async () => {
    const m = createMetrics({ collectDefaults: false });
    const labels = Array.from({ length: MAX_TASK_LABELS + 50 }, (_, i) => m.taskLabel(`t${i}`));
    expect(new Set(labels).size).toBe(MAX_TASK_LABELS + 1);
    expect(labels.slice(MAX_TASK_LABELS).every((l) => l === OTHER_TASKS_LABEL)).toBe(true);
    expect(m.taskLabel("t0")).toBe("t0"); // stable for tasks that have one
    await m.forgetTask("t0");
    expect(m.taskLabel(`t${MAX_TASK_LABELS + 1}`)).toBe(`t${MAX_TASK_LABELS + 1}`);
  });
});
