/**
 * Presets: named points of the design space (ALGORITHMS.md §C.2). A preset is plain data — an advantage
 * estimator (by name) and its options, reward combination and shapers, reweighters, filters, the ratio level,
 * the clip/gate and its parameters, regularizers, the aggregator and rollout-level fields (src/rollout).
 * `resolvePreset(name, overrides)` deep-merges user overrides into a preset and validates the result.
 *
 * Names of reward shapers, reweighters and filters (e.g. "overlong", "zero_std", "gtpo_conflict", "dgpo_dqw") refer to
 * the registries of the reward/reweight/filter modules and are validated there.
 * @module
 */
import { type AlgoConfig, type AlgoConfigInput, parseAlgoConfig, type ValidationContext } from "../algo/config.js";
import { Registry } from "../algo/registry.js";
import { ConfigError } from "../errors.js";

/** Confidence tags of ALGORITHMS.md: read in the authors' code, in a framework, standard, or abstract only. */
export type Confidence = "CODE" | "CODE-FW" | "PAPER" | "PAPER-KNOWN" | "ABSTRACT";

export interface Preset {
  name: string;
  /** Method name as the paper spells it. */
  title: string;
  /** One line for the README's method tables: what the preset changes from GRPO. */
  summary: string;
  /** arXiv id of the paper the preset follows. */
  arxiv: string;
  confidence: Confidence;
  /**
   * The policies it applies to: `language` (a causal LM, `model:`) and/or `control` (src/control, `policy:`).
   * Absent: language models (its inputs may still be available to control runs; config checks say).
   */
  policies?: readonly ("language" | "control")[];
  /** One paragraph: what the method changes, its defaults and their source, and any design choice. */
  doc: string;
  config: AlgoConfigInput;
}

export const presets = new Registry<Preset>("preset");

/** Registers a preset. Presets are validated by `resolvePreset` (and by the preset tests), because some
 * need a run-specific value first (Dr. GRPO's maxLength). */
function define(p: Preset): Preset {
  return presets.register(p.name, p);
}

const KL_004 = { type: "kl", estimator: "k3", beta: 0.04 } as const;

// arXiv 2402.03300 [CODE-FW]
define({
  name: "grpo",
  summary: "group-normalised advantages, PPO clip 0.2, k3 KL β 0.04, seq-mean-token-mean",
  title: "GRPO",
  arxiv: "2402.03300",
  confidence: "CODE-FW",
  doc:
    "Group Relative Policy Optimization as in DeepSeekMath: group-normalised advantages (r − mean)/(std + ε) " +
    "with the unbiased std, token-level PPO clip with ε = 0.2, a k3 KL penalty to the reference model with " +
    "β = 0.04 inside the loss (DeepSeek-R1 reports β = 0.001), and the per-sequence token mean averaged over " +
    "sequences (seq-mean-token-mean).",
  config: {
    advantage: { estimator: "grpo" },
    ratio: { level: "token" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2503.20783 [CODE-FW]
define({
  name: "dr_grpo",
  summary: "no std division; constant N·L_max normaliser",
  title: "Dr. GRPO",
  arxiv: "2503.20783",
  confidence: "CODE-FW",
  doc:
    "GRPO Done Right: advantages are r − mean without the std division (removes the question-difficulty " +
    "bias) and the loss is normalised by the constant N·L_max (seq-mean-token-sum-norm) instead of each " +
    "sequence's length (removes the response-length bias). No KL. L_max is run-specific: set " +
    "aggregate.maxLength to the max completion length when resolving this preset.",
  config: {
    advantage: { estimator: "dr_grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-sum-norm" },
  },
});

// arXiv 2503.14476 [CODE-FW]
define({
  name: "dapo",
  summary:
    "clip-higher 0.2/0.28, zero-std group filter with dynamic sampling (3 rounds), token-mean, overlong penalty, no KL",
  title: "DAPO",
  arxiv: "2503.14476",
  confidence: "CODE-FW",
  doc:
    "Decoupled clip and dynamic sampling: clip-higher (ε_low = 0.2, ε_high = 0.28), token-level loss " +
    "(token-mean over the whole step), groups whose rewards are all equal are dropped (filter zero_std) and " +
    "the batch is refilled by extra generation rounds until it holds B groups with reward variance " +
    "(algo.rollout.dynamicSampling: at most 3 rounds, then train on the groups kept; advantages are computed " +
    "after the filter, as verl does), the soft overlong penalty (L_max = 20480, L_cache = 4096, factor 1) and no KL.",
  config: {
    advantage: { estimator: "grpo" },
    shapers: [{ name: "overlong", options: { maxLength: 20480, cacheLength: 4096, factor: 1 } }],
    sampleFilters: [{ name: "zero_std" }],
    gate: { type: "clip", low: 0.2, high: 0.28 },
    aggregate: { mode: "token-mean" },
    rollout: { dynamicSampling: { maxRounds: 3, onCap: "train-partial" } },
  },
});

// arXiv 2507.18071 [CODE-FW]
define({
  name: "gspo",
  summary: "sequence-level (length-normalised) ratio, clip 3e-4/4e-4",
  title: "GSPO",
  arxiv: "2507.18071",
  confidence: "CODE-FW",
  doc:
    "Group Sequence Policy Optimization: one length-normalised ratio per sequence, s = exp(mean_t(ℓ − ℓ_old)), " +
    "clipped with the tiny bounds ε_low = 3e-4, ε_high = 4e-4, the loss averaged over sequences, no KL. " +
    "Needs one advantage per sequence (use gspo_token for token-level advantages).",
  config: {
    advantage: { estimator: "grpo" },
    ratio: { level: "sequence" },
    gate: { type: "clip", low: 3e-4, high: 4e-4 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2507.18071 [CODE-FW]
define({
  name: "gspo_token",
  summary: "GSPO's ratio value with per-token gradients (token advantages allowed)",
  title: "GSPO-token",
  arxiv: "2507.18071",
  confidence: "CODE-FW",
  doc:
    "GSPO with the stop-gradient trick log s_{i,t} = sg(log s_i) + ℓ_{i,t} − sg(ℓ_{i,t}): the value of every " +
    "token ratio is the sequence ratio, the gradient is per token, so token-level advantages are allowed. With " +
    "per-sequence advantages it equals GSPO in value and gradient (this is how verl implements GSPO).",
  config: {
    advantage: { estimator: "grpo" },
    ratio: { level: "sequence-token" },
    gate: { type: "clip", low: 3e-4, high: 4e-4 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2511.20347 [CODE-FW]
define({
  name: "sapo",
  summary: "soft sigmoid gate τ+ 1.0 / τ− 1.05 instead of the hard clip",
  title: "SAPO",
  arxiv: "2511.20347",
  confidence: "CODE-FW",
  doc:
    "Soft Adaptive Policy Optimization: the hard clip is replaced by the smooth gate (4/τ)·σ(τ(ρ − 1)) on the " +
    "token ratio, τ_pos = 1.0 for positive and τ_neg = 1.05 for negative advantages; its gradient weight is 1 " +
    "on-policy and decays smoothly away from ρ = 1. Aggregated with seq-mean-token-mean.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "sapo", tauPos: 1.0, tauNeg: 1.05 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2402.14740 [CODE-FW]
define({
  name: "rloo",
  summary: "leave-one-out baseline",
  title: "RLOO",
  arxiv: "2402.14740",
  confidence: "CODE-FW",
  doc:
    "REINFORCE Leave-One-Out: the baseline of each completion is the mean reward of the other G − 1 " +
    "completions of its prompt, A = G/(G − 1)·(r − mean); otherwise the GRPO clipped loss with ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "rloo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2501.03262 [CODE-FW]
define({
  name: "reinforce_pp",
  summary: "whitened discounted returns, KL in the reward (k1), token-mean",
  title: "REINFORCE++",
  arxiv: "2501.03262",
  confidence: "CODE-FW",
  doc:
    "REINFORCE++ without a group baseline: discounted return-to-go of (token) rewards, whitened over all " +
    "valid tokens of the batch, KL placed in the reward (k1, β = 0.001 here, a conservative default), PPO clip " +
    "ε = 0.2 and token-mean aggregation.",
  config: {
    advantage: { estimator: "reinforce_plus_plus" },
    rewardKl: { beta: 0.001 },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2501.03262 [CODE-FW]
define({
  name: "reinforce_pp_baseline",
  summary: "group baseline, then whitening over the batch's tokens, KL in the reward",
  title: "REINFORCE++-baseline",
  arxiv: "2501.03262",
  confidence: "CODE-FW",
  doc:
    "REINFORCE++ with a group-mean baseline: A = r − mean over the prompt's group, then whitened over every " +
    "valid token of the batch; KL in the reward (k1, β = 0.001), PPO clip ε = 0.2, token-mean aggregation.",
  config: {
    advantage: { estimator: "reinforce_plus_plus_baseline" },
    rewardKl: { beta: 0.001 },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2506.02864 [CODE]
define({
  name: "bnpo",
  summary: "Beta-density normalisation of binary rewards",
  title: "BNPO",
  arxiv: "2506.02864",
  confidence: "CODE",
  doc:
    "Beta Normalization Policy Optimization for binary rewards: A = (r − p_q)/Beta_pdf(p_q; α, β) with α, β " +
    "from a method-of-moments Beta fit of the batch's group pass rates (α = max(1 + a/3, 1)); multi-part " +
    "rewards can be decomposed. GRPO clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "bnpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2601.05242 [CODE-FW]
define({
  name: "gdpo",
  summary:
    "each reward normalised in its group, the weighted sum normalised over the batch (weights from `rewards[].weight`)",
  title: "GDPO",
  arxiv: "2601.05242",
  confidence: "CODE-FW",
  doc:
    "Group reward-Decoupled Normalization: each reward function is normalised within the group separately, " +
    "the weighted sum is normalised again over the batch, so a high-variance reward cannot swamp the others. " +
    "Needs at least two reward functions. GRPO clip ε = 0.2, no KL (TRL default β = 0).",
  config: {
    advantage: { estimator: "gdpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2601.20614 [CODE]
define({
  name: "dgpo",
  summary: "MAD normalisation, difficulty question weights",
  title: "DGPO (MathForge)",
  arxiv: "2601.20614",
  confidence: "CODE",
  doc:
    "Difficulty-Aware Group Policy Optimization: group advantages divided by the mean absolute deviation " +
    "instead of the std (Σ|A| = G for every non-degenerate binary group), and question weights " +
    "V·softmax(−acc/T) with T = 2 that favour harder questions. GRPO clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "dgpo" },
    reweighters: [{ name: "dgpo_dqw", options: { temperature: 2.0 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2508.03772 [CODE]
define({
  name: "gtpo",
  summary:
    "conflict-token weights on the token advantages (signs before the entropy shift), entropy filter and shift, on-policy ratio, no clip",
  title: "GTPO",
  arxiv: "2508.03772",
  confidence: "CODE",
  doc:
    "Group-relative Trajectory-based Policy Optimization: conflict tokens (same token at the same position in " +
    "positive and negative completions) get weight 2 on positive and 0 on negative completions; completions " +
    "whose mean entropy exceeds 0.7 are dropped and the others' advantages shifted by −0.1·H (conflicts are found " +
    "from the advantages before the shift). δ multiplies the token advantages; each completion's loss is the mean " +
    "over its own tokens. On-policy REINFORCE-style ratio exp(ℓ − sg ℓ) without clipping, no KL and no reference " +
    "model. The reference code's extra division by max(1, n_conflict) is tokenFilters[0].options.divideByConflicts.",
  config: {
    advantage: { estimator: "grpo" },
    reweighters: [{ name: "gtpo_entropy", options: { threshold: 0.7, scale: 0.1 } }],
    tokenFilters: [{ name: "gtpo_conflict", options: { conflictWeight: 2.0, divideByConflicts: false } }],
    ratio: { level: "on-policy" },
    gate: { type: "none" },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2505.12366 [CODE]
define({
  name: "disco",
  summary: "discriminative objective over every question of the step, squared-hinge constraint on the step's KL",
  title: "DisCO",
  arxiv: "2505.12366",
  confidence: "CODE",
  doc:
    "Discriminative Constrained Optimization: no advantage and no clip; per question the mean score of the " +
    "positive completions minus τ·log mean exp(score/τ) of the negatives (score = mean token log-prob, τ = 10), " +
    "and a squared-hinge constraint on KL(π_old ‖ π_θ) with β = 1e3, δ = 1e-4 on the step's token-mean KL. " +
    "J is averaged over every question of the step: questions whose rewards are all equal add 0 and still count " +
    "(B.11, as the authors' code). Binary rewards.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    loss: { type: "disco", score: "logL", form: "lse", tau: 10 },
    regularizers: [{ type: "disco_kl", beta: 1e3, delta: 1e-4 }],
  },
});

// arXiv 2505.12366 [CODE]
define({
  name: "disco_b",
  summary: "DisCO with the plain difference of mean scores",
  title: "DisCO-b",
  arxiv: "2505.12366",
  confidence: "CODE",
  doc:
    "DisCO's basic form: the plain difference of mean scores of positive and negative completions per " +
    "question (score = mean token log-prob), with the same squared-hinge KL constraint (β = 1e3, δ = 1e-4); " +
    "all-equal questions count in 1/#questions.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    loss: { type: "disco", score: "logL", form: "b" },
    regularizers: [{ type: "disco_kl", beta: 1e3, delta: 1e-4 }],
  },
});

// arXiv 2512.04220 [CODE]
define({
  name: "llds",
  summary: "likelihood-preserving penalty against the LLD collapse",
  title: "GRPO + LLDS",
  arxiv: "2512.04220",
  confidence: "CODE",
  doc:
    "Likelihood-preserving regulariser against the lazy-likelihood-displacement collapse of GRPO in search " +
    "agents: λ·max(0, ℓ_old − ℓ) on tokens with A ≥ 0, only inside actions (contiguous model-generated runs) " +
    "whose total likelihood dropped (A-gate), normalised by all valid tokens; λ = 0.2, with k3 KL β = 0.001 " +
    "and PPO clip 0.2 as in the released scripts.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [
      { type: "kl", estimator: "k3", beta: 0.001 },
      { type: "llds", lambda: 0.2, gate: "action" },
    ],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2601.03723 [ABSTRACT]
define({
  name: "etr",
  summary: "clip bounds scaled by |A| and the group's pass-rate variance (design choice)",
  title: "ETR",
  arxiv: "2601.03723",
  confidence: "ABSTRACT",
  doc:
    "Elastic Trust Regions: clip bounds widen with |A| (micro level) and with the group's pass-rate variance " +
    "p(1 − p) (macro level). The bound formula ε·(1 + κ_a|A|)·(1 + κ_v(4p(1 − p) − 1)) with κ_a = κ_v = 0.5 " +
    "is a design choice; only the mechanism is from the paper.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "etr", low: 0.2, high: 0.2, kappaAdv: 0.5, kappaVar: 0.5 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2601.03320 [ABSTRACT]
define({
  name: "r2vpo",
  summary: "ratio-variance penalty with a dual variable instead of the clip (design choice)",
  title: "R²VPO",
  arxiv: "2601.03320",
  confidence: "ABSTRACT",
  doc:
    "Ratio-Variance Regularized Policy Optimization: no hard clip; a penalty λ·(Var(ρ) − δ_var) on the " +
    "variance of the token ratios with the dual variable λ updated by dual ascent after each step " +
    "(δ_var = 0.01, η = 0.1). The Lagrangian form and the defaults are design choices.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    regularizers: [{ type: "r2vpo", delta: 0.01, eta: 0.1, lambdaInit: 0 }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2601.05607 [ABSTRACT]
define({
  name: "dhpo",
  summary: "token and sequence ratios, each clipped to its own bounds, mixed (design choice)",
  title: "DHPO",
  arxiv: "2601.05607",
  confidence: "ABSTRACT",
  doc:
    "Dynamic Hybrid Policy Optimization: token and sequence ratios in one clipped surrogate, each clipped to " +
    "its own trust region before mixing (token 0.2/0.28, sequence 3e-4/4e-4). The mixing weight (0.5, or the " +
    "normalised token entropy with mix 'entropy') and the bounds are design choices.",
  config: {
    advantage: { estimator: "grpo" },
    ratio: {
      level: "hybrid",
      hybrid: { mix: "average", token: { low: 0.2, high: 0.28 }, sequence: { low: 3e-4, high: 4e-4 } },
    },
    // each branch clips to its own bounds (ratio.hybrid): the gate contributes only its type
    gate: { type: "clip" },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2506.02355 [CODE]
define({
  name: "unlikeliness",
  summary: "rank penalty for likely correct completions",
  title: "Unlikeliness reward",
  arxiv: "2506.02355",
  confidence: "CODE",
  doc:
    "Rewarding the unlikely: before GRPO normalisation, correct completions are scaled by " +
    "1 − β_rank·rank/G where rank orders the group by mean token log-prob (0 = least likely), β_rank = 0.25, " +
    "so rare correct proofs are reinforced more. The paper also raises the number of updates per batch " +
    "(a trainer setting). GRPO clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "grpo" },
    shapers: [{ name: "unlikeliness", options: { betaRank: 0.25 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2509.24203 [CODE]
define({
  name: "opmd",
  summary: "REINFORCE with a squared log-ratio penalty",
  title: "OPMD",
  arxiv: "2509.24203",
  confidence: "CODE",
  doc:
    "Online policy mirror descent in the group-relative REINFORCE view: L = −A·ℓ + c·(ℓ − ℓ_old)² per token " +
    "with A = r − mean (no std), c = 0.1, token-mean aggregation.",
  config: {
    advantage: { estimator: "dr_grpo" },
    gate: { type: "none" },
    loss: { type: "reinforce" },
    regularizers: [{ type: "opmd", coef: 0.1 }],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2509.24203 [CODE]
define({
  name: "asymre",
  summary: "REINFORCE with the baseline shifted down",
  title: "AsymRE",
  arxiv: "2509.24203",
  confidence: "CODE",
  doc:
    "Asymmetric REINFORCE: L = −A·ℓ − c·ℓ per token (the baseline shifted down by c = 0.1), A = r − mean, " +
    "token-mean aggregation.",
  config: {
    advantage: { estimator: "dr_grpo" },
    gate: { type: "none" },
    loss: { type: "reinforce" },
    regularizers: [{ type: "asymre", coef: 0.1 }],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2509.24203 [CODE]
define({
  name: "rec",
  summary: "REINFORCE with detached-ratio masks (one-side)",
  title: "REC",
  arxiv: "2509.24203",
  confidence: "CODE",
  doc:
    "REINFORCE with clipping as regularisation: L = −A·sg(ρ)·ℓ on tokens kept by the one-side mask " +
    "(A ≥ 0 ∧ ρ ≤ 1 + ε_high, or A ≤ 0 ∧ ρ ≥ 1 − ε_low; ε = 0.2), A = r − mean, token-mean aggregation. " +
    "Two-side and ring masks and the advantage weight exp(A/temp) are options.",
  config: {
    advantage: { estimator: "dr_grpo" },
    gate: { type: "none" },
    loss: { type: "rec", mask: "one-side", weight: "importance_sampling", low: 0.2, high: 0.2 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2506.07464 [ABSTRACT]
define({
  name: "reg_grpo",
  summary: "regression of the scaled log-ratio onto the advantage (design choice)",
  title: "Reg-GRPO",
  arxiv: "2506.07464",
  confidence: "ABSTRACT",
  doc:
    "Regressive GRPO (DeepVideo-R1): the group-centred mean log-ratio of each completion is regressed onto " +
    "its GRPO advantage with a squared error, without clip or min. The regression target and scale " +
    "(β_r = 1) are a design choice.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    loss: { type: "reg_grpo", scale: 1 },
  },
});

// arXiv 2310.02743 [PAPER-KNOWN]
define({
  name: "rm_ensemble_wco",
  summary: "reward-model ensemble: min over the models",
  title: "RM ensemble, worst-case (WCO)",
  arxiv: "2310.02743",
  confidence: "PAPER-KNOWN",
  doc:
    "Reward-model ensembles against over-optimisation: the reward is the minimum over K reward models " +
    "(worst-case optimisation), with a small KL penalty (k3, β = 0.01; the paper pairs ensembles with KL 0.01). " +
    "Needs at least two reward functions.",
  config: {
    advantage: { estimator: "grpo" },
    reward: { combine: "ensemble_wco" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "kl", estimator: "k3", beta: 0.01 }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2310.02743 [PAPER-KNOWN]
define({
  name: "rm_ensemble_uwo",
  summary: "reward-model ensemble: mean − λ·variance",
  title: "RM ensemble, uncertainty-weighted (UWO)",
  arxiv: "2310.02743",
  confidence: "PAPER-KNOWN",
  doc:
    "Reward-model ensembles, uncertainty-weighted: the reward is mean_k R_k − λ·Var_k(R_k) (population " +
    "variance over the models, λ = 0.5; the paper sweeps λ), with a small k3 KL penalty β = 0.01.",
  config: {
    advantage: { estimator: "grpo" },
    reward: { combine: "ensemble_uwo", options: { lambda: 0.5 } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "kl", estimator: "k3", beta: 0.01 }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2503.16081 [ABSTRACT]
define({
  name: "grpo_d",
  summary: "KL weight on a schedule (linear 0 → 0.04, design choice)",
  title: "GRPO-D (OThink-MR1)",
  arxiv: "2503.16081",
  confidence: "ABSTRACT",
  doc:
    "GRPO with a dynamic KL weight: β follows a schedule instead of a constant, moving from exploration " +
    "(small β) to exploitation (larger β). The schedule (linear 0 → 0.04 over 1000 steps) is a design choice.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "kl", estimator: "k3", beta: { kind: "linear", start: 0, end: 0.04, steps: 1000 } }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2510.20150 [CODE] (partly: per-rank advantage normalisation assumed)
define({
  name: "rank_grpo",
  summary:
    "rank-level rewards (suffix DCG) normalised per rank, item ratios; trains on ranking tasks (`nearest`, examples/rank_grpo.yaml)",
  title: "Rank-GRPO",
  arxiv: "2510.20150",
  confidence: "CODE",
  doc:
    "Rank-GRPO for ranked lists: rank-level rewards (suffix DCG), advantages normalised per rank across the " +
    "group, and a rank-level ratio (geometric mean of the token ratios of each item) in the clipped surrogate " +
    "(ε = 0.2). Needs the rank rewards and the item id of every token, which `cohort train` reads from a " +
    "ranking task (src/task/ranking.ts, e.g. `nearest`).",
  config: {
    advantage: { estimator: "rank_grpo" },
    ratio: { level: "item" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2509.21268 [CODE]
define({
  name: "vas",
  summary: "half of each batch drawn ∝ p(1 − p) of the prompt's latest rollouts",
  title: "VAS (MMR1)",
  arxiv: "2509.21268",
  confidence: "CODE",
  doc:
    "Variance-Aware Sampling: every prompt seen in training gets a Variance Promotion Score, the outcome " +
    "variance p(1 − p) of its latest rollouts (p = pass rate of the success reward; the released config uses " +
    "this learnability term only, weight 1; a distinct-2 diversity term is available), and half of each batch " +
    "(mixtureRatio 0.5) is drawn ∝ VPS with replacement, the rest uniformly. The probes are the training " +
    "rollouts themselves (MMR1 runs 8 separate probes every 4 steps). GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { promptSampler: { name: "vas", options: { mixtureRatio: 0.5 } } },
  },
});

// arXiv 2601.19280 [ABSTRACT]
define({
  name: "gdro_prompt",
  summary: "multiplicative weights over pass@k difficulty bins (design choice)",
  title: "Prompt-GDRO",
  arxiv: "2601.19280",
  confidence: "ABSTRACT",
  doc:
    "Group DRO over prompt difficulty: prompts are binned online by the pass@k of their latest rollouts " +
    "(4 equal-width bins, k = 1), bin weights follow multiplicative weights w ← w·exp(η·ℓ̂) with ℓ̂ the " +
    "bias-corrected EMA (β = 0.9) of the bin's failure rate and η = 0.1, and a prompt is drawn from a bin ∝ w " +
    "(then uniformly within it) or, with probability γ = 0.2, fresh from the task. The binning, the signal, " +
    "the EMA correction and the γ-mixing are a design choice; GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { promptSampler: { name: "gdro_prompt", options: { bins: 4, k: 1, eta: 0.1, beta: 0.9, gamma: 0.2 } } },
  },
});

// arXiv 2601.19280 [ABSTRACT]
define({
  name: "gdro_rollout",
  summary: "completions per prompt ∝ sqrt(p(1 − p)), min 2, Σ = B·G (design choice)",
  title: "Rollout-GDRO",
  arxiv: "2601.19280",
  confidence: "ABSTRACT",
  doc:
    "Group DRO over the rollout budget: the B·G completions of a step are reallocated across prompts by the " +
    "square-root rule n_q ∝ sqrt(p̂(1 − p̂)) (p̂ = pass rate of the prompt's recent rollouts, smoothed towards " +
    "0.5 with one pseudo-observation), at least 2 per prompt, rounded so the total stays exactly B·G. The " +
    "smoothing and rounding are a design choice (the paper's shadow-price controller is not specified); GRPO " +
    "objective otherwise, with groups of different sizes.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { budget: { name: "gdro_sqrt", options: { min: 2, prior: 0.5, priorStrength: 1 } } },
  },
});

// arXiv 2602.03584 [ABSTRACT]
define({
  name: "v0_budget",
  summary: "skip prompts predicted ≈0/≈1, √-rule over the rest (design choice)",
  title: "V₀ budget allocation",
  arxiv: "2602.03584",
  confidence: "ABSTRACT",
  doc:
    "Budget allocation from a predicted success rate at state zero: p̂(q) is the prompt's recent pass rate " +
    "shrunk towards the policy's recent global pass rate (half a pseudo-observation; unseen prompts get the " +
    "global rate). Prompts with " +
    "p̂ < 0.1 or > 0.9 and at least 4 observed completions are skipped; the rest share the B·G completions " +
    "by n_q ∝ sqrt(p̂(1 − p̂)), at least 2 each. The predictor and the allocation rule are a design choice " +
    "(the paper's value model is a learned in-context predictor); GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: {
      budget: { name: "v0", options: { skipBelow: 0.1, skipAbove: 0.9, minObservations: 4, priorStrength: 0.5 } },
    },
  },
});

// arXiv 2602.09000 [ABSTRACT]
define({
  name: "igrpo",
  summary: "G/2 drafts, best draft appended to the prompt, G/2 refinements trained; Σ = B·G (design choice)",
  title: "iGRPO (iterative self-feedback)",
  arxiv: "2602.09000",
  confidence: "ABSTRACT",
  doc:
    "Two-stage rollouts under the budget of plain GRPO: per prompt, G1 = round(0.5·G) drafts are sampled and " +
    "scored with the unchanged reward, the best draft (highest success reward) is written into the prompt " +
    '("{prompt}\\nDraft: {draft}\\nImproved: "), and the G2 = G − G1 refinements sampled from it are the group ' +
    "that is trained (drafts get no gradient); G1 + G2 = G, so a step samples exactly B·G completions. The " +
    "split, the template and the draft choice are a design choice; GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { wrapper: { name: "igrpo", options: { draftFraction: 0.5 } } },
  },
});

// arXiv 2602.03143 [CODE]
define({
  name: "sage",
  summary:
    "all-fail groups re-sampled with policy-written hints of level 1–3 (from the reference); reward on the original problem; clip 0.2/0.28, no KL",
  title: "SAGE (self-hinting)",
  arxiv: "2602.03143",
  confidence: "CODE",
  doc:
    "A prompt whose whole group fails is re-sampled (all G completions) with hints of escalating level 1, 2, 3 " +
    "until one completion succeeds; the hinted group replaces the original and is trained conditioned on the " +
    "hinted prompt, while the reward is computed against the original problem. The hints are written by the " +
    "policy itself (same sampler and sampling parameters) from the problem and its reference solution " +
    "(meta.solution, else the answer), as in the paper; the hint-writing rows are not trained (the released code " +
    "trains only the solving rows). Design choice: one short generation per level with a level instruction " +
    "(minimal, medium, detailed) instead of one JSON object holding all three; `hints: answer_prefix` uses " +
    "answer-prefix hints instead. Clip-higher (0.2, 0.28), no KL, as in run_sage.sh.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.28 },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { wrapper: { name: "sage", options: { levels: 3, hints: "policy" } } },
  },
});

// arXiv 2510.19807 [CODE]
define({
  name: "scaf_grpo",
  summary:
    "once the success rate plateaus (≥ 50 steps), 1 rollout per concept → step → answer hint level; lowest successful level replaces 1 of G; no KL",
  title: "Scaf-GRPO (scaffolded hints)",
  arxiv: "2510.19807",
  confidence: "CODE",
  doc:
    "Hints start once independent learning has plateaued: after at least 50 steps (the released warm-up) and " +
    "once the batch success rate of the last W = 10 steps is no more than δ = 0.01 above that of the 10 before " +
    "(the plateau rule and W, δ are a design choice; the trigger is checkpointed). Then every all-fail group " +
    "gets one completion per level of its hint ladder, the paper's tiers concept → step → answer with parts " +
    "revealed cumulatively (meta.hints {concept, step, answer} when the data has them, derived for built-in " +
    "arithmetic, else 4 answer-prefix levels), and the correct completion of the lowest level replaces one of " +
    "the G failed ones, trained on its hinted prompt; the reward is unchanged. No KL.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: {
      wrapper: {
        name: "scaf_grpo",
        options: { trigger: "plateau", warmupSteps: 50, plateauWindow: 10, plateauDelta: 0.01, hints: "tiers" },
      },
    },
  },
});

// arXiv 2512.06337 [ABSTRACT]
define({
  name: "dagrpo",
  summary:
    "all-fail groups get one off-policy anchor (the reference answer) in place of a sampled row; near-identical rows on opposite sides of the mean are masked (design choice)",
  title: "DaGRPO (distinctiveness-aware GRPO)",
  arxiv: "2512.06337",
  confidence: "ABSTRACT",
  doc:
    "Two mechanisms on top of GRPO. Off-policy anchors: a prompt whose whole group fails gets one anchor " +
    'response, its reference answer written as "<answer>{answer}</answer>", in place of the last sampled row ' +
    "(group size and budget unchanged); its log-probs are the training model's and it is left out of the " +
    "sampler mismatch metric. Pair masking (sample filter dagrpo_pairs): two completions of a group that are " +
    "near-identical (normalised edit similarity ≥ 0.95) but on opposite sides of the group's mean reward both " +
    "leave the loss. The anchors' source and format, the similarity and the conflict rule are design choices " +
    "(the paper uses expert responses and an unspecified fine-grained scorer); GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    sampleFilters: [{ name: "dagrpo_pairs", options: { minSimilarity: 0.95 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: { wrapper: { name: "dagrpo", options: { template: "<answer>{answer}</answer>" } } },
  },
});

// arXiv 2510.04392 [ABSTRACT]
define({
  name: "ps_grpo",
  summary:
    "a group spans m paraphrases; reward = answer agreement with the other paraphrases' rollouts; advantages over the set (design choice)",
  title: "PS-GRPO (paraphrased-set GRPO, Con-RAG)",
  arxiv: "2510.04392",
  confidence: "ABSTRACT",
  doc:
    "Groups over paraphrase sets: a prompt's G completions are sampled as G/m rollouts of each of m = 2 " +
    "paraphrases (the prompt and a paraphrase from the dataset's paraphrases field or the task), the whole set " +
    "is one group (advantages normalised over it), and each rollout's reward is its mean similarity to the " +
    "rollouts of the other paraphrases (exact agreement of the extracted answers), which replaces the success " +
    "reward (consistency without ground truth, as in Con-RAG; set correctnessWeight to add it back). The " +
    "similarity metric, m and the normalisation over the set are design choices; GRPO objective otherwise.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [KL_004],
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: {
      wrapper: { name: "ps_grpo", options: { setSize: 2, similarity: "exact", correctnessWeight: 0 } },
    },
  },
});

// ---- agents (multi-turn environments, src/env): rows are agent steps, advantages go to each turn's actions ----

// arXiv 2505.10978 [CODE]
define({
  name: "gigpo",
  summary: "episode advantage plus step advantage among steps from the same state",
  title: "GiGPO (Group-in-Group Policy Optimization)",
  arxiv: "2505.10978",
  confidence: "CODE",
  doc:
    "Two-level advantages for multi-turn agents: the episode level A^E = R^E − mean over the G episodes of a " +
    "task (mode mean_norm, the function default of verl-agent's core_gigpo), plus ω·A^S at the step level, where " +
    "steps of the task group taken from the same anchor state (identical observation) form a step group and " +
    "A^S = R^S − mean over it with R^S the discounted return-to-go of the step rewards (γ = 0.95, ω = 1); a " +
    "state visited once gets A^S = 0. Each step's advantage goes to that turn's action tokens; observation tokens " +
    "are masked. Clip ε = 0.2, token-mean aggregation (verl's default), no KL (design choice).",
  config: {
    advantage: { estimator: "gigpo", options: { gamma: 0.95, omega: 1, mode: "mean" } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2505.22095 [ABSTRACT]
define({
  name: "step_grpo",
  summary: "step rewards normalised per step index (design choice)",
  title: "Step-GRPO (R1-Router)",
  arxiv: "2505.22095",
  confidence: "ABSTRACT",
  doc:
    "Step-wise GRPO: every step of an episode has its own reward (the environment's step reward), and the " +
    "rewards of the steps with the same index across the G episodes of a task are group-normalised " +
    "(r − mean)/(std + ε); the advantage goes to that step's action tokens. The grouping by step index and the " +
    "normalisation are a design choice (the paper's abstract only states step-specific rewards). Clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "step_grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2602.08847 [CODE]
define({
  name: "dr_mas",
  summary: "normalisation per (prompt, agent)",
  title: "Dr. MAS (agent-wise normalisation)",
  arxiv: "2602.08847",
  confidence: "CODE",
  doc:
    "Multi-agent GRPO with agent-wise normalisation: every agent invocation (step) carries its episode's outcome " +
    "reward, and the mean and std are taken over the invocations of the same agent (info.agent of the step) within " +
    "the task group, A = (r − mean_{q,agent})/(std_{q,agent} + ε), instead of one global baseline; this keeps " +
    "each agent's gradient scale calibrated. Clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "dr_mas" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2511.13288 [ABSTRACT]
define({
  name: "m_grpo",
  summary: "main and aligned sub-agent rows normalised separately (design choice)",
  title: "M-GRPO (main agent + sub-agents)",
  arxiv: "2511.13288",
  confidence: "ABSTRACT",
  doc:
    "Hierarchical multi-agent GRPO: the main agent's steps (agent 0) and the sub-agents' steps (other agent ids) " +
    "are normalised in separate groups, all with the episode's outcome reward. Trajectory alignment (design " +
    "choice): each episode contributes exactly K_sub = 2 sub-agent steps, the first two kept and the rest dropped " +
    "(advantage 0), or fewer repeated cyclically (the advantage multiplied by the repeat count), so every rollout " +
    "weighs the same. Clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "m_grpo", options: { subAgentSteps: 2 } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2510.14388 [ABSTRACT]
define({
  name: "hi_agent",
  summary: "step reward plus execution feedback, normalised over steps from the same state (design choice)",
  title: "Hi-Agent (foresight advantage)",
  arxiv: "2510.14388",
  confidence: "ABSTRACT",
  doc:
    "Foresight advantage for a high-level agent: each step's reward is the environment's step reward plus " +
    "λ = 0.5 when the step's execution succeeded and advanced the task (info.executed, the low-level execution " +
    "feedback), group-normalised over the steps taken from the same state of the same task. The combination " +
    "r_env + λ·1[executed] and λ are a design choice (the abstract states only that execution feedback guides " +
    "the high-level advantage). Clip ε = 0.2, no KL.",
  config: {
    advantage: { estimator: "hi_agent", options: { lambda: 0.5 } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2601.12730 [CODE]
define({
  name: "dcpo",
  summary: "advantage mixed toward π_old at a target temperature chosen from the last update's entropy (state)",
  title: "DCPO",
  arxiv: "2601.12730",
  confidence: "CODE",
  doc:
    "Distribution-Centric Policy Optimization: the advantage is mixed toward a REINFORCE-on-correct term " +
    "re-weighted to π_old at a target temperature T (1.2 when the last update's entropy H ≤ 0.5, else 0.8): " +
    "A' = (1 − α)A + α·b·ρ^T with α = min(|0.5 − H|, 0.1)/p, α ← α/(1 + α), b = 1[r > 0.05], p the batch's " +
    "fraction of correct completions. H (−mean ℓ of the last update) is state carried between steps and in " +
    "checkpoints. GRPO advantages, clip 0.2, token-mean (verl), no KL, as the released script.",
  config: {
    advantage: { estimator: "grpo" },
    reweighters: [{ name: "dcpo", options: { entropyBase: 0.5, maxShift: 0.1, correctThreshold: 0.05 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2510.00819 [ABSTRACT]
define({
  name: "capo",
  summary: "tokens with the top 8% curvature score leave the loss (score: design choice)",
  title: "CAPO",
  arxiv: "2510.00819",
  confidence: "ABSTRACT",
  doc:
    "Curvature-Aware Policy Optimization: tokens whose curvature score is in the top 8% of the step's tokens " +
    "leave the loss (the abstract: fewer than 8% of tokens rejected). The score is a design choice: " +
    "‖∇_z log π(o_t)‖² = 1 − 2p(o_t) + Σ_v p_v², the token's empirical-Fisher term in logit space (score filter, " +
    "source curvature, quantile 0.92). GRPO otherwise (clip 0.2, no KL).",
  config: {
    advantage: { estimator: "grpo" },
    tokenFilters: [{ name: "score", options: { source: "curvature", quantile: 0.92, drop: "above" } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2602.05281 [ABSTRACT]
define({
  name: "arm",
  summary: "confidence reweighting of positive advantages (design choice)",
  title: "ARM / ProGRPO",
  arxiv: "2602.05281",
  confidence: "ABSTRACT",
  doc:
    "Advantage re-weighting by confidence: positive advantages are scaled by (c_i/c̄_q)^(−α), α = 0.5, clamped " +
    "to [0.5, 2], with c_i the completion's mean token probability under π_old and c̄_q the mean over the group's " +
    "positive completions: over-confident correct paths get less, under-explored ones more. The formula is a " +
    "design choice (B.19). GRPO otherwise (clip 0.2, no KL).",
  config: {
    advantage: { estimator: "grpo" },
    reweighters: [{ name: "arm", options: { alpha: 0.5, form: "multiplicative", minWeight: 0.5, maxWeight: 2 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2503.18991 [ABSTRACT]
define({
  name: "grpo_s",
  summary: "difficulty-scaled rewards, batch-std advantages (design choice)",
  title: "GRPO-S (DR-IRL)",
  arxiv: "2503.18991",
  confidence: "ABSTRACT",
  doc:
    "Difficulty-scaled rewards: r' = r·(1 + κ(1 − acc_q)) with κ = 1 and acc_q the group's mean reward, so hard " +
    "questions weigh up to twice as much. A per-group factor cancels under the group std, so advantages divide by " +
    "the batch std (scale batch). The difficulty measure (group accuracy) and κ are design choices: the paper's " +
    "measure (CLIP similarity × reward gaps) is not available.",
  config: {
    advantage: { estimator: "grpo", options: { scale: "batch" } },
    shapers: [{ name: "difficulty_scale", options: { kappa: 1 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2310.02743 [PAPER-KNOWN]
define({
  name: "rm_ensemble_mean",
  summary: "reward-model ensemble: mean over the models",
  title: "RM ensemble, mean",
  arxiv: "2310.02743",
  confidence: "PAPER-KNOWN",
  doc:
    "Reward-model ensemble, mean optimisation: the reward is the mean over K reward models, with a small KL " +
    "penalty (k3, β = 0.01). Needs at least two reward functions.",
  config: {
    advantage: { estimator: "grpo" },
    reward: { combine: "ensemble_mean" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "kl", estimator: "k3", beta: 0.01 }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2601.05242 [CODE-FW] (the safety weighting is a design choice)
define({
  name: "safe_gdpo",
  summary: "GDPO over a task and a safety reward weighted 1 : 2, small KL (design choice)",
  title: "Multi-objective safety (GDPO)",
  arxiv: "2601.05242",
  confidence: "CODE-FW",
  doc:
    "Two objectives, task reward then safety reward (in that order in `rewards`), normalised separately within " +
    "each group (GDPO) so that a high-variance task reward cannot swamp the safety signal, with safety weighted " +
    "twice (weights [1, 2], a design choice) and a small KL (k3, β = 0.01) to the reference.",
  config: {
    advantage: { estimator: "gdpo" },
    reward: { weights: [1, 2] },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "kl", estimator: "k3", beta: 0.01 }],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2508.10751 [CODE]
define({
  name: "passk",
  summary: "analytical pass@k advantage (k = 4) of binary rewards: exploration rewarded at the group level",
  title: "Pass@k Training",
  arxiv: "2508.10751",
  confidence: "CODE",
  doc:
    "Pass@k Training: the reward of a group is its pass@k, and its analytical advantage replaces GRPO's: with " +
    "n completions of which c are correct, ρ = 1 − C(n−c, k)/C(n, k), σ = sqrt(ρ(1 − ρ)), correct completions " +
    "get (1 − ρ)/σ and incorrect ones (1 − ρ − C(n−c−1, k−1)/C(n−1, k−1))/σ, as the authors' code " +
    "(code/passk_adv.py). k = 4; binary rewards (correct = r > 0.5). GRPO clip 0.2, no KL.",
  config: {
    advantage: { estimator: "passk", options: { k: 4, threshold: 0.5 } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

/** A deep partial of the config, for overrides. */
export type DeepPartial<T> = T extends readonly (infer _U)[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> | null }
    : T;

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x) && Object.getPrototypeOf(x) === Object.prototype;
}

/**
 * Deep merge: objects merge key by key, arrays and scalars from `override` replace, and `null` deletes the key
 * (`algo: {rewardKl: null}` removes a preset's KL in the reward). When an override object has a `type` (or
 * `kind`) different from the base's, it replaces the base object instead of merging, so that switching
 * `gate.type` from "clip" to "sapo" does not keep clip's keys.
 */
export function deepMerge<T>(base: T, override: unknown): T {
  if (override === undefined) return base;
  if (!isPlainObject(base) || !isPlainObject(override)) return override as T;
  for (const disc of ["type", "kind"]) {
    if (disc in override && disc in base && override[disc] !== base[disc]) return withoutNulls(override) as T;
  }
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(override)) {
    if (v === null) delete out[k];
    else out[k] = deepMerge(out[k], v);
  }
  return out as T;
}

function withoutNulls(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null));
}

// ---- preferences instead of rewards (ALGORITHMS.md §G.1–G.3): pairs of completions within a group -----------
// With `preference:` in the train config, each completion's reward is its win rate against its group.

// arXiv 2310.00212 [ABSTRACT]
define({
  name: "p3o",
  summary: "pairwise clipped policy gradient on reward differences within a group; shift-invariant",
  title: "P3O (Pairwise Proximal Policy Optimization)",
  arxiv: "2310.00212",
  confidence: "ABSTRACT",
  doc:
    "Pairwise PPO: for every unordered pair of completions of a prompt, the trajectory-wise policy gradient " +
    '(r1 − r2)·∇(log π(y1) − log π(y2))/2 with PPO clipping of each sequence ratio (V1 "separate", ε = 0.2; ' +
    'V2 "joint" clips ρ1/ρ2), no value network and no advantage normalisation. The sequence-level KL enters the ' +
    "reward, r̃ = r − β·log(π/π_ref) with β = 0.1, without gradient. Adding any prompt-dependent constant to the " +
    "rewards leaves every loss and gradient unchanged. Design choices (no code found; reconstruction from the " +
    "blog summary): all G(G−1)/2 pairs, y1 = the lower index, mean over a group's pairs, mean over the step's groups.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    loss: { type: "p3o", variant: "separate", clip: 0.2, beta: 0.1 },
    regularizers: [],
  },
});

// arXiv 2404.03715 [PAPER]
define({
  name: "dno",
  summary: "regression of η·log(π/π_t) differences onto win-rate targets of every pair; π_t = the rollout policy",
  title: "DNO (Direct Nash Optimization)",
  arxiv: "2404.03715",
  confidence: "PAPER",
  doc:
    "Direct Nash Optimization (Alg. 1): the reward of a completion is its expected win rate against the current " +
    "policy (estimated by the win rate against its group, `preference:`); the internal reward η·log(π/π_t) of " +
    "every pair is regressed onto it with the soft target σ(r1 − r2), loss −[t·log σ(Δ) + (1 − t)·log σ(−Δ)], " +
    "η = 0.1. π_t is the previous iterate, here the rollout policy of each step (design choice: one DNO iteration " +
    "per step, on-policy). `target: hard` is DNO-Prct's −log σ(Δ) on the winner of pairs whose rewards differ by " +
    "at least `margin`.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    loss: { type: "dno", eta: 0.1, target: "soft", anchor: "old" },
    regularizers: [],
  },
});

// arXiv 2505.19731 [ABSTRACT]
define({
  name: "nash_mp",
  summary: "mirror-prox step toward the β-regularised Nash equilibrium: REINFORCE on win rates, KL to π_ref and π_k",
  title: "Nash-MP (Nash Mirror Prox)",
  arxiv: "2505.19731",
  confidence: "ABSTRACT",
  doc:
    "Nash Mirror Prox for learning from human feedback, in the policy-gradient approximation of its proximal " +
    "steps (design choice, ALGORITHMS.md §G.3): each step maximises E[P(y ≻ π_k)] − β·KL(π‖π_ref) − (1/η)·KL(π‖π_k) " +
    "with the win rate against the group's samples of π_k as the reward, the group mean as baseline (dr_grpo) and " +
    "both KLs as token-level k3 losses, β = 0.1, η = 2. The exact two-query mirror-prox step over a finite set of " +
    "responses is src/algo/nash.ts (its last iterate converges to π*_β on a 3-action intransitive game); the " +
    "second query against the half step is not taken in the LLM loop.",
  config: {
    advantage: { estimator: "dr_grpo" },
    gate: { type: "none" },
    loss: { type: "nash_mp", beta: 0.1, eta: 2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2510.20022 [ABSTRACT]
define({
  name: "salt",
  summary: "step advantages from outcome rewards over the trajectory graph of a prompt (plug-in on GRPO/GiGPO)",
  title: "SALT (step-level advantages from a trajectory graph)",
  arxiv: "2510.20022",
  confidence: "ABSTRACT",
  doc:
    "The episodes of one prompt are merged into a graph whose nodes are identical steps (the same path of " +
    "observations and actions up to the step); every step gets the mean trajectory advantage (GRPO of the " +
    "outcome reward) over the trajectories through its node, so steps shared by successful and failed episodes " +
    "get a near-neutral advantage and decisive ones keep their sign. `base: gigpo` averages GiGPO's step " +
    "advantages instead; `node: state` merges (state, action) pairs wherever they occur. Clip ε = 0.2, " +
    "token-mean, no KL. Design choice (no code found): node keys and the mean over a node.",
  config: {
    advantage: { estimator: "salt", options: { base: "grpo" } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2601.07055 [CODE]
define({
  name: "drzero_hrpo",
  summary: "hop-grouped baselines: rows with the same hop count share one group across prompts (1 sample/prompt)",
  title: "Dr. Zero HRPO (hop-grouped relative PO)",
  arxiv: "2601.07055",
  confidence: "CODE",
  doc:
    "Dr. Zero's hop-grouped relative policy optimisation: instead of G samples per prompt, every row whose " +
    "prompt has the same hop count (the prompt field `hops`: a JSONL column, a task's meta or an environment " +
    "task's field, e.g. the wordnet environment's) joins one group, A = (R − mean)/(std_unbiased + 1e-6), and a " +
    "singleton group gets mean 0, std 1, as the authors' code does; so `train.groupSize: 1` carries a signal. " +
    "Clip ε = 0.2, token-mean, no KL (the released scripts). The proposer/solver self-evolution loop around it " +
    "is the wordnet environment's `selfPlay` option (src/train/selfplay-source.ts), not part of the preset.",
  config: {
    advantage: { estimator: "hop_grouped", options: { field: "hops" } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2506.08507 [ABSTRACT] (formula: design choice, ALGORITHMS.md G.5)
define({
  name: "mashost_hrpo",
  summary:
    "group-relative advantage of the episode reward + λ·standardised action-wise reward of each step (design choice)",
  title: "MasHost HRPO (hierarchical relative PO)",
  arxiv: "2506.08507",
  confidence: "ABSTRACT",
  doc:
    "MasHost's hierarchical relative policy optimisation: each agent step (a sampling decision) gets the " +
    "group-relative advantage of its episode's reward plus λ = 0.5 times its own action-wise reward (the " +
    "environment's step reward: component rationality) standardised over the group's steps of the same agent " +
    "id (node-adding decisions apart from exit decisions, whose rewards live on another scale; " +
    "examples/mashost/wordnet_mas.yaml). Clip ε = 0.2, token-mean, no KL. Design choice (abstract only): the " +
    "sum form, λ and the per-agent action statistics.",
  config: {
    advantage: { estimator: "mashost_hrpo", options: { lambda: 0.5, actionStats: "agent" } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2507.23581 [ABSTRACT] (rewards: design choice, ALGORITHMS.md G.7)
define({
  name: "graphrag_r1",
  summary: "GRPO over retrieval rollouts with the process-constrained rewards PRA then CAF (environment rewards)",
  title: "GraphRAG-R1",
  arxiv: "2507.23581",
  confidence: "ABSTRACT",
  doc:
    "GRPO (clip ε = 0.2, token-mean, no KL) for retrieval agents trained in phases: a cold start on the format " +
    "(`cohort pretrain --env wordnet`), then Progressive Retrieval Attenuation (env.options.reward.kind `pra`: " +
    "em + 0.5·Σ_{k≤n} 0.5^{k−1} over n retrievals, encouraging necessary retrievals), then Cost-Aware F1 (`caf`: " +
    "F1·exp(−0.1·n − 1e-4·characters), against over-retrieval and over-thinking), each phase starting from the " +
    "previous one's model (examples/graphrag_r1/). Design choice (abstract only): both reward formulas.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2507.20187 [ABSTRACT] (reward weights: design choice, ALGORITHMS.md G.8)
define({
  name: "multirole",
  summary: "GRPO on the verifiable reward + perspective diversity + distinct-2, weights 1, 0.5, 0.5 (design choice)",
  title: "MultiRole-R1",
  arxiv: "2507.20187",
  confidence: "ABSTRACT",
  doc:
    "Diversity as a reward beside the verifiable one: the run lists three rewards, the verifiable one, " +
    "`perspective` (min(#distinct `<role>…</role>` tags, 3)/3) and `distinct_2` (unique bigrams / bigrams), " +
    "summed with the run's weights (the example: `algo.reward.weights: [1, 0.5, 0.5]`, one per reward, so the " +
    "preset itself fits any number of rewards); GRPO clip ε = 0.2, token-mean, no KL. Design choice (abstract " +
    "only): the role-tag form, K = 3 and the weights.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2005.09814 [CODE] (GRPO-family form: design choice, ALGORITHMS.md E.1)
define({
  name: "mdpo",
  summary: "no clip; per-token proximity KL(π_θ‖π_old)/t_k, t_k = max(1 − k/K, 0.1); μ = 4 inner steps; token-mean",
  title: "MDPO",
  arxiv: "2005.09814",
  confidence: "CODE",
  policies: ["language", "control"],
  doc:
    "On-policy Mirror Descent Policy Optimization: several gradient steps (μ = train.innerIterations, 4 by default " +
    "here; the paper's code uses 10) on the linearised objective ρ·A plus the proximity KL(π_θ‖π_old)/t_k, with no " +
    "clipping: per token L = −ρA + κ/t_k, κ = ρ(ℓ − ℓ_old) − ρ + 1 (an unbiased estimate of KL(π_θ‖π_old) under " +
    "π_old), t_k = max(1 − k/K, 0.1) over the run's K generation steps. Group-normalised advantages (GRPO) from " +
    "rewards or episode returns; token-mean aggregation; no KL to a reference.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    regularizers: [{ type: "mdpo" }],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 1707.06347 [PAPER-KNOWN]
define({
  name: "ppo",
  summary: "learned critic, GAE(0.99, 0.95) standardised, PPO clip 0.2, token-mean (control policies)",
  title: "PPO",
  arxiv: "1707.06347",
  confidence: "PAPER-KNOWN",
  policies: ["control"],
  doc:
    "Proximal Policy Optimization with a learned critic as the baseline the control papers compare with: per-step " +
    "advantages by GAE (γ = 0.99, λ = 0.95, standardised over the batch's steps) from a state-value network " +
    "trained beside the policy (policy.critic, loss coef·mean (V − target)² with GAE targets), the ratio clipped at " +
    "0.2, the loss averaged over the step's time steps. Needs a control policy with `policy.critic`.",
  config: {
    advantage: { estimator: "gae" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2511.22169 [CODE]
define({
  name: "airq_grpo",
  summary:
    "advantages 0.9·centred rank + 0.1·EMA-normalised return (faker_air), no ratio clip (μ = 1), no KL, seq-mean-token-mean; env airq: class-wise rewards, horizon curriculum",
  title: "FAKER-Air GRPO",
  arxiv: "2511.22169",
  confidence: "CODE",
  policies: ["language", "control"],
  doc:
    "GRPO after SFT for air-quality forecasting (FAKER-Air, released code): G sampled forecast trajectories of one " +
    "input form a group; advantages A = 0.9·centred rank + 0.1·(R − m)/(√v + 1e-6) with EMAs (α = 0.05) m, v of " +
    "the group-mean reward (reweighter faker_air, replacing the estimator's); one on-policy gradient step per batch " +
    "(train.innerIterations 1, no ratio clipping) on −A·log π averaged over each trajectory's steps and then over " +
    "trajectories. The class-wise reward (exact class 1, false alarm −0.1), the step weights linspace(1, 0.75, H) " +
    "and the curriculum rollout over the horizon come with the `airq` control environment (src/control/airq.ts); " +
    "start from `cohort pretrain --env airq` via policy.init. Design choices: the EMAs are never reset (no epochs), " +
    "tied rewards share their average rank, no PI-controlled recall/FAR constraint terms and no KL to the SFT " +
    "model (a control run has no reference policy); a missed severe event costs 0.3 (env option).",
  config: {
    advantage: { estimator: "grpo" },
    reweighters: [{ name: "faker_air" }],
    gate: { type: "none" },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-mean" },
  },
});

// arXiv 2512.15973 [CODE] (components from the author's prototype; the training loop is a design choice, ALGORITHMS.md F.4)
define({
  name: "dr_rl",
  summary:
    "attention rank per layer and input (env attention_rank); group-normalised episode returns, no clip, token-mean",
  title: "DR-RL",
  arxiv: "2512.15973",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Dynamic Rank RL: a small policy picks, layer by layer for one input, the rank of the truncated-SVD queries and " +
    "keys of a shipped causal LM (env attention_rank, src/control/attention-rank.ts), rewarded per layer by " +
    "R = α·cos(O_full, O_r) − β·FLOPs − γ·‖ΔA‖_F (α 1, β 0.05, γ 0.1 as in the prototype; FLOPs and ‖ΔA‖ relative " +
    "to full rank, a design choice). The components (truncation, Eq. 8 rank-change perturbation, reward) follow the " +
    "author's code; the prototype's loop (REINFORCE without a baseline on placeholder tensors) is replaced by a " +
    "design choice: a group is G rank choices for the same input, episode returns are group-normalised (GRPO), " +
    "the ratio is not clipped and the loss is the mean over layer steps. No KL.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2302.01734 [CODE] (the authors' `sgd` baseline schedule; the group baseline: design choice)
define({
  name: "reinforce",
  summary:
    "REINFORCE: −Â·Σ_t log π, leave-one-out group baseline, plain SGD γ_t = γ_0(2/(t+2))^(2/3) (control policies)",
  title: "REINFORCE (vanilla policy gradient)",
  arxiv: "2302.01734",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Vanilla policy gradient, the baseline of N-PG-IGT and N-HARPG: per episode Â_i = the leave-one-out baseline of " +
    "the group's returns (RLOO; our design choice in place of the paper code's linear-feature baseline over per-step " +
    "returns), L = −(1/n) Σ_i Σ_t Â_i log π(a_t|s_t), and θ ← θ + γ_t g with γ_t = γ_0 (2/(t+2))^(2/3), γ_0 = 0.1 " +
    "(algo.control.optimizer.gamma0; train.lr is not used). One gradient per step: train.innerIterations and " +
    "miniBatches 1.",
  config: {
    advantage: { estimator: "rloo" },
    gate: { type: "none" },
    loss: { type: "reinforce" },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-sum" },
    control: { optimizer: { type: "pg" } },
  },
});

// arXiv 2302.01734 [CODE] (NIGT optimizer of the authors' code; the group baseline: design choice)
define({
  name: "npg_igt",
  summary: "N-PG-IGT: normalised momentum with implicit gradient transport (rollouts at the extrapolated point)",
  title: "N-PG-IGT",
  arxiv: "2302.01734",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Normalised policy gradient with implicit gradient transport (Fatkhullin et al. 2023): the episodes of step t " +
    "are sampled, and the gradient taken, at the extrapolated point θ̃_t = θ_t + ((1−η_{t−1})/η_{t−1})(θ_t − θ_{t−1}); " +
    "d_t = (1−η_t)d_{t−1} + η_t g_t, θ_{t+1} = θ_t + γ_t d_t/‖d_t‖ with γ_t = γ_0·2/(t+2), η_t = η_0(2/(t+2))^(4/5), " +
    "γ_0 = 0.1, η_0 = 1 (algo.control.optimizer). Gradient as `reinforce` (RLOO group baseline, a design choice). " +
    "Evaluation and export read θ_t; checkpoints hold d, θ_t and θ_{t−1}.",
  config: {
    advantage: { estimator: "rloo" },
    gate: { type: "none" },
    loss: { type: "reinforce" },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-sum" },
    control: { optimizer: { type: "npg_igt" } },
  },
});

// arXiv 2302.01734 [CODE] (STORMHess optimizer of the authors' code; B̂v as the paper writes it [PAPER-KNOWN])
define({
  name: "harpg",
  summary:
    "N-HARPG: recursive momentum with a Hessian-vector correction at a random interpolation point (double backward)",
  title: "N-HARPG",
  arxiv: "2302.01734",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Normalised Hessian-aided recursive policy gradient: d_t = (1−η_t)(d_{t−1} + B̂_t v_t) + η_t g_t with v_t = θ_t − θ_{t−1} " +
    "and B̂_t v_t = ∇Φ·(∇log p·v) + ∇²Φ·v from an independent batch (hessianGroups groups) sampled at θ̂_t = bθ_t + " +
    "(1−b)θ_{t−1}, b ~ U(0,1), computed by double backward; θ_{t+1} = θ_t + γ_t d_t/‖d_t‖, γ_t = γ_0·2/(t+2), " +
    "η_t = η_0·2/(t+2), γ_0 = 0.1, η_0 = 1. `normalized: false` is HARPG (γ_t = γ_0(2/(t+2))^(1/2)); `crossTerm: " +
    "authorsCode` reproduces the released code's sign and batch means. Two batches per step (the loop's and τ̂).",
  config: {
    advantage: { estimator: "rloo" },
    gate: { type: "none" },
    loss: { type: "reinforce" },
    regularizers: [],
    aggregate: { mode: "seq-mean-token-sum" },
    control: { optimizer: { type: "harpg" } },
  },
});

// arXiv 2410.06212 [PAPER] (Alg. 1; the span and the loop form: design choice)
define({
  name: "iwocs",
  summary: "IWOCS: train on the nominal model, add the worst model of the span for the robust policy, repeat (tabular)",
  title: "IWOCS (incremental worst-case search)",
  arxiv: "2410.06212",
  confidence: "PAPER",
  policies: ["control"],
  doc:
    "Incremental Worst-Case Search around the loop's policy optimizer (here GRPO-style group-normalised advantages, " +
    "clip 0.2, token-mean, AdamW): the run trains `stepsPerModel` steps on each model T_i of a span (env " +
    "robust_garnet), records Q_{T_i} = Q^π_{T_i} of the trained policy by exact evaluation, forms the robust " +
    "Q_i = min_{j≤i} Q_{T_j} and π_i = argmax Q_i, and adds T_{i+1} = argmin_T J_T(π_i) (brute force over the span) until " +
    "the robust value and the worst case agree within tol or maxModels models. Evaluation reports the worst-case " +
    "return over the span of the current policy and of π_i. Design choice: warm-started training per model.",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
    control: { iwocs: { stepsPerModel: 20, maxModels: 4, tol: 0.001 } },
  },
});

// arXiv 2306.12981 [ABSTRACT] (the loss, the grouping and the lift: design choice, ALGORITHMS.md E.5)
define({
  name: "action_grouping",
  summary:
    "group similar actions (k-means on estimated P̂, r̂), M by the approximation/estimation trade-off, train on the grouped MDP",
  title: "Action-space reduction by grouping",
  arxiv: "2306.12981",
  confidence: "ABSTRACT",
  policies: ["control"],
  doc:
    "Actions are grouped by k-means on pilot estimates of their transition distributions and rewards; the number of " +
    "groups M minimises Loss(M) = 2/(1−γ)²[ε_r + R_max√(L/2n) + (γV_max/2)(ε_P + √(2(|S|ln2 + L)/n))], n = N/(|S|M); the " +
    "grouped MDP is estimated from the budget N (samples: 20000) with the action uniform inside its group, and the " +
    "loop trains a tabular policy over groups on it (group-normalised advantages, clip 0.2, token-mean); evaluation " +
    "lifts it to the true MDP (the action uniform in the chosen group) and reports the exact optimality gap. The " +
    "whole formula set is our design choice (the paper body was not available).",
  config: {
    advantage: { estimator: "grpo" },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
    control: { grouping: { groups: "auto", samples: 20000 } },
  },
});

// arXiv 2512.02581 [CODE] (stages of K loop steps, elite decoder data: design choices, src/control/gorl.ts)
define({
  name: "gorl",
  summary:
    "PPO on a latent Gaussian (critic, GAE, clip 0.3) + flow-matching decoder refit every K steps (policy.kind gorl)",
  title: "GoRL",
  arxiv: "2512.02581",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Generative online RL: the policy is `policy.kind: gorl` — a latent Gaussian z ~ N(μ(s), σ²) decoded into the " +
    "action by a conditional flow-matching decoder (policy.decoder). The loop optimises the latent policy every step " +
    "with PPO on z (its log-probs are the exact Gaussian ones; the decoder is part of the environment): a learned " +
    "critic with GAE (γ = 0.99, λ = 0.95, standardised), the ratio clipped at 0.3 (the code's value after the first " +
    "stage), token-mean. The decoder is refit every decoderEvery steps by flow matching on the (s, a_pre) pairs of the " +
    "elite episodes of the stage's last steps — no action likelihood — and the latent policy restarts from N(0, " +
    "(ln 2)²). Design choices: the stage length in loop steps, the elite fraction, no z-regulariser. Needs " +
    "`policy.critic`.",
  config: {
    advantage: { estimator: "gae" },
    gate: { type: "clip", low: 0.3, high: 0.3 },
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2512.14202 [CODE] (the loss settings; the method's parts are the hyper_mlp policy and its critic)
define({
  name: "hyper_pp",
  summary:
    "Hyper++: PPO (GAE 0.999/0.95, clip 0.2, entropy 0.01) for a hyper_mlp policy with a categorical critic (control)",
  title: "Hyper++",
  arxiv: "2512.14202",
  confidence: "CODE",
  policies: ["control"],
  doc:
    "Hyperbolic PPO as in the authors' ProcGen settings: per-step advantages by GAE (γ = 0.999, λ = 0.95, " +
    "standardised over the batch's steps; the authors standardise per minibatch), the ratio clipped at 0.2, an " +
    "entropy bonus of 0.01, the loss averaged over the step's time steps. Hyper++'s three parts live in the policy " +
    "and are required with this preset: `policy: {kind: hyper_mlp}` (actor and critic heads are hyperboloid " +
    "MLRs on exp₀ of the features; features bounded by RMSNorm → tanh → a learned scale below atanh(0.95)) and " +
    "`policy.critic.categorical` (the HL-Gauss loss, 51 bins on [−10, 10]); src/control/hyper.ts, value.ts. " +
    "The authors run 2 epochs per batch (set train.innerIterations) and weigh the value loss 0.5 " +
    "(policy.critic.coef; on procmaze's small scale 0.05 learns and 0.5 does not: npm run bench:hyper). Rewards are " +
    "not normalised (design choice: set the categorical support to the task's returns).",
  config: {
    advantage: { estimator: "gae", options: { gamma: 0.999, lambda: 0.95 } },
    gate: { type: "clip", low: 0.2, high: 0.2 },
    regularizers: [{ type: "entropy", coef: 0.01 }],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2505.05470 [CODE]
define({
  name: "flow_grpo",
  summary:
    "flow-matching generators: terminal reward on every denoising step, (r − mean_g)/(pop. std of the batch + 1e-4), clip 1e-4, no KL",
  title: "Flow-GRPO",
  arxiv: "2505.05470",
  confidence: "CODE",
  policies: ["language", "control"],
  doc:
    "GRPO for a flow-matching generator sampled as an SDE (policy flow_sde on env digits_flow, src/generators): each " +
    "denoising step is a Gaussian transition with a log-prob (the per-pixel mean, as the authors' code), and the " +
    "terminal reward's advantage A_i = (r_i − mean_group)/(population std of all rewards of the step + 1e-4) " +
    "(stat tracker with global_std) is repeated on every step; clipped ratio with ε = 1e-4, the loss averaged over " +
    "steps and samples. Differences from the code: no KL to the reference (the code's β·‖Δmean‖²/(2σ²) term; a " +
    "control run has no reference policy), no clamp of A at ±5, and every step is trained (the code skips the last).",
  config: {
    advantage: { estimator: "grpo", options: { scale: "batch", std: "population", eps: 1e-4 } },
    ratio: { level: "token" },
    gate: { type: "clip", low: 1e-4, high: 1e-4 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2512.12387 [ABSTRACT] (design choice, ALGORITHMS.md F.2)
define({
  name: "vgpo",
  summary:
    "Flow-GRPO with per-step values of instant (projected) rewards, temporal weights and an absolute term k·Q that survives equal groups",
  title: "VGPO (Value-Anchored Group Policy Optimization)",
  arxiv: "2512.12387",
  confidence: "ABSTRACT",
  policies: ["language", "control"],
  doc:
    "Value-anchored GRPO for flow-matching generators, on top of Flow-GRPO's sampler and loss (clip 1e-4, " +
    "token-mean, no KL). Dense values: every denoising step's latent is projected to an image by one Euler step " +
    "(x̂_0 = x − t·v_θ) and scored (the instant reward R_{i,j}; digits_flow emits it as per-step rewards whose running " +
    "sum is R_{i,j}), Q_{i,j} = Σ_k γ^{k−j} R_{i,k} with γ = 0.9, and a temporal weight ω = Q_{i,j}/mean_j Q_{i,j}. " +
    "Advantages per step: ω·[(Q − μ_j)/(σ_j + ε) + k·Q·1[j < 5]] with k = 0.5 and μ_j, σ_j over the group at step j " +
    "— the absolute term keeps a signal when a group's rewards are all equal, where GRPO gives 0. Design choice " +
    "(only the abstract and reviews were available): the projection, γ, k, the σ-cancelled form of α = k·σ and the " +
    "first 5 steps with the absolute term. On a language model the instant rewards are 0 until the last token.",
  config: {
    advantage: { estimator: "vgpo" },
    ratio: { level: "token" },
    gate: { type: "clip", low: 1e-4, high: 1e-4 },
    regularizers: [],
    aggregate: { mode: "token-mean" },
  },
});

// arXiv 2601.20614 [PAPER] (DGPO as released; MQR's rewrites are rule-based, a design choice)
define({
  name: "mathforge",
  summary: "DGPO plus MQR: each question drawn as itself or a background / term / sub-problem reformulation",
  title: "MathForge (DGPO + MQR)",
  arxiv: "2601.20614",
  confidence: "PAPER",
  doc:
    "DGPO (MAD-normalised advantages, question weights V·softmax(−acc/T), T = 2, clip 0.2, no KL) trained on " +
    "MQR's multi-aspect reformulations: each drawn question is sampled as itself or one of three rewrites that " +
    "keep its answer (a story background, an invented term, a sub-problem for one of its numbers), uniformly, " +
    "like training on the released 4× augmented set; rewards score the original problem. Design choice: the " +
    "rewrites are rule-based (arithmetic and text questions with an integer), where the paper has a strong LLM " +
    "rewrite each question offline.",
  config: {
    advantage: { estimator: "dgpo" },
    reweighters: [{ name: "dgpo_dqw", options: { temperature: 2.0 } }],
    gate: { type: "clip", low: 0.2, high: 0.2 },
    aggregate: { mode: "seq-mean-token-mean" },
    rollout: {
      wrapper: { name: "mqr", options: { aspects: ["background", "term", "subproblem"], keepOriginal: true } },
    },
  },
});

/** The preset's data (throws ConfigError listing the known presets for an unknown name). */
export function getPreset(name: string): Preset {
  return presets.get(name, "preset");
}

export function presetNames(): string[] {
  return presets.names();
}

/**
 * A preset with user overrides deep-merged in, validated. Errors name the key path (e.g.
 * `algo.aggregate.maxLength` for Dr. GRPO without a max length).
 */
export function resolvePreset(
  name: string,
  overrides: DeepPartial<AlgoConfigInput> = {},
  ctx: ValidationContext = {},
): AlgoConfig {
  const preset = getPreset(name);
  const merged = deepMerge(structuredClone(preset.config), structuredClone(overrides));
  try {
    return parseAlgoConfig(merged, ctx);
  } catch (e) {
    if (e instanceof ConfigError) {
      throw new ConfigError(`${e.message.slice(e.path ? e.path.length + 2 : 0)} (preset "${name}")`, e.path);
    }
    throw e;
  }
}
