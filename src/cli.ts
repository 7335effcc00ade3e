/**
 * Command line: `serve` (default), `build`, `train`, `eval`. Each command lives in its own module;
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
  // Listen first (liveness answers, readiness says 503), then load the backbone and adapters.
  const service = new DeferredService();
  const server = await startServer(createApp({ service, metrics, config, logger }), config, service, logger);
  const engine = await Engine.create({ ...config, metrics, log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  service.resolve(engine);
  logger.info({ port: server.port, tasks: engine.registry.tasks() }, "ready");
}

async function build(): Promise<void> {
  const modelsDir = loadConfig({ env: process.env, argv }).modelsDir;
  const manifest = await ensureBackboneBuilt(modelsDir, console.log);
  console.log(`backbone ${manifest.backbone} from ${manifest.source.package}@${manifest.source.version}, fingerprint ${manifest.fingerprint}`);
}

const commands: Record<string, () => Promise<void>> = {
  serve,
  build,
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
