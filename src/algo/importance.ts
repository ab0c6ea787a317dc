/**
 * Importance-sampling correction of the train/sampler mismatch — [CODE-FW] TRL `vllm_importance_sampling_correction`
 * (ALGORITHMS.md §A notes, "Sampler/trainer mismatch correction"; modes of `vllm_importance_sampling_mode`, cap
 * `vllm_importance_sampling_cap`; verl's `rollout_correction` is equivalent): when completions come from another engine (a server, another
 * precision), the policy loss — not the KL — of each token is weighted by
 *
 * ```
 * token_*:     w_{i,t} = π_old(o_{i,t}) / π_sampler(o_{i,t})            = exp(ℓ_old − ℓ_sampler)
 * sequence_*:  w_i     = Π_t π_old / π_sampler                          = exp(Σ_t m_{i,t}·(ℓ_old − ℓ_sampler))
 * *_truncate:  w ← min(w, C)
 * *_mask:      w ← 0 where w > C
 * ```
 * with ℓ_old the training policy's log-probs before the update (no gradient through w). The trainer applies w
 * by scaling each token's advantage, which equals weighting the per-token policy loss for every surrogate whose
 * loss is positively homogeneous in A (gates clip with dual-clip/δ, sapo, none: w ≥ 0 passes through min/max), so
 * it is offered with `algo.loss.type: surrogate` and those gates only (ETR's bounds grow with |A|). Rows flagged in `exclude` (completions that were not
 * sampled, e.g. DaGRPO anchors) keep w = 1.
 * @module
 */
import { type Tensor, tensor, tidy } from "../tensor/index.js";

export type ImportanceSamplingMode = "token_truncate" | "token_mask" | "sequence_truncate" | "sequence_mask";

/**
 * Sufficient statistics of one step's weights, over the units the mode weights: valid tokens (token modes) or
 * sequences with a valid token (sequence modes). "Raw" is w before truncation / masking (its log still clamped
 * to [−50, 50] against overflow), the others after. Sums of micro-batches and ranks merge exactly
 * (`mergeIsStats`), so the step's metrics do not depend on how the batch was split.
 */
export interface ImportanceSamplingStats {
  /** After truncation / masking. */
  min: number;
  max: number;
  sum: number;
  sumSq: number;
  count: number;
  /** Tokens or sequences set to 0 by a mask mode. */
  masked: number;
  /** Before truncation / masking. */
  rawMin: number;
  rawMax: number;
  rawSum: number;
  rawSumSq: number;
  /** Units whose raw weight exceeds the cap (truncated by a truncate mode, zeroed by a mask mode). */
  capped: number;
}

export const emptyIsStats = (): ImportanceSamplingStats => ({
  min: Number.POSITIVE_INFINITY,
  max: Number.NEGATIVE_INFINITY,
  sum: 0,
  sumSq: 0,
  count: 0,
  masked: 0,
  rawMin: Number.POSITIVE_INFINITY,
  rawMax: Number.NEGATIVE_INFINITY,
  rawSum: 0,
  rawSumSq: 0,
  capped: 0,
});

/** Folds `b` into `a` (micro-batches of one step, or ranks of a data-parallel step). */
export function mergeIsStats(a: ImportanceSamplingStats, b: ImportanceSamplingStats): ImportanceSamplingStats {
  if (b.count === 0) return a;
  if (a.count === 0) return { ...b };
  return {
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    sum: a.sum + b.sum,
    sumSq: a.sumSq + b.sumSq,
    count: a.count + b.count,
    masked: a.masked + b.masked,
    rawMin: Math.min(a.rawMin, b.rawMin),
    rawMax: Math.max(a.rawMax, b.rawMax),
    rawSum: a.rawSum + b.rawSum,
    rawSumSq: a.rawSumSq + b.rawSumSq,
    capped: a.capped + b.capped,
  };
}

/**
 * Effective sample size of weights w_1..w_N normalised to [0, 1]: (Σw)² / (N·Σw²) (1 when all weights are
 * equal, 1/N when one weight carries everything; 0 when every weight is 0).
 */
export const essOf = (sum: number, sumSq: number, count: number): number =>
  count > 0 && sumSq > 0 ? (sum * sum) / (count * sumSq) : 0;

/** The keys `isMetrics` writes (documented in STEP_METRICS). */
export const IS_METRIC_KEYS = [
  "sampler/is_ratio/min",
  "sampler/is_ratio/mean",
  "sampler/is_ratio/max",
  "sampler/is_masked_fraction",
  "sampler/is_raw_ratio/min",
  "sampler/is_raw_ratio/mean",
  "sampler/is_raw_ratio/max",
  "sampler/is_capped_fraction",
  "sampler/is_ess",
  "sampler/is_raw_ess",
] as const;

/**
 * The step's metrics: the applied weights `sampler/is_ratio/{min,mean,max}`, their normalised effective sample
 * size `sampler/is_ess` and the share zeroed by a mask mode `sampler/is_masked_fraction`; the same of the weights
 * before truncation / masking (`sampler/is_raw_ratio/…`, `sampler/is_raw_ess`) and the share over the cap
 * (`sampler/is_capped_fraction`: truncated, or masked). verl's `rollout_corr` and TRL's
 * `vllm_importance_sampling` log the same quantities.
 */
export function isMetrics(s: ImportanceSamplingStats): Record<string, number> {
  if (s.count === 0) return {};
  return {
    "sampler/is_ratio/min": s.min,
    "sampler/is_ratio/mean": s.sum / s.count,
    "sampler/is_ratio/max": s.max,
    "sampler/is_masked_fraction": s.masked / s.count,
    "sampler/is_raw_ratio/min": s.rawMin,
    "sampler/is_raw_ratio/mean": s.rawSum / s.count,
    "sampler/is_raw_ratio/max": s.rawMax,
    "sampler/is_capped_fraction": s.capped / s.count,
    "sampler/is_ess": essOf(s.sum, s.sumSq, s.count),
    "sampler/is_raw_ess": essOf(s.rawSum, s.rawSumSq, s.count),
  };
}

/**
 * The weights w [N, T] (no grad) for training log-probs `lpOld` [N, T], sampler log-probs `lpSampler` [N, T]
 * and loss mask `mask` [N, T], with their statistics.
 */
export function samplerImportanceWeights(
  lpOld: Tensor,
  lpSampler: Tensor,
  mask: Tensor,
  mode: ImportanceSamplingMode,
  cap: number,
  exclude?: Uint8Array,
): { weights: Tensor; stats: ImportanceSamplingStats } {
  return tidy(() => {
    const [N, T] = lpOld.shape as [number, number];
    let valid = mask.gt(0).to("f64"); // [N, T]
    const keepRows = exclude?.includes(1)
      ? tensor(
          Float64Array.from(exclude, (e) => (e ? 0 : 1)),
          { shape: [N, 1], dtype: "f64", device: mask.device },
        )
      : null;
    if (keepRows) valid = valid.mul(keepRows);
    const d = lpOld.detach().to("f64").sub(lpSampler.to("f64")).mul(valid); // [N, T]
    const sequence = mode.startsWith("sequence");
    const raw = (sequence ? d.sum(1, true) : d).clamp(-50, 50).exp(); // [N, 1] or [N, T]
    let w = raw;
    const over = w.gt(cap);
    if (mode.endsWith("truncate")) w = w.clamp(null, cap);
    else w = w.maskedFill(over, 0);
    // statistics over the units that count: valid tokens, or sequences with a valid token
    const unit = sequence ? valid.sum(1, true).gt(0) : valid.gt(0);
    const count = unit.sum().item();
    const stats = emptyIsStats();
    if (count > 0) {
      const vals = w.maskedSelect(unit);
      const rawVals = raw.maskedSelect(unit);
      stats.min = vals.amin().item();
      stats.max = vals.amax().item();
      stats.sum = vals.sum().item();
      stats.sumSq = vals.square().sum().item();
      stats.count = count;
      stats.capped = over.logicalAnd(unit).sum().item();
      stats.masked = mode.endsWith("mask") ? stats.capped : 0;
      stats.rawMin = rawVals.amin().item();
      stats.rawMax = rawVals.amax().item();
      stats.rawSum = rawVals.sum().item();
      stats.rawSumSq = rawVals.square().sum().item();
    }
    let full = sequence ? w.expand(N, T) : w;
    // rows and tokens outside the correction keep weight 1
    full = full.mul(valid).add(valid.neg().add(1));
    return { weights: full.to(lpOld.dtype), stats };
  });
}
