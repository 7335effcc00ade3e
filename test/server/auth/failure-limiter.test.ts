import { describe, expect, it } from "vitest";
import { FailureLimiter } from "../../../src/server/auth/failure-limiter.js";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("FailureLimiter", () => {
  it("blocks a client after N failures until its window ends, with Retry-After counting down", () => {
    const c = clock();
    const l = new FailureLimiter({ maxFailures: 3, windowMs: 60_000, now: c.now });
    for (let i = 0; i < 3; i++) {
      expect(l.check("1.2.3.4")).toEqual({ blocked: false });
      l.recordFailure("1.2.3.4");
    }
    expect(l.check("1.2.3.4")).toEqual({ blocked: true, retryAfterSeconds: 60, firstRefusal: true });
    c.t += 20_500;
    expect(l.check("1.2.3.4")).toEqual({ blocked: true, retryAfterSeconds: 40, firstRefusal: false });
    expect(l.check("5.6.7.8")).toEqual({ blocked: false }); // other clients are not affected
    c.t += 39_500; // the window (from the first failure) is over
    expect(l.check("1.2.3.4")).toEqual({ blocked: false });
    l.recordFailure("1.2.3.4");
    expect(l.check("1.2.3.4")).toEqual({ blocked: false }); // a fresh window: 1 of 3
  });

  it("matches a naive reference (a list of failure times per client) on a random schedule", () => {
    const c = clock(0);
    const max = 4;
    const windowMs = 10_000;
    const l = new FailureLimiter({ maxFailures: max, windowMs, now: c.now });
    // Reference: fixed window from a client's first failure.
    const ref = new Map<string, { start: number; n: number }>();
    let seed = 42;
    const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let step = 0; step < 5000; step++) {
      c.t += Math.floor(rnd() * 700);
      const client = `10.0.0.${Math.floor(rnd() * 3)}`;
      let w = ref.get(client);
      if (w && c.t - w.start >= windowMs) {
        ref.delete(client);
        w = undefined;
      }
      const wantBlocked = w !== undefined && w.n >= max;
      expect(l.check(client).blocked).toBe(wantBlocked);
      if (!wantBlocked && rnd() < 0.6) {
        l.recordFailure(client);
        if (w) w.n++;
        else ref.set(client, { start: c.t, n: 1 });
      }
    }
  });

  it("holds at most maxClients addresses (bounded memory under an address flood)", () => {
    const l = new FailureLimiter({ maxFailures: 1, maxClients: 100 });
    for (let i = 0; i < 10_000; i++) l.recordFailure(`client-${i}`);
    expect(l.size).toBe(100);
    expect(l.check("client-9999").blocked).toBe(true); // the most recent are kept
    expect(l.check("client-0").blocked).toBe(false); // the oldest were forgotten
  });
});
