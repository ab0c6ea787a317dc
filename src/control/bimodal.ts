/**
 * A one-step contextual bandit whose reward has two separated optima, where a unimodal Gaussian policy is
 * provably limited at any given level of exploration.
 *
 * | quantity    | definition                                                                 |
 * |-------------|----------------------------------------------------------------------------|
 * | start       | context c ~ U(−1, 1) from the seed; observation [c]                        |
 * | action      | a ∈ [−1, 1]                                                                |
 * | optima      | m± = shift·c ± gap/2                                                       |
 * | reward      | r(a) = Σ± exp(−(a − m±)² / (2w²)), w = `width`                             |
 * | end         | after `horizon` rounds (default 1), each with a fresh context from the seed |
 *
 * With separated optima (gap ≫ w) the best reward is ≈ 1 at either optimum. The limit of a unimodal policy
 * (our statement, checked numerically in test/control/bimodal.test.ts): under a Gaussian N(μ, σ²)
 *
 *   E r = Σ± w/√(w² + σ²) · exp(−(μ − m±)² / (2(w² + σ²)))            (closed form)
 *
 * while the mixture ½N(m₊, s²) + ½N(m₋, s²) of the *same differential entropy* (σ = 2s for separated
 * components: H = ½ log 2πeσ² = ½ log 2πes² + log 2) earns w/√(w² + s²) (1 + e^{−gap²/(2(w²+s²))}) — at s = w,
 * 0.71 against the Gaussian's best 0.45. A policy that keeps exploring both optima (as a group of episodes
 * must to compare them) pays for being unimodal; the sampled reward of the training policy measures that.
 * @module
 */
import { Rng } from "../task/rng.js";
import type { ControlEnv, StepResult } from "./env.js";

export interface BimodalOptions {
  gap: number;
  width: number;
  shift: number;
  /** Independent rounds per episode. */
  horizon: number;
}

/** r(a) for context c. */
export function bimodalReward(o: BimodalOptions, c: number, a: number): number {
  const m = o.shift * c;
  const w2 = 2 * o.width * o.width;
  return Math.exp(-((a - m - o.gap / 2) ** 2) / w2) + Math.exp(-((a - m + o.gap / 2) ** 2) / w2);
}

/** E r under N(μ, σ²) (unsquashed), in closed form. */
export function gaussianExpectedReward(o: BimodalOptions, c: number, mu: number, sigma: number): number {
  const m = o.shift * c;
  const v = o.width * o.width + sigma * sigma;
  const k = o.width / Math.sqrt(v);
  return k * (Math.exp(-((mu - m - o.gap / 2) ** 2) / (2 * v)) + Math.exp(-((mu - m + o.gap / 2) ** 2) / (2 * v)));
}

export class BimodalEnv implements ControlEnv {
  readonly obsDim = 1;
  readonly action = { kind: "continuous", dim: 1 } as const;
  readonly horizon: number;
  readonly o: BimodalOptions;
  #c = 0;
  #t = 0;
  #rng = Rng.fromSeed(0);
  constructor(o: BimodalOptions) {
    this.o = o;
    this.horizon = o.horizon;
  }
  reset(seed: number): Float64Array {
    this.#rng = Rng.fromSeed(seed);
    this.#c = this.#rng.float() * 2 - 1;
    this.#t = 0;
    return Float64Array.of(this.#c);
  }
  step(action: Float64Array): StepResult {
    const a = Math.max(-1, Math.min(1, action[0] as number));
    const reward = bimodalReward(this.o, this.#c, a);
    this.#t++;
    const done = this.#t >= this.horizon;
    if (!done) this.#c = this.#rng.float() * 2 - 1;
    return { obs: Float64Array.of(this.#c), reward, done };
  }
  dispose(): void {}
}
