/**
 * The token-id graphs (input_ids + prompt_rows, the lookup inside the graph: token-input.ts)
 * against the embeds graphs on the CPU, for USE-lite and both Hugging Face families: the same batch
 * of plain, prompt-variant, prefix-variant and mixed rows, assembled in each form by the engine's
 * assembleBatch, gives the same outputs. Both forms feed the same float32 rows into the same network
 * code, so they agree to float rounding; 1e-5 absolute is the brief's bound (measured: 0).
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareFromOutput, type PreparedAdapter } from "../../src/adapters/prepared.js";
import { outputWidth, type Variant } from "../../src/adapters/spec.js";
import {
  BackboneRunner,
  loadBackboneAssets,
  tokenBatch,
  type BackboneAssets,
  type BackboneOutputName,
} from "../../src/backbone/backbone.js";
import type { BackboneDims } from "../../src/backbone/dims.js";
import { ensureHfBackboneBuilt } from "../../src/backbone/hf/build.js";
import { assembleBatch, rowLength, type BatchRow } from "../../src/engine/assemble.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { FIXTURES_DIR } from "../helpers/hf-checkpoint.js";
import { maxAbsDiff, seededRandom } from "../helpers/numeric.js";
import { makeAdapter } from "../helpers/random-adapter.js";

const TOLERANCE = 1e-5;

/** A prepared adapter whose F output z is seeded noise (what matters here is only that rows differ). */
function prepared(task: string, variant: Variant, promptLength: number, dims: BackboneDims, seed: number) {
  const file = makeAdapter({ variant, promptLength }, dims, seed);
  file.metadata.task = task;
  const rand = seededRandom(seed + 100);
  const z = Float32Array.from({ length: promptLength * outputWidth(variant, dims) }, () => rand() - 0.5);
  return prepareFromOutput(file, 1, z, dims);
}

interface Backbone {
  assets: BackboneAssets;
  embeds: BackboneRunner;
  ids: BackboneRunner;
}

async function open(dir: string, assets: BackboneAssets): Promise<Backbone> {
  const [embeds, ids] = await Promise.all([
    BackboneRunner.open(dir, { threads: 1, input: "embeds", packed: "off" }),
    BackboneRunner.open(dir, { threads: 1, input: "ids" }),
  ]);
  return { assets, embeds, ids };
}

/** Runs `rows` through both forms and compares every output (last_hidden_state at real positions). */
async function expectSameOutputs(bb: Backbone, rows: BatchRow[], outputs: BackboneOutputName[]): Promise<void> {
  const { assets } = bb;
  const viaEmbeds = assembleBatch(rows, assets.embeddings, assets.dims, "embeds").batch;
  const viaIds = assembleBatch(rows, assets.embeddings, assets.dims, "ids").batch;
  viaEmbeds.outputs = viaIds.outputs = outputs;
  const [a, b] = await Promise.all([bb.embeds.run(viaEmbeds), bb.ids.run(viaIds)]);
  for (const name of outputs) {
    let x = a[name]!;
    let y = b[name]!;
    expect(y.length, name).toBe(x.length);
    if (name === "last_hidden_state") {
      const H = x.length / (rows.length * viaEmbeds.seq);
      const real = (v: Float32Array) =>
        Float32Array.from(
          rows.flatMap((r, i) => [
            ...v.subarray(i * viaEmbeds.seq * H, (i * viaEmbeds.seq + rowLength(r.adapter, r.ids.length)) * H),
          ]),
        );
      [x, y] = [real(x), real(y)];
    }
    expect(
      x.some((v) => v !== 0),
      `${name} is not all zeros`,
    ).toBe(true);
    expect(maxAbsDiff(x, y), name).toBeLessThanOrEqual(TOLERANCE);
  }
}

function suite(name: string, setup: () => Promise<{ bb: Backbone; cleanup?: () => Promise<void> }>, texts: string[]) {
  describe(`token-id graphs vs embeds graphs: ${name}`, { timeout: 120_000 }, () => {
    let bb: Backbone;
    let cleanup: (() => Promise<void>) | undefined;
    let ids: number[][];
    let promptA: PreparedAdapter;
    let promptB: PreparedAdapter;
    let prefix: PreparedAdapter;
    const outputs = (): BackboneOutputName[] =>
      bb.assets.sentenceOutput === "sentence_embedding"
        ? ["last_hidden_state", "pooled", "sentence_embedding"]
        : ["last_hidden_state", "pooled"];

    beforeAll(async () => {
      ({ bb, cleanup } = await setup());
      ids = texts.map((t) => bb.assets.tokenizer.encode(t, 40).ids);
      const dims = bb.assets.dims;
      promptA = prepared("a", "prompt", 3, dims, 1);
      promptB = prepared("b", "prompt", 5, dims, 2);
      prefix = prepared("c", "prefix", 4, dims, 3);
    });
    afterAll(async () => {
      await bb?.embeds.release();
      await bb?.ids.release();
      await cleanup?.();
    });

    it("the runners load the form asked for", () => {
      expect([bb.embeds.input, bb.ids.input]).toEqual(["embeds", "ids"]);
    });

    it("plain rows (no adapter), padded to different lengths", async () => {
      await expectSameOutputs(
        bb,
        ids.map((i) => ({ adapter: null, ids: i })),
        outputs(),
      );
    });

    it("prompt rows of two adapters (different soft prompts and lengths) sharing a batch", async () => {
      await expectSameOutputs(
        bb,
        ids.map((i, n) => ({ adapter: n % 2 ? promptA : promptB, ids: i })),
        outputs(),
      );
    });

    it("prefix rows (the prefix graph)", async () => {
      await expectSameOutputs(
        bb,
        ids.map((i) => ({ adapter: prefix, ids: i })),
        outputs(),
      );
    });

    it("mixed rows: plain, two prompt adapters and a prefix adapter in one batch", async () => {
      await expectSameOutputs(
        bb,
        [promptA, null, prefix, promptB, promptA].map((adapter, n) => ({ adapter, ids: ids[n % ids.length] })),
        outputs(),
      );
    });

    it("tokenBatch builds either form for the plain graph", async () => {
      const [a, b] = await Promise.all([
        bb.embeds.run(tokenBatch(bb.assets.embeddings, bb.assets.dims.embedDim, ids, ["pooled"], "embeds")),
        bb.ids.run(tokenBatch(bb.assets.embeddings, bb.assets.dims.embedDim, ids, ["pooled"], "ids")),
      ]);
      expect(maxAbsDiff(a.pooled!, b.pooled!)).toBeLessThanOrEqual(TOLERANCE);
    });

    it("a runner refuses the other form's batch with a clear error", async () => {
      const { embeddings, dims } = bb.assets;
      await expect(bb.ids.run(tokenBatch(embeddings, dims.embedDim, ids, ["pooled"]))).rejects.toThrow(
        /take token ids, but the batch carries embeddings/,
      );
      await expect(bb.embeds.run(tokenBatch(embeddings, dims.embedDim, ids, ["pooled"], "ids"))).rejects.toThrow(
        /take embeddings, but the batch carries token ids/,
      );
    });
  });
}

const SENTENCES = ["a charming and funny film", "dull", "it is what it is , no more and no less", "ok then"];

suite(
  "USE-lite",
  async () => {
    const assets = await loadBackboneAssets(MODELS_DIR);
    return { bb: await open(assets.dir, assets) };
  },
  SENTENCES,
);

for (const fixture of ["bert-v", "llama-v"]) {
  suite(
    fixture,
    async () => {
      const modelsDir = await mkdtemp(path.join(os.tmpdir(), "skt-ids-"));
      const folder = path.join(FIXTURES_DIR, fixture);
      const { dir } = await ensureHfBackboneBuilt(modelsDir, folder, undefined, { variants: { ids: true } });
      const assets = await loadBackboneAssets(modelsDir, undefined, folder, { variants: { ids: true } });
      return { bb: await open(dir, assets), cleanup: () => rm(modelsDir, { recursive: true, force: true }) };
    },
    SENTENCES,
  );
}

describe("assembleBatch in the token-id form", () => {
  const dims: BackboneDims = {
    vocabSize: 10,
    embedDim: 2,
    hiddenDim: 2,
    maxPositions: 16,
    layers: [{ heads: 1, headDim: 2 }],
  };
  const table = Float32Array.from({ length: 20 }, (_, i) => i);

  it("sends each distinct soft prompt once, and ids ≥ vocab point at its stacked rows", () => {
    const a = prepared("a", "prompt", 2, dims, 1);
    const b = prepared("b", "prompt", 3, dims, 2);
    const rows: BatchRow[] = [
      { adapter: a, ids: [4, 5] },
      { adapter: b, ids: [6] },
      { adapter: a, ids: [7] },
      { adapter: null, ids: [1, 2, 3] },
    ];
    const { batch } = assembleBatch(rows, table, dims, "ids");
    expect(batch.tokenIds).toBeDefined();
    const { ids, promptRows } = batch.tokenIds!;
    expect(Array.from(promptRows)).toEqual([...a.softPrompt!, ...b.softPrompt!]);
    expect(batch.seq).toBe(4);
    // a's rows are 0–1 (ids 10, 11), b's 2–4 (ids 12, 13, 14); padding is id 0 (masked).
    expect(Array.from(ids, Number)).toEqual([10, 11, 4, 5, 12, 13, 14, 6, 10, 11, 7, 0, 1, 2, 3, 0]);
    expect(Array.from(batch.attentionMask, Number)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0]);
    // The same rows in the embeds form: the table row of every id, or the prompt row it names.
    const embeds = assembleBatch(rows, table, dims, "embeds").batch.inputsEmbeds!;
    ids.forEach((id, p) => {
      if (batch.attentionMask[p] === 0n) return;
      const n = Number(id);
      const row = n < 10 ? table.subarray(n * 2, n * 2 + 2) : promptRows.subarray((n - 10) * 2, (n - 10) * 2 + 2);
      expect(Array.from(embeds.subarray(p * 2, p * 2 + 2))).toEqual(Array.from(row));
    });
  });

  it("keeps two versions of one task apart (keyed by the prepared object, not the task)", () => {
    const v1 = prepared("same", "prompt", 2, dims, 1);
    const v2 = prepared("same", "prompt", 2, dims, 9);
    const { batch } = assembleBatch(
      [
        { adapter: v1, ids: [1] },
        { adapter: v2, ids: [1] },
      ],
      table,
      dims,
      "ids",
    );
    expect(Array.from(batch.tokenIds!.promptRows)).toEqual([...v1.softPrompt!, ...v2.softPrompt!]);
    expect(Array.from(batch.tokenIds!.ids, Number)).toEqual([10, 11, 1, 12, 13, 1]);
  });

  it("a batch without soft prompts still sends one (zero) prompt row", () => {
    const { batch } = assembleBatch([{ adapter: null, ids: [3] }], table, dims, "ids");
    expect(Array.from(batch.tokenIds!.promptRows)).toEqual([0, 0]);
  });

  it("refuses a token id outside the vocabulary instead of reading a prompt row", () => {
    expect(() => assembleBatch([{ adapter: null, ids: [10] }], table, dims, "ids")).toThrow(
      /token id 10 is outside the vocabulary \[0, 10\)/,
    );
  });
});
