/**
 * Seeded pseudo-random numbers of our own, so that task generation, dataset shuffling and any other
 * host-side randomness is bit-identical on every machine and Node version (Math.random is neither seeded
 * nor portable).
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c), 128 bits
 * of state as four uint32 words, period 2^128 − 1. Only 32-bit integer operations (Math.imul, shifts),
 * which are exact in JavaScript. Seeding: a 64-bit seed goes through SplitMix64
 * (https://prng.di.unimi.it/splitmix64.c); its first two outputs fill the four state words (high word
 * first), which guarantees a non-zero state for every seed.
 *
 * Resume: `rng.state()` is a plain JSON-serialisable object; `Rng.fromState(s)` continues the exact stream.
 * @module
 */
import { CohortError } from "../errors.js";

/** Serialisable generator state: `s` holds the four uint32 state words. */
/** A 32-bit integer hash finaliser (the "lowbias32" mixer): derives independent seeds from seed arithmetic. */
export function mix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

export interface RngState {
  algorithm: "xoshiro128**";
  s: [number, number, number, number];
}

const MASK64 = (1n << 64n) - 1n;

/** One SplitMix64 step: returns [next state, output]. */
function splitmix64(x: bigint): [bigint, bigint] {
  const state = (x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = state;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [state, z ^ (z >> 31n)];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

function isU32(x: unknown): x is number {
  return typeof x === "number" && Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
}

export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  private constructor(s: readonly [number, number, number, number]) {
    [this.#s0, this.#s1, this.#s2, this.#s3] = s;
  }

  /** A generator seeded with a non-negative integer (number up to 2^53 − 1, or bigint up to 2^64 − 1). */
  static fromSeed(seed: number | bigint): Rng {
    if (typeof seed === "number" && !(Number.isSafeInteger(seed) && seed >= 0)) {
      throw new CohortError(`rng seed must be a non-negative safe integer, received ${seed}`);
    }
    const x = BigInt(seed);
    if (x < 0n || x > MASK64) {
      throw new CohortError(`rng seed must be in [0, 2^64 − 1], received ${x}`);
    }
    const [st1, a] = splitmix64(x);
    const [, b] = splitmix64(st1);
    const w = (v: bigint, shift: bigint) => Number((v >> shift) & 0xffffffffn);
    return new Rng([w(a, 32n), w(a, 0n), w(b, 32n), w(b, 0n)]);
  }

  /** Continue the stream saved by `state()`. */
  static fromState(state: RngState): Rng {
    const s = state?.s;
    if (state?.algorithm !== "xoshiro128**" || !Array.isArray(s) || s.length !== 4 || !s.every(isU32)) {
      throw new CohortError(
        `invalid rng state ${JSON.stringify(state)}: expected {algorithm: "xoshiro128**", s: [four uint32]}, as written by Rng.state()`,
      );
    }
    if (s.every((v) => v === 0)) {
      throw new CohortError("invalid rng state: all-zero state words (xoshiro128** never reaches that state)");
    }
    return new Rng([s[0], s[1], s[2], s[3]] as [number, number, number, number]);
  }

  /** A snapshot of the state; the generator is not advanced. */
  state(): RngState {
    return { algorithm: "xoshiro128**", s: [this.#s0, this.#s1, this.#s2, this.#s3] };
  }

  /** An independent copy at the same position. */
  clone(): Rng {
    return new Rng([this.#s0, this.#s1, this.#s2, this.#s3]);
  }

  /** Next uint32 in [0, 2^32). */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.#s1 << 9) >>> 0;
    this.#s2 = (this.#s2 ^ this.#s0) >>> 0;
    this.#s3 = (this.#s3 ^ this.#s1) >>> 0;
    this.#s1 = (this.#s1 ^ this.#s2) >>> 0;
    this.#s0 = (this.#s0 ^ this.#s3) >>> 0;
    this.#s2 = (this.#s2 ^ t) >>> 0;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform float in [0, 1) with 53 random bits (two draws). */
  float(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [min, max] (inclusive), unbiased (rejection sampling); max − min < 2^32. */
  int(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || max < min || max - min >= 0x100000000) {
      throw new CohortError(`rng.int(${min}, ${max}): expected integers with min ≤ max and max − min < 2^32`);
    }
    const range = max - min + 1;
    if (range === 0x100000000) return min + this.nextU32();
    // Largest multiple of `range` that fits in 2^32; draws at or above it are rejected.
    const limit = 0x100000000 - (0x100000000 % range);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return min + (x % range);
    }
  }

  /** Uniform bigint in [0, n), unbiased, for any n ≥ 1. */
  bigintBelow(n: bigint): bigint {
    if (n < 1n) throw new CohortError(`rng.bigintBelow(${n}): n must be ≥ 1`);
    const bits = n.toString(2).length;
    const words = Math.ceil(bits / 32);
    const excess = BigInt(words * 32 - bits);
    for (;;) {
      let x = 0n;
      for (let i = 0; i < words; i++) x = (x << 32n) | BigInt(this.nextU32());
      x >>= excess;
      if (x < n) return x;
    }
  }

  /** True with probability p. */
  bool(p = 0.5): boolean {
    return this.float() < p;
  }

  /** A uniformly chosen element; throws on an empty array. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new CohortError("rng.pick: cannot pick from an empty array");
    return items[this.int(0, items.length - 1)] as T;
  }

  /** Index i with probability weights[i] / Σ weights. Weights must be finite, ≥ 0, with a positive sum. */
  weighted(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) {
      if (!(Number.isFinite(w) && w >= 0)) throw new CohortError(`rng.weighted: weight ${w} is not finite and ≥ 0`);
      total += w;
    }
    if (!(total > 0)) throw new CohortError("rng.weighted: weights must have a positive sum");
    let u = this.float() * total;
    let last = 0;
    for (let i = 0; i < weights.length; i++) {
      const w = weights[i] as number;
      if (w === 0) continue;
      last = i;
      if (u < w) return i;
      u -= w;
    }
    return last; // rounding at the top end
  }

  /** Fisher–Yates shuffle in place; returns the same array. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = items[i] as T;
      items[i] = items[j] as T;
      items[j] = tmp;
    }
    return items;
  }

  /** A shuffled copy. */
  shuffled<T>(items: readonly T[]): T[] {
    return this.shuffle([...items]);
  }
}
