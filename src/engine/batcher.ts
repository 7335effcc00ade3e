/**
 * The queue at the heart of the engine (text-embeddings-inference's `queue.rs` in shape): it owns
 * the rows waiting to run, their requests' deadlines and cancellation, the queue metrics, and the
 * choice of batches, which the runner pulls with `next()` whenever a worker slot is free.
 *
 * Rows of any task share a batch; a batch is bounded by a row count and a token budget (real tokens
 * plus padding, weighted by what padding costs the graphs in use: all of it with padded graphs,
 * only attention's share with packed ones), and is cut from a window of queued rows sorted by
 * length around the oldest one, so long and short texts are not padded together while nobody waits
 * behind a stream of better-fitting rows. While
 * every worker is busy rows pile up and batches fill by themselves; a partial batch goes only to an
 * idle worker, after at most `maxWaitMs`, or at once when its first row ends a quiet spell.
 *
 * Every row gets one `SettleHandle`; a request settles when all its rows have (or at the first
 * failure, which settles the rest and takes them out of the queue).
 */
import { SktError, clientClosed, deadlineExceeded } from "../errors.js";
import type { QueueDropReason as DropReason, SktMetrics } from "../metrics.js";
import { SettleHandle } from "./settle.js";

export interface BatcherLimits {
  maxBatchSize: number;
  /**
   * Budget for a batch's cost in positions, the cost the backbone actually pays: real tokens plus
   * `paddingCost` × padding (rows × longest row with the padded graphs).
   */
  maxBatchTokens: number;
  maxWaitMs: number;
  /**
   * Most padding a batch may carry, as a fraction of its real tokens. On a CPU a padded position
   * costs as much as a real one and bigger batches are barely cheaper per token, so a row whose
   * length would pad the batch beyond this waits for the next batch instead.
   */
  maxPaddingRatio: number;
  /**
   * What one padding position costs relative to a real one (default 1: the padded graphs). The
   * packed graphs pay for padding only in attention (PACKED_PADDING_COST), so both budgets above
   * count it at that weight and batches may span more different lengths.
   */
  paddingCost?: number;
  /** Rows allowed to wait; more is refused with an `overloaded` error. */
  queueSize: number;
  /** Deadline of a request that brings none (ms from submission). */
  requestTimeoutMs: number;
}

export interface QueuedRow {
  /** Positions this row occupies (soft prompt + text tokens). */
  readonly length: number;
}

export interface SubmitOptions {
  /** Absolute deadline (ms since epoch); default: now + `requestTimeoutMs`. Ignored for internal passes. */
  deadline?: number;
  /** Aborting it cancels the request; its reason (an SktError) says why, else `client_closed`. */
  signal?: AbortSignal;
  /**
   * An internal pass (semantic pass, probe), not a client's row: it runs alone, ahead of client
   * rows, is not counted against `queueSize` or in the queue metrics, and has no deadline.
   */
  internal?: boolean;
}

/** What the batcher reports to Prometheus (a subset of SktMetrics). */
export type QueueMetrics = Pick<SktMetrics, "queueDepth" | "queueDuration" | "queueDropped">;

/** A batch handed to the runner: rows and, in the same order, the handle that settles each. */
export interface Batch<Row, Out> {
  readonly rows: readonly Row[];
  readonly handles: readonly SettleHandle<Out>[];
  /** An internal pass: not a client's rows (kept out of batch metrics and the batch log). */
  readonly internal: boolean;
}

/** A runner's worker slot, as the batcher sees it when a batch is ready to leave. */
export interface Slot {
  /** The slot's worker is alive and can take a batch now. */
  ready(): boolean;
  /** The slot's worker runs nothing: a partial batch may go to it. */
  idle(): boolean;
  /** Called as a batch is handed to the slot, before the batcher looks at any slot again. */
  take?(): void;
}

interface Request<Out> {
  readonly deadline: number;
  handles: SettleHandle<Out>[];
  done: boolean;
  cleanup(): void;
}

interface Entry<Row, Out> {
  readonly row: Row;
  readonly handle: SettleHandle<Out>;
  readonly request: Request<Out>;
  readonly enqueuedAt: number;
}

interface Waiter<Row, Out> {
  readonly slot: Slot;
  resolve(batch: Batch<Row, Out> | null): void;
}

/** Longer gaps between arrivals count as this (a long pause says "quiet", not how quiet). */
const MAX_ARRIVAL_GAP_MS = 1000;

/** How far past the front the batcher looks for rows of similar length. */
const WINDOW_FACTOR = 4;

export class Batcher<Row extends QueuedRow, Out = Float32Array> {
  /** Client rows, oldest first. */
  private queue: Entry<Row, Out>[] = [];
  /** Internal passes: each runs alone, before any client row. */
  private urgent: Entry<Row, Out>[] = [];
  private waiters: Waiter<Row, Out>[] = [];
  private readonly handedOutAt = new Map<Batch<Row, Out>, number>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** performance.now() of the last submit, to tell a lone request from the start of a burst. */
  private lastPushAt = -Infinity;
  /** Moving average of a batch's run time per row, ms: what serving each row alone would cost. */
  private msPerRow = 0;
  /** Moving average of the time between client rows' arrivals, ms (a request of n rows: n arrivals). */
  private arrivalGapMs = Infinity;
  private arrivalCount = 0;
  private idleWaiters: (() => void)[] = [];
  private scheduling = false;
  /** False while no worker is alive: nothing could run, so nothing waits (see setAvailable). */
  private available = true;

  constructor(
    private readonly limits: BatcherLimits,
    private readonly metrics?: QueueMetrics,
  ) {}

  /** Client rows waiting (what `skt_queue_depth` shows). */
  get depth(): number {
    return this.queue.length;
  }

  /**
   * The time between client rows' arrivals lately, ms: their moving average, or the time since the
   * last one when that is longer (a quiet spell ends a burst's average at once). Infinity before any.
   */
  arrivalGap(now = performance.now()): number {
    return Math.max(this.arrivalGapMs, now - this.lastPushAt);
  }

  /** Client rows submitted so far (the runner counts the ones that arrive during a run). */
  get arrivals(): number {
    return this.arrivalCount;
  }

  /** Whether `rows` more client rows fit the queue now (`submit` refuses them with `queue_full` otherwise). */
  hasRoomFor(rows: number): boolean {
    return this.queue.length + rows <= this.limits.queueSize;
  }

  /** Batches handed out and not yet reported done. */
  get inFlight(): number {
    return this.handedOutAt.size;
  }

  /**
   * Queues a request's rows atomically (all of them, or none when the queue would overflow) and
   * resolves with one output per row, in order, once all have run; rejects at the first failure.
   */
  submit(rows: Row[], opts: SubmitOptions = {}): Promise<Out[]> {
    const internal = opts.internal ?? false;
    if (this.stopped) return this.refuse(rows, "shutting_down", internal);
    if (!this.available) return this.refuse(rows, "no_worker", internal);
    if (!internal && !this.hasRoomFor(rows.length)) return this.refuse(rows, "queue_full");
    const signal = opts.signal;
    if (signal?.aborted) return this.refuse(rows, "cancelled", internal, cancellation(signal));

    return new Promise<Out[]>((resolve, reject) => {
      const results = new Array<Out>(rows.length);
      let remaining = rows.length;
      const deadline = internal ? Infinity : (opts.deadline ?? Date.now() + this.limits.requestTimeoutMs);
      const onAbort = () => this.fail(request, cancellation(signal!));
      const timer = Number.isFinite(deadline)
        ? setTimeout(() => this.fail(request, deadlineExceeded()), Math.max(0, deadline - Date.now()))
        : null;
      const request: Request<Out> = {
        deadline,
        handles: [],
        done: false,
        cleanup: () => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
        },
      };
      request.handles = rows.map(
        (_, i) =>
          new SettleHandle<Out>(
            (value) => {
              results[i] = value;
              if (--remaining > 0 || request.done) return;
              request.done = true;
              request.cleanup();
              resolve(results);
            },
            (e) => {
              this.fail(request, e);
              reject(e);
            },
          ),
      );
      signal?.addEventListener("abort", onAbort, { once: true });

      const now = Date.now();
      const entries = rows.map((row, i) => ({ row, handle: request.handles[i], request, enqueuedAt: now }));
      if (internal) {
        this.urgent.push(...entries);
        this.schedule();
        return;
      }
      const at = performance.now();
      // Rows that arrive further apart than the wait plus the time to run one row alone have no
      // company coming soon, and running each at once keeps up with them: an idle worker takes such
      // a row immediately. Closer arrivals wait for company — run one by one they would outpace
      // the workers (batch-1 serving has less capacity than batching).
      const afterQuiet = at - this.lastPushAt > this.limits.maxWaitMs + this.msPerRow;
      const gap = Math.min(at - this.lastPushAt, MAX_ARRIVAL_GAP_MS) / rows.length;
      this.arrivalGapMs = Number.isFinite(this.arrivalGapMs) ? 0.8 * this.arrivalGapMs + 0.2 * gap : gap;
      this.lastPushAt = at;
      this.arrivalCount += rows.length;
      this.queue.push(...entries);
      this.reportDepth();
      this.schedule(afterQuiet);
    });
  }

  /**
   * The next batch for `slot`, when the batcher decides one leaves; null once the batcher has been
   * drained (the runner's loop then ends). Call `done(batch)` when it has run.
   */
  next(slot: Slot): Promise<Batch<Row, Out> | null> {
    return new Promise((resolve) => {
      this.waiters.push({ slot, resolve });
      this.schedule();
    });
  }

  /** The runner finished `batch` (its rows are settled): frees its slot and reschedules. */
  done(batch: Batch<Row, Out>): void {
    const started = this.handedOutAt.get(batch);
    if (started === undefined) return;
    this.handedOutAt.delete(batch);
    // With batches queued inside a worker this includes waiting behind another: an overestimate, on the side of batching.
    if (!batch.internal)
      this.msPerRow = 0.8 * this.msPerRow + (0.2 * (performance.now() - started)) / batch.rows.length;
    this.schedule();
  }

  /** Something outside changed what slots can take (a worker became ready): look again. */
  wake(): void {
    this.schedule();
  }

  /**
   * The runner says whether any worker is alive. When the last one dies, every waiting row fails
   * with 503 `worker_not_ready` (as its request would have once its batch reached the dead
   * worker), and new rows are refused the same way until a worker is ready again.
   */
  setAvailable(available: boolean): void {
    this.available = available;
    if (available) return this.schedule();
    const requests = new Set([...this.urgent, ...this.queue].map((e) => e.request));
    for (const request of requests) this.fail(request, noWorker());
  }

  /** Refuse new rows; resolves when everything queued has run. */
  async drain(): Promise<void> {
    this.stopped = true;
    this.schedule();
    if (this.isIdle()) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.queue.length === 0 && this.urgent.length === 0 && this.handedOutAt.size === 0;
  }

  private refuse(rows: Row[], reason: DropReason, internal = false, error?: SktError): Promise<never> {
    if (!internal) this.metrics?.queueDropped.inc({ reason }, rows.length);
    const e =
      error ??
      (reason === "queue_full"
        ? new SktError(
            "overloaded",
            "queue_full",
            `the request queue is full (${this.queue.length} of ${this.limits.queueSize} rows waiting); retry after a short wait`,
          )
        : reason === "no_worker"
          ? noWorker()
          : new SktError("not_ready", "shutting_down", "the server is shutting down and takes no new work"));
    return Promise.reject(e);
  }

  /** Settles a request's every row with `e` and takes the ones still waiting out of the queue. */
  private fail(request: Request<Out>, e: Error): void {
    if (request.done) return;
    request.done = true;
    request.cleanup();
    const before = this.queue.length;
    this.queue = this.queue.filter((r) => r.request !== request);
    this.urgent = this.urgent.filter((r) => r.request !== request);
    const dropped = before - this.queue.length;
    if (dropped > 0) {
      this.metrics?.queueDropped.inc({ reason: dropReason(e) }, dropped);
      this.reportDepth();
    }
    for (const h of request.handles) h.reject(e);
    this.schedule();
  }

  private reportDepth(): void {
    this.metrics?.queueDepth.set(this.queue.length);
  }

  /** Hands out every batch that may leave now. Re-entrant calls (from a drop inside) are folded into the running one. */
  private schedule(afterQuiet = false): void {
    if (this.scheduling) return;
    this.scheduling = true;
    try {
      this.dispatch(afterQuiet);
    } finally {
      this.scheduling = false;
    }
  }

  private dispatch(afterQuiet: boolean): void {
    for (;;) {
      if (this.isIdle()) {
        this.notifyIdle();
        if (this.stopped) return this.closeWaiters();
      }
      const ready = this.waiters.filter((w) => w.slot.ready());
      if (ready.length === 0) return;
      const waiter = ready.find((w) => w.slot.idle()) ?? ready[0];
      if (this.urgent.length > 0) {
        this.handOut(waiter, [this.urgent.shift()!], true);
        continue;
      }
      this.dropExpired();
      if (this.queue.length === 0) {
        this.clearTimer();
        if (this.isIdle()) {
          // An expiry emptied everything.
          this.notifyIdle();
          if (this.stopped) this.closeWaiters();
        }
        return;
      }
      const full = this.queue.length >= this.limits.maxBatchSize;
      // While its worker is busy a slot takes only a full batch: it then queues inside the worker,
      // which starts it without idling; a partial one would only split rows that keep coming.
      if (!full && !waiter.slot.idle() && !this.stopped) return;
      const waited = Date.now() - this.queue[0].enqueuedAt;
      if (full || waited >= this.limits.maxWaitMs || this.stopped || afterQuiet) {
        afterQuiet = false;
        this.handOut(waiter, this.takeBatch(), false);
        continue;
      }
      if (!this.timer)
        this.timer = setTimeout(() => {
          this.timer = null;
          this.schedule();
        }, this.limits.maxWaitMs - waited);
      return;
    }
  }

  private handOut(waiter: Waiter<Row, Out>, entries: Entry<Row, Out>[], internal: boolean): void {
    this.waiters.splice(this.waiters.indexOf(waiter), 1);
    const batch: Batch<Row, Out> = {
      rows: entries.map((e) => e.row),
      handles: entries.map((e) => e.handle),
      internal,
    };
    this.handedOutAt.set(batch, performance.now());
    waiter.slot.take?.();
    if (!internal) {
      const now = Date.now();
      for (const e of entries) this.metrics?.queueDuration.observe((now - e.enqueuedAt) / 1000);
    }
    waiter.resolve(batch);
  }

  private clearTimer(): void {
    if (!this.timer) return;
    clearTimeout(this.timer);
    this.timer = null;
  }

  private closeWaiters(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.resolve(null);
  }

  private notifyIdle(): void {
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    waiters.forEach((w) => w());
  }

  /** Rows whose deadline passed before their batch left (their timer may not have fired yet). */
  private dropExpired(): void {
    const now = Date.now();
    const expired = new Set(this.queue.filter((r) => r.request.deadline <= now).map((r) => r.request));
    for (const request of expired) this.fail(request, deadlineExceeded());
  }

  /** Takes the oldest row plus its nearest neighbours by length, within the row, token and padding budgets. */
  private takeBatch(): Entry<Row, Out>[] {
    const { maxBatchSize, maxBatchTokens, maxPaddingRatio } = this.limits;
    const paddingCost = this.limits.paddingCost ?? 1;
    const window = this.queue.slice(0, maxBatchSize * WINDOW_FACTOR);
    const sorted = [...window].sort((a, b) => a.row.length - b.row.length);
    const len = (i: number) => sorted[i].row.length;
    let lo = sorted.indexOf(this.queue[0]);
    let hi = lo;
    let real = len(lo);
    const fits = (from: number, to: number, realTokens: number) => {
      const padding = paddingCost * ((to - from + 1) * len(to) - realTokens);
      return (
        to - from + 1 <= maxBatchSize &&
        realTokens + padding <= maxBatchTokens &&
        padding <= maxPaddingRatio * realTokens
      );
    };
    for (;;) {
      // Grow towards whichever neighbour is closer in length; stop when neither fits.
      const canUp = hi + 1 < sorted.length && fits(lo, hi + 1, real + len(hi + 1));
      const canDown = lo > 0 && fits(lo - 1, hi, real + len(lo - 1));
      if (!canUp && !canDown) break;
      const upGap = canUp ? len(hi + 1) - len(hi) : Infinity;
      const downGap = canDown ? len(lo) - len(lo - 1) : Infinity;
      if (upGap <= downGap) real += len(++hi);
      else real += len(--lo);
    }
    const batch = sorted.slice(lo, hi + 1);
    const taken = new Set(batch);
    this.queue = this.queue.filter((r) => !taken.has(r));
    this.reportDepth();
    if (this.queue.length === 0) this.clearTimer();
    return batch;
  }
}

/** The caller's reason (client gone, or the server's deadline backstop) says what happened; a bare abort is a cancellation. */
function cancellation(signal: AbortSignal): SktError {
  return signal.reason instanceof SktError ? signal.reason : clientClosed("the request was cancelled");
}

function noWorker(): SktError {
  return new SktError(
    "not_ready",
    "worker_not_ready",
    "no inference worker is running (starting or restarting); retry shortly",
  );
}

function dropReason(e: Error): DropReason {
  if (!(e instanceof SktError)) return "request_failed";
  if (e.kind === "timeout") return "deadline";
  if (e.kind === "client_closed") return "cancelled";
  if (e.code === "worker_not_ready") return "no_worker";
  return "request_failed";
}
