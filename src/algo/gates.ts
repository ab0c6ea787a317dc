/**
 * Clip and gate functions (ALGORITHMS.md §C.1 slot `ClipOrGate`): a ratio ρ [N, T] and advantages A [N, T]
 * become a per-token loss `L [N, T]` (the library minimises −objective). The functions are shape-agnostic:
 * a per-sequence ratio arrives already broadcast over the tokens.
 *
 * Every gate reports clip metrics over the valid tokens (mask > 0), TRL's definitions:
 * `clip/low_ratio` = fraction with ρ < 1 − ε_low and A < 0 (gradient cut at the low bound),
 * `clip/high_ratio` = fraction with ρ > 1 + ε_high and A > 0, `clip/region_ratio` = either.
 * Soft gates (SAPO) and `none` never cut the gradient and report 0 for the three.
 * @module
 */

import { z } from "zod";
import { CohortError } from "../errors.js";
import { maximum, minimum, type Tensor, tensor, tidy, where } from "../tensor/index.js";
import { type ComponentDef, ComponentRegistry, parseParams } from "./component.js";

export interface GateInput {
  /** ρ [N, T]. */
  ratio: Tensor;
  /** A [N, T] (sequence advantages broadcast). */
  advantages: Tensor;
  /** Loss mask [N, T]; only used for metrics. */
  mask: Tensor;
  /** Pass rate p_q of each sequence's group (length N), for the ETR macro bound. */
  passRate?: Float64Array;
}

export interface GateOutput {
  /** Per-token loss [N, T] (not yet masked). */
  loss: Tensor;
  metrics: Record<string, number>;
}

/** A clip/gate function: ρ and A [N, T] → per-token loss. Its params sit beside `type` in `algo.gate`. */
export interface GateDef<P extends z.ZodObject = z.ZodObject> extends ComponentDef<P> {
  /** The per-token loss is linear in A (A·f(ρ)): scaling A per token equals weighting the loss, which the
   * sampler-mismatch correction relies on. */
  linearInAdvantage: boolean;
  /** Takes per-branch clip bounds (low/high) under a hybrid ratio (DHPO), or needs none. */
  branchBounds: boolean;
  apply(input: GateInput, params: z.output<P>): GateOutput;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const gates = new ComponentRegistry<GateDef<any>>("clip/gate function");
function defineGate<P extends z.ZodObject>(def: GateDef<P>): GateDef<P> {
  return gates.define(def);
}

export const clipParams = z.strictObject({
  /** ε_low: lower bound 1 − ε_low (GRPO 0.2). */
  low: z.number().min(0).lt(1).default(0.2),
  /** ε_high: upper bound 1 + ε_high (GRPO 0.2, DAPO 0.28). */
  high: z.number().min(0).default(0.2),
  /** Dual-clip constant c > 1 (verl `clip_ratio_c` 3.0): for A < 0, L = min(L, −A·c). */
  dualClip: z.number().gt(1).optional(),
  /** Two-sided clip δ > 1 + ε_high (TRL `delta`): the unclipped branch uses min(ρ, δ). */
  delta: z.number().gt(1).optional(),
});
export type ClipParams = z.input<typeof clipParams>;

const sapoParams = z.strictObject({
  /** τ for A > 0. */
  tauPos: z.number().positive().default(1.0),
  /** τ for A ≤ 0. */
  tauNeg: z.number().positive().default(1.05),
});
export type SapoParams = z.output<typeof sapoParams>;

const etrParams = z.strictObject({
  /** Base ε_low (ε_0). */
  low: z.number().min(0).lt(1).default(0.2),
  /** Base ε_high (ε_0^high). */
  high: z.number().min(0).default(0.2),
  /** κ_a: micro elasticity, bounds scale with (1 + κ_a |A|). */
  kappaAdv: z.number().min(0).default(0.5),
  /** κ_v: macro elasticity, bounds scale with (1 + κ_v (4 p (1 − p) − 1)). */
  kappaVar: z.number().min(0).lt(1).default(0.5),
  dualClip: z.number().gt(1).optional(),
});
export type EtrParams = z.output<typeof etrParams>;

/** Fraction of valid tokens (mask > 0) where the boolean `cond` [N, T] holds. */
export function validFraction(cond: Tensor, mask: Tensor): number {
  return tidy(() => {
    const valid = mask.detach().gt(0);
    const n = valid.sum().item();
    return n === 0 ? 0 : cond.logicalAnd(valid).sum().item() / n;
  });
}

function clipMetrics(
  ratio: Tensor,
  adv: Tensor,
  mask: Tensor,
  lo: Tensor | number,
  hi: Tensor | number,
): Record<string, number> {
  return tidy(() => {
    const r = ratio.detach();
    const low = r.lt(lo).logicalAnd(adv.lt(0));
    const high = r.gt(hi).logicalAnd(adv.gt(0));
    return {
      "clip/low_ratio": validFraction(low, mask),
      "clip/high_ratio": validFraction(high, mask),
      "clip/region_ratio": validFraction(low.logicalOr(high), mask),
    };
  });
}

function noClipMetrics(): Record<string, number> {
  return { "clip/low_ratio": 0, "clip/high_ratio": 0, "clip/region_ratio": 0 };
}

/** The clipped surrogate with bounds that may be numbers or [N, T] tensors (PPO and ETR). */
function clippedSurrogate(
  input: GateInput,
  lo: Tensor | number,
  hi: Tensor | number,
  dualClip: number | undefined,
  delta: number | undefined,
): GateOutput {
  return tidy(() => {
    const { ratio: r, advantages: a, mask } = input;
    const unclipped = delta === undefined ? r : minimum(r, delta);
    const clipped = r.clamp(lo, hi);
    // −min(ρA, clip(ρ)A) = max(−ρA, −clip(ρ)A)
    let loss = maximum(unclipped.mul(a).neg(), clipped.mul(a).neg());
    const metrics = clipMetrics(r, a, mask, lo, hi);
    if (dualClip !== undefined) {
      const neg = a.lt(0);
      const cap = a.mul(-dualClip);
      metrics["clip/dual_ratio"] = validFraction(neg.logicalAnd(loss.detach().gt(cap)), mask);
      loss = where(neg, minimum(loss, cap), loss);
    }
    return { loss, metrics };
  });
}

// PPO clip with ε_low/ε_high (clip-higher), optional dual-clip c and two-sided δ.
// arXiv 2402.03300 [CODE-FW] (GRPO); clip-higher arXiv 2503.14476 [CODE-FW]; dual-clip/δ [CODE-FW] verl/TRL.
export function ppoClip(input: GateInput, p: ClipParams): GateOutput {
  return clippedSurrogate(input, 1 - (p.low ?? 0.2), 1 + (p.high ?? 0.2), p.dualClip, p.delta);
}

// SAPO soft gate: L = −(4/τ)·σ(τ(ρ − 1))·A, τ = τ_pos if A > 0 else τ_neg.  arXiv 2511.20347 [CODE-FW]
export function sapoGate(input: GateInput, p: SapoParams): GateOutput {
  return tidy(() => {
    const { ratio: r, advantages: a, mask } = input;
    const tau = a
      .gt(0)
      .to(r.dtype)
      .mul(p.tauPos - p.tauNeg)
      .add(p.tauNeg);
    const s = r.sub(1).mul(tau).sigmoid();
    const loss = s.mul(4).div(tau).mul(a).neg();
    const metrics = noClipMetrics();
    // mean gradient weight f'(ρ) = 4σ(1−σ) over valid tokens (1 on-policy, → 0 far from ρ = 1)
    const valid = mask.detach().gt(0).to(r.dtype);
    const n = valid.sum().item();
    const w = s.detach().mul(s.detach().rsub(1)).mul(4);
    metrics["gate/sapo_weight_mean"] = n === 0 ? 0 : w.mul(valid).sum().item() / n;
    return { loss, metrics };
  });
}

// ETR elastic trust region: ε scaled by (1 + κ_a|A|)·(1 + κ_v(4p(1−p) − 1)).
// arXiv 2601.03723 [ABSTRACT] — the bound formula is a design choice (ALGORITHMS.md B.13).
export function etrGate(input: GateInput, p: EtrParams): GateOutput {
  return tidy(() => {
    const { ratio: r, advantages: a } = input;
    let scale = a.detach().abs().mul(p.kappaAdv).add(1);
    if (p.kappaVar !== 0) {
      const pr = input.passRate;
      if (pr === undefined) {
        throw new CohortError(
          "ETR with kappaVar ≠ 0 needs the group pass rate: set LossBatch.passRate or LossBatch.rewards " +
            "(binary rewards), or set gate.kappaVar to 0",
        );
      }
      const [n] = r.shape as [number, number];
      if (pr.length !== n) {
        throw new CohortError(`ETR: passRate has length ${pr.length}, expected one value per sequence (${n})`);
      }
      const macro = Float64Array.from(pr, (q) => {
        const c = Math.min(1, Math.max(0, q));
        return 1 + p.kappaVar * (4 * c * (1 - c) - 1);
      });
      scale = scale.mul(tensorColumn(macro, r));
    }
    const lo = scale.mul(-p.low).add(1);
    const hi = scale.mul(p.high).add(1);
    const out = clippedSurrogate(input, lo, hi, p.dualClip, undefined);
    out.metrics["etr/eps_high_mean"] = hi.sub(1).mean().item();
    return out;
  });
}

// No clipping: L = −ρ·A (with ρ = exp(ℓ − sg ℓ) this is REINFORCE).  GTPO arXiv 2508.03772 [CODE]
export function noGate(input: GateInput): GateOutput {
  return tidy(() => ({ loss: input.ratio.mul(input.advantages).neg(), metrics: noClipMetrics() }));
}

/** A host vector of length N as an [N, 1] tensor of `like`'s dtype and device. */
export function tensorColumn(values: Float64Array, like: Tensor): Tensor {
  return tidy(() => {
    const t = tensor(values, { shape: [values.length, 1] });
    const d = like.device;
    const moved = d === "cpu" ? t : t.to(d);
    return moved.to(like.dtype);
  });
}

defineGate({
  name: "clip",
  branchBounds: true,
  linearInAdvantage: true,
  paper: "2402.03300",
  confidence: "CODE-FW",
  doc: "PPO clip with ε_low/ε_high (clip-higher), optional dual-clip c and two-sided δ",
  params: clipParams,
  apply: ppoClip,
});
defineGate({
  name: "sapo",
  branchBounds: false,
  linearInAdvantage: true,
  paper: "2511.20347",
  confidence: "CODE-FW",
  doc: "soft sigmoid gate (4/τ)σ(τ(ρ − 1)) with τ_pos/τ_neg",
  params: sapoParams,
  apply: sapoGate,
});
defineGate({
  name: "etr",
  branchBounds: false,
  linearInAdvantage: false,
  paper: "2601.03723",
  confidence: "ABSTRACT",
  doc: "clip bounds scaled by |A| and the group pass-rate variance (design choice)",
  params: etrParams,
  apply: etrGate,
});
defineGate({
  name: "none",
  branchBounds: true,
  linearInAdvantage: true,
  doc: "no clipping: L = −ρ·A",
  params: z.strictObject({}),
  apply: noGate,
});

/** Applies the named gate with raw params (validated by its schema). */
export function applyGate(type: string, input: GateInput, params: Record<string, unknown>): GateOutput {
  const def = gates.get(type, "gate.type");
  return def.apply(input, parseParams(def, params, "gate"));
}
