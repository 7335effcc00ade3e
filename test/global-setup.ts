/** Builds the backbone once before any suite runs, so suites never race to build it. */
import { ensureBackboneBuilt } from "../src/backbone/build.js";
import { MODELS_DIR } from "../scripts/lib/paths.js";

export default async function setup(): Promise<void> {
  await ensureBackboneBuilt(MODELS_DIR, (m) => console.log(m));
}
