/**
 * SK-Tuning adapters on Hugging Face backbones, through the real engine: prompt and prefix variants
 * (with and without pooling, prompts of different lengths) and /embed rows share batches, and every
 * answer equals the naive float64 oracle with Hugging Face's past_key_values semantics (a prefix of
 * L slots is a cache: the text's positions start at L and its keys are used as given; soft-prompt
 * rows take the first positions). The semantic pass is checked against the oracle too, and an
 * adapter made for another backbone is refused naming both fingerprints.
 */
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets } from "../../src/backbone/backbone.js";
import { applyHead, applyTransform, splitPrefix, type PreparedAdapter } from "../../src/adapters/prepared.js";
import { syntheticAdapter, syntheticAdapterBytes, type SyntheticOptions } from "../../src/adapters/synthetic.js";
import { encodeAdapter } from "../../src/adapters/format.js";
import { AdapterStore } from "../../src/adapters/store.js";
import { defaultConfig } from "../../src/config.js";
import { Engine } from "../../src/engine/engine.js";
import { isSktError } from "../../src/errors.js";
import { writeDecoderCheckpoint, writeEncoderCheckpoint } from "../helpers/hf-checkpoint.js";
import {
  naiveDecoderLastHidden,
  naiveEmbedding,
  naiveEncoderLastHidden,
  type NaiveDecoder,
  type NaiveEncoder,
  type NaiveExtras,
} from "../helpers/naive-hf.js";
import { maxAbsDiff } from "../helpers/numeric.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), "skt-hf-adapters-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Rows [n][width] of a row-major array. */
function rows(data: Float32Array, width: number): number[][] {
  return Array.from({ length: data.length / width }, (_, r) => Array.from(data.subarray(r * width, (r + 1) * width)));
}

/** The prepared prefix ([heads, L, d] per layer) as the oracle's rows [L][heads·d]. */
function prefixRows(p: PreparedAdapter, kvHeads: number, headDim: number): NaiveExtras["prefix"] {
  const convert = (t: Float32Array) =>
    Array.from({ length: p.prefix!.length }, (_, l) =>
      Array.from(
        { length: kvHeads * headDim },
        (_, j) => t[(Math.floor(j / headDim) * p.prefix!.length + l) * headDim + (j % headDim)],
      ),
    );
  return { keys: p.prefix!.keys.map(convert), values: p.prefix!.values.map(convert) };
}

const TASKS: SyntheticOptions[] = [
  {
    task: "prompt-pooled",
    variant: "prompt",
    pooling: true,
    promptText: "is this review positive or negative?",
    seed: 1,
    scale: 1,
  },
  { task: "prompt-plain", variant: "prompt", pooling: false, promptText: "sentiment:", seed: 2, scale: 1 },
  {
    task: "prefix-pooled",
    variant: "prefix",
    pooling: true,
    promptText: "classify the text as positive or negative, text:",
    seed: 3,
    scale: 1,
  },
  { task: "prefix-plain", variant: "prefix", pooling: false, promptText: "topic?", seed: 4, scale: 1 },
];

const TEXTS = ["a gripping, funny film", "dull and far too long .", "ok"];

const roberta = (dir: string) =>
  writeEncoderCheckpoint(dir, { modelType: "roberta", padTokenId: 1, hidden: 16, heads: 2 }, 5);
const llama = (dir: string) =>
  writeDecoderCheckpoint(
    dir,
    { modelType: "llama", heads: 4, kvHeads: 2, ropeScaling: { rope_type: "linear", factor: 2 } },
    6,
  );

// The last two: the same checkpoints served from the graphs with onnxruntime's fused operators.
describe.each([
  ["roberta (position offset 2)", "enc", roberta, false],
  ["llama (GQA 4:2, rope linear)", "dec", llama, false],
  ["roberta, SKT_FUSED_OPS=true", "enc-fused", roberta, true],
  ["llama, SKT_FUSED_OPS=true", "dec-fused", llama, true],
] as const)("adapters on %s", (_name, kind, make, fusedOps) => {
  let engine: Engine;
  let naive: NaiveEncoder | NaiveDecoder;

  beforeAll(async () => {
    const dir = path.join(root, kind);
    naive = await make(dir);
    engine = await Engine.create({
      ...defaultConfig({
        modelsDir: path.join(root, `models-${kind}`),
        adaptersDir: path.join(root, `adapters-${kind}`),
        model: dir,
        maxWaitMs: 50,
        fusedOps,
      }),
    });
    for (const t of TASKS) await engine.upload(t.task, syntheticAdapterBytes(engine.assets, t));
  });
  afterAll(async () => {
    await engine?.close();
  });

  it("computes the semantic pass and F from the oracle's last hidden state", async () => {
    expect(engine.assets.manifest.fusedOps).toBe(fusedOps);
    for (const t of TASKS) {
      const prepared = await engine.registry.acquire(t.task);
      const file = syntheticAdapter(engine.assets, t);
      const promptIds = engine.assets.tokenizer.ids(t.promptText!);
      const hp =
        naive.kind === "encoder" ? naiveEncoderLastHidden(naive, promptIds) : naiveDecoderLastHidden(naive, promptIds);
      const z = applyTransform(file, Float32Array.from(hp.flat()), engine.assets.dims);
      if (t.variant === "prompt") expect(maxAbsDiff(prepared.softPrompt!, z)).toBeLessThanOrEqual(1e-4);
      else {
        const want = splitPrefix(z, prepared.prefix!.length, engine.assets.dims);
        prepared.prefix!.keys.forEach((k, n) => expect(maxAbsDiff(k, want.keys[n])).toBeLessThanOrEqual(1e-4));
        prepared.prefix!.values.forEach((v, n) => expect(maxAbsDiff(v, want.values[n])).toBeLessThanOrEqual(1e-4));
      }
    }
  });

  it("answers every variant and /embed, batched together, as the oracle does", async () => {
    const [classified, embedded] = await Promise.all([
      Promise.all(TASKS.map((t) => engine.classify({ task: t.task, texts: TEXTS }))),
      engine.embed({ texts: TEXTS }),
    ]);
    const { dims, tokenizer } = engine.assets;
    const kvHeads = dims.layers[0].heads;
    const headDim = dims.layers[0].headDim;
    for (const [i, t] of TASKS.entries()) {
      const prepared = await engine.registry.acquire(t.task);
      const extras: NaiveExtras = prepared.softPrompt
        ? { prompt: rows(prepared.softPrompt, dims.embedDim) }
        : { prefix: prefixRows(prepared, kvHeads, headDim) };
      TEXTS.forEach((text, j) => {
        const ids = tokenizer.encode(text, prepared.textBudget).ids;
        const want = applyHead(prepared, Float32Array.from(naiveEmbedding(naive, ids, extras)));
        const got = classified[i].predictions[j];
        for (const label of Object.keys(want.scores!))
          expect(Math.abs(got.scores![label] - want.scores![label])).toBeLessThanOrEqual(1e-4);
      });
    }
    TEXTS.forEach((text, j) => {
      const want = naiveEmbedding(naive, tokenizer.encode(text, dims.maxPositions).ids);
      expect(maxAbsDiff(embedded.embeddings[j], want)).toBeLessThanOrEqual(1e-4);
    });
  });

  it("serves a text-pair adapter with the tokenizer's token types, truncating longest-first around the specials", async () => {
    const spec: SyntheticOptions = {
      task: "pairs",
      variant: "prefix",
      pooling: true,
      textPair: true,
      promptText: "same meaning?",
      seed: 9,
      scale: 1,
      maxLength: 14,
    };
    await engine.upload("pairs", syntheticAdapterBytes(engine.assets, spec));
    const texts = ["a fine film", "the movie was long and slow and then it ended without any point at all"];
    const pairs = ["it was great", "a story about people in town with friends on a very long day"];
    const answer = await engine.classify({ task: "pairs", texts, pairs });
    const prepared = await engine.registry.acquire("pairs");
    const { tokenizer, dims } = engine.assets;
    const extras = { prefix: prefixRows(prepared, dims.layers[0].heads, dims.layers[0].headDim) };
    texts.forEach((text, j) => {
      const enc = tokenizer.encodePair(text, pairs[j], prepared.textBudget);
      expect(answer.predictions[j]).toMatchObject({ tokens: enc.ids.length, truncated: j === 1 });
      const want = applyHead(
        prepared,
        Float32Array.from(naiveEmbedding(naive, enc.ids, { ...extras, typeIds: enc.typeIds })),
      );
      for (const label of Object.keys(want.scores!))
        expect(Math.abs(answer.predictions[j].scores![label] - want.scores![label])).toBeLessThanOrEqual(1e-4);
    });
    if (kind.startsWith("enc")) {
      // bert-v's WordPiece template: [CLS] a [SEP] b [SEP], types 0 … 0 1 … 1; the long pair keeps all three specials.
      const long = tokenizer.encodePair(texts[1], pairs[1], 14);
      expect(long.ids).toHaveLength(14);
      expect([long.ids[0], long.ids.filter((id) => id === 3).length, long.ids.at(-1)]).toEqual([2, 2, 3]);
      const firstSep = long.ids.indexOf(3);
      expect(long.typeIds).toEqual(long.ids.map((_, i) => (i <= firstSep ? 0 : 1)));
      // And the token types matter: the same ids as type 0 give other scores.
      const typeBlind = applyHead(prepared, Float32Array.from(naiveEmbedding(naive, long.ids, extras)));
      const typed = applyHead(
        prepared,
        Float32Array.from(naiveEmbedding(naive, long.ids, { ...extras, typeIds: long.typeIds })),
      );
      expect(Math.abs(typeBlind.scores!.negative - typed.scores!.negative)).toBeGreaterThan(1e-3);
    }
  });

  it("refuses an adapter made for another backbone, naming both fingerprints", async () => {
    const useLite = await loadBackboneAssets(MODELS_DIR);
    const foreign = encodeAdapter(syntheticAdapter(useLite, { task: "foreign" }), useLite.dims);
    const error = await engine.upload("foreign", foreign).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isSktError(error) && error.kind).toBe("invalid_adapter");
    expect((error as Error).message).toContain(useLite.fingerprint);
    expect((error as Error).message).toContain(engine.assets.fingerprint);
    expect(engine.hasTask("foreign")).toBe(false);
  });

  it("starts with such an adapter already in the store, refusing it at first use with a log line instead of crashing", async () => {
    const useLite = await loadBackboneAssets(MODELS_DIR);
    const adaptersDir = path.join(root, `foreign-store-${kind}`);
    await new AdapterStore(adaptersDir).write(
      "foreign",
      encodeAdapter(syntheticAdapter(useLite, { task: "foreign" }), useLite.dims),
    );
    const logs: { msg: string; fields?: Record<string, unknown> }[] = [];
    const other = await Engine.create({
      ...defaultConfig({
        modelsDir: path.join(root, `models-${kind}`),
        adaptersDir,
        model: engine.assets.manifest.source.folder,
      }),
      log: (_level, msg, fields) => logs.push({ msg, fields }),
    });
    try {
      expect(other.isReady()).toBe(true);
      // Start-up is lazy: the adapter is found foreign at its first use, answered 409 for that task only, and logged.
      const refused = await other.classify({ task: "foreign", texts: ["x"] }).catch((e: unknown) => e);
      expect(refused).toMatchObject({ kind: "conflict", code: "adapter_invalid" });
      const logged = logs.find((l) => l.fields?.task === "foreign");
      expect(logged?.msg).toBe("adapter cannot be served");
      expect(String(logged?.fields?.error)).toContain(useLite.fingerprint);
      expect((await other.embed({ texts: ["still serving"] })).embeddings).toHaveLength(1);
    } finally {
      await other.close();
    }
  });
});
