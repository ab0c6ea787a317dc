/**
 * One declaration per design-space component (ALGORITHMS.md §C). A component is defined once, where it is
 * implemented, with
 * - `name`, `paper` (arXiv id) and `confidence` (the tag of ALGORITHMS.md, or DESIGN for Cohort's own choices);
 * - `params`: a zod schema, the only declaration of its options and their defaults. The `algo:` config schema
 *   is generated from the registries (src/algo/config.ts), so every name, option key and type is checked when
 *   the config is read, before any work starts;
 * - `needs`: the inputs it reads beyond rewards and its own options (entropy, reference log-probs, token ids,
 *   …). A run supplies inputs by need, never by component name, and a need that no source of the run can
 *   satisfy is refused at config time, naming the need and what would satisfy it.
 * Stateful components (dual variables, adaptive coefficients, entropy trackers) are made per run by their
 * factory and implement `ComponentState`; the training loop steps them once per optimizer step and stores
 * their state in checkpoints (src/algo/pipeline.ts).
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { Registry } from "./registry.js";
import type { LossBatch } from "./types.js";

/** Confidence tags of ALGORITHMS.md, and DESIGN for a formula that is Cohort's own design choice. */
export type Confidence = "CODE" | "CODE-FW" | "PAPER" | "PAPER-KNOWN" | "ABSTRACT" | "DESIGN";

/**
 * The inputs a component may need, with what each is and what supplies it. `cohort train` supplies every
 * need listed in `TRAIN_SOURCES`.
 */
export const NEEDS = {
  rewardsByFn: { what: "the per-function rewards [K][N]", from: "every run" },
  lengths: { what: "the completion length |o_i|", from: "every run" },
  meanLogprobs: { what: "the mean sampled-token log-prob of each completion under π_old", from: "every run" },
  truncated: { what: "whether each completion hit the length limit", from: "every run" },
  texts: { what: "the completion texts", from: "every run" },
  tokenMask: { what: "the [N, T] completion mask", from: "every run" },
  meanEntropy: {
    what: "the mean token entropy of each completion under the current policy",
    from: "cohort train (one extra forward pass without gradient)",
  },
  tokenEntropy: { what: "the per-token entropy [N, T] under the current policy", from: "cohort train" },
  tokenIds: { what: "the sampled token ids [N, T]", from: "cohort train" },
  refLogprobs: {
    what: "log-probs under the reference policy π_ref",
    from: "cohort train (a frozen copy of the starting model, or the base model with LoRA adapters off)",
  },
  oldLogprobs: { what: "log-probs under the rollout policy π_old before the update", from: "cohort train" },
  targetRatio: {
    what: "DCPO's target-distribution ratio ρ^T = π_old(·; T)/π_old(·; 1) of the sampled tokens [N, T]",
    from: "cohort train (two forward passes of π_old without gradient)",
  },
  curvature: {
    what: "a per-token curvature score [N, T] of the update (CAPO)",
    from: "cohort train (from the policy's token distribution, see the score filter)",
  },
  tokenScore: {
    what: "a per-token score [N, T] computed by your own code",
    from: "your own loop only: call the pipeline (src/algo/pipeline.ts) with inputs.tokenScore",
  },
  stepValues: {
    what: "a learned critic's value V(s_t) of every step's state, with the bootstrap value after the last [N, T + 1]",
    from: "cohort train with a control policy and a critic (`policy.critic`)",
  },
  rankRewards: {
    what: "the reward of every rank position of a ranked list ([N][K])",
    from: "cohort train on a ranking task (`task: {name: nearest}`), or your own loop with RewardBatch.rankRewards",
  },
  itemIndex: {
    what: "the item (rank position) of every token [N, T]",
    from: "cohort train on a ranking task (`task: {name: nearest}`), or your own loop with itemIndex",
  },
  agentSteps: {
    what: "agent step rows (trajectory, step index, observation key, agent id) of multi-turn episodes",
    from: "cohort train (an environment's episodes; a task's completion is a one-step episode)",
  },
  rowFields: {
    what: "the fields of each row's prompt (JSONL columns, a task's problem meta, an environment task's scalar fields)",
    from: "cohort train",
  },
  wholeGroups: {
    what: "every group (question) whole inside one micro-batch and one data-parallel rank",
    from: "cohort train (micro-batches are cut at group boundaries)",
  },
} as const;
export type Need = keyof typeof NEEDS;

/**
 * Needs `cohort train` satisfies (on tasks, datasets and environments: a single-turn completion is a one-step
 * episode, so agent-step estimators run on tasks too).
 */
export const TRAIN_SOURCES: ReadonlySet<Need> = new Set<Need>([
  "rewardsByFn",
  "lengths",
  "meanLogprobs",
  "truncated",
  "texts",
  "tokenMask",
  "meanEntropy",
  "tokenEntropy",
  "tokenIds",
  "refLogprobs",
  "oldLogprobs",
  "targetRatio",
  "curvature",
  "agentSteps",
  "rowFields",
  "wholeGroups",
]);

/** Needs `cohort train` satisfies on a ranking task (src/task/ranking.ts) besides `TRAIN_SOURCES`. */
export const RANKING_SOURCES: ReadonlySet<Need> = new Set<Need>(["rankRewards", "itemIndex"]);

/** What every component declares. `P` is its zod params schema (a strict object with defaults). */
export interface ComponentDef<P extends z.ZodType = z.ZodType> {
  name: string;
  /** arXiv id of the method's paper; absent for framework conventions. */
  paper?: string;
  confidence?: Confidence;
  /** One line: what it does. */
  doc: string;
  params: P;
  /** Reward functions it needs at least (GDPO, reward-model ensembles: 2). */
  minRewardFunctions?: number;
  /** Inputs it reads (fixed, or depending on its params). */
  needs?: readonly Need[] | ((params: z.output<P>) => readonly Need[]);
}

/**
 * How a stateful component keeps per-run state: a plain record of numbers (saved as is in checkpoints),
 * made by `init`, fed by `observe` with every micro-batch of the loss pass, and advanced by `endStep` once per
 * optimizer step (`applied` false when a non-finite loss or gradient skipped the step: drop what was gathered).
 */
export interface StateDef<P, S extends Record<string, number>> {
  init(params: P): S;
  /** Fields that are sums over the step's micro-batches: summed over data-parallel ranks before `endStep`,
   * so every rank takes the same update. */
  reduce?: readonly (keyof S & string)[];
  observe?(state: S, batch: LossBatch, params: P): void;
  endStep?(state: S, params: P, applied: boolean): void;
}

/** Per-run state of a stateful component: stepped once per optimizer step, stored in checkpoints. */
export interface ComponentState {
  state(): Record<string, unknown>;
  load(state: Record<string, unknown>): void;
  /**
   * Called once after each optimizer step with whether it was applied (false when a non-finite loss or
   * gradient skipped it: statistics gathered since the last call are then dropped).
   */
  endStep(applied: boolean): void;
}

/** A registry of component definitions of one slot; `version` changes with every registration. */
export class ComponentRegistry<C extends ComponentDef> extends Registry<C> {
  static version = 0;
  override register(name: string, item: C): C {
    if (item.name !== name) throw new ConfigError(`component "${item.name}" registered under "${name}"`);
    ComponentRegistry.version++;
    return super.register(name, item);
  }
  /** Registers a definition under its own name. */
  define<D extends C>(def: D): D {
    this.register(def.name, def);
    return def;
  }
  list(): C[] {
    return this.names().map((n) => this.get(n));
  }
}

/** The needs of a component under its parsed params. */
export function needsOf<P extends z.ZodType>(def: ComponentDef<P>, params: z.output<P>): readonly Need[] {
  const n = def.needs;
  return n === undefined ? [] : typeof n === "function" ? n(params) : n;
}

/** Parses a component's options with its schema; errors name the component and the key. */
export function parseParams<P extends z.ZodType>(def: ComponentDef<P>, options: unknown, path = def.name): z.output<P> {
  const r = def.params.safeParse(options ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0] as z.core.$ZodIssue;
  if (issue.code === "unrecognized_keys") {
    const known = def.params instanceof z.ZodObject ? Object.keys(def.params.shape) : [];
    throw new ConfigError(
      `unknown option ${issue.keys.map((k) => `"${k}"`).join(", ")} for ${def.name}; known options: ${known.length ? known.join(", ") : "(none)"}`,
      [path, ...issue.path.map(String), ...(issue.keys.length === 1 ? issue.keys : [])].join("."),
    );
  }
  throw new ConfigError(`${def.name}: ${issue.message}`, [path, ...issue.path.map(String)].join("."));
}

/** Checks a saved state record against a fresh one: the same keys, every value a finite number. */
export function loadStateRecord<S extends Record<string, number>>(fresh: S, saved: unknown, who: string): S {
  if (saved === null || typeof saved !== "object") {
    throw new ConfigError(`${who}: the checkpoint has no state for it; was it written with another algorithm config?`);
  }
  const out = { ...fresh };
  for (const k of Object.keys(fresh)) {
    const v = (saved as Record<string, unknown>)[k];
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new ConfigError(`${who}: checkpoint state "${k}" must be a number, got ${JSON.stringify(v)}`);
    }
    (out as Record<string, number>)[k] = v;
  }
  return out;
}
