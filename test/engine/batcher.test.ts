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
  const b = new Batcher<Row>({ maxBatchSize: 32, maxBatchTokens: 4096, maxWaitMs: 0, maxPaddingRatio: 0.25, queueSize: 1000, ...limits }, async (batch) => {
    out.push(batch.map((r) => r.id));
    if (out.length === 1) await gate;
  });
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
    const batches = await batchesFor(Array.from({ length: 21 }, () => 10), { maxBatchSize: 8, maxBatchTokens: 60 });
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
    const b = new Batcher<Row>({ maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 0, maxPaddingRatio: 0.25, queueSize: 100 }, async (batch) => {
      started.push(batch.map((r) => r.id));
      await gate; // every batch runs until released
    }, 2);
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
    const b = new Batcher<Row>({ maxBatchSize: 4, maxBatchTokens: 4096, maxWaitMs: 1000, maxPaddingRatio: 0.25, queueSize: 3 }, async () => {});
    b.push(rows([1, 2]));
    expect(() => b.push(rows([1, 2]))).toThrow(/queue is full/);
    expect(b.depth).toBe(2);
  });
});
