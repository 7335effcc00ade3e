/**
 * The traffic table alone: the row-share routing against a naive reference (the share of rows that
 * the canary would have after each request, recomputed from scratch), removal of versions, and the
 * TRAFFIC file's round trip and malformed inputs.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { TrafficTable, validateSplit } from "../../src/adapters/traffic.js";

describe("TrafficTable.pick", () => {
  it("keeps the canary's share of rows within one request of P % after every request", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 300 }),
        (percent, sizes) => {
          const table = new TrafficTable();
          table.set("t", { canary: { version: 2, percent } });
          let canary = 0;
          let total = 0;
          for (const n of sizes) {
            const pick = table.pick("t", n);
            total += n;
            if (pick.canaryVersion === 2) canary += n;
            else expect(pick.canaryVersion).toBeNull();
            // Never more than one request's rows (the largest so far) away from the exact share.
            expect(Math.abs(canary - (percent / 100) * total)).toBeLessThanOrEqual(Math.max(...sizes));
          }
          if (percent === 0) expect(canary).toBe(0);
          if (percent === 100) expect(canary).toBe(total);
        },
      ),
    );
  });

  it("routes exactly every tenth one-row request at 10 %, shadows only the current's rows", () => {
    const table = new TrafficTable();
    table.set("t", { canary: { version: 2, percent: 10 }, shadow: { version: 3 } });
    const picks = Array.from({ length: 100 }, () => table.pick("t", 1));
    expect(picks.filter((p) => p.canaryVersion === 2)).toHaveLength(10);
    for (const p of picks) expect(p.shadowVersion).toBe(p.canaryVersion === null ? 3 : null);
    expect(table.pick("other", 5)).toEqual({ canaryVersion: null, shadowVersion: null });
  });

  it("counts restart when the split is set again; a removed version leaves only its part", () => {
    const table = new TrafficTable();
    table.set("t", { canary: { version: 2, percent: 50 }, shadow: { version: 3 } });
    table.recordAnswer("t", 1, "current", 4);
    table.recordShadow("t", 3, 4, 3);
    expect(table.state("t", 1).shadowCounts).toMatchObject({ compared: 4, agreed: 3, agreement: 0.75 });
    expect(table.removeVersion("t", 2)).toBe(true);
    expect(table.get("t")).toEqual({ shadow: { version: 3 } });
    expect(table.state("t", 1).versions).toEqual([{ version: 1, role: "current", requests: 1, rows: 4 }]);
    expect(table.removeVersion("t", 7)).toBe(false);
    expect(table.removeVersion("t", 3)).toBe(true);
    expect(table.get("t")).toBeUndefined();
    table.set("t", { shadow: { version: 3 } });
    expect(table.state("t", 1).shadowCounts).toMatchObject({ compared: 0, agreement: null });
  });
});

describe("TRAFFIC file", () => {
  it("round-trips the splits and leaves out malformed entries with a reason", () => {
    const table = new TrafficTable();
    table.set("b", { canary: { version: 4, percent: 12.5 } });
    table.set("a", { canary: { version: 2, percent: 1 }, shadow: { version: 3 } });
    const parsed = TrafficTable.parse(table.serialize());
    expect(parsed.problems).toEqual([]);
    expect(Object.fromEntries(parsed.splits)).toEqual({
      a: { canary: { version: 2, percent: 1 }, shadow: { version: 3 } },
      b: { canary: { version: 4, percent: 12.5 } },
    });
    const bad = TrafficTable.parse(
      JSON.stringify({
        splits: { x: { canary: { version: 2, percent: 101 } }, y: { shadow: { version: 0 } }, z: {}, ok: { shadow: { version: 2 } } },
      }),
    );
    expect([...bad.splits.keys()]).toEqual(["ok"]);
    expect(bad.problems).toHaveLength(3);
    expect(TrafficTable.parse("{nope").problems).toEqual(["not valid JSON"]);
    expect(TrafficTable.parse("[]").problems).toEqual(['no "splits" object']);
  });

  it("validateSplit names the problem", () => {
    const check = (split: Parameters<typeof validateSplit>[1]) => {
      try {
        validateSplit("t", split, 1, [1, 2, 3]);
        return "ok";
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(check({ canary: { version: 2, percent: 100 }, shadow: { version: 3 } })).toBe("ok");
    expect(check({ canary: { version: 2, percent: 100.5 } })).toBe("invalid_percent");
    expect(check({ canary: { version: 1, percent: 5 } })).toBe("version_is_current");
    expect(check({ shadow: { version: 4 } })).toBe("version_not_found");
    expect(check({ canary: { version: 2, percent: 5 }, shadow: { version: 2 } })).toBe("canary_is_shadow");
  });
});
