/**
 * Command line: `serve` (default), `build`, `install`, `train`, `eval`. Each command lives in its own module;
 * this file only dispatches.
 */
import { ensureBackboneBuilt } from "./backbone/build.js";
import { loadConfig, redactConfig } from "./config.js";
import { isSktError } from "./errors.js";

const [command = "serve", ...argv] = process.argv.slice(2);

async function serve(): Promise<void> {
  const { createLogger } = await import("./logger.js");
  const { createMetrics } = await import("./metrics.js");
  const { Engine } = await import("./engine/engine.js");
  const { DeferredService } = await import("./engine/deferred-service.js");
  const { createApp } = await import("./server/app.js");
  const { startServer } = await import("./server/serve.js");
  const config = loadConfig({ env: process.env, argv });
  const logger = createLogger({ level: config.logLevel });
  logger.info({ config: redactConfig(config) }, "starting");
  const metrics = createMetrics();
  // Listen first (liveness answers, readiness says 503), then load the backbone and the task index (adapters are prepared at first use).
  const service = new DeferredService();
  const server = await startServer(createApp({ service, metrics, config, logger }), config, service, logger);
  const engine = await Engine.create({ ...config, metrics, log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  service.resolve(engine);
  logger.info({ port: server.port, tasks: engine.registry.taskCount }, "ready");
}

async function build(): Promise<void> {
  const modelsDir = loadConfig({ env: process.env, argv }).modelsDir;
  const manifest = await ensureBackboneBuilt(modelsDir, console.log);
  console.log(`backbone ${manifest.backbone} from ${manifest.source.package}@${manifest.source.version}, fingerprint ${manifest.fingerprint}`);
}

/**
 * `install FILE…`: add adapter files to the store, offline, through the same `installAdapter` as an
 * HTTP upload (full validation and preparation, the prompt-length check included, before CURRENT
 * moves), so a file `install` accepts is one the server can serve.
 */
async function install(): Promise<void> {
  const { readFile } = await import("node:fs/promises");
  const { peekMetadata } = await import("./adapters/format.js");
  const { Engine } = await import("./engine/engine.js");
  const { parseArgs } = await import("node:util");
  const { values, positionals: files } = parseArgs({ args: argv, allowPositionals: true, options: { "adapters-dir": { type: "string" }, "models-dir": { type: "string" } } });
  const flags = Object.entries(values).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const config = loadConfig({ env: process.env, argv: flags });
  const engine = await Engine.create({ ...config, log: (level, msg, fields) => void (level === "info" ? undefined : console.error(`${level}: ${msg}`, fields ?? "")) });
  try {
    for (const file of files) {
      const bytes = new Uint8Array(await readFile(file));
      const { task } = peekMetadata(bytes, { maxBytes: config.maxUploadBytes });
      const { version } = await engine.upload(task, bytes);
      console.log(`${file}: task ${task} v${version} is now current in ${config.adaptersDir}/`);
    }
  } finally {
    await engine.close();
  }
}

const commands: Record<string, () => Promise<void>> = {
  serve,
  build,
  install,
  train: async () => (await import("./train/cli.js")).trainCommand(argv),
  eval: async () => (await import("./train/cli.js")).evalCommand(argv),
};

const run = commands[command];
if (!run) {
  console.error(`unknown command "${command}"; use one of: ${Object.keys(commands).join(", ")}`);
  process.exit(2);
}
run().catch((e: unknown) => {
  console.error(isSktError(e) ? `error (${e.code}): ${e.message}` : e);
  process.exit(1);
});
