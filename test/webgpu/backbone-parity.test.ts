/**
 * The backbone on onnxruntime's WebGPU provider (on whatever Vulkan driver is found; SwiftShader in
 * CI) against the CPU provider: the same token batches, plain and with a key/value prefix, agree to
 * PARITY_RELATIVE_TO_SCALE of each output's scale (justified in test/helpers/webgpu.ts). The WebGPU
 * runner uses its default input stage, token ids (the lookup and soft prompts inside the graph);
 * the CPU runner its default, embeddings; so this also pins the served WebGPU form against the CPU's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneBatch,
  type BackboneOutputName,
} from "../../src/backbone/backbone.js";
import type { GraphInput } from "../../src/backbone/token-input.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { PARITY_RELATIVE_TO_SCALE, requireWebGpuDriver, skipWebGpu, webgpuSuite } from "../helpers/webgpu.js";

const SENTENCES = [
  "the film is a charming, funny and moving story",
  "a tedious mess",
  "it is what it is",
  "an utterly forgettable sequel with one good scene and a great many bad ones , sadly",
];
const OUTPUTS: BackboneOutputName[] = ["last_hidden_state", "pooled", "sentence_embedding"];

let assets: BackboneAssets;
let cpu: BackboneRunner;
let gpu: BackboneRunner;

function maxAbs(a: Float32Array): number {
  return a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

/** Runs `make()` on both runners, each in its own input form (fresh buffers each: runs may keep them). */
async function compare(make: (input: GraphInput) => BackboneBatch): Promise<void> {
  const [c, g] = [await cpu.run(make(cpu.input)), await gpu.run(make(gpu.input))];
  for (const name of make("embeds").outputs) {
    const scale = maxAbs(c[name]!);
    const diff = maxAbsDiff(c[name]!, g[name]!);
    expect(scale, name).toBeGreaterThan(0);
    expect(diff / scale, `${name}: max|Δ| ${diff.toExponential(2)} at scale ${scale.toFixed(3)}`).toBeLessThan(
      PARITY_RELATIVE_TO_SCALE,
    );
  }
}

// SwiftShader compiles its shaders on the first run of each shape (~30 s on a loaded machine).
describe.skipIf(skipWebGpu)(webgpuSuite("backbone on WebGPU vs CPU"), { timeout: 300_000 }, () => {
  beforeAll(async () => {
    requireWebGpuDriver();
    assets = await loadBackboneAssets(MODELS_DIR);
    // The padded graphs on both devices (SKT_PACKED=auto would pack on the CPU only, and the packed
    // graphs leave last_hidden_state 0 at padding): this compares devices, not layouts.
    cpu = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "cpu", packed: "off" });
    gpu = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "webgpu" });
  });
  afterAll(async () => {
    await cpu?.release();
    await gpu?.release();
  });

  it("runs on the WebGPU provider and names the adapter", () => {
    expect(gpu.deviceInfo).toMatchObject({ requested: "webgpu", device: "webgpu", reason: "SKT_DEVICE=webgpu" });
    expect([gpu.input, cpu.input], "WebGPU takes token ids, the CPU embeddings").toEqual(["ids", "embeds"]);
    expect(gpu.deviceInfo.adapter, "the optional webgpu package reads the adapter's name").toEqual(expect.any(String));
  });

  it("SKT_DEVICE=auto picks WebGPU when onnxruntime finds an adapter", async () => {
    const auto = await BackboneRunner.create(MODELS_DIR, { threads: 1, device: "auto" });
    try {
      expect(auto.deviceInfo).toMatchObject({ requested: "auto", device: "webgpu", adapter: gpu.deviceInfo.adapter });
    } finally {
      await auto.release();
    }
  });

  it("agrees on a padded batch of sentences of different lengths", async () => {
    const ids = SENTENCES.map((s) => assets.tokenizer.encode(s, 126).ids);
    await compare((input) => tokenBatch(assets.embeddings, assets.dims.embedDim, ids, OUTPUTS, input));
  });

  it("agrees with a key/value prefix (the prefix variant's graph)", async () => {
    const ids = SENTENCES.slice(0, 2).map((s) => assets.tokenizer.encode(s, 120).ids);
    const P = 5;
    const make = (input: GraphInput): BackboneBatch => {
      const rand = seededRandom(7);
      const b = tokenBatch(assets.embeddings, assets.dims.embedDim, ids, ["pooled", "last_hidden_state"], input);
      const mask = new BigInt64Array(b.batch * P).fill(1n);
      mask[P - 1] = 0n; // row 0 uses only 4 of the 5 prefix positions
      const kv = (l: { heads: number; headDim: number }) =>
        Float32Array.from({ length: b.batch * l.heads * P * l.headDim }, () => rand() * 2 - 1);
      return {
        ...b,
        prefix: { length: P, keys: assets.dims.layers.map(kv), values: assets.dims.layers.map(kv), mask },
      };
    };
    await compare(make);
  });
});
