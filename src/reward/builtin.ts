/**
 * Built-in rewards over a Task's verifier: `correctness` (1 when the answer is right, else 0) and `format`
 * (1 when the completion has exactly one well-formed answer span, else 0). They are separate so that a
 * run can weight, log or drop them independently. `distinct_2` and `perspective` are MultiRole-R1's diversity
 * rewards (process.ts), which read only the completion.
 * @module
 */
import { Registry } from "../algo/registry.js";
import { ConfigError } from "../errors.js";
import { isRankingTask, ndcg } from "../task/ranking.js";
import type { Problem, Task } from "../task/types.js";
import { distinctN, perspectiveDiversity, roleTags } from "./process.js";
import type { RewardFn, RewardSample } from "./types.js";

/** The reward-function view of a problem and one completion of it. */
export function toRewardSample(problem: Problem, completion: string): RewardSample {
  const s: RewardSample = { prompt: problem.prompt, completion, fields: problem.meta, id: problem.id };
  if (problem.answer !== undefined) s.answer = problem.answer;
  return s;
}

/** The problem a reward sample was made from (inverse of toRewardSample). */
export function problemOf(sample: RewardSample): Problem {
  const p: Problem = { id: sample.id ?? "", prompt: sample.prompt, meta: sample.fields };
  if (sample.answer !== undefined) p.answer = sample.answer;
  return p;
}

/** 1 when `task.verify` says the answer is correct, else 0. */
export function correctnessReward(task: Task): RewardFn {
  return (s) => (task.verify(problemOf(s), s.completion).correct ? 1 : 0);
}

/** 1 when `task.verify` says the answer format is right, else 0. */
export function formatReward(task: Task): RewardFn {
  return (s) => (task.verify(problemOf(s), s.completion).format ? 1 : 0);
}

/** NDCG of a ranking task's list (src/task/ranking.ts); a task that does not rank items is refused. */
export function ndcgReward(task: Task): RewardFn {
  if (!isRankingTask(task))
    throw new ConfigError(
      `reward "ndcg" scores ranked lists; task "${task.name}" does not rank items (use a ranking task such as nearest)`,
      "rewards",
    );
  return (s) => ndcg(task.rank(problemOf(s), s.completion));
}

/** What a built-in reward is built from. */
export interface BuiltinRewardContext {
  task: Task;
}

/** Built-in rewards by name. */
export const builtinRewards = new Registry<(ctx: BuiltinRewardContext) => RewardFn>("built-in reward");
builtinRewards.register("correctness", (ctx) => correctnessReward(ctx.task));
builtinRewards.register("format", (ctx) => formatReward(ctx.task));
/** MultiRole-R1's lexical diversity of the completion: distinct-2 of its whitespace tokens (process.ts). */
builtinRewards.register("distinct_2", () => (s) => distinctN(s.completion, 2));
/** MultiRole-R1's perspective diversity: min(#distinct `<role>…</role>` tags, 3)/3 (process.ts). */
builtinRewards.register("perspective", () => (s) => perspectiveDiversity(roleTags(s.completion), 3));
/** NDCG of a ranked list (ranking tasks such as `nearest`). */
builtinRewards.register("ndcg", (ctx) => ndcgReward(ctx.task));
