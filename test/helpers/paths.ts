import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const MODELS_DIR = path.join(REPO_ROOT, "models");
/** SST-2 lives beside the repository, in the shared folder (as in CI). */
export const SST2_DIR = path.resolve(REPO_ROOT, "../shared/data/sst2");
