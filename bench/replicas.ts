/**
 * npm run bench:replicas — two server processes sharing one PostgreSQL adapter store (SKT_STORE),
 * PostgreSQL started in a temporary folder (scripts/lib/postgres-cluster.ts):
 *
 *  1. propagation: an upload or rollback acknowledged by replica A, until replica B answers
 *     /classify with the new version (B polled every 2 ms); p50/p90/p99/max over N changes
 *     (half uploads, half rollbacks);
 *  2. classification throughput of both replicas together (closed loop, half the clients on each),
 *     without and then during a stream of uploads to the classified task (one every 250 ms,
 *     alternating between the replicas);
 *  3. recovery after the database restarts: from `pg_ctl start` returning until both replicas say
 *     `store: ok` in /readyz, and until an upload on A after that is served by B.
 */
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { startPostgresCluster } from "../scripts/lib/postgres-cluster.js";
import { syntheticAdapterBytes } from "./adapters.js";
import { HttpClient, classifyRequest, closedLoop } from "./load.js";
import {
  MEASURE_S,
  MODELS_DIR,
  WARMUP_S,
  fmt,
  main,
  markdownTable,
  onCleanup,
  percentile,
  pick,
  settingsLine,
  sleep,
  writeReport,
} from "./lib.js";
import { startServer, type BenchServer, type TimedAdminCall } from "./server.js";

const CHANGES = Number(process.env.BENCH_REPLICAS_CHANGES ?? pick(200, 20));
const RESTARTS = Number(process.env.BENCH_REPLICAS_RESTARTS ?? pick(3, 1));
const CLIENTS = Number(process.env.BENCH_REPLICAS_CLIENTS ?? 8);
const UPLOAD_EVERY_MS = 250;
const POLL_MS = 2;
const TEXT = "a fine film with a few slow scenes";

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const db = await startPostgresCluster();
  onCleanup(() => db.destroy());
  const env = { SKT_STORE: db.url, SKT_WORKERS: "1", SKT_THREADS: "1", SKT_MAX_WAIT_MS: "2" };
  const [a, b] = await Promise.all([
    startServer({ label: "replica-a", env }),
    startServer({ label: "replica-b", env }),
  ]);
  let seed = 0;
  const adapter = (task: string) => syntheticAdapterBytes(assets, { task, seed: ++seed });

  const probeB = new HttpClient(b.base, 1);
  const servedVersion = async (s: HttpClient, task: string): Promise<number | null> => {
    const r = await s.post(classifyRequest(task, TEXT));
    return r.status === 200 ? (JSON.parse(r.text) as { adapter_version: number }).adapter_version : null;
  };
  /** ms from `ackAt` until B serves `version` of `task`. */
  const untilServedByB = async (task: string, version: number, ackAt: number, withinMs = 30_000): Promise<number> => {
    for (;;) {
      if ((await servedVersion(probeB, task)) === version) return performance.now() - ackAt;
      if (performance.now() - ackAt > withinMs)
        throw new Error(`B did not serve ${task} v${version} within ${withinMs} ms`);
      await sleep(POLL_MS);
    }
  };
  const ok = (r: TimedAdminCall, what: string) => {
    if (!r.info) throw new Error(`${what}: ${r.status} ${r.error?.code ?? ""} ${r.error?.message ?? ""}`);
    return r.info;
  };

  // ---- 1. propagation ----
  const task = "propagation";
  ok(await a.upload(task, adapter(task)), "first upload");
  await untilServedByB(task, 1, performance.now());
  const uploads: number[] = [];
  const rollbacks: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const isUpload = i % 2 === 0;
    const r = isUpload ? await a.upload(task, adapter(task)) : await a.rollback(task);
    const ackAt = performance.now();
    const { version } = ok(r, isUpload ? "upload" : "rollback");
    (isUpload ? uploads : rollbacks).push(await untilServedByB(task, version, ackAt));
  }
  const all = [...uploads, ...rollbacks];
  const dist = (xs: number[]) => ({
    n: xs.length,
    p50: percentile(xs, 50),
    p90: percentile(xs, 90),
    p99: percentile(xs, 99),
    max: Math.max(...xs),
  });
  const propagation = {
    uploads: dist(uploads),
    rollbacks: dist(rollbacks),
    all: dist(all),
    within1s: all.filter((x) => x <= 1000).length,
  };

  // ---- 2. throughput without and during uploads ----
  const hot = "hot";
  ok(await a.upload(hot, adapter(hot)), "hot upload");
  await untilServedByB(hot, 1, performance.now());
  const clientA = new HttpClient(a.base, CLIENTS / 2);
  const clientB = new HttpClient(b.base, CLIENTS / 2);
  const bothReplicas = async () => {
    const opts = {
      concurrency: CLIENTS / 2,
      warmupMs: WARMUP_S * 1000,
      durationMs: MEASURE_S * 1000,
      next: () => classifyRequest(hot, TEXT),
    };
    const [ra, rb] = await Promise.all([closedLoop(clientA, opts), closedLoop(clientB, opts)]);
    return { rps: ra.rps + rb.rps, failed: ra.failed + rb.failed, p99: Math.max(ra.p99, rb.p99), a: ra.rps, b: rb.rps };
  };
  const quiet = await bothReplicas();
  let streaming = true;
  let streamed = 0;
  const stream = (async () => {
    for (let i = 0; streaming; i++) {
      ok(await (i % 2 ? b : a).upload(hot, adapter(hot)), "streamed upload");
      streamed++;
      await sleep(UPLOAD_EVERY_MS);
    }
  })();
  const busy = await bothReplicas();
  streaming = false;
  await stream;

  // ---- 3. recovery after a database restart ----
  const recoveries: { storeOkMs: number; servedMs: number }[] = [];
  const storeState = async (s: BenchServer) =>
    ((await (await fetch(`${s.base}/readyz`)).json()) as { store: { state: string } }).store.state;
  for (let i = 0; i < RESTARTS; i++) {
    await db.stop();
    while ((await storeState(a)) !== "degraded" || (await storeState(b)) !== "degraded") await sleep(20);
    await sleep(1000);
    await db.start();
    const up = performance.now();
    while ((await storeState(a)) !== "ok" || (await storeState(b)) !== "ok") await sleep(10);
    const storeOkMs = performance.now() - up;
    let r = await a.upload(task, adapter(task));
    while (r.status === 503) r = await a.upload(task, adapter(task));
    const { version } = ok(r, "upload after restart");
    const servedMs = await untilServedByB(task, version, up);
    recoveries.push({ storeOkMs, servedMs });
  }

  const ms = (x: number) => fmt(x, 1);
  await writeReport({
    name: "replicas",
    title: "Replicas: two servers sharing a PostgreSQL adapter store",
    notes: [
      settingsLine({ replicas: 2, threadsPerReplica: 1, clients: CLIENTS }),
      `PostgreSQL ${db.url.replace(/\/\/.*@/, "//…@")} in a temp folder (fsync off); B polled with /classify every ${POLL_MS} ms after A acknowledged each change.`,
    ],
    tables: [
      {
        caption: `Propagation: A acknowledges → B serves the new version (${all.length} changes; ${propagation.within1s} within 1 s)`,
        markdown: markdownTable(
          ["change", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
          (["uploads", "rollbacks", "all"] as const).map((k) => [
            k,
            propagation[k].n,
            ms(propagation[k].p50),
            ms(propagation[k].p90),
            ms(propagation[k].p99),
            ms(propagation[k].max),
          ]),
          ["l", "r", "r", "r", "r", "r"],
        ),
      },
      {
        caption: `Classification throughput of both replicas (${CLIENTS} clients, half on each, ${MEASURE_S} s)`,
        markdown: markdownTable(
          ["phase", "req/s (A + B)", "A", "B", "failed", "worst p99 ms"],
          [
            ["no uploads", fmt(quiet.rps), fmt(quiet.a), fmt(quiet.b), quiet.failed, ms(quiet.p99)],
            [
              `an upload every ${UPLOAD_EVERY_MS} ms (${streamed} in all)`,
              fmt(busy.rps),
              fmt(busy.a),
              fmt(busy.b),
              busy.failed,
              ms(busy.p99),
            ],
          ],
          ["l", "r", "r", "r", "r", "r"],
        ),
      },
      {
        caption: "Recovery after the database restarts (from `pg_ctl start` returning)",
        markdown: markdownTable(
          ["restart", "both replicas store ok, ms", "next upload on A served by B, ms"],
          recoveries.map((r, i) => [i + 1, ms(r.storeOkMs), ms(r.servedMs)]),
          ["r", "r", "r"],
        ),
      },
    ],
    data: {
      propagation,
      raw: { uploads, rollbacks },
      throughput: { quiet, busy, streamed, uploadEveryMs: UPLOAD_EVERY_MS },
      recoveries,
    },
  });
});
