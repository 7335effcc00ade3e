/**
 * USE-lite's SentencePiece unigram tokenizer, described by a Hugging Face tokenizer.json built out
 * of the package's vocab.json (recipe in use-lite.md: NFKC, spaces → "▁", unigram Viterbi,
 * unknown id 0, no special tokens), run by @huggingface/tokenizers — except that for exactly the
 * pipeline buildTokenizerJson writes, the unigram search runs in UnigramModel, which gives the
 * library's ids ~5× faster (tests hold the two equal on SST-2 and random texts). Any other
 * tokenizer.json goes through the library.
 *
 * One deviation from the recipe, for exactness: the package always puts "▁" in front of a non-empty
 * text, while a Metaspace pre-tokenizer skips that when the text already starts with a space
 * ("   " gave 3 ids instead of the package's 4). So the Metaspace step never prepends and `ids()`
 * adds the "▁" itself.
 */
import { createLibraryTokenizer } from "./library-tokenizer.js";
import { UnigramModel } from "./unigram.js";

export const UNKNOWN_ID = 0;
const SPACE_PIECE = "▁";

/** Everything in tokenizer.json but the vocabulary: what UnigramModel's fast path implements. */
const PIPELINE = {
  version: "1.0",
  truncation: null,
  padding: null,
  added_tokens: [],
  normalizer: { type: "NFKC" },
  pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "never", split: false },
  post_processor: null,
  decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: false },
  model: { type: "Unigram", unk_id: UNKNOWN_ID, byte_fallback: false },
};

export function buildTokenizerJson(vocab: [string, number][]): Record<string, unknown> {
  return { ...PIPELINE, model: { ...PIPELINE.model, vocab } };
}

/** True when `json` is PIPELINE with some vocabulary (so UnigramModel computes what the library would). */
function isFastPathPipeline(json: Record<string, unknown>): boolean {
  const { model, ...rest } = json as { model: { vocab?: unknown } };
  const { vocab, ...modelRest } = model ?? {};
  const { model: pipelineModel, ...pipelineRest } = PIPELINE;
  return (
    Array.isArray(vocab) &&
    canonical(rest) === canonical(pipelineRest) &&
    canonical(modelRest) === canonical(pipelineModel)
  );
}

/** JSON with object keys sorted, so key order does not matter. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** What the engine, the adapters and the trainer ask of any backbone's tokenizer. */
export interface BackboneTokenizer {
  /** The text's ids without special tokens (prompt texts). */
  ids(text: string): number[];
  /** The ids a single text runs with, at most `maxTokens`. */
  encode(text: string, maxTokens: number): Encoded;
  /** A prompt text's ids without special tokens, at most `maxTokens` (counting stops early where it can). */
  promptIds(text: string, maxTokens: number): Encoded;
  /** The ids a text pair runs with, at most `maxTokens`. */
  encodePair(text: string, pair: string, maxTokens: number): Encoded;
}

export interface TokenizerOptions {
  /** "auto" (default): UnigramModel when the pipeline allows it; "library": always @huggingface/tokenizers. */
  engine?: "auto" | "library";
}

export interface Encoded {
  ids: number[];
  /** True when the text had more tokens than the cap allowed. */
  truncated: boolean;
  /** Token count before truncation (a lower bound when a long text was cut before tokenizing). */
  fullLength: number;
  /** Token type of each id, for backbones that take them (BERT-family pairs); absent means all 0. */
  typeIds?: number[];
}

/** Tokens past the budget that a prefix must still yield before it is trusted. */
const CUT_MARGIN_TOKENS = 16;

/** The first `chars` characters, shortened to end before a space when there is one to end at. */
function cutAtSpace(text: string, chars: number): string {
  const cut = text.lastIndexOf(" ", chars);
  return cut > chars / 2 ? text.slice(0, cut) : text.slice(0, chars);
}

export class UseLiteTokenizer implements BackboneTokenizer {
  /** Text after the "▁" prefix → ids. */
  private readonly run: (text: string) => number[];
  /** Which implementation `run` uses. */
  readonly engine: "unigram-model" | "library";

  /** Every character that occurs in some vocabulary piece (plus the space, which becomes "▁"). */
  private readonly knownChars: Set<number>;

  constructor(tokenizerJson: Record<string, unknown>, opts: TokenizerOptions = {}) {
    const { vocab, unk_id } = tokenizerJson.model as { vocab: [string, number][]; unk_id: number };
    if ((opts.engine ?? "auto") === "auto" && isFastPathPipeline(tokenizerJson)) {
      const model = new UnigramModel(vocab, unk_id);
      // The pipeline: NFKC normalizer, Metaspace (spaces → "▁", never prepends), Unigram.
      this.run = (text) => model.segment(text.normalize("NFKC").replaceAll(" ", SPACE_PIECE));
      this.engine = "unigram-model";
    } else {
      const library = createLibraryTokenizer(tokenizerJson, {});
      this.run = (text) => library.encode(text, { add_special_tokens: false }).ids;
      this.engine = "library";
    }
    this.knownChars = new Set([" ", ...vocab.flatMap(([piece]) => [...piece])].map((ch) => ch.codePointAt(0)!));
  }

  /** All token ids of `text` (no cap). */
  ids(text: string): number[] {
    if (text.length === 0) return [];
    const collapsed = this.collapseUnknownRuns(text.normalize("NFKC"));
    return this.run(`${SPACE_PIECE}${collapsed}`);
  }

  /**
   * A run of characters that no piece contains becomes one unknown token however long it is, so
   * it is shortened to its first character before the unigram search, whose cost grows with the
   * run (10,000 CJK characters: ~280 ms in @huggingface/tokenizers → < 1 ms). NFKC is
   * applied first because it can turn unknown characters into known ones; the tokenizer's own NFKC
   * pass is then a no-op.
   */
  private collapseUnknownRuns(normalized: string): string {
    let out = "";
    let copiedUpTo = 0; // normalized[copiedUpTo, i) is still to be copied
    let inUnknownRun = false;
    for (let i = 0; i < normalized.length; i++) {
      const cp = normalized.codePointAt(i)!;
      const width = cp > 0xffff ? 2 : 1;
      const known = this.knownChars.has(cp);
      if (!known && inUnknownRun) {
        // Drop this character: copy what came before it (most texts never get here).
        out += normalized.slice(copiedUpTo, i);
        copiedUpTo = i + width;
      }
      inUnknownRun = !known;
      i += width - 1;
    }
    return copiedUpTo === 0 ? normalized : out + normalized.slice(copiedUpTo);
  }

  /**
   * Token ids capped at `maxTokens` (the text's share of the backbone's 128 positions).
   *
   * A long text is not tokenized whole: anyone may send 10,000 characters, and one unbroken run of,
   * say, CJK text costs ~30 ms per 1,000 characters on the main thread. Instead a prefix is cut at
   * a space (segmentation never crosses "▁" word starts, so the ids before the cut are the full
   * text's) and doubled until it yields more than `maxTokens` + a margin; with no space to cut at,
   * the margin keeps the tokens that a mid-word cut can change beyond the budget. `fullLength` is
   * then a lower bound.
   */
  /** USE-lite adds no special tokens, so a prompt is encoded like any text (with its early stop). */
  promptIds(text: string, maxTokens: number): Encoded {
    return this.encode(text, maxTokens);
  }

  encode(text: string, maxTokens: number): Encoded {
    for (let chars = Math.max(64, maxTokens * 4); chars < text.length; chars *= 2) {
      const ids = this.ids(cutAtSpace(text, chars));
      if (ids.length > maxTokens + CUT_MARGIN_TOKENS)
        return { ids: ids.slice(0, maxTokens), truncated: true, fullLength: ids.length };
    }
    const ids = this.ids(text);
    return { ids: ids.slice(0, maxTokens), truncated: ids.length > maxTokens, fullLength: ids.length };
  }

  /**
   * A text pair: the two token sequences back to back (USE-lite has no separator token), trimmed
   * longest-first so both keep as much as possible within `maxTokens`.
   */
  encodePair(text: string, pair: string, maxTokens: number): Encoded {
    // Neither side can keep more than maxTokens, so each is encoded with that cap.
    const first = this.encode(text, maxTokens);
    const second = this.encode(pair, maxTokens);
    let a = first.ids;
    let b = second.ids;
    while (a.length + b.length > maxTokens) {
      if (a.length >= b.length) a = a.slice(0, -1);
      else b = b.slice(0, -1);
    }
    const fullLength = first.fullLength + second.fullLength;
    return { ids: [...a, ...b], truncated: fullLength > maxTokens, fullLength };
  }
}
