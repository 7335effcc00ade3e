import { describe, expect, it } from "vitest";
import { Batcher, type BatcherLimits, type QueuedRow } from "../../src/engine/batcher.js";

interface Row extends QueuedRow {
  id: number;
}

function rows(lengths: number[], deadline = Date.now() + 60_000): Row[] {
  const now = Date.now();
  return lengths.map((length, id) => ({ id, length, enqueuedAt: now + id, deadline, reject: () => {} }));
}

/** Runs the batcher with a gate: the first batch blocks until all rows are queued. */
async function batchesFor(lengths: number[], limits: Partial<BatcherLimits>): Promise<number[][]> {
  const out: number[][] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const b = new Batcher<Row>(
    { maxBatchSize: 32, maxBatchTokens: 4096, maxWaitMs: 0, maxPaddingRatio: 0.25, queueSize: 1000, ...limits },
    async (batch) => {
      out.push(batch.map((r) => r.id));
      if (out.length === 1) await gate;
    },
  );
  const all = rows(lengths);
  b.push([all[0]]); // starts the first batch, which waits at the gate
  b.push(all.slice(1));
  release();
  await b.drain();
  return out;
}

describe("batcher", () => {
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

  it("with two batches in flight allowed, a second leaves while the first runs only once a full batch waits", async () => {
    const started: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<Row>(
      { maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 0, maxPaddingRatio: 0.25, queueSize: 100 },
      async (batch) => {
        started.push(batch.map((r) => r.id));
        await gate; // every batch runs until released
      },
      2,
    );
    const all = rows(Array.from({ length: 9 }, () => 10));
    b.push([all[0]]);
    b.push(all.slice(1, 4)); // 3 queued, fewer than a batch: they wait for the running one
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([[0]]);
    b.push(all.slice(4, 6)); // 5 queued: a full batch leaves at once, the 6th row waits
    await new Promise((r) => setTimeout(r, 20));
    expect(started.length).toBe(2);
    expect(started[1].length).toBe(4);
    expect(b.depth).toBe(1);
    b.push(all.slice(6)); // two batches in flight: nothing more leaves yet
    await new Promise((r) => setTimeout(r, 20));
    expect(started.length).toBe(2);
    release();
    await b.drain();
    expect(started.flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it("refuses rows beyond the queue bound atomically", () => {
    const b = new Batcher<Row>(
      { maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 1000, maxPaddingRatio: 0.25, queueSize: 3 },
      () => new Promise<void>(() => {}),
    );
    b.push(rows([1])); // runs at once (nothing came before it) and never finishes
    b.push(rows([1, 2]));
    expect(() => b.push(rows([1, 2]))).toThrow(/queue is full/);
    expect(b.depth).toBe(2);
  });

  it("an idle worker takes a row that ends a quiet spell at once; a row close behind another waits up to maxWaitMs", async () => {
    const started: number[] = [];
    const b = new Batcher<Row>(
      { maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 40, maxPaddingRatio: 0.25, queueSize: 100 },
      async (batch) => {
        started.push(...batch.map((r) => r.id));
      },
    );
    // Rows are made when pushed: a row's wait counts from its enqueuedAt.
    const row = (id: number): Row => ({ ...rows([5])[0], id });
    b.push([row(0)]);
    expect(started).toEqual([0]); // dispatched inside push: no wait
    await new Promise((r) => setTimeout(r, 0));
    b.push([row(1)]); // right behind r0: it may have company coming, so it waits
    expect(started).toEqual([0]);
    await new Promise((r) => setTimeout(r, 25));
    b.push([row(2)]); // still within the wait window of r1: joins its batch
    await new Promise((r) => setTimeout(r, 60));
    expect(started).toEqual([0, 1, 2]);
    await new Promise((r) => setTimeout(r, 60)); // a quiet spell longer than maxWaitMs
    b.push([row(3)]);
    expect(started).toEqual([0, 1, 2, 3]);
    await b.drain();
  });

  it("rows closer together than the wait plus one row's run time wait for company, even after the wait alone has passed", async () => {
    const started: number[] = [];
    const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
    let runMs = 500; // the first batch is slow: one row then costs ~100 ms in the moving average
    let finished = Promise.resolve();
    const b = new Batcher<Row>(
      { maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 5, maxPaddingRatio: 0.25, queueSize: 100 },
      (batch) => {
        started.push(...batch.map((r) => r.id));
        finished = sleep(runMs);
        return finished;
      },
    );
    // Rows are made when pushed: a row's wait counts from its enqueuedAt.
    const row = (id: number): Row => ({ ...rows([5])[0], id });
    b.push([row(0)]);
    await finished;
    runMs = 0;
    await sleep(1);
    b.push([row(1)]); // 500 ms after r0: a quiet spell, runs at once
    expect(started).toEqual([0, 1]);
    await finished;
    await sleep(15);
    // 15 ms after r1, with the worker idle: longer than maxWaitMs, but shorter than maxWaitMs plus
    // a row's run time (~80 ms by now), so r2 waits the 5 ms for company instead of going at once.
    b.push([row(2)]);
    expect(started).toEqual([0, 1]);
    await sleep(30);
    expect(started).toEqual([0, 1, 2]);
    await b.drain();
  });

  it("reports the depth after every change, cancellations and expiry included (issue 18, defect 7)", async () => {
    const depths: number[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const b = new Batcher<Row>(
      { maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 60_000, maxPaddingRatio: 10, queueSize: 100 },
      () => gate,
      1,
      (d) => depths.push(d),
    );
    const first = rows([10]);
    b.push(first); // ends a quiet spell: dispatched at once, and holds the runner at the gate
    const waiting = rows([10, 10, 10, 10, 10]);
    b.push(waiting);
    expect(depths.at(-1)).toBe(5);
    b.remove(waiting.slice(0, 3)); // three clients go away
    expect(depths.at(-1)).toBe(2);
    b.remove(waiting.slice(3));
    expect(depths.at(-1)).toBe(0);
    expect(b.depth).toBe(0);
    const expiring = rows([10], Date.now() - 1);
    b.push(expiring);
    expect(depths.at(-1)).toBe(1);
    release();
    await b.drain(); // the expired row is dropped when the next batch is cut
    expect(depths.at(-1)).toBe(0);
  });
});
