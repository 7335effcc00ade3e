/**
 * npm run bench:many-tasks — what grows with the number of tasks in the store (issue 21). For 1,000,
 * 10,000 and 100,000 small tasks (BENCH_MANY_TASKS=1000,10000 to choose) written straight into a temp
 * store (removed at the end): time to ready on the first start (the task index is built from the
 * files) and on a restart (the index is read), the server's resident memory after start and after
 * touching 1 % and 10 % of the tasks, the first-request latency of unprepared tasks, and `GET /tasks`
 * latency and bytes per page. Targets: ready ≤ 3 s at 100,000 tasks, /tasks ≤ 50 KB per page.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { CURRENT_FILE, versionFileName } from "../src/adapters/store.js";
import { syntheticAdapterBytes } from "./adapters.js";
import { HttpClient, classifyRequest } from "./load.js";
import {
  fmt,
  main,
  makeTempDir,
  markdownTable,
  median,
  MODELS_DIR,
  percentile,
  settingsLine,
  writeReport,
} from "./lib.js";
import { freePort, launchServerProcess, waitUntilReady } from "../scripts/lib/server-process.js";
import { benchServerEnv, startServer } from "./server.js";

const SIZES = (process.env.BENCH_MANY_TASKS ?? "1000,10000,100000").split(",").map(Number);
const READY_TARGET_S = 3;
const PAGE_TARGET_BYTES = 50 * 1000;
/** Fixed-width names, so every file is the template with the name's digits replaced. */
const taskName = (i: number) => `t-${String(i).padStart(7, "0")}`;

/**
 * Writes `count` tasks as the store lays them out (folder, v000001.safetensors, CURRENT), with plain
 * synchronous writes: the store's fsyncs would make 100,000 tasks take many minutes and measure the
 * disk, not the server. Every adapter is the same 9 KB prompt adapter under its own task name.
 */
function writeTasks(dir: string, count: number, template: Uint8Array): void {
  const marker = Buffer.from(taskName(0));
  const at = Buffer.from(template).indexOf(marker);
  if (at < 0) throw new Error("task name not found in the template adapter");
  const bytes = Buffer.from(template);
  for (let i = 0; i < count; i++) {
    const task = taskName(i);
    bytes.write(task, at, "latin1");
    const folder = path.join(dir, task);
    mkdirSync(folder);
    writeFileSync(path.join(folder, versionFileName(1)), bytes);
    writeFileSync(path.join(folder, CURRENT_FILE), "1\n");
  }
}

/**
 * Starts a server on `dir` and stops it (SIGTERM, so it compacts its index as a clean shutdown
 * does): the ready time from spawn, and the server's own "task index read" time (watched on its
 * stdout as it comes: the captured output keeps only a tail).
 */
async function timedStart(dir: string, label: string): Promise<{ readyS: number; indexS: number }> {
  const t0 = performance.now();
  const port = await freePort();
  const proc = await launchServerProcess({
    adaptersDir: dir,
    port,
    env: { ...benchServerEnv(dir, port), SKT_LOG_LEVEL: "info" },
  });
  let indexMs: number | undefined;
  let pending = "";
  proc.proc.stdout!.on("data", (d: Buffer) => {
    const lines = (pending + d.toString()).split("\n");
    pending = lines.pop()!;
    for (const l of lines) if (l.includes('"task index read"')) indexMs = (JSON.parse(l) as { ms: number }).ms;
  });
  try {
    await waitUntilReady(proc, 900_000, label);
  } catch (e) {
    await proc.kill();
    throw e;
  }
  const readyS = (performance.now() - t0) / 1000;
  proc.proc.kill("SIGTERM");
  const exit = await proc.exited;
  if (exit.code !== 0) throw new Error(`${label}: exit ${exit.code} ${exit.signal} after SIGTERM`);
  if (indexMs === undefined) throw new Error(`${label}: no "task index read" line in the server's log`);
  return { readyS, indexS: indexMs / 1000 };
}

/** One classify per task, `concurrency` at a time; latencies in ms. */
async function touch(client: HttpClient, tasks: string[], concurrency: number): Promise<number[]> {
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) {
        const task = tasks[next++];
        const t0 = performance.now();
        const res = await client.post(classifyRequest(task, "a gripping, beautifully acted film"));
        if (res.status !== 200) throw new Error(`classify ${task}: ${res.status} ${res.text.slice(0, 200)}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  return latencies;
}

/** Median latency and size of /tasks pages: the first, and one from the middle via its cursor. */
async function listing(
  client: HttpClient,
  count: number,
): Promise<{ firstMs: number; middleMs: number; bytes: number; bytes1000: number; total: number }> {
  const first = await client.get("/tasks");
  const body = JSON.parse(first.text) as { total: number; tasks: { task: string }[] };
  // The cursor of the page after task count/2 (a cursor is opaque; this builds what the server would return).
  const middleCursor = Buffer.from(`after:${taskName(Math.floor(count / 2))}`).toString("base64url");
  const time = async (p: string) => {
    const ms: number[] = [];
    for (let i = 0; i < 15; i++) {
      const t0 = performance.now();
      const res = await client.get(p);
      if (res.status !== 200) throw new Error(`GET ${p}: ${res.status}`);
      ms.push(performance.now() - t0);
    }
    return median(ms);
  };
  return {
    firstMs: await time("/tasks"),
    middleMs: await time(`/tasks?cursor=${middleCursor}`),
    bytes: Buffer.byteLength(first.text),
    bytes1000: Buffer.byteLength((await client.get("/tasks?limit=1000")).text),
    total: body.total,
  };
}

interface Row {
  tasks: number;
  writeS: number;
  coldReadyS: number;
  coldIndexS: number;
  readyS: number;
  indexS: number;
  rssStartMiB: number;
  rss1MiB: number;
  rss10MiB: number;
  firstRequestMs: { p50: number; p90: number; n: number };
  warmRequestMs: number;
  tasksPage: Awaited<ReturnType<typeof listing>>;
}

main(
  async () => {
    const assets = await loadBackboneAssets(MODELS_DIR);
    const template = syntheticAdapterBytes(assets, { task: taskName(0), promptText: "sentiment" });
    // Baseline: the same start with an empty store (process start, backbone, worker).
    const empty = await makeTempDir("many-tasks-empty");
    const baselineReadyS: number[] = [];
    for (let i = 0; i < 2; i++) baselineReadyS.push((await timedStart(empty, "many-tasks-empty")).readyS);
    const baselineS = Math.min(...baselineReadyS);
    console.log(`empty store: ready in ${baselineReadyS.map((s) => s.toFixed(2)).join(" / ")} s`);
    const rows: Row[] = [];
    for (const count of SIZES) {
      const dir = await makeTempDir(`many-tasks-${count}`);
      const t0 = performance.now();
      writeTasks(dir, count, template);
      const writeS = (performance.now() - t0) / 1000;
      console.log(
        `${count} tasks: written in ${writeS.toFixed(1)} s (${fmt((count * template.length) / 2 ** 20, 0)} MiB of adapters)`,
      );

      // First start: no INDEX yet, so every folder is read once and the index written.
      const cold = await timedStart(dir, `many-tasks-${count}-cold`);
      // Restart: the index is read; no adapter file is.
      const { readyS, indexS } = await timedStart(dir, `many-tasks-${count}-restart`);
      // The measured run logs at warn (no per-request log lines).
      const server = await startServer({ label: `many-tasks-${count}`, adaptersDir: dir, readyTimeoutMs: 900_000 });
      const rssStart = await server.rssBytes();
      const client = new HttpClient(server.base, 8);

      // Tasks in a fixed shuffled order: the first 20 measure an unprepared task's first request alone.
      const order = Array.from({ length: count }, (_, i) => i);
      let seed = 12345;
      for (let i = order.length - 1; i > 0; i--) {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff;
        const j = seed % (i + 1);
        [order[i], order[j]] = [order[j], order[i]];
      }
      const names = order.map(taskName);
      const first = await touch(client, names.slice(0, 20), 1);
      const warm = median(await touch(client, names.slice(0, 20), 1));
      await touch(client, names.slice(20, Math.max(20, Math.round(count / 100))), 8);
      const rss1 = await server.rssBytes();
      await touch(client, names.slice(Math.max(20, Math.round(count / 100)), Math.round(count / 10)), 8);
      const rss10 = await server.rssBytes();
      const tasksPage = await listing(client, count);
      if (tasksPage.total !== count) throw new Error(`/tasks total ${tasksPage.total}, expected ${count}`);
      await client.close();
      await server.stop();
      rows.push({
        tasks: count,
        writeS,
        coldReadyS: cold.readyS,
        coldIndexS: cold.indexS,
        readyS,
        indexS,
        rssStartMiB: rssStart / 2 ** 20,
        rss1MiB: rss1 / 2 ** 20,
        rss10MiB: rss10 / 2 ** 20,
        firstRequestMs: { p50: median(first), p90: percentile(first, 90), n: first.length },
        warmRequestMs: warm,
        tasksPage,
      });
      console.log(JSON.stringify(rows[rows.length - 1]));
    }

    const last = rows[rows.length - 1];
    await writeReport({
      name: "many-tasks",
      title: `Many tasks: start-up, memory and listings with up to ${fmt(last.tasks)} tasks in the store`,
      notes: [
        settingsLine(),
        `Each task: one ${fmt(template.length / 1024, 1)} KiB prompt adapter (1-token prompt, pooling), written straight into a temp store. "Ready" is spawn → first 200 from /readyz (node + tsx start, backbone load, task index; /readyz polled); "task index" is the server's own time for opening the index (its log line "task index read"). First start: no INDEX, built from the files; restart: INDEX read after a clean shutdown. Touching = one /classify per task, 8 at a time, default 256 MiB cache. First request: 20 unprepared tasks one at a time (read + validate + F + the request), then the same 20 again (prepared).`,
      ],
      tables: [
        {
          markdown: markdownTable(
            [
              "tasks",
              "ready: first start (index built) / restart (empty store: " + baselineS.toFixed(2) + " s)",
              "of which task index: built / read",
              "RSS after start / 1 % touched / 10 % touched",
              "first request of an unprepared task p50 / p90 (prepared: p50)",
              "/tasks page (100): bytes, first / middle page latency",
              "/tasks?limit=1000 bytes",
            ],
            rows.map((r) => [
              fmt(r.tasks),
              `${r.coldReadyS.toFixed(2)} s / **${r.readyS.toFixed(2)} s**`,
              `${r.coldIndexS.toFixed(2)} s / ${r.indexS.toFixed(2)} s`,
              `${fmt(r.rssStartMiB, 0)} / ${fmt(r.rss1MiB, 0)} / ${fmt(r.rss10MiB, 0)} MiB`,
              `${r.firstRequestMs.p50.toFixed(1)} / ${r.firstRequestMs.p90.toFixed(1)} ms (${r.warmRequestMs.toFixed(1)} ms)`,
              `${fmt(r.tasksPage.bytes)} B, ${r.tasksPage.firstMs.toFixed(1)} / ${r.tasksPage.middleMs.toFixed(1)} ms`,
              fmt(r.tasksPage.bytes1000),
            ]),
            ["r", "l", "l", "l", "l", "l", "r"],
          ),
        },
        {
          markdown: markdownTable(
            ["target", "measured", "verdict"],
            [
              [
                `ready ≤ ${READY_TARGET_S} s at ${fmt(last.tasks)} tasks (restart)`,
                `${last.readyS.toFixed(2)} s (empty store ${baselineS.toFixed(2)} s; reading the index ${last.indexS.toFixed(2)} s)`,
                last.readyS <= READY_TARGET_S ? "met" : "missed",
              ],
              [
                `/tasks ≤ ${PAGE_TARGET_BYTES / 1000} KB per page`,
                `${fmt(Math.max(...rows.map((r) => r.tasksPage.bytes)))} B`,
                Math.max(...rows.map((r) => r.tasksPage.bytes)) <= PAGE_TARGET_BYTES ? "met" : "missed",
              ],
            ],
            ["l", "r", "l"],
          ),
        },
      ],
      data: { sizes: SIZES, adapterBytes: template.length, baselineReadyS, rows },
    });
  },
  Number(process.env.BENCH_SCRIPT_TIMEOUT_S ?? 3600),
);
