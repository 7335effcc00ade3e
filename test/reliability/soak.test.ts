/**
 * The soak test (scripts/soak.ts) for 30 seconds: the real server under open-loop load at ~80% of
 * its measured saturation, with hot swaps, rollbacks, creates and deletes every couple of seconds.
 * Zero failures that are not overload refusals; the RSS and fd figures are printed (their slopes are
 * not asserted over 30 s — warm-up dominates — only a very generous fd bound). `npm run soak` runs
 * the same code for 10 minutes.
 */
import { describe, expect, it } from "vitest";
import { formatReport, runSoak } from "../../scripts/soak.js";

describe("soak (30 s)", () => {
  it(
    "serves sustained load with adapter churn: no non-overload failure, nothing lost at shutdown",
    { timeout: 240_000 },
    async () => {
      const report = await runSoak({ seconds: Number(process.env.SOAK_SECONDS ?? 30), log: (l) => console.log(l) });
      console.log(formatReport(report));
      expect(report.failureSamples).toEqual([]);
      expect(report.requests.failures).toBe(0);
      expect(report.admin.failures).toBe(0);
      expect(report.requests.ok).toBeGreaterThan(0);
      expect(report.admin.uploads).toBeGreaterThan(0);
      expect(report.admin.rollbacks).toBeGreaterThan(0);
      expect(report.admin.deletes).toBeGreaterThan(0);
      expect(report.shutdown).toMatchObject({ exitCode: 0, tempFilesLeft: 0 });
      expect(report.shutdown.currentOnDisk).toBe(report.shutdown.currentExpected);
      if (report.samples > 0) expect(report.fds.max).toBeLessThan(report.fds.start + 500);
    },
  );
});
