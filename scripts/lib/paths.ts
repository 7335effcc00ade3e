/**
 * Where the repository and its data are, for the benchmarks, scripts and tests (one place, no
 * absolute paths): everything is found from this file's location, so any working directory works.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
/** The built backbone: SKT_MODELS_DIR (as the server reads it, relative to the repository) or `models/`. */
export const MODELS_DIR = path.resolve(REPO_ROOT, process.env.SKT_MODELS_DIR ?? "models");
/** SST-2 (`train.tsv`, `dev.tsv`): SST2_DIR, or the shared folder beside the repository (as in CI). */
export const SST2_DIR = path.resolve(REPO_ROOT, process.env.SST2_DIR ?? "../shared/data/sst2");
