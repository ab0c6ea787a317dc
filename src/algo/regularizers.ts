/**
 * Regularizers (ALGORITHMS.md §C.1 slot `Regularizer[]`): terms added to the policy loss. A regularizer
 * returns a per-token term (`tokenLoss`, summed into the policy's per-token loss and aggregated with it) and/or
 * a scalar (`loss`, already normalised with the global counts). Stateful ones (dual variables, adaptive
 * coefficients) declare a `state` (component.ts `StateDef`): `compute` gathers statistics into it and
 * `endStep` applies the update once per optimizer step. Statistics that need the whole step (a global mean,
 * the step's KL) come from `prepass`: sums over every micro-batch of the step (and every data-parallel rank),
 * computed without gradient before the first backward pass and handed to `compute` as `ctx.global`, so every
 * regularizer gives the same loss and gradient however the step is split into micro-batches and ranks.
 * Metrics go under the regularizer's own prefix (`kl_reg/…`, `entropy_reg/…`, `r2vpo/…`): the trainer's
 * `kl` and `entropy` keep their documented meaning.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { cat, maximum, noGrad, type Tensor, tidy, zeros } from "../tensor/index.js";
import { type ComponentDef, ComponentRegistry, type StateDef } from "./component.js";
import type { GlobalCounts, LossBatch } from "./types.js";

export interface RegularizerContext {
  batch: LossBatch;
  /** ρ [N, T] at the configured ratio level (unclipped). */
  ratio: Tensor;
  /** Clamped token log-ratio ℓ − ℓ_old [N, T]. */
  tokenLogRatio: Tensor;
  /** A [N, T] (sequence advantages broadcast). */
  advantages: Tensor;
  counts: GlobalCounts;
  /** Optimizer step (for schedules). */
  step: number;
  /** This component's `prepass` sums over the whole step (absent: the batch is the whole step). */
  global?: Record<string, number>;
}

export interface RegularizerOutput {
  tokenLoss?: Tensor;
  loss?: Tensor;
  metrics: Record<string, number>;
}

/** A regularizer. Its params sit beside `type` in an `algo.regularizers` entry. */
export interface RegularizerDef<
  P extends z.ZodObject = z.ZodObject,
  S extends Record<string, number> = Record<string, number>,
> extends ComponentDef<P> {
  state?: StateDef<z.output<P>, S>;
  /** Step-wide sums this regularizer needs (see the module doc), with their field names; absent: none. */
  prepass?(ctx: Omit<RegularizerContext, "global">, params: z.output<P>): Record<string, number>;
  prepassFields?: readonly string[];
  /** Whether `prepass` applies under these params (default: whenever `prepass` is defined). */
  usesPrepass?(params: z.output<P>): boolean;
  compute(ctx: RegularizerContext, params: z.output<P>, state: S): RegularizerOutput;
  /** A KL penalty to π_ref (refused together with KL in the reward: one placement). */
  klToReference?: boolean;
  /** The option that holds the run's number of generation steps (filled from train.steps when unset). */
  runLength?: string;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const regularizers = new ComponentRegistry<RegularizerDef<any, any>>("regularizer");
function defineRegularizer<P extends z.ZodObject, S extends Record<string, number>>(
  def: RegularizerDef<P, S>,
): RegularizerDef<P, S> {
  return regularizers.define(def);
}

/** Mask-weighted mean Σ m x / Σ m as a number (0 when the mask is empty). */
export function maskedMean(x: Tensor, mask: Tensor): number {
  return tidy(() => {
    const m = mask.detach().to(x.dtype);
    const n = m.sum().item();
    return n === 0 ? 0 : x.detach().mul(m).sum().item() / n;
  });
}

// ---- KL to the reference policy (A.4) ----------------------------------------------------------

export const KL_ESTIMATORS = ["k1", "k2", "k3", "k1+", "k2+", "k3+"] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];

// Schulman's k1/k2/k3 KL estimators and verl's "+" forms.  arXiv 2402.03300 [CODE-FW]
/**
 * Per-token KL(π_θ ‖ π_ref) estimate with Δ = clamp(ℓ_ref − ℓ, ±deltaClamp):
 * k1 = −Δ, k2 = ½Δ², k3 = exp(Δ) − Δ − 1 (clamped to ±valueClamp). A "+" form has the named value and the
 * gradient of k2 (straight-through `k2 − sg(k2) + sg(kX)`, verl).  arXiv 2402.03300 [CODE-FW]
 */
export function klEstimate(
  logprobs: Tensor,
  refLogprobs: Tensor,
  estimator: KlEstimator,
  opts: { deltaClamp?: number; valueClamp?: number } = {},
): Tensor {
  const dc = opts.deltaClamp ?? 20;
  const vc = opts.valueClamp ?? 10;
  return tidy(() => {
    const delta = refLogprobs.sub(logprobs).clamp(-dc, dc);
    const base = estimator.replace("+", "") as "k1" | "k2" | "k3";
    const k =
      base === "k1"
        ? delta.neg()
        : base === "k2"
          ? delta.square().mul(0.5)
          : delta.exp().sub(delta).sub(1).clamp(-vc, vc);
    if (!estimator.endsWith("+") || base === "k2") return k;
    const k2 = delta.square().mul(0.5);
    return k2.sub(k2.detach()).add(k.detach());
  });
}

// KL in the reward (k1).  arXiv 2501.03262 [CODE-FW]
/**
 * KL placed in the reward (PPO style, verl `use_kl_in_reward`, REINFORCE++): the per-token reward term
 * `−β (ℓ_old − ℓ_ref)` (k1 on the behaviour policy), masked, without gradient.  arXiv 2501.03262 [CODE-FW]
 */
export function klInReward(oldLogprobs: Tensor, refLogprobs: Tensor, mask: Tensor, beta: number): Tensor {
  return noGrad(() => tidy(() => oldLogprobs.sub(refLogprobs).mul(-beta).mul(mask)));
}

export interface BetaSchedule {
  kind: "constant" | "linear" | "cosine" | "exponential";
  start: number;
  end: number;
  /** Steps over which β moves from start to end (then stays at end). */
  steps: number;
}

/**
 * β at an optimizer step. GRPO-D's dynamic KL; the schedule shapes are a design choice (ALGORITHMS.md B.30).
 * arXiv 2503.16081 [ABSTRACT]
 */
export function betaAt(beta: number | BetaSchedule, step: number): number {
  if (typeof beta === "number") return beta;
  const t = beta.steps <= 0 ? 1 : Math.min(1, Math.max(0, step / beta.steps));
  switch (beta.kind) {
    case "constant":
      return beta.start;
    case "linear":
      return beta.start + (beta.end - beta.start) * t;
    case "cosine":
      return beta.end + (beta.start - beta.end) * 0.5 * (1 + Math.cos(Math.PI * t));
    case "exponential":
      return beta.start * (beta.end / beta.start) ** t;
  }
}

const betaScheduleSchema = z.strictObject({
  kind: z.enum(["constant", "linear", "cosine", "exponential"]),
  start: z.number().min(0),
  end: z.number().min(0),
  steps: z.number().int().positive(),
});
const klParams = z.strictObject({
  estimator: z.enum(KL_ESTIMATORS).default("k3"),
  /** β, constant or scheduled (GRPO-D). DeepSeekMath 0.04; R1 0.001. */
  beta: z.union([z.number().min(0), betaScheduleSchema]).default(0.04),
  deltaClamp: z.number().positive().default(20),
  valueClamp: z.number().positive().default(10),
  /** Multiply the KL term by the token ratio ρ (TRL `use_bias_correction_kl`). */
  ratioWeighted: z.boolean().default(false),
});
export type KlParams = z.input<typeof klParams>;

/** Whether a KL β (constant or scheduled) is ever positive, so that a reference model is needed. */
export function betaActive(beta: number | BetaSchedule): boolean {
  return typeof beta !== "number" || beta > 0;
}

/** β·k per token; metrics `kl_reg/kl` (mean k over valid tokens) and `kl_reg/beta`. */
export function klTerm(ctx: RegularizerContext, p: KlParams): RegularizerOutput {
  const ref = ctx.batch.refLogprobs;
  if (ref === undefined) {
    throw new CohortError(
      "the kl regularizer needs LossBatch.refLogprobs (log-probs under the reference model); " +
        "compute them, or remove the kl regularizer (β = 0 needs no reference model)",
    );
  }
  const beta = betaAt(p.beta ?? 0.04, ctx.step);
  return tidy(() => {
    let k = klEstimate(ctx.batch.logprobs, ref, p.estimator ?? "k3", p);
    const metrics = { "kl_reg/kl": maskedMean(k, ctx.batch.mask), "kl_reg/beta": beta };
    if (p.ratioWeighted) k = k.mul(ctx.ratio);
    return { tokenLoss: k.mul(beta), metrics };
  });
}

// KL penalty in the loss, β·k.  arXiv 2402.03300 [CODE-FW]; scheduled β arXiv 2503.16081 [ABSTRACT]
defineRegularizer({
  name: "kl",
  paper: "2402.03300",
  confidence: "CODE-FW",
  doc: "β·k per token (k1/k2/k3, verl's + forms), β constant or scheduled (GRPO-D)",
  params: klParams,
  klToReference: true,
  needs: (p) => (betaActive(p.beta) ? ["refLogprobs"] : []),
  compute: (ctx, p) => klTerm(ctx, p),
});

// ---- entropy bonus -------------------------------------------------------------------------------

const entropyParams = z.strictObject({
  /** Bonus coefficient (initial value when adaptive). */
  coef: z.number().min(0).default(0.001),
  /** Target entropy (nats/token); set it to adapt `coef` after each step. */
  target: z.number().min(0).optional(),
  /** Adaptation rate: coef ← clamp(coef + lr·(target − H̄), minCoef, maxCoef). */
  lr: z.number().positive().default(0.01),
  minCoef: z.number().min(0).default(0),
  maxCoef: z.number().min(0).default(1),
});
export type EntropyParams = z.output<typeof entropyParams>;

/**
 * Entropy bonus `−coef·H` per token (needs the per-token entropy with gradient for the bonus to act). With a
 * target, coef adapts once per optimizer step toward keeping the step's mean entropy H̄ (token mean over every
 * micro-batch and rank) at the target: coef ← clamp(coef + lr·(target − H̄), minCoef, maxCoef) (design choice,
 * a SAC-style controller). Metrics `entropy_reg/entropy`, `entropy_reg/coef`.
 */
// Entropy bonus (PPO).  arXiv 1707.06347 [PAPER-KNOWN]; adaptive target: design choice
defineRegularizer({
  name: "entropy",
  paper: "1707.06347",
  confidence: "PAPER-KNOWN",
  doc: "entropy bonus −coef·H per token; coef adapts toward a target entropy when one is set (design choice)",
  params: entropyParams,
  needs: ["tokenEntropy"],
  state: {
    init: (p) => ({ coef: p.coef, sum: 0, weight: 0 }),
    reduce: ["sum", "weight"],
    endStep(s, p, applied) {
      if (applied && p.target !== undefined && s.weight > 0) {
        const next = s.coef + p.lr * (p.target - s.sum / s.weight);
        s.coef = Math.min(p.maxCoef, Math.max(p.minCoef, next));
      }
      s.sum = 0;
      s.weight = 0;
    },
  },
  compute(ctx, _p, s) {
    const h = ctx.batch.entropy;
    if (h === undefined) {
      throw new CohortError(
        "the entropy regularizer needs LossBatch.entropy; compute log-probs with entropy, or remove it",
      );
    }
    const mean = maskedMean(h, ctx.batch.mask);
    const w = tidy(() => ctx.batch.mask.detach().sum().item());
    s.sum += mean * w;
    s.weight += w;
    const coef = s.coef;
    return { tokenLoss: tidy(() => h.mul(-coef)), metrics: { "entropy_reg/entropy": mean, "entropy_reg/coef": coef } };
  },
});

// ---- LLDS (B.12) ---------------------------------------------------------------------------------

const lldsParams = z.strictObject({
  /** λ (code default 0.2). */
  lambda: z.number().min(0).default(0.2),
  /** "action": per contiguous run of preserving tokens (default); "response": per response. */
  gate: z.enum(["action", "response"]).default("action"),
});
export type LldsParams = z.output<typeof lldsParams>;

/**
 * The LLDS gate g [N, T] (0/1, no gradient) from d = ℓ_old − ℓ and the preserving set P = (m > 0) ∧ (A ≥ 0).
 * A-gate: g = 1 on a maximal contiguous run of P whose Σd > 0; R-gate: g = P ∧ (Σ_t P·d > 0).
 */
export function lldsGate(d: Tensor, preserving: Tensor, gate: "action" | "response"): Tensor {
  return noGrad(() =>
    tidy(() => {
      const p = preserving.to(d.dtype);
      const pd = d.detach().mul(p);
      if (gate === "response") return pd.sum(-1, true).gt(0).logicalAnd(preserving);
      const [n, t] = d.shape as [number, number];
      const like = { dtype: d.dtype, device: d.device };
      const prev = t <= 1 ? zeros([n, t], like) : cat([zeros([n, 1], like), p.slice(1, 0, t - 1)], 1);
      const starts = p.gt(0).logicalAnd(prev.gt(0).logicalNot()).to("i64");
      const runId = starts.cumsum(1).mul(preserving.to("i64")); // 1.. inside runs, 0 outside
      const sums = zeros([n, t + 1], like).scatterAdd(1, runId, pd);
      return sums.gather(1, runId).gt(0).logicalAnd(preserving);
    }),
  );
}

// LLDS likelihood-preserving regulariser: λ Σ m·g·max(0, ℓ_old − ℓ) / tokens.  arXiv 2512.04220 [CODE]
export function lldsRegularizer(p: LldsParams): { compute(ctx: RegularizerContext): RegularizerOutput } {
  return {
    compute(ctx) {
      return tidy(() => {
        const { logprobs, oldLogprobs, mask } = ctx.batch;
        const d = oldLogprobs.detach().sub(logprobs);
        const preserving = mask.gt(0).logicalAnd(ctx.advantages.ge(0));
        const g = lldsGate(d, preserving, p.gate).to(d.dtype);
        const penalty = d.relu().mul(g).mul(mask).sum();
        const loss = ctx.counts.tokens === 0 ? penalty.mul(0) : penalty.mul(p.lambda / ctx.counts.tokens);
        const valid = tidy(() => mask.detach().gt(0).sum().item());
        const active = tidy(() => g.sum().item());
        return { loss, metrics: { "llds/active_ratio": valid === 0 ? 0 : active / valid, "llds/loss": loss.item() } };
      });
    },
  };
}

// ---- R²VPO (B.15) --------------------------------------------------------------------------------

const r2vpoParams = z.strictObject({
  /** δ_var: the allowed ratio variance. */
  delta: z.number().min(0).default(0.01),
  /** η_λ: dual step size. */
  eta: z.number().positive().default(0.1),
  /** Initial λ. */
  lambdaInit: z.number().min(0).default(0),
});
export type R2vpoParams = z.output<typeof r2vpoParams>;

/** Σ m·ρ, Σ m·ρ² and Σ m over the valid tokens of a micro-batch (R²VPO's step-wide ratio moments). */
function ratioMoments(ratio: Tensor, mask: Tensor): Record<string, number> {
  return tidy(() => {
    const m = mask.detach().gt(0).to("f64");
    const r = ratio.detach().to("f64");
    return { rho: r.mul(m).sum().item(), rho2: r.square().mul(m).sum().item(), n: m.sum().item() };
  });
}

/**
 * R²VPO ratio-variance penalty λ·(Var(ρ) − δ_var) over the valid tokens of the whole step (population
 * variance around the step's mean ratio μ, from `prepass`), with dual ascent λ ← max(0, λ + η(Var − δ_var))
 * once per optimizer step. Each micro-batch contributes λ·(Σ_mb m(ρ − μ)² − δ·n_mb)/n: the sum over the step
 * is the penalty, and its gradient is exact (Σ m(ρ − μ) = 0 at the step mean). Metrics `r2vpo/var`,
 * `r2vpo/lambda`. arXiv 2601.03320 [ABSTRACT] — the Lagrangian form is a design choice (B.15).
 */
// R²VPO ratio-variance penalty with a dual variable.  arXiv 2601.03320 [ABSTRACT] (design choice)
defineRegularizer({
  name: "r2vpo",
  paper: "2601.03320",
  confidence: "ABSTRACT",
  doc: "λ·(Var(ρ) − δ) over the step's tokens, λ by dual ascent (design choice)",
  params: r2vpoParams,
  state: {
    init: (p) => ({ lambda: p.lambdaInit, variance: 0, seen: 0 }),
    endStep(s, p, applied) {
      if (applied && s.seen > 0) s.lambda = Math.max(0, s.lambda + p.eta * (s.variance - p.delta));
      s.variance = 0;
      s.seen = 0;
    },
  },
  prepass: (ctx) => ratioMoments(ctx.ratio, ctx.batch.mask),
  prepassFields: ["rho", "rho2", "n"],
  compute(ctx, p, s) {
    const g = ctx.global ?? ratioMoments(ctx.ratio, ctx.batch.mask);
    const n = g.n as number;
    if (!(n > 0)) {
      return { loss: tidy(() => ctx.ratio.sum().mul(0)), metrics: { "r2vpo/var": 0, "r2vpo/lambda": s.lambda } };
    }
    const mu = (g.rho as number) / n;
    const variance = Math.max(0, (g.rho2 as number) / n - mu * mu);
    s.variance = variance;
    s.seen = 1;
    const lambda = s.lambda;
    return tidy(() => {
      const m = ctx.batch.mask.detach().gt(0).to(ctx.ratio.dtype);
      const local = m.sum().item();
      const loss = ctx.ratio
        .sub(mu)
        .square()
        .mul(m)
        .sum()
        .sub(p.delta * local)
        .mul(lambda / n);
      return { loss, metrics: { "r2vpo/var": variance, "r2vpo/lambda": lambda } };
    });
  },
});

// ---- DisCO squared-hinge KL constraint (B.11, D.13) ----------------------------------------------

// DisCO squared-hinge penalty.  arXiv 2505.12366 [CODE]
/**
 * `sg(max(β(KL − δ), 0))·KL`: same gradient as `(β/2)·max(KL − δ, 0)²`.  arXiv 2505.12366 [CODE]
 * `klOld` is a scalar tensor (with grad).
 */
export function discoKlPenalty(klOld: Tensor, beta: number, delta: number): Tensor {
  return tidy(() => {
    const coef = maximum(klOld.detach().sub(delta).mul(beta), 0);
    return coef.mul(klOld);
  });
}

const discoKlParams = z.strictObject({
  beta: z.number().positive().default(1e3),
  delta: z.number().min(0).default(1e-4),
});

/** Σ m·k3(ρ) and Σ m of a micro-batch, k3 = ρ − 1 − log ρ (DisCO's KL(π_old ‖ π_θ) estimate). */
function klOldSums(tokenLogRatio: Tensor, mask: Tensor): Record<string, number> {
  return tidy(() => {
    const lr = tokenLogRatio.detach().to("f64");
    const m = mask.detach().to("f64");
    return { k: lr.exp().sub(1).sub(lr).mul(m).sum().item(), n: m.sum().item() };
  });
}

/**
 * DisCO's constraint on KL(π_old ‖ π_θ), estimated per token as ρ − 1 − log ρ (k3 form): KL_old is the token
 * mean over the whole step (`prepass`), the coefficient sg(max(β(KL_old − δ), 0)) multiplies each micro-batch's
 * Σ m·k / (step tokens), so the step's loss is coef·KL_old with the gradient of (β/2)·max(KL_old − δ, 0)²
 * (B.11). Metrics `disco/kl_old`, `disco/penalty_coef`.
 */
// DisCO squared-hinge constraint on KL(π_old ‖ π_θ).  arXiv 2505.12366 [CODE]
defineRegularizer({
  name: "disco_kl",
  paper: "2505.12366",
  confidence: "CODE",
  doc: "squared-hinge constraint on the step's KL(π_old ‖ π_θ)",
  params: discoKlParams,
  prepass: (ctx) => klOldSums(ctx.tokenLogRatio, ctx.batch.mask),
  prepassFields: ["k", "n"],
  compute(ctx, p) {
    const g = ctx.global ?? klOldSums(ctx.tokenLogRatio, ctx.batch.mask);
    const n = g.n as number;
    const klOld = n > 0 ? (g.k as number) / n : 0;
    const coef = Math.max(p.beta * (klOld - p.delta), 0);
    return tidy(() => {
      const lr = ctx.tokenLogRatio;
      const total = lr.exp().sub(1).sub(lr).mul(ctx.batch.mask).sum();
      const loss = n === 0 ? total.mul(0) : total.mul(coef / n);
      return { loss, metrics: { "disco/kl_old": klOld, "disco/penalty_coef": coef } };
    });
  },
});

// ---- OPMD / AsymRE (B.33) ------------------------------------------------------------------------

const coefParams = z.strictObject({ coef: z.number().min(0).default(0.1) });

// OPMD term c·(ℓ − ℓ_old)² per token.  arXiv 2509.24203 [CODE]
defineRegularizer({
  name: "opmd",
  paper: "2509.24203",
  confidence: "CODE",
  doc: "c·(ℓ − ℓ_old)² per token",
  params: coefParams,
  compute(ctx, p) {
    return tidy(() => {
      const d = ctx.batch.logprobs.sub(ctx.batch.oldLogprobs);
      return {
        tokenLoss: d.square().mul(p.coef),
        metrics: { "opmd/sq_logratio": maskedMean(d.square(), ctx.batch.mask) },
      };
    });
  },
});

// AsymRE term −c·ℓ per token (baseline shifted down by c).  arXiv 2509.24203 [CODE]
defineRegularizer({
  name: "asymre",
  paper: "2509.24203",
  confidence: "CODE",
  doc: "−c·ℓ per token (the baseline shifted down by c)",
  params: coefParams,
  compute: (ctx, p) => ({ tokenLoss: tidy(() => ctx.batch.logprobs.mul(-p.coef)), metrics: {} }),
});

// LLDS likelihood-preserving regulariser.  arXiv 2512.04220 [CODE]
defineRegularizer({
  name: "llds",
  paper: "2512.04220",
  confidence: "CODE",
  doc: "λ·max(0, ℓ_old − ℓ) on A ≥ 0 tokens of actions (or responses) that lost likelihood",
  params: lldsParams,
  compute: (ctx, p) => lldsRegularizer(p).compute(ctx),
});

// ---- MDPO proximity (E.1) --------------------------------------------------------------------------

const mdpoParams = z.strictObject({
  /** K: generation steps of the run for the schedule t_k = max(1 − k/K, floor); `cohort train` sets train.steps. */
  totalSteps: z.number().int().positive().optional(),
  /** The schedule's floor (design choice, 0.1). */
  floor: z.number().gt(0).max(1).default(0.1),
  /** A constant step size t instead of the schedule. */
  t: z.number().positive().optional(),
});

/** MDPO's step size t_k = max(1 − k/K, floor), k = step − 1 (0-based generation step); a constant `t` if set. */
export function mdpoStepSize(p: z.output<typeof mdpoParams>, step: number): number {
  if (p.t !== undefined) return p.t;
  if (p.totalSteps === undefined) return 1;
  return Math.max(1 - (step - 1) / p.totalSteps, p.floor);
}

/**
 * Mirror Descent Policy Optimization's proximity term KL(π_θ ‖ π_old)/t_k, per token as
 * κ = ρ·(ℓ − ℓ_old) − ρ + 1 (≥ 0, E_{π_old}[κ] = KL(π_θ‖π_old)), so that with gate `none` the per-token loss is
 * −ρA + κ/t_k and dL/dℓ = −ρA + (ρ/t_k)(ℓ − ℓ_old). With one inner step ρ = 1 and the term has no gradient.
 * arXiv 2005.09814 [CODE] (token form and schedule floor: design choices of ALGORITHMS.md E.1).
 */
// MDPO proximity KL(π_θ‖π_old)/t_k.  arXiv 2005.09814 [CODE] (token form: design choice)
defineRegularizer({
  name: "mdpo",
  paper: "2005.09814",
  confidence: "CODE",
  doc: "MDPO proximity (1/t_k)·κ, κ = ρ(ℓ − ℓ_old) − ρ + 1 (unbiased KL(π_θ‖π_old)), t_k = max(1 − k/K, 0.1)",
  params: mdpoParams,
  runLength: "totalSteps",
  needs: ["oldLogprobs"],
  compute(ctx, p) {
    const t = mdpoStepSize(p, ctx.step);
    return tidy(() => {
      const lr = ctx.tokenLogRatio;
      const rho = lr.exp();
      const kappa = rho.mul(lr).sub(rho).add(1);
      return { tokenLoss: kappa.div(t), metrics: { "mdpo/kl": maskedMean(kappa, ctx.batch.mask), "mdpo/t": t } };
    });
  },
});
