/**
 * The padding-free graph (position-wise parts on packed real tokens, attention padded) against the
 * padded one, plain and with a prefix, on mixed-length batches of SST-2 dev sentences; and the
 * packing indices against their definition.
 */
import ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, tokenBatch, type BackboneAssets } from "../../src/backbone/backbone.js";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { buildUseLiteNetwork } from "../../src/backbone/use-lite/network.js";
import { packingIndices } from "../../src/backbone/packing.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

describe("packingIndices", () => {
  it("lists the real positions in order and maps each position to 1 + its packed row (0: padding)", () => {
    const mask = BigInt64Array.from([1n, 1n, 0n, 0n, 1n, 0n, 0n, 0n, 1n, 1n, 1n, 0n]);
    const { packedIndex: packed, paddedIndex: padded } = packingIndices(mask);
    expect([...packed]).toEqual([0n, 1n, 4n, 8n, 9n, 10n]);
    expect([...padded]).toEqual([1n, 2n, 0n, 0n, 3n, 0n, 0n, 0n, 4n, 5n, 6n, 0n]);
  });

  it("handles a batch without padding and an all-padding one", () => {
    expect([...packingIndices(BigInt64Array.from([1n, 1n])).paddedIndex]).toEqual([1n, 2n]);
    const none = packingIndices(new BigInt64Array(3));
    expect(none.packedIndex.length).toBe(0);
    expect([...none.paddedIndex]).toEqual([0n, 0n, 0n]);
  });
});

describe("packed graph vs padded graph", () => {
  let assets: BackboneAssets;
  const sessions: Record<string, ort.InferenceSession> = {};
  beforeAll(async () => {
    assets = await loadBackboneAssets(MODELS_DIR);
    const w = mapUseLiteWeights((await readUseLitePackage()).weights);
    const open = (opts: { prefix?: boolean; packed?: boolean }) =>
      ort.InferenceSession.create(toOnnxBytes(buildUseLiteNetwork(w, opts).graph), { intraOpNumThreads: 2 });
    [sessions.padded, sessions.packed, sessions.paddedPrefix, sessions.packedPrefix] = await Promise.all([
      open({}),
      open({ packed: true }),
      open({ prefix: true }),
      open({ prefix: true, packed: true }),
    ]);
  });

  const D = 256;
  const H = 512;
  // Mixed lengths on purpose: one short sentence among long ones pads most of its row.
  const sentences = readSst2("dev")
    .slice(0, 24)
    .map((e) => e.sentence);

  it.each([false, true])("pooled and real positions of last_hidden_state agree (prefix: %s)", async (prefix) => {
    const ids = sentences.map((s) => assets.tokenizer.encode(s, 128).ids);
    ids[3] = ids[3].slice(0, 1);
    const b = tokenBatch(assets.embeddings, D, ids, ["pooled", "last_hidden_state"]);
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor("float32", b.inputsEmbeds, [b.batch, b.seq, D]),
      attention_mask: new ort.Tensor("int64", b.attentionMask, [b.batch, b.seq]),
    };
    if (prefix) {
      const rand = seededRandom(5);
      const P = 3;
      assets.dims.layers.forEach((l, n) => {
        const size = b.batch * l.heads * P * l.headDim;
        for (const kind of ["key", "value"])
          feeds[`prefix_${kind}_${n}`] = new ort.Tensor(
            "float32",
            Float32Array.from({ length: size }, () => rand() - 0.5),
            [b.batch, l.heads, P, l.headDim],
          );
      });
      feeds.prefix_mask = new ort.Tensor("int64", new BigInt64Array(b.batch * P).fill(1n), [b.batch, P]);
    }
    const { packedIndex: packed, paddedIndex: padded } = packingIndices(b.attentionMask);
    const want = await sessions[prefix ? "paddedPrefix" : "padded"].run(feeds);
    const got = await sessions[prefix ? "packedPrefix" : "packed"].run({
      ...feeds,
      packed_index: new ort.Tensor("int64", packed, [packed.length]),
      padded_index: new ort.Tensor("int64", padded, [padded.length]),
    });
    const pooledWant = want.pooled.data as Float32Array;
    expect(maxAbsDiff(got.pooled.data as Float32Array, pooledWant)).toBeLessThan(1e-4);
    const hWant = want.last_hidden_state.data as Float32Array;
    const hGot = got.last_hidden_state.data as Float32Array;
    let worst = 0;
    let padNonZero = 0;
    for (let p = 0; p < b.batch * b.seq; p++) {
      const row = (a: Float32Array) => a.subarray(p * H, (p + 1) * H);
      if (b.attentionMask[p] === 1n) worst = Math.max(worst, maxAbsDiff(row(hGot), row(hWant)));
      else padNonZero += row(hGot).filter((v) => v !== 0).length;
    }
    expect(worst).toBeLessThan(1e-4);
    expect(padNonZero).toBe(0);
    // The batch really was padded (the comparison covers the packing, not an identity).
    expect(packed.length).toBeLessThan(0.8 * b.batch * b.seq);
  });
});
