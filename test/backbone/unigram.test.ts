/**
 * UnigramModel against @huggingface/tokenizers running the same tokenizer.json: identical ids on
 * SST-2 sentences and on random texts built to hit unknown characters, surrogate pairs, duplicate
 * scores, long pieces and the lattice's tie breaking.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { createLibraryTokenizer, type LibraryTokenizer } from "../../src/backbone/library-tokenizer.js";
import { beforeAll, describe, expect, it } from "vitest";
import { UnigramModel } from "../../src/backbone/unigram.js";
import { seededRandom } from "../../src/random.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

type Vocab = [string, number][];

let vocab: Vocab;
let library: LibraryTokenizer;
let ours: UnigramModel;

/** What the tokenizer.json pipeline hands the Unigram model: NFKC, then spaces → "▁". */
const pretokenize = (text: string) => text.normalize("NFKC").replaceAll(" ", "▁");
const libraryIds = (tok: LibraryTokenizer, text: string) => tok.encode(text, { add_special_tokens: false }).ids;

beforeAll(() => {
  const json = JSON.parse(readFileSync(path.join(MODELS_DIR, "use-lite/tokenizer.json"), "utf8")) as {
    model: { vocab: Vocab; unk_id: number };
  };
  vocab = json.model.vocab;
  library = createLibraryTokenizer(json, {});
  ours = new UnigramModel(vocab, json.model.unk_id);
});

describe("UnigramModel", () => {
  it("gives the library's ids on every SST-2 dev sentence and every 4th train sentence", () => {
    const sentences = [...readSst2("dev"), ...readSst2("train").filter((_, i) => i % 4 === 0)].map(
      (r) => `▁${r.sentence}`,
    );
    expect(sentences.length).toBeGreaterThan(17_000);
    const mismatches = sentences.filter(
      (s) => JSON.stringify(ours.segment(pretokenize(s))) !== JSON.stringify(libraryIds(library, s)),
    );
    expect(mismatches).toEqual([]);
  });

  it("gives the library's ids on 3,000 random texts of pieces, unknown characters, emoji and spaces", () => {
    const random = seededRandom(7);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)];
    const oddities = [
      "😀",
      "👍🏽",
      "漢",
      "字",
      "ꙮ",
      "é",
      "e\u0301",
      "ﬁ",
      "①",
      "\t",
      "\n",
      " ",
      "  ",
      "▁",
      "<unk>",
      "\ud800",
      "x",
    ];
    const texts = Array.from({ length: 3000 }, () => {
      const parts = Array.from({ length: 1 + Math.floor(random() * 30) }, () =>
        random() < 0.7 ? pick(vocab)[0] : pick(oddities),
      );
      return parts.join(random() < 0.5 ? "" : " ");
    });
    const mismatches = texts.filter(
      (t) =>
        t.normalize("NFKC").length > 0 &&
        JSON.stringify(ours.segment(pretokenize(t))) !== JSON.stringify(libraryIds(library, t)),
    );
    expect(mismatches).toEqual([]);
  });

  it("breaks ties between equally scored splits as the library does", () => {
    // A toy vocabulary where "ab" + "c" and "a" + "bc" score the same, and "abc" is absent.
    const toy: Vocab = [
      ["<unk>", 0],
      ["a", -1],
      ["b", -1],
      ["c", -1],
      ["ab", -1.5],
      ["bc", -1.5],
      ["cab", -2.5],
      ["ca", -1.5],
    ];
    const json = {
      version: "1.0",
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      added_tokens: [],
      model: { type: "Unigram", unk_id: 0, vocab: toy },
    };
    const tok = createLibraryTokenizer(json, {});
    const model = new UnigramModel(toy, 0);
    for (const text of ["abc", "cabc", "abcab", "cacab", "zabcz", "abzbc", "cabcabca"]) {
      expect({ text, ids: model.segment(text) }).toEqual({ text, ids: libraryIds(tok, text) });
    }
  });

  it("gives no ids for an empty text and one unknown id per uncovered character", () => {
    expect(ours.segment("")).toEqual([]);
    const unk = ours.segment("☃");
    expect(unk).toEqual([0]);
    expect(ours.segment("☃☃")).toEqual(libraryIds(library, "☃☃"));
  });
});
