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

export interface ImportanceSamplingStats {
  /** Over valid tokens (token modes) or sequences (sequence modes), after truncation / masking. */
  min: number;
  max: number;
  sum: number;
  count: number;
  /** Tokens or sequences set to 0 by a mask mode. */
  masked: number;
}

export const emptyIsStats = (): ImportanceSamplingStats => ({
  min: Number.POSITIVE_INFINITY,
  max: Number.NEGATIVE_INFINITY,
  sum: 0,
  count: 0,
  masked: 0,
});

/** Folds `b` into `a` (micro-batches of one step). */
export function mergeIsStats(a: ImportanceSamplingStats, b: ImportanceSamplingStats): ImportanceSamplingStats {
  return {
    min: Math.min(a.min, b.min),
    max: Math.max(a.max, b.max),
    sum: a.sum + b.sum,
    count: a.count + b.count,
    masked: a.masked + b.masked,
  };
}

/** The step's metrics: `sampler/is_ratio/{min,mean,max}` and `sampler/is_masked_fraction`. */
export function isMetrics(s: ImportanceSamplingStats): Record<string, number> {
  if (s.count === 0) return {};
  return {
    "sampler/is_ratio/min": s.min,
    "sampler/is_ratio/mean": s.sum / s.count,
    "sampler/is_ratio/max": s.max,
    "sampler/is_masked_fraction": s.masked / s.count,
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
    let w = (sequence ? d.sum(1, true) : d).clamp(-50, 50).exp(); // [N, 1] or [N, T]
    const over = w.gt(cap);
    if (mode.endsWith("truncate")) w = w.clamp(null, cap);
    else w = w.maskedFill(over, 0);
    // statistics over the units that count: valid tokens, or sequences with a valid token
    const unit = sequence ? valid.sum(1, true).gt(0) : valid.gt(0);
    const count = unit.sum().item();
    const stats = emptyIsStats();
    if (count > 0) {
      const vals = w.maskedSelect(unit);
      stats.min = vals.amin().item();
      stats.max = vals.amax().item();
      stats.sum = vals.sum().item();
      stats.count = count;
      stats.masked = mode.endsWith("mask") ? over.logicalAnd(unit).sum().item() : 0;
    }
    let full = sequence ? w.expand(N, T) : w;
    // rows and tokens outside the correction keep weight 1
    full = full.mul(valid).add(valid.neg().add(1));
    return { weights: full.to(lpOld.dtype), stats };
  });
}
