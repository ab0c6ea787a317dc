/**
 * Importance-ratio levels (ALGORITHMS.md §C.1 slot `ImportanceRatio`). Every level returns the ratio as an
 * [N, T] tensor (a per-sequence or per-item ratio is broadcast over its tokens), so the clip/gate functions
 * are shape-agnostic and the aggregator decides how sequences are weighted.
 *
 * Log-ratio clamps for numerical safety (§0.4, verl): the token log-ratio `ℓ − ℓ_old` is clamped to
 * `[−logRatioClamp, logRatioClamp]` (default 20) before `exp`; sequence and item log-ratios are clamped to
 * `≤ seqLogRatioClamp` (default 10). A clamped entry has zero gradient.
 * @module
 */
import { CohortError } from "../errors.js";
import { type Tensor, tidy, where, zeros } from "../tensor/index.js";
import { Registry } from "./registry.js";

export const RATIO_LEVELS = ["token", "sequence", "sequence-token", "item", "hybrid", "on-policy"] as const;
export type RatioLevel = (typeof RATIO_LEVELS)[number];

export interface RatioInput {
  /** ℓ [N, T], with grad. */
  logprobs: Tensor;
  /** ℓ_old [N, T], no grad. */
  oldLogprobs: Tensor;
  /** Loss mask [N, T] (weights allowed; a sequence log-ratio is the mask-weighted mean). */
  mask: Tensor;
  /** Item id per token [N, T] (integer, −1 = no item), for the `item` level. */
  itemIndex?: Tensor;
  /** Per-token entropy [N, T], for the entropy-guided `hybrid` mix. */
  entropy?: Tensor;
}

export interface RatioOptions {
  /** |ℓ − ℓ_old| bound before exp (token level). Default 20. */
  logRatioClamp?: number;
  /** Upper bound of a sequence/item log-ratio. Default 10. */
  seqLogRatioClamp?: number;
  /** Hybrid (DHPO) mixing weight of the token branch: 0.5 ("average") or normalised entropy ("entropy"). */
  hybridMix?: "average" | "entropy";
}

/** One branch of a hybrid ratio: the gate is applied to each branch with its own bounds, then mixed. */
export interface RatioBranch {
  name: "token" | "sequence";
  ratio: Tensor;
  /** Mixing weight ([N, T] or a number); the branch weights sum to 1. */
  weight: Tensor | number;
}

export interface RatioResult {
  /** ρ [N, T] (for a hybrid level: the mixed, unclipped ratio — used for metrics). */
  ratio: Tensor;
  /** Present for the hybrid level only. */
  branches?: RatioBranch[];
}

export type RatioLevelFn = (input: RatioInput, opts: RatioOptions) => RatioResult;

export const ratioLevels = new Registry<RatioLevelFn>("importance ratio level");

/** Clamped token log-ratio `clamp(ℓ − ℓ_old, −c, c)` [N, T]. */
export function tokenLogRatio(input: RatioInput, opts: RatioOptions = {}): Tensor {
  const c = opts.logRatioClamp ?? 20;
  return tidy(() => input.logprobs.sub(input.oldLogprobs).clamp(-c, c));
}

/** Mask-weighted mean of the token log-ratios per sequence, [N, 1] (0 for a fully masked sequence). */
export function sequenceLogRatio(input: RatioInput, opts: RatioOptions = {}): Tensor {
  return tidy(() => {
    const lr = tokenLogRatio(input, opts);
    const n = input.mask.sum(-1, true);
    const safeN = n.maskedFill(n.gt(0).logicalNot(), 1);
    return lr.mul(input.mask).sum(-1, true).div(safeN);
  });
}

// Token-level PPO/GRPO ratio ρ = exp(ℓ − ℓ_old).  arXiv 2402.03300 [CODE-FW]
export function tokenRatio(input: RatioInput, opts: RatioOptions = {}): RatioResult {
  return { ratio: tidy(() => tokenLogRatio(input, opts).exp()) };
}

/**
 * On-policy ratio ρ = exp(ℓ − sg(ℓ)): value 1, gradient ∇ℓ, whatever π_old is (GTPO's pure on-policy
 * REINFORCE-style ratio, B.9 step 3). Equals the token ratio when ℓ_old = sg(ℓ) (one update per batch).
 */
// GTPO on-policy ratio.  arXiv 2508.03772 [CODE]
export function onPolicyRatio(input: RatioInput): RatioResult {
  return { ratio: tidy(() => input.logprobs.sub(input.logprobs.detach()).exp()) };
}

// GSPO sequence ratio s_i = exp(mean_t (ℓ − ℓ_old)), broadcast over the tokens.  arXiv 2507.18071 [CODE-FW]
export function sequenceRatio(input: RatioInput, opts: RatioOptions = {}): RatioResult {
  const c = opts.seqLogRatioClamp ?? 10;
  return {
    ratio: tidy(() => {
      const s = sequenceLogRatio(input, opts).clamp(null, c).exp(); // [N, 1]
      const [n, t] = input.logprobs.shape as [number, number];
      return s.expand(n, t);
    }),
  };
}

// GSPO-token: log s_{i,t} = sg(log s_i) + ℓ_{i,t} − sg(ℓ_{i,t}); value s_i, per-token gradient.
// arXiv 2507.18071 [CODE-FW]
export function sequenceTokenRatio(input: RatioInput, opts: RatioOptions = {}): RatioResult {
  const c = opts.seqLogRatioClamp ?? 10;
  return {
    ratio: tidy(() => {
      const seq = sequenceLogRatio(input, opts).detach();
      const lp = input.logprobs;
      return lp.sub(lp.detach()).add(seq).clamp(null, c).exp();
    }),
  };
}

// Rank-GRPO item ratio: geometric mean of the token ratios inside each item (rank position), applied to the
// item's tokens; tokens outside any item (id < 0) keep their token ratio.  arXiv 2510.20150 [CODE]
export function itemRatio(input: RatioInput, opts: RatioOptions = {}): RatioResult {
  const items = input.itemIndex;
  if (items === undefined) {
    throw new CohortError(
      "ratio level 'item' needs LossBatch.itemIndex (the item id of every token, −1 outside items); " +
        "pack it with the batch or use ratio level 'token'",
    );
  }
  const c = opts.seqLogRatioClamp ?? 10;
  return {
    ratio: tidy(() => {
      const lr = tokenLogRatio(input, opts);
      const ids = items.to("i64");
      const numItems = Math.max(0, ids.amax().item()) + 1;
      const outside = ids.lt(0);
      const bin = where(outside, numItems, ids); // an extra bin collects the tokens outside items
      const [n] = lr.shape as [number, number];
      const acc = zeros([n, numItems + 1], { dtype: lr.dtype, device: lr.device });
      const sums = acc.scatterAdd(1, bin, lr.mul(input.mask));
      const counts = acc.scatterAdd(1, bin, input.mask.detach().to(lr.dtype));
      const means = sums.div(counts.maskedFill(counts.gt(0).logicalNot(), 1));
      const itemLr = means.gather(1, bin).clamp(null, c);
      return where(outside, lr, itemLr).exp();
    }),
  };
}

// DHPO hybrid token+sequence ratio; the gate clips each branch to its own trust region before mixing
// (policy-loss.ts). Mixing weight of the token branch: 0.5, or per-token entropy / max entropy of the sequence.
// arXiv 2601.05607 [ABSTRACT] — the mixing formula is a design choice.
export function hybridRatio(input: RatioInput, opts: RatioOptions = {}): RatioResult {
  const mix = opts.hybridMix ?? "average";
  if (mix === "entropy" && input.entropy === undefined) {
    throw new CohortError(
      "hybrid ratio with mix 'entropy' needs LossBatch.entropy; compute log-probs with entropy or use mix 'average'",
    );
  }
  return tidy(() => {
    const tok = tokenRatio(input, opts).ratio;
    const seq = sequenceRatio(input, opts).ratio;
    let w: Tensor | number = 0.5;
    if (mix === "entropy" && input.entropy !== undefined) {
      const h = input.entropy.detach().to(tok.dtype).mul(input.mask.gt(0).to(tok.dtype));
      const hMax = h.amax(-1, true);
      w = h.div(hMax.maskedFill(hMax.gt(0).logicalNot(), 1));
    }
    const ratio = typeof w === "number" ? tok.mul(w).add(seq.mul(1 - w)) : tok.mul(w).add(seq.mul(w.rsub(1)));
    const branches: RatioBranch[] = [
      { name: "token", ratio: tok, weight: w },
      { name: "sequence", ratio: seq, weight: typeof w === "number" ? 1 - w : w.rsub(1) },
    ];
    return { ratio, branches };
  });
}

ratioLevels.register("token", tokenRatio);
ratioLevels.register("on-policy", onPolicyRatio);
ratioLevels.register("sequence", sequenceRatio);
ratioLevels.register("sequence-token", sequenceTokenRatio);
ratioLevels.register("item", itemRatio);
ratioLevels.register("hybrid", hybridRatio);

/** The ratio at a named level. */
export function importanceRatio(level: RatioLevel | string, input: RatioInput, opts: RatioOptions = {}): RatioResult {
  return ratioLevels.get(level, "ratio.level")(input, opts);
}
