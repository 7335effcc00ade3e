/**
 * npm run bench:models — your own model at real sizes. Generates random Hugging Face checkpoints
 * with real shapes in a temp folder (removed at the end, never committed): BERT-base (110M, F32,
 * as bert-base-uncased ships) and a 0.5B decoder with Qwen2-0.5B's config (BF16, as it ships; tied
 * embeddings, q/k/v biases), each with a synthetic tokenizer of the real vocabulary size. For each:
 * the build (time, peak RSS), loading (time, RSS after load, by component), the raw graph's
 * throughput (tokens/s at batch 1/8/32 × 16/64/128 tokens) and a server's /embed at saturation.
 * Build, load and raw runs happen in child processes so each RSS figure is that phase's alone.
 *
 * BENCH_MODELS=bert-base or qwen2-0.5b picks one; BENCH_QUICK=1 shrinks the grid and the windows.
 */
import { spawn } from "node:child_process";
import { copyFile, mkdir, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { BackboneRunner, loadBackboneAssets, tokenBatch } from "../src/backbone/backbone.js";
import { BUILD_FILES } from "../src/backbone/build.js";
import { ensureHfBackboneBuilt } from "../src/backbone/hf/build.js";
import { closedLoop, HttpClient } from "./load.js";
import {
  fmt,
  main,
  makeTempDir,
  markdownTable,
  median,
  onCleanup,
  pick,
  QUICK,
  readSst2Sentences,
  REPO_ROOT,
  settingsLine,
  THREADS,
  writeReport,
} from "./lib.js";
import { startServer } from "./server.js";

const FIXTURES = path.resolve(REPO_ROOT, "../shared/fixtures/backbones");

interface ModelSpec {
  name: string;
  dtype: "F32" | "BF16";
  config: Record<string, unknown>;
  /** Tensor names and shapes, in file order. */
  tensors: [string, number[]][];
  /** The fixture whose tokenizer.json is widened to the real vocabulary. */
  tokenizerFrom: "bert-v" | "llama-v";
  vocab: number;
}

function bertBase(): ModelSpec {
  const H = 768;
  const I = 3072;
  const tensors: [string, number[]][] = [
    ["bert.embeddings.word_embeddings.weight", [30522, H]],
    ["bert.embeddings.position_embeddings.weight", [512, H]],
    ["bert.embeddings.token_type_embeddings.weight", [2, H]],
    ["bert.embeddings.LayerNorm.weight", [H]],
    ["bert.embeddings.LayerNorm.bias", [H]],
  ];
  for (let n = 0; n < 12; n++) {
    const p = `bert.encoder.layer.${n}`;
    for (const [name, out, inp] of [
      ["attention.self.query", H, H],
      ["attention.self.key", H, H],
      ["attention.self.value", H, H],
      ["attention.output.dense", H, H],
      ["intermediate.dense", I, H],
      ["output.dense", H, I],
    ] as const)
      tensors.push([`${p}.${name}.weight`, [out, inp]], [`${p}.${name}.bias`, [out]]);
    for (const norm of ["attention.output.LayerNorm", "output.LayerNorm"])
      tensors.push([`${p}.${norm}.weight`, [H]], [`${p}.${norm}.bias`, [H]]);
  }
  tensors.push(["bert.pooler.dense.weight", [H, H]], ["bert.pooler.dense.bias", [H]]);
  return {
    name: "bert-base",
    dtype: "F32",
    tokenizerFrom: "bert-v",
    vocab: 30522,
    tensors,
    config: {
      model_type: "bert",
      vocab_size: 30522,
      hidden_size: H,
      num_hidden_layers: 12,
      num_attention_heads: 12,
      intermediate_size: I,
      hidden_act: "gelu",
      max_position_embeddings: 512,
      type_vocab_size: 2,
      layer_norm_eps: 1e-12,
      pad_token_id: 0,
      position_embedding_type: "absolute",
    },
  };
}

function qwen2Half(): ModelSpec {
  const H = 896;
  const I = 4864;
  const kv = 2 * 64;
  const tensors: [string, number[]][] = [["model.embed_tokens.weight", [151936, H]]];
  for (let n = 0; n < 24; n++) {
    const p = `model.layers.${n}`;
    tensors.push(
      [`${p}.input_layernorm.weight`, [H]],
      [`${p}.self_attn.q_proj.weight`, [H, H]],
      [`${p}.self_attn.q_proj.bias`, [H]],
      [`${p}.self_attn.k_proj.weight`, [kv, H]],
      [`${p}.self_attn.k_proj.bias`, [kv]],
      [`${p}.self_attn.v_proj.weight`, [kv, H]],
      [`${p}.self_attn.v_proj.bias`, [kv]],
      [`${p}.self_attn.o_proj.weight`, [H, H]],
      [`${p}.post_attention_layernorm.weight`, [H]],
      [`${p}.mlp.gate_proj.weight`, [I, H]],
      [`${p}.mlp.up_proj.weight`, [I, H]],
      [`${p}.mlp.down_proj.weight`, [H, I]],
    );
  }
  tensors.push(["model.norm.weight", [H]]);
  return {
    name: "qwen2-0.5b",
    dtype: "BF16",
    tokenizerFrom: "llama-v",
    vocab: 151936,
    tensors,
    // Qwen2-0.5B's config.json (the fields the loader reads).
    config: {
      model_type: "qwen2",
      architectures: ["Qwen2ForCausalLM"],
      vocab_size: 151936,
      hidden_size: H,
      intermediate_size: I,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      hidden_act: "silu",
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      rope_scaling: null,
      tie_word_embeddings: true,
      use_sliding_window: false,
      sliding_window: 131072,
      max_window_layers: 24,
      attention_dropout: 0.0,
      bos_token_id: 151643,
      eos_token_id: 151643,
      torch_dtype: "bfloat16",
    },
  };
}

const SPECS = [bertBase(), qwen2Half()];

/** Random weights streamed to `file` one tensor at a time (norm weights near 1, the rest small). */
async function writeRandomSafetensors(file: string, spec: ModelSpec, seed: number): Promise<number> {
  const width = spec.dtype === "F32" ? 4 : 2;
  const header: Record<string, unknown> = { __metadata__: { format: "pt" } };
  let offset = 0;
  for (const [name, shape] of spec.tensors) {
    const bytes = shape.reduce((a, b) => a * b, 1) * width;
    header[name] = { dtype: spec.dtype, shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + json.length) % 8)) % 8);
  const handle = await open(file, "w");
  try {
    const lead = new Uint8Array(8);
    new DataView(lead.buffer).setBigUint64(0, BigInt(json.length), true);
    await handle.write(lead);
    await handle.write(new TextEncoder().encode(json));
    let state = seed >>> 0 || 1;
    for (const [name, shape] of spec.tensors) {
      const n = shape.reduce((a, b) => a * b, 1);
      const isNorm = /norm|LayerNorm/.test(name) && name.endsWith("weight");
      const scale = shape.length === 2 ? 1 / Math.sqrt(shape[1]) : 0.05;
      const values = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >>> 17;
        state ^= state << 5;
        const u = (state >>> 0) / 2 ** 32;
        values[i] = (isNorm ? 1 : 0) + (u * 2 - 1) * scale;
      }
      if (spec.dtype === "F32") await handle.write(new Uint8Array(values.buffer));
      else {
        const bits = new Uint32Array(values.buffer);
        const half = new Uint16Array(n);
        for (let i = 0; i < n; i++) half[i] = bits[i] >>> 16;
        await handle.write(new Uint8Array(half.buffer));
      }
    }
  } finally {
    await handle.close();
  }
  return 8 + json.length + offset;
}

/** The fixture's tokenizer.json with its vocabulary widened to `vocab` entries (the extra ones unused by real text). */
async function writeTokenizer(dir: string, spec: ModelSpec): Promise<void> {
  const tok = JSON.parse(await readFile(path.join(FIXTURES, spec.tokenizerFrom, "tokenizer.json"), "utf8")) as {
    model: { vocab: Record<string, number> };
  };
  const used = new Set(Object.values(tok.model.vocab));
  let next = 0;
  for (let k = Object.keys(tok.model.vocab).length; k < spec.vocab; k++) {
    while (used.has(next)) next++;
    tok.model.vocab[`<extra_${k}>`] = next;
    used.add(next);
  }
  await writeFile(path.join(dir, "tokenizer.json"), JSON.stringify(tok));
  const cfg = path.join(FIXTURES, spec.tokenizerFrom, "tokenizer_config.json");
  await copyFile(cfg, path.join(dir, "tokenizer_config.json")).catch(() => undefined);
}

// ---- Child phases (each in its own process, so its RSS is its own) ------------------------------

interface MemoryLine {
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
  peakMiB: number;
}

async function memory(): Promise<MemoryLine> {
  const status = await readFile("/proc/self/status", "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024;
  return { rssMiB: kb("VmRSS"), anonMiB: kb("RssAnon"), fileMiB: kb("RssFile"), peakMiB: kb("VmHWM") };
}

const BATCHES = pick([1, 8, 32], [1, 8]);
const LENGTHS = pick([16, 64, 128], [16, 64]);
/** Timed runs per cell (after one warm-up); more for the cheap cells, one for the heaviest. */
function runsFor(tokens: number): number {
  return QUICK ? 1 : tokens <= 512 ? 3 : tokens <= 2048 ? 2 : 1;
}

interface RawRow {
  batch: number;
  length: number;
  ms: number;
  tokensPerSec: number;
}

async function childBuild(modelsDir: string, src: string): Promise<unknown> {
  const t0 = performance.now();
  await ensureHfBackboneBuilt(modelsDir, src);
  return { seconds: (performance.now() - t0) / 1000, memory: await memory() };
}

async function childLoadAndRun(modelsDir: string, src: string): Promise<unknown> {
  const before = await memory();
  const t0 = performance.now();
  const assets = await loadBackboneAssets(modelsDir, undefined, src);
  const tAssets = performance.now();
  const afterAssets = await memory();
  const runner = await BackboneRunner.open(assets.dir, { threads: THREADS });
  const loadS = (performance.now() - t0) / 1000;
  const afterLoad = await memory();
  const pool = readSst2Sentences("dev").flatMap((s) => assets.tokenizer.ids(s));
  const rows: RawRow[] = [];
  for (const batch of BATCHES)
    for (const length of LENGTHS) {
      const seqs = Array.from({ length: batch }, (_, b) =>
        Array.from({ length }, (_, i) => pool[(b * 997 + i) % pool.length]),
      );
      const input = () => tokenBatch(assets.embeddings, assets.dims.embedDim, seqs, ["pooled"]);
      await runner.run(input());
      const times: number[] = [];
      for (let r = 0; r < runsFor(batch * length); r++) {
        const b = input();
        const t = performance.now();
        await runner.run(b);
        times.push(performance.now() - t);
      }
      const ms = median(times);
      rows.push({ batch, length, ms, tokensPerSec: (batch * length) / (ms / 1000) });
      console.error(`  ${batch}×${length}: ${ms.toFixed(0)} ms`);
    }
  const afterRuns = await memory();
  await runner.release();
  return {
    assetsS: (tAssets - t0) / 1000,
    loadS,
    embeddingTableMiB: assets.embeddings.byteLength / 2 ** 20,
    memory: { before, afterAssets, afterLoad, afterRuns },
    rows,
  };
}

/**
 * Session settings whose memory cost is measured (each in a fresh process): the runner serves
 * external-data builds with prepacking off (see createSession in src/backbone/backbone.ts).
 */
const SESSION_VARIANTS: Record<string, { graphs: string[]; options: ort.InferenceSession.SessionOptions }> = {
  "plain graph only": { graphs: [BUILD_FILES.model], options: {} },
  "plain + prefix, prepacking on": { graphs: [BUILD_FILES.model, BUILD_FILES.prefixModel], options: {} },
  "plain + prefix, prepacking off (as served)": {
    graphs: [BUILD_FILES.model, BUILD_FILES.prefixModel],
    options: { extra: { session: { disable_prepacking: "1" } } },
  },
};

/** RSS of the graphs' sessions alone under one variant (after opening, after running), and the plain graph's ms at 1×16 and 8×64. */
async function childSessions(modelsDir: string, src: string, variant: string): Promise<unknown> {
  const { dir } = await ensureHfBackboneBuilt(modelsDir, src);
  const v = SESSION_VARIANTS[variant];
  const before = await memory();
  const sessions = [];
  for (const g of v.graphs)
    sessions.push(
      await ort.InferenceSession.create(path.join(dir, g), {
        intraOpNumThreads: THREADS,
        interOpNumThreads: 1,
        graphOptimizationLevel: "all",
        ...v.options,
      }),
    );
  const after = await memory();
  const hidden = (JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as { dims: { embedDim: number } })
    .dims.embedDim;
  const timings: Record<string, number> = {};
  for (const [B, T] of [
    [1, 16],
    [8, 64],
  ]) {
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor("float32", new Float32Array(B * T * hidden).fill(0.01), [B, T, hidden]),
      attention_mask: new ort.Tensor("int64", new BigInt64Array(B * T).fill(1n), [B, T]),
    };
    if (sessions[0].inputNames.includes("token_type_ids"))
      feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(B * T), [B, T]);
    await sessions[0].run(feeds, ["pooled"]);
    const times: number[] = [];
    for (let r = 0; r < runsFor(B * T); r++) {
      const t = performance.now();
      await sessions[0].run(feeds, ["pooled"]);
      times.push(performance.now() - t);
    }
    timings[`${B}x${T}`] = median(times);
  }
  return { variant, before, after, sessionsMiB: after.rssMiB - before.rssMiB, timings, afterRun: await memory() };
}

async function runChild(
  phase: string,
  modelsDir: string,
  src: string,
  ...rest: string[]
): Promise<Record<string, unknown>> {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, ["--import", "tsx", script, "--child", phase, modelsDir, src, ...rest], {
    cwd: REPO_ROOT,
    stdio: ["ignore", "pipe", "inherit"],
  });
  onCleanup(() => void child.kill("SIGKILL"));
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  if (code !== 0) throw new Error(`${phase} child exited with ${code}: ${out.slice(-2000)}`);
  return JSON.parse(out.trim().split("\n").pop()!) as Record<string, unknown>;
}

// ---- Server at saturation ---------------------------------------------------------------------

async function serverAtSaturation(modelsDir: string, src: string) {
  const t0 = performance.now();
  const server = await startServer({
    label: "models",
    // A deadline long enough for a 0.5B model's full batch on two (shared) cores: measured, not refused.
    env: { SKT_MODEL: src, SKT_MODELS_DIR: modelsDir, SKT_QUEUE_SIZE: "1024", SKT_REQUEST_TIMEOUT_MS: "300000" },
    readyTimeoutMs: 600_000,
  });
  const readyS = (performance.now() - t0) / 1000;
  const rssIdle = await server.rssBytes();
  const sentences = readSst2Sentences("dev");
  const concurrency = 16;
  const client = new HttpClient(server.base, concurrency);
  onCleanup(() => client.close());
  const result = await closedLoop(client, {
    concurrency,
    warmupMs: pick(3000, 1000),
    durationMs: pick(20_000, 8000),
    next: (i) => {
      const texts = [sentences[i % sentences.length]];
      return { path: "/embed", body: JSON.stringify({ texts }), weight: 1 };
    },
  });
  const rssLoaded = await server.rssBytes();
  await server.stop(); // the client is closed by the clean-up registered above
  return {
    readyS,
    rssIdleMiB: rssIdle / 2 ** 20,
    rssAfterLoadMiB: rssLoaded / 2 ** 20,
    concurrency,
    rps: result.rps,
    p50: result.p50,
    p95: result.p95,
    failed: result.failed,
    failures: result.failures,
  };
}

// ---- Main -------------------------------------------------------------------------------------

if (process.argv[2] === "--child") {
  const [phase, modelsDir, src, variant] = process.argv.slice(3);
  const result =
    phase === "build"
      ? await childBuild(modelsDir, src)
      : phase === "sessions"
        ? await childSessions(modelsDir, src, variant)
        : await childLoadAndRun(modelsDir, src);
  console.log(JSON.stringify(result));
  process.exit(0);
}

main(async () => {
  const picked = process.env.BENCH_MODELS?.split(",").map((s) => s.trim());
  const specs = picked ? SPECS.filter((s) => picked.includes(s.name)) : SPECS;
  if (!specs.length) throw new Error(`BENCH_MODELS: pick from ${SPECS.map((s) => s.name).join(", ")}`);
  const results: Record<string, unknown>[] = [];
  for (const spec of specs) {
    const root = await makeTempDir(`models-${spec.name}`);
    const src = path.join(root, spec.name);
    const modelsDir = path.join(root, "models");
    await mkdir(src);
    console.error(`${spec.name}: generating a random checkpoint in ${src}`);
    const fileBytes = await writeRandomSafetensors(path.join(src, "model.safetensors"), spec, 17);
    await writeFile(path.join(src, "config.json"), JSON.stringify(spec.config, null, 2));
    await writeTokenizer(src, spec);
    const params = spec.tensors.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
    console.error(`${spec.name}: building`);
    const build = await runChild("build", modelsDir, src);
    console.error(`  ${JSON.stringify(build)}`);
    const dir = (await ensureHfBackboneBuilt(modelsDir, src)).dir;
    const sizes = Object.fromEntries(
      await Promise.all(
        [BUILD_FILES.model, BUILD_FILES.prefixModel, BUILD_FILES.weightsData, BUILD_FILES.embeddings].map(
          async (f) => [f, (await stat(path.join(dir, f))).size / 2 ** 20] as const,
        ),
      ),
    );
    const sessions = [];
    for (const variant of Object.keys(SESSION_VARIANTS)) {
      console.error(`${spec.name}: sessions, ${variant}`);
      sessions.push(await runChild("sessions", modelsDir, src, variant));
      console.error(`  ${JSON.stringify(sessions[sessions.length - 1])}`);
    }
    console.error(`${spec.name}: loading and raw runs`);
    const raw = await runChild("raw", modelsDir, src);
    console.error(`${spec.name}: server at saturation`);
    const server = await serverAtSaturation(modelsDir, src);
    results.push({
      model: spec.name,
      dtype: spec.dtype,
      params,
      fileMiB: fileBytes / 2 ** 20,
      sizes,
      build,
      sessions,
      raw,
      server,
    });
    await rm(root, { recursive: true, force: true });
  }

  const mib = (x: unknown) => fmt(x as number, 0);
  type Mem = { rssMiB: number; anonMiB: number; fileMiB: number; peakMiB: number };
  const tables = [
    {
      caption: "Build and load (MiB; RSS = anonymous + file-backed pages)",
      markdown: markdownTable(
        [
          "model",
          "parameters",
          "checkpoint",
          "model.onnx.data",
          "embeddings.f32",
          "build s",
          "build peak RSS",
          "load s",
          "RSS after load (anon + file)",
          "RSS after the grid",
          "server ready s",
          "server RSS idle",
        ],
        results.map((r) => {
          const build = r.build as { seconds: number; memory: Mem };
          const raw = r.raw as { loadS: number; memory: Record<string, Mem> };
          const sizes = r.sizes as Record<string, number>;
          const server = r.server as { readyS: number; rssIdleMiB: number };
          const load = raw.memory.afterLoad;
          return [
            r.model as string,
            `${((r.params as number) / 1e6).toFixed(0)}M`,
            `${mib(r.fileMiB)} (${r.dtype as string})`,
            mib(sizes[BUILD_FILES.weightsData]),
            mib(sizes[BUILD_FILES.embeddings]),
            fmt(build.seconds, 1),
            mib(build.memory.peakMiB),
            fmt(raw.loadS, 1),
            `${mib(load.rssMiB)} (${mib(load.anonMiB)} + ${mib(load.fileMiB)})`,
            mib(raw.memory.afterRuns.rssMiB),
            fmt(server.readyS, 1),
            mib(server.rssIdleMiB),
          ];
        }),
      ),
    },
    {
      caption:
        "onnxruntime sessions alone, in a fresh process each (MiB: RSS the sessions add when opened; anonymous and file-backed RSS after running; the plain graph's ms per run)",
      markdown: markdownTable(
        ["model", "sessions", "RSS added at open", "anon after runs", "file-backed after runs", "1×16 ms", "8×64 ms"],
        results.flatMap((r) =>
          (
            r.sessions as { variant: string; sessionsMiB: number; afterRun: Mem; timings: Record<string, number> }[]
          ).map((s) => [
            r.model as string,
            s.variant,
            mib(s.sessionsMiB),
            mib(s.afterRun.anonMiB),
            mib(s.afterRun.fileMiB),
            fmt(s.timings["1x16"]),
            fmt(s.timings["8x64"]),
          ]),
        ),
      ),
    },
    {
      caption: `Raw graph (BackboneRunner, ${THREADS} intra-op threads): tokens/s (ms per run)`,
      markdown: markdownTable(
        ["model", "batch", ...LENGTHS.map((l) => `${l} tokens`)],
        results.flatMap((r) =>
          BATCHES.map((b) => [
            r.model as string,
            b,
            ...LENGTHS.map((l) => {
              const row = (r.raw as { rows: RawRow[] }).rows.find((x) => x.batch === b && x.length === l)!;
              return `${fmt(row.tokensPerSec)} (${fmt(row.ms)})`;
            }),
          ]),
        ),
      ),
    },
    {
      caption: "Server /embed at saturation (one SST-2 sentence per request, 16 closed-loop clients)",
      markdown: markdownTable(
        ["model", "requests/s", "p50 ms", "p95 ms", "failed", "server RSS after"],
        results.map((r) => {
          const s = r.server as {
            rps: number;
            p50: number;
            p95: number;
            failed: number;
            failures: Record<string, number>;
            rssAfterLoadMiB: number;
          };
          const why = Object.entries(s.failures)
            .map(([k, v]) => `${v}× ${k}`)
            .join(", ");
          return [
            r.model as string,
            fmt(s.rps, 1),
            fmt(s.p50),
            fmt(s.p95),
            s.failed ? `${s.failed} (${why})` : 0,
            mib(s.rssAfterLoadMiB),
          ];
        }),
      ),
    },
  ];
  await writeReport({
    name: "models",
    title: "Your own model at real sizes (random weights, real shapes)",
    notes: [settingsLine({ models: specs.map((s) => s.name).join(", ") })],
    tables,
    data: results,
  });
});
