/**
 * Sample and token filters (ALGORITHMS.md §C.1 `SampleFilter`, `TokenFilter`).
 *
 * Sample filters decide which completions stay in the batch and report how many groups, sequences and
 * tokens they removed, so aggregators can use the right global counts. Run them after the advantage
 * computation when the statistic is group-level (DAPO); estimators with batch statistics (scale "batch",
 * REINFORCE++, GDPO) should be computed on the filtered batch, as verl does (A.6).
 * Token filters return a new [N, T] mask (it may hold weights, 0..W) and the number of valid tokens they
 * removed (mask > 0 before, 0 after). Registered in `sampleFilters` and `tokenFilters`.
 * @module
 */
import { CohortError, ConfigError } from "../errors.js";
import { type Tensor, tensor, tidy, where } from "../tensor/index.js";
import { checkOptions, devOf, groupMembers, validStats } from "./advantage.js";
import { DAGRPO_PAIRS_OPTION_KEYS, dagrpoPairsFilter } from "./pair-mask.js";
import { Registry } from "./registry.js";
import type { Advantages, RewardBatch } from "./types.js";

// ---- sample filters -------------------------------------------------------------------------------

export interface SampleFilterResult {
  /** 1 = keep completion i. */
  keep: Uint8Array;
  keptGroups: number;
  removedGroups: number;
  removedSequences: number;
  /** Valid completion tokens of the removed sequences (from `batch.lengths`, else `batch.mask`). */
  removedTokens: number;
  /** The filter's own metrics (namespaced keys), logged with the step's. */
  metrics?: Record<string, number>;
}

export type SampleFilter = {
  filter(batch: RewardBatch, opts?: object): SampleFilterResult;
}["filter"];

export const sampleFilters = new Registry<SampleFilter>("sample filter");

function tokensPerRow(batch: RewardBatch, who: string): Float64Array {
  if (batch.lengths !== undefined) return Float64Array.from(batch.lengths);
  const mask = batch.mask;
  if (mask !== undefined) return tidy(() => mask.to("f64").gt(0).to("f64").sum(1).data() as Float64Array);
  throw new CohortError(`${who} reports removed tokens and needs batch.lengths or batch.mask; set one`);
}

export interface ZeroStdOptions {
  /** Which values decide "all equal": the combined rewards (default) or `batch.rewardsByFn[k]` (verl's
   * configurable metric, e.g. accuracy). */
  metric?: number;
  /** Groups whose std ≤ tolerance are removed. Default 0 (exactly equal). */
  tolerance?: number;
  /** Keep groups with a single valid completion (verl keeps them). Default false: they carry A = 0. */
  keepSingletons?: boolean;
}

/**
 * DAPO dynamic-sampling filter: drop every group whose rewards are all equal (`std_g = 0`, accuracy 0 or 1),
 * since their GRPO advantages are exactly 0 (B.2). NaN rewards are ignored when testing equality; a group
 * with no valid reward is removed. The refill loop (sample more prompts until B groups) is the rollout
 * wrapper's job.
 */
// arXiv 2503.14476 [CODE-FW]
export function zeroStdFilter(batch: RewardBatch, opts: ZeroStdOptions = {}): SampleFilterResult {
  checkOptions("zero_std", opts, SAMPLE_FILTER_OPTION_KEYS.zero_std);
  let values = batch.rewards;
  if (opts.metric !== undefined) {
    const row = batch.rewardsByFn?.[opts.metric];
    if (row === undefined) {
      throw new ConfigError(`metric = ${opts.metric} but batch.rewardsByFn has ${batch.rewardsByFn?.length ?? 0} rows`);
    }
    values = row;
  }
  const tol = opts.tolerance ?? 0;
  const tokens = tokensPerRow(batch, "zero_std filter");
  const keep = new Uint8Array(values.length);
  const res = { keep, keptGroups: 0, removedGroups: 0, removedSequences: 0, removedTokens: 0 };
  for (const idx of groupMembers(batch.groupIndex)) {
    const st = validStats(values, idx, "population");
    const kept = st.n === 1 ? opts.keepSingletons === true : st.n > 1 && st.std > tol;
    if (kept) {
      res.keptGroups++;
      for (const i of idx) keep[i] = 1;
    } else {
      res.removedGroups++;
      res.removedSequences += idx.length;
      for (const i of idx) res.removedTokens += tokens[i]!;
    }
  }
  return res;
}

/** Option keys of each sample filter, for config-time validation. */
export const SAMPLE_FILTER_OPTION_KEYS = {
  zero_std: ["metric", "tolerance", "keepSingletons"],
  dagrpo_pairs: DAGRPO_PAIRS_OPTION_KEYS,
} as const satisfies Record<string, readonly string[]>;

sampleFilters.register("zero_std", zeroStdFilter);
sampleFilters.register("dagrpo_pairs", dagrpoPairsFilter);

// ---- token filters --------------------------------------------------------------------------------

/** What a token filter may read. Tensors are [N, T]. */
export interface TokenFilterInput {
  /** Current loss mask (may hold weights). */
  mask: Tensor;
  /** Per-token entropy (top-entropy mask). */
  entropy?: Tensor;
  /** Sampled token ids (GTPO conflicts). */
  tokenIds?: Tensor;
  /** Whether each completion hit the length limit. */
  truncated?: Uint8Array;
  /** Advantages (GTPO: the sign decides positive/negative completions). */
  advantages?: Advantages;
  groupIndex?: Int32Array;
  /** A per-token score for generic filters (CAPO curvature, …). */
  score?: Tensor;
}

export interface TokenFilterResult {
  mask: Tensor;
  /** Tokens with mask > 0 before and 0 after. */
  removedTokens: number;
}

export type TokenFilter = {
  filter(input: TokenFilterInput, opts?: object): TokenFilterResult;
}["filter"];

export const tokenFilters = new Registry<TokenFilter>("token filter");

function countRemoved(before: Tensor, after: Tensor): number {
  return tidy(() => before.gt(0).logicalAnd(after.le(0)).to("f64").sum().item());
}

function need<T>(value: T | undefined, what: string, who: string): T {
  if (value === undefined) throw new CohortError(`${who} needs input.${what}; set it`);
  return value;
}

/**
 * Truncated-completion masking (TRL `mask_truncated_completions`, DAPO's "overlong filtering"): every token
 * of a completion that hit the length limit leaves the loss. The completion still counts in its group's
 * mean and std (the advantages were computed before), A.6.
 */
// arXiv 2503.14476 [CODE-FW]
export function truncatedMask(input: TokenFilterInput, opts: object = {}): TokenFilterResult {
  checkOptions("truncated", opts, TOKEN_FILTER_OPTION_KEYS.truncated);
  const truncated = need(input.truncated, "truncated", "truncated mask");
  const n = input.mask.shape[0]!;
  if (truncated.length !== n) throw new CohortError(`truncated has ${truncated.length} entries for ${n} rows`);
  const keep = Float64Array.from(truncated, (t) => (t ? 0 : 1));
  const mask = tidy(() =>
    input.mask.mul(tensor(keep, { shape: [n, 1], device: devOf(input.mask) }).to(input.mask.dtype)),
  );
  return { mask, removedTokens: countRemoved(input.mask, mask) };
}

/**
 * The `q`-quantile of the entropies of the valid tokens (mask > 0), with linear interpolation (as
 * `torch.quantile`). With several ranks, gather the valid entropies of all ranks first (A.6).
 */
export function entropyQuantileThreshold(entropy: Tensor, mask: Tensor, q: number): number {
  if (!(q >= 0 && q <= 1)) throw new ConfigError(`quantile must be in [0, 1], got ${q}`, "quantile");
  const sorted = tidy(() => entropy.to("f64").maskedSelect(mask.gt(0)).sort()[0].data() as Float64Array);
  if (sorted.length === 0) return Number.POSITIVE_INFINITY;
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export interface TopEntropyOptions {
  /** Keep the top ρ fraction of valid tokens by entropy (TRL `top_entropy_quantile`). Default 0.2. */
  quantile?: number;
  /** Precomputed threshold (e.g. over all ranks); overrides `quantile`. */
  threshold?: number;
}

/**
 * Top-entropy token mask (TRL `top_entropy_quantile`, "80/20" high-entropy minority tokens): threshold =
 * the (1 − ρ)-quantile of the entropies of all valid tokens; tokens with entropy ≥ threshold stay. The loss
 * normaliser is unchanged (keep using the counts of the unfiltered mask), A.6. ρ = 1 keeps every token.
 */
// arXiv 2506.01939 [CODE-FW]
export function topEntropyMask(input: TokenFilterInput, opts: TopEntropyOptions = {}): TokenFilterResult {
  checkOptions("top_entropy", opts, TOKEN_FILTER_OPTION_KEYS.top_entropy);
  const entropy = need(input.entropy, "entropy", "top-entropy mask");
  const rho = opts.quantile ?? 0.2;
  const thr = opts.threshold ?? entropyQuantileThreshold(entropy, input.mask, 1 - rho);
  const mask = tidy(() => where(entropy.ge(thr), input.mask, 0).to(input.mask.dtype));
  return { mask, removedTokens: countRemoved(input.mask, mask) };
}

export interface GtpoConflictOptions {
  /** Weight W of a conflict token in a positive completion. Default 2.0. */
  conflictWeight?: number;
}

/** GTPO weights plus the per-completion conflict counts n_conflict_i (≥ 1 for active completions). */
export interface GtpoConflictResult extends TokenFilterResult {
  conflicts: Int32Array;
}

/**
 * GTPO conflict-token weights (B.9.1). Within a group, a token is a forward conflict when the same token id
 * sits at the same position in at least one positive (A > 0) and one negative (A < 0) completion and every
 * earlier token of its completion is a conflict too (initial run); backward conflicts use positions counted
 * from the end of each completion. Weight `δ_fwd · δ_bwd` with δ = 1 (no conflict), W (conflict, A_i > 0),
 * 0 (conflict, A_i < 0): skip negative updates and amplify positive ones on shared tokens. Completions with
 * A = 0 keep their mask. Valid tokens are those with mask > 0, assumed left-aligned (right padding).
 * Host-side over [N, T]; needs tokenIds, advantages (sequence kind) and groupIndex.
 */
// arXiv 2508.03772 [CODE]
export function gtpoConflictWeights(input: TokenFilterInput, opts: GtpoConflictOptions = {}): GtpoConflictResult {
  checkOptions("gtpo_conflict", opts, TOKEN_FILTER_OPTION_KEYS.gtpo_conflict);
  const ids = need(input.tokenIds, "tokenIds", "gtpo conflict weights");
  const adv = need(input.advantages, "advantages", "gtpo conflict weights");
  const groupIndex = need(input.groupIndex, "groupIndex", "gtpo conflict weights");
  if (adv.kind !== "sequence")
    throw new CohortError("gtpo conflict weights need sequence advantages (one per completion)");
  const w = opts.conflictWeight ?? 2;
  const [n, t] = input.mask.shape as [number, number];
  const m = tidy(() => input.mask.to("f64").data() as Float64Array);
  const tok = tidy(() => ids.to("f64").data() as Float64Array);
  const len = new Int32Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < t; j++) if (m[i * t + j]! > 0) len[i] = len[i]! + 1;
  const weights = Float64Array.from(m);
  const conflicts = new Int32Array(n);
  for (const idx of groupMembers(groupIndex)) {
    const pos = idx.filter((i) => adv.values[i]! > 0);
    const neg = idx.filter((i) => adv.values[i]! < 0);
    if (pos.length === 0 && neg.length === 0) continue;
    // position p of completion i: forward = absolute index p; backward = index len_i − 1 − p.
    const keysOf = (rows: number[], backward: boolean) => {
      const s = new Set<string>();
      for (const i of rows) {
        for (let p = 0; p < len[i]!; p++) {
          const col = backward ? len[i]! - 1 - p : p;
          s.add(`${p}:${tok[i * t + col]}`);
        }
      }
      return s;
    };
    const fwdPos = keysOf(pos, false);
    const fwdNeg = keysOf(neg, false);
    const bwdPos = keysOf(pos, true);
    const bwdNeg = keysOf(neg, true);
    for (const i of [...pos, ...neg]) {
      const positive = adv.values[i]! > 0;
      const conflict = new Uint8Array(t);
      const deltaF = new Float64Array(t).fill(1);
      const deltaB = new Float64Array(t).fill(1);
      for (let p = 0; p < len[i]!; p++) {
        const k = `${p}:${tok[i * t + p]}`;
        if (!(fwdPos.has(k) && fwdNeg.has(k))) break;
        deltaF[p] = positive ? w : 0;
        conflict[p] = 1;
      }
      for (let p = 0; p < len[i]!; p++) {
        const col = len[i]! - 1 - p;
        const k = `${p}:${tok[i * t + col]}`;
        if (!(bwdPos.has(k) && bwdNeg.has(k))) break;
        deltaB[col] = positive ? w : 0;
        conflict[col] = 1;
      }
      let count = 0;
      for (let j = 0; j < t; j++) {
        weights[i * t + j] = deltaF[j]! * deltaB[j]! * m[i * t + j]!;
        if (conflict[j] && m[i * t + j]! > 0) count++;
      }
      conflicts[i] = Math.max(count, 1);
    }
  }
  const mask = tidy(() => tensor(weights, { shape: [n, t], device: devOf(input.mask) }).to(input.mask.dtype));
  return { mask, removedTokens: countRemoved(input.mask, mask), conflicts };
}

export interface ScoreFilterOptions {
  /** Tokens whose score is above (default) or below the threshold leave the loss. */
  threshold?: number;
  drop?: "above" | "below";
  /** Or a custom rule: a [N, T] keep-weight tensor from (score, mask). */
  rule?: (score: Tensor, mask: Tensor) => Tensor;
}

/**
 * Generic token-filter hook (CAPO curvature masking, B.14): the caller supplies a per-token score
 * (`input.score`, e.g. a curvature estimate) and either a threshold (`drop: "above"`, default) or a custom
 * rule returning keep-weights. CAPO's own score is not specified; this is a hook, not the method.
 */
// CAPO arXiv 2510.00819 [ABSTRACT] (hook only)
export function scoreTokenFilter(input: TokenFilterInput, opts: ScoreFilterOptions = {}): TokenFilterResult {
  checkOptions("score", opts, TOKEN_FILTER_OPTION_KEYS.score);
  const score = need(input.score, "score", "score token filter");
  const rule = opts.rule;
  const mask = tidy(() => {
    if (rule !== undefined) return input.mask.mul(rule(score, input.mask).to(input.mask.dtype));
    const thr = opts.threshold;
    if (thr === undefined) throw new ConfigError("score filter needs a threshold or a rule", "threshold");
    const dropIt = (opts.drop ?? "above") === "above" ? score.gt(thr) : score.lt(thr);
    return where(dropIt, 0, input.mask).to(input.mask.dtype);
  });
  return { mask, removedTokens: countRemoved(input.mask, mask) };
}

/** Option keys of each token filter, for config-time validation (score's `rule` is a function: set it in code). */
export const TOKEN_FILTER_OPTION_KEYS = {
  truncated: [],
  top_entropy: ["quantile", "threshold"],
  gtpo_conflict: ["conflictWeight"],
  score: ["threshold", "drop", "rule"],
} as const satisfies Record<string, readonly string[]>;

tokenFilters.register("truncated", truncatedMask);
tokenFilters.register("top_entropy", topEntropyMask);
tokenFilters.register("gtpo_conflict", gtpoConflictWeights);
tokenFilters.register("score", scoreTokenFilter);
