/**
 * A Hugging Face folder's own tokenizer (tokenizer.json, with tokenizer_config.json when present),
 * run by @huggingface/tokenizers with the special tokens its post-processor adds ([CLS] … [SEP],
 * <s> … </s>, a BOS). Truncation keeps those special tokens and cuts the text, as Hugging Face's
 * truncation does.
 */
import { createLibraryTokenizer, type LibraryTokenizer } from "../library-tokenizer.js";
import { SktError } from "../../errors.js";
import type { BackboneTokenizer, Encoded } from "../tokenizer.js";

export class HfTokenizer implements BackboneTokenizer {
  private readonly library: LibraryTokenizer;
  /** Special tokens the post-processor puts before and after a single text. */
  private readonly specialsBefore: number[];
  private readonly specialsAfter: number[];

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}) {
    this.library = createLibraryTokenizer(tokenizerJson, tokenizerConfig);
    // A probe text shows where the text's ids sit among the special ones.
    const probe = "a";
    const plain = this.ids(probe);
    const full = this.library.encode(probe).ids;
    const at = indexOfRun(full, plain);
    this.specialsBefore = at < 0 ? [] : full.slice(0, at);
    this.specialsAfter = at < 0 ? [] : full.slice(at + plain.length);
  }

  /** The text's ids without special tokens (prompt texts are placed by the adapter, not the template). */
  ids(text: string): number[] {
    return this.library.encode(text, { add_special_tokens: false }).ids;
  }

  /** A prompt's ids without special tokens, cut to `maxTokens` (prompt texts are capped in characters before this). */
  promptIds(text: string, maxTokens: number): Encoded {
    const ids = this.ids(text);
    return { ids: ids.slice(0, maxTokens), truncated: ids.length > maxTokens, fullLength: ids.length };
  }

  /** Ids with the special tokens, at most `maxTokens` of them in all (specials kept, text cut). */
  encode(text: string, maxTokens: number): Encoded {
    const full = this.library.encode(text).ids;
    if (full.length <= maxTokens) return { ids: full, truncated: false, fullLength: full.length };
    const before = this.specialsBefore;
    const after = this.specialsAfter;
    const textIds = full.slice(before.length, full.length - after.length);
    const room = Math.max(0, maxTokens - before.length - after.length);
    const ids = [...before, ...textIds.slice(0, room), ...after].slice(0, maxTokens);
    return { ids, truncated: true, fullLength: full.length };
  }

  /**
   * A text pair through the tokenizer's pair template ([CLS] a [SEP] b [SEP], <s> a </s></s> b </s>, …)
   * with its token type ids; over `maxTokens`, the longer side loses tokens first (Hugging Face's
   * longest_first) and the special tokens stay.
   */
  encodePair(text: string, pair: string, maxTokens: number): Encoded {
    const full = this.library.encode(text, { text_pair: pair, return_token_type_ids: true });
    if (full.ids.length <= maxTokens)
      return { ids: full.ids, typeIds: full.token_type_ids, truncated: false, fullLength: full.ids.length };
    const first = this.ids(text);
    const second = this.ids(pair);
    // full = pre + first + mid + second + post; the three special runs stay as they are.
    const at = indexOfRun(full.ids, first);
    const bt = indexOfRun(full.ids, second, at + first.length);
    if (at < 0 || bt < 0)
      throw new SktError(
        "bad_request",
        "pair_not_supported",
        "this tokenizer's pair template could not be located around the texts; text pairs cannot be truncated",
      );
    const room = Math.max(0, maxTokens - (full.ids.length - first.length - second.length));
    let a = first;
    let b = second;
    while (a.length + b.length > room) {
      if (a.length >= b.length) a = a.slice(0, -1);
      else b = b.slice(0, -1);
    }
    // Asked for with return_token_type_ids: the library always returns them then.
    const types = full.token_type_ids ?? full.ids.map(() => 0);
    const ids = [
      ...full.ids.slice(0, at),
      ...a,
      ...full.ids.slice(at + first.length, bt),
      ...b,
      ...full.ids.slice(bt + second.length),
    ];
    const typeIds = [
      ...types.slice(0, at),
      ...a.map(() => types[at] ?? 0),
      ...types.slice(at + first.length, bt),
      ...b.map(() => types[bt] ?? 1),
      ...types.slice(bt + second.length),
    ];
    return {
      ids: ids.slice(0, maxTokens),
      typeIds: typeIds.slice(0, maxTokens),
      truncated: true,
      fullLength: full.ids.length,
    };
  }
}

function indexOfRun(haystack: number[], needle: number[], from = 0): number {
  outer: for (let i = from; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
