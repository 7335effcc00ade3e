/**
 * A deliberately naive float64 implementation of Hugging Face's BertModel/RobertaModel/
 * DistilBertModel and LlamaModel/MistralModel/Qwen2Model forward passes (plain loops over one
 * unpadded sequence), written from the transformers sources and sharing no code with the graph
 * builder: the oracle for the checkpoints the tests generate.
 */
export interface NaiveLinear {
  /** [out][in], torch layout. */
  w: number[][];
  b: number[] | null;
}

export interface NaiveNorm {
  w: number[];
  b: number[];
}

export interface NaiveEncoder {
  kind: "encoder";
  heads: number;
  eps: number;
  act: "gelu" | "gelu_new" | "gelu_pytorch_tanh";
  /** First position id (RoBERTa: pad_token_id + 1). */
  positionOffset: number;
  word: number[][];
  position: number[][];
  /** The token-type table, or null (DistilBERT). */
  tokenTypes: number[][] | null;
  embeddingNorm: NaiveNorm;
  layers: {
    q: NaiveLinear;
    k: NaiveLinear;
    v: NaiveLinear;
    o: NaiveLinear;
    attentionNorm: NaiveNorm;
    ffnIn: NaiveLinear;
    ffnOut: NaiveLinear;
    ffnNorm: NaiveNorm;
  }[];
}

export type NaiveRopeScaling =
  | null
  | { rope_type: "linear"; factor: number }
  | {
      rope_type: "llama3";
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    };

export interface NaiveDecoder {
  kind: "decoder";
  heads: number;
  kvHeads: number;
  headDim: number;
  eps: number;
  theta: number;
  scaling: NaiveRopeScaling;
  embed: number[][];
  layers: {
    inputNorm: number[];
    q: NaiveLinear;
    k: NaiveLinear;
    v: NaiveLinear;
    o: NaiveLinear;
    postNorm: number[];
    gate: NaiveLinear;
    up: NaiveLinear;
    down: NaiveLinear;
  }[];
  norm: number[];
}

/**
 * SK-Tuning's inputs on top of the token ids: soft-prompt rows in front of the token rows, or a
 * per-layer key/value prefix (rows [P][kvHeads·headDim], heads side by side), which acts as a
 * cache of P earlier positions: the text's positions start at P and every text query sees it.
 */
export interface NaiveExtras {
  /** Token type of each id (default 0); soft-prompt rows are type 0. */
  typeIds?: number[];
  prompt?: number[][];
  prefix?: { keys: number[][][]; values: number[][][] };
}

function apply(l: NaiveLinear, x: number[]): number[] {
  return l.w.map((row, o) => row.reduce((s, w, i) => s + w * x[i], l.b ? l.b[o] : 0));
}

function layerNorm(x: number[], n: NaiveNorm, eps: number): number[] {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((v, i) => ((v - mean) / Math.sqrt(variance + eps)) * n.w[i] + n.b[i]);
}

function rmsNorm(x: number[], w: number[], eps: number): number[] {
  const ms = x.reduce((a, b) => a + b * b, 0) / x.length;
  return x.map((v, i) => (v / Math.sqrt(ms + eps)) * w[i]);
}

/** erf by its Maclaurin series (|x| ≤ 3) or continued fraction (beyond): float64-accurate here. */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a > 6) return Math.sign(x);
  if (a <= 3) {
    let term = x;
    let sum = x;
    for (let n = 1; n < 200; n++) {
      term *= (-x * x) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(a) = exp(−a²)/√π · 1/(a + 1/2/(a + 1/(a + 3/2/(a + …)))) (Lentz-free backward evaluation)
  let f = 0;
  for (let k = 60; k >= 1; k--) f = k / 2 / (a + f);
  const erfc = Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
  return Math.sign(x) * (1 - erfc);
}

function activation(kind: NaiveEncoder["act"], x: number): number {
  if (kind === "gelu") return 0.5 * x * (1 + erf(x / Math.SQRT2));
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
}

function softmax(xs: number[]): number[] {
  const m = Math.max(...xs);
  const e = xs.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

function meanRows(rows: number[][]): number[] {
  return rows[0].map((_, j) => rows.reduce((s, r) => s + r[j], 0) / rows.length);
}

/**
 * Attention of every query row over the allowed keys; heads split evenly over the row width. The
 * first `cached` keys are a prefix every query sees; with `causal`, query i also sees text keys ≤ i.
 */
function attend(
  q: number[][],
  k: number[][],
  v: number[][],
  heads: number,
  kvHeads: number,
  headDim: number,
  causal: boolean,
  cached = 0,
): number[][] {
  const group = heads / kvHeads;
  return q.map((qRow, i) => {
    const out: number[] = [];
    for (let h = 0; h < heads; h++) {
      const kh = Math.floor(h / group);
      const qh = qRow.slice(h * headDim, (h + 1) * headDim);
      const keys = causal ? k.slice(0, cached + i + 1) : k;
      const scores = keys.map((kRow) => qh.reduce((s, x, j) => s + x * kRow[kh * headDim + j], 0) / Math.sqrt(headDim));
      const p = softmax(scores);
      for (let j = 0; j < headDim; j++) out.push(p.reduce((s, pk, t) => s + pk * v[t][kh * headDim + j], 0));
    }
    return out;
  });
}

export function naiveEncoderLastHidden(m: NaiveEncoder, ids: number[], extras: NaiveExtras = {}): number[][] {
  const P = extras.prefix?.keys[0].length ?? 0;
  const rows = [...(extras.prompt ?? []), ...ids.map((id) => m.word[id])];
  const types = [...(extras.prompt ?? []).map(() => 0), ...ids.map((_, i) => extras.typeIds?.[i] ?? 0)];
  let x = rows.map((word, t) => {
    const row = word.map(
      (w, j) => w + m.position[m.positionOffset + P + t][j] + (m.tokenTypes ? m.tokenTypes[types[t]][j] : 0),
    );
    return layerNorm(row, m.embeddingNorm, m.eps);
  });
  const H = m.word[0].length;
  const headDim = H / m.heads;
  for (const [n, l] of m.layers.entries()) {
    const k = [...(extras.prefix?.keys[n] ?? []), ...x.map((r) => apply(l.k, r))];
    const v = [...(extras.prefix?.values[n] ?? []), ...x.map((r) => apply(l.v, r))];
    const ctx = attend(
      x.map((r) => apply(l.q, r)),
      k,
      v,
      m.heads,
      m.heads,
      headDim,
      false,
    );
    x = x.map((r, t) =>
      layerNorm(
        apply(l.o, ctx[t]).map((a, j) => a + r[j]),
        l.attentionNorm,
        m.eps,
      ),
    );
    x = x.map((r) =>
      layerNorm(
        apply(
          l.ffnOut,
          apply(l.ffnIn, r).map((a) => activation(m.act, a)),
        ).map((a, j) => a + r[j]),
        l.ffnNorm,
        m.eps,
      ),
    );
  }
  return x;
}

/** transformers' rope init: default, linear and llama3 (_compute_llama3_parameters). */
export function naiveInverseFrequencies(headDim: number, theta: number, scaling: NaiveRopeScaling): number[] {
  const base = Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  if (!scaling) return base;
  if (scaling.rope_type === "linear") return base.map((f) => f / scaling.factor);
  const lowWavelen = scaling.original_max_position_embeddings / scaling.low_freq_factor;
  const highWavelen = scaling.original_max_position_embeddings / scaling.high_freq_factor;
  return base.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    const scaled = wavelen > lowWavelen ? f / scaling.factor : f;
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (!medium) return scaled;
    const smooth =
      (scaling.original_max_position_embeddings / wavelen - scaling.low_freq_factor) /
      (scaling.high_freq_factor - scaling.low_freq_factor);
    return ((1 - smooth) * scaled) / scaling.factor + smooth * scaled;
  });
}

/** Rotates every head of `row` at `position` (rotate-half layout). */
function rope(row: number[], heads: number, headDim: number, position: number, inv: number[]): number[] {
  const out = [...row];
  const half = headDim / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      const a = row[h * headDim + i];
      const b = row[h * headDim + half + i];
      const angle = position * inv[i];
      out[h * headDim + i] = a * Math.cos(angle) - b * Math.sin(angle);
      out[h * headDim + half + i] = b * Math.cos(angle) + a * Math.sin(angle);
    }
  }
  return out;
}

export function naiveDecoderLastHidden(m: NaiveDecoder, ids: number[], extras: NaiveExtras = {}): number[][] {
  const inv = naiveInverseFrequencies(m.headDim, m.theta, m.scaling);
  const P = extras.prefix?.keys[0].length ?? 0;
  let x = [...(extras.prompt ?? []), ...ids.map((id) => m.embed[id])].map((r) => [...r]);
  for (const [n, l] of m.layers.entries()) {
    const h = x.map((r) => rmsNorm(r, l.inputNorm, m.eps));
    const q = h.map((r, t) => rope(apply(l.q, r), m.heads, m.headDim, P + t, inv));
    // The prefix is a cache: its keys are used as given (already rotated when they were cached).
    const k = [
      ...(extras.prefix?.keys[n] ?? []),
      ...h.map((r, t) => rope(apply(l.k, r), m.kvHeads, m.headDim, P + t, inv)),
    ];
    const v = [...(extras.prefix?.values[n] ?? []), ...h.map((r) => apply(l.v, r))];
    const ctx = attend(q, k, v, m.heads, m.kvHeads, m.headDim, true, P);
    x = x.map((r, t) => apply(l.o, ctx[t]).map((a, j) => a + r[j]));
    x = x.map((r) => {
      const n = rmsNorm(r, l.postNorm, m.eps);
      const gate = apply(l.gate, n);
      const up = apply(l.up, n);
      return apply(
        l.down,
        gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]),
      ).map((a, j) => a + r[j]);
    });
  }
  return x.map((r) => rmsNorm(r, m.norm, m.eps));
}

/** The sentence vector /embed returns: mean over all positions of the last hidden state. */
export function naiveEmbedding(m: NaiveEncoder | NaiveDecoder, ids: number[], extras: NaiveExtras = {}): number[] {
  return meanRows(
    m.kind === "encoder" ? naiveEncoderLastHidden(m, ids, extras) : naiveDecoderLastHidden(m, ids, extras),
  );
}
