/**
 * VGPO — Value-Anchored Group Policy Optimization ("Anchoring Values in Temporal and Group Dimensions for Flow
 * Matching Model Alignment", arXiv 2512.12387): per-step advantages from dense value estimates, with a group
 * normalisation enhanced by an absolute term so the signal does not vanish when a group's rewards are equal.
 * ALGORITHMS.md §F.2; only the abstract and reviews were available, so the formulas are a design choice:
 *
 * | quantity     | formula (rows i of a group, steps j = 0..L−1 of row i)                                      |
 * |--------------|----------------------------------------------------------------------------------------------|
 * | instant R    | R_{i,j} = Σ_{k ≤ j} r_{i,k}: the running return of the per-step rewards r (batch.tokenRewards; |
 * |              | absent: r_i on the last valid step). The digits_flow environment emits r_{i,j} = Φ(s_{j+1}) −  |
 * |              | Φ(s_j) with Φ(s_{j+1}) the reward of the one-step projection x̂_0 = x_{j+1} − σ_{j+1}·v_θ and    |
 * |              | Φ(s_K) the terminal reward, so R_{i,j} is the reward of step j's projected image (TCRM's     |
 * |              | "instant reward") and the episode return is the terminal reward                              |
 * | value        | Q_{i,j} = Σ_{k=j}^{L−1} γ^{k−j} R_{i,k}                                                       |
 * | temporal ω   | ω_{i,j} = Q_{i,j} / mean_k Q_{i,k}   (1 where |mean_k Q_{i,k}| < 1e-8)                          |
 * | group stats  | μ_j, σ_j = mean and unbiased std of Q_{·,j} over the group's rows valid at step j             |
 * | advantage    | A_{i,j} = ω_{i,j}·[(Q_{i,j} − μ_j)/(σ_j + eps) + k·Q_{i,j}·1[j < J_abs]]                      |
 *
 * The bracket is the σ-cancelled form of (Q − μ + α·Q)/σ with the reviews' α = k·σ(Q): the absolute term k·Q
 * survives when σ_j → 0, where plain GRPO gives 0. A group of one valid row keeps only the absolute term.
 * Rows with a NaN reward get 0.
 * @module
 */
// arXiv 2512.12387 [ABSTRACT] (design choice, ALGORITHMS.md F.2)
import { z } from "zod";
import { CohortError } from "../errors.js";
import { tensor, tidy } from "../tensor/index.js";
import { defineAdvantage, groupMembers } from "./advantage.js";
import { devOf } from "./groups.js";
import type { RewardBatch } from "./types.js";

export const vgpoParams = z.strictObject({
  /** Discount of the value Q_{i,j} over the later steps' instant rewards (design choice; 0.9 in the spec's vectors). */
  gamma: z.number().min(0).max(1).default(0.9),
  /** Weight k of the absolute term, α = k·σ (design choice). */
  k: z.number().min(0).default(0.5),
  /** Steps j < absSteps get the absolute term (the reviews: the first 5 of 10 sampling steps). */
  absSteps: z.number().int().min(0).default(5),
  /** Added to the group std of Q_{·,j}. */
  eps: z.number().min(0).default(1e-6),
  /** Scale ω_{i,j} = Q_{i,j}/mean_k Q_{i,k} (true) or ω = 1 (false: no temporal reweighting). */
  temporalWeight: z.boolean().default(true),
});
export type VgpoOptions = z.input<typeof vgpoParams>;

/**
 * The VGPO advantages [N, T] (flat, row-major) from per-step rewards r [N, T], the mask [N, T] and the groups
 * (host float64; see the module table).
 */
export function vgpoAdvantages(
  stepRewards: Float64Array,
  mask: Float64Array,
  groups: number[][],
  n: number,
  t: number,
  o: z.output<typeof vgpoParams>,
  skip?: (i: number) => boolean,
): { advantages: Float64Array; values: Float64Array } {
  const len = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    while (len[i]! < t && (mask[i * t + len[i]!] as number) > 0) len[i]!++;
  }
  // Q_{i,j} and ω_{i,j} along each row
  const Q = new Float64Array(n * t);
  const omega = new Float64Array(n * t).fill(1);
  for (let i = 0; i < n; i++) {
    const L = len[i]!;
    const R = new Float64Array(L);
    let run = 0;
    for (let j = 0; j < L; j++) {
      run += stepRewards[i * t + j] as number;
      R[j] = run;
    }
    let q = 0;
    let sum = 0;
    for (let j = L - 1; j >= 0; j--) {
      q = (R[j] as number) + o.gamma * q;
      Q[i * t + j] = q;
      sum += q;
    }
    const mean = L > 0 ? sum / L : 0;
    if (o.temporalWeight && Math.abs(mean) >= 1e-8) for (let j = 0; j < L; j++) omega[i * t + j] = Q[i * t + j]! / mean;
  }
  const adv = new Float64Array(n * t);
  for (const rows of groups) {
    const live = rows.filter((i) => !skip?.(i));
    const T = Math.max(0, ...live.map((i) => len[i]!));
    for (let j = 0; j < T; j++) {
      const at = live.filter((i) => j < len[i]!);
      let m = 0;
      for (const i of at) m += Q[i * t + j]!;
      m /= at.length;
      let ss = 0;
      for (const i of at) ss += (Q[i * t + j]! - m) ** 2;
      const sd = at.length > 1 ? Math.sqrt(ss / (at.length - 1)) : 0;
      for (const i of at) {
        const q = Q[i * t + j]!;
        const rel = at.length > 1 && sd + o.eps > 0 ? (q - m) / (sd + o.eps) : 0;
        const abs = j < o.absSteps ? o.k * q : 0;
        adv[i * t + j] = omega[i * t + j]! * (rel + abs);
      }
    }
  }
  return { advantages: adv, values: Q };
}

// arXiv 2512.12387 [ABSTRACT]
export const vgpo = defineAdvantage({
  name: "vgpo",
  paper: "2512.12387",
  confidence: "ABSTRACT",
  doc:
    "per-step values Q_{i,j} = Σ_k γ^{k−j} R_{i,k} of instant rewards (the running return of per-step rewards), " +
    "temporal weight Q/mean_j Q, group-normalised per step plus an absolute term k·Q on the first absSteps steps (design choice)",
  params: vgpoParams,
  needs: ["tokenMask"],
  granularity: "token",
  tokenRewards: true,
  absolute: true,
  estimate(batch: RewardBatch, p) {
    const mask = batch.mask;
    if (mask === undefined || mask.ndim !== 2 || mask.shape[0] !== batch.rewards.length)
      throw new CohortError(`vgpo returns per-step advantages and needs batch.mask [${batch.rewards.length}, T]`);
    const [n, t] = mask.shape as [number, number];
    const m = tidy(() => mask.to("f64").data() as Float64Array);
    let r: Float64Array;
    if (batch.tokenRewards !== undefined) {
      if (batch.tokenRewards.shape[0] !== n || batch.tokenRewards.shape[1] !== t)
        throw new CohortError(`vgpo: tokenRewards has shape [${batch.tokenRewards.shape}], the mask [${n}, ${t}]`);
      r = tidy(() => (batch.tokenRewards as NonNullable<typeof batch.tokenRewards>).to("f64").data() as Float64Array);
      r = Float64Array.from(r, (v, k) => ((m[k] as number) > 0 ? v : 0));
    } else {
      // no per-step rewards: the row's reward on its last valid step (the pipeline's convention)
      r = new Float64Array(n * t);
      for (let i = 0; i < n; i++) {
        for (let j = t - 1; j >= 0; j--) {
          if ((m[i * t + j] as number) > 0) {
            r[i * t + j] = batch.rewards[i] as number;
            break;
          }
        }
      }
    }
    const { advantages } = vgpoAdvantages(r, m, groupMembers(batch.groupIndex), n, t, p, (i) =>
      Number.isNaN(batch.rewards[i] as number),
    );
    return { kind: "token", values: tensor(advantages, { shape: [n, t], device: devOf(mask) }) };
  },
});
