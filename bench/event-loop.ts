/**
 * npm run bench:event-loop — latency of GET /metrics and GET /healthz while the server is
 * saturated with classify requests (p99 target ≤ 50 ms), next to the same probes on the idle server.
 * Inference runs in a worker thread, so the HTTP event loop should stay responsive.
 */
import { syntheticAdapterBytes } from "./adapters.js";
import { closedLoop, classifyRequest, HttpClient, periodic } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  markdownTable,
  MEASURE_S,
  median,
  MODELS_DIR,
  onCleanup,
  percentile,
  pick,
  readSst2Sentences,
  REPS,
  settingsLine,
  verdict,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { loadBackboneAssets } from "../src/backbone/backbone.js";
import { startServer } from "./server.js";

const TASK = "event-loop";
const PROBE_EVERY_MS = 25;

main(async () => {
  const assets = await loadBackboneAssets(MODELS_DIR);
  const sentences = readSst2Sentences("dev");
  const server = await startServer({ label: "event-loop", env: { SKT_QUEUE_SIZE: String(4 * CONCURRENCY) } });
  await server.client.uploadAdapter(TASK, syntheticAdapterBytes(assets, { task: TASK, seed: 5 }));
  const load = new HttpClient(server.base, CONCURRENCY);
  // Probes use their own connections, so they never queue behind classify requests client-side.
  const probes = { "/healthz": new HttpClient(server.base, 1), "/metrics": new HttpClient(server.base, 1) };
  onCleanup(() => Promise.all([load.close(), ...Object.values(probes).map((c) => c.close())]).then(() => undefined));

  // The server's own view: prom-client resets its event-loop delay histogram at every scrape, so
  // each /metrics probe reports the longest stall of the server's event loop since the previous one.
  const lagOf = (text: string) => Number(/^nodejs_eventloop_lag_max_seconds (\S+)$/m.exec(text)?.[1] ?? NaN) * 1000;
  const probeAll = async (until: () => boolean) => {
    const lagMaxMs: number[] = [];
    const run = async (path: keyof typeof probes) =>
      periodic(PROBE_EVERY_MS, until, async () => {
        const t0 = performance.now();
        const r = await probes[path].get(path);
        const ms = performance.now() - t0;
        if (r.status !== 200) throw new Error(`${path} answered ${r.status}`);
        if (path === "/metrics") lagMaxMs.push(lagOf(r.text));
        return ms;
      });
    const [h, m] = await Promise.all([run("/healthz"), run("/metrics")]);
    return { "/healthz": h, "/metrics": m, lagMaxMs };
  };

  type Summary = { n: number; p50: number; p99: number; max: number };
  const reps: {
    classifyRps: number;
    classifyFailed: number;
    idle: { healthz: Summary; metrics: Summary };
    loaded: { healthz: Summary; metrics: Summary };
    serverLagMaxMs: { idle: number; loaded: number };
  }[] = [];
  for (let r = 0; r < REPS; r++) {
    const idleUntil = performance.now() + pick(2000, 500);
    const idle = await probeAll(() => performance.now() > idleUntil);
    let stop = false;
    let probing: ReturnType<typeof probeAll> | undefined;
    const res = await closedLoop(load, {
      concurrency: CONCURRENCY,
      warmupMs: WARMUP_S * 1000,
      durationMs: MEASURE_S * 1000,
      next: (i) => classifyRequest(TASK, sentences[i % sentences.length]),
      onWindowStart: () => void (probing = probeAll(() => stop)),
      onWindowEnd: () => void (stop = true),
    });
    const loaded = await probing!;
    const summary = (xs: number[]): Summary => ({
      n: xs.length,
      p50: percentile(xs, 50),
      p99: percentile(xs, 99),
      max: Math.max(...xs),
    });
    reps.push({
      classifyRps: res.rps,
      classifyFailed: res.failed,
      idle: { healthz: summary(idle["/healthz"]), metrics: summary(idle["/metrics"]) },
      loaded: { healthz: summary(loaded["/healthz"]), metrics: summary(loaded["/metrics"]) },
      serverLagMaxMs: { idle: Math.max(...idle.lagMaxMs.slice(1)), loaded: Math.max(...loaded.lagMaxMs.slice(1)) },
    });
    console.log(
      `rep ${r + 1}/${REPS}: ${fmt(res.rps, 1)} classify req/s; under load /healthz p99 ${fmt(summary(loaded["/healthz"]).p99, 1)} ms, /metrics p99 ${fmt(summary(loaded["/metrics"]).p99, 1)} ms`,
    );
  }
  const m = (f: (x: (typeof reps)[number]) => number) => median(reps.map(f));
  const table = markdownTable(
    [
      "probe",
      "idle p50 ms",
      "idle p99 ms",
      "saturated p50 ms",
      "saturated p99 ms",
      "saturated max ms",
      "probes (last rep)",
    ],
    (["healthz", "metrics"] as const).map((k) => [
      `GET /${k}`,
      fmt(
        m((x) => x.idle[k].p50),
        2,
      ),
      fmt(
        m((x) => x.idle[k].p99),
        2,
      ),
      fmt(
        m((x) => x.loaded[k].p50),
        2,
      ),
      verdict(
        m((x) => x.loaded[k].p99),
        50,
        "lower",
        1,
      ),
      fmt(
        m((x) => x.loaded[k].max),
        1,
      ),
      String(reps.at(-1)!.loaded[k].n),
    ]),
  );
  await writeReport({
    name: "event-loop",
    title: "Event loop: health and metrics endpoints under saturation",
    notes: [
      settingsLine({ concurrency: CONCURRENCY }),
      `Longest stall of the server's own event loop seen by prom-client (nodejs_eventloop_lag_max_seconds, reset at every scrape, 10 ms resolution): idle ${fmt(
        m((x) => x.serverLagMaxMs.idle),
        1,
      )} ms, saturated ${fmt(
        m((x) => x.serverLagMaxMs.loaded),
        1,
      )} ms (median over repetitions of the per-window maximum). A probe p99 far above it points at the machine (CPU contention) rather than at the server's event loop.`,
      `Saturating closed loop of ${CONCURRENCY} classify clients (median ${fmt(
        m((x) => x.classifyRps),
        1,
      )} req/s, ${reps.reduce((a, x) => a + x.classifyFailed, 0)} failed); each probe path polled every ${PROBE_EVERY_MS} ms on its own connection during the window; median of ${REPS} repetitions.`,
    ],
    tables: [{ markdown: table }],
    data: { reps },
  });
});
