/**
 * The nodes kept on the CPU under WebGPU (webgpu-placement.ts) are found in the built graphs by op
 * type, so a change to the network that moves or renames the timing signal still pins them. Runs
 * without a GPU; test/webgpu/backbone-parity.test.ts shows what the placement buys.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { backboneDir, BUILD_FILES } from "../../src/backbone/build.js";
import { Graph } from "../../src/backbone/graph/graph.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { cpuPinnedNodeNames } from "../../src/backbone/webgpu-placement.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

describe("cpuPinnedNodeNames", () => {
  // The token-id graphs are the ones WebGPU runs (token-input.ts); the embeds and fp16 graphs too.
  it.each([
    BUILD_FILES.idsModel,
    BUILD_FILES.idsPrefixModel,
    BUILD_FILES.model,
    BUILD_FILES.prefixModel,
    BUILD_FILES.fp16Model,
    BUILD_FILES.fp16PrefixModel,
  ])("finds the timing signal's Sin and Cos in %s", async (file) => {
    const names = await cpuPinnedNodeNames(path.join(backboneDir(MODELS_DIR), file));
    expect(names).toHaveLength(2);
    expect(names.map((n) => n.split("_")[0]).sort()).toEqual(["Cos", "Sin"]);
  });

  it("finds every Sin/Cos node and nothing else", async () => {
    const g = new Graph("float32");
    const x = g.input("x", "float32", [3]);
    g.output("y", g.add(g.sin(x), g.cos(g.sin(g.relu(x)))));
    const dir = await mkdtemp(path.join(os.tmpdir(), "skt-placement-"));
    try {
      const file = path.join(dir, "g.onnx");
      await writeFile(file, toOnnxBytes(g));
      expect(await cpuPinnedNodeNames(file)).toEqual(["Sin_0", "Sin_2", "Cos_3"]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
