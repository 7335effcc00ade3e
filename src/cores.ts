/**
 * How many cores this process may use: the affinity mask (`os.availableParallelism()`) capped by a
 * cgroup CPU quota. In a container limited to 2 CPUs on a 16-core node, Node 20 (libuv 1.46) still
 * reports 16, and worker and thread defaults sized from that would put 14 busy threads on a 2-CPU
 * quota (throttled) with 7 copies of the weights. libuv reads the quota itself from 1.49 on; this
 * does the same for the Node versions we run on: cgroup v2 `cpu.max` along the process's cgroup
 * path up to the root, or cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`; quota ÷ period rounded
 * down (2.5 CPUs → 2, as libuv does), never below 1. Anything unreadable means no quota.
 */
import { readFileSync } from "node:fs";
import os from "node:os";

export type ReadText = (file: string) => string | undefined;

const readText: ReadText = (file) => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return undefined;
  }
};

/** Elsewhere than Linux there is no /proc/self/cgroup: the affinity count stands. */
export function availableCores(affinity = os.availableParallelism(), read: ReadText = readText): number {
  const quota = cgroupCpuQuota(read);
  return quota === undefined ? affinity : Math.max(1, Math.min(affinity, Math.floor(quota)));
}

/** The tightest CPU quota (in CPUs) over the process's cgroup and its ancestors; undefined if none. */
export function cgroupCpuQuota(read: ReadText): number | undefined {
  const membership = read("/proc/self/cgroup");
  if (membership === undefined) return undefined;
  let tightest: number | undefined;
  const keep = (cpus: number | undefined) => {
    if (cpus !== undefined && cpus > 0 && (tightest === undefined || cpus < tightest)) tightest = cpus;
  };
  for (const line of membership.split("\n")) {
    const [, controllers, cgroupPath] = /^\d+:([^:]*):(.*)$/.exec(line.trim()) ?? [];
    if (cgroupPath === undefined) continue;
    if (controllers === "") {
      // cgroup v2 (unified): "max 100000" or "<quota> <period>" in each directory up to the root.
      for (const dir of ancestors("/sys/fs/cgroup", cgroupPath)) keep(v2Quota(read(`${dir}/cpu.max`)));
    } else if (controllers.split(",").includes("cpu")) {
      for (const mount of ["/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"])
        for (const dir of ancestors(mount, cgroupPath))
          keep(ratio(read(`${dir}/cpu.cfs_quota_us`), read(`${dir}/cpu.cfs_period_us`)));
    }
  }
  return tightest;
}

/** `root` + `cgroupPath`, then each parent directory down to `root` itself. */
function ancestors(root: string, cgroupPath: string): string[] {
  const parts = cgroupPath.split("/").filter((p) => p !== "" && p !== "." && p !== "..");
  const dirs: string[] = [];
  for (let n = parts.length; n >= 0; n--) dirs.push([root, ...parts.slice(0, n)].join("/"));
  return dirs;
}

function v2Quota(text: string | undefined): number | undefined {
  const [quota, period] = (text ?? "").trim().split(/\s+/);
  return ratio(quota, period);
}

/** Number() ignores the surrounding whitespace and newline of the files' contents. */
function ratio(quota: string | undefined, period: string | undefined): number | undefined {
  const q = Number(quota);
  const p = Number(period);
  // "max" (v2) or -1 (v1): no quota.
  return Number.isFinite(q) && q > 0 && Number.isFinite(p) && p > 0 ? q / p : undefined;
}
