/**
 * Action-space reduction by grouping (Li, Ju, Shroff): partition the actions by the similarity of their
 * transition distributions and rewards, estimate the grouped MDP from a sample budget, solve it, and choose
 * the number of groups M by the trade-off between approximation error (coarse groups) and estimation error
 * (few samples per group). The paper's exact model, bound and selection algorithm were not available: every
 * formula below is our design choice (ALGORITHMS.md §E.5).
 *
 * | quantity        | formula (h: A → {1..M} a grouping, g a group)                                            |
 * |-----------------|------------------------------------------------------------------------------------------|
 * | model           | P(·|s,a) = P̄(·|s,h(a)) + Δ(·|s,a),  r(s,a) = r̄(s,h(a)) + δ(s,a)  (P̄, r̄: means over g)      |
 * | errors          | ε_P(M) = max_{s,a} ‖Δ(·|s,a)‖_1,  ε_r(M) = max_{s,a} |δ(s,a)|   (from a pilot sample)     |
 * | budget          | n = N/(|S|·M) generative samples per (s, g), the action drawn uniformly in g              |
 * | Loss(M)         | 2/(1−γ)² [ε_r + R_max √(L/(2n)) + (γV_max/2)(ε_P + √(2(|S| ln 2 + L)/n))], L = ln(4|S|M/δ) |
 * | choice          | M* = argmin_M Loss(M); the groups for each M by k-means on f_a = [r̂(s,a), P̂(·|s,a)]_s     |
 * | solve / lift    | the M-action MDP (P̂, r̂) by value iteration (or the loop's policy optimizer);              |
 * |                 | π(a|s) = π_M(h(a)|s)/|h(a)|  (the low-level action uniform in its group)                  |
 *
 * The environment `grouped_garnet` builds actions with a controllable similarity: `clusters` latent action
 * types, each a Garnet kernel and reward; action a of type c has P(·|s,a) = (1−σ)P_c(·|s) + σQ_a(·|s) and
 * r(s,a) = (1−σ)r_c(s) + σu_a(s), Q_a and u_a random. A generative sample of (s, a) returns s' ~ P(·|s,a) and a
 * Bernoulli reward of mean r(s,a).
 * @module
 */
// arXiv 2306.12981 [ABSTRACT] (the loss, k-means features and the lift: design choice, ALGORITHMS.md §E.5)
import { z } from "zod";
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import { garnet, type TabularMdp, valueIteration } from "./mdp.js";

export const groupingSchema = z.strictObject({
  /** The number of groups M, or `auto`: argmin Loss(M) over `candidates`. */
  groups: z.union([z.literal("auto"), z.number().int().positive()]).default("auto"),
  candidates: z.array(z.number().int().positive()).default([1, 2, 4, 8, 16]),
  /** Generative-model budget N for the grouped model (split evenly over (s, g)). */
  samples: z.number().int().positive().default(20_000),
  /** Pilot samples per (s, a) for the similarity features and ε(M) (not counted in N). */
  pilot: z.number().int().positive().default(20),
  /** Confidence δ of the loss. */
  delta: z.number().gt(0).lt(1).default(0.05),
});
export type GroupingConfig = z.output<typeof groupingSchema>;

export const groupedGarnetOptions = z.strictObject({
  states: z.number().int().min(2).default(10),
  actions: z.number().int().min(2).default(32),
  clusters: z.number().int().min(1).default(4),
  branching: z.number().int().min(1).default(3),
  /** Within-type perturbation σ ∈ [0, 1]. */
  sigma: z.number().min(0).max(1).default(0.1),
  gamma: z.number().min(0).lt(1).default(0.9),
  horizon: z.number().int().positive().default(30),
  seed: z.number().int().min(0).default(0),
});
export type GroupedGarnetOptions = z.output<typeof groupedGarnetOptions>;

/** The `grouped_garnet` MDP and each action's latent type. */
export function groupedGarnet(o: GroupedGarnetOptions): TabularMdp & { types: Int32Array } {
  const { states: S, actions: A, clusters: C, sigma } = o;
  if (o.branching > S) throw new CohortError(`grouped_garnet branching must be in 1..${S}, got ${o.branching}`);
  const base = garnet({ states: S, actions: C, branching: o.branching, gamma: o.gamma, seed: o.seed });
  const noise = garnet({ states: S, actions: A, branching: o.branching, gamma: o.gamma, seed: o.seed + 104_729 });
  const rng = Rng.fromSeed(o.seed * 31 + 7);
  const types = Int32Array.from({ length: A }, () => rng.int(0, C - 1));
  const P = new Float64Array(S * A * S);
  const R = new Float64Array(S * A);
  for (let s = 0; s < S; s++)
    for (let a = 0; a < A; a++) {
      const c = types[a] as number;
      for (let s2 = 0; s2 < S; s2++)
        P[(s * A + a) * S + s2] =
          (1 - sigma) * (base.P[(s * C + c) * S + s2] as number) + sigma * (noise.P[(s * A + a) * S + s2] as number);
      R[s * A + a] = (1 - sigma) * (base.R[s * C + c] as number) + sigma * (noise.R[s * A + a] as number);
    }
  return { states: S, actions: A, P, R, gamma: o.gamma, start: new Float64Array(S).fill(1 / S), types };
}

/** A generative sample: s' ~ P(·|s,a), r ~ Bernoulli(R(s,a)). */
function draw(m: TabularMdp, s: number, a: number, rng: Rng): { s2: number; r: number } {
  const S = m.states;
  const off = (s * m.actions + a) * S;
  let u = rng.float();
  let s2 = S - 1;
  for (let k = 0; k < S; k++) {
    u -= m.P[off + k] as number;
    if (u < 0) {
      s2 = k;
      break;
    }
  }
  return { s2, r: rng.float() < (m.R[s * m.actions + a] as number) ? 1 : 0 };
}

/** Empirical P̂ [S·A·S] and r̂ [S·A] from `n` samples of every (s, a). */
export function pilotModel(m: TabularMdp, n: number, rng: Rng): { P: Float64Array; R: Float64Array } {
  const { states: S, actions: A } = m;
  const P = new Float64Array(S * A * S);
  const R = new Float64Array(S * A);
  for (let s = 0; s < S; s++)
    for (let a = 0; a < A; a++)
      for (let k = 0; k < n; k++) {
        const d = draw(m, s, a, rng);
        P[(s * A + a) * S + d.s2] = (P[(s * A + a) * S + d.s2] as number) + 1 / n;
        R[s * A + a] = (R[s * A + a] as number) + d.r / n;
      }
  return { P, R };
}

/** k-means (k-means++ seeding, Lloyd iterations) of the actions' features; returns h(a) ∈ 0..M−1. */
export function kmeansGroups(features: Float64Array[], M: number, rng: Rng, iters = 50): Int32Array {
  const A = features.length;
  if (M < 1 || M > A) throw new CohortError(`grouping: ${M} groups for ${A} actions (need 1..${A})`);
  const dist = (x: Float64Array, y: Float64Array) => {
    let d = 0;
    for (let k = 0; k < x.length; k++) d += ((x[k] as number) - (y[k] as number)) ** 2;
    return d;
  };
  const centers: Float64Array[] = [Float64Array.from(features[rng.int(0, A - 1)] as Float64Array)];
  while (centers.length < M) {
    const d2 = features.map((f) => Math.min(...centers.map((c) => dist(f, c))));
    const tot = d2.reduce((a, b) => a + b, 0);
    let u = rng.float() * tot;
    let pick = A - 1;
    for (let a = 0; a < A; a++) {
      u -= d2[a] as number;
      if (u < 0) {
        pick = a;
        break;
      }
    }
    if (tot === 0) pick = centers.length; // identical features: any distinct index
    centers.push(Float64Array.from(features[pick] as Float64Array));
  }
  const h = new Int32Array(A).fill(-1);
  for (let it = 0; it < iters; it++) {
    let moved = false;
    for (let a = 0; a < A; a++) {
      let best = 0;
      for (let c = 1; c < M; c++)
        if (
          dist(features[a] as Float64Array, centers[c] as Float64Array) <
          dist(features[a] as Float64Array, centers[best] as Float64Array)
        )
          best = c;
      if (h[a] !== best) moved = true;
      h[a] = best;
    }
    // every group keeps at least one action: an empty one takes the action farthest from its centre
    for (let c = 0; c < M; c++)
      if (!h.includes(c)) {
        let far = 0;
        let fd = -1;
        for (let a = 0; a < A; a++) {
          const d = dist(features[a] as Float64Array, centers[h[a] as number] as Float64Array);
          if (d > fd && h.filter((x) => x === h[a]).length > 1) {
            fd = d;
            far = a;
          }
        }
        h[far] = c;
        moved = true;
      }
    for (let c = 0; c < M; c++) {
      const members = features.filter((_, a) => h[a] === c);
      const ctr = new Float64Array(features[0]?.length ?? 0);
      for (const f of members)
        for (let k = 0; k < ctr.length; k++) ctr[k] = (ctr[k] as number) + (f[k] as number) / members.length;
      centers[c] = ctr;
    }
    if (!moved) break;
  }
  return h;
}

/** f_a = [r̂(s,a), P̂(·|s,a)]_s. */
export function actionFeatures(P: Float64Array, R: Float64Array, S: number, A: number): Float64Array[] {
  return Array.from({ length: A }, (_, a) => {
    const f = new Float64Array(S * (S + 1));
    for (let s = 0; s < S; s++) {
      f[s * (S + 1)] = R[s * A + a] as number;
      for (let s2 = 0; s2 < S; s2++) f[s * (S + 1) + 1 + s2] = P[(s * A + a) * S + s2] as number;
    }
    return f;
  });
}

/** ε_P(M), ε_r(M) of a grouping on a model (P, R). */
export function groupingErrors(
  P: Float64Array,
  R: Float64Array,
  S: number,
  A: number,
  h: Int32Array,
): { epsP: number; epsR: number } {
  const M = Math.max(...h) + 1;
  let epsP = 0;
  let epsR = 0;
  for (let s = 0; s < S; s++)
    for (let g = 0; g < M; g++) {
      const members = Array.from({ length: A }, (_, a) => a).filter((a) => h[a] === g);
      if (members.length === 0) continue;
      const pbar = new Float64Array(S);
      let rbar = 0;
      for (const a of members) {
        rbar += (R[s * A + a] as number) / members.length;
        for (let s2 = 0; s2 < S; s2++)
          pbar[s2] = (pbar[s2] as number) + (P[(s * A + a) * S + s2] as number) / members.length;
      }
      for (const a of members) {
        epsR = Math.max(epsR, Math.abs((R[s * A + a] as number) - rbar));
        let l1 = 0;
        for (let s2 = 0; s2 < S; s2++) l1 += Math.abs((P[(s * A + a) * S + s2] as number) - (pbar[s2] as number));
        epsP = Math.max(epsP, l1);
      }
    }
  return { epsP, epsR };
}

/** Loss(M) of the module header. */
export function groupingLoss(o: {
  states: number;
  gamma: number;
  rMax: number;
  vMax: number;
  delta: number;
  groups: number;
  epsR: number;
  epsP: number;
  samples: number;
}): number {
  const n = o.samples / (o.states * o.groups);
  const L = Math.log((4 * o.states * o.groups) / o.delta);
  return (
    (2 / (1 - o.gamma) ** 2) *
    (o.epsR +
      o.rMax * Math.sqrt(L / (2 * n)) +
      ((o.gamma * o.vMax) / 2) * (o.epsP + Math.sqrt((2 * (o.states * Math.LN2 + L)) / n)))
  );
}

/** The grouped MDP (S states, M actions) estimated from N samples spread over (s, g), the action uniform in g. */
export function estimateGrouped(m: TabularMdp, h: Int32Array, N: number, rng: Rng): TabularMdp {
  const { states: S, actions: A } = m;
  const M = Math.max(...h) + 1;
  const members = Array.from({ length: M }, (_, g) => Array.from({ length: A }, (_, a) => a).filter((a) => h[a] === g));
  const n = Math.max(1, Math.floor(N / (S * M)));
  const P = new Float64Array(S * M * S);
  const R = new Float64Array(S * M);
  for (let s = 0; s < S; s++)
    for (let g = 0; g < M; g++) {
      const acts = members[g] as number[];
      for (let k = 0; k < n; k++) {
        const a = acts[rng.int(0, acts.length - 1)] as number;
        const d = draw(m, s, a, rng);
        P[(s * M + g) * S + d.s2] = (P[(s * M + g) * S + d.s2] as number) + 1 / n;
        R[s * M + g] = (R[s * M + g] as number) + d.r / n;
      }
    }
  return { states: S, actions: M, P, R, gamma: m.gamma, start: Float64Array.from(m.start) };
}

/** The exact group-averaged MDP (infinite samples): P̄, r̄ with the action uniform in its group. */
export function averagedGrouped(m: TabularMdp, h: Int32Array): TabularMdp {
  const { states: S, actions: A } = m;
  const M = Math.max(...h) + 1;
  const P = new Float64Array(S * M * S);
  const R = new Float64Array(S * M);
  const size = Array.from({ length: M }, (_, g) => h.filter((x) => x === g).length);
  for (let s = 0; s < S; s++)
    for (let a = 0; a < A; a++) {
      const g = h[a] as number;
      const w = 1 / (size[g] as number);
      R[s * M + g] = (R[s * M + g] as number) + w * (m.R[s * A + a] as number);
      for (let s2 = 0; s2 < S; s2++)
        P[(s * M + g) * S + s2] = (P[(s * M + g) * S + s2] as number) + w * (m.P[(s * A + a) * S + s2] as number);
    }
  return { states: S, actions: M, P, R, gamma: m.gamma, start: Float64Array.from(m.start) };
}

/** π(a|s) = π_M(h(a)|s)/|h(a)| [S·A] from a group policy [S·M]. */
export function liftPolicy(piM: ArrayLike<number>, h: Int32Array, S: number): Float64Array {
  const A = h.length;
  const M = Math.max(...h) + 1;
  const size = Array.from({ length: M }, (_, g) => h.filter((x) => x === g).length);
  const pi = new Float64Array(S * A);
  for (let s = 0; s < S; s++)
    for (let a = 0; a < A; a++)
      pi[s * A + a] = (piM[s * M + (h[a] as number)] as number) / (size[h[a] as number] as number);
  return pi;
}

export const oneHot = (policy: Int32Array, A: number): Float64Array => {
  const pi = new Float64Array(policy.length * A);
  policy.forEach((a, s) => {
    pi[s * A + a] = 1;
  });
  return pi;
};

/** The selection for one MDP and budget: pilot features, groupings for each candidate M, their losses and M*. */
export function chooseGrouping(
  m: TabularMdp,
  cfg: GroupingConfig,
  rng: Rng,
): { groups: number; h: Int32Array; losses: Record<number, number>; byM: Map<number, Int32Array> } {
  const { states: S, actions: A } = m;
  const pilot = pilotModel(m, cfg.pilot, rng);
  const feats = actionFeatures(pilot.P, pilot.R, S, A);
  const cands = cfg.groups === "auto" ? cfg.candidates.filter((M) => M <= A) : [cfg.groups];
  if (cands.length === 0) throw new CohortError(`grouping: no candidate M ≤ ${A} actions`);
  if (cfg.groups !== "auto" && cfg.groups > A)
    throw new CohortError(`grouping: ${cfg.groups} groups for ${A} actions (need 1..${A})`);
  const vMax = 1 / (1 - m.gamma);
  const losses: Record<number, number> = {};
  const byM = new Map<number, Int32Array>();
  for (const M of cands) {
    const h = kmeansGroups(feats, M, rng);
    byM.set(M, h);
    const e = groupingErrors(pilot.P, pilot.R, S, A, h);
    losses[M] = groupingLoss({
      states: S,
      gamma: m.gamma,
      rMax: 1,
      vMax,
      delta: cfg.delta,
      groups: M,
      epsR: e.epsR,
      epsP: e.epsP,
      samples: cfg.samples,
    });
  }
  let best = cands[0] as number;
  for (const M of cands) if ((losses[M] as number) < (losses[best] as number)) best = M;
  return { groups: best, h: byM.get(best) as Int32Array, losses, byM };
}

/** Solves a (reduced) MDP by value iteration: the greedy policy as a table [S·M]. */
export function solveReduced(m: TabularMdp): Float64Array {
  return oneHot(valueIteration(m, 1e-10).policy, m.actions);
}
