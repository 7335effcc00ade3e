/**
 * USE-lite's SentencePiece unigram tokenizer, run by @huggingface/tokenizers from a tokenizer.json
 * built out of the package's vocab.json (recipe in use-lite.md: NFKC, spaces → "▁", unigram
 * Viterbi, unknown id 0, no special tokens).
 *
 * One deviation from the recipe, for exactness: the package always puts "▁" in front of a non-empty
 * text, while a Metaspace pre-tokenizer skips that when the text already starts with a space
 * ("   " gave 3 ids instead of the package's 4). So the Metaspace step never prepends and `ids()`
 * adds the "▁" itself.
 */
import { Tokenizer } from "@huggingface/tokenizers";

export const UNKNOWN_ID = 0;
const SPACE_PIECE = "▁";

export function buildTokenizerJson(vocab: [string, number][]): Record<string, unknown> {
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [],
    normalizer: { type: "NFKC" },
    pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "never", split: false },
    post_processor: null,
    decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: false },
    model: { type: "Unigram", unk_id: UNKNOWN_ID, vocab, byte_fallback: false },
  };
}

export interface Encoded {
  ids: number[];
  /** True when the text had more tokens than the cap allowed. */
  truncated: boolean;
  /** Token count before truncation. */
  fullLength: number;
}

export class UseLiteTokenizer {
  private readonly tokenizer: Tokenizer;

  constructor(tokenizerJson: Record<string, unknown>) {
    this.tokenizer = new Tokenizer(tokenizerJson, {});
  }

  /** All token ids of `text` (no cap). */
  ids(text: string): number[] {
    if (text.length === 0) return [];
    return this.tokenizer.encode(`${SPACE_PIECE}${text}`, { add_special_tokens: false }).ids;
  }

  /** Token ids capped at `maxTokens` (the text's share of the backbone's 128 positions). */
  encode(text: string, maxTokens: number): Encoded {
    const ids = this.ids(text);
    return { ids: ids.slice(0, maxTokens), truncated: ids.length > maxTokens, fullLength: ids.length };
  }

  /**
   * A text pair: the two token sequences back to back (USE-lite has no separator token), trimmed
   * longest-first so both keep as much as possible within `maxTokens`.
   */
  encodePair(text: string, pair: string, maxTokens: number): Encoded {
    let a = this.ids(text);
    let b = this.ids(pair);
    const fullLength = a.length + b.length;
    while (a.length + b.length > maxTokens) {
      if (a.length >= b.length) a = a.slice(0, -1);
      else b = b.slice(0, -1);
    }
    return { ids: [...a, ...b], truncated: fullLength > maxTokens, fullLength };
  }
}
