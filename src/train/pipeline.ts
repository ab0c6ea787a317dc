/**
 * From per-function rewards to advantages and loss masks, following the slot order of ALGORITHMS.md §C:
 * RewardCombiner → RewardShapers → AdvantageEstimator → AdvantageReweighters → SampleFilters (group-level
 * statistics, after the advantages) → TokenFilters. Each slot is looked up by name in its registry, so a
 * config names components and this module only wires them.
 * @module
 */
import { advantageEstimators } from "../algo/advantage.js";
import type { AlgoConfig } from "../algo/config.js";
import { sampleFilters } from "../algo/filters.js";
import { combineAndShape } from "../algo/reward-stage.js";
import { advantageReweighters } from "../algo/reweight.js";
import type { Advantages, RewardBatch } from "../algo/types.js";
import type { Tensor } from "../tensor/index.js";

/** Reweighters that take `entropy` (mean token entropy per completion) as an option. */
const ENTROPY_REWEIGHTERS = new Set(["gtpo_entropy"]);

export interface RewardStage {
  batch: RewardBatch;
  advantages: Advantages;
  /** 1 = the completion goes into the loss (sample filters may drop whole groups). */
  keep: Uint8Array;
  metrics: Record<string, number>;
}

/** Rewards [K][N] (NaN = not applicable) → combined, shaped rewards and advantages. */
export function rewardsToAdvantages(
  algo: AlgoConfig,
  byFn: Float64Array[],
  base: Omit<RewardBatch, "rewards" | "rewardsByFn">,
  extra: { mask?: Tensor; meanEntropy?: () => Float64Array } = {},
): RewardStage {
  const metrics: Record<string, number> = {};
  const batch = combineAndShape(algo, byFn, base, extra.mask);
  const estName = algo.advantage.estimator;
  const estimate = advantageEstimators.get(estName, "algo.advantage.estimator");
  let advantages = estimate(batch, algo.advantage.options);
  for (const [i, r] of algo.reweighters.entries()) {
    const reweight = advantageReweighters.get(r.name, `algo.reweighters.${i}.name`);
    // entropy-aware reweighters read each completion's mean token entropy under the current policy
    const opts =
      ENTROPY_REWEIGHTERS.has(r.name) && extra.meanEntropy ? { ...r.options, entropy: extra.meanEntropy() } : r.options;
    advantages = reweight(advantages, batch, opts);
  }
  const keep = new Uint8Array(batch.rewards.length).fill(1);
  for (const [i, f] of algo.sampleFilters.entries()) {
    const res = sampleFilters.get(f.name, `algo.sampleFilters.${i}.name`)(batch, f.options);
    res.keep.forEach((k, j) => {
      if (!k) keep[j] = 0;
    });
    metrics[`filter/${f.name}/removed_groups`] = res.removedGroups;
    metrics[`filter/${f.name}/removed_sequences`] = res.removedSequences;
    if (res.metrics !== undefined) Object.assign(metrics, res.metrics);
  }
  return { batch, advantages, keep, metrics };
}

/** Does the algorithm need π_ref log-probs (a KL term with β > 0, possibly scheduled)? */
export function needsReference(algo: AlgoConfig): boolean {
  return (
    algo.rewardKl !== undefined ||
    algo.regularizers.some((r) => {
      const reg = r as { type: string; beta?: unknown };
      return reg.type === "kl" && (typeof reg.beta !== "number" || reg.beta > 0);
    })
  );
}
