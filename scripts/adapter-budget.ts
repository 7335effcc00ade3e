/**
 * Which SK-Tuning variants fit the adapter parameter cap on real Hugging Face backbone shapes:
 * for BERT-base and Qwen2-0.5B (their published config.json fields), each variant's parameter
 * count — the non-pooling forms are independent of the prompt length, the pooling forms grow with
 * L²·W — and the longest prompt that stays under the cap (2 labels).
 * Usage: npx tsx scripts/adapter-budget.ts [maxParams=1000000]
 */
import { parameterCount } from "../src/adapters/spec.js";
import { parseFamilyConfig } from "../src/backbone/hf/config.js";
import { hfDims } from "../src/backbone/hf/build.js";

const cap = Number(process.argv[2] ?? 1_000_000);
const CONFIGS = {
  "BERT-base (bert-base-uncased)": {
    model_type: "bert",
    vocab_size: 30522,
    hidden_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 12,
    intermediate_size: 3072,
    hidden_act: "gelu",
    max_position_embeddings: 512,
    type_vocab_size: 2,
    layer_norm_eps: 1e-12,
  },
  "Qwen2-0.5B": {
    model_type: "qwen2",
    vocab_size: 151936,
    hidden_size: 896,
    num_hidden_layers: 24,
    num_attention_heads: 14,
    num_key_value_heads: 2,
    intermediate_size: 4864,
    hidden_act: "silu",
    max_position_embeddings: 32768,
    rms_norm_eps: 1e-6,
    rope_theta: 1000000,
    use_sliding_window: false,
    sliding_window: 32768,
  },
};

console.log(`| backbone | variant | parameters (L = 8) | longest prompt under ${cap.toLocaleString("en")} |`);
console.log("|---|---|---:|---:|");
for (const [name, config] of Object.entries(CONFIGS)) {
  const dims = hfDims(parseFamilyConfig(config));
  for (const variant of ["prompt", "prefix"] as const) {
    for (const pooling of [true, false]) {
      const count = (L: number) =>
        parameterCount(
          {
            variant,
            pooling,
            promptLength: L,
            labels: ["negative", "positive"],
            problemType: "single_label_classification",
          },
          dims,
        );
      let longest = 0;
      while (longest < 512 && count(longest + 1) <= cap) longest++;
      const fits = longest === 0 ? "does not fit" : longest === 512 ? "any" : `L ≤ ${longest}`;
      console.log(
        `| ${name} | ${variant}, ${pooling ? "pooling" : "no pooling"} | ${count(8).toLocaleString("en")} | ${fits} |`,
      );
    }
  }
}
