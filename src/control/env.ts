/**
 * Control environments: the contract a control rollout steps, and the built-in ones by name.
 *
 * An episode starts from `reset(seed)`: the start state and every random transition after it are functions
 * of that seed, so the G episodes of a group start from the same state and differ only by their actions.
 *
 * | name      | observation                    | action                  | reward / end                              |
 * |-----------|--------------------------------|-------------------------|-------------------------------------------|
 * | garnet    | the state index                | one of A                | R(s, a); `horizon` steps                  |
 * | pendulum  | cos θ, sin θ, θ̇ (θ = 0 upright) | torque in [−2, 2]       | −(θ² + 0.1 θ̇² + 0.001 u²); 200 steps     |
 * | cartpole  | x, ẋ, θ, θ̇                      | push left / right       | +1 per step; ends at |θ| > 0.2 or |x| > 2.4 |
 * | procmaze  | a grid window around the agent | up / down / left / right | `goalReward` at the goal (procmaze.ts)     |
 * | airq      | 3 ozone lags, weather, flags    | one of 14 ozone bins    | class-wise alert reward; 1–3 days (airq.ts) |
 * | attention_rank | layer features (attention-rank.ts) | a rank of the set | DR-RL fidelity − FLOPs − ‖ΔA‖; one step per layer |
 * | robust_garnet  | the state index           | one of A                | R(s, a) of the nominal model; a span of models (IWOCS) |
 * | grouped_garnet | the state index           | one of A (latent types) | R(s, a); `horizon` steps (action grouping) |
 * | reacher   | joint cos/sin, target, q̇, tip − target | 2 torques in [−1, 1] | −‖tip − target‖ − ctrlCost‖u‖²; `horizon` steps |
 * | hopper    | qpos[1:], clip(qvel, ±10)       | 3 torques in [−1, 1]    | stand: standing·upright·control ∈ [0, 1] per step (hop: ·hopping); `horizon` steps (reacher.ts, hopper.ts) |
 * | bimodal   | context c                       | a ∈ [−1, 1]             | Σ± exp(−(a − m±)²/2w²), two optima; `horizon` rounds, default 1 (bimodal.ts) |
 * | digits_flow | latent x (64), σ_j, σ_{j+1}, digit | the next latent (64) | classifier reward of the image, as Φ_{j+1} − Φ_j (src/generators/env.ts); 10 steps |
 *
 * pendulum, cartpole, reacher and hopper are MuJoCo models (mujoco.ts, reacher.ts, hopper.ts, the `mujoco-js`
 * WebAssembly build); mjbatch.ts steps many MjData of one model together.
 * digits_flow (the denoising steps of a flow-matching digit generator, src/generators/env.ts) trains the
 * generator itself (policy flow_sde).
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { digitsFlowSpec } from "../generators/env.js";
import { Rng } from "../task/rng.js";
import { AirqEnv, airqEvalSeed, airqOptions, curriculumHorizon, evaluateAirq } from "./airq.js";
import { airqPretrain } from "./airq-sft.js";
import { attentionRankSpec } from "./attention-rank.js";
import { BimodalEnv } from "./bimodal.js";
import { groupedGarnet, groupedGarnetOptions } from "./grouping.js";
import { hopperEnv } from "./hopper.js";
import { type ModelSpan, robustGarnetOptions, robustGarnetSpan } from "./iwocs.js";
import { garnet, type TabularMdp } from "./mdp.js";
import { cartpoleEnv, pendulumEnv } from "./mujoco.js";
import type { ActionSpace, Policy } from "./policy.js";
import { procmazeSpec } from "./procmaze.js";
import { reacherEnv } from "./reacher.js";

export interface StepResult {
  obs: Float64Array;
  reward: number;
  /** The episode ended (a terminal state, not the time limit). */
  done: boolean;
}

export interface ControlEnv {
  readonly obsDim: number;
  readonly action: ActionSpace;
  /** Steps per episode at most. */
  readonly horizon: number;
  /** `horizon`: this episode's length when shorter than `horizon` (a curriculum over the horizon). */
  reset(seed: number, opts?: { horizon?: number }): Float64Array;
  step(action: Float64Array): StepResult;
  /** Environments whose rewards read the policy being trained (digits_flow: the generator's projection) get it here,
   * once per instance before the first reset. */
  bind?(policy: Policy): void;
  /** Frees native/WebAssembly memory. */
  dispose(): void;
}

export interface ControlEnvSpec<O extends z.ZodType = z.ZodType> {
  name: string;
  doc: string;
  options: O;
  /** Bounds of a continuous action, for a squashed Gaussian policy. */
  bounds?: (o: z.output<O>) => { low: number[]; high: number[] };
  /** A factory of independent instances (one per episode of a group). */
  create(o: z.output<O>): Promise<() => ControlEnv>;
  /** The tabular MDP behind the environment, for exact solvers (optimality gaps). */
  mdp?: (o: z.output<O>) => TabularMdp;
  /** Episodes for evaluation (held-out levels); absent: those of `create`. */
  createEval?(o: z.output<O>): Promise<() => ControlEnv>;
  /** What counts as a success in evaluation: ending in a terminal state, or (default) running the horizon without one. */
  success?: "terminated" | "survived";
  /** The episode length at training step k (1-based): a curriculum over the horizon; absent: `horizon`. */
  horizonAt?: (o: z.output<O>, step: number) => number;
  /** Held-out metrics of the policy beyond `eval_return`, logged under their own keys (`seed`: the run's). */
  evaluate?: (o: z.output<O>, policy: Policy, seed: number) => Record<string, number>;
  /** Supervised pre-training of a starting policy (`cohort pretrain --env NAME`). */
  pretrain?: (o: z.output<O>, opts: ControlPretrainOptions) => ControlPretrainResult;
  /** A span of static transition models around the nominal one (robust MDPs: IWOCS). */
  span?: (o: z.output<O>) => ModelSpan;
  /** Extra fields of an evaluation sample row from an episode's first and last observation (digits_flow: the
   * asked digit and the 8×8 picture). */
  sampleFields?: (first: Float64Array, last: Float64Array) => Record<string, unknown>;
}

export interface ControlPretrainOptions {
  out: string;
  seed?: number;
  steps?: number;
  lr?: number;
  /** Width of the policy's hidden layer. */
  hidden?: number;
  /** The command line, recorded in the output directory. */
  command?: string;
  log?: (line: string) => void;
}

export interface ControlPretrainResult {
  steps: number;
  /** Held-out metrics of the saved policy. */
  metrics: Record<string, number>;
}

/** A finite MDP stepped by sampling P(·|s, a); obs = [s]. */
export class MdpEnv implements ControlEnv {
  readonly obsDim = 1;
  readonly action: ActionSpace;
  readonly horizon: number;
  readonly mdp: TabularMdp;
  #s = 0;
  #rng = Rng.fromSeed(0);

  constructor(mdp: TabularMdp, horizon: number) {
    this.mdp = mdp;
    this.horizon = horizon;
    this.action = { kind: "discrete", n: mdp.actions };
  }

  #draw(p: Float64Array, off: number): number {
    let u = this.#rng.float();
    const S = this.mdp.states;
    for (let s = 0; s < S; s++) {
      u -= p[off + s] as number;
      if (u < 0) return s;
    }
    return S - 1;
  }
  reset(seed: number): Float64Array {
    this.#rng = Rng.fromSeed(seed);
    this.#s = this.#draw(this.mdp.start, 0);
    return Float64Array.of(this.#s);
  }
  step(action: Float64Array): StepResult {
    const a = action[0] as number;
    const { states: S, actions: A } = this.mdp;
    const r = this.mdp.R[this.#s * A + a] as number;
    this.#s = this.#draw(this.mdp.P, (this.#s * A + a) * S);
    return { obs: Float64Array.of(this.#s), reward: r, done: false };
  }
  dispose(): void {}
}

const garnetOptions = z.strictObject({
  states: z.number().int().min(2).default(10),
  actions: z.number().int().min(2).default(4),
  branching: z.number().int().min(1).default(3),
  gamma: z.number().min(0).lt(1).default(0.9),
  /** Steps per episode. */
  horizon: z.number().int().positive().default(20),
  /** Seed of the MDP itself (not of the episodes). */
  seed: z.number().int().min(0).default(0),
});

const garnetSpec: ControlEnvSpec<typeof garnetOptions> = {
  name: "garnet",
  doc: "a seeded random finite MDP (Garnet: `branching` next states per state-action, rewards in [0, 1))",
  options: garnetOptions,
  mdp: (o) => garnet(o),
  create: async (o) => {
    const m = garnet(o);
    return () => new MdpEnv(m, o.horizon);
  },
};

const pendulumOptions = z.strictObject({
  horizon: z.number().int().positive().default(200),
  maxTorque: z.number().positive().default(2),
});
const cartpoleOptions = z.strictObject({ horizon: z.number().int().positive().default(200) });

const pendulumSpec: ControlEnvSpec<typeof pendulumOptions> = {
  name: "pendulum",
  doc: "MuJoCo pendulum swing-up: a torque-limited hinge, start angle and velocity uniform from the seed",
  options: pendulumOptions,
  bounds: (o) => ({ low: [-o.maxTorque], high: [o.maxTorque] }),
  create: (o) => pendulumEnv(o),
};

const cartpoleSpec: ControlEnvSpec<typeof cartpoleOptions> = {
  name: "cartpole",
  doc: "MuJoCo cart-pole balance: push left or right (±10 N), +1 per step until the pole falls or the cart leaves",
  options: cartpoleOptions,
  create: (o) => cartpoleEnv(o),
};

const airqSpec: ControlEnvSpec<typeof airqOptions> = {
  name: "airq",
  doc: "ozone alert forecasting on R's airquality (New York 1973): categorical ozone bins, class-wise rewards, a curriculum over the 1–3 day horizon",
  options: airqOptions,
  horizonAt: (o, step) => curriculumHorizon(o, step),
  evaluate: (o, policy, seed) => evaluateAirq(policy, o, airqEvalSeed(seed)),
  pretrain: (o, opts) => airqPretrain(o, opts),
  create: async (o) => () => new AirqEnv(o),
};

const robustGarnetSpec: ControlEnvSpec<typeof robustGarnetOptions> = {
  name: "robust_garnet",
  doc: "a Garnet MDP with a span of static models: risky actions (a reward bonus) knocked to a trap with probability α·ρ(s, a), slips with probability β, (α, β) on a grid (iwocs.ts)",
  options: robustGarnetOptions,
  mdp: (o) => {
    const span = robustGarnetSpan(o);
    return span.model(span.nominal);
  },
  span: (o) => robustGarnetSpan(o),
  create: async (o) => {
    const span = robustGarnetSpan(o);
    const m = span.model(span.nominal);
    return () => new MdpEnv(m, o.horizon);
  },
};

const groupedGarnetSpec: ControlEnvSpec<typeof groupedGarnetOptions> = {
  name: "grouped_garnet",
  doc: "a Garnet MDP whose actions come in `clusters` latent types with within-type perturbation σ (action grouping, grouping.ts)",
  options: groupedGarnetOptions,
  mdp: (o) => groupedGarnet(o),
  create: async (o) => {
    const m = groupedGarnet(o);
    return () => new MdpEnv(m, o.horizon);
  },
};

const reacherOptions = z.strictObject({
  horizon: z.number().int().positive().default(50),
  /** Weight of the control cost ‖u‖² in the reward. */
  ctrlCost: z.number().min(0).default(0.1),
  /** Targets are uniform in the disc of this radius (the arm reaches 0.21 m). */
  targetRadius: z.number().positive().max(0.21).default(0.2),
});

const reacherSpec: ControlEnvSpec<typeof reacherOptions> = {
  name: "reacher",
  doc: "MuJoCo two-link planar reacher: torques on two hinges bring the fingertip to a target drawn from the seed",
  options: reacherOptions,
  bounds: () => ({ low: [-1, -1], high: [1, 1] }),
  create: (o) => reacherEnv(o),
};

const hopperOptions = z.strictObject({
  /** stand: stay tall and upright; hop: and move forward at hopSpeed. */
  task: z.enum(["stand", "hop"]).default("stand"),
  horizon: z.number().int().positive().default(200),
  /** Fraction of the joint ranges the start pose is drawn from (0: upright). */
  crouch: z.number().min(0).max(1).default(0.3),
  /** Half-width of the uniform start velocities. */
  noise: z.number().min(0).default(0.1),
  /** Torso height above the foot (m) from which `standing` is 1 (upright: 1.15). */
  standHeight: z.number().positive().default(1),
  hopSpeed: z.number().positive().default(2),
  /** End the episode when the torso drops below this height above the foot (0: never). */
  fallHeight: z.number().min(0).default(0),
});

const hopperSpec: ControlEnvSpec<typeof hopperOptions> = {
  name: "hopper",
  doc: "MuJoCo planar hopper, stand (or hop) from a crouched start drawn from the seed; reward per step in [0, 1]",
  options: hopperOptions,
  bounds: () => ({ low: [-1, -1, -1], high: [1, 1, 1] }),
  create: (o) => hopperEnv(o),
};

const bimodalOptions = z.strictObject({
  /** Distance between the two optima. */
  gap: z.number().positive().max(1.6).default(1.2),
  /** Width w of each optimum. */
  width: z.number().positive().default(0.1),
  /** The optima move with the context: m± = shift·c ± gap/2. */
  shift: z.number().min(0).max(0.2).default(0.2),
  /** Independent rounds per episode (a fresh context each). */
  horizon: z.number().int().positive().default(1),
});

const bimodalSpec: ControlEnvSpec<typeof bimodalOptions> = {
  name: "bimodal",
  doc: "one-step contextual bandit with two separated optimal actions (a unimodal Gaussian is limited)",
  options: bimodalOptions,
  bounds: () => ({ low: [-1], high: [1] }),
  create: async (o) => () => new BimodalEnv(o),
};

// biome-ignore lint/suspicious/noExplicitAny: each spec keeps its own options type
const SPECS: Record<string, ControlEnvSpec<any>> = {
  garnet: garnetSpec,
  pendulum: pendulumSpec,
  cartpole: cartpoleSpec,
  procmaze: procmazeSpec,
  airq: airqSpec,
  attention_rank: attentionRankSpec,
  robust_garnet: robustGarnetSpec,
  grouped_garnet: groupedGarnetSpec,
  reacher: reacherSpec,
  hopper: hopperSpec,
  bimodal: bimodalSpec,
  digits_flow: digitsFlowSpec,
};

export const controlEnvNames = (): string[] => Object.keys(SPECS);

export function isControlEnv(name: string): boolean {
  return Object.hasOwn(SPECS, name);
}

/** The spec of a built-in control environment with its options validated (ConfigErrors name the path). */
export function controlEnvSpec(
  name: string,
  options: unknown,
  path = "env",
): { spec: ControlEnvSpec; options: Record<string, unknown> } {
  const spec = SPECS[name];
  if (spec === undefined)
    throw new ConfigError(
      `unknown control environment "${name}"; with \`policy\` the environment is one of ${controlEnvNames().join(", ")}`,
      `${path}.name`,
    );
  const r = spec.options.safeParse(options ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const key = i?.path.join(".") ?? "";
    throw new ConfigError(
      `${i?.message ?? "invalid"} (${name} takes ${Object.keys(spec.options.shape ?? {}).join(", ")})`,
      `${path}.options${key ? `.${key}` : ""}`,
    );
  }
  return { spec, options: r.data as Record<string, unknown> };
}
