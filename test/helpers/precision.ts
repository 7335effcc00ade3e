/** The shipped sst2 adapter's predictions on the first SST-2 dev sentences through an engine at a given precision. */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { Precision } from "../../src/backbone/device.js";
import { Engine } from "../../src/engine/engine.js";
import type { Prediction } from "../../src/engine/service.js";
import { REPO_ROOT } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";
import { testEngineOptions } from "./engine-options.js";

export async function sst2PredictionsAt(precision: Precision, count = 16): Promise<Prediction[]> {
  const bytes = new Uint8Array(readFileSync(path.join(REPO_ROOT, "adapters/sst2/v000002.safetensors")));
  const texts = readSst2("dev")
    .slice(0, count)
    .map((e) => e.sentence);
  const dir = await mkdtemp(path.join(os.tmpdir(), `skt-engine-${precision}-`));
  const engine = await Engine.create(testEngineOptions(dir, { precision }));
  try {
    await engine.upload("sst2", bytes);
    return (await engine.classify({ task: "sst2", texts })).predictions;
  } finally {
    await engine.close();
    await rm(dir, { recursive: true, force: true });
  }
}
