/**
 * The first slots of a step (ALGORITHMS.md §C): RewardCombiner → RewardShapers, and the sample filters, as
 * functions of a validated config. Shared by the pipeline (pipeline.ts) and by dynamic sampling's keep/drop
 * decision (src/rollout/dynamic.ts), so both judge the same rewards.
 * @module
 */

import type { Tensor } from "../tensor/index.js";
import type { AlgoConfig } from "./config.js";
import { sampleFilters } from "./filters.js";
import { rewardCombiners, rewardShapers } from "./rewards.js";
import type { RewardBatch } from "./types.js";

/** Per-function rewards [K][N] (NaN = not applicable) → a RewardBatch of combined, shaped rewards. */
export function combineAndShape(
  algo: AlgoConfig,
  byFn: Float64Array[],
  base: Omit<RewardBatch, "rewards" | "rewardsByFn">,
  mask?: Tensor,
): RewardBatch {
  const combineOpts: Record<string, unknown> = { ...algo.reward.options };
  if (algo.reward.weights !== undefined) combineOpts.weights = algo.reward.weights;
  const combiner = rewardCombiners.get(algo.reward.combine, "algo.reward.combine");
  const combined = combiner.combine(byFn, combiner.params.parse(combineOpts));
  const batch: RewardBatch = { ...base, rewards: combined.rewards, rewardsByFn: combined.rewardsByFn ?? byFn };
  // the reward weights travel with the per-function rewards: GDPO's estimator weighs each normalised reward
  const weights = combined.rewardWeights ?? (algo.reward.weights ? Float64Array.from(algo.reward.weights) : undefined);
  if (weights !== undefined) batch.rewardWeights = weights;
  if (mask !== undefined) batch.mask = mask;
  for (const [i, s] of algo.shapers.entries()) {
    batch.rewards = rewardShapers.get(s.name, `algo.shapers.${i}.name`).shape(batch, s.options);
  }
  return batch;
}

/** The sample filters of a config over a batch: which completions stay, and the filters' metrics. */
export function applySampleFilters(
  algo: AlgoConfig,
  batch: RewardBatch,
  filters = algo.sampleFilters,
): { keep: Uint8Array; metrics: Record<string, number> } {
  const keep = new Uint8Array(batch.rewards.length).fill(1);
  const metrics: Record<string, number> = {};
  for (const [i, f] of filters.entries()) {
    const res = sampleFilters.get(f.name, `algo.sampleFilters.${i}.name`).filter(batch, f.options);
    res.keep.forEach((k, j) => {
      if (!k) keep[j] = 0;
    });
    metrics[`filter/${f.name}/removed_groups`] = res.removedGroups;
    metrics[`filter/${f.name}/removed_sequences`] = res.removedSequences;
    if (res.metrics !== undefined) Object.assign(metrics, res.metrics);
  }
  return { keep, metrics };
}
