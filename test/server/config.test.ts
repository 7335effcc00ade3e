import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  CONFIG_OPTIONS,
  defaultConfig,
  defaultParallelism,
  loadConfig,
  redactConfig,
  renderConfigTable,
  soloThreadsFor,
} from "../../src/config.js";
import { SktError } from "../../src/errors.js";

function configError(fn: () => unknown): SktError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(SktError);
    expect((e as SktError).code).toBe("invalid_config");
    return e as SktError;
  }
  throw new Error("expected a config error");
}

describe("loadConfig", () => {
  it("has the documented defaults", () => {
    expect(loadConfig({ env: {}, argv: [] })).toEqual({
      port: 8080,
      host: "0.0.0.0",
      adminToken: undefined,
      adminTokensFile: undefined,
      adminMaxAuthFailures: 10,
      auditLog: undefined,
      trustedKeys: undefined,
      requireSignature: false,
      adaptersDir: "adapters",
      modelsDir: "models",
      fusedOps: false,
      shareWeights: true,
      fastLane: true,
      inferenceNice: 10,
      ortSpinning: true,
      // Derived from this machine's cores (pinned below for 1–16 cores).
      threads: defaultParallelism().threads,
      workers: defaultParallelism().workers,
      soloThreads: soloThreadsFor("cpu", defaultParallelism()),
      soloMaxQueue: 1,
      warmTasks: 0,
      maxBatchSize: 32,
      maxBatchTokens: 4096,
      maxWaitMs: 2,
      maxPaddingRatio: defaultParallelism().threads === 1 ? 0.1 : 0.25,
      maxInFlightBatches: defaultParallelism().workers > 1 ? 1 : 2,
      queueSize: 1024,
      cacheBytes: 256 * 1024 * 1024,
      deviceCacheBytes: 256 * 1024 * 1024,
      maxTexts: 64,
      maxTextChars: 10_000,
      maxTasksPerCall: 8,
      qualityWindow: 1000,
      lowConfidence: 0.6,
      metricsMaxLabels: 20,
      maxUploadBytes: 16 * 1024 * 1024,
      maxEvalSetBytes: 4 * 1024 * 1024,
      maxEvalSetRows: 5000,
      requestTimeoutMs: 10_000,
      maxAdapterParams: 1_000_000,
      device: "cpu",
      precision: "fp32",
      packed: "auto",
      logLevel: "info",
      semanticCache: true,
      batchLog: undefined,
      retryAfterSeconds: 1,
      shutdownTimeoutMs: 25_000,
    });
  });

  it("derives SKT_WORKERS × SKT_THREADS from the cores: single-thread workers on every core below 4 cores, 2-thread workers and a core for the main thread from 4 on", () => {
    const shapes = [1, 2, 3, 4, 8, 16].map((cores) => defaultParallelism(cores));
    expect(shapes).toEqual([
      { workers: 1, threads: 1 },
      { workers: 2, threads: 1 },
      { workers: 3, threads: 1 },
      { workers: 1, threads: 2 },
      { workers: 3, threads: 2 },
      { workers: 7, threads: 2 },
    ]);
    for (let cores = 1; cores <= 64; cores++) {
      const { workers, threads } = defaultParallelism(cores);
      expect(workers * threads).toBeLessThanOrEqual(cores); // never more threads than cores
      if (cores >= 4) expect(workers * threads).toBeLessThan(cores); // a core stays with the main thread
    }
    // defaultConfig's overrides count as given: what follows from them is derived again.
    expect(defaultConfig({ workers: 3 }).maxInFlightBatches).toBe(1);
    expect(defaultConfig({ workers: 1 }).maxInFlightBatches).toBe(2);
    expect(defaultConfig({ workers: 3, maxInFlightBatches: 4 }).maxInFlightBatches).toBe(4);
    expect(defaultConfig({ device: "webgpu" }).workers).toBe(1);
    expect(defaultConfig({ threads: 1024 }).workers).toBe(1);
    expect(defaultConfig({ threads: 1 }).maxPaddingRatio).toBe(0.1);
    expect(defaultConfig({ threads: 2 }).maxPaddingRatio).toBe(0.25);
    expect(defaultConfig({ threads: 1, precision: "int8" }).maxPaddingRatio).toBe(0.25);
    expect(loadConfig({ env: { SKT_THREADS: "1", SKT_PRECISION: "int8" } }).maxPaddingRatio).toBe(0.25);
    expect(loadConfig({ env: { SKT_THREADS: "1", SKT_PRECISION: "fp16" } }).maxPaddingRatio).toBe(0.1);
    // A given SKT_THREADS: as many workers as fit, at least one (2 threads on 2 cores: the old 1×2).
    expect(defaultParallelism(2, 2)).toEqual({ workers: 1, threads: 2 });
    expect(defaultParallelism(2, 8)).toEqual({ workers: 1, threads: 8 });
    expect(defaultParallelism(8, 1)).toEqual({ workers: 7, threads: 1 });
  });

  it("gives several single-thread CPU workers a solo worker with their threads together, and nothing else one", () => {
    // 2 cores: 2×1 and a solo worker of 2 threads; 3 cores: 3×1 and 3; from 4 cores 2-thread workers, none.
    expect([1, 2, 3, 4, 8].map((cores) => soloThreadsFor("cpu", defaultParallelism(cores)))).toEqual([0, 2, 3, 0, 0]);
    expect(soloThreadsFor("webgpu", { workers: 2, threads: 1 })).toBe(0);
    expect(soloThreadsFor("auto", { workers: 2, threads: 1 })).toBe(0);
    expect(defaultConfig({ workers: 2, threads: 1 }).soloThreads).toBe(2);
    expect(defaultConfig({ workers: 1, threads: 2 }).soloThreads).toBe(0);
    expect(defaultConfig({ workers: 2, threads: 1, device: "webgpu" }).soloThreads).toBe(0);
    expect(defaultConfig({ workers: 2, threads: 1, soloThreads: 0 }).soloThreads).toBe(0);
    // From the environment: SKT_THREADS=1 SKT_WORKERS=4 gets 4; a given value stays.
    expect(loadConfig({ env: { SKT_THREADS: "1", SKT_WORKERS: "4" } }).soloThreads).toBe(4);
    expect(loadConfig({ env: { SKT_THREADS: "2", SKT_WORKERS: "4" } }).soloThreads).toBe(0);
    expect(loadConfig({ env: { SKT_THREADS: "2", SKT_SOLO_THREADS: "3", SKT_SOLO_MAX_QUEUE: "4" } })).toMatchObject({
      soloThreads: 3,
      soloMaxQueue: 4,
    });
    expect(loadConfig({ env: {}, argv: ["--solo-threads", "0", "--solo-max-queue", "0"] })).toMatchObject({
      soloThreads: 0,
      soloMaxQueue: 0,
    });
  });

  it("refuses a solo worker off the CPU and a negative one, naming the setting", () => {
    for (const env of [
      { SKT_SOLO_THREADS: "2", SKT_DEVICE: "webgpu" },
      { SKT_SOLO_THREADS: "2", SKT_DEVICE: "auto" },
      { SKT_SOLO_THREADS: "-1" },
      { SKT_SOLO_THREADS: "two" },
    ]) {
      const e = (() => {
        try {
          loadConfig({ env });
        } catch (err) {
          return err;
        }
      })();
      expect(e).toBeInstanceOf(SktError);
      expect(e).toMatchObject({ code: "invalid_config" });
      expect((e as SktError).message).toContain("SKT_SOLO_THREADS");
    }
  });

  it("reads the environment", () => {
    const c = loadConfig({
      env: {
        PORT: "9000",
        HOST: "127.0.0.1",
        SKT_ADMIN_TOKEN: "s3cret.token-value",
        SKT_ADAPTERS_DIR: "/data/adapters",
        SKT_THREADS: "4",
        SKT_CACHE_BYTES: "64MiB",
        SKT_MAX_UPLOAD_BYTES: "512k",
        SKT_DEVICE: "WebGPU",
        SKT_PRECISION: "fp16",
        SKT_PACKED: "off",
        SKT_LOG_LEVEL: "debug",
        SKT_SEMANTIC_CACHE: "false",
        SKT_MAX_TEXTS: " 8 ",
        SKT_MAX_IN_FLIGHT_BATCHES: "1",
        SKT_DEBUG_BATCH_LOG: "/tmp/batches.jsonl",
      },
    });
    expect(c).toMatchObject({
      port: 9000,
      host: "127.0.0.1",
      adminToken: "s3cret.token-value",
      adaptersDir: "/data/adapters",
      threads: 4,
      cacheBytes: 64 * 1024 * 1024,
      maxUploadBytes: 512 * 1024,
      device: "webgpu",
      precision: "fp16",
      packed: "off",
      logLevel: "debug",
      semanticCache: false,
      maxTexts: 8,
      maxInFlightBatches: 1,
      batchLog: "/tmp/batches.jsonl",
    });
  });

  it("treats empty environment variables as unset", () => {
    expect(loadConfig({ env: { PORT: "", SKT_ADMIN_TOKEN: "  " } })).toMatchObject({
      port: 8080,
      adminToken: undefined,
    });
  });

  it("lets flags win over the environment", () => {
    const c = loadConfig({
      env: { PORT: "9000", SKT_MAX_TEXTS: "8", SKT_SEMANTIC_CACHE: "false", SKT_DEVICE: "cuda" },
      argv: ["--port", "9100", "--max-texts=16", "--semantic-cache", "--device=auto"],
    });
    expect(c).toMatchObject({ port: 9100, maxTexts: 16, semanticCache: true, device: "auto" });
  });

  it("supports --no-<flag> and explicit values for booleans", () => {
    expect(loadConfig({ env: {}, argv: ["--no-semantic-cache"] }).semanticCache).toBe(false);
    expect(loadConfig({ env: {}, argv: ["--semantic-cache", "off"] }).semanticCache).toBe(false);
    expect(loadConfig({ env: {}, argv: ["--semantic-cache=yes"] }).semanticCache).toBe(true);
  });

  it.each([
    [{ PORT: "abc" }, /PORT = "abc": must be a whole number/],
    [{ PORT: "70000" }, /PORT = "70000": must be at most 65535/],
    [{ SKT_MAX_TEXTS: "0" }, /SKT_MAX_TEXTS = "0": must be at least 1/],
    [{ SKT_THREADS: "-1" }, /SKT_THREADS/],
    [{ SKT_MAX_WAIT_MS: "1.5" }, /SKT_MAX_WAIT_MS = "1.5": must be a whole number/],
    [{ SKT_DEVICE: "tpu" }, /SKT_DEVICE = "tpu": must be one of: cpu, webgpu, auto, cuda/],
    [{ SKT_PRECISION: "int4" }, /SKT_PRECISION = "int4": must be one of: fp32, fp16, int8/],
    [{ SKT_PACKED: "yes" }, /SKT_PACKED = "yes": must be one of: auto, on, off/],
    [{ SKT_LOG_LEVEL: "loud" }, /SKT_LOG_LEVEL/],
    [{ SKT_SEMANTIC_CACHE: "maybe" }, /SKT_SEMANTIC_CACHE = "maybe": must be true or false/],
    [{ SKT_CACHE_BYTES: "12 parsecs" }, /SKT_CACHE_BYTES .*byte count/],
    [{ SKT_ADMIN_TOKEN: "has spaces in it" }, /SKT_ADMIN_TOKEN = <redacted>: must contain only/],
  ])("rejects bad environment values %j", (env, message) => {
    expect(configError(() => loadConfig({ env })).message).toMatch(message);
  });

  it("does not echo a bad admin token", () => {
    expect(configError(() => loadConfig({ env: { SKT_ADMIN_TOKEN: "secret value!" } })).message).not.toMatch(
      /secret value/,
    );
  });

  it("reports every problem at once", () => {
    const e = configError(() => loadConfig({ env: { PORT: "x", SKT_DEVICE: "tpu" }, argv: ["--max-texts", "0"] }));
    expect(e.message).toMatch(/PORT/);
    expect(e.message).toMatch(/SKT_DEVICE/);
    expect(e.message).toMatch(/--max-texts = "0"/);
    expect((e.details as { problems: string[] }).problems).toHaveLength(3);
  });

  it.each([
    [["--bogus", "1"], /unknown flag --bogus/],
    [["--port"], /--port needs a value/],
    [["serve"], /unexpected argument "serve"/],
    [["--no-port"], /unknown flag --no-port/],
    [["--port", "abc"], /--port = "abc": must be a whole number/],
    // A forgotten value must not swallow the next flag (that once made a folder named "--models-dir").
    [["--adapters-dir", "--models-dir", "m"], /--adapters-dir needs a value, got "--models-dir"/],
    [["--models-dir=--port"], /--models-dir needs a value, got "--port"/],
    [["--debug-batch-log", "--port", "1"], /--debug-batch-log needs a value/],
  ])("rejects bad flags %j", (argv, message) => {
    expect(configError(() => loadConfig({ env: {}, argv })).message).toMatch(message);
  });

  it("defaultConfig applies overrides", () => {
    expect(defaultConfig({ maxTexts: 3 })).toMatchObject({ maxTexts: 3, port: 8080 });
  });

  it("redacts the admin token for logging", () => {
    expect(redactConfig(defaultConfig({ adminToken: "tok" })).adminToken).toBe("<redacted>");
    expect(redactConfig(defaultConfig()).adminToken).toBeUndefined();
  });

  it("SKT_STORE: unset is the filesystem store, a postgres URL is kept (and redacted in logs), anything else is refused without echoing it", () => {
    expect(defaultConfig().storeUrl).toBeUndefined();
    const url = "postgres://skt:hunter2@db:5432/skt";
    const config = loadConfig({ env: { SKT_STORE: url } });
    expect(config.storeUrl).toBe(url);
    expect(loadConfig({ env: {}, argv: ["--store", "postgresql://db/skt"] }).storeUrl).toBe("postgresql://db/skt");
    expect(JSON.stringify(redactConfig(config))).not.toContain("hunter2");
    const message = configError(() => loadConfig({ env: { SKT_STORE: "mysql://root:hunter2@db/skt" } })).message;
    expect(message).toMatch(/SKT_STORE = <redacted>: must be a postgres:\/\/ or postgresql:\/\/ URL/);
    expect(message).not.toContain("hunter2");
  });
});

describe("renderConfigTable", () => {
  it("has one row per setting with its env var, flag and default", () => {
    const table = renderConfigTable();
    expect(table.split("\n")[0]).toBe("| Setting | Env var | Flag | Default | Meaning |");
    for (const o of CONFIG_OPTIONS) {
      const row = table.split("\n").find((l) => l.includes(`\`${o.env}\``));
      expect(row, o.env).toBeDefined();
      expect(row).toContain(`\`${o.flag}\``);
    }
    for (const env of [
      "PORT",
      "HOST",
      "SKT_ADMIN_TOKEN",
      "SKT_ADAPTERS_DIR",
      "SKT_MODELS_DIR",
      "SKT_THREADS",
      "SKT_MAX_BATCH_SIZE",
      "SKT_MAX_BATCH_TOKENS",
      "SKT_MAX_WAIT_MS",
      "SKT_QUEUE_SIZE",
      "SKT_CACHE_BYTES",
      "SKT_MAX_TEXTS",
      "SKT_MAX_TEXT_CHARS",
      "SKT_MAX_UPLOAD_BYTES",
      "SKT_REQUEST_TIMEOUT_MS",
      "SKT_MAX_ADAPTER_PARAMS",
      "SKT_DEVICE",
      "SKT_LOG_LEVEL",
      "SKT_SEMANTIC_CACHE",
    ]) {
      expect(table).toContain(`\`${env}\``);
    }
    expect(table).toContain("256 MiB");
  });
});

describe("documentation", () => {
  it("the config table in the docs matches renderConfigTable()", () => {
    const START = "<!-- config-table:start -->";
    const END = "<!-- config-table:end -->";
    // The table lives in the README once merged there; docs/server.md until then.
    const file = ["README.md", "docs/server.md"].find((f) => existsSync(f) && readFileSync(f, "utf8").includes(START));
    expect(file, `a file with ${START}`).toBeDefined();
    const text = readFileSync(file!, "utf8");
    const table = text.slice(text.indexOf(START) + START.length, text.indexOf(END)).trim();
    expect(table, `${file} is out of date: regenerate the table with renderConfigTable()`).toBe(renderConfigTable());
  });
});
