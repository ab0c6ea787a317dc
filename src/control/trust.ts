/**
 * Trust-region violations of a control run's update, logged every step. Hyper++ (arXiv 2512.14202 [CODE],
 * ALGORITHMS.md §E.6) measures PPO's trust region by the clip fraction |ρ − 1| > ε and the approximate KL per
 * update; here both are taken once the step's update is done, over every valid step t of the kept episodes:
 *
 * | metric                 | definition                                                                 |
 * |------------------------|----------------------------------------------------------------------------|
 * | trust/violation_rate   | mean_t 1[ρ_t ∉ [1 − ε_low, 1 + ε_high]],  ρ_t = π_new(a_t|s_t)/π_old(a_t|s_t) |
 * | trust/approx_kl        | mean_t (ρ_t − 1) − log ρ_t  (k3: an unbiased estimate of KL(π_old ‖ π_new)) |
 * | trust/max_ratio_dev    | max_t |ρ_t − 1|                                                             |
 *
 * π_old is the policy that sampled the step's episodes, π_new the policy after the last of the μ passes.
 * ε_low/ε_high are the gate's `low`/`high` (PPO clip); a gate without them (MDPO's `none`) is measured at
 * 0.2, PPO's default (design choice). The authors' `clipfrac` averages over the minibatches before each
 * gradient step instead; the ratio after the update is the violation the update left behind.
 * @module
 */
import { noGrad, type Tensor, tensor, tidy } from "../tensor/index.js";
import type { Policy } from "./policy.js";

const DEFAULT_EPS = 0.2;

/** The bounds [1 − ε_low, 1 + ε_high] a gate config declares (0.2 each when it has none). */
export function trustBounds(gate: { [k: string]: unknown }): { low: number; high: number } {
  const num = (x: unknown) => (typeof x === "number" && Number.isFinite(x) ? x : DEFAULT_EPS);
  return { low: num(gate.low), high: num(gate.high) };
}

/**
 * The metrics above for the episodes `rows` of a step: obs [n·T, D], raw [n·T(, dim)], oldLp and mask [n, T].
 * Empty when no row is kept.
 */
export function trustRegionMetrics(
  policy: Policy,
  obs: Tensor,
  raw: Tensor,
  oldLp: Tensor,
  mask: Tensor,
  rows: readonly number[],
  gate: { [k: string]: unknown },
): Record<string, number> {
  if (rows.length === 0) return {};
  const { low, high } = trustBounds(gate);
  const T = mask.shape[1] as number;
  return noGrad(() =>
    tidy((): Record<string, number> => {
      const idx = tensor([...rows], { dtype: "i64" });
      const stepIdx = tensor(
        rows.flatMap((r) => Array.from({ length: T }, (_, t) => r * T + t)),
        { dtype: "i64" },
      );
      const lp = policy
        .logProb(obs.indexSelect(0, stepIdx), raw.indexSelect(0, stepIdx))
        .lp.to("f64")
        .reshape(rows.length, T);
      const valid = mask.indexSelect(0, idx).to("f64").gt(0);
      if (valid.sum().item() === 0) return {};
      const logRatio = lp.sub(oldLp.indexSelect(0, idx).to("f64")).maskedSelect(valid);
      const ratio = logRatio.exp();
      return {
        "trust/violation_rate": ratio
          .lt(1 - low)
          .logicalOr(ratio.gt(1 + high))
          .to("f64")
          .mean()
          .item(),
        "trust/approx_kl": ratio.sub(1).sub(logRatio).mean().item(),
        "trust/max_ratio_dev": ratio.sub(1).abs().amax().item(),
      };
    }),
  );
}
