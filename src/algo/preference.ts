/**
 * Learning from comparisons (ALGORITHMS.md §G.1–G.3): policy losses over the pairs of completions of each
 * group. The signal of a pair is the difference of the two rows' rewards — with `preference:` in the train
 * config, each row's reward is its win rate against its group (src/reward/preference.ts), i.e. the estimate of
 * `P(y ≻ π_old)` from the group's samples.
 *
 * - `p3o`: Pairwise Proximal Policy Optimization, the trajectory-wise pairwise policy gradient with clipped
 *   importance ratios (V1 "separate", V2 "joint"); invariant to any prompt-dependent shift of the rewards.
 * - `dno`: Direct Nash Optimization, a regression of the internal reward η·log(π/π_t) onto the win-rate
 *   difference (soft targets, Alg. 1) or onto the winner of large-margin pairs (DNO-Prct, Alg. 2).
 * - `nash_mp`: the policy-gradient approximation of one Nash-Mirror-Prox proximal step: REINFORCE on the
 *   group-centred win rate, β·KL(π‖π_ref) and (1/η)·KL(π‖π_k) as token-level k3 losses. The exact tabular
 *   mirror-prox step is in src/algo/nash.ts.
 *
 * Pairs: every unordered pair of rows of one group, each once with y1 = the row with the lower index (rows whose
 * reward is NaN are left out). A group's loss is the mean over its pairs; the step's loss the sum over groups
 * divided by the step's number of groups (`GlobalCounts.groups`), so it is the same for any micro-batching
 * (every group whole in one micro-batch: need `wholeGroups`).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { type Tensor, tidy } from "../tensor/index.js";
import { hostTensor, type LossContext, type LossOutput, policyLosses } from "./losses.js";
import { klEstimate, maskedMean } from "./regularizers.js";

/** The pairs of each group as a [K, N] difference matrix (+1 at y1, −1 at y2) and a [K] weight 1/#pairs. */
export function pairMatrix(
  groupIndex: Int32Array,
  rewards: Float64Array,
): { pairs: [number, number][]; weights: Float64Array } {
  const byGroup = new Map<number, number[]>();
  groupIndex.forEach((g, i) => {
    if (Number.isNaN(rewards[i] as number)) return;
    const m = byGroup.get(g);
    if (m === undefined) byGroup.set(g, [i]);
    else m.push(i);
  });
  const pairs: [number, number][] = [];
  const weights: number[] = [];
  for (const rows of byGroup.values()) {
    const k = (rows.length * (rows.length - 1)) / 2;
    for (let a = 0; a < rows.length; a++)
      for (let b = a + 1; b < rows.length; b++) {
        pairs.push([rows[a] as number, rows[b] as number]);
        weights.push(1 / k);
      }
  }
  return { pairs, weights: Float64Array.from(weights) };
}

/** y1 − y2 of a per-row tensor x [N] over the pairs → [K]. */
function pairDiff(x: Tensor, pairs: readonly [number, number][], n: number): Tensor {
  const d = new Float64Array(pairs.length * n);
  pairs.forEach(([i, j], k) => {
    d[k * n + i] = 1;
    d[k * n + j] = -1;
  });
  return tidy(() => hostTensor(d, [pairs.length, n], x).mul(x.unsqueeze(0)).sum(-1));
}

/** Per-row sums over the valid tokens: Σ_t x·mask → [N]. */
function rowSum(x: Tensor, mask: Tensor): Tensor {
  return tidy(() => x.mul(mask).sum(-1));
}

function needRewards(ctx: LossContext, who: string): Float64Array {
  const r = ctx.batch.rewards;
  if (r === undefined) throw new CohortError(`the ${who} loss needs LossBatch.rewards (one reward per completion)`);
  return r;
}

/** Σ_pairs w·loss / #groups of the step (0 with no pair). */
function finish(perPair: Tensor, weights: Float64Array, ctx: LossContext): Tensor {
  return tidy(() => {
    const groups = ctx.counts.groups ?? new Set(ctx.batch.groupIndex).size;
    const total = perPair.mul(hostTensor(weights, [weights.length], perPair)).sum();
    return groups === 0 ? total.mul(0) : total.div(groups);
  });
}

function zeroLoss(ctx: LossContext, metrics: Record<string, number>): LossOutput {
  return { loss: tidy(() => ctx.batch.logprobs.sum().mul(0)), metrics };
}

// ---- P3O -----------------------------------------------------------------------------------------

const p3oParams = z.strictObject({
  /** V1 "separate": each response's ratio clipped on its own; V2 "joint": the ratio of ratios ρ1/ρ2 clipped. */
  variant: z.enum(["separate", "joint"]).default("separate"),
  /** ε of the clip. */
  clip: z.number().min(0).default(0.2),
  /** β of the sequence-level KL in the reward, r̃ = r − β·(log π_θ − log π_ref) without gradient; 0 = none. */
  beta: z.number().min(0).default(0),
});
export type P3oParams = z.output<typeof p3oParams>;

/**
 * P3O pair loss for Δ = r̃1 − r̃2 and sequence ratios ρ1, ρ2 [K] (ALGORITHMS.md §G.1, reconstruction):
 * V1 `−[min(ρ1·Δ/2, clip(ρ1)·Δ/2) + min(−ρ2·Δ/2, −clip(ρ2)·Δ/2)]`, V2 `−min(R·Δ/2, clip(R)·Δ/2)`, R = ρ1/ρ2.
 */
export function p3oPairLoss(delta: Tensor, logRho1: Tensor, logRho2: Tensor, p: Omit<P3oParams, "beta">): Tensor {
  return tidy(() => {
    const lo = 1 - p.clip;
    const hi = 1 + p.clip;
    const h = delta.mul(0.5);
    const surr = (rho: Tensor, a: Tensor) => rho.mul(a).minimum(rho.clamp(lo, hi).mul(a));
    if (p.variant === "joint") return surr(logRho1.sub(logRho2).exp(), h).neg();
    return surr(logRho1.exp(), h).add(surr(logRho2.exp(), h.neg())).neg();
  });
}

// arXiv 2310.00212 [ABSTRACT] (pairwise gradient from the BAIR blog; clipped variants: reconstruction)
export function p3oLoss(ctx: LossContext, p: P3oParams): LossOutput {
  const rewards = needRewards(ctx, "p3o");
  const { pairs, weights } = pairMatrix(ctx.batch.groupIndex, rewards);
  if (pairs.length === 0) return zeroLoss(ctx, { "p3o/pairs": 0 });
  const { logprobs, oldLogprobs, refLogprobs, mask } = ctx.batch;
  const n = rewards.length;
  return tidy(() => {
    let r = hostTensor(
      rewards.map((x) => (Number.isNaN(x) ? 0 : x)),
      [n],
      logprobs,
    );
    const metrics: Record<string, number> = { "p3o/pairs": pairs.length };
    if (p.beta > 0) {
      if (refLogprobs === undefined) throw new CohortError("p3o with beta > 0 needs LossBatch.refLogprobs");
      const kl = rowSum(logprobs.detach().sub(refLogprobs), mask);
      metrics["p3o/kl_ref"] = kl.mean().item();
      r = r.sub(kl.mul(p.beta));
    }
    const s = rowSum(logprobs.sub(oldLogprobs), mask); // log ρ per row
    const delta = pairDiff(r, pairs, n);
    const onehot = (which: 0 | 1) => {
      const d = new Float64Array(pairs.length * n);
      pairs.forEach((pr, k) => {
        d[k * n + pr[which]] = 1;
      });
      return hostTensor(d, [pairs.length, n], s).mul(s.unsqueeze(0)).sum(-1);
    };
    const per = p3oPairLoss(delta, onehot(0), onehot(1), p);
    return { loss: finish(per, weights, ctx), metrics };
  });
}

// ---- DNO -----------------------------------------------------------------------------------------

const dnoParams = z.strictObject({
  /** η ("beta" of the TRL DPO implementation the paper uses): scale of the internal reward η·log(π/π_t). */
  eta: z.number().positive().default(0.1),
  /** "soft": targets σ(r1 − r2) on every pair (DNO, Alg. 1); "hard": winner of pairs whose rewards differ by at
   * least `margin`, loss −log σ(Δ_π) (DNO-Prct, Alg. 2). */
  target: z.enum(["soft", "hard"]).default("soft"),
  /** Smallest reward gap of a pair kept by the hard target (strictly positive gaps when 0). */
  margin: z.number().min(0).default(0),
  /** π_t of the log-ratio: the rollout policy π_old (each step is an iteration) or the reference model. */
  anchor: z.enum(["old", "ref"]).default("old"),
});
export type DnoParams = z.output<typeof dnoParams>;

/**
 * DNO pair loss for Δ_π = η·(log ρ1 − log ρ2) [K] and targets t [K] (probability that y1 wins):
 * `−[t·log σ(Δ_π) + (1 − t)·log σ(−Δ_π)]` (ALGORITHMS.md §G.2).
 */
export function dnoPairLoss(deltaPi: Tensor, target: Tensor): Tensor {
  return tidy(() => target.mul(deltaPi.logSigmoid()).add(target.neg().add(1).mul(deltaPi.neg().logSigmoid())).neg());
}

// arXiv 2404.03715 [PAPER]
export function dnoLoss(ctx: LossContext, p: DnoParams): LossOutput {
  const rewards = needRewards(ctx, "dno");
  let { pairs, weights } = pairMatrix(ctx.batch.groupIndex, rewards);
  const { logprobs, oldLogprobs, refLogprobs, mask } = ctx.batch;
  const anchor = p.anchor === "ref" ? refLogprobs : oldLogprobs;
  if (anchor === undefined) throw new CohortError('dno with anchor "ref" needs LossBatch.refLogprobs');
  let targets: number[];
  if (p.target === "hard") {
    // orient each kept pair winner-first; weights stay 1/#pairs of the group (pairs below the margin add 0)
    const kept: [number, number][] = [];
    const w: number[] = [];
    pairs.forEach(([i, j], k) => {
      const d = (rewards[i] as number) - (rewards[j] as number);
      if (d === 0 || Math.abs(d) < p.margin) return;
      kept.push(d > 0 ? [i, j] : [j, i]);
      w.push(weights[k] as number);
    });
    pairs = kept;
    weights = Float64Array.from(w);
    targets = kept.map(() => 1);
  } else {
    targets = pairs.map(([i, j]) => 1 / (1 + Math.exp(-((rewards[i] as number) - (rewards[j] as number)))));
  }
  if (pairs.length === 0) return zeroLoss(ctx, { "dno/pairs": 0 });
  const n = rewards.length;
  return tidy(() => {
    const s = rowSum(logprobs.sub(anchor), mask).mul(p.eta); // internal reward η·log(π/π_t)
    const deltaPi = pairDiff(s, pairs, n);
    const per = dnoPairLoss(deltaPi, hostTensor(Float64Array.from(targets), [pairs.length], s));
    // how often the internal reward already orders the pair as its target does
    const agree = deltaPi
      .detach()
      .gt(0)
      .to(s.dtype)
      .sub(hostTensor(Float64Array.from(targets), [pairs.length], s))
      .abs()
      .lt(0.5)
      .to(s.dtype)
      .mean()
      .item();
    return { loss: finish(per, weights, ctx), metrics: { "dno/pairs": pairs.length, "dno/agreement": agree } };
  });
}

// ---- Nash-MP (policy-gradient approximation of one proximal step) -------------------------------

const nashMpParams = z.strictObject({
  /** β of the regularised game: β·KL(π‖π_ref). */
  beta: z.number().min(0).default(0.1),
  /** Mirror-prox step size η: the proximal term (1/η)·KL(π‖π_k), π_k = the rollout policy. */
  eta: z.number().positive().default(2),
});
export type NashMpParams = z.output<typeof nashMpParams>;

/**
 * Nash-MP proximal step, per token: `−A·ℓ + β·k3(π‖π_ref) + (1/η)·k3(π‖π_k)` with A the group-centred win rate
 * (the advantage slot: `dr_grpo`, i.e. P(y ≻ π_k) − ½ with the group mean as baseline). ALGORITHMS.md §G.3,
 * design choice.
 */
// arXiv 2505.19731 [ABSTRACT]
export function nashMpLoss(ctx: LossContext, p: NashMpParams): LossOutput {
  const { logprobs, oldLogprobs, refLogprobs, mask } = ctx.batch;
  return tidy(() => {
    let t = ctx.advantages.mul(logprobs).neg();
    const kOld = klEstimate(logprobs, oldLogprobs, "k3");
    const metrics: Record<string, number> = { "nash_mp/kl_prev": maskedMean(kOld, mask) };
    t = t.add(kOld.div(p.eta));
    if (p.beta > 0) {
      if (refLogprobs === undefined) throw new CohortError("nash_mp with beta > 0 needs LossBatch.refLogprobs");
      const kRef = klEstimate(logprobs, refLogprobs, "k3");
      metrics["nash_mp/kl_ref"] = maskedMean(kRef, mask);
      t = t.add(kRef.mul(p.beta));
    }
    return { tokenLoss: t, metrics };
  });
}

policyLosses.define({
  name: "p3o",
  paper: "2310.00212",
  confidence: "ABSTRACT",
  doc: "P3O: pairwise clipped policy gradient on reward differences within a group (shift-invariant)",
  params: p3oParams,
  needs: (p) => (p.beta > 0 ? ["wholeGroups", "refLogprobs"] : ["wholeGroups"]),
  apply: (ctx, p) => p3oLoss(ctx, p),
});
policyLosses.define({
  name: "dno",
  paper: "2404.03715",
  confidence: "PAPER",
  doc: "DNO: regression of η·log(π/π_t) differences onto win-rate targets over the pairs of each group",
  params: dnoParams,
  needs: (p) => (p.anchor === "ref" ? ["wholeGroups", "refLogprobs"] : ["wholeGroups"]),
  apply: (ctx, p) => dnoLoss(ctx, p),
});
policyLosses.define({
  name: "nash_mp",
  paper: "2505.19731",
  confidence: "ABSTRACT",
  doc: "Nash-MP proximal step: −A·ℓ + β·k3 to π_ref + (1/η)·k3 to π_k (policy-gradient approximation)",
  params: nashMpParams,
  needs: (p) => (p.beta > 0 ? ["refLogprobs"] : []),
  apply: (ctx, p) => nashMpLoss(ctx, p),
});
