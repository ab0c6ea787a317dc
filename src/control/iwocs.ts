/**
 * IWOCS, Incremental Worst-Case Search (Zouitine, Geist, Rachelson): robust MDPs over a span of static
 * transition models, solved by adding worst-case models one at a time around a non-robust optimizer.
 *
 * | step                | formula (Alg. 1; i = 0, 1, …, T_0 the nominal model)                                   |
 * |---------------------|----------------------------------------------------------------------------------------|
 * | non-robust solve    | Q_{T_i} ← the value of a policy trained on the static MDP T_i (here: the run's loop)   |
 * | T_i-robust value    | Q_i(s, a) = min_{j ≤ i} Q_{T_j}(s, a)                                                  |
 * | robust policy       | π_i(s) = argmax_a Q_i(s, a)                                                            |
 * | worst-case search   | T_{i+1} = argmin_{T ∈ span} J_T(π_i)   (exact policy evaluation, brute force over the grid) |
 * | stop                | |J_{T_{i+1}}(π_i) − Σ_s μ0(s) Q_i(s, π_i(s))| ≤ tol, or maxModels reached                |
 *
 * The span here (`robust_garnet`, a design choice): a seeded Garnet MDP whose actions carry a risk ρ(s, a) ∈ [0, 1]
 * paid for by a reward bonus, and whose models T_{α,β} move with probability α·ρ(s, a) to a trap state (reward 0,
 * left with probability 1 − `trapStay`) and with probability β to a uniformly random state, (α, β) on a grid of
 * the box [0, alphaMax] × [0, betaMax].
 *
 * Through the loop (design choice): the run trains one tabular policy, `stepsPerModel` steps on each model in
 * turn (warm-started); at the end of a phase, Q_{T_i} = Q^{π}_{T_i} of the trained softmax policy by exact
 * evaluation (a planning solver would give Q*_{T_i}; the loop's policy optimizer gives its own value). Rollouts
 * come from the current model; the search and the list of models are the run's state (checkpointed).
 * @module
 */
// arXiv 2410.06212 [PAPER] (Alg. 1 meta-algorithm; the span and the loop form: design choice)
import { z } from "zod";
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import { garnet, policyEvaluation, qFromV, type TabularMdp } from "./mdp.js";

export const iwocsSchema = z.strictObject({
  /** Loop steps spent training on each model found. */
  stepsPerModel: z.number().int().positive().default(20),
  /** Models at most (the nominal one included). */
  maxModels: z.number().int().min(1).default(4),
  /** Stop when the robust value and the worst case over the span agree within tol. */
  tol: z.number().min(0).default(1e-3),
});
export type IwocsConfig = z.output<typeof iwocsSchema>;

export const robustGarnetOptions = z.strictObject({
  states: z.number().int().min(3).default(12),
  actions: z.number().int().min(2).default(4),
  branching: z.number().int().min(1).default(3),
  gamma: z.number().min(0).lt(1).default(0.9),
  horizon: z.number().int().positive().default(30),
  seed: z.number().int().min(0).default(0),
  /** Largest knock-to-trap probability factor α and slip probability β of the span. */
  alphaMax: z.number().min(0).max(1).default(0.6),
  betaMax: z.number().min(0).max(1).default(0.3),
  /** Grid points per parameter. */
  grid: z.number().int().min(2).default(6),
  /** The nominal model's (α, β). */
  nominal: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0, 0]),
  /** Reward bonus of the riskiest action: R = R_garnet·(1 − bonus) + bonus·ρ. */
  bonus: z.number().min(0).max(1).default(0.5),
  /** Probability of staying in the trap. */
  trapStay: z.number().min(0).lt(1).default(0.8),
});
export type RobustGarnetOptions = z.output<typeof robustGarnetOptions>;

/** A span of static models over a shared state/action space, indexed 0..count−1. */
export interface ModelSpan {
  count: number;
  /** Model k (a fresh object each call is fine). */
  model(k: number): TabularMdp;
  /** The nominal model's index. */
  nominal: number;
  /** Human-readable parameters of model k. */
  describe(k: number): Record<string, number>;
}

/** The `robust_garnet` span. State 0 is the trap. */
export function robustGarnetSpan(o: RobustGarnetOptions): ModelSpan {
  const base = garnet(o);
  const { states: S, actions: A } = base;
  const rng = Rng.fromSeed(o.seed * 7919 + 17);
  const risk = Float64Array.from({ length: S * A }, () => rng.float());
  const R = Float64Array.from(base.R, (r, sa) =>
    Math.floor(sa / A) === 0 ? 0 : r * (1 - o.bonus) + o.bonus * (risk[sa] as number),
  );
  const params = (k: number) => {
    const i = Math.floor(k / o.grid);
    const j = k % o.grid;
    return { alpha: (o.alphaMax * i) / (o.grid - 1), beta: (o.betaMax * j) / (o.grid - 1) };
  };
  const build = (alpha: number, beta: number): TabularMdp => {
    const P = new Float64Array(S * A * S);
    for (let sa = 0; sa < S * A; sa++) {
      const s = Math.floor(sa / A);
      if (s === 0) {
        // the trap: stay, or leave to a uniformly random state
        for (let s2 = 0; s2 < S; s2++) P[sa * S + s2] = (1 - o.trapStay) / S;
        P[sa * S] = (P[sa * S] as number) + o.trapStay;
        continue;
      }
      const knock = alpha * (risk[sa] as number);
      for (let s2 = 0; s2 < S; s2++) P[sa * S + s2] = (1 - knock - beta) * (base.P[sa * S + s2] as number) + beta / S;
      P[sa * S] = (P[sa * S] as number) + knock;
    }
    const start = new Float64Array(S).fill(1 / (S - 1));
    start[0] = 0;
    return { states: S, actions: A, P, R, gamma: o.gamma, start };
  };
  const count = o.grid * o.grid;
  // the grid point nearest to the nominal parameters
  let nominal = 0;
  let best = Number.POSITIVE_INFINITY;
  for (let k = 0; k < count; k++) {
    const p = params(k);
    const d = (p.alpha - o.nominal[0]) ** 2 + (p.beta - o.nominal[1]) ** 2;
    if (d < best) {
      best = d;
      nominal = k;
    }
  }
  return {
    count,
    nominal,
    model: (k) => {
      if (!(k >= 0 && k < count)) throw new CohortError(`robust_garnet: model ${k} is outside 0..${count - 1}`);
      const p = params(k);
      return build(p.alpha, p.beta);
    },
    describe: params,
  };
}

/** J_T(π) = Σ μ0 V^π_T of a stochastic policy π[s·A + a]. */
export function policyReturn(m: TabularMdp, pi: Float64Array): number {
  const V = policyEvaluation(m, pi);
  let j = 0;
  for (let s = 0; s < m.states; s++) j += (m.start[s] as number) * (V[s] as number);
  return j;
}

/** The worst model of the span for π and its return (brute force over the grid). */
export function worstCase(span: ModelSpan, pi: Float64Array): { model: number; value: number; values: number[] } {
  const values = Array.from({ length: span.count }, (_, k) => policyReturn(span.model(k), pi));
  let model = 0;
  for (let k = 1; k < values.length; k++) if ((values[k] as number) < (values[model] as number)) model = k;
  return { model, value: values[model] as number, values };
}

/** The deterministic policy argmax_a Q[s·A + a] as a one-hot table. */
export function greedyTable(Q: ArrayLike<number>, S: number, A: number): Float64Array {
  const pi = new Float64Array(S * A);
  for (let s = 0; s < S; s++) {
    let b = 0;
    for (let a = 1; a < A; a++) if ((Q[s * A + a] as number) > (Q[s * A + b] as number)) b = a;
    pi[s * A + b] = 1;
  }
  return pi;
}

/** Q^π_T [S·A] of a stochastic policy. */
export function policyQ(m: TabularMdp, pi: Float64Array): Float64Array {
  return qFromV(m, policyEvaluation(m, pi));
}

/** The search's state (JSON: it goes into checkpoints). */
export interface IwocsState {
  /** Indices of the models added, T_0 first. */
  models: number[];
  /** Q_{T_j} of each, flat [S·A]. */
  q: number[][];
  /** The last iteration's robust value Σ μ0 Q_i(s, π_i(s)), worst case and whether the search stopped. */
  robustValue: number | null;
  worstValue: number | null;
  converged: boolean;
}

export function initialIwocs(span: ModelSpan): IwocsState {
  return { models: [span.nominal], q: [], robustValue: null, worstValue: null, converged: false };
}

/** Q_i = min_j Q_{T_j} (elementwise). */
export function robustQ(st: IwocsState): Float64Array {
  if (st.q.length === 0) throw new CohortError("IWOCS: no model value yet");
  const out = Float64Array.from(st.q[0] as number[]);
  for (const q of st.q.slice(1))
    for (let k = 0; k < out.length; k++) out[k] = Math.min(out[k] as number, q[k] as number);
  return out;
}

/**
 * One IWOCS iteration after training on the newest model: record Q_{T_i} = Q^{π}_{T_i} of the trained policy
 * (or `q` given), form Q_i and π_i, search the worst model and add it unless the search stops.
 */
export function iwocsIteration(
  span: ModelSpan,
  st: IwocsState,
  trained: { pi?: Float64Array; q?: Float64Array },
  cfg: IwocsConfig,
): IwocsState {
  const k = st.models.at(-1) as number;
  const m = span.model(k);
  const q = trained.q ?? policyQ(m, trained.pi as Float64Array);
  const next: IwocsState = { ...st, models: [...st.models], q: [...st.q, Array.from(q)] };
  const Qi = robustQ(next);
  const pi = greedyTable(Qi, m.states, m.actions);
  let robust = 0;
  for (let s = 0; s < m.states; s++)
    for (let a = 0; a < m.actions; a++)
      robust += (m.start[s] as number) * (pi[s * m.actions + a] as number) * (Qi[s * m.actions + a] as number);
  const w = worstCase(span, pi);
  next.robustValue = robust;
  next.worstValue = w.value;
  if (Math.abs(w.value - robust) <= cfg.tol || next.models.length >= cfg.maxModels || next.models.includes(w.model))
    next.converged = true;
  else next.models.push(w.model);
  return next;
}

/** IWOCS with exact value iteration as the non-robust solver (Alg. 1 as written): the reference. */
export function iwocsPlanning(
  span: ModelSpan,
  cfg: IwocsConfig,
  solve: (m: TabularMdp) => Float64Array,
): { state: IwocsState; policy: Float64Array; iterations: number } {
  let st = initialIwocs(span);
  let it = 0;
  while (!st.converged) {
    st = iwocsIteration(span, st, { q: solve(span.model(st.models.at(-1) as number)) }, cfg);
    it++;
  }
  const m = span.model(span.nominal);
  return { state: st, policy: greedyTable(robustQ(st), m.states, m.actions), iterations: it };
}
