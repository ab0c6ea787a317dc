/**
 * The rollout-level part of the algorithm config (`algo.rollout`): which prompt sampler draws the prompts of
 * a step, which budget allocator decides how many completions each prompt gets, and whether DAPO dynamic
 * sampling refills the batch with extra generation rounds. Validated with zod; unknown keys fail with a
 * `ConfigError` that names the key path. Component options are validated by each component's own schema.
 *
 * ```yaml
 * algo:
 *   rollout:
 *     promptSampler: {name: vas, options: {mixtureRatio: 0.5}}
 *     budget: {name: gdro_sqrt, options: {min: 2}}
 *     dynamicSampling: {maxRounds: 3, onCap: train-partial}
 *     success: {reward: correctness, threshold: 0.5}
 *     wrapper: {name: sage, options: {levels: 3}}
 * ```
 * @module
 */
import { z } from "zod";
import { configErrorFromIssues } from "../config-issue.js";
import type { ConfigError } from "../errors.js";

const options = z.record(z.string(), z.unknown());

export const rolloutConfigSchema = z.strictObject({
  /** Prompt sampler (prompt-samplers.ts): uniform (default), vas, gdro_prompt. */
  promptSampler: z
    .strictObject({ name: z.string().min(1).default("uniform"), options: options.default({}) })
    .default({ name: "uniform", options: {} }),
  /** Budget allocator (budget.ts): fixed (default, G each), gdro_sqrt, v0. The total is B·G. */
  budget: z
    .strictObject({ name: z.string().min(1).default("fixed"), options: options.default({}) })
    .default({ name: "fixed", options: {} }),
  /** DAPO dynamic sampling: extra generation rounds until B groups with non-zero reward variance. */
  dynamicSampling: z
    .strictObject({
      /** Generation rounds per step at most (verl `max_num_gen_batches`). */
      maxRounds: z.number().int().positive().default(3),
      /** At the cap: fail (verl) or train on the groups kept so far. */
      onCap: z.enum(["error", "train-partial"]).default("error"),
    })
    .optional(),
  /** Rollout wrapper (wrappers/): igrpo, sage, scaf_grpo, dagrpo, ps_grpo, mqr; none = direct sampling. */
  wrapper: z.strictObject({ name: z.string().min(1), options: options.default({}) }).optional(),
  /** What counts as a success for pass rates (VAS, GDRO, V₀) and hint wrappers: `reward` > `threshold`. */
  success: z
    .strictObject({
      /** Reward function name; default "correctness" when configured, else the first reward function. */
      reward: z.string().min(1).optional(),
      threshold: z.number().default(0.5),
    })
    .default({ threshold: 0.5 }),
});

export type RolloutConfig = z.output<typeof rolloutConfigSchema>;
export type RolloutConfigInput = z.input<typeof rolloutConfigSchema>;

/** Validates `algo.rollout`; throws `ConfigError` naming the key path (prefix `root`). */
export function parseRolloutConfig(input: unknown, root = "algo.rollout"): RolloutConfig {
  const r = rolloutConfigSchema.safeParse(input ?? {});
  if (!r.success) throw zodConfigError(r.error, root, rolloutConfigSchema, input);
  return r.data;
}

/** The first zod issue as a ConfigError with its full key path (an unknown key: with the keys allowed there). */
export function zodConfigError(error: z.ZodError, root: string, schema?: z.ZodType, input?: unknown): ConfigError {
  return configErrorFromIssues(error.issues, input, "check the spelling against the documented fields", schema, [root]);
}

/** Validates a component's options against its schema (strict), naming `path` on failure. */
export function parseComponentOptions<S extends z.ZodType>(schema: S, input: unknown, path: string): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (!r.success) throw zodConfigError(r.error, path, schema, input);
  return r.data;
}
