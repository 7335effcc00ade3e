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
  // Listen first (liveness answers, readiness says 503), then load the backbone and adapters.
  const service = new DeferredService();
  const server = await startServer(createApp({ service, metrics, config, logger }), config, service, logger);
  const engine = await Engine.create({ ...config, metrics, log: (level, msg, fields) => logger[level](fields ?? {}, msg) });
  service.resolve(engine);
  logger.info({ port: server.port, tasks: engine.registry.tasks() }, "ready");
}

async function build(): Promise<void> {
  const { modelsDir, model } = loadConfig({ env: process.env, argv });
  if (model) {
    const { ensureHfBackboneBuilt } = await import("./backbone/hf/build.js");
    const { dir, manifest } = await ensureHfBackboneBuilt(modelsDir, model, console.log);
    console.log(`backbone ${manifest.backbone} (${manifest.source.modelType}) from ${manifest.source.folder} in ${dir}, fingerprint ${manifest.fingerprint}`);
    return;
  }
  const manifest = await ensureBackboneBuilt(modelsDir, console.log);
  console.log(`backbone ${manifest.backbone} from ${manifest.source.package}@${manifest.source.version}, fingerprint ${manifest.fingerprint}`);
}

/** `install FILE…`: validate adapter files against the backbone and add them to the store, offline. */
async function install(): Promise<void> {
  const { readFile } = await import("node:fs/promises");
  const { loadBackboneAssets } = await import("./backbone/backbone.js");
  const { decodeAdapter } = await import("./adapters/format.js");
  const { AdapterStore } = await import("./adapters/store.js");
  const { parseArgs } = await import("node:util");
  const { values, positionals: files } = parseArgs({ args: argv, allowPositionals: true, options: { "adapters-dir": { type: "string" }, "models-dir": { type: "string" }, model: { type: "string" } } });
  const flags = Object.entries(values).flatMap(([k, v]) => [`--${k}`, String(v)]);
  const config = loadConfig({ env: process.env, argv: flags });
  const assets = await loadBackboneAssets(config.modelsDir, console.log, config.model);
  const store = new AdapterStore(config.adaptersDir);
  for (const file of files) {
    const bytes = new Uint8Array(await readFile(file));
    const { metadata } = decodeAdapter(bytes, { dims: assets.dims, fingerprint: assets.fingerprint, maxParameters: config.maxAdapterParams, maxBytes: config.maxUploadBytes });
    const version = await store.write(metadata.task, bytes);
    console.log(`${file}: task ${metadata.task} v${version} is now current in ${config.adaptersDir}/`);
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
