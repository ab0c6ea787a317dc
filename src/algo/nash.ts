/**
 * Preference games over a finite set of responses (ALGORITHMS.md §G.3): the β-regularised game
 * `J(π, π') = P(π ≻ π') − β·KL(π‖π_ref) + β·KL(π'‖π_ref)` with a preference matrix P (P + Pᵀ = 1), the exact
 * Nash-Mirror-Prox step, single-prox mirror descent for comparison, the exploitability and win rates. Used by
 * the tests and as the tabular counterpart of the `nash_mp` loss.
 * @module
 */

/** P(y ≻ π) for every y: (P·π)_y. */
export function winAgainst(P: readonly (readonly number[])[], pi: readonly number[]): number[] {
  return P.map((row) => row.reduce((s, p, j) => s + p * (pi[j] as number), 0));
}

/** P(a ≻ b) = aᵀ·P·b: the win rate of policy a against policy b. */
export function winRateOf(P: readonly (readonly number[])[], a: readonly number[], b: readonly number[]): number {
  return winAgainst(P, b).reduce((s, w, i) => s + w * (a[i] as number), 0);
}

/** KL(p‖q). */
export function kl(p: readonly number[], q: readonly number[]): number {
  return p.reduce((s, x, i) => (x > 0 ? s + x * Math.log(x / (q[i] as number)) : s), 0);
}

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/** prox(π_k, opp)(y) ∝ exp([η·P(y ≻ opp) + ηβ·log π_ref(y) + log π_k(y)] / (1 + ηβ)). */
export function prox(
  P: readonly (readonly number[])[],
  piK: readonly number[],
  opp: readonly number[],
  piRef: readonly number[],
  beta: number,
  eta: number,
): number[] {
  const w = winAgainst(P, opp);
  return softmax(
    w.map(
      (x, y) => (eta * x + eta * beta * Math.log(piRef[y] as number) + Math.log(piK[y] as number)) / (1 + eta * beta),
    ),
  );
}

/** One mirror-prox step (two preference queries): π_{k+½} = prox(π_k, π_k), π_{k+1} = prox(π_k, π_{k+½}). */
export function mirrorProxStep(
  P: readonly (readonly number[])[],
  piK: readonly number[],
  piRef: readonly number[],
  beta: number,
  eta: number,
): { half: number[]; next: number[] } {
  const half = prox(P, piK, piK, piRef, beta, eta);
  return { half, next: prox(P, piK, half, piRef, beta, eta) };
}

/** One mirror-descent step (one query): prox(π_k, π_k). */
export function mirrorDescentStep(
  P: readonly (readonly number[])[],
  piK: readonly number[],
  piRef: readonly number[],
  beta: number,
  eta: number,
): number[] {
  return prox(P, piK, piK, piRef, beta, eta);
}

/** max_π' J(π', π) − ½ = β·log Σ_y π_ref(y)·exp(P(y ≻ π)/β) + β·KL(π‖π_ref) − ½ (≥ 0; 0 only at π*_β). */
export function exploitability(
  P: readonly (readonly number[])[],
  pi: readonly number[],
  piRef: readonly number[],
  beta: number,
): number {
  const w = winAgainst(P, pi);
  const m = Math.max(...w.map((x) => x / beta));
  const lse = m + Math.log(w.reduce((s, x, y) => s + (piRef[y] as number) * Math.exp(x / beta - m), 0));
  return beta * lse + beta * kl(pi, piRef) - 0.5;
}

/** The β-regularised symmetric Nash equilibrium, by mirror prox to convergence (η = 1/β, many steps). */
export function regularizedNash(
  P: readonly (readonly number[])[],
  piRef: readonly number[],
  beta: number,
  steps = 20_000,
): number[] {
  let pi = [...piRef];
  const eta = Math.min(4, 1 / beta);
  for (let k = 0; k < steps; k++) pi = mirrorProxStep(P, pi, piRef, beta, eta).next;
  return pi;
}
