/**
 * A small seeded PRNG for training: weight init, data shuffling, dropout masks. Math.random cannot
 * be seeded, and a run must be reproducible from its seed, so everything random in training draws
 * from one of these.
 *
 * Generator: xoshiro128** (Blackman & Vigna), 128-bit state, period 2^128 - 1, seeded by running
 * splitmix32 over the seed so nearby seeds (1, 2, 3...) give unrelated streams. Pure 32-bit integer
 * arithmetic via Math.imul, so the sequence is identical on every platform and Node version.
 */
import { SktError } from "../errors.js";

const TWO_POW_32 = 0x1_0000_0000;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Box–Muller produces normals in pairs; the second is kept for the next call. */
  private spare: number | null = null;

  /** `seed` is reduced to an unsigned 32-bit integer (fractional parts dropped). */
  constructor(seed: number) {
    if (!Number.isFinite(seed)) {
      throw new SktError("bad_request", "invalid_seed", `RNG seed must be a finite number, got ${seed}`);
    }
    let x = Math.trunc(seed) >>> 0;
    const splitmix = (): number => {
      x = (x + 0x9e3779b9) | 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = splitmix();
    this.s1 = splitmix();
    this.s2 = splitmix();
    this.s3 = splitmix();
    // The all-zero state is a fixed point of xoshiro; splitmix32 practically never yields it, but be safe.
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next raw output as an unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), with 32 bits of resolution (plenty for init and shuffling). */
  next(): number {
    return this.nextUint32() / TWO_POW_32;
  }

  /** Uniform integer in [0, n). Rejection sampling, so there is no modulo bias even for large n. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new SktError("bad_request", "invalid_range", `Rng.int(n) needs an integer 1 <= n <= 2^32, got ${n}`);
    }
    // Largest multiple of n that fits in 2^32; draws at or above it would favour small results.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const u = this.nextUint32();
      if (u < limit) return u % n;
    }
  }

  /** Normal with the given mean and standard deviation (Box–Muller). */
  normal(mean = 0, std = 1): number {
    if (this.spare !== null) {
      const z = this.spare;
      this.spare = null;
      return mean + std * z;
    }
    // 1 - next() is in (0, 1], so log never sees 0.
    const u1 = 1 - this.next();
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    this.spare = r * Math.sin(theta);
    return mean + std * r * Math.cos(theta);
  }

  /** Fisher–Yates shuffle in place; returns the same array for chaining. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
