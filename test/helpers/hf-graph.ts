/** Runs a Hugging Face folder's built graph on unpadded or padded token rows, straight through onnxruntime. */
import ort from "onnxruntime-node";
import { toOnnxBytes } from "../../src/backbone/graph/onnx.js";
import { buildHfNetwork, wordEmbeddings } from "../../src/backbone/hf/build-graph.js";
import { readFamilyWeights, readHfFolder, type FamilyWeights, type HfFolder } from "../../src/backbone/hf/folder.js";
import { HfTokenizer } from "../../src/backbone/hf/tokenizer.js";

export interface LoadedHf {
  folder: HfFolder;
  weights: FamilyWeights;
  tokenizer: HfTokenizer;
  hidden: number;
  /** Pooled (mean over real positions) last hidden state of each id row, run as one padded batch. */
  pooled(rows: number[][]): Promise<Float32Array[]>;
}

/** `fused`: the serving graph with onnxruntime's fused operators (as the server builds it with SKT_FUSED_OPS=true). */
export async function loadHf(dir: string, opts: { fused?: boolean } = {}): Promise<LoadedHf> {
  const folder = await readHfFolder(dir);
  const weights = readFamilyWeights(folder);
  const session = await ort.InferenceSession.create(
    toOnnxBytes(buildHfNetwork(weights, { fused: opts.fused }).graph, "hf"),
    {
      intraOpNumThreads: 1,
    },
  );
  const table = wordEmbeddings(weights);
  const hidden = folder.config.hidden;
  return {
    folder,
    weights,
    tokenizer: new HfTokenizer(folder.tokenizerJson, folder.tokenizerConfig),
    hidden,
    async pooled(rows) {
      const seq = Math.max(1, ...rows.map((r) => r.length));
      const embeds = new Float32Array(rows.length * seq * hidden);
      const mask = new BigInt64Array(rows.length * seq);
      rows.forEach((ids, b) => {
        ids.forEach((id, t) => embeds.set(table.subarray(id * hidden, (id + 1) * hidden), (b * seq + t) * hidden));
        mask.fill(1n, b * seq, b * seq + ids.length);
      });
      const feeds: Record<string, ort.Tensor> = {
        inputs_embeds: new ort.Tensor("float32", embeds, [rows.length, seq, hidden]),
        attention_mask: new ort.Tensor("int64", mask, [rows.length, seq]),
      };
      if (session.inputNames.includes("token_type_ids"))
        feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(rows.length * seq), [rows.length, seq]);
      const out = await session.run(feeds, ["pooled"]);
      const data = out.pooled.data as Float32Array;
      return rows.map((_, b) => data.slice(b * hidden, (b + 1) * hidden));
    },
  };
}
