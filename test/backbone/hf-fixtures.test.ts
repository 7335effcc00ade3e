/**
 * The Hugging Face loader against the shared reference checkpoints, whose expected outputs come
 * from an independent float64 PyTorch implementation (../shared/fixtures/backbones/README.md).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES_DIR } from "../helpers/hf-checkpoint.js";
import { loadHf } from "../helpers/hf-graph.js";
import { cosine, maxAbsDiff } from "../helpers/numeric.js";

interface Expected {
  texts: string[];
  ids: number[][];
  embeddings: number[][];
}

describe.each(["bert-v", "llama-v"])("fixture %s", (name) => {
  const dir = path.join(FIXTURES_DIR, name);

  it("tokenizes every text to the expected ids", async () => {
    const hf = await loadHf(dir);
    const expected = JSON.parse(await readFile(path.join(dir, "expected.json"), "utf8")) as Expected;
    expect(expected.texts.map((t) => hf.tokenizer.encode(t, 100_000).ids)).toEqual(expected.ids);
  });

  it("truncates a long text to the cap, keeping the special tokens around the text's first tokens", async () => {
    const hf = await loadHf(dir);
    const expected = JSON.parse(await readFile(path.join(dir, "expected.json"), "utf8")) as Expected;
    const longest = expected.ids.reduce((a, b) => (b.length > a.length ? b : a));
    const text = expected.texts[expected.ids.indexOf(longest)];
    const cut = hf.tokenizer.encode(text, 10);
    expect(cut).toMatchObject({ truncated: true, fullLength: longest.length });
    // bert-v: [CLS] … [SEP] (ids 2 and 3); llama-v: a BOS (id 0) only.
    const after = name === "bert-v" ? [3] : [];
    expect(cut.ids).toEqual([...longest.slice(0, 10 - after.length), ...after]);
  });

  it.each([false, true])(
    "matches the float64 reference one text at a time and in one padded batch (fused operators: %s)",
    async (fused) => {
      const hf = await loadHf(dir, { fused });
      const expected = JSON.parse(await readFile(path.join(dir, "expected.json"), "utf8")) as Expected;
      const single = await Promise.all(expected.ids.map(async (ids) => (await hf.pooled([ids]))[0]));
      const batched = await hf.pooled(expected.ids);
      expected.embeddings.forEach((want, i) => {
        for (const got of [single[i], batched[i]]) {
          expect(got.length).toBe(want.length);
          expect(cosine(got, want)).toBeGreaterThanOrEqual(0.99999);
          expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(1e-4);
        }
      });
    },
  );
});
