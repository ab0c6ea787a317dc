/**
 * Advantage estimators (ALGORITHMS.md §A.2, §B): the `AdvantageEstimator` slot of the design space.
 *
 * Every estimator is one documented function with the same signature, `(batch, opts) => Advantages`,
 * registered by name in `advantageEstimators`. Per-sequence advantages are computed host-side in a
 * Float64Array (N is small); per-token ones (REINFORCE++, Rank-GRPO) come back as an [N, T] tensor.
 *
 * Conventions shared by all estimators (ALGORITHMS.md §0, §A.6):
 * - Groups are formed by id (`groupIndex`, possibly combined with an agent, step or rank key), never by
 *   adjacency.
 * - A NaN reward means "no reward function applied": that completion gets A = 0 and is left out of every
 *   mean and std. An infinite reward is an error.
 * - A group with one (valid) member gets A = 0 (`singleton: "zero"`, default; TRL's behaviour). verl uses
 *   mean 0 / std 1, i.e. A = r: pass `singleton: "reward"` to match it.
 * - std is the unbiased (Bessel) std by default; `std: "population"` divides by n. eps defaults to 1e-6
 *   (verl); TRL uses 1e-4. A zero denominator (eps = 0 on a zero-std group) gives A = 0, not NaN.
 * - Option objects are checked: an unknown key is a ConfigError that lists the known ones.
 * @module
 */
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
import { type Tensor, tensor, tidy, where, zerosLike } from "../tensor/index.js";
import { type ComponentDef, ComponentRegistry, parseParams } from "./component.js";
import { compositeKeys, devOf, groupMembers, validStats } from "./groups.js";
import type { Advantages, RewardBatch } from "./types.js";

export { compositeKeys, devOf, groupMembers, type StdKind, validStats } from "./groups.js";

// ---- shared types and helpers ---------------------------------------------------------------------

/** The two shapes of `Advantages`, for estimators whose kind is fixed. */
export type SequenceAdvantages = Extract<Advantages, { kind: "sequence" }>;
export type TokenAdvantages = Extract<Advantages, { kind: "token" }>;
/** What a group with a single valid member gets: 0 (Cohort, TRL) or its reward r (verl). */
export type SingletonPolicy = "zero" | "reward";

/**
 * An advantage estimator: one declaration (ComponentDef: name, paper, confidence, params, needs) with its
 * granularity and the estimate function, which receives its parsed params (defaults filled).
 */
export interface AdvantageDef<P extends z.ZodType = z.ZodType, R extends Advantages = Advantages>
  extends ComponentDef<P> {
  /** One advantage per completion, or per token (REINFORCE++ returns, Rank-GRPO items). A sequence-level
   * ratio (GSPO) needs "sequence". */
  granularity: "sequence" | "token";
  /** Rows are agent steps (multi-turn environments): "step" rows carry the step's own reward, "episode" rows
   * the episode's outcome reward. Absent: one row per completion / episode. */
  rows?: "step" | "episode";
  /** false: not group-relative (no group baseline), so a group of one is fine. Default true. */
  groupRelative?: boolean;
  /** The smallest group that can carry a signal under these params (pass@k: k + 1); default 2. */
  minGroupSize?(params: z.output<P>): number;
  /** Reads `batch.tokenRewards` (per-token rewards, where KL in the reward lands per token). Otherwise a
   * per-token reward term is summed into each completion's reward. */
  tokenRewards?: boolean;
  /** Keeps an absolute (value-anchored) term besides the group-relative one, so a group whose rewards are all
   * equal still carries a signal (VGPO). */
  absolute?: boolean;
  estimate(batch: RewardBatch, params: z.output<P>): R;
}

/** The registry of advantage estimators, by name (`advantageEstimators.get("grpo")`). */
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const advantageEstimators = new ComponentRegistry<AdvantageDef<any>>("advantage estimator");

/** Registers an estimator and returns it as a function of raw options (validated by its params schema). */
export function defineAdvantage<P extends z.ZodType, R extends Advantages>(
  def: AdvantageDef<P, R>,
): ((batch: RewardBatch, opts?: z.input<P>) => R) & { def: AdvantageDef<P, R> } {
  advantageEstimators.define(def);
  return Object.assign((batch: RewardBatch, opts?: z.input<P>) => runEstimator(def, batch, opts), { def });
}

/** Runs an estimator on raw options: params parsed (unknown keys refused), batch checked. */
export function runEstimator<P extends z.ZodType, R extends Advantages>(
  def: AdvantageDef<P, R>,
  batch: RewardBatch,
  opts?: unknown,
): R {
  const p = parseParams(def, opts);
  checkBatch(batch);
  return def.estimate(batch, p);
}

/** Rejects infinite rewards (NaN is allowed: it means "no reward"). */
function checkFinite(values: Float64Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v === Number.POSITIVE_INFINITY || v === Number.NEGATIVE_INFINITY) {
      throw new CohortError(
        `${what}[${i}] is ${v}; reward functions must return a finite number, or null for "not applicable"`,
      );
    }
  }
}

function checkBatch(batch: RewardBatch): void {
  if (batch.groupIndex.length !== batch.rewards.length) {
    throw new CohortError(
      `RewardBatch has ${batch.rewards.length} rewards but ${batch.groupIndex.length} group ids; give one group id per completion`,
    );
  }
  checkFinite(batch.rewards, "rewards");
}

/** Options of the group-relative normalisation (A.2), shared by GRPO, Dr. MAS, Step-GRPO, Rank-GRPO. */
export const groupNormParams = z.strictObject({
  /** "group": divide by the group std (GRPO); "batch": by the std of all rewards (numerator still
   * group-centred, TRL `scale_rewards="batch"`); "none": no division (Dr. GRPO). */
  scale: z.enum(["group", "batch", "none"]).default("group"),
  /** Unbiased (N−1, TRL and verl) or population (N) standard deviation. */
  std: z.enum(["unbiased", "population"]).default("unbiased"),
  /** Added to the std in the denominator: 1e-6 (verl); TRL uses 1e-4. */
  eps: z.number().min(0).default(1e-6),
  /** Groups with one valid member: A = 0 (TRL), A = r (verl), or "unit": mean 0 and std 1 in the formula, so
   * A = r/(1 + eps) under scale "group", r otherwise (Dr. Zero's code). */
  singleton: z.enum(["zero", "reward", "unit"]).default("zero"),
});
export type GroupNormOptions = z.input<typeof groupNormParams>;
const singletonParam = { singleton: z.enum(["zero", "reward"]).default("zero") };

/**
 * The group-relative normalisation of ALGORITHMS.md A.2 over arbitrary groups:
 * `A_i = (r_i − mean_g) / (std_g + eps)` (scale "group"), `/ (std_batch + eps)` ("batch") or `r_i − mean_g`
 * ("none"). NaN rewards get 0 and are left out of every statistic.
 */
export function groupNormalize(values: Float64Array, groups: number[][], opts: GroupNormOptions = {}): Float64Array {
  const { scale, std: stdKind, eps, singleton } = parseParams(GROUP_NORM, opts, "options");
  const out = new Float64Array(values.length);
  let batchStd = 0;
  if (scale === "batch") {
    const all: number[] = [];
    for (let i = 0; i < values.length; i++) all.push(i);
    batchStd = validStats(values, all, stdKind).std;
  }
  for (const idx of groups) {
    const st = validStats(values, idx, stdKind);
    if (st.n === 0) continue;
    if (st.n === 1) {
      if (singleton === "zero") continue;
      // mean 0, and std 1 ("unit": divided by 1 + eps under scale "group") or no division ("reward")
      const d = singleton === "unit" && scale === "group" ? 1 + eps : 1;
      for (const i of idx) if (!Number.isNaN(values[i]!)) out[i] = values[i]! / d;
      continue;
    }
    const denom = scale === "group" ? st.std + eps : scale === "batch" ? batchStd + eps : 1;
    for (const i of idx) {
      const v = values[i]!;
      if (Number.isNaN(v)) continue;
      const dev = v - st.mean;
      out[i] = denom === 0 ? 0 : dev / denom;
    }
  }
  return out;
}
const GROUP_NORM = { name: "group normalisation", doc: "", params: groupNormParams };

const seq = (values: Float64Array): SequenceAdvantages => ({ kind: "sequence", values });

// ---- GRPO family ----------------------------------------------------------------------------------

export type GrpoOptions = GroupNormOptions;

/**
 * GRPO group-relative advantage.
 * `A_i = (r_i − mean_g) / (std_g + eps)` with mean/std over the completions of the group (A.2);
 * `scale: "batch"` divides by the std of every reward in the batch instead, `scale: "none"` is Dr. GRPO.
 */
// arXiv 2402.03300 [CODE-FW]
export const grpo = defineAdvantage({
  name: "grpo",
  paper: "2402.03300",
  confidence: "CODE-FW",
  doc: "group-relative advantage (r − mean_g)/(std_g + eps)",
  params: groupNormParams,
  granularity: "sequence",
  estimate: (batch, p) => seq(groupNormalize(batch.rewards, groupMembers(batch.groupIndex), p)),
});

/**
 * Dr. GRPO: GRPO without the std division, `A_i = r_i − mean_g` (removes the question-difficulty bias).
 * Pair it with the constant `N·L_max` aggregator (B.1).
 */
// arXiv 2503.20783 [CODE-FW]
export const drGrpo = defineAdvantage({
  name: "dr_grpo",
  paper: "2503.20783",
  confidence: "CODE-FW",
  doc: "r − mean_g, no std division",
  params: z.strictObject(singletonParam),
  granularity: "sequence",
  estimate: (batch, p) => seq(groupNormalize(batch.rewards, groupMembers(batch.groupIndex), { ...p, scale: "none" })),
});

/**
 * RLOO leave-one-out baseline: `A_i = r_i − (1/(G−1)) Σ_{j≠i} r_j = (G/(G−1)) (r_i − mean_g)` (B.5), with G
 * the number of valid rewards in the group. verl gives a group of one A = r (`singleton: "reward"`).
 */
// arXiv 2402.14740 [CODE-FW]
export const rloo = defineAdvantage({
  name: "rloo",
  paper: "2402.14740",
  confidence: "CODE-FW",
  doc: "leave-one-out baseline (G/(G−1))(r − mean_g)",
  params: z.strictObject(singletonParam),
  granularity: "sequence",
  estimate(batch, p) {
    const groups = groupMembers(batch.groupIndex);
    const out = groupNormalize(batch.rewards, groups, { scale: "none", singleton: p.singleton });
    for (const idx of groups) {
      const n = validStats(batch.rewards, idx).n;
      if (n > 1) for (const i of idx) out[i] = (out[i]! * n) / (n - 1);
    }
    return seq(out);
  },
});

// ---- Pass@k training ------------------------------------------------------------------------------

/** C(n, k), 0 outside 0 ≤ k ≤ n. */
function choose(n: number, k: number): number {
  if (k < 0 || n < 0 || k > n) return 0;
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/**
 * Pass@k training: the analytical advantage of optimising pass@k instead of pass@1 (binary rewards). In a
 * group of n valid completions with c correct (r > threshold): ρ = 1 − C(n−c, k)/C(n, k) (the group's
 * pass@k), σ = sqrt(ρ(1 − ρ)), a correct completion gets (1 − ρ)/(σ + eps) and an incorrect one
 * (1 − ρ − C(n−c−1, k−1)/C(n−1, k−1))/(σ + eps). k = 1 is GRPO with the population std. A group with every
 * completion correct or none gets 0.
 */
// arXiv 2508.10751 [CODE]
export const passAtK = defineAdvantage({
  name: "passk",
  paper: "2508.10751",
  confidence: "CODE",
  doc: "analytical pass@k advantage of binary rewards: correct (1 − ρ)/σ, incorrect (1 − ρ − C(n−c−1,k−1)/C(n−1,k−1))/σ",
  params: z.strictObject({
    /** k of pass@k (the paper trains with 4–8). */
    k: z.number().int().min(1).default(4),
    /** A completion is correct when its reward > threshold. */
    threshold: z.number().default(0.5),
    eps: z.number().min(0).default(1e-6),
  }),
  granularity: "sequence",
  // with n ≤ k every group that has a correct completion passes at k: no signal
  minGroupSize: (p) => p.k + 1,
  estimate(batch, p) {
    const r = batch.rewards;
    const out = new Float64Array(r.length);
    for (const idx of groupMembers(batch.groupIndex)) {
      const valid = idx.filter((i) => !Number.isNaN(r[i]!));
      const n = valid.length;
      const c = valid.filter((i) => r[i]! > p.threshold).length;
      if (n < p.k || c === 0 || c === n) continue;
      const rho = 1 - choose(n - c, p.k) / choose(n, p.k);
      const sigma = Math.sqrt(rho * (1 - rho));
      const pos = (1 - rho) / (sigma + p.eps);
      const neg = (1 - rho - choose(n - c - 1, p.k - 1) / choose(n - 1, p.k - 1)) / (sigma + p.eps);
      for (const i of valid) out[i] = r[i]! > p.threshold ? pos : neg;
    }
    return seq(out);
  },
});

// ---- REINFORCE++ (token whitening) ----------------------------------------------------------------

const whitenParams = {
  /** Added to the token std: 1e-8 (verl `masked_whiten`). */
  eps: z.number().min(0).default(1e-8),
  /** "std": `(x − μ)/(σ + eps)` (ALGORITHMS.md B.5); "rsqrt": `(x − μ)·rsqrt(σ² + eps)` (verl). */
  whiten: z.enum(["std", "rsqrt"]).default("std"),
  /** dtype of the returned tensor. */
  dtype: z.enum(["f32", "f64"]).default("f32"),
};
const WHITEN = { name: "masked whitening", doc: "", params: z.strictObject(whitenParams) };
export type WhitenOptions = z.input<typeof WHITEN.params>;

/**
 * Whitens `x` over the valid tokens: with weights w (the mask; it may hold weights),
 * `μ = Σ w x / Σ w`, `σ² = Σ w (x − μ)² / Σ w · (Σ w / (Σ w − 1))` (unbiased, as verl `masked_whiten`),
 * result `(x − μ)/(σ + eps)`, zeroed where w = 0. Both inputs [N, T]; computed in f64.
 */
export function maskedWhiten(x: Tensor, weights: Tensor, opts: WhitenOptions = {}): Tensor {
  const { eps, whiten: mode, dtype } = parseParams(WHITEN, opts, "options");
  return tidy(() => {
    const xd = x.to("f64");
    const w = weights.to("f64");
    const total = w.sum().item();
    if (!(total > 0)) return zerosLike(xd).to(dtype);
    const mu = xd.mul(w).sum().div(total);
    const centred = xd.sub(mu);
    const ss = centred.square().mul(w).sum().item();
    const variance = total > 1 ? (ss / total) * (total / (total - 1)) : 0;
    const scaled = mode === "std" ? centred.div(Math.sqrt(variance) + eps) : centred.mul(1 / Math.sqrt(variance + eps));
    return where(w.gt(0), scaled, 0).to(dtype);
  });
}

function requireMask(batch: RewardBatch, who: string): Tensor {
  const mask = batch.mask;
  if (mask === undefined) {
    throw new CohortError(`${who} returns per-token advantages and needs batch.mask ([N, T] loss mask); set it`);
  }
  if (mask.ndim !== 2 || mask.shape[0] !== batch.rewards.length) {
    throw new CohortError(
      `${who}: batch.mask has shape [${mask.shape}] but the batch has ${batch.rewards.length} completions; expected [${batch.rewards.length}, T]`,
    );
  }
  return mask;
}

/** Row weights 1 (reward present) / 0 (NaN reward) as an [N, 1] f64 tensor times the mask. */
function validTokenWeights(mask: Tensor, rewards: Float64Array): Tensor {
  return tidy(() => {
    const valid = Float64Array.from(rewards, (r) => (Number.isNaN(r) ? 0 : 1));
    return mask.to("f64").mul(tensor(valid, { shape: [rewards.length, 1], device: devOf(mask) }));
  });
}

/**
 * REINFORCE++-baseline: `A_i = r_i − mean_g` broadcast to the tokens of o_i, then whitened over every
 * valid token of the batch: `A_{i,t} ← (A_{i,t} − μ_tok)/(σ_tok + 1e-8)` (B.5). Needs `batch.mask`;
 * returns [N, T]. Completions with a NaN reward get 0 and are left out of μ/σ. verl's form
 * `rsqrt(σ² + 1e-8)` is `whiten: "rsqrt"` (differs at the 1e-8 level, A.6). verl gives a group of one
 * A = r before whitening (`singleton: "reward"`).
 */
// arXiv 2501.03262 [CODE-FW]
export const reinforcePlusPlusBaseline = defineAdvantage({
  name: "reinforce_plus_plus_baseline",
  paper: "2501.03262",
  confidence: "CODE-FW",
  doc: "r − mean_g, then whitened over every valid token of the batch",
  params: z.strictObject({ ...whitenParams, ...singletonParam }),
  needs: ["tokenMask"],
  granularity: "sequence",
  estimate(batch, p): TokenAdvantages {
    const mask = requireMask(batch, "reinforce_plus_plus_baseline");
    const centred = groupNormalize(batch.rewards, groupMembers(batch.groupIndex), {
      scale: "none",
      singleton: p.singleton,
    });
    const values = tidy(() => {
      const w = validTokenWeights(mask, batch.rewards);
      const a = tensor(centred, { shape: [centred.length, 1], device: devOf(mask) }).mul(w.gt(0));
      return maskedWhiten(a, w, { eps: p.eps, whiten: p.whiten, dtype: p.dtype });
    });
    return { kind: "token", values };
  },
});

/**
 * REINFORCE++ (no group baseline): discounted return-to-go `R_{i,t} = Σ_{t'≥t} γ^{t'−t} r_{i,t'}` of the
 * token rewards, then batch token whitening as in REINFORCE++-baseline (B.5). Token rewards come from
 * `batch.tokenRewards` ([N, T]; KL in the reward lands there); without them r_i sits on the last valid token
 * of o_i. The recursion runs over the valid tokens only: a masked token (padding, tool observation) adds no
 * reward and no discount step, so an outcome reward reaches every model token of a multi-turn episode. verl
 * instead restarts the running return at every masked token (`R ← R·m_t`); the two agree for right-padded
 * masks without interior masked tokens. Returns [N, T].
 */
// arXiv 2501.03262 [CODE-FW]
export const reinforcePlusPlus = defineAdvantage({
  name: "reinforce_plus_plus",
  paper: "2501.03262",
  confidence: "CODE-FW",
  doc: "discounted return-to-go of the token rewards, whitened over the batch's tokens",
  params: z.strictObject({ ...whitenParams, gamma: z.number().min(0).max(1).default(1) }),
  needs: ["tokenMask"],
  granularity: "token",
  tokenRewards: true,
  groupRelative: false,
  estimate: (batch, p) => reinforcePPReturns(batch, p),
});

function reinforcePPReturns(
  batch: RewardBatch,
  p: z.output<z.ZodObject<typeof whitenParams>> & { gamma: number },
): TokenAdvantages {
  const mask = requireMask(batch, "reinforce_plus_plus");
  const gamma = p.gamma;
  const [n, t] = mask.shape as [number, number];
  const m = tidy(() => mask.to("f64").data() as Float64Array);
  let tokenR: Float64Array;
  if (batch.tokenRewards !== undefined) {
    const tr = batch.tokenRewards;
    if (tr.shape[0] !== n || tr.shape[1] !== t) {
      throw new CohortError(
        `tokenRewards has shape [${tr.shape}] but mask has [${n}, ${t}]; give one reward per token`,
      );
    }
    tokenR = tidy(() => tr.to("f64").data() as Float64Array);
  } else {
    tokenR = new Float64Array(n * t);
    for (let i = 0; i < n; i++) {
      const r = batch.rewards[i]!;
      if (Number.isNaN(r)) continue;
      for (let j = t - 1; j >= 0; j--) {
        if (m[i * t + j]! > 0) {
          tokenR[i * t + j] = r;
          break;
        }
      }
    }
  }
  const returns = new Float64Array(n * t);
  for (let i = 0; i < n; i++) {
    let running = 0;
    for (let j = t - 1; j >= 0; j--) {
      if (!(m[i * t + j]! > 0)) continue; // masked tokens: no reward, no discount step
      running = tokenR[i * t + j]! + gamma * running;
      returns[i * t + j] = running;
    }
  }
  const values = tidy(() => {
    const w = validTokenWeights(mask, batch.rewards);
    return maskedWhiten(tensor(returns, { shape: [n, t], device: devOf(mask) }), w, {
      eps: p.eps,
      whiten: p.whiten,
      dtype: p.dtype,
    });
  });
  return { kind: "token", values };
}

// ---- BNPO -----------------------------------------------------------------------------------------

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** log Γ(x) for x > 0 (Lanczos, g = 7; relative error ~1e-15). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const tt = z + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(tt) - tt + Math.log(a);
}

/** Beta(α, β) density at p ∈ [0, 1], with 0·log 0 = 0 (so Beta(1, β) at 0 is finite, as torch's xlogy). */
export function betaPdf(p: number, alpha: number, beta: number): number {
  const xlogy = (a: number, y: number) => (a === 0 ? 0 : a * Math.log(y));
  const logp = xlogy(alpha - 1, p) + xlogy(beta - 1, 1 - p) + logGamma(alpha + beta) - logGamma(alpha) - logGamma(beta);
  return Math.exp(logp);
}

const bnpoParams = z.strictObject({
  /** Affine range of the rewards: r̃ = (r − rMin)/(rMax − rMin) must lie in [0, 1]. */
  rMin: z.number().default(0),
  rMax: z.number().default(1),
  /** Advantage decomposition: one BNPO advantage per reward function (`batch.rewardsByFn`), averaged. */
  decompose: z.boolean().default(false),
  /** Groups of one: A = 0 and left out of the Beta fit (default); "reward" = code (p_q = 0, included). */
  singleton: z.enum(["zero", "reward"]).default("zero"),
});
type BnpoParams = z.output<typeof bnpoParams>;

/** The Beta(α, β) parameters BNPO fits to the pass rates `p` of the prompts in a batch (B.6). */
export function bnpoBetaParams(p: readonly number[]): { alpha: number; beta: number } {
  let m = 0;
  let v = 1;
  if (p.length > 1) {
    m = p.reduce((a, b) => a + b, 0) / p.length;
    v = p.reduce((a, b) => a + (b - m) * (b - m), 0) / (p.length - 1);
  }
  // v = 0 (every prompt has the same p) makes k infinite: fall back to α = β = 1 (design choice).
  if (v === 0) return { alpha: 1, beta: 1 };
  const k = (m * (1 - m)) / v - 1;
  return { alpha: Math.max(1 + (k * m) / 3, 1), beta: Math.max(1 + (k * (1 - m)) / 3, 1) };
}

function bnpoComponent(r: Float64Array, groups: number[][], opts: BnpoParams): Float64Array {
  const { rMin, rMax, singleton } = opts;
  if (!(rMax > rMin)) throw new ConfigError(`rMax (${rMax}) must be greater than rMin (${rMin})`, "rMax");
  const rt = Float64Array.from(r, (v) => (v - rMin) / (rMax - rMin));
  const pOf: (number | undefined)[] = [];
  const ps: number[] = [];
  groups.forEach((idx, g) => {
    const st = validStats(rt, idx);
    if (st.n === 0 || (st.n === 1 && singleton === "zero")) return;
    const p = st.n === 1 ? 0 : st.mean;
    if (!(p >= -1e-12 && p <= 1 + 1e-12)) {
      throw new ConfigError(
        `BNPO pass rate ${p} is outside [0, 1]; set rMin/rMax to the range of the rewards (now ${rMin}, ${rMax})`,
        "rMin",
      );
    }
    pOf[g] = p;
    ps.push(p);
  });
  const { alpha, beta } = bnpoBetaParams(ps);
  const out = new Float64Array(r.length);
  groups.forEach((idx, g) => {
    const p = pOf[g];
    if (p === undefined) return;
    const pdf = betaPdf(Math.min(Math.max(p, 0), 1), alpha, beta);
    const w = Math.min(Math.max(1 / pdf, 0), 1e6);
    for (const i of idx) if (!Number.isNaN(rt[i]!)) out[i] = w * (rt[i]! - p);
  });
  return out;
}

/**
 * BNPO: Beta-normalised advantage for (scaled) binary rewards (B.6).
 * `r̃ = (r − r_min)/(r_max − r_min)`, `p_q` = group mean of r̃; `m, v` = mean and unbiased variance of the
 * p_q over the batch (one prompt: m = 0, v = 1); `k = m(1−m)/v − 1`, `α = max(1 + k·m/3, 1)`,
 * `β = max(1 + k(1−m)/3, 1)`; `A_i = (r̃_i − p_q) / Beta_pdf(p_q; α, β)` with 1/pdf clamped to [0, 1e6].
 * v = 0 falls back to α = β = 1 (design choice). `decompose: true` computes one advantage per reward
 * function of `batch.rewardsByFn` and averages them over the functions that apply to the completion.
 */
// arXiv 2506.02864 [CODE]
export const bnpo = defineAdvantage({
  name: "bnpo",
  paper: "2506.02864",
  confidence: "CODE",
  doc: "(r̃ − p_q)/Beta_pdf(p_q; α, β) with α, β fitted to the batch's pass rates",
  params: bnpoParams,
  granularity: "sequence",
  estimate(batch, p) {
    const groups = groupMembers(batch.groupIndex);
    if (!p.decompose) return seq(bnpoComponent(batch.rewards, groups, p));
    const byFn = requireByFn(batch, "bnpo (decompose)");
    const sum = new Float64Array(batch.rewards.length);
    const count = new Float64Array(batch.rewards.length);
    for (const r of byFn) {
      const a = bnpoComponent(r, groups, p);
      for (let i = 0; i < r.length; i++) {
        if (Number.isNaN(r[i]!)) continue;
        sum[i] = sum[i]! + a[i]!;
        count[i] = count[i]! + 1;
      }
    }
    return seq(sum.map((s, i) => (count[i]! > 0 ? s / count[i]! : 0)));
  },
});

function requireByFn(batch: RewardBatch, who: string): Float64Array[] {
  const byFn = batch.rewardsByFn;
  if (byFn === undefined || byFn.length === 0) {
    throw new CohortError(
      `${who} needs the per-function rewards batch.rewardsByFn ([K][N]); every combiner passes them on`,
    );
  }
  for (const r of byFn) {
    if (r.length !== batch.rewards.length) {
      throw new CohortError(`rewardsByFn rows must have length N = ${batch.rewards.length}, got ${r.length}`);
    }
    checkFinite(r, "rewardsByFn");
  }
  return byFn;
}

// ---- GDPO -----------------------------------------------------------------------------------------

const gdpoParams = z.strictObject({
  /** Weight w_k per reward function; default: the run's reward weights (`rewards[].weight`,
   * `algo.reward.weights`, carried as `batch.rewardWeights`), else all 1. */
  weights: z.union([z.array(z.number()), z.instanceof(Float64Array)]).optional(),
  /** eps of the per-reward group normalisation and of the batch normalisation: 1e-6; TRL 1e-4. */
  eps: z.number().min(0).default(1e-6),
  std: z.enum(["unbiased", "population"]).default("unbiased"),
  /** "sequence": batch mean/std over completions (B.7, TRL); "token": weighted by |o_i| with
   * `rsqrt(var + 1e-8)` (verl, needs `batch.lengths`). */
  batchNorm: z.enum(["sequence", "token"]).default("sequence"),
  singleton: z.enum(["zero", "reward"]).default("zero"),
});
export type GdpoOptions = z.input<typeof gdpoParams>;

/**
 * GDPO: group reward-decoupled normalisation (B.7). For each reward k and group g,
 * `ŕ^(k)_i = (r^(k)_i − mean_g) / (std_g + eps)`; `s_i = Σ_k w_k ŕ^(k)_i`; then
 * `A_i = (s_i − mean_batch(s)) / (std_batch(s) + eps)` over all completions of the batch. Reads
 * `batch.rewardsByFn` (NaN = reward not applicable: contributes 0 to s_i; a completion with no reward at
 * all gets A = 0 and is left out of the batch statistics).
 */
// arXiv 2601.05242 [CODE-FW]
export const gdpo = defineAdvantage({
  name: "gdpo",
  paper: "2601.05242",
  confidence: "CODE-FW",
  doc: "normalises each reward function in its group before the weighted sum, then over the batch",
  minRewardFunctions: 2,
  params: gdpoParams,
  needs: ["rewardsByFn"],
  granularity: "sequence",
  estimate: (batch, p) => gdpoAdvantages(batch, p),
});

function gdpoAdvantages(batch: RewardBatch, opts: z.output<typeof gdpoParams>): SequenceAdvantages {
  const byFn = requireByFn(batch, "gdpo");
  const k = byFn.length;
  const weights = opts.weights ?? batch.rewardWeights ?? new Float64Array(k).fill(1);
  if (weights.length !== k) {
    throw new ConfigError(
      `gdpo has ${weights.length} weights for ${k} reward functions; give one weight each`,
      "weights",
    );
  }
  const eps = opts.eps;
  const groups = groupMembers(batch.groupIndex);
  const n = batch.rewards.length;
  const s = new Float64Array(n);
  const valid = new Uint8Array(n);
  byFn.forEach((r, j) => {
    const norm = groupNormalize(r, groups, {
      scale: "group",
      eps,
      std: opts.std,
      singleton: opts.singleton,
    });
    for (let i = 0; i < n; i++) {
      if (Number.isNaN(r[i]!)) continue;
      valid[i] = 1;
      s[i] = s[i]! + weights[j]! * norm[i]!;
    }
  });
  const out = new Float64Array(n);
  const idx: number[] = [];
  for (let i = 0; i < n; i++) if (valid[i]) idx.push(i);
  if (idx.length < 2) return seq(out);
  if (opts.batchNorm === "token") {
    const len = batch.lengths;
    if (len === undefined) throw new CohortError(`gdpo batchNorm "token" needs batch.lengths (|o_i|); set it`);
    let wsum = 0;
    let mean = 0;
    for (const i of idx) {
      wsum += len[i]!;
      mean += len[i]! * s[i]!;
    }
    if (wsum <= 1) return seq(out);
    mean /= wsum;
    let ss = 0;
    for (const i of idx) ss += len[i]! * (s[i]! - mean) ** 2;
    const variance = (ss / wsum) * (wsum / (wsum - 1));
    for (const i of idx) out[i] = (s[i]! - mean) / Math.sqrt(variance + 1e-8);
    return seq(out);
  }
  const st = validStats(s, idx, opts.std);
  const denom = st.std + eps;
  for (const i of idx) out[i] = denom === 0 ? 0 : (s[i]! - st.mean) / denom;
  return seq(out);
}

// ---- DGPO / MathForge -----------------------------------------------------------------------------

/**
 * DGPO difficulty-balanced group advantage (DGAE): MAD instead of std (B.10),
 * `A_i = G·(r_i − mean_g) / (Σ_j |r_j − mean_g| + eps)` = `(r_i − mean_g)/(MAD_g + eps/G)`, so that for
 * binary rewards `Σ_i |A_i| = G` in every non-degenerate group. eps = 1e-4 in the sum form, as the released
 * code.
 */
// arXiv 2601.20614 [CODE]
export const dgpo = defineAdvantage({
  name: "dgpo",
  paper: "2601.20614",
  confidence: "CODE",
  doc: "MAD-normalised group advantage G·(r − mean_g)/(Σ|r − mean_g| + eps)",
  params: z.strictObject({ eps: z.number().min(0).default(1e-4), ...singletonParam }),
  granularity: "sequence",
  estimate(batch, p) {
    const r = batch.rewards;
    const out = new Float64Array(r.length);
    for (const idx of groupMembers(batch.groupIndex)) {
      const st = validStats(r, idx);
      if (st.n === 0) continue;
      if (st.n === 1) {
        if (p.singleton === "reward") for (const i of idx) if (!Number.isNaN(r[i]!)) out[i] = r[i]!;
        continue;
      }
      let sad = 0;
      for (const i of idx) if (!Number.isNaN(r[i]!)) sad += Math.abs(r[i]! - st.mean);
      const denom = sad + p.eps;
      for (const i of idx) if (!Number.isNaN(r[i]!)) out[i] = denom === 0 ? 0 : (st.n * (r[i]! - st.mean)) / denom;
    }
    return seq(out);
  },
});

// ---- agents: GiGPO, Dr. MAS, Step-GRPO ------------------------------------------------------------

/**
 * Discounted return-to-go of step rewards within each trajectory: `R^S_t = Σ_{k≥t} γ^{k−t} r_k` (B.20).
 * Rows of one trajectory are ordered by `stepIndex` when given, else by their order in the batch.
 */
export function discountedStepReturns(
  rewards: Float64Array,
  trajectoryIndex: ArrayLike<number>,
  gamma: number,
  stepIndex?: ArrayLike<number>,
): Float64Array {
  const out = new Float64Array(rewards.length);
  for (const rows of groupMembers(trajectoryIndex)) {
    const ordered = stepIndex === undefined ? rows : [...rows].sort((a, b) => stepIndex[a]! - stepIndex[b]!);
    let running = 0;
    for (let j = ordered.length - 1; j >= 0; j--) {
      const i = ordered[j]!;
      running = rewards[i]! + gamma * running;
      out[i] = running;
    }
  }
  return out;
}

const gigpoParams = z.strictObject({
  /** Discount of the step returns. */
  gamma: z.number().min(0).max(1).default(0.95),
  /** Weight ω of the step-level advantage (`step_advantage_w`). */
  omega: z.number().default(1),
  /** "mean": `x − mean` (function default, "mean_norm"); "mean-std": `(x − mean)/(std + eps)`. */
  mode: z.enum(["mean", "mean-std"]).default("mean"),
  eps: z.number().min(0).default(1e-6),
  /** Episode statistics over all step-rows of the group ("steps", code default: trajectories weighted by
   * their number of steps) or over one value per trajectory ("trajectories"). */
  episodeStats: z.enum(["steps", "trajectories"]).default("steps"),
  /** Episode groups with a single value: A^E = 0 (default) or the code's mean 0 / std 1 ("reward"). */
  singleton: z.enum(["zero", "reward"]).default("zero"),
});
export type GigpoOptions = z.input<typeof gigpoParams>;

/**
 * GiGPO: group-in-group advantage for multi-step agents (B.20). Rows are steps; `rewards` holds the step
 * rewards r_{τ,t}, `trajectoryIndex` the episode of each row, `observationKey` its anchor state.
 * Episode level: `A^E = R^E − mean_group` (or `/(std + eps)`) with R^E from `episodeRewards` (else the sum
 * of the trajectory's step rewards), group = `groupIndex`. Step level: rows of the same group with the
 * same observation key form a step group; `R^S` = discounted return-to-go; `A^S = R^S − mean_stepgroup`
 * (a singleton step group gives 0). Result `A = A^E + ω·A^S`, one value per step row.
 */
// arXiv 2505.10978 [CODE]
export const gigpo = defineAdvantage({
  name: "gigpo",
  paper: "2505.10978",
  confidence: "CODE",
  doc: "episode-level plus ω × step-level (same anchor state) group advantages",
  params: gigpoParams,
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "step",
  estimate: (batch, p) => gigpoAdvantages(batch, p),
});

function gigpoAdvantages(batch: RewardBatch, opts: z.output<typeof gigpoParams>): SequenceAdvantages {
  const n = batch.rewards.length;
  const traj = batch.trajectoryIndex;
  const obs = batch.observationKey;
  if (traj === undefined || obs === undefined) {
    throw new CohortError("gigpo needs batch.trajectoryIndex and batch.observationKey (one per step row); set them");
  }
  if (traj.length !== n || obs.length !== n || (batch.episodeRewards && batch.episodeRewards.length !== n)) {
    throw new CohortError(
      `gigpo: trajectoryIndex, observationKey and episodeRewards must have length ${n} (one per step row)`,
    );
  }
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(batch.rewards[i]!)) {
      throw new CohortError(`gigpo: step reward ${i} is missing (NaN); every step needs a reward (use 0)`);
    }
  }
  const norm: GroupNormOptions = {
    scale: opts.mode === "mean" ? "none" : "group",
    eps: opts.eps,
    singleton: opts.singleton,
  };
  const stepReturns = discountedStepReturns(batch.rewards, traj, opts.gamma, batch.stepIndex);
  // episode reward per row
  const episode = new Float64Array(n);
  const trajRows = groupMembers(traj);
  for (const rows of trajRows) {
    let total = 0;
    for (const i of rows) total += batch.rewards[i]!;
    for (const i of rows) episode[i] = batch.episodeRewards?.[i] ?? total;
  }
  let aE: Float64Array;
  if (opts.episodeStats === "steps") {
    aE = groupNormalize(episode, groupMembers(batch.groupIndex), norm);
  } else {
    const first = trajRows.map((rows) => rows[0]!);
    const values = Float64Array.from(first, (i) => episode[i]!);
    const keys = Int32Array.from(first, (i) => batch.groupIndex[i]!);
    const perTraj = groupNormalize(values, groupMembers(keys), norm);
    aE = new Float64Array(n);
    trajRows.forEach((rows, j) => {
      for (const i of rows) aE[i] = perTraj[j]!;
    });
  }
  const stepGroups = groupMembers(compositeKeys(batch.groupIndex, obs, "observationKey"));
  const aS = groupNormalize(stepReturns, stepGroups, { ...norm, singleton: "zero" });
  return seq(aE.map((a, i) => a + opts.omega * aS[i]!));
}

/**
 * Dr. MAS agent-wise normalisation (B.21): the group key is (prompt group, `agentId`); each agent's samples
 * are normalised with that agent's own mean/std, `A = (r − mean_{q,agent})/(std_{q,agent} + eps)`.
 * Options as GRPO.
 */
// arXiv 2602.08847 [CODE]
export const drMas = defineAdvantage({
  name: "dr_mas",
  paper: "2602.08847",
  confidence: "CODE",
  doc: "group normalisation per (prompt group, agent)",
  params: groupNormParams,
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "episode",
  estimate(batch, p) {
    if (batch.agentId === undefined) throw new CohortError("dr_mas needs batch.agentId (agent of each sample); set it");
    const groups = groupMembers(compositeKeys(batch.groupIndex, batch.agentId, "agentId"));
    return seq(groupNormalize(batch.rewards, groups, p));
  },
});

/**
 * Step-GRPO step-index groups (B.36, design choice): rows are (rollout, step) samples; rewards are
 * normalised within (prompt group, `stepIndex`), i.e. per step index across the G rollouts, and the
 * advantage applies to that step's tokens. Options as GRPO.
 */
// arXiv 2505.22095 [ABSTRACT]
export const stepGrpo = defineAdvantage({
  name: "step_grpo",
  paper: "2505.22095",
  confidence: "ABSTRACT",
  doc: "group normalisation per (prompt group, step index) of step rewards",
  params: groupNormParams,
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "step",
  estimate(batch, p) {
    if (batch.stepIndex === undefined)
      throw new CohortError("step_grpo needs batch.stepIndex (step of each row); set it");
    const groups = groupMembers(compositeKeys(batch.groupIndex, batch.stepIndex, "stepIndex"));
    return seq(groupNormalize(batch.rewards, groups, p));
  },
});

// ---- Rank-GRPO ------------------------------------------------------------------------------------

/**
 * Per-rank advantages of Rank-GRPO as a host table [N][K]: for each rank k, the rank rewards r_{i,k} are
 * group-normalised across the completions of the group (GRPO options). NaN = no reward at that rank.
 */
export function rankAdvantageTable(batch: RewardBatch, opts: GrpoOptions = {}): Float64Array[] {
  const rr = batch.rankRewards;
  if (rr === undefined) throw new CohortError("rank_grpo needs batch.rankRewards ([N][K] rank rewards); set it");
  const n = batch.groupIndex.length;
  if (rr.length !== n) throw new CohortError(`rankRewards has ${rr.length} rows for ${n} completions`);
  const k = rr.reduce((a, r) => Math.max(a, r.length), 0);
  const groups = groupMembers(batch.groupIndex);
  const out = rr.map(() => new Float64Array(k));
  for (let j = 0; j < k; j++) {
    const col = Float64Array.from(rr, (r) => (j < r.length ? r[j]! : Number.NaN));
    checkFinite(col, "rankRewards");
    const a = groupNormalize(col, groups, opts);
    for (let i = 0; i < n; i++) out[i]![j] = a[i]!;
  }
  return out;
}

/**
 * Rank-GRPO per-rank advantage (B.23): `A_{i,k}` = group normalisation of the rank reward r_{i,k} across
 * the G completions, for each rank k; every token of item k gets `A_{i,k}` (`batch.itemIndex`, [N, T]).
 * Tokens outside every item (index −1, or ≥ K: the overflow bin) get 0 (design choice). Returns [N, T].
 */
// arXiv 2510.20150 [CODE]
export const rankGrpo = defineAdvantage({
  name: "rank_grpo",
  paper: "2510.20150",
  confidence: "CODE",
  doc: "per-rank group normalisation of rank rewards, broadcast to each item's tokens",
  params: groupNormParams.extend({ dtype: z.enum(["f32", "f64"]).default("f32") }),
  needs: ["rankRewards", "itemIndex"],
  granularity: "token",
  estimate(batch, opts): TokenAdvantages {
    const { dtype, ...norm } = opts;
    const table = rankAdvantageTable(batch, norm);
    const item = batch.itemIndex;
    if (item === undefined)
      throw new CohortError("rank_grpo needs batch.itemIndex ([N, T] item of each token); set it");
    const n = table.length;
    const k = table[0]?.length ?? 0;
    const flat = new Float64Array(n * (k + 1));
    table.forEach((row, i) => {
      flat.set(row, i * (k + 1));
    });
    const values = tidy(() => {
      const tab = tensor(flat, { shape: [n, k + 1], device: devOf(item) });
      const idx = item.to("i64");
      const safe = where(idx.lt(0).logicalOr(idx.ge(k)), k, idx).to("i64");
      let a = tab.gather(1, safe);
      if (batch.mask !== undefined) a = a.mul(batch.mask.to("f64").gt(0));
      return a.to(dtype);
    });
    return { kind: "token", values };
  },
});

// ---- GAE with a learned critic (control policies) --------------------------------------------------

/**
 * Generalized advantage estimation over the steps of each episode (row):
 * δ_t = r_t + γ V(s_{t+1}) − V(s_t), Â_t = Σ_l (γλ)^l δ_{t+l}, with V after the last valid step taken from
 * `values[:, len]` (the bootstrap, 0 at a terminal state). Returns Â [N, T] and the value targets Â + V.
 */
export function gaeReturns(
  rewards: Float64Array,
  values: Float64Array,
  mask: Float64Array,
  n: number,
  t: number,
  gamma: number,
  lambda: number,
): { adv: Float64Array; targets: Float64Array } {
  const adv = new Float64Array(n * t);
  const targets = new Float64Array(n * t);
  for (let i = 0; i < n; i++) {
    let len = 0;
    while (len < t && (mask[i * t + len] as number) > 0) len++;
    let running = 0;
    for (let j = len - 1; j >= 0; j--) {
      const v = values[i * (t + 1) + j] as number;
      const next = values[i * (t + 1) + j + 1] as number;
      const delta = (rewards[i * t + j] as number) + gamma * next - v;
      running = delta + gamma * lambda * running;
      adv[i * t + j] = running;
      targets[i * t + j] = running + v;
    }
  }
  return { adv, targets };
}

// arXiv 1506.02438 [PAPER-KNOWN]
export const gae = defineAdvantage({
  name: "gae",
  paper: "1506.02438",
  confidence: "PAPER-KNOWN",
  doc: "GAE(γ, λ) over each episode's steps with a learned critic V(s), standardised over the batch's steps (PPO)",
  params: z.strictObject({
    gamma: z.number().min(0).max(1).default(0.99),
    lambda: z.number().min(0).max(1).default(0.95),
    /** Standardise Â over the batch's valid steps (mean/std), as PPO and MDPO do. */
    normalize: z.boolean().default(true),
    eps: z.number().positive().default(1e-8),
  }),
  needs: ["tokenMask", "stepValues"],
  granularity: "token",
  tokenRewards: true,
  groupRelative: false,
  estimate(batch, p): TokenAdvantages {
    const mask = requireMask(batch, "gae");
    const { values, tokenRewards } = batch;
    const [n, t] = mask.shape as [number, number];
    if (values === undefined || values.shape[0] !== n || values.shape[1] !== t + 1)
      throw new CohortError(
        `estimator "gae" needs RewardBatch.values [${n}, ${t + 1}] (a critic's V(s_t) and the bootstrap)`,
      );
    const m = tidy(() => mask.to("f64").data() as Float64Array);
    // per-step rewards; absent: the row's reward r_i on its last valid step (the pipeline's convention)
    let r: Float64Array;
    if (tokenRewards !== undefined) r = tidy(() => tokenRewards.to("f64").data() as Float64Array);
    else {
      r = new Float64Array(n * t);
      for (let i = 0; i < n; i++) {
        const ri = batch.rewards[i] as number;
        if (Number.isNaN(ri)) continue;
        for (let j = t - 1; j >= 0; j--) {
          if ((m[i * t + j] as number) > 0) {
            r[i * t + j] = ri;
            break;
          }
        }
      }
    }
    const v = tidy(() => values.to("f64").data() as Float64Array);
    const { adv } = gaeReturns(r, v, m, n, t, p.gamma, p.lambda);
    if (p.normalize) {
      let s = 0;
      let c = 0;
      for (let k = 0; k < n * t; k++) {
        if ((m[k] as number) > 0) {
          s += adv[k] as number;
          c++;
        }
      }
      const mean = c > 0 ? s / c : 0;
      let ss = 0;
      for (let k = 0; k < n * t; k++) if ((m[k] as number) > 0) ss += ((adv[k] as number) - mean) ** 2;
      const std = c > 1 ? Math.sqrt(ss / (c - 1)) : 0;
      for (let k = 0; k < n * t; k++) adv[k] = (m[k] as number) > 0 ? ((adv[k] as number) - mean) / (std + p.eps) : 0;
    }
    return { kind: "token", values: tensor(adv, { shape: [n, t], device: devOf(mask) }) };
  },
});
