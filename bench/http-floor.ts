/**
 * npm run bench:http-floor — what the HTTP layer alone costs the main thread per /classify request,
 * without the model: a server process answers `POST /classify?task=sst2` with a fixed prediction,
 * every answer held until a shared tick (BENCH_HTTP_FLOOR_TICK_MS, default 250 ms, like batches
 * completing), under the same closed loop of 64 connections as the other benches. Four servers:
 *
 *   node      Node's http, JSON.parse, JSON.stringify — nothing else (the floor)
 *   hono      one hono route through @hono/node-server, c.req.json() and c.json()
 *   app       this project's app (createApp) with a stub service, every request through hono
 *   app+lane  the same with the /classify fast lane (SKT_FAST_LANE, the default)
 *
 * The app modes log each request to /dev/null through pino (as the server logs to stdout) and
 * count it in prom-client. Reported: requests/s and the server process's CPU µs per request
 * (user + system from the child's own process.cpuUsage()).
 */
import { fork, type ChildProcess } from "node:child_process";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { envNumber, fmt, main, markdownTable, median, QUICK, REPS, settingsLine, writeReport } from "./lib.js";
import { HttpClient, closedLoop } from "./load.js";

const MODES = ["node", "hono", "app", "app+lane"] as const;
type Mode = (typeof MODES)[number];
const TICK_MS = envNumber("BENCH_HTTP_FLOOR_TICK_MS", 250, 1);
const WINDOW_S = QUICK ? 2 : envNumber("BENCH_HTTP_FLOOR_WINDOW_S", 6, 1);
const CONNECTIONS = 64;
/**
 * Before a server's first window: with 2 s, the app's CPU per request fell from ~1,050 to ~510 µs
 * over the first three windows (V8 still optimising hono's and zod's paths); after 8 s it is steady.
 */
const FIRST_WARMUP_S = QUICK ? 1 : envNumber("BENCH_HTTP_FLOOR_WARMUP_S", 8, 0);
const TEXT = "a gripping , funny and touching film that never lets up";

// ---- the server side (a child process) -----------------------------------------------------------

async function serve(mode: Mode): Promise<void> {
  const waiting: (() => void)[] = [];
  setInterval(() => waiting.splice(0).forEach((release) => release()), TICK_MS).unref();
  const held = () => new Promise<void>((resolve) => waiting.push(resolve));
  const prediction = (text: string) => ({
    label: "positive",
    score: 0.9,
    scores: { negative: 0.1, positive: 0.9 },
    tokens: text.length >> 2,
    truncated: false,
  });
  let listener: (req: IncomingMessage, res: ServerResponse) => void;
  if (mode === "node") {
    listener = (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { text: string };
        void held().then(() => {
          const out = JSON.stringify({ task: "sst2", adapter_version: 1, predictions: [prediction(body.text)] });
          res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(out) });
          res.end(out);
        });
      });
    };
  } else if (mode === "hono") {
    const { Hono } = await import("hono");
    const { getRequestListener } = await import("@hono/node-server");
    const app = new Hono();
    app.post("/classify", async (c) => {
      const body = await c.req.json<{ text: string }>();
      await held();
      return c.json({ task: "sst2", adapter_version: 1, predictions: [prediction(body.text)] });
    });
    const handle = getRequestListener(app.fetch);
    listener = (req, res) => void handle(req, res);
  } else {
    const { pino } = await import("pino");
    const { createApp } = await import("../src/server/app.js");
    const { classifyFastLane } = await import("../src/server/classify-fast-lane.js");
    const { createMetrics } = await import("../src/metrics.js");
    const { defaultConfig } = await import("../src/config.js");
    const { createLogger } = await import("../src/logger.js");
    const { getRequestListener } = await import("@hono/node-server");
    const service = {
      isReady: () => true,
      hasTask: (task: string) => task === "sst2",
      async classify(req: { texts: string[]; task: string }) {
        await held();
        return { task: req.task, adapterVersion: 1, predictions: req.texts.map(prediction) };
      },
    } as unknown as import("../src/engine/service.js").InferenceService;
    const config = defaultConfig({});
    const logger = createLogger({ destination: pino.destination({ dest: "/dev/null", sync: true }) });
    const metrics = createMetrics({});
    const app = createApp({ service, metrics, config, logger });
    const handle = getRequestListener(app.fetch);
    const lane = mode === "app+lane" ? classifyFastLane({ service, metrics, config, logger }, app) : undefined;
    listener = (req, res) => {
      if (!lane?.(req, res)) void handle(req, res);
    };
  }
  const server = createServer(listener);
  server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as AddressInfo).port }));
  process.on("message", (m) => {
    if (m === "cpu") process.send!({ cpu: process.cpuUsage() });
  });
}

// ---- the driver ------------------------------------------------------------------------------------

interface Child {
  proc: ChildProcess;
  port: number;
  cpu(): Promise<NodeJS.CpuUsage>;
}

async function start(mode: Mode): Promise<Child> {
  const proc = fork(new URL(import.meta.url).pathname, [], { env: { ...process.env, BENCH_HTTP_FLOOR_MODE: mode } });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once("message", (m: { port: number }) => resolve(m.port));
    proc.once("exit", (code) => reject(new Error(`${mode} server exited with ${code}`)));
  });
  const cpu = () =>
    new Promise<NodeJS.CpuUsage>((resolve) => {
      proc.once("message", (m: { cpu: NodeJS.CpuUsage }) => resolve(m.cpu));
      proc.send("cpu");
    });
  return { proc, port, cpu };
}

async function measure(child: Child, warmupS: number) {
  const client = new HttpClient(`http://127.0.0.1:${child.port}`, CONNECTIONS);
  let c0: NodeJS.CpuUsage | undefined;
  let c1: NodeJS.CpuUsage | undefined;
  const body = JSON.stringify({ text: TEXT });
  const s = await closedLoop(client, {
    concurrency: CONNECTIONS,
    warmupMs: warmupS * 1000,
    durationMs: WINDOW_S * 1000,
    next: () => ({ path: "/classify?task=sst2", body }),
    onWindowStart: async () => {
      c0 = await child.cpu();
    },
    onWindowEnd: async () => {
      c1 = await child.cpu();
    },
  });
  await client.close();
  const cpuUs = c1!.user + c1!.system - (c0!.user + c0!.system);
  return { rps: s.rps, failed: s.failed, usPerRequest: cpuUs / (s.rps * WINDOW_S) };
}

if (process.env.BENCH_HTTP_FLOOR_MODE) {
  void serve(process.env.BENCH_HTTP_FLOOR_MODE as Mode);
} else {
  main(async () => {
    const children = Object.fromEntries(
      await Promise.all(MODES.map(async (m) => [m, await start(m)] as const)),
    ) as Record<Mode, Child>;
    const runs: Record<Mode, { rps: number; failed: number; usPerRequest: number }[]> = {
      node: [],
      hono: [],
      app: [],
      "app+lane": [],
    };
    try {
      for (let r = 0; r < REPS; r++) {
        const order = r % 2 === 0 ? MODES : [...MODES].reverse();
        for (const mode of order) {
          const x = await measure(children[mode], r === 0 ? FIRST_WARMUP_S : 2);
          runs[mode].push(x);
          console.log(`rep ${r + 1}/${REPS} ${mode}: ${fmt(x.rps)} req/s, ${fmt(x.usPerRequest)} µs CPU per request`);
        }
      }
    } finally {
      for (const c of Object.values(children)) c.proc.kill();
    }
    const us = (m: Mode) => median(runs[m].map((x) => x.usPerRequest));
    const table = markdownTable(
      ["server", "requests/s", "server CPU µs per request", "÷ node", "failed"],
      MODES.map((m) => [
        m,
        fmt(median(runs[m].map((x) => x.rps))),
        fmt(us(m)),
        (us(m) / us("node")).toFixed(2),
        String(runs[m].reduce((a, x) => a + x.failed, 0)),
      ]),
    );
    await writeReport({
      name: "http-floor",
      title: "The HTTP layer's CPU per /classify request, without the model",
      notes: [
        settingsLine({ "window s": WINDOW_S, "tick ms": TICK_MS, connections: CONNECTIONS }),
        `Answers held until a shared ${TICK_MS} ms tick (as batches complete), ${CONNECTIONS} connections, one text per request; each server warmed up ${FIRST_WARMUP_S} s before its first window, 2 s before the others; medians of ${REPS} repetitions, the four servers in alternating order.`,
      ],
      tables: [{ markdown: table }],
      data: { runs, tickMs: TICK_MS, windowS: WINDOW_S },
    });
  });
}
