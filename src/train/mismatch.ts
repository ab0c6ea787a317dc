/**
 * The sampler/trainer log-prob mismatch by completion length: sums per bucket that micro-batches and ranks add
 * up exactly, and the `sampler/logprob_abs_diff/<bucket>` metrics made from them.
 * @module
 */
import type { Tensor } from "../tensor/index.js";

/**
 * Completion-length buckets of the mismatch metric: `[lo, hi)` in completion tokens, named
 * `sampler/logprob_abs_diff/<name>`.
 */
export const MISMATCH_LENGTH_BUCKETS: readonly { name: string; lo: number; hi: number }[] = [
  { name: "len_0_64", lo: 0, hi: 64 },
  { name: "len_64_256", lo: 64, hi: 256 },
  { name: "len_256_plus", lo: 256, hi: Number.POSITIVE_INFINITY },
];

/** Per bucket of `MISMATCH_LENGTH_BUCKETS`: Σ|ℓ_sampler − ℓ_trainer| and the sampled tokens behind it. */
export type MismatchBuckets = { sum: number; tok: number }[];

export const emptyMismatchBuckets = (): MismatchBuckets => MISMATCH_LENGTH_BUCKETS.map(() => ({ sum: 0, tok: 0 }));

/** Adds rows (completion `lengths[i]`, Σ|diff| `sums[i]` over `tokens[i]` sampled tokens) to `b`. */
export function addMismatchRows(
  b: MismatchBuckets,
  lengths: ArrayLike<number>,
  sums: ArrayLike<number>,
  tokens: ArrayLike<number>,
): void {
  for (let i = 0; i < lengths.length; i++) {
    const k = MISMATCH_LENGTH_BUCKETS.findIndex((x) => (lengths[i] as number) >= x.lo && (lengths[i] as number) < x.hi);
    const t = b[k] as { sum: number; tok: number };
    t.sum += sums[i] as number;
    t.tok += tokens[i] as number;
  }
}

/** Folds `b` into `a` (ranks of a data-parallel step). */
export const mergeMismatchBuckets = (a: MismatchBuckets, b: MismatchBuckets): MismatchBuckets =>
  a.map((x, k) => ({ sum: x.sum + (b[k]?.sum ?? 0), tok: x.tok + (b[k]?.tok ?? 0) }));

/** `sampler/logprob_abs_diff/<bucket>`: token-weighted mean |diff| per bucket, null when it has no token. */
export function mismatchBucketMetrics(b: MismatchBuckets): Record<string, number | null> {
  return Object.fromEntries(
    MISMATCH_LENGTH_BUCKETS.map((x, k) => {
      const t = b[k] as { sum: number; tok: number };
      return [`sampler/logprob_abs_diff/${x.name}`, t.tok > 0 ? t.sum / t.tok : null];
    }),
  );
}

/**
 * Per row, Σ_t |ℓ_trainer − ℓ_sampler| over the sampled tokens (`tokens` [N, T], 1 = counted) and their number,
 * in float64.
 */
export function mismatchRowSums(
  trainerLp: Tensor,
  samplerLp: Tensor,
  tokens: Tensor,
): { sums: number[]; tokens: number[] } {
  const w = tokens.to("f64");
  return {
    sums: trainerLp.to("f64").sub(samplerLp.to("f64")).abs().mul(w).sum(1).toArray(),
    tokens: w.sum(1).toArray(),
  };
}
