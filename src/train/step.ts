/**
 * One training step: F(h_p) → soft prompt or prefix (with dropout) → the training graph (backbone,
 * head, loss and reverse pass in one onnxruntime run) → gradients of every adapter tensor, F's
 * chained in TypeScript. Works in float32 (training) and float64 (gradient checks).
 */
import ort from "onnxruntime-node";
import type { AdapterTensor } from "../adapters/format.js";
import { outputWidth, prefixLayout, type ProblemType, type Variant } from "../adapters/spec.js";
import type { BackboneDims } from "../backbone/dims.js";
import { toOnnxBytes } from "../backbone/graph/onnx.js";
import type { UseLiteWeights } from "../backbone/use-lite/weights.js";
import { asTrainable, buildClassifierTrainingGraph, type TrainableBackbone } from "./train-graph.js";
import { transformBackward, transformForward, type TransformParams } from "./transform-grad.js";

export type FloatArray = Float32Array | Float64Array;

export interface StepModel {
  variant: Variant;
  pooling: boolean;
  /** Soft prompt / prefix positions L (0: no adapter input at all, a head-only probe). */
  promptLength: number;
  problemType: ProblemType;
  outputs: number;
}

export interface StepRow {
  ids: number[];
  /** Token types of `ids` (pairs on BERT-family backbones); absent: all 0. */
  typeIds?: number[];
  /** Class index (classification), value (regression) or the indices that apply (multi-label). */
  target: number | number[];
}

export interface StepInput {
  tensors: Record<string, AdapterTensor>;
  hp: Float32Array;
  rows: StepRow[];
  /** Multipliers for z (L·W): 0 or 1/(1−p) on the prefix; all ones for no dropout. */
  zDropout: Float32Array | null;
  /** Multipliers for pooled [rows, H]. */
  pooledDropout: Float32Array;
}

export interface StepOutput {
  loss: number;
  logits: Float64Array;
  grads: Record<string, Float32Array>;
}

export class TrainingStep {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly model: StepModel,
    private readonly backbone: TrainableBackbone,
    private readonly dims: BackboneDims,
    private readonly float: "float32" | "float64",
  ) {}

  static async create(
    weights: UseLiteWeights | TrainableBackbone,
    dims: BackboneDims,
    model: StepModel,
    opts: { threads: number; float?: "float32" | "float64" },
  ): Promise<TrainingStep> {
    const backbone = asTrainable(weights);
    const float = opts.float ?? "float32";
    // A head-only probe (L = 0) needs no prefix inputs, whatever its variant says.
    const prefix = model.variant === "prefix" && model.promptLength > 0;
    const graph = buildClassifierTrainingGraph(backbone, {
      prefix,
      problemType: model.problemType,
      outputs: model.outputs,
      float,
      embedsGrad: !prefix && model.promptLength > 0,
    });
    const session = await ort.InferenceSession.create(toOnnxBytes(graph), {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: "all",
    });
    return new TrainingStep(session, model, backbone, dims, float);
  }

  private transformParams(): TransformParams {
    return {
      pooling: this.model.pooling,
      length: this.model.promptLength,
      width: outputWidth(this.model.variant, this.dims),
      hidden: this.dims.hiddenDim,
    };
  }

  private alloc(n: number): FloatArray {
    return this.float === "float64" ? new Float64Array(n) : new Float32Array(n);
  }

  async run(input: StepInput): Promise<StepOutput> {
    const { model, dims } = this;
    const L = model.promptLength;
    const D = dims.embedDim;
    const B = input.rows.length;
    const hasAdapterInput = L > 0;
    const z = hasAdapterInput ? transformForward(this.transformParams(), input.tensors, input.hp) : new Float32Array(0);
    const zUsed = input.zDropout ? z.map((v, i) => v * input.zDropout![i]) : z;

    const soft = model.variant === "prompt" ? L : 0;
    const seq = Math.max(1, ...input.rows.map((r) => soft + r.ids.length));
    const embeds = this.alloc(B * seq * D);
    const mask = new BigInt64Array(B * seq);
    input.rows.forEach((r, b) => {
      if (soft) embeds.set(zUsed, b * seq * D);
      r.ids.forEach((id, t) =>
        embeds.set(this.backbone.embeddings.subarray(id * D, (id + 1) * D), (b * seq + soft + t) * D),
      );
      mask.fill(1n, b * seq, b * seq + soft + r.ids.length);
    });
    const t = (data: FloatArray, shape: number[]) => new ort.Tensor(this.float, data, shape);
    const C = model.outputs;
    const targets = this.alloc(B * C);
    input.rows.forEach((r, b) => {
      if (Array.isArray(r.target))
        for (const c of r.target) targets[b * C + c] = 1; // multi-label: multi-hot
      else if (model.problemType === "regression") targets[b] = r.target;
      else targets[b * C + r.target] = 1;
    });
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds: t(embeds, [B, seq, D]),
      attention_mask: new ort.Tensor("int64", mask, [B, seq]),
      head_weight: t(this.cast(input.tensors["head.weight"].data), [C, dims.hiddenDim]),
      head_bias: t(this.cast(input.tensors["head.bias"].data), [C]),
      targets: t(targets, [B, C]),
      pooled_dropout: t(this.cast(input.pooledDropout), [B, dims.hiddenDim]),
    };
    if (model.variant === "prefix" && hasAdapterInput) Object.assign(feeds, this.prefixFeeds(zUsed, B, L));
    // BERT-family graphs take token types: soft-prompt rows and single texts are type 0, a pair's
    // ids carry the tokenizer's types (as the engine's assembleBatch lays them out for serving).
    if (this.session.inputNames.includes("token_type_ids")) {
      const types = new BigInt64Array(B * seq);
      input.rows.forEach((r, b) => r.typeIds?.forEach((type, t) => (types[b * seq + soft + t] = BigInt(type))));
      feeds.token_type_ids = new ort.Tensor("int64", types, [B, seq]);
    }

    const out = await this.session.run(feeds);
    const grads: Record<string, Float32Array> = {
      "head.weight": Float32Array.from(out.grad_head_weight.data as FloatArray),
      "head.bias": Float32Array.from(out.grad_head_bias.data as FloatArray),
    };
    if (hasAdapterInput) {
      const dz =
        model.variant === "prompt"
          ? this.softPromptGrad(out.grad_inputs_embeds.data as FloatArray, B, seq, L)
          : this.prefixGrad(out, B, L);
      if (input.zDropout) for (let i = 0; i < dz.length; i++) dz[i] *= input.zDropout[i];
      Object.assign(grads, transformBackward(this.transformParams(), input.tensors, input.hp, dz));
    }
    return {
      loss: Number((out.loss.data as FloatArray)[0]),
      logits: Float64Array.from(out.logits.data as FloatArray),
      grads,
    };
  }

  private cast(a: Float32Array): FloatArray {
    return this.float === "float64" ? Float64Array.from(a) : a;
  }

  /** Every row carries the same L prefix rows of z, laid out [B, heads, L, headDim] per layer. */
  private prefixFeeds(z: Float32Array, B: number, L: number): Record<string, ort.Tensor> {
    const S = outputWidth("prefix", this.dims);
    const feeds: Record<string, ort.Tensor> = {};
    for (const s of prefixLayout(this.dims)) {
      for (const [kind, offset] of [
        ["key", s.keyOffset],
        ["value", s.valueOffset],
      ] as const) {
        const data = this.alloc(B * s.heads * L * s.headDim);
        for (let b = 0; b < B; b++)
          for (let h = 0; h < s.heads; h++)
            for (let l = 0; l < L; l++) {
              const src = l * S + offset + h * s.headDim;
              data.set(z.subarray(src, src + s.headDim), ((b * s.heads + h) * L + l) * s.headDim);
            }
        feeds[`prefix_${kind}_${s.layer}`] = new ort.Tensor(this.float, data, [B, s.heads, L, s.headDim]);
      }
    }
    feeds.prefix_mask = new ort.Tensor("int64", new BigInt64Array(B * L).fill(1n), [B, L]);
    return feeds;
  }

  /** dLoss/dz for the soft prompt: the gradient at positions 0…L−1, summed over the batch. */
  private softPromptGrad(g: FloatArray, B: number, seq: number, L: number): Float64Array {
    const D = this.dims.embedDim;
    const dz = new Float64Array(L * D);
    for (let b = 0; b < B; b++) for (let i = 0; i < L * D; i++) dz[i] += g[b * seq * D + i];
    return dz;
  }

  /** dLoss/dz for the prefix: each layer's key/value gradients back into z's [L, S] rows. */
  private prefixGrad(out: ort.InferenceSession.OnnxValueMapType, B: number, L: number): Float64Array {
    const S = outputWidth("prefix", this.dims);
    const dz = new Float64Array(L * S);
    for (const s of prefixLayout(this.dims)) {
      for (const [kind, offset] of [
        ["key", s.keyOffset],
        ["value", s.valueOffset],
      ] as const) {
        const g = out[`grad_prefix_${kind}_${s.layer}`].data as FloatArray;
        for (let b = 0; b < B; b++)
          for (let h = 0; h < s.heads; h++)
            for (let l = 0; l < L; l++) {
              const src = ((b * s.heads + h) * L + l) * s.headDim;
              const dst = l * S + offset + h * s.headDim;
              for (let d = 0; d < s.headDim; d++) dz[dst + d] += g[src + d];
            }
      }
    }
    return dz;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
