/**
 * A Hugging Face folder's own tokenizer (tokenizer.json, with tokenizer_config.json when present),
 * run by @huggingface/tokenizers with the special tokens its post-processor adds ([CLS] … [SEP],
 * <s> … </s>, a BOS). Truncation keeps those special tokens and cuts the text, as Hugging Face's
 * truncation does.
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { SktError } from "../../errors.js";
import type { BackboneTokenizer, Encoded } from "../tokenizer.js";

export class HfTokenizer implements BackboneTokenizer {
  private readonly library: Tokenizer;
  /** Special tokens the post-processor puts before and after a single text. */
  private readonly specialsBefore: number[];
  private readonly specialsAfter: number[];

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown> = {}) {
    this.library = new Tokenizer(tokenizerJson, tokenizerConfig);
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

  /** Text pairs need token type ids in the graph, which the Hugging Face backbones do not take yet. */
  encodePair(): Encoded {
    throw new SktError("bad_request", "pair_not_supported", "text pairs are not supported on Hugging Face backbones yet (their token type ids do not reach the graph)");
  }
}

function indexOfRun(haystack: number[], needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
