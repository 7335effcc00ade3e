/**
 * Serving the padding-free graphs: the layout rule (SKT_PACKED × build × device), the indices the
 * engine computes from row lengths against their definition from the mask, and BackboneRunner's
 * choice of graphs (packed where built, padded for builds without them) with equal outputs.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneBatch,
} from "../../src/backbone/backbone.js";
import { BUILD_FILES, backboneDir, staleReason, type BackboneManifest } from "../../src/backbone/build.js";
import {
  chooseLayout,
  packingFromLengths,
  packingIndices,
  paddingCost,
  PACKED_PADDING_COST,
} from "../../src/backbone/packing.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

describe("chooseLayout (SKT_PACKED)", () => {
  it("auto: packed on the CPU where the build has packed graphs, padded otherwise", () => {
    expect(chooseLayout("auto", true, "cpu")).toBe("packed");
    expect(chooseLayout("auto", true, "webgpu")).toBe("padded");
    expect(chooseLayout("auto", true, "cuda")).toBe("padded");
    expect(chooseLayout("auto", false, "cpu")).toBe("padded");
  });
  it("on: packed on any device where built; off: always padded", () => {
    expect(chooseLayout("on", true, "webgpu")).toBe("packed");
    expect(chooseLayout("on", false, "cpu")).toBe("padded");
    expect(chooseLayout("off", true, "cpu")).toBe("padded");
  });
  it("a padding position costs the batcher a full position with padded graphs, a fraction with packed ones", () => {
    expect(paddingCost("padded")).toBe(1);
    expect(paddingCost("packed")).toBe(PACKED_PADDING_COST);
    expect(PACKED_PADDING_COST).toBeGreaterThan(0);
    expect(PACKED_PADDING_COST).toBeLessThan(1);
  });
});

describe("packingFromLengths", () => {
  it("equals the indices read from the right-padded mask of the same lengths", () => {
    const rand = seededRandom(7);
    for (let trial = 0; trial < 20; trial++) {
      const rows = 1 + Math.floor(rand() * 9);
      const lengths = Array.from({ length: rows }, () => Math.floor(rand() * 12));
      const seq = Math.max(1, ...lengths);
      const mask = new BigInt64Array(rows * seq);
      lengths.forEach((l, b) => mask.fill(1n, b * seq, b * seq + l));
      const got = packingFromLengths(lengths, seq);
      const want = packingIndices(mask);
      expect([...got.packedIndex]).toEqual([...want.packedIndex]);
      expect([...got.paddedIndex]).toEqual([...want.paddedIndex]);
    }
  });
  it("a worked example", () => {
    const { packedIndex, paddedIndex } = packingFromLengths([2, 0, 3], 3);
    expect([...packedIndex]).toEqual([0n, 1n, 6n, 7n, 8n]);
    expect([...paddedIndex]).toEqual([1n, 2n, 0n, 0n, 0n, 0n, 3n, 4n, 5n]);
  });
});

describe("BackboneRunner's graphs", () => {
  let assets: BackboneAssets;
  let oldBuild: string;
  const runners: BackboneRunner[] = [];
  const open = async (dir: string, packed: "auto" | "on" | "off") => {
    const r = await BackboneRunner.open(dir, { threads: 1, packed });
    runners.push(r);
    return r;
  };

  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    // A build from before the packed graphs: the same files, its manifest without them.
    oldBuild = await mkdtemp(path.join(os.tmpdir(), "skt-old-build-"));
    const dir = backboneDir(MODELS_DIR);
    const manifest = JSON.parse(await readFile(path.join(dir, "manifest.json"), "utf8")) as BackboneManifest;
    for (const f of [BUILD_FILES.packedModel, BUILD_FILES.packedPrefixModel]) delete manifest.outputs[f];
    await writeFile(path.join(oldBuild, "manifest.json"), JSON.stringify(manifest));
    for (const f of [BUILD_FILES.model, BUILD_FILES.prefixModel])
      await copyFile(path.join(dir, f), path.join(oldBuild, f));
  });
  afterAll(async () => {
    await Promise.all(runners.map((r) => r.release()));
    await rm(oldBuild, { recursive: true, force: true });
  });

  it("a build from before the packed graphs is stale (the next start rebuilds it with them)", async () => {
    const models = await mkdtemp(path.join(os.tmpdir(), "skt-old-models-"));
    try {
      await mkdir(backboneDir(models));
      await copyFile(path.join(oldBuild, "manifest.json"), path.join(backboneDir(models), "manifest.json"));
      expect(await staleReason(models)).toBe("no packed graphs yet");
      expect(await staleReason(MODELS_DIR)).toBeNull();
    } finally {
      await rm(models, { recursive: true, force: true });
    }
  });

  it("auto serves the packed graphs of a current build and falls back to padded for an old one", async () => {
    expect((await open(backboneDir(MODELS_DIR), "auto")).layout).toBe("packed");
    expect((await open(backboneDir(MODELS_DIR), "off")).layout).toBe("padded");
    expect((await open(oldBuild, "on")).layout).toBe("padded");
  });

  it("packed and padded runners agree on a padded batch, with and without indices from the caller", async () => {
    const packed = await open(backboneDir(MODELS_DIR), "on");
    const padded = await open(oldBuild, "auto");
    const ids = ["a", "a much longer sentence than the first one , with commas", "medium length text here"].map((t) =>
      assets.tokenizer.ids(t),
    );
    const batch = (): BackboneBatch =>
      tokenBatch(assets.embeddings, assets.dims.embedDim, ids, ["pooled", "sentence_embedding"]);
    const want = await padded.run(batch());
    const withoutIndices = await packed.run(batch());
    const b = batch();
    b.packing = packingFromLengths(
      ids.map((x) => x.length),
      b.seq,
    );
    const withIndices = await packed.run(b);
    // pooled is not normalised: compare it relative to its largest value.
    const scale = Math.max(...want.pooled!.map(Math.abs));
    for (const got of [withoutIndices, withIndices]) {
      expect(maxAbsDiff(got.pooled!, want.pooled!) / scale).toBeLessThan(1e-5);
      expect(maxAbsDiff(got.sentence_embedding!, want.sentence_embedding!)).toBeLessThan(1e-5);
    }
    // The batch was padded, so the two graphs really computed differently laid-out work.
    expect(b.packing.packedIndex.length).toBeLessThan(0.7 * b.batch * b.seq);
  });
});
