/**
 * The queue at the heart of the engine: rows in, batches out. Rows of any task share a batch; a
 * batch is bounded by a row count and a padded-token budget, and is cut from a window of queued
 * rows sorted by length around the oldest one, so long and short texts are not padded together
 * while nobody waits behind a stream of better-fitting rows. While the worker is busy rows pile up
 * and batches fill by themselves; when it is idle a batch leaves after at most `maxWaitMs`, or at
 * once when its first row ends a quiet spell (see push()).
 */
import { SktError } from "../errors.js";

export interface BatcherLimits {
  maxBatchSize: number;
  /** Budget for rows × longest row (padded positions), the cost the backbone actually pays. */
  maxBatchTokens: number;
  maxWaitMs: number;
  /**
   * Most padding a batch may carry, as a fraction of its real tokens. On a CPU a padded position
   * costs as much as a real one and bigger batches are barely cheaper per token, so a row whose
   * length would pad the batch beyond this waits for the next batch instead.
   */
  maxPaddingRatio: number;
  /** Rows allowed to wait; more is refused with an `overloaded` error. */
  queueSize: number;
}

export interface QueuedRow {
  /** Positions this row occupies (soft prompt + text tokens). */
  readonly length: number;
  readonly enqueuedAt: number;
  readonly deadline: number;
  /** Called when the row leaves the queue without running (deadline, cancellation). */
  reject(e: Error): void;
}

/** How far past the front the batcher looks for rows of similar length. */
const WINDOW_FACTOR = 4;

export class Batcher<Row extends QueuedRow> {
  private queue: Row[] = [];
  private inFlight = 0;
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** performance.now() of the last push, to tell a lone request from the start of a burst. */
  private lastPushAt = -Infinity;
  /** Moving average of a batch's run time per row, ms: what serving each row alone would cost. */
  private msPerRow = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly limits: BatcherLimits,
    private readonly runBatch: (rows: Row[]) => Promise<void>,
    /** Batches handed to the runner at once (see schedule()). */
    private readonly maxInFlight = 1,
    /** Told the queue's depth after every change: push, dispatch, cancellation, expiry. */
    private readonly onDepth: (depth: number) => void = () => undefined,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  /** Adds rows atomically: all of them, or none when the queue would overflow. */
  push(rows: Row[]): void {
    if (this.stopped)
      throw new SktError("not_ready", "shutting_down", "the server is shutting down and takes no new work");
    if (this.queue.length + rows.length > this.limits.queueSize) {
      throw new SktError(
        "overloaded",
        "queue_full",
        `the request queue is full (${this.queue.length} of ${this.limits.queueSize} rows waiting); retry after a short wait`,
      );
    }
    const now = performance.now();
    // Rows that arrive further apart than the wait plus the time to run one row alone have no
    // company coming soon, and running each at once keeps up with them: an idle worker takes such
    // a row immediately. Closer arrivals wait for company as before — run one by one they would
    // outpace the worker (batch-1 serving has less capacity than batching).
    const afterQuiet = now - this.lastPushAt > this.limits.maxWaitMs + this.msPerRow;
    this.lastPushAt = now;
    this.queue.push(...rows);
    this.onDepth(this.queue.length);
    this.schedule(afterQuiet);
  }

  /** Takes rows out of the queue if they have not started (cancellation, deadline). */
  remove(rows: Row[]): void {
    const gone = new Set<Row>(rows);
    const before = this.queue.length;
    this.queue = this.queue.filter((r) => !gone.has(r));
    if (this.queue.length !== before) this.onDepth(this.queue.length);
    this.notifyIdle();
  }

  /** Refuse new rows; resolves when everything queued has run. */
  async drain(): Promise<void> {
    this.stopped = true;
    this.schedule();
    if (this.queue.length === 0 && this.inFlight === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private notifyIdle(): void {
    if (this.queue.length === 0 && this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  private schedule(afterQuiet = false): void {
    if (this.timer || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    const full = this.queue.length >= this.limits.maxBatchSize;
    // While a batch runs, another leaves only when a full one is waiting: it then queues inside the
    // worker, which starts it without idling; a partial one would only split rows that keep coming.
    if (this.inFlight > 0 && !full && !this.stopped) return;
    const waited = Date.now() - this.queue[0].enqueuedAt;
    if (full || waited >= this.limits.maxWaitMs || this.stopped || afterQuiet) {
      this.dispatch();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.schedule();
    }, this.limits.maxWaitMs - waited);
  }

  private dispatch(): void {
    this.dropExpired();
    if (this.queue.length === 0) {
      this.notifyIdle();
      return;
    }
    const batch = this.selectBatch();
    const taken = new Set(batch);
    this.queue = this.queue.filter((r) => !taken.has(r));
    this.onDepth(this.queue.length);
    this.inFlight++;
    const started = performance.now();
    this.runBatch(batch)
      .catch(() => undefined) // runBatch settles its own rows
      .finally(() => {
        this.inFlight--;
        // With two batches in flight this includes waiting behind the other: an overestimate, on the side of batching.
        this.msPerRow = 0.8 * this.msPerRow + (0.2 * (performance.now() - started)) / batch.length;
        this.notifyIdle();
        this.schedule();
      });
    this.schedule();
  }

  private dropExpired(): void {
    const now = Date.now();
    const expired = this.queue.filter((r) => r.deadline <= now);
    if (expired.length === 0) return;
    this.queue = this.queue.filter((r) => r.deadline > now);
    this.onDepth(this.queue.length);
    for (const r of expired)
      r.reject(
        new SktError("timeout", "deadline_exceeded", "the request's deadline passed while it waited in the queue"),
      );
  }

  /** The oldest row plus its nearest neighbours by length, within the row, token and padding budgets. */
  private selectBatch(): Row[] {
    const { maxBatchSize, maxBatchTokens, maxPaddingRatio } = this.limits;
    const window = this.queue.slice(0, maxBatchSize * WINDOW_FACTOR);
    const sorted = [...window].sort((a, b) => a.length - b.length);
    let lo = sorted.indexOf(this.queue[0]);
    let hi = lo;
    let real = sorted[lo].length;
    const fits = (from: number, to: number, realTokens: number) => {
      const padded = (to - from + 1) * sorted[to].length;
      return (
        to - from + 1 <= maxBatchSize && padded <= maxBatchTokens && padded - realTokens <= maxPaddingRatio * realTokens
      );
    };
    for (;;) {
      // Grow towards whichever neighbour is closer in length; stop when neither fits.
      const canUp = hi + 1 < sorted.length && fits(lo, hi + 1, real + sorted[hi + 1].length);
      const canDown = lo > 0 && fits(lo - 1, hi, real + sorted[lo - 1].length);
      if (!canUp && !canDown) break;
      const upGap = canUp ? sorted[hi + 1].length - sorted[hi].length : Infinity;
      const downGap = canDown ? sorted[lo].length - sorted[lo - 1].length : Infinity;
      if (upGap <= downGap) real += sorted[++hi].length;
      else real += sorted[--lo].length;
    }
    return sorted.slice(lo, hi + 1);
  }
}
