/**
 * The `policy:` section of a train config (a policy that is not a language model) and the checks of a
 * control run's config:
 *
 * ```yaml
 * policy:
 *   kind: gaussian_mlp        # tabular | categorical_mlp | gaussian_mlp | hyper_mlp
 *   hidden: [64, 64]          # MLP widths (tanh)
 *   std: learned              # gaussian: state | learned | fixed
 *   squash: true              # gaussian: tanh into the environment's action bounds (with the log-det term)
 *   critic: {hidden: [64, 64], coef: 0.5}   # a learned V(s) (estimators that need step values: gae)
 *   decoder: {decoderEvery: 10, collect: 2, elite: 0.5}   # gorl: the flow-matching decoder (gorl.ts)
 *   hyper: {manifold: hyperboloid}          # hyper_mlp: Hyper++'s heads and feature scaling (hyper.ts)
 * env: {name: pendulum, options: {horizon: 200}}
 * ```
 * @module
 */
import { z } from "zod";
import type { Need } from "../algo/component.js";
import type { AlgoConfig } from "../algo/config.js";
import { ConfigError } from "../errors.js";
import { controlEnvSpec } from "./env.js";
import { gorlDecoderSchema } from "./gorl.js";
import { checkHyperConfig, hyperOptionsSchema } from "./hyper.js";
import { parseControlAlgo } from "./methods.js";
import { hlGaussSchema } from "./value.js";

export const policyConfigSchema = z.strictObject({
  kind: z.enum(["tabular", "categorical_mlp", "gaussian_mlp", "gorl", "hyper_mlp", "flow_sde"]),
  /** Hidden layer widths of an MLP policy (tanh). */
  hidden: z.array(z.number().int().positive()).default([64, 64]),
  /** Gaussian σ: state-dependent head, learned state-independent vector, or fixed at `initStd`. */
  std: z.enum(["state", "learned", "fixed"]).default("learned"),
  initStd: z.number().positive().optional(),
  /** Gaussian: squash with tanh into the environment's action bounds (log-det corrected); false: clip in the env. */
  squash: z.boolean().default(true),
  /**
   * Start from these weights: a policy.safetensors (`policy.*` tensors) written by a control run's export or
   * by `cohort pretrain --env NAME`; relative to the config file.
   */
  init: z.string().optional(),
  /** flow_sde (a flow-matching generator, src/generators/policy.ts): the SDE step's noise level a and the
   * reduction of its per-pixel log-densities (`mean`: Flow-GRPO's code). */
  sde: z
    .strictObject({
      noiseLevel: z.number().positive().default(0.7),
      logprob: z.enum(["mean", "sum"]).default("mean"),
    })
    .optional(),
  /** A learned state-value function trained beside the policy (loss coef·mean (V − target)²). */
  critic: z
    .strictObject({
      hidden: z.array(z.number().int().positive()).default([64, 64]),
      coef: z.number().positive().default(0.5),
      /** A categorical critic trained with the HL-Gauss loss (value.ts) instead of the squared error. */
      categorical: hlGaussSchema.optional(),
    })
    .optional(),
  /** gorl: the conditional flow-matching decoder and its two-timescale schedule (src/control/gorl.ts). */
  decoder: gorlDecoderSchema.optional(),
  /** hyper_mlp: the manifold of its heads and the scaling of its features (Hyper++, hyper.ts). */
  hyper: hyperOptionsSchema.optional(),
});
export type PolicyConfig = z.output<typeof policyConfigSchema>;

/** What a control run supplies to the components (algo/component.ts NEEDS). */
export function CONTROL_SOURCES(p: PolicyConfig): ReadonlySet<Need> {
  const s: Need[] = ["rewardsByFn", "lengths", "meanLogprobs", "truncated", "tokenMask", "tokenEntropy"];
  s.push("oldLogprobs", "wholeGroups");
  if (p.critic !== undefined) s.push("stepValues");
  return new Set(s);
}

/** The action space each built-in control environment has. */
const ACTIONS: Record<string, "discrete" | "continuous"> = {
  garnet: "discrete",
  cartpole: "discrete",
  pendulum: "continuous",
  procmaze: "discrete",
  airq: "discrete",
  attention_rank: "discrete",
  robust_garnet: "discrete",
  grouped_garnet: "discrete",
  reacher: "continuous",
  hopper: "continuous",
  bimodal: "continuous",
  digits_flow: "continuous",
};

interface ControlRaw {
  preset?: string;
  policy?: PolicyConfig;
  env?: {
    name: string;
    options: Record<string, unknown>;
    maxTurns?: number;
    maxActionTokens?: number;
    maxEpisodeTokens?: number;
    template: string;
  };
  task?: unknown;
  dataset?: unknown;
  preference?: unknown;
  sampler: { kind: string };
  train: { steps: number };
}

/** A control run's config: a control environment whose actions the policy kind can take, nothing textual. */
export function checkControlConfig(c: ControlRaw, raw: unknown, algo: AlgoConfig): void {
  const p = c.policy as PolicyConfig;
  if (c.env === undefined)
    throw new ConfigError(
      "a control policy trains on a control environment: set `env: {name: garnet | pendulum | cartpole}`",
      "env",
    );
  const r = raw as Record<string, unknown>;
  for (const k of ["rewards", "preference"])
    if (r[k] !== undefined)
      throw new ConfigError(`with \`policy\`, the reward is the environment's; remove \`${k}\``, k);
  for (const k of ["maxTurns", "maxActionTokens", "maxEpisodeTokens"] as const)
    if (c.env[k] !== undefined)
      throw new ConfigError(
        `applies to text environments; a control episode's length is env.options.horizon`,
        `env.${k}`,
      );
  if (c.env.template !== "auto") throw new ConfigError("applies to text environments only; remove it", "env.template");
  if (c.sampler.kind !== "local")
    throw new ConfigError("a control policy samples its own actions; remove `sampler`", "sampler.kind");
  const { spec } = controlEnvSpec(c.env.name, c.env.options, "env");
  const actions = ACTIONS[c.env.name];
  if (p.kind === "tabular" && spec.mdp === undefined)
    throw new ConfigError(
      `a tabular policy needs a finite state space (garnet, robust_garnet, grouped_garnet); ${c.env.name} has continuous observations: use categorical_mlp or gaussian_mlp`,
      "policy.kind",
    );
  if ((c.env.name === "digits_flow") !== (p.kind === "flow_sde"))
    throw new ConfigError(
      p.kind === "flow_sde"
        ? `a flow_sde policy is the generator of env digits_flow, not of ${c.env.name}`
        : "digits_flow trains its generator: use policy.kind flow_sde",
      "policy.kind",
    );
  if (p.sde !== undefined && p.kind !== "flow_sde")
    throw new ConfigError("applies to policy.kind flow_sde only; remove it", "policy.sde");
  if (p.kind === "gaussian_mlp" && actions === "discrete")
    throw new ConfigError(
      `${c.env.name} has discrete actions; a Gaussian policy is for continuous ones: use categorical_mlp${c.env.name === "garnet" ? " or tabular" : ""}`,
      "policy.kind",
    );
  if (p.kind !== "gaussian_mlp" && p.kind !== "gorl" && p.kind !== "flow_sde" && actions === "continuous")
    throw new ConfigError(`${c.env.name} has continuous actions: use policy.kind gaussian_mlp or gorl`, "policy.kind");
  if (p.kind === "gorl" && actions !== "continuous")
    throw new ConfigError(
      `a gorl policy decodes continuous actions; ${c.env.name} has discrete ones: use categorical_mlp`,
      "policy.kind",
    );
  if (p.kind === "gorl" && !p.squash)
    throw new ConfigError("a gorl policy squashes its decoded action with tanh; remove squash: false", "policy.squash");
  if (c.preset === "gorl" && p.kind !== "gorl")
    throw new ConfigError(
      `preset gorl trains a latent policy with a flow-matching decoder: set policy.kind gorl (got ${p.kind})`,
      "policy.kind",
    );
  if (p.decoder !== undefined && p.kind !== "gorl")
    throw new ConfigError(`applies to policy.kind gorl only (the kind is ${p.kind}); remove it`, "policy.decoder");
  if (p.decoder !== undefined && p.decoder.collect > p.decoder.decoderEvery)
    throw new ConfigError(
      `collect (${p.decoder.collect}) must be ≤ decoderEvery (${p.decoder.decoderEvery}): the decoder's data come from the last steps of a stage`,
      "policy.decoder.collect",
    );
  checkHyperConfig(p, raw, (c as { preset?: string }).preset);
  if ((algo.rollout as { wrapper?: unknown; dynamicSampling?: unknown }).wrapper !== undefined)
    throw new ConfigError("rollout wrappers rewrite prompts; a control run has none", "algo.rollout.wrapper");
  if ((algo.rollout as { dynamicSampling?: unknown }).dynamicSampling !== undefined)
    throw new ConfigError(
      "dynamic sampling is not available for control runs yet; remove it",
      "algo.rollout.dynamicSampling",
    );
  if (algo.tokenFilters.length > 0)
    throw new ConfigError(
      `token filters select language-model tokens; a control run has per-step actions and no tokens: remove ${algo.tokenFilters.map((f) => f.name).join(", ")}`,
      "algo.tokenFilters",
    );
  checkControlMethods(c, spec, algo);
  if (algo.ratio.level !== "token")
    throw new ConfigError(
      `a control run's ratio is per step (algo.ratio.level "token"), got "${algo.ratio.level}"`,
      "algo.ratio.level",
    );
}

/** `algo.control`: the optimizer, IWOCS and grouping against the run's policy, environment and loop settings. */
function checkControlMethods(
  c: ControlRaw & { train: { steps: number; innerIterations?: number; miniBatches?: number } },
  spec: { name: string; span?: unknown; mdp?: unknown },
  algo: AlgoConfig,
): void {
  const ctrl = parseControlAlgo(algo.control);
  const p = c.policy as PolicyConfig;
  const opt = ctrl.optimizer.type;
  if (opt !== "adamw") {
    if (p.critic !== undefined)
      throw new ConfigError(
        `the ${opt} optimizer updates the policy alone; remove policy.critic (or use optimizer adamw)`,
        "policy.critic",
      );
    for (const k of ["innerIterations", "miniBatches"] as const)
      if ((c.train[k] ?? 1) !== 1)
        throw new ConfigError(
          `the ${opt} optimizer takes one gradient estimate per step; set train.${k}: 1 (got ${c.train[k]})`,
          `train.${k}`,
        );
  }
  if (ctrl.iwocs !== undefined) {
    if (spec.span === undefined)
      throw new ConfigError(
        `IWOCS searches a span of transition models; ${spec.name} has none: use env robust_garnet`,
        "algo.control.iwocs",
      );
    if (p.kind !== "tabular")
      throw new ConfigError(
        "IWOCS evaluates policies exactly on tabular models: use policy.kind tabular",
        "policy.kind",
      );
  }
  if (ctrl.grouping !== undefined) {
    if (spec.mdp === undefined || p.kind !== "tabular")
      throw new ConfigError(
        "action grouping estimates a tabular MDP: use a tabular policy on garnet, grouped_garnet or robust_garnet",
        "algo.control.grouping",
      );
    if (ctrl.iwocs !== undefined)
      throw new ConfigError("IWOCS and action grouping do not combine here; keep one", "algo.control");
  }
}
