/**
 * Finite MDPs: seeded random Garnet-style MDPs and exact solvers (value iteration, policy evaluation).
 *
 * A `TabularMdp` holds P[s][a][s'] and the expected reward R[s][a] (flat arrays), the discount γ and the
 * start distribution μ0. Garnet(S, A, b) (Archibald et al. 1995): every (s, a) reaches `branching` distinct
 * next states with probabilities from a uniform partition of [0, 1]; rewards uniform in [0, 1).
 * @module
 */
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";

export interface TabularMdp {
  states: number;
  actions: number;
  /** P[(s·A + a)·S + s'] */
  P: Float64Array;
  /** R[s·A + a] */
  R: Float64Array;
  gamma: number;
  /** Start distribution μ0 (length S). */
  start: Float64Array;
}

export function checkMdp(m: TabularMdp): void {
  const { states: S, actions: A } = m;
  if (m.P.length !== S * A * S || m.R.length !== S * A || m.start.length !== S)
    throw new CohortError(`MDP arrays do not match S = ${S}, A = ${A}`);
  if (!(m.gamma >= 0 && m.gamma < 1)) throw new CohortError(`MDP discount must be in [0, 1), got ${m.gamma}`);
  for (let sa = 0; sa < S * A; sa++) {
    let t = 0;
    for (let s2 = 0; s2 < S; s2++) t += m.P[sa * S + s2] as number;
    if (Math.abs(t - 1) > 1e-9) throw new CohortError(`P(·|s=${Math.floor(sa / A)}, a=${sa % A}) sums to ${t}`);
  }
}

/** A seeded Garnet MDP; the start state is uniform. */
export function garnet(o: {
  states: number;
  actions: number;
  branching: number;
  gamma: number;
  seed: number;
}): TabularMdp {
  const { states: S, actions: A, branching: b } = o;
  if (b < 1 || b > S) throw new CohortError(`garnet branching must be in 1..${S}, got ${b}`);
  const rng = Rng.fromSeed(o.seed);
  const P = new Float64Array(S * A * S);
  const R = new Float64Array(S * A);
  for (let sa = 0; sa < S * A; sa++) {
    // b distinct next states (partial Fisher–Yates) and a uniform partition of [0, 1] into b parts
    const idx = Array.from({ length: S }, (_, i) => i);
    for (let i = 0; i < b; i++) {
      const j = rng.int(i, S - 1);
      [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
    }
    const cuts = [0, ...Array.from({ length: b - 1 }, () => rng.float()).sort((x, y) => x - y), 1];
    for (let i = 0; i < b; i++) P[sa * S + (idx[i] as number)] = (cuts[i + 1] as number) - (cuts[i] as number);
    R[sa] = rng.float();
  }
  return { states: S, actions: A, P, R, gamma: o.gamma, start: new Float64Array(S).fill(1 / S) };
}

/** Q(s, a) = R(s, a) + γ Σ_s' P(s'|s, a) V(s'). */
export function qFromV(m: TabularMdp, V: Float64Array): Float64Array {
  const { states: S, actions: A } = m;
  const Q = new Float64Array(S * A);
  for (let sa = 0; sa < S * A; sa++) {
    let e = 0;
    for (let s2 = 0; s2 < S; s2++) e += (m.P[sa * S + s2] as number) * (V[s2] as number);
    Q[sa] = (m.R[sa] as number) + m.gamma * e;
  }
  return Q;
}

/** Value iteration to ‖V_{k+1} − V_k‖∞ < tol: V*, Q* and a greedy optimal policy. */
export function valueIteration(
  m: TabularMdp,
  tol = 1e-12,
  maxIters = 100_000,
): { V: Float64Array; Q: Float64Array; policy: Int32Array; iterations: number } {
  const { states: S, actions: A } = m;
  let V = new Float64Array(S);
  for (let it = 1; it <= maxIters; it++) {
    const Q = qFromV(m, V);
    const next = new Float64Array(S);
    let diff = 0;
    for (let s = 0; s < S; s++) {
      let best = Number.NEGATIVE_INFINITY;
      for (let a = 0; a < A; a++) best = Math.max(best, Q[s * A + a] as number);
      next[s] = best;
      diff = Math.max(diff, Math.abs(best - (V[s] as number)));
    }
    V = next;
    if (diff < tol) {
      const Qs = qFromV(m, V);
      const policy = Int32Array.from({ length: S }, (_, s) => {
        let b = 0;
        for (let a = 1; a < A; a++) if ((Qs[s * A + a] as number) > (Qs[s * A + b] as number)) b = a;
        return b;
      });
      return { V, Q: Qs, policy, iterations: it };
    }
  }
  throw new CohortError(`value iteration did not converge in ${maxIters} iterations`);
}

/**
 * Exact evaluation of a stochastic policy π[s·A + a]: V^π = (I − γ P_π)^{-1} r_π, by Gaussian elimination
 * with partial pivoting.
 */
export function policyEvaluation(m: TabularMdp, pi: Float64Array): Float64Array {
  const { states: S, actions: A } = m;
  const M = new Float64Array(S * S);
  const r = new Float64Array(S);
  for (let s = 0; s < S; s++) {
    M[s * S + s] = 1;
    for (let a = 0; a < A; a++) {
      const p = pi[s * A + a] as number;
      r[s] = (r[s] as number) + p * (m.R[s * A + a] as number);
      for (let s2 = 0; s2 < S; s2++)
        M[s * S + s2] = (M[s * S + s2] as number) - m.gamma * p * (m.P[(s * A + a) * S + s2] as number);
    }
  }
  return solveLinear(M, r, S);
}

/** J(π) = Σ_s μ0(s) V^π(s). */
export function expectedReturn(m: TabularMdp, V: Float64Array): number {
  let j = 0;
  for (let s = 0; s < m.states; s++) j += (m.start[s] as number) * (V[s] as number);
  return j;
}

function solveLinear(M: Float64Array, b: Float64Array, n: number): Float64Array {
  const a = Float64Array.from(M);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c] as number) > Math.abs(a[piv * n + c] as number)) piv = r;
    if (Math.abs(a[piv * n + c] as number) < 1e-300) throw new CohortError("policy evaluation: singular system");
    if (piv !== c) {
      for (let k = 0; k < n; k++) [a[c * n + k], a[piv * n + k]] = [a[piv * n + k] as number, a[c * n + k] as number];
      [x[c], x[piv]] = [x[piv] as number, x[c] as number];
    }
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = (a[r * n + c] as number) / (a[c * n + c] as number);
      if (f === 0) continue;
      for (let k = c; k < n; k++) a[r * n + k] = (a[r * n + k] as number) - f * (a[c * n + k] as number);
      x[r] = (x[r] as number) - f * (x[c] as number);
    }
  }
  for (let r = 0; r < n; r++) x[r] = (x[r] as number) / (a[r * n + r] as number);
  return x;
}
