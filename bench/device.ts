/**
 * npm run bench:device — CPU vs WebGPU (onnxruntime-node's bundled provider): the raw USE-lite
 * backbone over batch 1–256 × 16–128 tokens (pooled output only, as served), then the server at
 * saturation (closed loop) on each device. Sized for well under 10 minutes on a machine with a GPU:
 * every grid cell stops repeating after BENCH_CELL_S seconds.
 *
 *   npm run bench:device                                 real GPU (the Vulkan loader's driver)
 *   BENCH_QUICK=1 BENCH_WEBGPU_DRIVER=swiftshader npm run bench:device   smoke run on the software GPU
 *
 * The report names the WebGPU adapter; a SwiftShader row is a CPU emulating a GPU, not a GPU figure.
 */
import os from "node:os";
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../src/backbone/backbone.js";
import type { Device } from "../src/backbone/device.js";
import { prepareWebGpuEnv } from "../scripts/lib/webgpu-env.js";
import { syntheticAdapterBytes } from "./adapters.js";
import { classifyRequest, closedLoop, HttpClient } from "./load.js";
import {
  CONCURRENCY,
  fmt,
  main,
  markdownTable,
  MEASURE_S,
  median,
  MODELS_DIR,
  onCleanup,
  pick,
  readSst2Sentences,
  REPS,
  settingsLine,
  THREADS,
  WARMUP_S,
  writeReport,
} from "./lib.js";
import { startServer, windowProbe } from "./server.js";

const BATCHES: number[] = pick([1, 8, 32, 128, 256], [1, 4]);
const LENGTHS: number[] = pick([16, 32, 64, 128], [16]);
/** Seconds one grid cell may spend repeating (after its warm-up run); at least one timed run. */
const CELL_S = Number(process.env.BENCH_CELL_S ?? pick(3, 0.5));
const DRIVER = process.env.BENCH_WEBGPU_DRIVER === "swiftshader" ? "swiftshader-unless-set" : "system";

interface Cell {
  device: Device;
  batch: number;
  length: number;
  msPerRun: number;
  tokensPerSec: number;
  runs: number;
}

main(
  async () => {
    const env = prepareWebGpuEnv({ driver: DRIVER });
    if (!env.available) throw new Error(`WebGPU: ${env.reason}`);
    const assets = await loadBackboneAssets(MODELS_DIR);
    const sentences = readSst2Sentences("dev");
    const pool = sentences.flatMap((s) => assets.tokenizer.ids(s));
    const sequence = (length: number, offset: number) =>
      Array.from({ length }, (_, i) => pool[(offset + i) % pool.length]);

    // ---- raw backbone grid ------------------------------------------------------------------------
    const cells: Cell[] = [];
    let adapterName = "";
    for (const device of ["cpu", "webgpu"] as const) {
      const runner = await BackboneRunner.create(MODELS_DIR, { threads: THREADS, device });
      let released = false;
      const release = async () => {
        if (released) return;
        released = true;
        await runner.release();
      };
      onCleanup(release);
      if (device === "webgpu") adapterName = runner.deviceInfo.adapter ?? "unknown adapter";
      for (const batch of BATCHES) {
        for (const length of LENGTHS) {
          const seqs = Array.from({ length: batch }, (_, b) => sequence(length, b * 997));
          const input = () => tokenBatch(assets.embeddings, assets.dims.embedDim, seqs, ["pooled"], runner.input);
          await runner.run(input()); // warm-up: WebGPU compiles its shaders for each new shape here
          const times: number[] = [];
          const until = performance.now() + CELL_S * 1000;
          while (times.length < Math.max(1, REPS) || (performance.now() < until && times.length < 20)) {
            const b = input();
            const t0 = performance.now();
            await runner.run(b);
            times.push(performance.now() - t0);
            if (performance.now() >= until) break;
          }
          const ms = median(times);
          cells.push({
            device,
            batch,
            length,
            msPerRun: ms,
            tokensPerSec: (batch * length) / (ms / 1000),
            runs: times.length,
          });
          console.log(`${device} batch ${batch} × ${length}: ${ms.toFixed(2)} ms (${times.length} runs)`);
        }
      }
      await release();
    }
    const gridRows = BATCHES.flatMap((batch) =>
      LENGTHS.map((length) => {
        const c = cells.find((x) => x.device === "cpu" && x.batch === batch && x.length === length)!;
        const g = cells.find((x) => x.device === "webgpu" && x.batch === batch && x.length === length)!;
        return [
          batch,
          length,
          fmt(c.msPerRun, 2),
          fmt(g.msPerRun, 2),
          fmt(c.tokensPerSec),
          fmt(g.tokensPerSec),
          `${(c.msPerRun / g.msPerRun).toFixed(2)}×`,
        ];
      }),
    );

    // ---- the server at saturation on each device ----------------------------------------------------
    const configs: { name: string; env: Record<string, string> }[] = [
      { name: "cpu", env: { SKT_DEVICE: "cpu" } },
      { name: "webgpu", env: { SKT_DEVICE: "webgpu" } },
      {
        name: "webgpu, batches ≤ 256 rows / 32768 tokens",
        env: { SKT_DEVICE: "webgpu", SKT_MAX_BATCH_SIZE: "256", SKT_MAX_BATCH_TOKENS: "32768" },
      },
    ];
    const serverRows: (string | number)[][] = [];
    const serverData: unknown[] = [];
    for (const cfg of configs) {
      const server = await startServer({
        label: cfg.name,
        env: { ...env.env, ...cfg.env, SKT_QUEUE_SIZE: String(8 * CONCURRENCY), SKT_REQUEST_TIMEOUT_MS: "120000" },
      });
      await server.client.uploadAdapter("bench", syntheticAdapterBytes(assets, { task: "bench", seed: 5 }));
      const ready = await server.client.ready();
      const client = new HttpClient(server.base, CONCURRENCY);
      const probe = windowProbe(server);
      const r = await closedLoop(client, {
        concurrency: CONCURRENCY,
        warmupMs: WARMUP_S * 1000,
        durationMs: MEASURE_S * 1000,
        next: (i) => classifyRequest("bench", sentences[i % sentences.length]),
        ...probe,
      });
      const s = probe.stats();
      await client.close();
      await server.stop();
      serverRows.push([
        cfg.name,
        ready.device?.adapter ?? ready.device?.device ?? "unknown",
        fmt(r.rps, 1),
        fmt(r.p50, 0),
        fmt(r.p95, 0),
        fmt(s.meanBatchSize, 1),
        r.failed,
      ]);
      serverData.push({
        config: cfg,
        device: ready.device,
        rps: r.rps,
        p50: r.p50,
        p95: r.p95,
        failed: r.failed,
        failures: r.failures,
        batch: s,
      });
    }

    await writeReport({
      name: "device",
      title: "CPU vs WebGPU: raw backbone and server at saturation",
      notes: [
        settingsLine({
          "WebGPU adapter": adapterName,
          "Vulkan driver": env.reason,
          "cell budget s": CELL_S,
          concurrency: CONCURRENCY,
          host: os.hostname(),
        }),
        /swiftshader/i.test(adapterName)
          ? "WebGPU ran on SwiftShader (a CPU emulating a GPU): these are not GPU figures."
          : "",
      ].filter(Boolean),
      tables: [
        {
          caption: "Raw backbone, pooled output, median ms per run",
          markdown: markdownTable(
            ["batch", "tokens/seq", "CPU ms", "WebGPU ms", "CPU tokens/s", "WebGPU tokens/s", "WebGPU speed-up"],
            gridRows,
          ),
        },
        {
          caption: `Server at saturation (closed loop, ${CONCURRENCY} clients, ${MEASURE_S} s window)`,
          markdown: markdownTable(
            ["config", "device", "req/s", "p50 ms", "p95 ms", "rows/batch", "failed"],
            serverRows,
            ["l", "l", "r", "r", "r", "r", "r"],
          ),
        },
      ],
      data: { adapter: adapterName, cells, server: serverData },
    });
  },
  Number(process.env.BENCH_SCRIPT_TIMEOUT_S ?? 540),
);
