/**
 * Serving with the padding-free graphs (SKT_PACKED): the same burst of mixed rows — prompt and
 * prefix adapters, /embed rows, texts of very different lengths, batched together — answered by an
 * engine on packed graphs and one on padded graphs gives the same outputs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { Engine } from "../../src/engine/engine.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapterBytes, type ServableOptions } from "../helpers/servable-adapter.js";

const TASKS: ServableOptions[] = [
  { task: "prompt-pool", variant: "prompt", pooling: true, seed: 11 },
  { task: "prefix-pool", variant: "prefix", pooling: true, seed: 12, scale: 0.02 },
  {
    task: "prefix-flat",
    variant: "prefix",
    pooling: false,
    seed: 13,
    scale: 0.02,
    promptText: "topic :",
    problemType: "multi_label_classification",
    labels: ["a", "b", "c"],
  },
  { task: "regress", variant: "prompt", pooling: true, seed: 14, problemType: "regression" },
];

const TEXTS = [
  "ok",
  "a slow , muddled and ultimately pointless film that wastes a fine cast on a script nobody seems to have finished",
  "warm and funny",
  "the second half drags , but the ending lands",
];

type Engines = Record<"packed" | "padded", { engine: Engine; metrics: SktMetrics }>;

/** Every row's outputs as a flat list of numbers, for a burst submitted all at once. */
async function burst(engine: Engine): Promise<Map<string, number[]>> {
  type Entry = [string, number[]];
  const classify = TASKS.flatMap((k) =>
    TEXTS.map(async (t): Promise<Entry> => {
      const p = (await engine.classify({ task: k.task, texts: [t] })).predictions[0];
      return [`${k.task}|${t}`, p.value !== undefined ? [p.value] : Object.values(p.scores!)];
    }),
  );
  const embed = TEXTS.map(async (t): Promise<Entry> => [
    `embed|${t}`,
    [...(await engine.embed({ texts: [t] })).embeddings[0]],
  ]);
  return new Map(await Promise.all([...classify, ...embed]));
}

async function counter(m: SktMetrics, kind: string): Promise<number> {
  return (await m.tokens.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;
}

describe("serving with packed graphs", () => {
  let assets: BackboneAssets;
  const engines = {} as Engines;
  const dirs: string[] = [];

  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    for (const [name, packed] of [
      ["packed", "on"],
      ["padded", "off"],
    ] as const) {
      const dir = await mkdtemp(path.join(os.tmpdir(), `skt-${name}-`));
      dirs.push(dir);
      const metrics = createMetrics({ collectDefaults: false });
      // A long wait and no padding limit, so a burst runs as few batches mixing every length.
      const engine = await Engine.create(
        testEngineOptions(dir, { metrics, packed, maxWaitMs: 50, maxPaddingRatio: 1000 }),
      );
      engines[name] = { engine, metrics };
      for (const k of TASKS) await engine.upload(k.task, servableAdapterBytes(assets, k));
    }
  });
  afterAll(async () => {
    await Promise.all(Object.values(engines).map((e) => e.engine.close()));
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it("serves the layout SKT_PACKED asks for", () => {
    expect(engines.packed.engine.graphLayout()).toBe("packed");
    expect(engines.padded.engine.graphLayout()).toBe("padded");
  });

  it("answers mixed prompt, prefix and embed rows of different lengths as the padded graphs do (≤ 1e-5)", async () => {
    const before = await counter(engines.packed.metrics, "padding");
    const batchesBefore = (await engines.packed.metrics.batchSize.get()).values.find(
      (v) => v.metricName === "skt_batch_size_count",
    )!.value;
    const packed = await burst(engines.packed.engine);
    const padded = await burst(engines.padded.engine);
    expect(packed.size).toBe(TASKS.length * TEXTS.length + TEXTS.length);
    for (const [key, want] of padded) {
      const got = packed.get(key)!;
      expect(got.length).toBe(want.length);
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5);
    }
    // The packed engine really ran padded batches of several rows (the packing was exercised).
    const batches =
      (await engines.packed.metrics.batchSize.get()).values.find((v) => v.metricName === "skt_batch_size_count")!
        .value - batchesBefore;
    expect(batches).toBeLessThan(packed.size / 2);
    expect((await counter(engines.packed.metrics, "padding")) - before).toBeGreaterThan(100);
  });
});
