/**
 * The algorithm part of the configuration (`algo:` in a config file): one point of the design space of
 * ALGORITHMS.md §C. Its schema is generated from the component registries (`algoConfigSchema`): every
 * component name, option key and option type is checked by the component's own params schema, in one step,
 * before any work starts. Combinations that cannot work fail with a `ConfigError` that names the key path,
 * says why and what to do (`checkCombinations`); so do needs no source of the run can satisfy (`checkNeeds`).
 * Rollout-level fields (`algo.rollout`) are validated by the rollout module in the same step.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { validateRolloutConfig } from "../rollout/validate.js";
import { advantageEstimators } from "./advantage.js";
import "./agent.js"; // registers the agent estimators m_grpo and hi_agent
import "./hrpo.js"; // registers hop_grouped and mashost_hrpo
import { AGGREGATE_MODES } from "./aggregate.js";
import { type ComponentDef, ComponentRegistry, NEEDS, type Need, needsOf } from "./component.js";
import { sampleFilters, tokenFilters } from "./filters.js";
import { gates } from "./gates.js";
import { policyLosses } from "./losses.js";
import "./pair-mask.js"; // registers the sample filter dagrpo_pairs
import "./preference.js"; // registers the pairwise losses p3o, dno, nash_mp
import "./vgpo.js"; // registers the estimator vgpo
import { RATIO_LEVELS } from "./ratio.js";
import { regularizers } from "./regularizers.js";
import { rewardCombiners, rewardShapers } from "./rewards.js";
import { advantageReweighters } from "./reweight.js";

/** Short spellings accepted for estimator names. */
export const ADVANTAGE_ALIASES: Readonly<Record<string, string>> = {
  reinforce_pp: "reinforce_plus_plus",
  reinforce_pp_baseline: "reinforce_plus_plus_baseline",
};

/** A `{name, options}` entry (estimator, shapers, reweighters, filters), options parsed by the component. */
export interface NamedEntry {
  name: string;
  options: Record<string, unknown>;
}
/** A `{type, …params}` entry (gate, loss, regularizers), params parsed by the component. */
export interface TypedEntry {
  type: string;
  [param: string]: unknown;
}

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
      token: z
        .strictObject({ low: z.number().min(0).lt(1), high: z.number().min(0) })
        .default({ low: 0.2, high: 0.28 }),
      sequence: z
        .strictObject({ low: z.number().min(0).lt(1), high: z.number().min(0) })
        .default({ low: 3e-4, high: 4e-4 }),
    })
    .optional(),
});

const aggregateSchema = z.strictObject({
  mode: z.enum(AGGREGATE_MODES).default("seq-mean-token-mean"),
  /** Constant L_max for seq-mean-token-sum-norm (Dr. GRPO). */
  maxLength: z.number().int().positive().optional(),
  /** Count fully masked sequences in sequence denominators (TRL / new verl). */
  countMaskedSequences: z.boolean().default(false),
});

/** The validated algorithm config: every component named and its options parsed (defaults filled). */
export interface AlgoConfig {
  advantage: { estimator: string; options: Record<string, unknown> };
  reward: {
    /** How per-function rewards become one: weighted sum (GRPO), GDPO (keep them for the estimator), RM ensembles. */
    combine: string;
    /** Reward function names, when known at config time. */
    functions?: string[];
    /** One weight per reward function (sum, gdpo). */
    weights?: number[];
    /** Options of the combiner. */
    options: Record<string, unknown>;
  };
  /** KL placed in the reward (REINFORCE++ style, k1 on π_old, A.4). */
  rewardKl?: { beta: number };
  shapers: NamedEntry[];
  reweighters: NamedEntry[];
  sampleFilters: NamedEntry[];
  tokenFilters: NamedEntry[];
  ratio: z.output<typeof ratioSchema>;
  gate: TypedEntry;
  loss: TypedEntry;
  regularizers: TypedEntry[];
  aggregate: z.output<typeof aggregateSchema>;
  /** Rollout-level fields (group size, dynamic sampling, hints …), validated by the rollout module. */
  rollout: Record<string, unknown>;
  /** Control-policy methods (optimizer, IWOCS, action grouping), validated by src/control/methods.ts. */
  control?: Record<string, unknown>;
}

/** What a user may write: every section optional; a component's options are checked by its own schema. */
export interface AlgoConfigInput {
  advantage?: { estimator?: string; options?: Record<string, unknown> };
  reward?: { combine?: string; functions?: string[]; weights?: number[]; options?: Record<string, unknown> };
  rewardKl?: { beta: number };
  shapers?: { name: string; options?: Record<string, unknown> }[];
  reweighters?: { name: string; options?: Record<string, unknown> }[];
  sampleFilters?: { name: string; options?: Record<string, unknown> }[];
  tokenFilters?: { name: string; options?: Record<string, unknown> }[];
  ratio?: z.input<typeof ratioSchema>;
  gate?: { type: string; [param: string]: unknown };
  loss?: { type: string; [param: string]: unknown };
  regularizers?: { type: string; [param: string]: unknown }[];
  aggregate?: z.input<typeof aggregateSchema>;
  rollout?: Record<string, unknown>;
  control?: Record<string, unknown>;
}
export type GateConfig = TypedEntry;
export type LossConfig = TypedEntry;
export type RegularizerConfig = TypedEntry;

/** Copies the issues of a component's params parse into the outer parse, under `path`. */
function forwardIssues(
  ctx: z.core.$RefinementCtx,
  def: ComponentDef,
  issues: readonly z.core.$ZodIssue[],
  path: PropertyKey[],
): void {
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys") {
      const known = Object.keys((def.params as z.ZodObject).shape ?? {});
      ctx.addIssue({
        code: "custom",
        path: [...path, ...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])],
        message: `unknown option ${issue.keys.map((k) => `"${k}"`).join(", ")} for ${def.name}; known options: ${known.length ? known.join(", ") : "(none)"}`,
      });
    } else {
      ctx.addIssue({ code: "custom", path: [...path, ...issue.path], message: `${def.name}: ${issue.message}` });
    }
  }
}

interface Named {
  slot: string;
  names(): string[];
}

function unknownName(ctx: z.core.$RefinementCtx, reg: Named, name: string, path: PropertyKey[]): void {
  ctx.addIssue({ code: "custom", path, message: `unknown ${reg.slot} "${name}"; known: ${reg.names().join(", ")}` });
}

/** `{name, options}` checked against `reg`: the name is registered, the options parse with its params. */
function namedEntry<C extends ComponentDef, K extends "name" | "estimator" = "name">(
  reg: ComponentRegistry<C>,
  key: K = "name" as K,
  alias: Readonly<Record<string, string>> = {},
) {
  return z
    .strictObject({ [key]: z.string().min(1), options: z.record(z.string(), z.unknown()).optional() })
    .transform((v, ctx) => {
      const raw = v[key] as string;
      const name = alias[raw] ?? raw;
      if (!reg.has(name)) {
        unknownName(ctx, reg, name, [key]);
        return z.NEVER;
      }
      const def = reg.get(name);
      const r = def.params.safeParse(v.options ?? {});
      if (!r.success) {
        forwardIssues(ctx, def, r.error.issues, ["options"]);
        return z.NEVER;
      }
      const entry = { [key]: name, options: r.data as Record<string, unknown> };
      return entry as { [P in K]: string } & { options: Record<string, unknown> };
    });
}

/** `{type, …params}` checked against `reg`: the type is registered, the rest parses with its params. */
function typedEntry<C extends ComponentDef>(reg: ComponentRegistry<C>) {
  return z.looseObject({ type: z.string().min(1) }).transform((v, ctx) => {
    if (!reg.has(v.type)) {
      unknownName(ctx, reg, v.type, ["type"]);
      return z.NEVER;
    }
    const def = reg.get(v.type);
    const { type, ...rest } = v;
    const r = def.params.safeParse(rest);
    if (!r.success) {
      forwardIssues(ctx, def, r.error.issues, []);
      return z.NEVER;
    }
    return { type, ...(r.data as Record<string, unknown>) } as TypedEntry;
  });
}

let cached: { version: number; schema: z.ZodType<AlgoConfig> } | null = null;

/**
 * The schema of `algo:`, generated from the component registries: every name, option key and option type is
 * checked by the component's own params schema. Rebuilt when a component is registered.
 */
export function algoConfigSchema(): z.ZodType<AlgoConfig> {
  if (cached?.version === ComponentRegistry.version) return cached.schema;
  const reward = z
    .strictObject({
      combine: z.string().min(1).default("sum"),
      functions: z.array(z.string().min(1)).optional(),
      weights: z.array(z.number()).optional(),
      options: z.record(z.string(), z.unknown()).default({}),
    })
    .transform((v, ctx) => {
      if (!rewardCombiners.has(v.combine)) {
        unknownName(ctx, rewardCombiners, v.combine, ["combine"]);
        return z.NEVER;
      }
      const def = rewardCombiners.get(v.combine);
      const r = def.params.safeParse(v.options);
      if (!r.success) {
        forwardIssues(ctx, def, r.error.issues, ["options"]);
        return z.NEVER;
      }
      return { ...v, options: r.data as Record<string, unknown> };
    });
  const schema = z.strictObject({
    advantage: namedEntry(advantageEstimators, "estimator", ADVANTAGE_ALIASES).prefault({ estimator: "grpo" }),
    reward: reward.prefault({}),
    rewardKl: z.strictObject({ beta: z.number().min(0) }).optional(),
    shapers: z.array(namedEntry(rewardShapers)).default([]),
    reweighters: z.array(namedEntry(advantageReweighters)).default([]),
    sampleFilters: z.array(namedEntry(sampleFilters)).default([]),
    tokenFilters: z.array(namedEntry(tokenFilters)).default([]),
    ratio: ratioSchema.default({ level: "token", logRatioClamp: 20, seqLogRatioClamp: 10 }),
    gate: typedEntry(gates).prefault({ type: "clip" }),
    loss: typedEntry(policyLosses).prefault({ type: "surrogate" }),
    regularizers: z.array(typedEntry(regularizers)).default([]),
    aggregate: aggregateSchema.default({ mode: "seq-mean-token-mean", countMaskedSequences: false }),
    rollout: z.record(z.string(), z.unknown()).default({}),
    control: z.record(z.string(), z.unknown()).optional(),
  });
  cached = { version: ComponentRegistry.version, schema };
  return schema;
}

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
  const r = algoConfigSchema().safeParse(withLossDefaults(input ?? {}));
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    let path = issue.path;
    let message = issue.message;
    if (issue.code === "unrecognized_keys") {
      path = [...issue.path, ...(issue.keys.length === 1 ? issue.keys : [])];
      const known = issue.path.length === 0 ? `; allowed: ${ALGO_KEYS.join(", ")}` : "; check the spelling";
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}${known}`;
    }
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problem(s))` : "";
    throw new ConfigError(`${message}${more}`, joinPath(root, path));
  }
  checkCombinations(r.data, ctx, root);
  return r.data;
}

const ALGO_KEYS = [
  "advantage",
  "reward",
  "rewardKl",
  "shapers",
  "reweighters",
  "sampleFilters",
  "tokenFilters",
  "ratio",
  "gate",
  "loss",
  "regularizers",
  "aggregate",
  "rollout",
  "control",
];

/** Every component of a config with its registry entry, parsed params and config path. */
export function componentsOf(c: AlgoConfig): { def: ComponentDef; params: Record<string, unknown>; path: string }[] {
  const typed = (e: TypedEntry): Record<string, unknown> => {
    const { type: _type, ...rest } = e;
    return rest;
  };
  return [
    { def: advantageEstimators.get(c.advantage.estimator), params: c.advantage.options, path: "advantage.estimator" },
    { def: rewardCombiners.get(c.reward.combine), params: c.reward.options, path: "reward.combine" },
    ...c.shapers.map((e, i) => ({ def: rewardShapers.get(e.name), params: e.options, path: `shapers.${i}.name` })),
    ...c.reweighters.map((e, i) => ({
      def: advantageReweighters.get(e.name),
      params: e.options,
      path: `reweighters.${i}.name`,
    })),
    ...c.sampleFilters.map((e, i) => ({
      def: sampleFilters.get(e.name),
      params: e.options,
      path: `sampleFilters.${i}.name`,
    })),
    ...c.tokenFilters.map((e, i) => ({
      def: tokenFilters.get(e.name),
      params: e.options,
      path: `tokenFilters.${i}.name`,
    })),
    { def: gates.get(c.gate.type), params: typed(c.gate), path: "gate.type" },
    { def: policyLosses.get(c.loss.type), params: typed(c.loss), path: "loss.type" },
    ...c.regularizers.map((e, i) => ({
      def: regularizers.get(e.type),
      params: typed(e),
      path: `regularizers.${i}.type`,
    })),
  ];
}

/**
 * The needs of a config: what its components read (need → config path and name of the first component that
 * reads it), plus the reference log-probs of KL in the reward.
 */
export function configNeeds(c: AlgoConfig): Map<Need, { path: string; name: string }> {
  const out = new Map<Need, { path: string; name: string }>();
  for (const { def, params, path } of componentsOf(c)) {
    for (const n of needsOf(def, params)) if (!out.has(n)) out.set(n, { path, name: def.name });
  }
  if (c.rewardKl !== undefined && c.rewardKl.beta > 0 && !out.has("refLogprobs")) {
    out.set("refLogprobs", { path: "rewardKl.beta", name: "KL in the reward" });
  }
  return out;
}

/**
 * Refuses a config whose components need an input that no source of the run supplies, naming the need, the
 * component that reads it and what would satisfy it.
 */
export function checkNeeds(c: AlgoConfig, sources: ReadonlySet<Need>, where: string, root = "algo"): void {
  for (const [need, { path, name }] of configNeeds(c)) {
    if (sources.has(need)) continue;
    const info = NEEDS[need];
    throw new ConfigError(
      `"${name}" needs ${info.what} (need "${need}"), which ${where} does not supply; it comes from ${info.from}`,
      joinPath(root, path.split(".")),
    );
  }
}

/** Cross-field rules: combinations the schema allows but that cannot work. */
export function checkCombinations(c: AlgoConfig, ctx: ValidationContext = {}, root = "algo"): void {
  const fail = (message: string, ...path: string[]): never => {
    throw new ConfigError(message, joinPath(root, path));
  };
  const est = c.advantage.estimator;
  const granularity = advantageEstimators.get(est).granularity;

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
  if (c.ratio.level === "hybrid" && !gates.get(c.gate.type).branchBounds) {
    const ok = gates
      .list()
      .filter((g) => g.branchBounds)
      .map((g) => `"${g.name}"`);
    fail(
      `ratio level "hybrid" clips each branch with its own bounds (ratio.hybrid.token / .sequence); ` +
        `it works with gate ${ok.join(" or ")}, not "${c.gate.type}"`,
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
  // components that compare or combine several reward functions (GDPO, reward-model ensembles)
  for (const { def, path } of componentsOf(c)) {
    const min = def.minRewardFunctions;
    if (min !== undefined && nFns !== undefined && nFns < min) {
      fail(`"${def.name}" ${def.doc}, which needs at least ${min} reward functions (got ${nFns})`, ...path.split("."));
    }
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
  if (policyLosses.get(c.loss.type).sequenceAdvantages && granularity === "token") {
    fail(
      `loss "${c.loss.type}" reads one advantage per sequence, but estimator "${est}" gives token-level advantages`,
      "loss",
      "type",
    );
  }

  // 5. Clip parameters that cannot work together.
  const { delta, high } = c.gate as { delta?: number; high?: number };
  if (delta !== undefined && high !== undefined && delta <= 1 + high) {
    fail(
      `gate.delta (${delta}) must exceed 1 + gate.high (${1 + high}); otherwise it clips inside the trust region`,
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
    const beta = r.beta as { kind?: string; start?: number; end?: number } | number | undefined;
    if (typeof beta === "object" && beta.kind === "exponential" && !((beta.start ?? 0) > 0 && (beta.end ?? 0) > 0)) {
      fail("an exponential β schedule needs start > 0 and end > 0", "regularizers", String(i), "beta");
    }
    const { minCoef, maxCoef } = r as { minCoef?: number; maxCoef?: number };
    if (minCoef !== undefined && maxCoef !== undefined && minCoef > maxCoef) {
      fail(`minCoef (${minCoef}) exceeds maxCoef (${maxCoef})`, "regularizers", String(i), "minCoef");
    }
  });
  if (c.rewardKl !== undefined && c.regularizers.some((r) => regularizers.get(r.type).klToReference)) {
    fail(
      "KL is configured both in the reward (rewardKl) and in the loss (a kl regularizer); pick one placement",
      "rewardKl",
    );
  }

  // 7. Rollout-level fields (prompt sampler, budget allocator, dynamic sampling).
  validateRolloutConfig(c.rollout, joinPath(root, ["rollout"]));
}
