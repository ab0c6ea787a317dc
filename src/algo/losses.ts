/**
 * Alternative policy losses (ALGORITHMS.md §C design rule: losses that do not use `A·ρ` fill the clip/gate
 * slot as a generic `PolicyLoss(ℓ, ℓ_old, A, mask, groupIndex, rewards)`). A loss returns a per-token term
 * (aggregated by the configured aggregator) or a scalar already normalised by the global counts.
 *
 * Per-question losses (DisCO, Reg-GRPO) need every group whole inside one micro-batch (need `wholeGroups`:
 * `cohort train` cuts micro-batches at group boundaries); their normaliser is the step's global
 * `GlobalCounts.groups` (DisCO: every question of the step, all-equal ones included) or
 * `GlobalCounts.sequences` (Reg-GRPO), so the loss is the same however the step is split.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { type Tensor, tensor, tidy, where } from "../tensor/index.js";
import { type ComponentDef, ComponentRegistry, type StateDef } from "./component.js";
import { validFraction } from "./gates.js";
import { sequenceLogRatio } from "./ratio.js";
import type { GlobalCounts, LossBatch } from "./types.js";

export interface LossContext {
  batch: LossBatch;
  /** A [N, T] (sequence advantages broadcast). */
  advantages: Tensor;
  /** Clamped token log-ratio ℓ − ℓ_old [N, T]. */
  tokenLogRatio: Tensor;
  counts: GlobalCounts;
}

export interface LossOutput {
  tokenLoss?: Tensor;
  loss?: Tensor;
  metrics: Record<string, number>;
}

/**
 * An alternative policy loss (fills the clip/gate slot). `apply` absent: the ratio·advantage surrogate with the
 * configured gate. Its params sit beside `type` in `algo.loss`.
 */
export interface LossDef<P extends z.ZodObject = z.ZodObject, S extends Record<string, number> = Record<string, number>>
  extends ComponentDef<P> {
  state?: StateDef<z.output<P>, S>;
  /** Reads one advantage per sequence (refused with token-level estimators). */
  sequenceAdvantages?: boolean;
  apply?(ctx: LossContext, params: z.output<P>, state: S): LossOutput;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const policyLosses = new ComponentRegistry<LossDef<any, any>>("policy loss");
function defineLoss<P extends z.ZodObject>(def: LossDef<P>): LossDef<P> {
  return policyLosses.define(def);
}

/** Rows = distinct groups present (in first-seen order), columns = sequences: 0/1 membership [Q, N]. */
export function groupMatrix(groupIndex: Int32Array, like: Tensor): { matrix: Tensor; groups: number[] } {
  const groups: number[] = [];
  const row = new Map<number, number>();
  for (const g of groupIndex) {
    if (!row.has(g)) {
      row.set(g, groups.length);
      groups.push(g);
    }
  }
  const n = groupIndex.length;
  const data = new Float64Array(groups.length * n);
  groupIndex.forEach((g, i) => {
    data[(row.get(g) as number) * n + i] = 1;
  });
  return { matrix: hostTensor(data, [groups.length, n], like), groups };
}

/** A host array as a tensor with `like`'s dtype and device. */
export function hostTensor(data: Float64Array, shape: number[], like: Tensor): Tensor {
  return tidy(() => {
    const t = tensor(data, { shape });
    const d = like.device;
    return (d === "cpu" ? t : t.to(d)).to(like.dtype);
  });
}

// Plain REINFORCE: L = −A·ℓ per token.  [PAPER-KNOWN] (Williams 1992; arXiv 2509.24203 [CODE] as the REC base)
export function reinforceLoss(ctx: LossContext): LossOutput {
  return { tokenLoss: tidy(() => ctx.advantages.mul(ctx.batch.logprobs).neg()), metrics: {} };
}

const eps = (d: number) => z.number().min(0).default(d);
const recParams = z.strictObject({
  mask: z.enum(["none", "one-side", "two-side", "ring"]).default("one-side"),
  weight: z.enum(["none", "importance_sampling", "gspo_importance_sampling", "advantage"]).default("none"),
  low: eps(0.2),
  high: eps(0.2),
  /** ε'_low, ε'_high of the ring mask. */
  lowPrime: eps(0.6),
  highPrime: eps(2.0),
  /** Temperature of the "advantage" weight exp(A/temp). */
  temp: z.number().positive().default(1),
});
export type RecParams = z.output<typeof recParams>;

// REC family: L = −A_w·ℓ·keep with ρ detached; one-side / two-side / ring masks, IS / advantage weights.
// arXiv 2509.24203 [CODE]
export function recLoss(ctx: LossContext, p: RecParams): LossOutput {
  return tidy(() => {
    const a = ctx.advantages;
    const rho = ctx.tokenLogRatio.detach().exp();
    const lo = 1 - p.low;
    const hi = 1 + p.high;
    const twoSide = rho.ge(lo).logicalAnd(rho.le(hi));
    let keep: Tensor | null = null;
    if (p.mask === "one-side") {
      keep = a
        .ge(0)
        .logicalAnd(rho.le(hi))
        .logicalOr(a.le(0).logicalAnd(rho.ge(lo)));
    } else if (p.mask === "two-side") {
      keep = twoSide;
    } else if (p.mask === "ring") {
      const outer = a
        .ge(0)
        .logicalAnd(rho.le(1 - p.lowPrime))
        .logicalOr(a.le(0).logicalAnd(rho.ge(1 + p.highPrime)));
      keep = twoSide.logicalOr(outer);
    }
    let aw = a;
    if (p.weight === "importance_sampling") aw = a.mul(rho);
    else if (p.weight === "gspo_importance_sampling") {
      const s = sequenceLogRatio({ ...ctx.batch })
        .detach()
        .exp();
      aw = a.mul(s);
    } else if (p.weight === "advantage") aw = a.mul(a.div(p.temp).exp());
    let tokenLoss = aw.mul(ctx.batch.logprobs).neg();
    const metrics: Record<string, number> = {};
    if (keep !== null) {
      tokenLoss = tokenLoss.mul(keep.to(tokenLoss.dtype));
      metrics["rec/masked_ratio"] = validFraction(keep.logicalNot(), ctx.batch.mask);
    }
    return { tokenLoss, metrics };
  });
}

const discoParams = z.strictObject({
  /** Score: mean token log-prob ("logL") or mean token ratio ("Lratio"). */
  score: z.enum(["logL", "Lratio"]).default("logL"),
  /** "lse": DRO log-sum-exp over negatives (DisCO); "b": plain difference of means (DisCO-b). */
  form: z.enum(["lse", "b"]).default("lse"),
  /** τ of the log-sum-exp form (default 10 for logL, 1 for Lratio). */
  tau: z.number().positive().optional(),
  /** A completion is positive when its reward > this (binary rewards). */
  positiveThreshold: z.number().default(0.5),
});
export type DiscoParams = Omit<z.output<typeof discoParams>, "tau"> & { tau: number };

/** Mask-weighted per-sequence mean of x [N, T] → [N] (0 for a fully masked sequence). */
function seqMean(x: Tensor, mask: Tensor): Tensor {
  return tidy(() => {
    const n = mask.sum(-1);
    return x
      .mul(mask)
      .sum(-1)
      .div(n.maskedFill(n.gt(0).logicalNot(), 1));
  });
}

// DisCO / DisCO-b objective.  arXiv 2505.12366 [CODE]
/**
 * DisCO objective J from per-completion scores s [N] (with grad), rewards and groups. Per question with ≥1
 * positive and ≥1 negative: J_q = mean_pos s − mean_neg s (DisCO-b) or mean_pos s − τ log mean_neg exp(s/τ);
 * returns Σ_q J_q (questions without both kinds contribute 0) and the number of such questions.
 * arXiv 2505.12366 [CODE]
 */
export function discoObjective(
  scores: Tensor,
  rewards: Float64Array,
  groupIndex: Int32Array,
  p: Pick<DiscoParams, "form" | "tau" | "positiveThreshold">,
): { sum: Tensor; questions: number; scorePos: number; scoreNeg: number } {
  return tidy(() => {
    const n = groupIndex.length;
    const byGroup = new Map<number, { pos: number[]; neg: number[] }>();
    groupIndex.forEach((g, i) => {
      let e = byGroup.get(g);
      if (e === undefined) {
        e = { pos: [], neg: [] };
        byGroup.set(g, e);
      }
      ((rewards[i] as number) > p.positiveThreshold ? e.pos : e.neg).push(i);
    });
    const valid = [...byGroup.values()].filter((e) => e.pos.length > 0 && e.neg.length > 0);
    if (valid.length === 0) return { sum: scores.sum().mul(0), questions: 0, scorePos: 0, scoreNeg: 0 };
    const q = valid.length;
    const posW = new Float64Array(q * n);
    const negW = new Float64Array(q * n);
    const negMask = new Float64Array(q * n);
    valid.forEach((e, r) => {
      for (const i of e.pos) posW[r * n + i] = 1 / e.pos.length;
      for (const i of e.neg) {
        negW[r * n + i] = 1 / e.neg.length;
        negMask[r * n + i] = 1;
      }
    });
    const s = scores.unsqueeze(0); // [1, N]
    const P = hostTensor(posW, [q, n], scores);
    const Nw = hostTensor(negW, [q, n], scores);
    const meanPos = P.mul(s).sum(-1); // [Q]
    let negTerm: Tensor;
    if (p.form === "b") {
      negTerm = Nw.mul(s).sum(-1);
    } else {
      const isNeg = hostTensor(negMask, [q, n], scores).gt(0);
      const z = where(isNeg, s.div(p.tau), Number.NEGATIVE_INFINITY);
      const counts = Float64Array.from(valid, (e) => e.neg.length);
      negTerm = z
        .logsumexp(-1)
        .sub(hostTensor(counts, [q], scores).log())
        .mul(p.tau);
    }
    const sum = meanPos.sub(negTerm).sum();
    return {
      sum,
      questions: q,
      scorePos: meanPos.detach().mean().item(),
      scoreNeg: Nw.mul(s).sum(-1).detach().mean().item(),
    };
  });
}

// DisCO / DisCO-b discriminative loss −J / #questions (global count `counts.groups`).  arXiv 2505.12366 [CODE]
export function discoLoss(ctx: LossContext, p: DiscoParams): LossOutput {
  const rewards = ctx.batch.rewards;
  if (rewards === undefined) {
    throw new CohortError("the disco loss needs LossBatch.rewards (binary rewards per completion)");
  }
  return tidy(() => {
    const { logprobs, mask } = ctx.batch;
    const scores = p.score === "logL" ? seqMean(logprobs, mask) : seqMean(ctx.tokenLogRatio.exp(), mask);
    const obj = discoObjective(scores, rewards, ctx.batch.groupIndex, p);
    // 1/#questions over every question of the step (all-equal ones add 0 and still count, B.11)
    const questions = ctx.counts.groups ?? new Set(ctx.batch.groupIndex).size;
    const loss = questions === 0 ? obj.sum.mul(0) : obj.sum.neg().div(questions);
    return {
      loss,
      metrics: {
        "disco/score_pos": obj.scorePos,
        "disco/score_neg": obj.scoreNeg,
        "disco/valid_questions": obj.questions,
      },
    };
  });
}

const regGrpoParams = z.strictObject({
  /** β_r: scale of the predicted advantage. */
  scale: z.number().positive().default(1),
});
export type RegGrpoParams = z.output<typeof regGrpoParams>;

// Reg-GRPO regression onto the advantage.  arXiv 2506.07464 [ABSTRACT] (design choice)
/**
 * Reg-GRPO: pred_i = β_r·mean_t(ℓ − ℓ_old), centred within the group; loss Σ_i (pred_i − A_i)² / sequences.
 * arXiv 2506.07464 [ABSTRACT] — the regression target and scaling are a design choice (ALGORITHMS.md B.32).
 */
export function regGrpoLoss(ctx: LossContext, p: RegGrpoParams): LossOutput {
  const adv = ctx.batch.advantages;
  if (adv.ndim !== 1) {
    throw new CohortError("reg_grpo regresses one advantage per sequence; the advantages must be [N], not [N, T]");
  }
  return tidy(() => {
    const pred = seqMean(ctx.tokenLogRatio, ctx.batch.mask).mul(p.scale); // [N]
    const { matrix } = groupMatrix(ctx.batch.groupIndex, pred); // [Q, N]
    const sizes = matrix.sum(-1, true); // [Q, 1]
    const groupMean = matrix.mul(pred.unsqueeze(0)).sum(-1, true).div(sizes); // [Q, 1]
    const centred = pred.sub(matrix.mul(groupMean).sum(0)); // [N]
    const target = adv.to(pred.dtype);
    const sq = centred.sub(target).square();
    const valid = ctx.batch.mask.sum(-1).gt(0).to(pred.dtype);
    const total = sq.mul(valid).sum();
    const loss = ctx.counts.sequences === 0 ? total.mul(0) : total.div(ctx.counts.sequences);
    return { loss, metrics: { "reg/mse": sq.detach().mean().item() } };
  });
}

defineLoss({
  name: "surrogate",
  paper: "2402.03300",
  confidence: "CODE-FW",
  doc: "the ratio·advantage surrogate with the configured clip/gate",
  params: z.strictObject({}),
});
defineLoss({
  name: "reinforce",
  doc: "plain REINFORCE −A·ℓ per token",
  confidence: "PAPER-KNOWN",
  params: z.strictObject({}),
  apply: (ctx) => reinforceLoss(ctx),
});
defineLoss({
  name: "rec",
  paper: "2509.24203",
  confidence: "CODE",
  doc: "REC: −A_w·ℓ with detached ratio masks (one-side, two-side, ring) and weights",
  params: recParams,
  apply: (ctx, p) => recLoss(ctx, p),
});
defineLoss({
  name: "disco",
  paper: "2505.12366",
  confidence: "CODE",
  doc: "DisCO discriminative objective over positive and negative completions of each question",
  params: discoParams,
  needs: ["wholeGroups"],
  apply: (ctx, p) => discoLoss(ctx, { ...p, tau: p.tau ?? (p.score === "logL" ? 10 : 1) }),
});
defineLoss({
  name: "reg_grpo",
  paper: "2506.07464",
  confidence: "ABSTRACT",
  doc: "regression of the group-centred scaled log-ratio onto the advantage (design choice)",
  params: regGrpoParams,
  needs: ["wholeGroups"],
  sequenceAdvantages: true,
  apply: (ctx, p) => regGrpoLoss(ctx, p),
});
