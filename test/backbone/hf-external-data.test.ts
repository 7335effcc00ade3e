/**
 * ONNX external data for Hugging Face builds: the graphs written with their weights in one shared
 * `model.onnx.data` (forced for every tensor by a 1-byte threshold, the code path a >2 GiB model
 * takes) compute exactly what the same graphs with inline weights compute; the file layout follows
 * the ONNX spec (location/offset/length, page-aligned offsets, the bytes at each offset are the
 * tensor's); the plain and the prefix graph share one copy of each weight; and a build whose data
 * file is missing or changed is rebuilt.
 */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import onnxProto from "onnx-proto";
import ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackboneRunner, loadBackboneAssets } from "../../src/backbone/backbone.js";
import { BUILD_FILES } from "../../src/backbone/build.js";
import { EXTERNAL_DATA_ALIGNMENT, toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { buildHfNetwork, wordEmbeddings } from "../../src/backbone/hf/build-graph.js";
import { ensureHfBackboneBuilt, hfDims, writeHfGraphs } from "../../src/backbone/hf/build.js";
import { readFamilyWeights, readHfFolder, type FamilyWeights } from "../../src/backbone/hf/folder.js";
import { writeDecoderCheckpoint, writeEncoderCheckpoint } from "../helpers/hf-checkpoint.js";
import { seededRandom } from "../helpers/numeric.js";

const { onnx } = onnxProto;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "skt-hf-ext-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const BATCH = 2;
const SEQ = 5;
const PREFIX = 3;

/** Random feeds for a session of `weights`' graph: row 1 padded after 3 tokens, prefix row 1 after 2 slots. */
function feeds(session: ort.InferenceSession, weights: FamilyWeights): Record<string, ort.Tensor> {
  const r = seededRandom(5);
  const dims = hfDims(weights.weights.config);
  const rand = (n: number) => Float32Array.from({ length: n }, () => r() * 2 - 1);
  const mask = (width: number, real: number[]) =>
    BigInt64Array.from({ length: BATCH * width }, (_, i) => (i % width < real[Math.floor(i / width)] ? 1n : 0n));
  const out: Record<string, ort.Tensor> = {
    inputs_embeds: new ort.Tensor("float32", rand(BATCH * SEQ * dims.embedDim), [BATCH, SEQ, dims.embedDim]),
    attention_mask: new ort.Tensor("int64", mask(SEQ, [SEQ, 3]), [BATCH, SEQ]),
  };
  if (session.inputNames.includes("token_type_ids"))
    out.token_type_ids = new ort.Tensor("int64", mask(SEQ, [0, 2]), [BATCH, SEQ]);
  if (session.inputNames.includes("prefix_mask")) {
    dims.layers.forEach((l, n) => {
      const shape = [BATCH, l.heads, PREFIX, l.headDim];
      out[`prefix_key_${n}`] = new ort.Tensor("float32", rand(BATCH * l.heads * PREFIX * l.headDim), shape);
      out[`prefix_value_${n}`] = new ort.Tensor("float32", rand(BATCH * l.heads * PREFIX * l.headDim), shape);
    });
    out.prefix_mask = new ort.Tensor("int64", mask(PREFIX, [PREFIX, 2]), [BATCH, PREFIX]);
  }
  return out;
}

async function outputsOf(model: string | Uint8Array, weights: FamilyWeights): Promise<Record<string, number[]>> {
  const session = await ort.InferenceSession.create(model as string, { intraOpNumThreads: 1 });
  try {
    const result = await session.run(feeds(session, weights));
    return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Array.from(v.data as Float32Array)]));
  } finally {
    await session.release();
  }
}

const decode = async (file: string) => onnx.ModelProto.decode(await readFile(file));
const entry = (t: onnxProto.onnx.ITensorProto, key: string) => t.externalData?.find((e) => e.key === key)?.value;

const cases: [string, (dir: string) => Promise<unknown>][] = [
  ["bert (token types, erf GELU)", (dir) => writeEncoderCheckpoint(dir, { modelType: "bert", layers: 2 }, 3)],
  [
    "qwen2 (GQA 4:2, q/k/v biases, tied, BF16)",
    (dir) => writeDecoderCheckpoint(dir, { modelType: "qwen2", heads: 4, kvHeads: 2, tied: true, dtype: "BF16" }, 4),
  ],
];

describe.each(cases)("external data: %s", (name, make) => {
  let src: string;
  let out: string;
  let weights: FamilyWeights;
  beforeAll(async () => {
    src = path.join(root, `${name.split(" ")[0]}-src`);
    out = path.join(root, `${name.split(" ")[0]}-out`);
    await make(src);
    await mkdir(out);
    weights = readFamilyWeights(await readHfFolder(src));
    await writeHfGraphs(weights, "test", out, { minExternalBytes: 1 }); // every float tensor external, even the scalars
  });

  it("the plain and the prefix graph compute exactly what their inline twins compute", async () => {
    for (const [file, prefix] of [
      [BUILD_FILES.model, false],
      [BUILD_FILES.prefixModel, true],
    ] as const) {
      const inline = toOnnxBytes(buildHfNetwork(weights, { prefix }).graph, "inline");
      const external = await outputsOf(path.join(out, file), weights);
      expect(Object.keys(external).sort()).toEqual(["last_hidden_state", "pooled"]);
      expect(external).toEqual(await outputsOf(inline, weights));
    }
  });

  it("every float initializer is external, page-aligned, and its bytes in the data file are the inline tensor's", async () => {
    const data = await readFile(path.join(out, BUILD_FILES.weightsData));
    for (const [file, prefix] of [
      [BUILD_FILES.model, false],
      [BUILD_FILES.prefixModel, true],
    ] as const) {
      const inline = onnx.ModelProto.decode(toOnnxBytes(buildHfNetwork(weights, { prefix }).graph, "inline"));
      const external = await decode(path.join(out, file));
      const byName = new Map(inline.graph!.initializer!.map((t) => [t.name!, t]));
      expect(external.graph!.initializer!.length).toBe(byName.size);
      for (const t of external.graph!.initializer!) {
        if (t.dataType === 7) {
          // int64 shape constants stay inline (onnxruntime's shape inference reads them).
          expect(t.rawData).toEqual(byName.get(t.name!)!.rawData);
          expect(t.externalData ?? []).toEqual([]);
          continue;
        }
        expect(t.dataLocation).toBe(onnx.TensorProto.DataLocation.EXTERNAL);
        expect(t.rawData?.length ?? 0).toBe(0);
        expect(entry(t, "location")).toBe(BUILD_FILES.weightsData);
        const offset = Number(entry(t, "offset"));
        const length = Number(entry(t, "length"));
        expect(offset % EXTERNAL_DATA_ALIGNMENT).toBe(0);
        const want = byName.get(t.name!)!;
        expect({ dims: t.dims?.map(Number), dataType: t.dataType }).toEqual({
          dims: want.dims?.map(Number),
          dataType: want.dataType,
        });
        expect(Buffer.from(data.subarray(offset, offset + length)).equals(Buffer.from(want.rawData!))).toBe(true);
      }
    }
  });

  it("the prefix graph references the plain graph's copy of each weight: the data file holds each once", async () => {
    const refs = async (file: string) =>
      new Map(
        (await decode(path.join(out, file)))
          .graph!.initializer!.filter((t) => t.dataType !== 7)
          .map((t) => [t.name!, entry(t, "offset")]),
      );
    const plain = await refs(BUILD_FILES.model);
    const prefix = await refs(BUILD_FILES.prefixModel);
    const weightNames = [...plain.keys()].filter((n) => /_(weight|bias|scale)$|embeddings$/.test(n));
    expect(weightNames.length).toBeGreaterThan(10);
    for (const n of weightNames) expect(prefix.get(n)).toBe(plain.get(n));
    // Unique bytes only: the file holds each distinct tensor of the build's graphs (the token-id and
    // fp16 graphs included) once, far less than every graph's tensors written separately.
    const graphFiles = (await readdir(out)).filter((f) => f.endsWith(".onnx"));
    const unique = new Map<number, number>();
    let all = 0;
    for (const file of graphFiles)
      for (const t of (await decode(path.join(out, file))).graph!.initializer!) {
        const length = Number(entry(t, "length") ?? 0);
        if (!length) continue;
        all += length;
        unique.set(Number(entry(t, "offset")), length);
      }
    const uniqueBytes = [...unique.values()].reduce((a, b) => a + b, 0);
    const size = (await stat(path.join(out, BUILD_FILES.weightsData))).size;
    expect(size).toBeLessThanOrEqual(uniqueBytes + unique.size * EXTERNAL_DATA_ALIGNMENT);
    expect(uniqueBytes).toBeLessThan(0.6 * all);
  });
});

describe("the build writes external data and the runner loads it", () => {
  it("serves the inline graph's exact outputs; a missing or changed data file makes a rebuild", async () => {
    const src = path.join(root, "build-src");
    const models = path.join(root, "models");
    await writeEncoderCheckpoint(src, { modelType: "roberta", prefix: "roberta.", layers: 2 }, 9);
    const { dir, manifest } = await ensureHfBackboneBuilt(models, src);
    const dataFile = path.join(dir, BUILD_FILES.weightsData);
    const data = await readFile(dataFile);
    expect(manifest.outputs[BUILD_FILES.weightsData]).toEqual({
      bytes: data.byteLength,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    // The graph files hold structure only; the weights live once, in the data file.
    expect((await stat(path.join(dir, BUILD_FILES.model))).size).toBeLessThan(data.byteLength / 4);

    const weights = readFamilyWeights(await readHfFolder(src));
    const assets = await loadBackboneAssets(models, undefined, src);
    expect(Array.from(assets.embeddings)).toEqual(Array.from(wordEmbeddings(weights)));
    // Shared mapped weights (the default) and prepacked private copies (SKT_SHARE_WEIGHTS=false) both
    // give the inline graph's exact outputs.
    const session = await ort.InferenceSession.create(toOnnxBytes(buildHfNetwork(weights).graph, "inline"));
    const f = feeds(session, weights);
    const want = await session.run(f);
    for (const shareWeights of [undefined, false]) {
      const runner = await BackboneRunner.open(dir, { threads: 1, shareWeights });
      try {
        expect(runner.sharedWeights).toBe(shareWeights !== false);
        const got = await runner.run({
          batch: BATCH,
          seq: SEQ,
          inputsEmbeds: f.inputs_embeds.data as Float32Array,
          attentionMask: f.attention_mask.data as BigInt64Array,
          tokenTypeIds: f.token_type_ids.data as BigInt64Array,
          outputs: ["pooled", "last_hidden_state"],
        });
        expect(Array.from(got.pooled!)).toEqual(Array.from(want.pooled.data as Float32Array));
        expect(Array.from(got.last_hidden_state!)).toEqual(Array.from(want.last_hidden_state.data as Float32Array));
      } finally {
        await runner.release();
      }
    }
    await session.release();

    // Unchanged: reused as is.
    expect((await ensureHfBackboneBuilt(models, src)).manifest.builtAt).toBe(manifest.builtAt);
    // A truncated data file is noticed (its size is in the manifest) and the build is redone.
    await writeFile(dataFile, data.subarray(0, data.byteLength - 4096));
    const rebuilt = await ensureHfBackboneBuilt(models, src);
    expect(rebuilt.manifest.builtAt).not.toBe(manifest.builtAt);
    expect((await readFile(dataFile)).equals(data)).toBe(true);
    // A build from before external data (no data file in its manifest) is rebuilt once.
    const manifestFile = path.join(dir, "manifest.json");
    const old = JSON.parse(await readFile(manifestFile, "utf8")) as typeof manifest;
    delete old.outputs[BUILD_FILES.weightsData];
    await writeFile(manifestFile, JSON.stringify(old));
    const again = await ensureHfBackboneBuilt(models, src);
    expect(again.manifest.outputs[BUILD_FILES.weightsData]).toEqual(manifest.outputs[BUILD_FILES.weightsData]);
  });

  it("builds the token-id and fp16 graph pairs only once a command asks for them, then keeps them", async () => {
    const src = path.join(root, "variants-src");
    const models = path.join(root, "variants-models");
    await writeEncoderCheckpoint(src, { modelType: "bert", layers: 1 }, 4);
    const files = (m: { outputs: Record<string, unknown> }) =>
      [BUILD_FILES.idsModel, BUILD_FILES.idsPrefixModel, BUILD_FILES.fp16Model, BUILD_FILES.fp16PrefixModel].filter(
        (f) => f in m.outputs,
      );
    const plain = await ensureHfBackboneBuilt(models, src);
    expect(files(plain.manifest)).toEqual([]);
    // Without token-id graphs a runner takes embeddings whatever the device would prefer.
    const runner = await BackboneRunner.open(plain.dir, { threads: 1 });
    expect(runner.input).toBe("embeds");
    await runner.release();
    const withIds = await ensureHfBackboneBuilt(models, src, undefined, { variants: { ids: true } });
    expect(withIds.manifest.builtAt).not.toBe(plain.manifest.builtAt);
    expect(files(withIds.manifest)).toEqual([BUILD_FILES.idsModel, BUILD_FILES.idsPrefixModel]);
    // fp16 asked for later: one rebuild that keeps the token-id graphs too.
    const both = await ensureHfBackboneBuilt(models, src, undefined, { variants: { fp16: true } });
    expect(files(both.manifest)).toHaveLength(4);
    // A command asking for less reuses the build as it is.
    expect((await ensureHfBackboneBuilt(models, src)).manifest.builtAt).toBe(both.manifest.builtAt);
    expect((await ensureHfBackboneBuilt(models, src, undefined, { variants: { ids: true } })).manifest.builtAt).toBe(
      both.manifest.builtAt,
    );
  });

  it("the fingerprint hashes each weight file's bytes (streamed, not held in memory)", async () => {
    const src = path.join(root, "fp-src");
    await writeDecoderCheckpoint(src, { modelType: "llama", shards: 2 }, 2);
    const folder = await readHfFolder(src);
    for (const f of ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
      expect(folder.files[f]).toBe(
        createHash("sha256")
          .update(await readFile(path.join(src, f)))
          .digest("hex"),
      );
  });
});
