/**
 * AdamW over named Float32Array parameters, matching PyTorch's `torch.optim.AdamW` (amsgrad off,
 * maximize off): decoupled weight decay `p -= lr·wd·p`, then the bias-corrected Adam step
 * `p -= lr · m̂ / (sqrt(v̂) + eps)`. Moments are kept in float64 and the update is computed in
 * float64 before rounding back to float32, so long runs do not lose small updates to float32 rounding
 * of the moments. Pure arithmetic in a fixed order: deterministic for the same inputs.
 */
import { SktError } from "../errors.js";

export type ParamMap = Map<string, Float32Array> | Record<string, Float32Array>;

export interface AdamWOptions {
  /** Learning rate used when `step` is not given one (default 1e-3, as PyTorch). */
  lr?: number;
  /** Default [0.9, 0.999]. */
  betas?: [number, number];
  /** Default 1e-8. */
  eps?: number;
  /** Decoupled weight decay; default 0.01 (PyTorch's AdamW default). */
  weightDecay?: number;
  /**
   * Parameters that get no weight decay (biases, LayerNorm gains): a list of names, or a predicate
   * on the name. Decaying biases only shrinks offsets the model needs, hence the usual exclusion.
   */
  noDecay?: Iterable<string> | ((name: string) => boolean);
}

interface ParamState {
  param: Float32Array;
  m: Float64Array;
  v: Float64Array;
  /** Per-parameter step count, as PyTorch: a parameter skipped (no gradient) keeps its own bias correction. */
  step: number;
  decay: boolean;
}

export class AdamW {
  readonly lr: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly state = new Map<string, ParamState>();

  constructor(params: ParamMap, opts: AdamWOptions = {}) {
    this.lr = opts.lr ?? 1e-3;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01;
    checkNonNegative("lr", this.lr);
    checkBeta("betas[0]", this.beta1);
    checkBeta("betas[1]", this.beta2);
    checkNonNegative("eps", this.eps);
    checkNonNegative("weightDecay", this.weightDecay);

    const noDecay = toPredicate(opts.noDecay);
    for (const [name, param] of entries(params)) {
      this.state.set(name, {
        param,
        m: new Float64Array(param.length),
        v: new Float64Array(param.length),
        step: 0,
        decay: !noDecay(name),
      });
    }
  }

  /** Names of the parameters this optimizer updates, in registration order. */
  get names(): string[] {
    return [...this.state.keys()];
  }

  /** Steps taken by a parameter (0 before its first gradient). */
  stepCount(name: string): number {
    return this.state.get(name)?.step ?? 0;
  }

  /**
   * One update, in place on the parameter arrays. `grads` holds a gradient per parameter name;
   * parameters without one are left untouched (no decay either), like PyTorch params whose
   * `.grad` is None. `lr` overrides the constructor's rate for this step (feed it a schedule).
   */
  step(grads: ParamMap, lr: number = this.lr): void {
    checkNonNegative("lr", lr);
    const b1 = this.beta1;
    const b2 = this.beta2;
    const gradEntries = entries(grads);
    // Validate everything first so a bad gradient never leaves half the parameters updated.
    for (const [name, g] of gradEntries) {
      const s = this.state.get(name);
      if (!s) throw new SktError("internal", "unknown_parameter", `AdamW: gradient for unknown parameter "${name}"`);
      if (g.length !== s.param.length) {
        throw new SktError(
          "internal",
          "shape_mismatch",
          `AdamW: gradient for "${name}" has ${g.length} values, parameter has ${s.param.length}`,
        );
      }
    }
    for (const [name, g] of gradEntries) {
      const s = this.state.get(name)!;
      s.step += 1;
      const bc1 = 1 - b1 ** s.step;
      const bc2 = 1 - b2 ** s.step;
      const stepSize = lr / bc1;
      const sqrtBc2 = Math.sqrt(bc2);
      const decayFactor = s.decay ? 1 - lr * this.weightDecay : 1;
      const { param, m, v } = s;
      for (let i = 0; i < param.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        // Same operation order as PyTorch's single-tensor path: decay, then m / (sqrt(v)/sqrt(bc2) + eps).
        param[i] = param[i] * decayFactor - (stepSize * mi) / (Math.sqrt(vi) / sqrtBc2 + this.eps);
      }
    }
  }
}

export interface LinearScheduleOptions {
  warmupSteps: number;
  totalSteps: number;
  peakLr: number;
}

/**
 * Linear warmup from 0 to `peakLr` over `warmupSteps`, then linear decay to 0 at `totalSteps`,
 * the same curve as Hugging Face's `get_linear_schedule_with_warmup`: lr(0) = 0 when there is
 * warmup, lr(warmupSteps) = peakLr, lr(totalSteps) = 0, and 0 after. `step` is the 0-based index of
 * the optimizer step about to be taken.
 */
export function linearSchedule(opts: LinearScheduleOptions): (step: number) => number {
  const { warmupSteps, totalSteps, peakLr } = opts;
  checkNonNegative("peakLr", peakLr);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new SktError(
      "bad_request",
      "invalid_schedule",
      `warmupSteps must be a non-negative integer, got ${warmupSteps}`,
    );
  }
  if (!Number.isInteger(totalSteps) || totalSteps < 0) {
    throw new SktError(
      "bad_request",
      "invalid_schedule",
      `totalSteps must be a non-negative integer, got ${totalSteps}`,
    );
  }
  return (step: number): number => {
    if (step < warmupSteps) return (peakLr * Math.max(0, step)) / Math.max(1, warmupSteps);
    return (peakLr * Math.max(0, totalSteps - step)) / Math.max(1, totalSteps - warmupSteps);
  };
}

function entries(params: ParamMap): [string, Float32Array][] {
  return params instanceof Map ? [...params.entries()] : Object.entries(params);
}

function toPredicate(noDecay: AdamWOptions["noDecay"]): (name: string) => boolean {
  if (noDecay === undefined) return () => false;
  if (typeof noDecay === "function") return noDecay;
  const set = new Set(noDecay);
  return (name) => set.has(name);
}

function checkNonNegative(name: string, x: number): void {
  if (!Number.isFinite(x) || x < 0) {
    throw new SktError("bad_request", "invalid_optimizer_config", `${name} must be a finite number >= 0, got ${x}`);
  }
}

function checkBeta(name: string, x: number): void {
  if (!Number.isFinite(x) || x < 0 || x >= 1) {
    throw new SktError("bad_request", "invalid_optimizer_config", `${name} must be in [0, 1), got ${x}`);
  }
}
