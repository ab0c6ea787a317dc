/**
 * `digits_flow`: the denoising of a pre-trained flow-matching digit generator as a control environment, for
 * Flow-GRPO and VGPO. An episode asks for one digit class c and walks the schedule σ_0 = 1 > … > σ_K = 0:
 *
 * | piece        | value                                                                                       |
 * |--------------|---------------------------------------------------------------------------------------------|
 * | reset(seed)  | c drawn from `classes`, x_1 ~ N(0, I) (both from the seed: a group shares class and start)   |
 * | observation  | [x (64), σ_j, σ_{j+1}, c]                                                                    |
 * | action       | the next latent x_{σ_{j+1}} (the policy's SDE step, flow_sde)                                |
 * | reward       | r_j = Φ_{j+1} − Φ_j, Φ_0 = 0, Φ_K = reward(x_0) (the terminal reward, classifier.ts), and with |
 * |              | `process` Φ_{j+1} = reward(x̂_0) of the one-step projection x̂_0 = x_{j+1} − σ_{j+1}·v_θ (else 0) |
 *
 * The per-step rewards telescope, so the episode return is exactly the terminal reward (what Flow-GRPO
 * normalises), while their running sum is the reward of each step's projected image (what VGPO's values read).
 * The projection uses the policy being trained (bound by the run before the first reset).
 * @module
 */
import { z } from "zod";
import type { ControlEnv, ControlEnvSpec, StepResult } from "../control/env.js";
import { gaussian, type Policy } from "../control/policy.js";
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import { type DigitClassifier, type DigitRewardConfig, digitReward, digitRewardSchema } from "./classifier.js";
import { PIXELS, SIDE } from "./digits.js";
import { FLOW_OBS_DIM, FlowSdePolicy } from "./policy.js";
import { loadClassifier } from "./pretrain.js";
import { sigmaSchedule } from "./velocity.js";

export const digitsFlowOptions = z.strictObject({
  /** The directory `cohort pretrain-flow --out DIR` wrote (generator and reward classifier). */
  generator: z.string().min(1),
  /** Denoising steps K per episode (Flow-GRPO trains with 10). */
  steps: z.number().int().min(1).max(1000).default(10),
  /** Schedule shift (1: linear σ; SD3 uses 3). */
  shift: z.number().positive().default(1),
  /** The digit classes episodes ask for. */
  classes: z.array(z.number().int().min(0).max(9)).min(1).default([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
  reward: digitRewardSchema.default(digitRewardSchema.parse({})),
  /** Score every step's one-step projection (the process rewards VGPO reads); false: reward at the end only. */
  process: z.boolean().default(true),
});
export type DigitsFlowOptions = z.output<typeof digitsFlowOptions>;

export class DigitsFlowEnv implements ControlEnv {
  readonly obsDim = FLOW_OBS_DIM;
  readonly action = { kind: "continuous", dim: PIXELS } as const;
  readonly horizon: number;
  readonly sigmas: Float64Array;
  #policy: FlowSdePolicy | null = null;
  #x = new Float64Array(PIXELS);
  #c = 0;
  #j = 0;
  #phi = 0;

  constructor(
    readonly options: DigitsFlowOptions,
    readonly classifier: DigitClassifier,
  ) {
    this.horizon = options.steps;
    this.sigmas = sigmaSchedule(options.steps, options.shift);
  }

  bind(policy: Policy): void {
    if (!(policy instanceof FlowSdePolicy))
      throw new CohortError(`digits_flow needs the flow_sde policy (the generator), got ${policy.kind}`);
    this.#policy = policy;
    // the process rewards read every draw's projection: let the policy compute them batched
    if (this.options.process) policy.projectAhead = true;
  }

  get digit(): number {
    return this.#c;
  }

  reward(x: ArrayLike<number>): number {
    return digitReward(this.classifier, this.options.reward as DigitRewardConfig, x, this.#c);
  }

  #obs(): Float64Array {
    const o = new Float64Array(FLOW_OBS_DIM);
    o.set(this.#x);
    o[PIXELS] = this.sigmas[this.#j] as number;
    o[PIXELS + 1] = (this.sigmas[this.#j + 1] as number | undefined) ?? 0;
    o[PIXELS + 2] = this.#c;
    return o;
  }

  reset(seed: number): Float64Array {
    const rng = Rng.fromSeed(seed);
    const cls = this.options.classes;
    this.#c = cls[rng.int(0, cls.length - 1)] as number;
    this.#x = Float64Array.from({ length: PIXELS }, () => gaussian(rng));
    this.#j = 0;
    this.#phi = 0;
    return this.#obs();
  }

  step(action: Float64Array): StepResult {
    if (action.length !== PIXELS)
      throw new CohortError(`digits_flow: an action is ${PIXELS} values, got ${action.length}`);
    const drawn = action;
    this.#x = Float64Array.from(action);
    this.#j++;
    const K = this.horizon;
    let phi = 0;
    if (this.#j >= K) phi = this.reward(this.#x);
    else if (this.options.process) {
      if (this.#policy === null) throw new CohortError("digits_flow: no policy bound for the process rewards");
      const t = this.sigmas[this.#j] as number;
      phi = this.reward(this.#policy.projectAction(drawn, t, this.#c));
    }
    const r = phi - this.#phi;
    this.#phi = phi;
    return { obs: this.#obs(), reward: r, done: this.#j >= K };
  }

  dispose(): void {}
}

/** An 8×8 picture of a latent, clamped to [−1, 1]: what an evaluation sample row carries. */
export function digitImage(x: ArrayLike<number>, off = 0): { width: number; height: number; pixels: number[] } {
  return {
    width: SIDE,
    height: SIDE,
    pixels: Array.from(
      { length: PIXELS },
      (_, k) => Math.round(1000 * Math.max(-1, Math.min(1, x[off + k] as number))) / 1000,
    ),
  };
}

export const digitsFlowSpec: ControlEnvSpec<typeof digitsFlowOptions> = {
  name: "digits_flow",
  doc: "denoising trajectories of a pre-trained flow-matching 8×8 digit generator (UCI digits); reward from a digit classifier",
  options: digitsFlowOptions,
  create: async (o) => {
    const classifier = loadClassifier(o.generator);
    return () => new DigitsFlowEnv(o, classifier);
  },
  sampleFields: (first, last) => ({
    prompt: `digit ${first[PIXELS + 2]}`,
    image: digitImage(last),
  }),
};
