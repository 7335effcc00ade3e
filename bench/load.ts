/**
 * Load generators (they run in the bench process; the server is a separate process on loopback):
 * a closed loop (N clients, each sends its next request when the previous one is answered) and an
 * open loop (a fixed arrival schedule; latency counts from the scheduled send time, so a slow
 * server cannot hide queueing by slowing the client down). Both are bounded in time and count.
 */
import { Pool } from "undici";
import { MAX_REQUESTS, percentile, sleep } from "./lib.js";

export interface RequestSpec {
  path: string;
  body: string;
  /** Counted into `weight` of the result when answered 200 (e.g. the request's real tokens). */
  weight?: number;
}

export interface LoadResult {
  /** Requests answered 200 per second (closed loop: see closedLoop for the estimator). */
  rps: number;
  /** Σ weight of 200 answers per second. */
  weightPerSec: number;
  ok: number;
  /** Non-200 answers and transport errors inside the window, by status ("error" for transport). */
  failures: Record<string, number>;
  failed: number;
  windowMs: number;
  /** Latencies (ms) of answers inside the window. */
  latenciesMs: number[];
  p50: number;
  p95: number;
  p99: number;
  /** Open loop only: arrivals not sent because `maxOutstanding` requests were already waiting. */
  dropped?: number;
  /** Open loop only: achieved arrivals per second. */
  offeredRps?: number;
}

/** A keep-alive connection pool to the server; one per load (probes use their own). */
export class HttpClient {
  readonly pool: Pool;

  constructor(base: string, connections: number) {
    this.pool = new Pool(base, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 30_000,
      bodyTimeout: 30_000,
    });
  }

  async post(spec: RequestSpec): Promise<{ status: number; text: string }> {
    const res = await this.pool.request({
      method: "POST",
      path: spec.path,
      headers: { "content-type": "application/json" },
      body: spec.body,
    });
    return { status: res.statusCode, text: await res.body.text() };
  }

  async get(path: string): Promise<{ status: number; text: string }> {
    const res = await this.pool.request({ method: "GET", path });
    return { status: res.statusCode, text: await res.body.text() };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

export function classifyRequest(task: string, text: string, weight?: number): RequestSpec {
  return { path: `/classify?task=${encodeURIComponent(task)}`, body: JSON.stringify({ text }), weight };
}

class Tally {
  ok = 0;
  weight = 0;
  failures: Record<string, number> = {};
  latencies: number[] = [];
  add(status: number | "error", ms: number, weight = 0): void {
    if (status === 200) {
      this.ok++;
      this.weight += weight;
      this.latencies.push(ms);
    } else this.failures[String(status)] = (this.failures[String(status)] ?? 0) + 1;
  }
  result(windowMs: number): LoadResult {
    const failed = Object.values(this.failures).reduce((a, b) => a + b, 0);
    return {
      rps: this.ok / (windowMs / 1000),
      weightPerSec: this.weight / (windowMs / 1000),
      ok: this.ok,
      failures: this.failures,
      failed,
      windowMs,
      latenciesMs: this.latencies,
      p50: percentile(this.latencies, 50),
      p95: percentile(this.latencies, 95),
      p99: percentile(this.latencies, 99),
    };
  }
}

export interface ClosedLoopOptions {
  concurrency: number;
  warmupMs: number;
  durationMs: number;
  /** The i-th request (i counts from 0 over warm-up and window). */
  next: (i: number) => RequestSpec;
  maxRequests?: number;
  /** Called when the measurement window opens and closes (e.g. to scrape /metrics). */
  onWindowStart?: () => Promise<void> | void;
  onWindowEnd?: () => Promise<void> | void;
}

/**
 * `concurrency` clients in a loop for warm-up + window; answers that arrive inside the window give
 * the latencies and failure counts.
 *
 * Throughput: a batching server answers in bursts of a whole batch, so "answers inside the window ÷
 * window" is quantised by ±1 batch (±10% for ten batches per window). Instead each client's rate
 * is taken over whole requests: the 200s among the requests it sent and got answered inside the
 * window, divided by the time from its first such send to its last such answer (its requests are
 * back to back, so that span is exactly their summed latency). The server's throughput is the sum
 * over clients (Little's law, client by client). If some client completed no request inside the
 * window (window shorter than a latency, e.g. quick mode), the plain count ÷ window is used.
 */
export async function closedLoop(
  client: HttpClient,
  o: ClosedLoopOptions,
): Promise<LoadResult & { countRps: number; estimator: "per-client" | "count" }> {
  const max = o.maxRequests ?? MAX_REQUESTS;
  const tally = new Tally();
  let i = 0;
  let windowStart = Infinity;
  let windowEnd = Infinity;
  let stop = false;
  const clients = Array.from({ length: o.concurrency }, () => ({ ok: 0, weight: 0, first: Infinity, last: -Infinity }));
  const worker = async (w: number) => {
    const me = clients[w];
    while (!stop && i < max) {
      const spec = o.next(i++);
      const sent = performance.now();
      let status: number | "error";
      try {
        status = (await client.post(spec)).status;
      } catch {
        status = "error";
      }
      const done = performance.now();
      if (done >= windowStart && done <= windowEnd) tally.add(status, done - sent, spec.weight);
      if (sent >= windowStart && done <= windowEnd) {
        me.first = Math.min(me.first, sent);
        me.last = done;
        if (status === 200) {
          me.ok++;
          me.weight += spec.weight ?? 0;
        }
      }
    }
  };
  const workers = clients.map((_, w) => worker(w));
  await sleep(o.warmupMs);
  await o.onWindowStart?.();
  windowStart = performance.now();
  await sleep(o.durationMs);
  windowEnd = performance.now();
  await o.onWindowEnd?.();
  stop = true;
  await Promise.all(workers);
  const r = tally.result(windowEnd - windowStart);
  const countRps = r.rps;
  if (clients.every((c) => c.last > c.first)) {
    const rps = clients.reduce((a, c) => a + c.ok / ((c.last - c.first) / 1000), 0);
    const weightPerSec = clients.reduce((a, c) => a + c.weight / ((c.last - c.first) / 1000), 0);
    return { ...r, rps, weightPerSec, countRps, estimator: "per-client" };
  }
  return { ...r, countRps, estimator: "count" };
}

export interface OpenLoopOptions {
  ratePerSec: number;
  warmupMs: number;
  durationMs: number;
  next: (i: number) => RequestSpec;
  maxRequests?: number;
  /** Arrivals beyond this many unanswered requests are dropped and counted (bounds memory). */
  maxOutstanding?: number;
}

/**
 * Evenly spaced arrivals at `ratePerSec` for warm-up + window. Each request's latency is measured
 * from its scheduled send time, so it includes any delay in sending it (no coordinated omission).
 */
export async function openLoop(client: HttpClient, o: OpenLoopOptions): Promise<LoadResult> {
  const max = o.maxRequests ?? MAX_REQUESTS;
  const maxOutstanding = o.maxOutstanding ?? 2048;
  const interval = 1000 / o.ratePerSec;
  const tally = new Tally();
  const start = performance.now() + 20;
  const windowStart = start + o.warmupMs;
  const windowEnd = windowStart + o.durationMs;
  let outstanding = 0;
  let dropped = 0;
  let offered = 0;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < max; i++) {
    const due = start + i * interval;
    if (due >= windowEnd) break;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const inWindow = due >= windowStart;
    if (inWindow) offered++;
    if (outstanding >= maxOutstanding) {
      if (inWindow) dropped++;
      continue;
    }
    outstanding++;
    const spec = o.next(i);
    const p: Promise<void> = client
      .post(spec)
      .then(
        (r) => r.status,
        () => "error" as const,
      )
      .then((status) => {
        outstanding--;
        if (inWindow) tally.add(status, performance.now() - due, spec.weight);
        inflight.delete(p);
      });
    inflight.add(p);
  }
  await Promise.all(inflight);
  const r = tally.result(o.durationMs);
  return { ...r, dropped, offeredRps: offered / (o.durationMs / 1000) };
}

/** One request at a time, `count` times (or until `maxMs`): latencies in ms. */
export async function sequential(
  client: HttpClient,
  o: { count: number; maxMs: number; next: (i: number) => RequestSpec },
): Promise<{ latenciesMs: number[]; failures: number }> {
  const latenciesMs: number[] = [];
  let failures = 0;
  const until = performance.now() + o.maxMs;
  for (let i = 0; i < o.count && performance.now() < until; i++) {
    const t0 = performance.now();
    const r = await client.post(o.next(i)).catch(() => ({ status: 0, text: "" }));
    if (r.status === 200) latenciesMs.push(performance.now() - t0);
    else failures++;
  }
  return { latenciesMs, failures };
}

/** Runs `probe` every `everyMs` until `until()` is true; returns what each probe returned. */
export async function periodic(everyMs: number, until: () => boolean, probe: () => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  let next = performance.now();
  while (!until()) {
    out.push(await probe());
    next += everyMs;
    const wait = next - performance.now();
    if (wait > 0) await sleep(wait);
    else next = performance.now();
  }
  return out;
}
