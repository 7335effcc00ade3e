import { mkdtemp, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { parseBatchLog } from "../../src/engine/batch-log.js";
import { Engine, type EngineOptions } from "../../src/engine/engine.js";
import { createMetrics, type SktMetrics } from "../../src/metrics.js";
import { SktError } from "../../src/errors.js";
import type { AdapterFile } from "../../src/adapters/format.js";
import { naiveUseLite, tokenRows } from "../helpers/naive-use-lite.js";
import { testEngineOptions } from "../helpers/engine-options.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { servableAdapter, servableAdapterBytes, type ServableOptions } from "../helpers/servable-adapter.js";

let assets: BackboneAssets;
let weights: UseLiteWeights;
const dirs: string[] = [];

beforeAll(async () => {
  assets = await loadBackboneAssets(MODELS_DIR);
  weights = mapUseLiteWeights((await readUseLitePackage()).weights);
});
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function startEngine(overrides: Partial<EngineOptions> = {}): Promise<{ engine: Engine; metrics: SktMetrics }> {
  const adaptersDir = await mkdtemp(path.join(os.tmpdir(), "skt-engine-"));
  dirs.push(adaptersDir);
  const metrics = createMetrics({ collectDefaults: false });
  const engine = await Engine.create(testEngineOptions(adaptersDir, { metrics, ...overrides }));
  return { engine, metrics };
}

async function counter(
  metric: { get(): Promise<{ values: { value: number; labels: Record<string, unknown> }[] }> },
  labels: Record<string, string> = {},
): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((s, v) => s + v.value, 0);
}

const KINDS: ServableOptions[] = [
  { task: "prompt-pool", variant: "prompt", pooling: true, seed: 1 },
  { task: "prompt-flat", variant: "prompt", pooling: false, seed: 2, promptText: "is this review happy or sad ?" },
  { task: "prefix-pool", variant: "prefix", pooling: true, seed: 3, scale: 0.02 },
  {
    task: "prefix-flat",
    variant: "prefix",
    pooling: false,
    seed: 4,
    scale: 0.02,
    promptText: "sentiment :",
    problemType: "multi_label_classification",
    labels: ["a", "b", "c"],
  },
  { task: "regress", variant: "prompt", pooling: true, seed: 5, problemType: "regression" },
];

/** Independent F: written from the format spec, different loop order, float64 throughout. */
function naiveTransform(file: AdapterFile, hp: Float64Array[]): Float64Array[] {
  const t = file.tensors;
  const L = hp.length;
  const W = t["proj.bias"].data.length / (file.metadata.pooling ? L : 1);
  const out = Array.from({ length: L }, () => new Float64Array(W));
  if (file.metadata.pooling) {
    const a = hp.map((row) => row.reduce((s, v, i) => s + v * t["pool.weight"].data[i], t["pool.bias"].data[0]));
    for (let l = 0; l < L; l++)
      for (let w = 0; w < W; w++) {
        const j = l * W + w;
        out[l][w] = t["proj.bias"].data[j] + a.reduce((s, v, k) => s + v * t["proj.weight"].data[j * L + k], 0);
      }
  } else {
    const H = hp[0].length;
    for (let l = 0; l < L; l++)
      for (let w = 0; w < W; w++) {
        let s = t["proj.bias"].data[w];
        for (let i = 0; i < H; i++) s += hp[l][i] * t["proj.weight"].data[w * H + i];
        out[l][w] = s;
      }
  }
  return out;
}

function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let diff = 0;
  let scale = 1e-6;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}

describe("engine with real adapters", () => {
  let engine: Engine;
  let metrics: SktMetrics;
  beforeAll(async () => {
    ({ engine, metrics } = await startEngine());
    for (const k of KINDS) await engine.upload(k.task, servableAdapterBytes(assets, k));
  });
  afterAll(async () => engine?.close());

  it("reports the device it runs on (deviceInfo and skt_device_info)", async () => {
    expect(engine.deviceInfo()).toEqual({ requested: "cpu", device: "cpu", adapter: null, reason: "SKT_DEVICE=cpu" });
    const { values } = await metrics.deviceInfo.get();
    expect(values).toEqual([{ value: 1, labels: { device: "cpu", requested: "cpu", adapter: "" } }]);
  });

  it.each(KINDS.map((k) => [k.task, k] as const))(
    "prepares %s exactly as a naive semantic pass + F",
    async (_task, k) => {
      const file = servableAdapter(assets, k);
      const prepared = await engine.registry.acquire(k.task);
      const hp = naiveUseLite(
        weights,
        tokenRows(weights, assets.tokenizer.ids(file.metadata.promptText)),
      ).lastHiddenState;
      const z = naiveTransform(file, hp);
      const L = file.metadata.promptLength;
      if (file.metadata.variant === "prompt") {
        expect(
          relErr(
            prepared.softPrompt!,
            z.flatMap((r) => [...r]),
          ),
        ).toBeLessThan(1e-4);
      } else {
        // Re-read each layer's key/value block out of z's rows: [L, S] with S = [k0 v0 k1 v1].
        let offset = 0;
        assets.dims.layers.forEach((l, n) => {
          const width = l.heads * l.headDim;
          for (const [which, base] of [
            ["keys", offset],
            ["values", offset + width],
          ] as const) {
            const want: number[] = [];
            for (let h = 0; h < l.heads; h++)
              for (let p = 0; p < L; p++) for (let d = 0; d < l.headDim; d++) want.push(z[p][base + h * l.headDim + d]);
            expect(relErr(prepared.prefix![which][n], want)).toBeLessThan(1e-4);
          }
          offset += 2 * width;
        });
      }
    },
  );

  it("a prompt-variant prediction equals the naive end-to-end computation", async () => {
    const k = KINDS[0];
    const file = servableAdapter(assets, k);
    const text = "a thoughtful , moving film";
    const res = await engine.classify({ task: k.task, texts: [text] });
    const hp = naiveUseLite(
      weights,
      tokenRows(weights, assets.tokenizer.ids(file.metadata.promptText)),
    ).lastHiddenState;
    const soft = naiveTransform(file, hp);
    const pooled = naiveUseLite(weights, [...soft, ...tokenRows(weights, assets.tokenizer.ids(text))]).pooled;
    const logits = [0, 1].map(
      (c) =>
        file.tensors["head.bias"].data[c] +
        pooled.reduce((s, v, i) => s + v * file.tensors["head.weight"].data[c * 512 + i], 0),
    );
    const p1 = 1 / (1 + Math.exp(logits[0] - logits[1]));
    expect(res.predictions[0].scores!.positive).toBeCloseTo(p1, 4);
    expect(res.predictions[0].tokens).toBe(assets.tokenizer.ids(text).length);
  });

  it("a row's result is the same alone and inside a mixed batch of other tasks, variants and lengths", async () => {
    const texts = [
      "great",
      "an utterly forgettable , overlong and tedious exercise in style over substance",
      "fine .",
      "the best film of the year , without question",
    ];
    const alone = new Map<string, number[]>();
    for (const k of KINDS)
      for (const t of texts) {
        const r = await engine.classify({ task: k.task, texts: [t] });
        const p = r.predictions[0];
        alone.set(`${k.task}|${t}`, p.value !== undefined ? [p.value] : Object.values(p.scores!));
      }
    const batchCount = async () =>
      (await metrics.batchSize.get()).values.find((v) => v.metricName === "skt_batch_size_count")!.value;
    const before = await batchCount();
    const all = await Promise.all(
      KINDS.flatMap((k) =>
        texts.map((t) =>
          engine.classify({ task: k.task, texts: [t] }).then((r) => ({ key: `${k.task}|${t}`, p: r.predictions[0] })),
        ),
      ),
    );
    // The burst really was batched across tasks: 20 rows in far fewer than 20 batches.
    expect((await batchCount()) - before).toBeLessThan(10);
    for (const { key, p } of all) {
      const got = p.value !== undefined ? [p.value] : Object.values(p.scores!);
      const want = alone.get(key)!;
      for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(1e-5);
    }
  });

  it("runs the semantic pass exactly once per adapter version however many requests arrive", async () => {
    const task = KINDS[0].task;
    const before = await counter(metrics.semanticPasses, { task });
    expect(before).toBe(1); // the upload prepared it
    await Promise.all(Array.from({ length: 60 }, (_, i) => engine.classify({ task, texts: [`request number ${i}`] })));
    expect(await counter(metrics.semanticPasses as never, { task })).toBe(1);
  });

  it("answers every problem type in its own shape", async () => {
    const multi = await engine.classify({ task: "prefix-flat", texts: ["x"] });
    const scores = Object.values(multi.predictions[0].scores!);
    expect(scores).toHaveLength(3);
    for (const s of scores) expect(s).toBeGreaterThan(0); // sigmoid per label, not a softmax
    expect(Math.abs(scores.reduce((a, b) => a + b, 0) - 1)).toBeGreaterThan(1e-6);
    const reg = await engine.classify({ task: "regress", texts: ["x"] });
    expect(typeof reg.predictions[0].value).toBe("number");
    expect(reg.predictions[0].label).toBeUndefined();
  });

  it("truncates long texts to the adapter's max length and says so", async () => {
    const long = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
    const r = await engine.classify({ task: "prompt-pool", texts: [long, "short"] });
    const L = assets.tokenizer.ids("classify the text as positive or negative, text:").length;
    expect(r.predictions[0].truncated).toBe(true);
    expect(r.predictions[0].tokens).toBe(128 - L);
    expect(r.predictions[1].truncated).toBe(false);
  });

  it("refuses unknown tasks and pair misuse with typed errors", async () => {
    await expect(engine.classify({ task: "nope", texts: ["x"] })).rejects.toMatchObject({
      kind: "not_found",
      code: "unknown_task",
    });
    await expect(engine.classify({ task: "prompt-pool", texts: ["x"], pairs: ["y"] })).rejects.toMatchObject({
      kind: "bad_request",
      code: "pair_not_supported",
    });
  });
});

describe("hot swap", () => {
  it("every response under concurrent load comes wholly from one version, none fails", async () => {
    const { engine } = await startEngine({ maxWaitMs: 1 });
    try {
      const v1 = { task: "swap", seed: 9, headBias: [50, -50] }; // always "negative"
      const v2 = { task: "swap", seed: 10, headBias: [-50, 50] }; // always "positive"
      await engine.upload("swap", servableAdapterBytes(assets, v1));
      const results: { version: number; labels: string[] }[] = [];
      let stop = false;
      const clients = Array.from({ length: 6 }, async (_, c) => {
        for (let i = 0; !stop || i < 3; i++) {
          const r = await engine.classify({
            task: "swap",
            texts: [`client ${c} text ${i}`, "another text in the same request"],
          });
          results.push({ version: r.adapterVersion, labels: r.predictions.map((p) => p.label!) });
          if (i > 200) break;
        }
      });
      await new Promise((r) => setTimeout(r, 150));
      await engine.upload("swap", servableAdapterBytes(assets, v2));
      await new Promise((r) => setTimeout(r, 150));
      await engine.rollback("swap");
      await new Promise((r) => setTimeout(r, 100));
      stop = true;
      await Promise.all(clients);
      const versions = new Set(results.map((r) => r.version));
      expect(versions).toEqual(new Set([1, 2]));
      for (const r of results)
        expect(r.labels).toEqual(r.version === 1 ? ["negative", "negative"] : ["positive", "positive"]);
    } finally {
      await engine.close();
    }
  });
});

describe("cache", () => {
  /** What one default prompt adapter holds in the cache: soft prompt + head + allowance. */
  const preparedBytes = () =>
    assets.tokenizer.ids("classify the text as positive or negative, text:").length * 256 * 4 +
    2 * 512 * 4 +
    2 * 4 +
    1024;

  /** Loads from the store (each a cache miss served by decode + preparation). */
  const loads = async (metrics: SktMetrics) =>
    (await metrics.adapterLoadDuration.get()).values.find(
      (v) => v.metricName === "skt_adapter_load_duration_seconds_count",
    )?.value ?? 0;

  it("evicts under a tiny byte budget, reloads on demand, and loads concurrent misses once", async () => {
    const { engine, metrics } = await startEngine({ cacheBytes: Math.floor(1.5 * preparedBytes()) }); // room for one
    try {
      await engine.upload("a", servableAdapterBytes(assets, { task: "a", seed: 1 }));
      await engine.upload("b", servableAdapterBytes(assets, { task: "b", seed: 2 })); // evicts a
      expect(await counter(metrics.cacheEvictions as never)).toBe(1);
      // Concurrent misses on a: one load, all answered by version 1.
      const rs = await Promise.all(Array.from({ length: 8 }, () => engine.classify({ task: "a", texts: ["hello"] })));
      expect(rs.every((r) => r.adapterVersion === 1)).toBe(true);
      expect(await loads(metrics)).toBe(1);
      expect(await counter(metrics.cacheEvictions as never)).toBe(2); // a's reload pushed b out
      await engine.classify({ task: "b", texts: ["again"] });
      expect(await loads(metrics)).toBe(2);
      expect(await counter(metrics.cacheBytes as never)).toBeLessThanOrEqual(1.5 * preparedBytes());
      // a and b share their prompt: one backbone pass served both uploads and both reloads.
      expect(await counter(metrics.semanticPasses as never)).toBe(1);
    } finally {
      await engine.close();
    }
  });

  it("evicts the least recently used adapter first", async () => {
    const { engine, metrics } = await startEngine({ cacheBytes: Math.floor(2.5 * preparedBytes()) }); // room for two
    try {
      for (const t of ["a", "b", "c"])
        await engine.upload(t, servableAdapterBytes(assets, { task: t, seed: t.charCodeAt(0) }));
      await engine.classify({ task: "b", texts: ["x"] }); // cached (b, c held; a evicted)
      expect(await loads(metrics)).toBe(0);
      await engine.classify({ task: "a", texts: ["x"] }); // reloaded; evicts c, now least recently used
      expect(await loads(metrics)).toBe(1);
      await engine.classify({ task: "b", texts: ["x"] }); // still cached
      expect(await loads(metrics)).toBe(1);
      await engine.classify({ task: "c", texts: ["x"] }); // was evicted: reloaded
      expect(await loads(metrics)).toBe(2);
    } finally {
      await engine.close();
    }
  });

  it("recomputes the semantic pass per request when the semantic cache is off (debug mode)", async () => {
    const { engine, metrics } = await startEngine({ semanticCache: false });
    try {
      await engine.upload("nc", servableAdapterBytes(assets, { task: "nc", seed: 3 }));
      const before = await counter(metrics.semanticPasses);
      for (let i = 0; i < 3; i++) await engine.classify({ task: "nc", texts: ["x"] });
      expect(await counter(metrics.semanticPasses as never)).toBe(before + 3);
    } finally {
      await engine.close();
    }
  });
});

describe("batch log (debug)", () => {
  it("records every batch the worker ran: each row's task, version and token ids, once", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "skt-batchlog-"));
    dirs.push(dir);
    const file = path.join(dir, "batches.jsonl");
    const { engine } = await startEngine({ batchLog: file });
    const texts = ["a gorgeous film", "dull", "the plot never quite comes together", "fine ."];
    try {
      await engine.upload("a", servableAdapterBytes(assets, { task: "a", seed: 1 }));
      await engine.upload("b", servableAdapterBytes(assets, { task: "b", variant: "prefix", seed: 2, scale: 0.02 }));
      await Promise.all(
        texts.flatMap((t) => [
          engine.classify({ task: "a", texts: [t] }),
          engine.classify({ task: "b", texts: [t, t + " !"] }),
        ]),
      );
    } finally {
      await engine.close();
    }
    const logged = parseBatchLog(await readFile(file, "utf8"));
    const rows = logged.flatMap((b) => b.rows.map((r) => `${r.task}|v${r.version}|${r.ids.join(",")}`)).sort();
    const want = texts
      .flatMap((t) => [
        `a|v1|${assets.tokenizer.ids(t).join(",")}`,
        `b|v1|${assets.tokenizer.ids(t).join(",")}`,
        `b|v1|${assets.tokenizer.ids(t + " !").join(",")}`,
      ])
      .sort();
    expect(rows).toEqual(want);
    expect(logged.length).toBeLessThan(rows.length); // rows really were batched together
    expect(() => parseBatchLog('{"at":1,"rows":[]}\n{"nope":1}\n')).toThrow(/line 2/);
  });
});

describe("limits", () => {
  it("a full queue gives a typed overloaded error, an expired deadline a typed timeout", async () => {
    const { engine } = await startEngine({ queueSize: 4, maxBatchSize: 2 });
    try {
      await engine.upload("q", servableAdapterBytes(assets, { task: "q" }));
      const e1 = await engine.classify({ task: "q", texts: Array.from({ length: 5 }, () => "x") }).catch((e) => e);
      expect(e1).toBeInstanceOf(SktError);
      expect(e1).toMatchObject({ kind: "overloaded", code: "queue_full" });
      const e2 = await engine.classify({ task: "q", texts: ["x"], deadline: Date.now() - 1 }).catch((e) => e);
      expect(e2).toMatchObject({ kind: "timeout", code: "timeout" });
      // Still healthy afterwards.
      expect((await engine.classify({ task: "q", texts: ["x"] })).predictions).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });
});

describe("worker failure", () => {
  it("in-flight requests fail with not_ready, the worker restarts, later requests succeed", async () => {
    const { engine } = await startEngine();
    try {
      await engine.upload("w", servableAdapterBytes(assets, { task: "w" }));
      engine.worker.crashForTesting();
      const err = await engine
        .classify({ task: "w", texts: Array.from({ length: 32 }, (_, i) => `text ${i} `.repeat(20)) })
        .catch((e) => e);
      expect(err).toMatchObject({ kind: "not_ready" });
      expect(engine.isReady()).toBe(false);
      await new Promise<void>((resolve) => engine.worker.once("ready", () => resolve()));
      expect(engine.isReady()).toBe(true);
      expect((await engine.classify({ task: "w", texts: ["works again"] })).predictions).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });
});

describe("several workers", () => {
  it("one worker's crash is restarted and counted while the other keeps serving every request", async () => {
    const { engine, metrics } = await startEngine({ workers: 2, threads: 1 });
    try {
      expect(engine.workers).toHaveLength(2);
      await engine.upload("w2", servableAdapterBytes(assets, { task: "w2" }));
      const [first, second] = engine.workers;
      const restarted = new Promise<void>((resolve) => first.once("ready", () => resolve()));
      first.crashForTesting();
      while (first.isReady()) await new Promise((r) => setTimeout(r, 5));
      // The other worker is up: the engine stays ready and nothing goes to the dead one.
      expect(engine.isReady()).toBe(true);
      expect(second.isReady()).toBe(true);
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) => engine.classify({ task: "w2", texts: [`during the restart ${i}`] })),
      );
      expect(answers.every((a) => a.predictions.length === 1)).toBe(true);
      await restarted;
      expect(await counter(metrics.workerRestarts)).toBe(1);
      expect(first.restartCount).toBe(1);
      expect(second.restartCount).toBe(0);
      expect((await engine.classify({ task: "w2", texts: ["after"] })).predictions).toHaveLength(1);
    } finally {
      await engine.close();
    }
  });

  it("gives the same predictions with 2×1, with or without a solo worker, as with 1×2", async () => {
    const texts = ["a gripping, funny film", "dull", "the plot goes nowhere and the actors know it", "fine"];
    const results: Record<string, number>[][] = [];
    for (const shape of [
      { workers: 1, threads: 2 },
      { workers: 2, threads: 1 },
      { workers: 2, threads: 1, soloThreads: 2 },
    ]) {
      const { engine } = await startEngine(shape);
      try {
        await engine.upload("same", servableAdapterBytes(assets, { task: "same" }));
        const parts = await Promise.all(texts.map((t) => engine.classify({ task: "same", texts: [t] })));
        results.push(parts.flatMap((p) => p.predictions.map((x) => x.scores!)));
      } finally {
        await engine.close();
      }
    }
    for (const other of results.slice(1))
      other.forEach((scores, i) =>
        Object.entries(scores).forEach(([label, s]) => expect(s).toBeCloseTo(results[0][i][label], 5)),
      );
  });

  it("runs a lone request on the solo worker, a burst on the others, and serves on while the solo worker restarts", async () => {
    const { engine, metrics } = await startEngine({ workers: 2, threads: 1, soloThreads: 2 });
    try {
      expect(engine.workers).toHaveLength(3);
      await engine.upload("solo", servableAdapterBytes(assets, { task: "solo" }));
      // Count each worker's runs (the runner calls run on the instance).
      const runs = engine.workers.map(() => 0);
      engine.workers.forEach((w, i) => {
        const run = w.run.bind(w);
        w.run = (b) => (runs[i]++, run(b));
      });
      await engine.classify({ task: "solo", texts: ["one request alone"] });
      expect(runs).toEqual([0, 0, 1]);
      // 96 texts in one request: three batches' worth at once go to the single-thread workers.
      const many = Array.from({ length: 96 }, (_, i) => `text number ${i} of a long request`);
      expect((await engine.classify({ task: "solo", texts: many })).predictions).toHaveLength(96);
      expect(runs[0] + runs[1]).toBeGreaterThanOrEqual(3);
      const solo = engine.workers[2];
      const restarted = new Promise<void>((resolve) => solo.once("ready", () => resolve()));
      solo.crashForTesting();
      while (solo.isReady()) await new Promise((r) => setTimeout(r, 5));
      const before = runs[0] + runs[1];
      expect((await engine.classify({ task: "solo", texts: ["while it restarts"] })).predictions).toHaveLength(1);
      expect(runs[0] + runs[1]).toBe(before + 1);
      await restarted;
      expect(await counter(metrics.workerRestarts)).toBe(1);
    } finally {
      await engine.close();
    }
  });
});

describe("deadline and cancellation through the engine", () => {
  it("one code per cause, counted by reason, and the queue depth back at 0", async () => {
    const { engine, metrics } = await startEngine();
    try {
      await engine.upload("dc", servableAdapterBytes(assets, { task: "dc" }));
      const late = await engine.classify({ task: "dc", texts: ["x", "y"], deadline: Date.now() - 1 }).catch((e) => e);
      expect(late).toMatchObject({ kind: "timeout", code: "timeout" });
      const abort = new AbortController();
      abort.abort();
      const gone = await engine.classify({ task: "dc", texts: ["x"], signal: abort.signal }).catch((e) => e);
      expect(gone).toMatchObject({ kind: "client_closed", code: "client_closed" });
      expect(await counter(metrics.queueDropped, { reason: "deadline" })).toBe(2);
      expect(await counter(metrics.queueDropped, { reason: "cancelled" })).toBe(1);
      expect(await counter(metrics.queueDepth)).toBe(0);
      expect(engine.queueDepth).toBe(0);
    } finally {
      await engine.close();
    }
  });
});
