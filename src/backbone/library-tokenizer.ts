/**
 * @huggingface/tokenizers' `Tokenizer`, typed. The package's published .d.ts files import each
 * other without file extensions, which NodeNext resolution cannot follow, so the class arrives as
 * an unresolved (any) type; this module states the part of its API the project uses, once.
 */
import { Tokenizer } from "@huggingface/tokenizers";

export interface LibraryEncodeOptions {
  add_special_tokens?: boolean;
  text_pair?: string | null;
  return_token_type_ids?: boolean | null;
}

export interface LibraryEncoding {
  ids: number[];
  tokens: string[];
  attention_mask: number[];
  token_type_ids?: number[];
}

export interface LibraryTokenizer {
  encode(text: string, options?: LibraryEncodeOptions): LibraryEncoding;
}

type LibraryTokenizerClass = new (tokenizerJson: object, config: object) => LibraryTokenizer;

/** A tokenizer from a parsed tokenizer.json (and tokenizer_config.json, or `{}`). */
export function createLibraryTokenizer(tokenizerJson: object, config: object): LibraryTokenizer {
  return new (Tokenizer as unknown as LibraryTokenizerClass)(tokenizerJson, config);
}
