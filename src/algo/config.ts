/**
 * The algorithm part of the configuration (`algo:` in a config file): one point of the design space of
 * ALGORITHMS.md §C, validated with zod. Unknown keys are rejected; combinations that cannot work fail with a
 * `ConfigError` that names the key path, says why and what to do.
 *
 * Components owned by other modules (advantage options, reward shapers, reweighters, filters, rollout
 * fields) are referenced by name here and carry their options as plain data; their modules validate them.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { validateRolloutConfig } from "../rollout/validate.js";
import "./agent.js"; // registers the agent estimators m_grpo and hi_agent
import { AGGREGATE_MODES } from "./aggregate.js";
import { RATIO_LEVELS } from "./ratio.js";
import { KL_ESTIMATORS } from "./regularizers.js";

/** Advantage estimators (implemented in advantage.ts and agent.ts), by their registered names. */
export const ADVANTAGE_ESTIMATORS = [
  "grpo",
  "dr_grpo",
  "rloo",
  "reinforce_plus_plus",
  "reinforce_plus_plus_baseline",
  "bnpo",
  "gdpo",
  "dgpo",
  "gigpo",
  "dr_mas",
  "rank_grpo",
  "step_grpo",
  "m_grpo",
  "hi_agent",
] as const;
export type AdvantageEstimatorName = (typeof ADVANTAGE_ESTIMATORS)[number];

/** Short spellings accepted for estimator names. */
export const ADVANTAGE_ALIASES: Record<string, AdvantageEstimatorName> = {
  reinforce_pp: "reinforce_plus_plus",
  reinforce_pp_baseline: "reinforce_plus_plus_baseline",
};

/**
 * Whether an estimator's advantages can differ between the tokens of one completion (return-to-go with
 * token rewards or γ < 1, per-rank advantages) or are one value per completion (possibly returned as an
 * [N, T] tensor, e.g. REINFORCE++-baseline's token whitening). A sequence-level ratio (GSPO) needs "sequence".
 */
export const ADVANTAGE_GRANULARITY: Record<AdvantageEstimatorName, "sequence" | "token"> = {
  grpo: "sequence",
  dr_grpo: "sequence",
  rloo: "sequence",
  reinforce_plus_plus: "token",
  reinforce_plus_plus_baseline: "sequence",
  bnpo: "sequence",
  gdpo: "sequence",
  dgpo: "sequence",
  gigpo: "sequence",
  dr_mas: "sequence",
  rank_grpo: "token",
  step_grpo: "sequence",
  m_grpo: "sequence",
  hi_agent: "sequence",
};

/** Reward combiners (implemented in rewards.ts), by their registered names. */
export const REWARD_COMBINERS = ["sum", "gdpo", "ensemble_mean", "ensemble_wco", "ensemble_uwo"] as const;

const options = z.record(z.string(), z.unknown());
const named = z.strictObject({ name: z.string().min(1), options: options.default({}) });

const eps = (d: number) => z.number().min(0).default(d);

const clipGate = z.strictObject({
  type: z.literal("clip"),
  /** ε_low (GRPO 0.2). */
  low: z.number().min(0).lt(1).default(0.2),
  /** ε_high (GRPO 0.2, DAPO 0.28). */
  high: z.number().min(0).default(0.2),
  /** Dual-clip c > 1 for negative advantages (verl `clip_ratio_c` 3.0). */
  dualClip: z.number().gt(1).optional(),
  /** Two-sided clip δ > 1 + ε_high on the unclipped branch (TRL `delta`). */
  delta: z.number().gt(1).optional(),
});
const sapoGate = z.strictObject({
  type: z.literal("sapo"),
  tauPos: z.number().positive().default(1.0),
  tauNeg: z.number().positive().default(1.05),
});
const etrGate = z.strictObject({
  type: z.literal("etr"),
  low: z.number().min(0).lt(1).default(0.2),
  high: z.number().min(0).default(0.2),
  kappaAdv: z.number().min(0).default(0.5),
  kappaVar: z.number().min(0).lt(1).default(0.5),
  dualClip: z.number().gt(1).optional(),
});
const noneGate = z.strictObject({ type: z.literal("none") });
export const gateSchema = z.discriminatedUnion("type", [clipGate, sapoGate, etrGate, noneGate]);

const branchClip = z.strictObject({ low: z.number().min(0).lt(1), high: z.number().min(0) });
export const ratioSchema = z.strictObject({
  level: z.enum(RATIO_LEVELS).default("token"),
  /** Bound of |ℓ − ℓ_old| before exp (verl 20). */
  logRatioClamp: z.number().positive().default(20),
  /** Upper bound of a sequence/item log-ratio (verl 10). */
  seqLogRatioClamp: z.number().positive().default(10),
  /** DHPO branch settings; only with level "hybrid". */
  hybrid: z
    .strictObject({
      mix: z.enum(["average", "entropy"]).default("average"),
      token: branchClip.default({ low: 0.2, high: 0.28 }),
      sequence: branchClip.default({ low: 3e-4, high: 4e-4 }),
    })
    .optional(),
});

export const lossSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("surrogate") }),
  z.strictObject({ type: z.literal("reinforce") }),
  z.strictObject({
    type: z.literal("disco"),
    score: z.enum(["logL", "Lratio"]).default("logL"),
    form: z.enum(["lse", "b"]).default("lse"),
    /** τ (default 10 for logL, 1 for Lratio). */
    tau: z.number().positive().optional(),
    positiveThreshold: z.number().default(0.5),
  }),
  z.strictObject({ type: z.literal("reg_grpo"), scale: z.number().positive().default(1) }),
  z.strictObject({
    type: z.literal("rec"),
    mask: z.enum(["none", "one-side", "two-side", "ring"]).default("one-side"),
    weight: z.enum(["none", "importance_sampling", "gspo_importance_sampling", "advantage"]).default("none"),
    low: eps(0.2),
    high: eps(0.2),
    lowPrime: eps(0.6),
    highPrime: eps(2.0),
    temp: z.number().positive().default(1),
  }),
]);

const betaSchedule = z.strictObject({
  kind: z.enum(["constant", "linear", "cosine", "exponential"]),
  start: z.number().min(0),
  end: z.number().min(0),
  steps: z.number().int().positive(),
});

export const regularizerSchema = z.discriminatedUnion("type", [
  z.strictObject({
    type: z.literal("kl"),
    estimator: z.enum(KL_ESTIMATORS).default("k3"),
    /** β, constant or scheduled (GRPO-D). DeepSeekMath 0.04; R1 0.001. */
    beta: z.union([z.number().min(0), betaSchedule]).default(0.04),
    deltaClamp: z.number().positive().default(20),
    valueClamp: z.number().positive().default(10),
    ratioWeighted: z.boolean().default(false),
  }),
  z.strictObject({
    type: z.literal("entropy"),
    coef: z.number().min(0).default(0.001),
    target: z.number().min(0).optional(),
    lr: z.number().positive().default(0.01),
    minCoef: z.number().min(0).default(0),
    maxCoef: z.number().min(0).default(1),
  }),
  z.strictObject({
    type: z.literal("llds"),
    lambda: z.number().min(0).default(0.2),
    gate: z.enum(["action", "response"]).default("action"),
  }),
  z.strictObject({
    type: z.literal("r2vpo"),
    delta: z.number().min(0).default(0.01),
    eta: z.number().positive().default(0.1),
    lambdaInit: z.number().min(0).default(0),
  }),
  z.strictObject({
    type: z.literal("disco_kl"),
    beta: z.number().positive().default(1e3),
    delta: z.number().min(0).default(1e-4),
  }),
  z.strictObject({ type: z.literal("opmd"), coef: z.number().min(0).default(0.1) }),
  z.strictObject({ type: z.literal("asymre"), coef: z.number().min(0).default(0.1) }),
]);

export const aggregateSchema = z.strictObject({
  mode: z.enum(AGGREGATE_MODES).default("seq-mean-token-mean"),
  /** Constant L_max for seq-mean-token-sum-norm (Dr. GRPO). */
  maxLength: z.number().int().positive().optional(),
  /** Count fully masked sequences in sequence denominators (TRL / new verl). */
  countMaskedSequences: z.boolean().default(false),
});

export const rewardSchema = z.strictObject({
  /** How per-function rewards become one: weighted sum (GRPO), GDPO (normalise each, then sum), RM ensembles. */
  combine: z.enum(REWARD_COMBINERS).default("sum"),
  /** Reward function names, when known at config time. */
  functions: z.array(z.string().min(1)).optional(),
  /** One weight per reward function (sum, gdpo). */
  weights: z.array(z.number()).optional(),
  /** Further options of the combiner (e.g. `lambda` of ensemble_uwo), validated by rewards.ts. */
  options: options.default({}),
});

export const algoConfigSchema = z.strictObject({
  advantage: z
    .strictObject({
      estimator: z
        .preprocess((v) => (typeof v === "string" ? (ADVANTAGE_ALIASES[v] ?? v) : v), z.enum(ADVANTAGE_ESTIMATORS))
        .default("grpo"),
      options: options.default({}),
    })
    .default({ estimator: "grpo", options: {} }),
  reward: rewardSchema.default({ combine: "sum", options: {} }),
  /** KL placed in the reward (REINFORCE++ style, k1 on π_old). */
  rewardKl: z.strictObject({ beta: z.number().min(0) }).optional(),
  shapers: z.array(named).default([]),
  reweighters: z.array(named).default([]),
  /** Sample filters (filters.ts `sampleFilters`, e.g. zero_std). */
  sampleFilters: z.array(named).default([]),
  /** Token filters (filters.ts `tokenFilters`, e.g. truncated, top_entropy, gtpo_conflict). */
  tokenFilters: z.array(named).default([]),
  ratio: ratioSchema.default({ level: "token", logRatioClamp: 20, seqLogRatioClamp: 10 }),
  gate: gateSchema.default({ type: "clip", low: 0.2, high: 0.2 }),
  loss: lossSchema.default({ type: "surrogate" }),
  regularizers: z.array(regularizerSchema).default([]),
  aggregate: aggregateSchema.default({ mode: "seq-mean-token-mean", countMaskedSequences: false }),
  /** Rollout-level fields (group size, dynamic sampling, hints …), validated by the rollout module. */
  rollout: options.default({}),
});

/** The validated algorithm config (defaults filled). */
export type AlgoConfig = z.output<typeof algoConfigSchema>;
/** What a user may write (defaults optional). */
export type AlgoConfigInput = z.input<typeof algoConfigSchema>;
export type GateConfig = z.output<typeof gateSchema>;
export type LossConfig = z.output<typeof lossSchema>;
export type RegularizerConfig = z.output<typeof regularizerSchema>;

export interface ValidationContext {
  /** Number of reward functions configured outside the algo section. */
  rewardFunctions?: number;
  /** Prefix of every error path (default "algo"). */
  root?: string;
}

function joinPath(root: string, path: readonly PropertyKey[]): string {
  return [root, ...path.map(String)].filter((s) => s !== "").join(".");
}

/** An alternative loss (DisCO, REC, …) uses no clip/gate: when the gate is left out it defaults to "none". */
function withLossDefaults(input: unknown): unknown {
  if (typeof input !== "object" || input === null || Array.isArray(input)) return input;
  const o = input as Record<string, unknown>;
  const loss = o.loss as { type?: unknown } | undefined;
  if (
    o.gate === undefined &&
    loss !== undefined &&
    loss !== null &&
    loss.type !== undefined &&
    loss.type !== "surrogate"
  ) {
    return { ...o, gate: { type: "none" } };
  }
  return input;
}

/** Parses and validates the algorithm config; throws `ConfigError` (with the key path) on the first problem. */
export function parseAlgoConfig(input: unknown, ctx: ValidationContext = {}): AlgoConfig {
  const root = ctx.root ?? "algo";
  const r = algoConfigSchema.safeParse(withLossDefaults(input ?? {}));
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    let path = issue.path;
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      path = [...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])];
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}; check the spelling against the documented fields`;
    }
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : "";
    throw new ConfigError(`${message}${more}`, joinPath(root, path));
  }
  checkCombinations(r.data, ctx, root);
  return r.data;
}

/** Cross-field rules: combinations the schema allows but that cannot work. */
export function checkCombinations(c: AlgoConfig, ctx: ValidationContext = {}, root = "algo"): void {
  const fail = (message: string, ...path: string[]): never => {
    throw new ConfigError(message, joinPath(root, path));
  };
  const est = c.advantage.estimator;
  const granularity = ADVANTAGE_GRANULARITY[est];

  // 1. A sequence-level ratio multiplies one ratio per sequence by one advantage per sequence.
  if (c.ratio.level === "sequence" && granularity === "token") {
    fail(
      `ratio level "sequence" (GSPO) needs one advantage per sequence, but estimator "${est}" gives token-level ` +
        `advantages; use ratio level "sequence-token" (GSPO-token), which accepts them, or a sequence-level estimator`,
      "ratio",
      "level",
    );
  }
  if (c.ratio.hybrid !== undefined && c.ratio.level !== "hybrid") {
    fail(
      `ratio.hybrid is set but ratio.level is "${c.ratio.level}"; set level "hybrid" or remove hybrid`,
      "ratio",
      "hybrid",
    );
  }
  if (c.ratio.level === "hybrid" && c.gate.type !== "clip" && c.gate.type !== "none") {
    fail(
      `ratio level "hybrid" clips each branch with its own bounds (ratio.hybrid.token / .sequence); ` +
        `it works with gate "clip" or "none", not "${c.gate.type}"`,
      "gate",
      "type",
    );
  }

  // 2. Dr. GRPO's constant normaliser.
  if (c.aggregate.mode === "seq-mean-token-sum-norm" && c.aggregate.maxLength === undefined) {
    fail(
      `aggregate mode "seq-mean-token-sum-norm" divides by N·maxLength with a constant maxLength (Dr. GRPO); ` +
        `set aggregate.maxLength to the max completion length`,
      "aggregate",
      "maxLength",
    );
  }
  if (c.aggregate.maxLength !== undefined && c.aggregate.mode !== "seq-mean-token-sum-norm") {
    fail(
      `aggregate.maxLength is only used by mode "seq-mean-token-sum-norm" (mode is "${c.aggregate.mode}"); remove it`,
      "aggregate",
      "maxLength",
    );
  }

  // 3. Reward functions.
  const nFns = c.reward.functions?.length ?? c.reward.weights?.length ?? ctx.rewardFunctions;
  if (c.reward.functions !== undefined && c.reward.weights !== undefined) {
    if (c.reward.functions.length !== c.reward.weights.length) {
      fail(
        `reward.weights has ${c.reward.weights.length} entries but reward.functions has ${c.reward.functions.length}; ` +
          `give one weight per function`,
        "reward",
        "weights",
      );
    }
  }
  const decoupled = est === "gdpo" || c.reward.combine === "gdpo";
  if (decoupled && nFns !== undefined && nFns < 2) {
    fail(
      `GDPO normalises each reward function separately within the group, which needs at least 2 reward functions ` +
        `(got ${nFns}); with one reward use estimator "grpo"`,
      est === "gdpo" ? "advantage" : "reward",
      est === "gdpo" ? "estimator" : "combine",
    );
  }
  if (c.reward.combine.startsWith("ensemble_") && nFns !== undefined && nFns < 2) {
    fail(
      `reward combine "${c.reward.combine}" is a reward-model ensemble and needs at least 2 reward functions (got ${nFns})`,
      "reward",
      "combine",
    );
  }

  // 4. Alternative policy losses replace the ratio·advantage surrogate.
  if (c.loss.type !== "surrogate") {
    if (c.gate.type !== "none") {
      fail(
        `loss "${c.loss.type}" does not use a clip/gate function (it replaces the ratio·advantage surrogate), ` +
          `but gate is "${c.gate.type}"; set gate.type "none"`,
        "gate",
        "type",
      );
    }
    if (c.ratio.level !== "token") {
      fail(
        `loss "${c.loss.type}" reads token log-ratios itself; ratio level "${c.ratio.level}" would be ignored. ` +
          `Set ratio.level "token" (REC has weight "gspo_importance_sampling" for a sequence ratio)`,
        "ratio",
        "level",
      );
    }
  }
  if (c.loss.type === "reg_grpo" && granularity === "token") {
    fail(
      `loss "reg_grpo" regresses one advantage per sequence, but estimator "${est}" gives token-level advantages`,
      "loss",
      "type",
    );
  }

  // 5. Clip parameters that cannot work together.
  if (c.gate.type === "clip" && c.gate.delta !== undefined && c.gate.delta <= 1 + c.gate.high) {
    fail(
      `gate.delta (${c.gate.delta}) must exceed 1 + gate.high (${1 + c.gate.high}); otherwise it clips inside the ` +
        `trust region`,
      "gate",
      "delta",
    );
  }

  // 6. Regularizers: at most one of each type; schedules that need positive ends.
  const seen = new Set<string>();
  c.regularizers.forEach((r, i) => {
    if (seen.has(r.type)) {
      fail(`regularizer "${r.type}" appears twice; merge the entries`, "regularizers", String(i), "type");
    }
    seen.add(r.type);
    if (r.type === "kl" && typeof r.beta === "object" && r.beta.kind === "exponential") {
      if (!(r.beta.start > 0 && r.beta.end > 0)) {
        fail("an exponential β schedule needs start > 0 and end > 0", "regularizers", String(i), "beta");
      }
    }
    if (r.type === "entropy" && r.minCoef > r.maxCoef) {
      fail(`entropy minCoef (${r.minCoef}) exceeds maxCoef (${r.maxCoef})`, "regularizers", String(i), "minCoef");
    }
  });
  if (c.rewardKl !== undefined && seen.has("kl")) {
    fail(
      "KL is configured both in the reward (rewardKl) and in the loss (a kl regularizer); pick one placement",
      "rewardKl",
    );
  }

  // 7. Rollout-level fields (prompt sampler, budget allocator, dynamic sampling).
  validateRolloutConfig(c.rollout, joinPath(root, ["rollout"]));
}
