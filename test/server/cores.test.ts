/**
 * availableCores: the affinity count capped by a cgroup CPU quota, read from fake cgroup trees
 * (cgroup v2 `cpu.max` and v1 `cpu.cfs_quota_us`, as Docker and Kubernetes write them).
 */
import os from "node:os";
import { describe, expect, it } from "vitest";
import { availableCores, cgroupCpuQuota } from "../../src/cores.js";

/** A file reader over an in-memory tree; anything not in it is unreadable. */
const tree =
  (files: Record<string, string>) =>
  (file: string): string | undefined =>
    files[file];

describe("availableCores", () => {
  it("cgroup v2: the quota of the process's cgroup, rounded down, never above the affinity count", () => {
    const v2 = (cpuMax: string) => tree({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": `${cpuMax}\n` });
    expect(availableCores(16, v2("200000 100000"))).toBe(2);
    expect(availableCores(16, v2("250000 100000"))).toBe(2); // 2.5 CPUs
    expect(availableCores(16, v2("50000 100000"))).toBe(1); // half a CPU: still one
    expect(availableCores(16, v2("max 100000"))).toBe(16);
    expect(availableCores(4, v2("800000 100000"))).toBe(4); // a quota above the affinity mask
  });

  it("cgroup v2: the tightest quota along the path up to the root", () => {
    const read = tree({
      "/proc/self/cgroup": "0::/kubepods/pod1/ctr\n",
      "/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max": "max 100000",
      "/sys/fs/cgroup/kubepods/pod1/cpu.max": "300000 100000",
      "/sys/fs/cgroup/kubepods/cpu.max": "max 100000",
    });
    expect(cgroupCpuQuota(read)).toBe(3);
    expect(availableCores(16, read)).toBe(3);
  });

  it("cgroup v1: cfs_quota_us ÷ cfs_period_us under the cpu controller's mount; -1 is no quota", () => {
    const v1 = (quota: string, mount = "/sys/fs/cgroup/cpu,cpuacct") =>
      tree({
        "/proc/self/cgroup": "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n",
        [`${mount}/docker/abc/cpu.cfs_quota_us`]: `${quota}\n`,
        [`${mount}/docker/abc/cpu.cfs_period_us`]: "100000\n",
      });
    expect(availableCores(16, v1("200000"))).toBe(2);
    expect(availableCores(16, v1("150000", "/sys/fs/cgroup/cpu"))).toBe(1);
    expect(availableCores(16, v1("-1"))).toBe(16);
    // Inside a container the cgroup's own directory is often the mount's root.
    const atRoot = tree({
      "/proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n",
      "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "400000",
      "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000",
    });
    expect(availableCores(16, atRoot)).toBe(4);
  });

  it("nothing readable or nothing parseable means no quota", () => {
    expect(availableCores(6, tree({}))).toBe(6);
    expect(availableCores(6, tree({ "/proc/self/cgroup": "garbage\n" }))).toBe(6);
    expect(availableCores(6, tree({ "/proc/self/cgroup": "0::/\n", "/sys/fs/cgroup/cpu.max": "nonsense 0" }))).toBe(6);
    expect(cgroupCpuQuota(tree({ "/proc/self/cgroup": "0::/../../etc\n", "/sys/fs/cgroup/cpu.max": "max" }))).toBe(
      undefined,
    );
  });

  it("on this machine: at most the affinity count, at least 1", () => {
    const cores = availableCores();
    expect(cores).toBeGreaterThanOrEqual(1);
    expect(cores).toBeLessThanOrEqual(os.availableParallelism());
  });
});
