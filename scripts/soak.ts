/**
 * Soak test: the real server process under sustained load with adapter churn.
 *
 *   npm run soak                    # 600 s
 *   npm run soak -- --seconds 120   # any length; --json prints the report as JSON too
 *   npm run soak -- --metadata-kib 900   # every uploaded version carries a ~900 KiB training summary
 *
 * 1. Spawn the server (`src/cli.ts serve`) on a free loopback port with a temp adapter folder.
 * 2. Measure its saturation rate: closed-loop clients for a few seconds, completed requests/s.
 * 3. Open-loop load at ~80% of that rate on two tasks, while an admin loop every couple of seconds
 *    uploads a new version of one task (hot swap), rolls it back, and creates, queries and deletes
 *    a second task.
 * 4. Every second, sample the server's RSS (/proc/<pid>/status) and open fds (/proc/<pid>/fd).
 * 5. SIGTERM the server and check it exits 0 with a consistent adapter folder.
 *
 * Reports requests served, overload refusals (429, expected), failures that were not overload
 * (must be zero: errors, wrong answers — a response whose labels do not match the adapter version
 * it names — and unexpected admin statuses), and the RSS and fd figures with their
 * linear-regression slopes per minute. Exits 1 on any non-overload failure.
 * `test/reliability/soak.test.ts` runs the same code for 30 s inside `npm test`.
 */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { AdapterStore } from "../src/adapters/store.js";
import { loadBackboneAssets, type BackboneAssets } from "../src/backbone/backbone.js";
import { encodeAdapter } from "../src/adapters/format.js";
import { syntheticAdapter } from "../src/adapters/synthetic.js";
import { seededRandom } from "../src/random.js";
import { MODELS_DIR } from "./lib/paths.js";
import { spawnServerProcess } from "./lib/server-process.js";

const TOKEN = "soak-admin-token_0123456789";

export interface SoakOptions {
  /** Length of the sustained phase. */
  seconds: number;
  /** Fraction of the measured saturation rate to offer (default 0.8). */
  loadFraction?: number;
  /** Seconds spent measuring saturation (default: 3, or 5 for runs of 5 minutes and more). */
  saturationSeconds?: number;
  /** Milliseconds between admin operations (default 2000). */
  adminEveryMs?: number;
  /** Extra environment for the server (e.g. SKT_THREADS). */
  env?: Record<string, string>;
  /** Give every uploaded version a `training` summary of about this many KiB in its metadata (default 0). */
  metadataKiB?: number;
  log?: (line: string) => void;
}

export interface Series {
  start: number;
  end: number;
  max: number;
  /** Least-squares slope over the sustained phase, per minute. */
  slopePerMinute: number;
  /** The same over its second half (after warm-up effects). */
  lateSlopePerMinute: number;
}

export interface SoakReport {
  seconds: number;
  saturationRps: number;
  targetRps: number;
  achievedRps: number;
  requests: { sent: number; ok: number; overloaded: number; failures: number; skippedClientCap: number };
  admin: {
    uploads: number;
    rollbacks: number;
    creates: number;
    deletes: number;
    sideQueries: number;
    failures: number;
  };
  versionsSeen: number;
  failureSamples: string[];
  rssMb: Series;
  fds: Series;
  samples: number;
  shutdown: { exitCode: number | null; tempFilesLeft: number; currentOnDisk: number | null; currentExpected: number };
}

// ---- small utilities ----------------------------------------------------------------------------

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Least-squares slope of ys over xs. */
export function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function series(ts: number[], ys: number[]): Series {
  const half = Math.floor(ts.length / 2);
  return {
    start: ys[0] ?? NaN,
    end: ys[ys.length - 1] ?? NaN,
    max: Math.max(...ys),
    slopePerMinute: slope(ts, ys) * 60,
    lateSlopePerMinute: slope(ts.slice(half), ys.slice(half)) * 60,
  };
}

async function sampleProcess(pid: number): Promise<{ rssMb: number; fds: number } | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]);
    const fds = (await readdir(`/proc/${pid}/fd`)).length;
    return { rssMb: kb / 1024, fds };
  } catch {
    return null; // not Linux, or the process is gone
  }
}

// ---- the load -----------------------------------------------------------------------------------

const WORDS =
  "the a film movie story acting plot was is great terrible boring moving funny slow brilliant dull clever warm cold long short".split(
    " ",
  );

function randomText(rand: () => number): string {
  const n = 3 + Math.floor(rand() * 40);
  return Array.from({ length: n }, () => WORDS[Math.floor(rand() * WORDS.length)]).join(" ");
}

/** Adapter versions say which one answered: odd versions answer "negative", even "positive". */
const labelFor = (version: number) => (version % 2 ? "negative" : "positive");
function adapterFor(assets: BackboneAssets, task: string, version: number, metadataKiB = 0): Uint8Array<ArrayBuffer> {
  const file = syntheticAdapter(assets, { task, seed: version, headBias: version % 2 ? [40, -40] : [-40, 40] });
  // A large training summary (issue 18, defect 3: memory must not grow with what versions carry). ~28 bytes a step.
  if (metadataKiB > 0)
    file.metadata.training = {
      version,
      log: Array.from({ length: Math.round((metadataKiB * 1024) / 28) }, (_, k) => ({ step: k, loss: 0.5 })),
    };
  return new Uint8Array(encodeAdapter(file, assets.dims));
}

export async function runSoak(opts: SoakOptions): Promise<SoakReport> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const loadFraction = opts.loadFraction ?? 0.8;
  const saturationSeconds = opts.saturationSeconds ?? (opts.seconds >= 300 ? 5 : 3);
  const adminEveryMs = opts.adminEveryMs ?? 2000;
  const assets = await loadBackboneAssets(MODELS_DIR);
  const root = await mkdtemp(path.join(os.tmpdir(), "skt-soak-"));
  const adaptersDir = path.join(root, "adapters");
  const server = await spawnServerProcess({
    adaptersDir,
    env: {
      SKT_ADMIN_TOKEN: TOKEN,
      SKT_MODELS_DIR: MODELS_DIR,
      SKT_LOG_LEVEL: "warn",
      SKT_THREADS: "1",
      ...opts.env,
    },
    readyWithinMs: 120_000,
  });
  const pid = server.pid;
  const rand = seededRandom(42); // seeded, so runs are comparable
  const failureSamples: string[] = [];
  const fail = (what: string) => {
    if (failureSamples.length < 20) failureSamples.push(what);
  };

  try {
    const admin = { authorization: `Bearer ${TOKEN}` };
    const put = (task: string, body: Uint8Array<ArrayBuffer>) =>
      fetch(`${server.base}/admin/adapters/${task}`, {
        method: "PUT",
        headers: { ...admin, "content-type": "application/octet-stream" },
        body,
      });
    for (const [task, v] of [
      ["main", 1],
      ["stable", 1],
    ] as const) {
      const r = await put(task, adapterFor(assets, task, v, opts.metadataKiB));
      if (r.status !== 201) throw new Error(`initial upload of ${task}: ${r.status} ${await r.text()}`);
    }
    let latestMain = 1; // highest version of "main" written (the next upload gets latestMain + 1)
    let currentMain = 1;

    const counts = { sent: 0, ok: 0, overloaded: 0, failures: 0, skippedClientCap: 0 };
    const versionsSeen = new Set<number>();
    let inFlight = 0;
    const MAX_IN_FLIGHT = 512;

    /** One /classify request; returns its status (or -1 for a network error). */
    async function classifyOnce(task: "main" | "stable" | "side"): Promise<number> {
      const texts = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => randomText(rand));
      counts.sent++;
      inFlight++;
      try {
        const r = await fetch(`${server.base}/classify?task=${task}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ texts }),
        });
        const body = (await r.json()) as {
          adapter_version?: number;
          predictions?: { label: string }[];
          error?: { code: string };
        };
        if (r.status === 200) {
          const v = body.adapter_version!;
          const labels = body.predictions!.map((p) => p.label);
          if (body.predictions!.length !== texts.length) {
            counts.failures++;
            fail(`${task}: ${texts.length} texts but ${body.predictions!.length} predictions`);
          } else if (task === "main" && (v > latestMain || labels.some((l) => l !== labelFor(v)))) {
            counts.failures++;
            fail(`main: version ${v} answered ${JSON.stringify(labels)} (latest written ${latestMain})`);
          } else counts.ok++;
          if (task === "main") versionsSeen.add(v);
        } else if (r.status === 429 && body.error?.code === "queue_full") counts.overloaded++;
        else {
          counts.failures++;
          fail(`${task}: status ${r.status} ${JSON.stringify(body).slice(0, 200)}`);
        }
        return r.status;
      } catch (e) {
        counts.failures++;
        fail(`${task}: ${(e as Error).message}`);
        return -1;
      } finally {
        inFlight--;
      }
    }

    // ---- 1. saturation: closed-loop clients, completed requests per second ----
    log(`[soak] server pid ${pid} at ${server.base}; measuring saturation for ${saturationSeconds} s`);
    const satStart = performance.now();
    const satOkBefore = counts.ok;
    const satUntil = satStart + saturationSeconds * 1000;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (performance.now() < satUntil) await classifyOnce("stable");
      }),
    );
    const saturationRps = (counts.ok - satOkBefore) / ((performance.now() - satStart) / 1000);
    const targetRps = Math.max(1, saturationRps * loadFraction);
    log(
      `[soak] saturation ≈ ${saturationRps.toFixed(1)} req/s; offering ${targetRps.toFixed(1)} req/s open-loop for ${opts.seconds} s`,
    );
    // The sustained phase is what gets reported; a failure during the measurement still counts.
    Object.assign(counts, { sent: 0, ok: 0, overloaded: 0, failures: counts.failures });

    // ---- 2. sustained load + admin churn + sampling ----
    const t0 = performance.now();
    const until = t0 + opts.seconds * 1000;
    const ts: number[] = [];
    const rss: number[] = [];
    const fds: number[] = [];
    const adminCounts = { uploads: 0, rollbacks: 0, creates: 0, deletes: 0, sideQueries: 0, failures: 0 };
    const pending = new Set<Promise<unknown>>();

    const sampler = (async () => {
      for (let next = t0; next < until; next += 1000) {
        await sleep(Math.max(0, next - performance.now()));
        const s = await sampleProcess(pid);
        if (!s) continue;
        ts.push((performance.now() - t0) / 1000);
        rss.push(s.rssMb);
        fds.push(s.fds);
      }
    })();

    const adminLoop = (async () => {
      const expect = async (what: string, r: Response, status: number) => {
        if (r.status !== status) {
          adminCounts.failures++;
          fail(`admin ${what}: ${r.status} ${(await r.text()).slice(0, 200)}`);
          return false;
        }
        await r.arrayBuffer();
        return true;
      };
      for (let step = 0; performance.now() < until; step++) {
        await sleep(adminEveryMs);
        if (performance.now() >= until) break;
        switch (step % 4) {
          case 0: {
            const v = latestMain + 1;
            latestMain = v; // before the request: answers from v may arrive before its 201 does
            if (
              await expect(`upload main v${v}`, await put("main", adapterFor(assets, "main", v, opts.metadataKiB)), 201)
            ) {
              adminCounts.uploads++;
              currentMain = v;
            }
            break;
          }
          case 1: {
            const r = await fetch(`${server.base}/admin/adapters/main/rollback`, {
              method: "POST",
              headers: { ...admin, "content-type": "application/json" },
              body: "{}",
            });
            if (r.status === 200) {
              const info = (await r.json()) as { version: number };
              adminCounts.rollbacks++;
              currentMain = info.version;
            } else await expect("rollback main", r, 200);
            break;
          }
          case 2: {
            if (await expect("create side", await put("side", adapterFor(assets, "side", 1, opts.metadataKiB)), 201))
              adminCounts.creates++;
            for (let i = 0; i < 3; i++) {
              const s = await classifyOnce("side");
              if (s === 200 || s === 429) adminCounts.sideQueries++;
            }
            break;
          }
          case 3: {
            const r = await fetch(`${server.base}/admin/adapters/side`, { method: "DELETE", headers: admin });
            if (await expect("delete side", r, 204)) adminCounts.deletes++;
            break;
          }
        }
      }
    })();

    // Open loop: send on schedule whatever the answers do (bounded only by a client-side cap).
    const interval = 1000 / targetRps;
    for (let next = t0; next < until; next += interval) {
      const wait = next - performance.now();
      if (wait > 1) await sleep(wait);
      if (inFlight >= MAX_IN_FLIGHT) {
        counts.skippedClientCap++;
        continue;
      }
      const p = classifyOnce(rand() < 0.7 ? "main" : "stable");
      pending.add(p);
      void p.finally(() => pending.delete(p));
    }
    await Promise.all([...pending]);
    await Promise.all([sampler, adminLoop]);
    const elapsed = (performance.now() - t0) / 1000;

    // ---- 3. graceful stop, then the folder must be consistent ----
    server.proc.kill("SIGTERM");
    const exitCode = (await server.exited).code;
    const store = new AdapterStore(adaptersDir);
    const { removedTempFiles } = await store.recover();
    const currentOnDisk = await store.current("main");
    if (exitCode !== 0) fail(`server exited with ${exitCode} after SIGTERM:\n${server.output().slice(-2000)}`);
    if (currentOnDisk !== currentMain)
      fail(`main: CURRENT on disk is ${currentOnDisk}, last acknowledged ${currentMain}`);
    if (removedTempFiles.length) fail(`temp files left after shutdown: ${removedTempFiles.join(", ")}`);
    const shutdownFailures =
      (exitCode !== 0 ? 1 : 0) + (currentOnDisk !== currentMain ? 1 : 0) + (removedTempFiles.length ? 1 : 0);

    return {
      seconds: opts.seconds,
      saturationRps,
      targetRps,
      achievedRps: counts.ok / elapsed,
      requests: { ...counts, failures: counts.failures + shutdownFailures },
      admin: adminCounts,
      versionsSeen: versionsSeen.size,
      failureSamples,
      rssMb: series(ts, rss),
      fds: series(ts, fds),
      samples: ts.length,
      shutdown: { exitCode, tempFilesLeft: removedTempFiles.length, currentOnDisk, currentExpected: currentMain },
    };
  } finally {
    await server.kill();
    await rm(root, { recursive: true, force: true });
  }
}

export function formatReport(r: SoakReport): string {
  const f = (x: number, d = 1) => x.toFixed(d);
  const s = (x: Series, unit: string) =>
    `${f(x.start)} → ${f(x.end)} ${unit} (max ${f(x.max)}), slope ${x.slopePerMinute >= 0 ? "+" : ""}${f(x.slopePerMinute, 2)} ${unit}/min (second half ${x.lateSlopePerMinute >= 0 ? "+" : ""}${f(x.lateSlopePerMinute, 2)})`;
  return [
    `[soak] ${r.seconds} s at ${f(r.targetRps)} req/s offered (saturation ${f(r.saturationRps)} req/s), ${f(r.achievedRps)} req/s served`,
    `[soak] requests: ${r.requests.sent} sent, ${r.requests.ok} served, ${r.requests.overloaded} overloaded (429), ${r.requests.failures} non-overload failures, ${r.requests.skippedClientCap} skipped (client cap)`,
    `[soak] admin: ${r.admin.uploads} uploads (hot swaps), ${r.admin.rollbacks} rollbacks, ${r.admin.creates} creates, ${r.admin.deletes} deletes, ${r.admin.sideQueries} queries of the churned task, ${r.admin.failures} failures; ${r.versionsSeen} versions of "main" answered`,
    `[soak] server RSS: ${s(r.rssMb, "MB")}`,
    `[soak] server open fds: ${s(r.fds, "fds")}`,
    `[soak] ${r.samples} samples; shutdown: exit ${r.shutdown.exitCode}, CURRENT ${r.shutdown.currentOnDisk} (expected ${r.shutdown.currentExpected}), ${r.shutdown.tempFilesLeft} temp files`,
    ...(r.failureSamples.length ? [`[soak] failures:`, ...r.failureSamples.map((x) => `  - ${x}`)] : []),
  ].join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let seconds = 600;
  let json = false;
  let metadataKiB = 0;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--seconds" || a.startsWith("--seconds=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      seconds = Number(v);
      if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds needs a positive number, got ${v}`);
    } else if (a === "--metadata-kib" || a.startsWith("--metadata-kib=")) {
      const v = a.includes("=") ? a.slice(a.indexOf("=") + 1) : args[++i];
      metadataKiB = Number(v);
      if (!Number.isFinite(metadataKiB) || metadataKiB < 0)
        throw new Error(`--metadata-kib needs a number of KiB, got ${v}`);
    } else if (a === "--json") json = true;
    else throw new Error(`unknown argument ${a} (use --seconds N, --metadata-kib N, --json)`);
  }
  const report = await runSoak({ seconds, metadataKiB });
  console.log(formatReport(report));
  if (json) console.log(JSON.stringify(report, null, 2));
  const failures = report.requests.failures + report.admin.failures;
  if (failures > 0) process.exit(1);
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
