/**
 * Reward combiners and shapers (ALGORITHMS.md §C.1 `RewardCombiner`, `RewardShaper`).
 *
 * A combiner turns the K per-function rewards `[K][N]` (NaN = the function returned null: not
 * applicable) into the scalar reward r_i, and may keep the vector for decoupled estimators (GDPO, BNPO
 * decomposition: every combiner passes it on, with the reward weights). A shaper rewrites r_i from completion and group information (length, log-probs,
 * group accuracy). Both are registered by name (`rewardCombiners`, `rewardShapers`). NaN rewards stay NaN
 * through every shaper.
 * @module
 */
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
import { type ComponentDef, ComponentRegistry, parseParams } from "./component.js";
import { groupMembers, validStats } from "./groups.js";
import type { RewardBatch } from "./types.js";

// ---- combiners ------------------------------------------------------------------------------------

/** What a combiner produces: r_i, and optionally the per-function vector for decoupled estimators. */
export interface CombinedRewards {
  rewards: Float64Array;
  rewardsByFn?: Float64Array[];
  rewardWeights?: Float64Array;
}

/** A reward combiner over `[K][N]` per-function rewards (`weights` come from `algo.reward.weights`). */
export interface CombinerDef<P extends z.ZodType = z.ZodType> extends ComponentDef<P> {
  combine(byFn: Float64Array[], params: z.output<P>): CombinedRewards;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const rewardCombiners = new ComponentRegistry<CombinerDef<any>>("reward combiner");

/** Registers a combiner and returns it as a function of raw options (validated by its params). */
export function defineCombiner<P extends z.ZodType>(
  def: CombinerDef<P>,
): ((byFn: Float64Array[], opts?: z.input<P>) => CombinedRewards) & { def: CombinerDef<P> } {
  rewardCombiners.define(def);
  return Object.assign(
    (byFn: Float64Array[], opts?: z.input<P>) => {
      const p = parseParams(def, opts);
      checkMatrix(byFn, def.name);
      return def.combine(byFn, p);
    },
    { def },
  );
}

const weightsParam = {
  /** One weight per reward function (`rewards[].weight`, `algo.reward.weights`); default 1 each. */
  weights: z.union([z.array(z.number()), z.instanceof(Float64Array)]).optional(),
};

/** `[K][N]` matrix from per-function results, with null/undefined → NaN ("not applicable"). */
export function toRewardMatrix(values: readonly (readonly (number | null | undefined)[])[]): Float64Array[] {
  return values.map((row) => Float64Array.from(row, (v) => (v === null || v === undefined ? Number.NaN : v)));
}

function checkMatrix(byFn: Float64Array[], who: string): number {
  if (byFn.length === 0) throw new ConfigError(`${who} needs at least one reward function`);
  const n = byFn[0]!.length;
  for (const row of byFn) {
    if (row.length !== n) {
      throw new CohortError(`${who}: reward functions returned different batch sizes (${n} and ${row.length})`);
    }
  }
  return n;
}

function weightsFor(k: number, weights: ArrayLike<number> | undefined, who: string): Float64Array {
  if (weights === undefined) return new Float64Array(k).fill(1);
  if (weights.length !== k) {
    throw new ConfigError(
      `${who} has ${weights.length} weights for ${k} reward functions; give one weight each`,
      "weights",
    );
  }
  return Float64Array.from(weights);
}

/** Applies `f` to the non-NaN values of every completion; all-NaN completions get NaN. */
function perCompletion(byFn: Float64Array[], f: (vals: number[], idx: number[]) => number): Float64Array {
  const n = byFn[0]!.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vals: number[] = [];
    const idx: number[] = [];
    byFn.forEach((row, k) => {
      const v = row[i]!;
      if (!Number.isNaN(v)) {
        vals.push(v);
        idx.push(k);
      }
    });
    out[i] = vals.length === 0 ? Number.NaN : f(vals, idx);
  }
  return out;
}

/**
 * Weighted sum (GRPO "sum then normalise", TRL `reward_weights`): `r_i = Σ_k w_k r^(k)_i` over the functions
 * that apply (non-NaN); a completion no function applies to gets NaN (then A = 0, left out of the stats).
 */
// arXiv 2402.03300 [CODE-FW]
export const weightedSum = defineCombiner({
  name: "sum",
  paper: "2402.03300",
  confidence: "CODE-FW",
  doc: "weighted sum Σ_k w_k r^(k)",
  params: z.strictObject(weightsParam),
  combine(byFn, p) {
    const w = weightsFor(byFn.length, p.weights, "sum");
    return {
      rewards: perCompletion(byFn, (vals, idx) => vals.reduce((a, v, j) => a + w[idx[j]!]! * v, 0)),
      rewardWeights: Float64Array.from(w),
    };
  },
});

/** Reward-model ensemble, mean: `R = mean_k R_k` over the models that scored the completion (B.29). */
// arXiv 2310.02743 [PAPER-KNOWN]
export const ensembleMean = defineCombiner({
  name: "ensemble_mean",
  paper: "2310.02743",
  confidence: "PAPER-KNOWN",
  minRewardFunctions: 2,
  doc: "reward-model ensemble: mean over the models",
  params: z.strictObject({}),
  combine: (byFn) => ({ rewards: perCompletion(byFn, (v) => v.reduce((a, b) => a + b, 0) / v.length) }),
});

/** Reward-model ensemble, worst-case optimisation (WCO): `R = min_k R_k` (B.29). */
// arXiv 2310.02743 [PAPER-KNOWN]
export const ensembleWco = defineCombiner({
  name: "ensemble_wco",
  paper: "2310.02743",
  confidence: "PAPER-KNOWN",
  minRewardFunctions: 2,
  doc: "reward-model ensemble, worst case: min over the models",
  params: z.strictObject({}),
  combine: (byFn) => ({ rewards: perCompletion(byFn, (v) => Math.min(...v)) }),
});

/**
 * Reward-model ensemble, uncertainty-weighted optimisation (UWO):
 * `R = mean_k R_k − λ · Var_k(R_k)` with the population variance over the K models (B.29). λ ≥ 0 is a
 * hyperparameter the paper sweeps (default 0.5 here).
 */
// arXiv 2310.02743 [PAPER-KNOWN]
export const ensembleUwo = defineCombiner({
  name: "ensemble_uwo",
  paper: "2310.02743",
  confidence: "PAPER-KNOWN",
  minRewardFunctions: 2,
  doc: "reward-model ensemble, uncertainty-weighted: mean − λ·variance over the models",
  params: z.strictObject({ lambda: z.number().min(0).default(0.5) }),
  combine: (byFn, p) => ({
    rewards: perCompletion(byFn, (v) => {
      const mean = v.reduce((a, b) => a + b, 0) / v.length;
      const variance = v.reduce((a, b) => a + (b - mean) * (b - mean), 0) / v.length;
      return mean - p.lambda * variance;
    }),
  }),
});

// ---- shapers --------------------------------------------------------------------------------------

/** A reward shaper: new rewards r'_i (length N) from the batch. */
export interface ShaperDef<P extends z.ZodType = z.ZodType> extends ComponentDef<P> {
  shape(batch: RewardBatch, params: z.output<P>): Float64Array;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const rewardShapers = new ComponentRegistry<ShaperDef<any>>("reward shaper");

/** Registers a shaper and returns it as a function of raw options (validated by its params). */
export function defineShaper<P extends z.ZodType>(
  def: ShaperDef<P>,
): ((batch: RewardBatch, opts?: z.input<P>) => Float64Array) & { def: ShaperDef<P> } {
  rewardShapers.define(def);
  return Object.assign((batch: RewardBatch, opts?: z.input<P>) => def.shape(batch, parseParams(def, opts)), { def });
}

const overlongParams = z.strictObject({
  /** L_max: the hard generation limit (DAPO paper: 20480). */
  maxLength: z.number().int().positive(),
  /** L_cache: the soft buffer before L_max (DAPO paper: 4096). */
  cacheLength: z.number().int().positive(),
  /** Penalty factor. */
  factor: z.number().min(0).default(1),
  /** "dapo" (B.2, TRL): floor at −factor beyond L_max. "verl": `min(−(L − (L_max − L_cache))/L_cache·factor, 0)`
   * without the floor (differs only when completions can be longer than L_max, A.6). */
  mode: z.enum(["dapo", "verl"]).default("dapo"),
});
export type OverlongOptions = z.input<typeof overlongParams>;

/**
 * DAPO soft overlong penalty of one length L (B.2):
 * `R_len = 0` for `L ≤ L_max − L_cache`; `((L_max − L_cache) − L)/L_cache` inside the buffer; `−1` beyond L_max;
 * times `factor`.
 */
export function overlongPenaltyValue(length: number, opts: OverlongOptions): number {
  const { maxLength, cacheLength } = opts;
  const factor = opts.factor ?? 1; // a direct call may leave the default out
  if (!(cacheLength > 0) || !(maxLength > cacheLength)) {
    throw new ConfigError(
      `overlong penalty needs 0 < cacheLength < maxLength, got cacheLength ${cacheLength}, maxLength ${maxLength}`,
      "cacheLength",
    );
  }
  const expected = maxLength - cacheLength;
  if (length <= expected) return 0;
  const raw = (-(length - expected) / cacheLength) * factor;
  if ((opts.mode ?? "dapo") === "verl") return Math.min(raw, 0);
  return length > maxLength ? -factor : raw;
}

/**
 * DAPO overlong reward shaping: `r_i ← r_i + factor · R_len(|o_i|)` (B.2). Needs `batch.lengths`.
 * The alternative "overlong filtering" is the truncated-completion mask in filters.ts.
 */
// arXiv 2503.14476 [CODE-FW]
export const overlongPenalty = defineShaper({
  name: "overlong",
  paper: "2503.14476",
  confidence: "CODE-FW",
  doc: "soft overlong penalty r + factor·R_len(|o|)",
  params: overlongParams,
  needs: ["lengths"],
  shape(batch, p) {
    const len = batch.lengths;
    if (len === undefined) throw new CohortError("overlong penalty needs batch.lengths (|o_i| per completion); set it");
    return batch.rewards.map((r, i) => r + overlongPenaltyValue(len[i]!, p));
  },
});

/**
 * Unlikeliness reward (B.18): within each group, rank completions by their mean token log-prob under the
 * rollout policy, ascending (`rank 0` = least likely, ties broken by batch order, a stable sort), and
 * `r'_i = r_i · (1 − β_rank · rank_i / G)`. Only rewarded samples change; the most likely correct one is
 * penalised most. Apply before GRPO normalisation. Needs `batch.meanLogprobs`. Default β_rank = 0.25.
 */
// arXiv 2506.02355 [CODE]
export const unlikelinessReward = defineShaper({
  name: "unlikeliness",
  paper: "2506.02355",
  confidence: "CODE",
  doc: "correct completions scaled by 1 − β_rank·rank/G (rank by likelihood)",
  params: z.strictObject({ betaRank: z.number().min(0).default(0.25) }),
  needs: ["meanLogprobs"],
  shape(batch, p) {
    const u = batch.meanLogprobs;
    if (u === undefined) {
      throw new CohortError("unlikeliness reward needs batch.meanLogprobs (mean token log-prob under π_old); set it");
    }
    const out = Float64Array.from(batch.rewards);
    for (const idx of groupMembers(batch.groupIndex)) {
      const order = [...idx].sort((a, b) => u[a]! - u[b]! || a - b);
      const g = idx.length;
      order.forEach((i, rank) => {
        out[i] = batch.rewards[i]! * (1 - (p.betaRank * rank) / g);
      });
    }
    return out;
  },
});

const difficultyParams = z.strictObject({
  /** Multiplier as a function of the group accuracy acc ∈ [0, 1] (set in code). Default `1 + kappa·(1 − acc)`. */
  multiplier: z.custom<(accuracy: number) => number>((v) => typeof v === "function").optional(),
  /** Slope of the default multiplier (1: the hardest groups count twice). */
  kappa: z.number().default(1),
  /** Which reward gives the accuracy: index into `batch.rewardsByFn`, or the combined rewards (default). */
  accuracyFrom: z.number().int().min(0).optional(),
});
export type DifficultyScaleOptions = z.input<typeof difficultyParams>;

/**
 * GRPO-S-style difficulty scaling hook (B.38, design choice: the paper's difficulty measure is not
 * available): `r'_i = r_i · f(acc_q)`, with acc_q the mean reward of the group (the accuracy for binary
 * rewards) and f a user function (default `1 + κ(1 − acc)`, harder questions weigh more). Note that a
 * per-group constant factor cancels under group std normalisation (GRPO `scale: "group"`, except for eps);
 * it changes training only with `scale: "none"`/`"batch"`, RLOO, REINFORCE++ or token-count aggregators.
 */
// GRPO-S (DR-IRL) arXiv 2503.18991 [ABSTRACT] (design choice)
export const difficultyScale = defineShaper({
  name: "difficulty_scale",
  paper: "2503.18991",
  confidence: "ABSTRACT",
  doc: "r·f(acc_q), harder groups weigh more (design choice)",
  params: difficultyParams,
  shape: (batch, p) => difficultyScaled(batch, p),
});

function difficultyScaled(batch: RewardBatch, opts: z.output<typeof difficultyParams>): Float64Array {
  const kappa = opts.kappa;
  const f = opts.multiplier ?? ((acc: number) => 1 + kappa * (1 - acc));
  let source = batch.rewards;
  if (opts.accuracyFrom !== undefined) {
    const row = batch.rewardsByFn?.[opts.accuracyFrom];
    if (row === undefined) {
      throw new ConfigError(
        `accuracyFrom = ${opts.accuracyFrom} but batch.rewardsByFn has ${batch.rewardsByFn?.length ?? 0} rows`,
        "accuracyFrom",
      );
    }
    source = row;
  }
  const out = Float64Array.from(batch.rewards);
  for (const idx of groupMembers(batch.groupIndex)) {
    const st = validStats(source, idx);
    if (st.n === 0) continue;
    const m = f(st.mean);
    if (!Number.isFinite(m)) throw new CohortError(`difficulty multiplier returned ${m} for accuracy ${st.mean}`);
    for (const i of idx) out[i] = batch.rewards[i]! * m;
  }
  return out;
}

// ---- rank rewards ---------------------------------------------------------------------------------

/**
 * Rank-GRPO rank-level reward (B.23), causal suffix DCG: `r_{i,k} = Σ_{j≥k} rel_{i,j} / log2(j + 1)` with
 * ranks j counted from 1 (`"log-decay"`), or `r_{i,k} = rel_{i,k}` (`"exp-inf"`). Returns one row per
 * completion, for `batch.rankRewards`.
 */
// arXiv 2510.20150 [CODE]
export function rankRewards(
  relevance: readonly (readonly number[])[],
  mode: "log-decay" | "exp-inf" = "log-decay",
): Float64Array[] {
  return relevance.map((rel) => {
    const out = new Float64Array(rel.length);
    if (mode === "exp-inf") {
      out.set(rel);
      return out;
    }
    let suffix = 0;
    for (let k = rel.length - 1; k >= 0; k--) {
      suffix += rel[k]! / Math.log2(k + 2);
      out[k] = suffix;
    }
    return out;
  });
}
