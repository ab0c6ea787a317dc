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
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
import { type Tensor, tensor, tidy, where } from "../tensor/index.js";
import { type ComponentDef, ComponentRegistry, parseParams } from "./component.js";
import { devOf, groupMembers, validStats } from "./groups.js";
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

/** A sample filter: which completions stay in the batch (after the advantages). */
export interface SampleFilterDef<P extends z.ZodType = z.ZodType> extends ComponentDef<P> {
  filter(batch: RewardBatch, params: z.output<P>): SampleFilterResult;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const sampleFilters = new ComponentRegistry<SampleFilterDef<any>>("sample filter");

/** Registers a sample filter and returns it as a function of raw options (validated by its params). */
export function defineSampleFilter<P extends z.ZodType>(
  def: SampleFilterDef<P>,
): ((batch: RewardBatch, opts?: z.input<P>) => SampleFilterResult) & { def: SampleFilterDef<P> } {
  sampleFilters.define(def);
  return Object.assign((batch: RewardBatch, opts?: z.input<P>) => def.filter(batch, parseParams(def, opts)), { def });
}

function tokensPerRow(batch: RewardBatch, who: string): Float64Array {
  if (batch.lengths !== undefined) return Float64Array.from(batch.lengths);
  const mask = batch.mask;
  if (mask !== undefined) return tidy(() => mask.to("f64").gt(0).to("f64").sum(1).data() as Float64Array);
  throw new CohortError(`${who} reports removed tokens and needs batch.lengths or batch.mask; set one`);
}

const zeroStdParams = z.strictObject({
  /** Which values decide "all equal": the combined rewards (default) or `batch.rewardsByFn[k]` (verl's
   * configurable metric, e.g. accuracy). */
  metric: z.number().int().min(0).optional(),
  /** Groups whose std ≤ tolerance are removed (0: exactly equal). */
  tolerance: z.number().min(0).default(0),
  /** Keep groups with a single valid completion (verl keeps them); false: they carry A = 0. */
  keepSingletons: z.boolean().default(false),
});
export type ZeroStdOptions = z.input<typeof zeroStdParams>;

/**
 * DAPO dynamic-sampling filter: drop every group whose rewards are all equal (`std_g = 0`, accuracy 0 or 1),
 * since their GRPO advantages are exactly 0 (B.2). NaN rewards are ignored when testing equality; a group
 * with no valid reward is removed. The refill loop (sample more prompts until B groups) is the rollout
 * wrapper's job.
 */
// arXiv 2503.14476 [CODE-FW]
export const zeroStdFilter = defineSampleFilter({
  name: "zero_std",
  paper: "2503.14476",
  confidence: "CODE-FW",
  doc: "drops every group whose rewards are all equal",
  params: zeroStdParams,
  filter: (batch, p) => zeroStd(batch, p),
});

function zeroStd(batch: RewardBatch, opts: z.output<typeof zeroStdParams>): SampleFilterResult {
  let values = batch.rewards;
  if (opts.metric !== undefined) {
    const row = batch.rewardsByFn?.[opts.metric];
    if (row === undefined) {
      throw new ConfigError(`metric = ${opts.metric} but batch.rewardsByFn has ${batch.rewardsByFn?.length ?? 0} rows`);
    }
    values = row;
  }
  const tol = opts.tolerance;
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

// ---- token filters --------------------------------------------------------------------------------

/** What a token filter may read (by need). Tensors are [N, T] over the whole batch of the step. */
export interface TokenFilterInput {
  /** Current loss mask (may hold weights). */
  mask: Tensor;
  /** Per-token entropy (need `tokenEntropy`). */
  entropy?: Tensor;
  /** Sampled token ids (need `tokenIds`). */
  tokenIds?: Tensor;
  /** Whether each completion hit the length limit. */
  truncated?: Uint8Array;
  /** The estimator's advantages, before any reweighter (GTPO's conflict sets come from them, B.9 step 1). */
  advantages?: Advantages;
  groupIndex?: Int32Array;
  /** A per-token score computed by the caller (need `tokenScore`). */
  score?: Tensor;
  /** A per-token curvature score (need `curvature`, see `curvatureScore`). */
  curvature?: Tensor;
}

export interface TokenFilterResult {
  /** The new loss mask (absent: unchanged). */
  mask?: Tensor;
  /** Per-token multipliers of the advantages [N, T] (GTPO's δ): they scale A, the loss normaliser keeps |o_i|. */
  advantageWeights?: Tensor;
  /** Tokens with mask > 0 before and 0 after (or with a zero advantage weight). */
  removedTokens: number;
  /** The filter's own metrics (namespaced keys). */
  metrics?: Record<string, number>;
}

/** A token filter: a new loss mask and/or per-token advantage weights. */
export interface TokenFilterDef<P extends z.ZodType = z.ZodType> extends ComponentDef<P> {
  filter(input: TokenFilterInput, params: z.output<P>): TokenFilterResult;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const tokenFilters = new ComponentRegistry<TokenFilterDef<any>>("token filter");

/** Registers a token filter and returns it as a function of raw options (validated by its params). */
export function defineTokenFilter<P extends z.ZodType, R extends TokenFilterResult>(
  def: ComponentDef<P> & { filter(input: TokenFilterInput, params: z.output<P>): R },
) {
  tokenFilters.define(def);
  const run = (input: TokenFilterInput, opts?: z.input<P>): R => def.filter(input, parseParams(def, opts));
  return Object.assign(run, { def });
}

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
export const truncatedMask = defineTokenFilter({
  name: "truncated",
  paper: "2503.14476",
  confidence: "CODE-FW",
  doc: "removes every token of a completion that hit the length limit",
  params: z.strictObject({}),
  needs: ["truncated"],
  filter(input) {
    const truncated = need(input.truncated, "truncated", "truncated mask");
    const n = input.mask.shape[0]!;
    if (truncated.length !== n) throw new CohortError(`truncated has ${truncated.length} entries for ${n} rows`);
    const keep = Float64Array.from(truncated, (t) => (t ? 0 : 1));
    const mask = tidy(() =>
      input.mask.mul(tensor(keep, { shape: [n, 1], device: devOf(input.mask) }).to(input.mask.dtype)),
    );
    return { mask, removedTokens: countRemoved(input.mask, mask) };
  },
});

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

const topEntropyParams = z.strictObject({
  /** Keep the top ρ fraction of valid tokens by entropy (TRL `top_entropy_quantile`). */
  quantile: z.number().min(0).max(1).default(0.2),
  /** Precomputed threshold (e.g. over all ranks); overrides `quantile`. */
  threshold: z.number().optional(),
});
export type TopEntropyOptions = z.input<typeof topEntropyParams>;

/**
 * Top-entropy token mask (TRL `top_entropy_quantile`, "80/20" high-entropy minority tokens): threshold =
 * the (1 − ρ)-quantile of the entropies of all valid tokens of the step; tokens with entropy ≥ threshold stay.
 * The loss normaliser is unchanged (keep using the counts of the unfiltered mask), A.6. ρ = 1 keeps every token.
 */
// arXiv 2506.01939 [CODE-FW]
export const topEntropyMask = defineTokenFilter({
  name: "top_entropy",
  paper: "2506.01939",
  confidence: "CODE-FW",
  doc: "keeps the top-ρ fraction of tokens by entropy",
  params: topEntropyParams,
  needs: ["tokenEntropy"],
  filter(input, p) {
    const entropy = need(input.entropy, "entropy", "top-entropy mask");
    const thr = p.threshold ?? entropyQuantileThreshold(entropy, input.mask, 1 - p.quantile);
    const mask = tidy(() => where(entropy.ge(thr), input.mask, 0).to(input.mask.dtype));
    return { mask, removedTokens: countRemoved(input.mask, mask) };
  },
});

const gtpoConflictParams = z.strictObject({
  /** Weight W of a conflict token in a positive completion. */
  conflictWeight: z.number().min(0).default(2),
  /** Divide each completion's weights by max(1, n_conflict_i) (B.9 step 3, the reference code's extra
   * division; off by default, as the spec treats it as optional). */
  divideByConflicts: z.boolean().default(false),
});
export type GtpoConflictOptions = z.input<typeof gtpoConflictParams>;

/** GTPO weights plus the per-completion conflict counts n_conflict_i (≥ 1 for active completions). */
export interface GtpoConflictResult extends TokenFilterResult {
  advantageWeights: Tensor;
  conflicts: Int32Array;
}

/**
 * GTPO conflict-token weights (B.9.1). Within a group, a token is a forward conflict when the same token id
 * sits at the same position in at least one positive (A > 0) and one negative (A < 0) completion and every
 * earlier token of its completion is a conflict too (initial run); backward conflicts use positions counted
 * from the end of each completion. Weight `δ_fwd · δ_bwd` with δ = 1 (no conflict), W (conflict, A_i > 0),
 * 0 (conflict, A_i < 0): skip negative updates and amplify positive ones on shared tokens. δ multiplies the
 * token advantages (`advantageWeights`); the loss mask, and so the normaliser |o_i|, are unchanged (B.9 step 3:
 * `mean_t(−ρ·A·δ)` over the completion's own tokens). Completions with A = 0 keep weight 1. The signs come
 * from the estimator's advantages (before the entropy shift, B.9 step 1 before step 2). Valid tokens are those
 * with mask > 0, left-aligned (right padding). Host-side over [N, T].
 */
// arXiv 2508.03772 [CODE]
export const gtpoConflictWeights = defineTokenFilter({
  name: "gtpo_conflict",
  paper: "2508.03772",
  confidence: "CODE",
  doc: "conflict-token weights δ ∈ {0, 1, W} multiplying the token advantages",
  params: gtpoConflictParams,
  needs: ["tokenIds"],
  filter: (input, p): GtpoConflictResult => gtpoConflicts(input, p),
});

function gtpoConflicts(input: TokenFilterInput, opts: z.output<typeof gtpoConflictParams>): GtpoConflictResult {
  const ids = need(input.tokenIds, "tokenIds", "gtpo conflict weights");
  const adv = need(input.advantages, "advantages", "gtpo conflict weights");
  const groupIndex = need(input.groupIndex, "groupIndex", "gtpo conflict weights");
  if (adv.kind !== "sequence")
    throw new CohortError("gtpo conflict weights need sequence advantages (one per completion)");
  const w = opts.conflictWeight;
  const [n, t] = input.mask.shape as [number, number];
  const m = tidy(() => input.mask.to("f64").data() as Float64Array);
  const tok = tidy(() => ids.to("f64").data() as Float64Array);
  const len = new Int32Array(n);
  for (let i = 0; i < n; i++) for (let j = 0; j < t; j++) if (m[i * t + j]! > 0) len[i] = len[i]! + 1;
  const weights = new Float64Array(n * t).fill(1);
  const conflicts = new Int32Array(n);
  let zeroed = 0;
  let amplified = 0;
  for (const idx of groupMembers(groupIndex)) {
    const pos = idx.filter((i) => adv.values[i]! > 0);
    const neg = idx.filter((i) => adv.values[i]! < 0);
    if (pos.length === 0 || neg.length === 0) continue;
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
      for (let j = 0; j < t; j++) if (conflict[j] && m[i * t + j]! > 0) count++;
      conflicts[i] = Math.max(count, 1);
      const div = opts.divideByConflicts ? conflicts[i]! : 1;
      for (let j = 0; j < t; j++) {
        if (!(m[i * t + j]! > 0)) continue;
        const d = deltaF[j]! * deltaB[j]!;
        weights[i * t + j] = d / div;
        if (d === 0) zeroed++;
        else if (d > 1) amplified++;
      }
    }
  }
  const advantageWeights = tidy(() =>
    tensor(weights, { shape: [n, t], device: devOf(input.mask) }).to(input.mask.dtype),
  );
  return {
    advantageWeights,
    removedTokens: zeroed,
    conflicts,
    metrics: { "gtpo/zeroed_tokens": zeroed, "gtpo/amplified_tokens": amplified },
  };
}

/**
 * Per-token curvature score of CAPO (B.14, design choice): `c_t = ‖∇_z log π(o_t)‖² = 1 − 2·p(o_t) + Σ_v p_v²`,
 * the squared norm of the token's log-prob gradient with respect to its logits z (p = softmax(z/T)), i.e. the
 * token's term of the empirical Fisher in logit space: tokens the policy found unlikely have the largest
 * curvature of the surrogate and move the update most. `logits` [N, T, V], `tokens` [N, T]; no gradient.
 */
export function curvatureScore(logits: Tensor, tokens: Tensor, temperature = 1): Tensor {
  return tidy(() => {
    const p = logits.detach().to("f64").div(temperature).softmax(-1);
    const pa = p.gather(-1, tokens.to("i64").unsqueeze(-1)).squeeze(-1);
    return p.square().sum(-1).sub(pa.mul(2)).add(1);
  });
}

const scoreParams = z.strictObject({
  /** Which per-token score: the CAPO curvature (`curvatureScore`, supplied by `cohort train`) or a score
   * your own loop supplies (`input.score`, need `tokenScore`). */
  source: z.enum(["curvature", "custom"]).default("curvature"),
  /** Drop tokens whose score is above this value… */
  threshold: z.number().optional(),
  /** …or above the q-quantile of the valid tokens' scores of the step (CAPO rejects < 8%: q = 0.92). */
  quantile: z.number().min(0).max(1).optional(),
  /** Which side leaves the loss. */
  drop: z.enum(["above", "below"]).default("above"),
});
export type ScoreFilterOptions = z.input<typeof scoreParams>;

/**
 * Score token filter (CAPO curvature masking, B.14): drops the tokens whose per-token score is above (or below)
 * a threshold, or beyond a quantile of the step's valid tokens. With `source: "curvature"` (default) the score
 * is CAPO's curvature (`curvatureScore`, design choice: the paper's estimator is not published); with
 * `"custom"` it is the caller's `input.score`.
 */
// CAPO arXiv 2510.00819 [ABSTRACT] (curvature score and threshold: design choice)
export const scoreTokenFilter = defineTokenFilter({
  name: "score",
  paper: "2510.00819",
  confidence: "ABSTRACT",
  doc: "drops tokens by a per-token score (CAPO curvature by default)",
  params: scoreParams,
  needs: (p) => (p.source === "curvature" ? ["curvature"] : ["tokenScore"]),
  filter(input, p) {
    const score =
      p.source === "curvature"
        ? need(input.curvature, "curvature", "score token filter (source curvature)")
        : need(input.score, "score", "score token filter (source custom)");
    if ((p.threshold === undefined) === (p.quantile === undefined)) {
      throw new ConfigError("the score filter needs exactly one of threshold and quantile", "score");
    }
    const drop = p.drop;
    const thr =
      p.threshold ??
      entropyQuantileThreshold(
        score,
        input.mask,
        drop === "above" ? (p.quantile as number) : 1 - (p.quantile as number),
      );
    const mask = tidy(() => {
      const dropIt = drop === "above" ? score.gt(thr) : score.lt(thr);
      return where(dropIt, 0, input.mask).to(input.mask.dtype);
    });
    return { mask, removedTokens: countRemoved(input.mask, mask) };
  },
});
