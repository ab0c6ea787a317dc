/**
 * The RolloutWrapper slot (ALGORITHMS.md §C): how the completions of a step's prompts are obtained. The
 * default is direct sampling (no wrapper); a wrapper may rewrite prompts, sample in several stages or
 * re-sample with hints. A wrapper never changes the reward functions: every row is scored against its
 * original `Problem`, whatever prompt text was sampled from; the loss sees the prompt tokens that were
 * actually sampled from. (PS-GRPO's group-similarity reward is the one exception: it replaces the success
 * reward's row of its batch, see ps-grpo.ts.)
 * @module
 */
import { Registry } from "../../algo/registry.js";
import type { Problem, Task } from "../../task/types.js";
import type { ScoredRollout } from "../dynamic.js";

/** What the trainer lends a wrapper for one generation round. */
export interface WrapperHost<C> {
  /** The training step (1-based). */
  readonly step: number;
  /** G of the run (`train.groupSize`). */
  readonly groupSize: number;
  /**
   * Samples `counts[b]` completions of `problems[b]` (0 = skipped) and scores them with the unchanged reward
   * functions against `problems[b]`. `promptTexts[b]`, when given, is the text sampled from instead of
   * `problems[b].prompt`. Each call uses fresh request seeds.
   */
  sample(
    problems: readonly Problem[],
    counts: readonly number[],
    promptTexts?: readonly (string | undefined)[],
  ): Promise<ScoredRollout<C>>;
  /**
   * Text the policy writes for each of `promptTexts` (one completion each, the run's sampler and sampling
   * parameters, fresh request seeds after those of the step's rows so far). Nothing is scored and nothing
   * becomes a training row (SAGE's hint writing).
   */
  generate(promptTexts: readonly string[]): Promise<string[]>;
  /** Whether row `i` of `batch` is a success (`algo.rollout.success`: reward > threshold; NaN fails). */
  success(batch: ScoredRollout<C>, i: number): boolean;
  /** Value of the success reward of row `i` (NaN when it failed to score). */
  reward(batch: ScoredRollout<C>, i: number): number;
  /** Row of `byFn` that holds the success reward (`algo.rollout.success.reward`). */
  readonly successIndex: number;
  /** The run's task (its verifier extracts answers; some tasks also write paraphrases). */
  readonly task: Task;
  /**
   * Off-policy rows (DaGRPO anchors): `completions[b]` (text; EOS is appended) becomes one row, in its own
   * group, of `problems[b]`, sampled from `promptTexts[b]` ?? the problem's prompt, scored with the unchanged
   * reward functions. Nothing is sampled: the row's log-probs are the training model's (no sampler log-prob
   * exists), and the trainer leaves it out of the sampler/trainer log-prob mismatch metric.
   */
  offPolicy(
    problems: readonly Problem[],
    completions: readonly string[],
    promptTexts?: readonly (string | undefined)[],
  ): Promise<ScoredRollout<C>>;
}

export interface WrapperResult<C> {
  /** The rows to train on, grouped by `groupIndex` 0..groups−1. */
  batch: ScoredRollout<C>;
  metrics: Record<string, number>;
}

export interface RolloutWrapper {
  /** One round: `counts[b]` is the allocator's budget for `problems[b]` (Σ = what plain sampling would use). */
  rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]): Promise<WrapperResult<C>>;
  /** A stateful wrapper's JSON state (Scaf-GRPO's plateau trigger), kept in checkpoints with the rollout plan. */
  state?(): Record<string, unknown>;
  load?(state: Record<string, unknown>): void;
}

/** `(options, path)` → wrapper; options are validated by the wrapper's own zod schema, naming `path`. */
export type RolloutWrapperFactory = (options: Record<string, unknown>, path: string) => RolloutWrapper;

export const rolloutWrappers = new Registry<RolloutWrapperFactory>("rollout wrapper");

/** Rows of `batch` in group `g`, in order. */
export function groupRows<C>(batch: ScoredRollout<C>): number[][] {
  const out: number[][] = [];
  batch.groupIndex.forEach((g, i) => {
    while (out.length <= g) out.push([]);
    (out[g] as number[]).push(i);
  });
  return out;
}

export { assemble, type RowPart } from "../dynamic.js";

/** Fills the `{name}` placeholders of a template (unknown placeholders are kept verbatim). */
export function fillTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => values[k] ?? m);
}

export function mean(xs: readonly number[]): number {
  return xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0;
}
