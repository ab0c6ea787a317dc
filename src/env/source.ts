/**
 * Episodes as training rows for the trainer (src/train/trainer.ts), with `env:` in the run config.
 *
 * - An environment's tasks are served as a `Task` (`EpisodeSource.task`), so prompt samplers, budget
 *   allocators and dynamic sampling draw and group them like any task: one group = G episodes of a task.
 * - `rollout` plays the episodes and returns one row per episode: prompt = first observation, completion =
 *   actions and observations with a loss mask with holes (`EpisodeCompletion.lossMask`) and the sampler's
 *   log-probs on action tokens.
 * - `advantages` turns the rewards into per-token advantages through the run's pipeline (src/algo/pipeline.ts).
 *   Estimators that declare step rows (`AdvantageDef.rows`: GiGPO, Step-GRPO, Dr. MAS, M-GRPO, Hi-Agent) read
 *   one row per step and their per-step advantage is broadcast to that turn's action tokens; every other
 *   estimator (GRPO, RLOO, …) reads one row per episode with the episode return R^E = Σ_t r_t.
 * - `evaluate` plays the held-out tasks and reports the success rate.
 * @module
 */

import { advantageEstimators } from "../algo/advantage.js";
import type { AgentRewardBatch } from "../algo/agent.js";
import {
  applySampleFilters,
  combineAndShape,
  type Pipeline,
  type RewardStage,
  type StageInputs,
} from "../algo/pipeline.js";
import type { RewardBatch } from "../algo/types.js";
import { CohortError, ConfigError } from "../errors.js";
import type { Completion, LocalSampler, Sampler } from "../model/sampler.js";
import type { NamedReward } from "../reward/types.js";
import type { Rng } from "../task/rng.js";
import type { Problem, Split, Task } from "../task/types.js";
import { type Tensor, tensor } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { createEnv, type EnvConfig } from "./registry.js";
import { type Episode, EpisodeRoller, type RollParams } from "./roller.js";
import type { EnvFactory } from "./types.js";

/** A training row made of an episode: a `Completion` plus its loss mask with holes. */
export interface EpisodeCompletion extends Completion {
  /** 1 = action token, 0 = observation / template token; one per completion token. */
  lossMask: number[];
  episode: Episode;
}

export function isEpisodeCompletion(c: Completion): c is EpisodeCompletion {
  return Array.isArray((c as Partial<EpisodeCompletion>).lossMask);
}

/** The row view of an episode (finish reason "length" when the token limit cut it). */
export function episodeCompletion(ep: Episode): EpisodeCompletion {
  return {
    tokens: ep.tokens,
    logprobs: ep.logprobs,
    finishReason: ep.finish === "tokens" ? "length" : "stop",
    lossMask: ep.lossMask,
    episode: ep,
  };
}

/**
 * Agent fields of single-turn rows: each completion is a one-step episode (its own trajectory, step 0, agent
 * 0) whose anchor state is its prompt, so the agent estimators reduce to their one-step form on plain tasks.
 */
export function oneStepEpisodes(
  problems: readonly { id: string }[],
): Required<Pick<RewardBatch, "trajectoryIndex" | "stepIndex" | "observationKey" | "agentId">> {
  const n = problems.length;
  return {
    trajectoryIndex: Int32Array.from({ length: n }, (_, i) => i),
    stepIndex: new Int32Array(n),
    observationKey: problems.map((p) => p.id),
    agentId: new Int32Array(n),
  };
}

/** Loss masks with holes as an [N, C] f32 tensor (C = longest completion; padding 0). */
export function holeMask(rows: readonly EpisodeCompletion[], C = Math.max(1, ...rows.map((r) => r.tokens.length))) {
  const flat = new Float32Array(rows.length * C);
  rows.forEach((r, i) => {
    flat.set(r.lossMask.slice(0, C), i * C);
  });
  return tensor(flat, { shape: [rows.length, C], dtype: "f32" });
}

/** Mean of the values at action tokens. */
export function meanAt(values: readonly number[], mask: readonly number[]): number {
  let s = 0;
  let n = 0;
  mask.forEach((m, j) => {
    if (m > 0) {
      s += values[j] as number;
      n++;
    }
  });
  return n > 0 ? s / n : 0;
}

const mean = (xs: readonly number[]): number => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Success rate, return, turns and action validity of some episodes, under `env/…` keys. */
export function episodeMetrics(eps: readonly Episode[]): Record<string, number> {
  const steps = eps.flatMap((e) => e.steps);
  return {
    "env/success_rate": mean(eps.map((e) => (e.success ? 1 : 0))),
    "env/return_mean": mean(eps.map((e) => e.totalReward)),
    "env/turns_mean": mean(eps.map((e) => e.steps.length)),
    "env/valid_action_rate": mean(steps.map((s) => (s.info.valid === false ? 0 : 1))),
    "env/tool_calls_mean": mean(eps.map((e) => e.steps.filter((s) => s.info.tool !== undefined).length)),
    "env/truncated_rate": mean(eps.map((e) => (e.finish === "tokens" ? 1 : 0))),
  };
}

/** The environment of a run: its tasks, its episodes as rows, their advantages, evaluation. */
export class EpisodeSource {
  readonly factory: EnvFactory;
  readonly roller: EpisodeRoller;
  /** The environment's tasks as a `Task` (problem = first observation; meta.task = the task data). */
  readonly task: Task;
  /** The episode return is the run's one reward (named "env"). */
  readonly rewards: NamedReward[];

  constructor(
    readonly cfg: EnvConfig,
    readonly tok: Tokenizer,
    path = "env",
  ) {
    this.factory = createEnv(cfg.name, cfg.options, path);
    const template = cfg.template === "auto" ? (tok.kind === "char" ? "text" : "chat") : cfg.template;
    this.roller = new EpisodeRoller(this.factory, tok, {
      template,
      ...(cfg.maxTurns !== undefined ? { maxTurns: cfg.maxTurns } : {}),
      ...(cfg.maxActionTokens !== undefined ? { maxActionTokens: cfg.maxActionTokens } : {}),
      ...(cfg.maxEpisodeTokens !== undefined ? { maxEpisodeTokens: cfg.maxEpisodeTokens } : {}),
    });
    const factory = this.factory;
    this.task = {
      name: `env:${factory.name}`,
      sample(rng: Rng, split: Split): Problem {
        const d = factory.sampleTask(rng, split);
        return { id: d.id, prompt: factory.make().reset(0, d.task), meta: { task: d.task } };
      },
      verify: () => ({
        correct: false,
        format: false,
        reason: "an environment task is scored by playing an episode, not by checking a text",
      }),
    };
    this.rewards = [
      {
        name: "env",
        fn: () => {
          throw new CohortError("the env reward is the episode return, computed while the episode is played");
        },
      },
    ];
  }

  /** Plays one episode per row (`seeds[i]` seeds row i's environment and sampling). */
  play(sampler: LocalSampler, problems: readonly Problem[], seeds: readonly number[], p: RollParams): Episode[] {
    return this.roller.roll(
      sampler,
      problems.map((pr) => taskOf(pr)),
      seeds,
      p,
    );
  }

  /**
   * `counts[b]` episodes of `problems[b]` (0 = skipped), as trainer rows grouped by problem; `seedOf(i)` is
   * the seed of row i. `sampler`: the local sampler or rollout workers (`sampler: {kind: openai}`);
   * `contextLength`: the policy's context, which bounds the episodes.
   */
  async rollout(
    sampler: Sampler,
    contextLength: number,
    problems: readonly Problem[],
    counts: readonly number[],
    seedOf: (i: number) => number,
    p: RollParams,
  ): Promise<{
    prompts: number[][];
    completions: EpisodeCompletion[];
    texts: string[];
    problems: Problem[];
    groupIndex: Int32Array;
  }> {
    const rows: Problem[] = [];
    const groupIndex: number[] = [];
    let group = 0;
    problems.forEach((pr, b) => {
      const n = counts[b] as number;
      if (n <= 0) return;
      for (let g = 0; g < n; g++) {
        rows.push(pr);
        groupIndex.push(group);
      }
      group++;
    });
    const eps = await this.roller.rollWith(
      sampler,
      contextLength,
      rows.map((pr) => taskOf(pr)),
      rows.map((_, i) => seedOf(i)),
      p,
    );
    return {
      prompts: eps.map((e) => e.prompt),
      completions: eps.map(episodeCompletion),
      texts: eps.map((e) => this.tok.decode(e.tokens, { skipSpecialTokens: true })),
      problems: rows,
      groupIndex: Int32Array.from(groupIndex),
    };
  }

  /** Per-function rewards [K = 1][N]: the episode returns. */
  scores(rows: readonly Completion[]): Float64Array[] {
    return [Float64Array.from(rows, (c) => episodesOf([c])[0]!.totalReward)];
  }

  /**
   * Advantages of episode rows (ALGORITHMS.md §C order: combine/shape → estimate → reweight → sample filters).
   * Step-level estimators (`AdvantageDef.rows`) get one row per step and return one value per step, which goes
   * to that step's action tokens: the result is then [N, C] per token. Metrics: `env/…` of the episodes.
   */
  advantages(
    pipeline: Pipeline,
    byFn: Float64Array[],
    rows: readonly Completion[],
    groupIndex: Int32Array,
    inputs: Omit<StageInputs, "mask"> = {},
    problems?: readonly Problem[],
  ): RewardStage {
    const eps = episodesOf(rows);
    const ecs = rows as readonly EpisodeCompletion[];
    const base = {
      groupIndex,
      ...(problems ? { fields: problems.map((p) => taskFields(taskOf(p))) } : {}),
      lengths: Int32Array.from(eps, (e) => e.tokens.length),
      meanLogprobs: Float64Array.from(eps, (e) => meanAt(e.logprobs, e.lossMask)),
      truncated: Uint8Array.from(eps, (e) => (e.finish === "tokens" ? 1 : 0)),
    };
    const C = Math.max(1, ...eps.map((e) => e.tokens.length));
    const mask = holeMask(ecs, C);
    try {
      const level = advantageEstimators.get(pipeline.algo.advantage.estimator).rows;
      let stage: RewardStage;
      if (level === undefined) {
        stage = pipeline.advantages(byFn, base, { ...inputs, mask });
      } else {
        stage = stepAdvantages(pipeline, byFn, eps, base, mask, level);
      }
      Object.assign(stage.metrics, episodeMetrics(eps));
      return stage;
    } finally {
      mask.dispose();
    }
  }

  /** Plays each held-out problem once (`p.temperature` 0 = greedy); accuracy = success rate. */
  evaluate(
    sampler: LocalSampler,
    problems: readonly Problem[],
    seeds: readonly number[],
    p: RollParams,
    logSamples = 0,
    step = 0,
  ): { accuracy: number; format: number; samples: Record<string, unknown>[]; metrics: Record<string, number> } {
    const eps = this.play(sampler, problems, seeds, p);
    const m = episodeMetrics(eps);
    const samples = eps.slice(0, logSamples).map((e, i) => ({
      step,
      prompt: problems[i]!.prompt,
      completion: this.tok.decode(e.tokens, { skipSpecialTokens: true }),
      correct: e.success,
      return: e.totalReward,
      turns: e.steps.length,
    }));
    return {
      accuracy: m["env/success_rate"] as number,
      format: m["env/valid_action_rate"] as number,
      samples,
      metrics: m,
    };
  }
}

/** The scalar fields of an environment task (its hop count, size, …): the prompt fields estimators may group by. */
function taskFields(task: unknown): Record<string, unknown> {
  if (task === null || typeof task !== "object") return {};
  return Object.fromEntries(
    Object.entries(task).filter(([, v]) => typeof v === "number" || typeof v === "string" || typeof v === "boolean"),
  );
}

function taskOf(p: Problem): unknown {
  const t = (p.meta as { task?: unknown }).task;
  if (t === undefined) {
    throw new CohortError(`problem ${p.id} carries no environment task (meta.task); draw it from EpisodeSource.task`);
  }
  return t;
}

function episodesOf(rows: readonly Completion[]): Episode[] {
  return rows.map((c, i) => {
    if (!isEpisodeCompletion(c)) {
      throw new CohortError(`row ${i} is not an episode; environment advantages need rows from EpisodeSource.rollout`);
    }
    return c.episode;
  });
}

/** The step-level path: one estimator row per step, advantages broadcast to each step's action tokens. */
function stepAdvantages(
  pipeline: Pipeline,
  byFn: Float64Array[],
  eps: readonly Episode[],
  base: Omit<RewardBatch, "rewards" | "rewardsByFn">,
  mask: Tensor,
  reward: "step" | "episode",
): RewardStage {
  const algo = pipeline.algo;
  const episodes = combineAndShape(algo, byFn, base, mask); // R^E per episode (combined, shaped)
  const rewards: number[] = [];
  const stepGroup: number[] = [];
  const trajectoryIndex: number[] = [];
  const stepIndex: number[] = [];
  const observationKey: string[] = [];
  const actionKey: string[] = [];
  const agentId: number[] = [];
  const episodeRewards: number[] = [];
  const fields: Record<string, unknown>[] = [];
  const executed: number[] = [];
  const lengths: number[] = [];
  const spans: [number, number, number][] = []; // episode, start, end
  eps.forEach((e, i) => {
    const rE = episodes.rewards[i] as number;
    e.steps.forEach((s, t) => {
      rewards.push(reward === "step" ? s.reward : rE);
      stepGroup.push(base.groupIndex[i] as number);
      trajectoryIndex.push(i);
      stepIndex.push(t);
      observationKey.push(s.stateKey);
      actionKey.push(s.action);
      agentId.push(s.info.agent ?? 0);
      episodeRewards.push(rE);
      if (base.fields) fields.push(base.fields[i] as Record<string, unknown>);
      executed.push(s.info.executed === true ? 1 : 0);
      lengths.push(s.end - s.start);
      spans.push([i, s.start, s.end]);
    });
  });
  const steps: AgentRewardBatch = {
    rewards: Float64Array.from(rewards),
    groupIndex: Int32Array.from(stepGroup),
    trajectoryIndex: Int32Array.from(trajectoryIndex),
    stepIndex: Int32Array.from(stepIndex),
    observationKey,
    actionKey,
    agentId: Int32Array.from(agentId),
    episodeRewards: Float64Array.from(episodeRewards),
    ...(base.fields ? { fields } : {}),
    executed: Uint8Array.from(executed),
    lengths: Int32Array.from(lengths),
  };
  const { advantages: adv, estimated } = pipeline.estimate(steps);
  if (estimated !== adv && estimated.kind === "token") estimated.values.dispose();
  if (adv.kind !== "sequence") {
    adv.values.dispose();
    throw new ConfigError(
      `estimator "${algo.advantage.estimator}" reads one row per agent step and must return one advantage per step`,
      "algo.advantage.estimator",
    );
  }
  const [N, C] = mask.shape as [number, number];
  const flat = new Float32Array(N * C);
  spans.forEach(([i, s, e], k) => {
    flat.fill(adv.values[k] as number, i * C + s, i * C + e);
  });
  const { keep, metrics } = applySampleFilters(algo, episodes);
  const { mask: _, ...batch } = episodes;
  const values = tensor(flat, { shape: [N, C], dtype: "f32" });
  return { batch, advantages: { kind: "token", values }, estimated: adv, keep, metrics };
}
