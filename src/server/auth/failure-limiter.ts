/**
 * Per-client limit on failed admin authentications: after `maxFailures` failures inside one window
 * (fixed, `windowMs` long from the client's first failure) the client is refused with 429 until the
 * window ends, whatever token it presents, so a correct guess cannot be confirmed either. A success
 * does not reset the count: holding one weak token must not buy unlimited guesses at others.
 *
 * Memory is bounded by an LRU of at most `maxClients` addresses; under a flood from more addresses
 * than that, the least recently seen clients are forgotten (their count restarts).
 */
import { LRUCache } from "lru-cache";

export interface FailureLimiterOptions {
  maxFailures: number;
  windowMs?: number;
  maxClients?: number;
  now?: () => number;
}

interface Window {
  start: number;
  failures: number;
  /** Whether a 429 has been answered in this window (the audit log records only the first). */
  refused: boolean;
}

export type LimiterVerdict = { blocked: false } | { blocked: true; retryAfterSeconds: number; firstRefusal: boolean };

export const DEFAULT_FAILURE_WINDOW_MS = 60_000;
export const DEFAULT_MAX_TRACKED_CLIENTS = 10_000;

export class FailureLimiter {
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly now: () => number;
  private readonly windows: LRUCache<string, Window>;

  constructor(opts: FailureLimiterOptions) {
    this.maxFailures = opts.maxFailures;
    this.windowMs = opts.windowMs ?? DEFAULT_FAILURE_WINDOW_MS;
    this.now = opts.now ?? Date.now;
    this.windows = new LRUCache({ max: opts.maxClients ?? DEFAULT_MAX_TRACKED_CLIENTS });
  }

  /** Before checking a token: may this client try? */
  check(client: string): LimiterVerdict {
    const w = this.current(client);
    if (w === undefined || w.failures < this.maxFailures) return { blocked: false };
    const firstRefusal = !w.refused;
    w.refused = true;
    const retryAfterSeconds = Math.max(1, Math.ceil((w.start + this.windowMs - this.now()) / 1000));
    return { blocked: true, retryAfterSeconds, firstRefusal };
  }

  /** After a failed authentication. */
  recordFailure(client: string): void {
    const w = this.current(client);
    if (w === undefined) this.windows.set(client, { start: this.now(), failures: 1, refused: false });
    else w.failures++;
  }

  /** Clients currently tracked (for tests and the bound). */
  get size(): number {
    return this.windows.size;
  }

  /** The client's window if it has not ended yet. */
  private current(client: string): Window | undefined {
    const w = this.windows.get(client);
    if (w === undefined) return undefined;
    if (this.now() - w.start >= this.windowMs) {
      this.windows.delete(client);
      return undefined;
    }
    return w;
  }
}
