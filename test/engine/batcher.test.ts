import { describe, expect, it } from "vitest";
import { Batcher, type BatcherLimits, type QueuedRow, type Slot } from "../../src/engine/batcher.js";
import { SettleHandle } from "../../src/engine/settle.js";
import { SktError } from "../../src/errors.js";
import { createMetrics, QUEUE_DROP_REASONS, type SktMetrics } from "../../src/metrics.js";

interface Row extends QueuedRow {
  id: number;
}

const LIMITS: BatcherLimits = {
  maxBatchSize: 32,
  maxBatchTokens: 4096,
  maxWaitMs: 0,
  maxPaddingRatio: 0.25,
  queueSize: 1000,
  requestTimeoutMs: 60_000,
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Lets handed-out batches reach the runner loops (they continue in later ticks). */
const tick = () => new Promise<void>((r) => setImmediate(r));

let nextId = 0;
function rows(lengths: number[]): Row[] {
  return lengths.map((length) => ({ id: nextId++, length }));
}

/**
 * A runner stand-in: `slotsPerWorker` loops per worker pull batches and run `run` on them; each
 * row's output is its id, so a test can check who got what. Returns the workers' busy counts.
 */
function pull(
  b: Batcher<Row>,
  run: (batch: Row[], worker: number) => Promise<void> | void,
  {
    workers = 1,
    slotsPerWorker = 1,
    ready = () => true,
  }: { workers?: number; slotsPerWorker?: number; ready?: (w: number) => boolean } = {},
): number[] {
  const busy = Array.from({ length: workers }, () => 0);
  for (let w = 0; w < workers; w++) {
    const slot: Slot = { ready: () => ready(w), idle: () => busy[w] === 0 };
    for (let s = 0; s < slotsPerWorker; s++)
      void (async () => {
        for (;;) {
          const batch = await b.next(slot);
          if (!batch) return;
          busy[w]++;
          try {
            await run([...batch.rows], w);
            batch.handles.forEach((h, i) => h.resolve(Float32Array.of(batch.rows[i].id)));
          } catch (e) {
            for (const h of batch.handles) h.reject(e as Error);
          } finally {
            busy[w]--;
            b.done(batch);
          }
        }
      })();
  }
  return busy;
}

async function counter(m: SktMetrics, reason: string): Promise<number> {
  return (await m.queueDropped.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
}
async function gauge(m: SktMetrics): Promise<number> {
  return (await m.queueDepth.get()).values[0]?.value ?? 0;
}

/** Runs the batcher with a gate: the first batch blocks until all rows are queued. */
async function batchesFor(lengths: number[], limits: Partial<BatcherLimits>): Promise<number[][]> {
  const out: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<Row>({ ...LIMITS, ...limits });
  pull(b, async (batch) => {
    out.push(batch.map((r) => r.id));
    if (out.length === 1) await gate;
  });
  const all = rows(lengths);
  const first = all[0].id;
  const done = [b.submit([all[0]])]; // starts the first batch, which waits at the gate
  await tick();
  done.push(b.submit(all.slice(1)));
  release();
  await Promise.all(done);
  await b.drain();
  return out.map((batch) => batch.map((id) => id - first));
}

describe("batch formation", () => {
  it("always includes the oldest row and keeps padding within the ratio", async () => {
    const lengths = [10, 50, 11, 52, 12, 49, 10, 51];
    const batches = await batchesFor(lengths, {});
    expect(batches[0]).toEqual([0]);
    for (const batch of batches.slice(1)) {
      const ls = batch.map((i) => lengths[i]);
      const real = ls.reduce((a, b) => a + b, 0);
      expect(Math.max(...ls) * ls.length - real).toBeLessThanOrEqual(0.25 * real);
    }
    // The oldest waiting row leads the next batch; every row runs exactly once.
    expect(batches[1]).toContain(1);
    expect(batches.flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // Without the padding limit the same queue would go as one batch with ~70% padding.
    expect(batches.length).toBeGreaterThan(2);
  });

  it("respects the row and padded-token budgets", async () => {
    const batches = await batchesFor(
      Array.from({ length: 21 }, () => 10),
      { maxBatchSize: 8, maxBatchTokens: 60 },
    );
    expect(batches.map((b) => b.length)).toEqual([1, 6, 6, 6, 2]);
  });

  it("with no padding limit, takes everything that fits", async () => {
    const batches = await batchesFor([10, 50, 11, 52, 12], { maxPaddingRatio: 1000 });
    expect(batches.map((b) => b.length)).toEqual([1, 4]);
  });

  it("resolves each request with its rows' outputs in order", async () => {
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 3 });
    pull(b, () => undefined);
    const a = rows([5, 9, 7, 3]);
    const c = rows([4]);
    const [ra, rc] = await Promise.all([b.submit(a), b.submit(c)]);
    expect(ra.map((v) => v[0])).toEqual(a.map((r) => r.id));
    expect(rc.map((v) => v[0])).toEqual(c.map((r) => r.id));
    await b.drain();
  });
});

describe("hand-out to worker slots", () => {
  it("with two slots on one worker, a second batch leaves while the first runs only once a full batch waits", async () => {
    const started: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 4 });
    pull(
      b,
      async (batch) => {
        started.push(batch.map((r) => r.id));
        await gate; // every batch runs until released
      },
      { slotsPerWorker: 2 },
    );
    const all = rows(Array.from({ length: 9 }, () => 10));
    const done = [b.submit([all[0]])];
    await tick();
    done.push(b.submit(all.slice(1, 4))); // 3 queued, fewer than a batch: they wait for the running one
    await sleep(20);
    expect(started).toEqual([[all[0].id]]);
    done.push(b.submit(all.slice(4, 6))); // 5 queued: a full batch leaves at once, the 6th row waits
    await sleep(20);
    expect(started.length).toBe(2);
    expect(started[1].length).toBe(4);
    expect(b.depth).toBe(1);
    done.push(b.submit(all.slice(6))); // both slots busy: nothing more leaves yet
    await sleep(20);
    expect(started.length).toBe(2);
    release();
    await Promise.all(done);
    await b.drain();
    expect(started.flat().sort((x, y) => x - y)).toEqual(all.map((r) => r.id));
  });

  it("with two workers, a partial batch goes to the idle one while the other runs", async () => {
    const ran: { worker: number; ids: number[] }[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 8 });
    pull(
      b,
      async (batch, worker) => {
        ran.push({ worker, ids: batch.map((r) => r.id) });
        if (ran.length === 1) await gate;
      },
      { workers: 2 },
    );
    const first = b.submit(rows([10]));
    await tick();
    const second = b.submit(rows([10, 10])); // partial, but worker 1 is idle: it leaves (after maxWaitMs 0)
    await second;
    expect(ran.map((r) => r.worker).sort()).toEqual([0, 1]);
    release();
    await first;
    await b.drain();
  });

  it("hands nothing to a slot whose worker is not ready, and serves it again after wake()", async () => {
    let up = false;
    const b = new Batcher<Row>(LIMITS);
    pull(b, () => undefined, { ready: () => up });
    const r = b.submit(rows([3]));
    await sleep(10);
    expect(b.depth).toBe(1);
    up = true;
    b.wake();
    expect(await r).toHaveLength(1);
    await b.drain();
  });

  it("when no worker is alive, waiting rows fail with 503 worker_not_ready and new ones are refused until one is back", async () => {
    const m = createMetrics({ collectDefaults: false });
    let up = false;
    const b = new Batcher<Row>(LIMITS, m);
    pull(b, () => undefined, { ready: () => up });
    const waiting = b.submit(rows([3, 4]));
    const pass = b.submit(rows([5]), { internal: true });
    b.setAvailable(false);
    await expect(waiting).rejects.toMatchObject({ kind: "not_ready", code: "worker_not_ready" });
    await expect(pass).rejects.toMatchObject({ kind: "not_ready", code: "worker_not_ready" });
    await expect(b.submit(rows([1]))).rejects.toMatchObject({ code: "worker_not_ready" });
    expect(await counter(m, "no_worker")).toBe(3); // two waiting, one refused; internal rows are not counted
    expect(await gauge(m)).toBe(0);
    up = true;
    b.setAvailable(true);
    expect(await b.submit(rows([1]))).toHaveLength(1);
    await b.drain();
  });

  it("runs internal passes alone, ahead of client rows, outside the queue bound and depth", async () => {
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>({ ...LIMITS, queueSize: 2 }, m);
    const ran: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    pull(b, async (batch) => {
      ran.push(batch.map((r) => r.id));
      if (ran.length === 1) await gate;
    });
    const blocker = b.submit(rows([5]));
    await tick();
    const client = rows([5, 5]);
    const waiting = b.submit(client); // fills the queue
    const internal = rows([7, 8]);
    const passes = internal.map((r) => b.submit([r], { internal: true }));
    expect(b.depth).toBe(2);
    expect(await gauge(m)).toBe(2);
    release();
    await Promise.all([blocker, waiting, ...passes]);
    expect(ran.slice(1, 3)).toEqual([[internal[0].id], [internal[1].id]]);
    expect(ran[3].sort()).toEqual(client.map((r) => r.id).sort());
    await b.drain();
  });

  it("after drain(), next() gives null and new rows are refused with shutting_down", async () => {
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>(LIMITS, m);
    pull(b, () => undefined);
    await b.submit(rows([1]));
    await b.drain();
    expect(await b.next({ ready: () => true, idle: () => true })).toBeNull();
    await expect(b.submit(rows([1, 2]))).rejects.toMatchObject({ kind: "not_ready", code: "shutting_down" });
    expect(await counter(m, "shutting_down")).toBe(2);
  });
});

describe("waiting for company", () => {
  it("an idle worker takes a row that ends a quiet spell at once; a row close behind another waits up to maxWaitMs", async () => {
    const started: number[] = [];
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 4, maxWaitMs: 40 });
    pull(b, (batch) => void started.push(...batch.map((r) => r.id)));
    const [r0, r1, r2, r3] = rows([5, 5, 5, 5]).map((r) => r.id);
    void b.submit([{ id: r0, length: 5 }]);
    await tick();
    expect(started).toEqual([r0]); // no wait
    void b.submit([{ id: r1, length: 5 }]); // right behind r0: it may have company coming, so it waits
    await tick();
    expect(started).toEqual([r0]);
    await sleep(20);
    void b.submit([{ id: r2, length: 5 }]); // still within the wait window of r1: joins its batch
    await sleep(60);
    expect(started).toEqual([r0, r1, r2]);
    await sleep(60); // a quiet spell longer than maxWaitMs
    void b.submit([{ id: r3, length: 5 }]);
    await tick();
    expect(started).toEqual([r0, r1, r2, r3]);
    await b.drain();
  });

  it("rows closer together than the wait plus one row's run time wait for company, even after the wait alone has passed", async () => {
    const started: number[] = [];
    let runMs = 500; // the first batch is slow: one row then costs ~100 ms in the moving average
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 4, maxWaitMs: 5 });
    pull(b, async (batch) => {
      started.push(...batch.map((r) => r.id));
      await sleep(runMs);
    });
    const [r0, r1, r2] = rows([5, 5, 5]);
    await b.submit([r0]);
    runMs = 0;
    await sleep(1);
    const p1 = b.submit([r1]); // 500 ms after r0: a quiet spell, runs at once
    await tick();
    expect(started).toEqual([r0.id, r1.id]);
    await p1;
    await sleep(15);
    // 15 ms after r1, with the worker idle: longer than maxWaitMs, but shorter than maxWaitMs plus
    // a row's run time (~80 ms by now), so r2 waits the 5 ms for company instead of going at once.
    const p2 = b.submit([r2]);
    await tick();
    expect(started).toEqual([r0.id, r1.id]);
    await p2;
    expect(started).toEqual([r0.id, r1.id, r2.id]);
    await b.drain();
  });
});

describe("deadlines, cancellation and the queue metrics", () => {
  /** A batcher whose single worker is held at a gate by a first row, so later rows stay queued. */
  async function heldBatcher(limits: Partial<BatcherLimits> = {}) {
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 4, maxWaitMs: 60_000, maxPaddingRatio: 10, ...limits }, m);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    pull(b, () => gate);
    const blocker = b.submit(rows([10]));
    await tick();
    return { b, m, release, blocker };
  }

  it("refuses rows beyond the queue bound atomically, counted as queue_full", async () => {
    const { b, m, release, blocker } = await heldBatcher({ queueSize: 3 });
    const waiting = b.submit(rows([1, 2]));
    await expect(b.submit(rows([1, 2]))).rejects.toMatchObject({ kind: "overloaded", code: "queue_full" });
    expect(b.depth).toBe(2);
    expect(await counter(m, "queue_full")).toBe(2);
    release();
    await b.drain(); // a partial batch leaves at once when draining
    await Promise.all([blocker, waiting]);
  });

  it("a deadline that passes in the queue rejects with kind and code timeout, and the depth falls", async () => {
    const { b, m, release, blocker } = await heldBatcher();
    const late = b.submit(rows([10, 10, 10]), { deadline: Date.now() + 30 });
    expect(await gauge(m)).toBe(3);
    await expect(late).rejects.toMatchObject({ kind: "timeout", code: "timeout" });
    expect(b.depth).toBe(0);
    expect(await gauge(m)).toBe(0);
    expect(await counter(m, "deadline")).toBe(3);
    release();
    await blocker;
    await b.drain();
  });

  it("an abort rejects with client_closed (or the abort's own SktError), counted as cancelled or deadline", async () => {
    const { b, m, release, blocker } = await heldBatcher();
    const a1 = new AbortController();
    const a2 = new AbortController();
    const r1 = b.submit(rows([10, 10]), { signal: a1.signal });
    const r2 = b.submit(rows([10]), { signal: a2.signal });
    const r3 = b.submit(rows([10]));
    a1.abort();
    await expect(r1).rejects.toMatchObject({ kind: "client_closed", code: "client_closed" });
    expect(await gauge(m)).toBe(2);
    a2.abort(new SktError("timeout", "timeout", "the server's backstop fired"));
    await expect(r2).rejects.toMatchObject({ kind: "timeout", code: "timeout" });
    expect(await gauge(m)).toBe(1);
    expect(await counter(m, "cancelled")).toBe(2);
    expect(await counter(m, "deadline")).toBe(1);
    // Already aborted before it was queued: refused, never queued.
    const gone = new AbortController();
    gone.abort();
    await expect(b.submit(rows([1]), { signal: gone.signal })).rejects.toMatchObject({ code: "client_closed" });
    expect(await counter(m, "cancelled")).toBe(3);
    release();
    await b.drain();
    await Promise.all([blocker, r3]);
    expect(await gauge(m)).toBe(0);
  });

  it("a row that fails settles its request and takes its other rows out of the queue (request_failed)", async () => {
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 1, maxWaitMs: 0 }, m);
    const boom = new SktError("not_ready", "worker_crashed", "the worker died");
    pull(b, (batch) => {
      if (batch[0].length === 99) throw boom;
    });
    const req = b.submit(rows([99, 1, 1, 1]));
    await expect(req).rejects.toBe(boom);
    expect(b.depth).toBe(0);
    expect(await gauge(m)).toBe(0);
    expect(await counter(m, "request_failed")).toBe(3);
    expect(await b.submit(rows([1]))).toHaveLength(1); // others unaffected
    await b.drain();
  });

  it("the rows' time in queue is observed once per row that runs", async () => {
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 2 }, m);
    pull(b, () => undefined);
    await Promise.all([b.submit(rows([1, 2, 3])), b.submit(rows([4]), { internal: true })]);
    const count = (await m.queueDuration.get()).values.find((v) => v.metricName?.endsWith("_count"))?.value;
    expect(count).toBe(3);
    await b.drain();
  });
});

describe("settle handles", () => {
  it("settle a row exactly once: later resolves and rejects are no-ops that say so", () => {
    const seen: string[] = [];
    const h = new SettleHandle<number>(
      (v) => seen.push(`ok ${v}`),
      (e) => seen.push(`err ${e.message}`),
    );
    expect(h.settled).toBe(false);
    expect(h.resolve(1)).toBe(true);
    expect(h.resolve(2)).toBe(false);
    expect(h.reject(new Error("late"))).toBe(false);
    expect(h.settled).toBe(true);
    expect(seen).toEqual(["ok 1"]);
  });

  it("a row whose request already failed ignores the result its batch brings later", async () => {
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 1 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const late: boolean[] = [];
    void (async () => {
      const batch = (await b.next({ ready: () => true, idle: () => true }))!;
      await gate;
      late.push(batch.handles[0].resolve(new Float32Array(1)));
      b.done(batch);
    })();
    const abort = new AbortController();
    const r = b.submit(rows([5]), { signal: abort.signal });
    await tick();
    abort.abort();
    await expect(r).rejects.toMatchObject({ code: "client_closed" });
    release();
    await b.drain();
    expect(late).toEqual([false]);
  });

  it("every path settles every row once: random deadlines, aborts and failing batches (seeded)", async () => {
    let seed = 12345;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const m = createMetrics({ collectDefaults: false });
    const b = new Batcher<Row>({ ...LIMITS, maxBatchSize: 4, maxWaitMs: 1, queueSize: 40 }, m);
    const handles: SettleHandle<Float32Array>[] = [];
    const busy = Array.from({ length: 2 }, () => 0);
    for (let w = 0; w < 2; w++)
      void (async () => {
        const slot: Slot = { ready: () => true, idle: () => busy[w] === 0 };
        for (;;) {
          const batch = await b.next(slot);
          if (!batch) return;
          busy[w]++;
          handles.push(...batch.handles);
          await sleep(random() * 4);
          // Settle twice on purpose: the second attempt must be refused.
          for (const h of batch.handles) {
            if (random() < 0.15) h.reject(new SktError("internal", "inference_failed", "boom"));
            else h.resolve(new Float32Array(1));
            expect(h.resolve(new Float32Array(1))).toBe(false);
          }
          busy[w]--;
          b.done(batch);
        }
      })();
    const outcomes: Promise<string>[] = [];
    let submitted = 0;
    for (let i = 0; i < 120; i++) {
      const abort = new AbortController();
      const n = 1 + Math.floor(random() * 5);
      submitted += n;
      const deadline = random() < 0.2 ? Date.now() + random() * 5 : undefined;
      outcomes.push(
        b
          .submit(rows(Array.from({ length: n }, () => 1 + Math.floor(random() * 30))), {
            deadline,
            signal: abort.signal,
          })
          .then(
            (out) => (out.length === n ? "ok" : "wrong length"),
            (e: SktError) => e.code,
          ),
      );
      if (random() < 0.2) setTimeout(() => abort.abort(), random() * 5);
      if (random() < 0.3) await sleep(random() * 3);
    }
    const results = await Promise.all(outcomes);
    await b.drain();
    expect(results.every((r) => ["ok", "timeout", "client_closed", "inference_failed", "queue_full"].includes(r))).toBe(
      true,
    );
    expect(new Set(results).size).toBeGreaterThan(2); // the mix really exercised several paths
    expect(handles.every((h) => h.settled)).toBe(true);
    expect(b.depth).toBe(0);
    expect(await gauge(m)).toBe(0);
    // Every row either ran (handed out) or was dropped, never both, never neither.
    let dropped = 0;
    for (const reason of QUEUE_DROP_REASONS) dropped += await counter(m, reason);
    expect(handles.length + dropped).toBe(submitted);
  });
});
