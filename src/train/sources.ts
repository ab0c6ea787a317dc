/**
 * Rollout sources: where a training step's scored rollouts come from. The loop asks its source for step k's
 * batch and knows nothing else about sampling.
 *
 * - `planSource`: the rollout plan of the config (src/rollout: prompt sampler → budget allocator → rollout
 *   wrapper or plain sampling, dynamic sampling's extra rounds) over a `Generate` function and a `Score`
 *   function. `textGenerate` samples completions from any `Sampler` (the local KV-cache sampler, or the rollout
 *   workers of `sampler: {kind: openai}`); `episodeGenerate` plays multi-turn episodes of an environment.
 * - `feedSource`: a decorator that orders rollouts, weight pushes and updates (`sampler.overlap`: batches
 *   generated ahead on rollout workers while the current step trains; src/serve/remote-sampler.ts).
 *
 * A new source is any object with `collect` (and `state`/`load` when it has state to checkpoint).
 * @module
 */
import type { AlgoConfig } from "../algo/config.js";
import type { Pipeline, RewardStage, StageInputs } from "../algo/pipeline.js";
import { toRewardMatrix } from "../algo/rewards.js";
import type { RollParams } from "../env/roller.js";
import type { EpisodeSource } from "../env/source.js";
import { packBatch } from "../model/batch.js";
import type { CausalLM } from "../model/llama.js";
import type { Completion, Sampler, SamplingParams } from "../model/sampler.js";
import type { DataParallel } from "../parallel/index.js";
import { toRewardSample } from "../reward/builtin.js";
import { type NamedPreference, scorePreferences } from "../reward/preference.js";
import { scoreAll } from "../reward/score.js";
import type { NamedReward, RewardSample } from "../reward/types.js";
import {
  allocationMetrics,
  concatGroups,
  dynamicSampling,
  groupsWithVariance,
  type RolloutPlan,
  type ScoredRollout,
  type WrapperHost,
} from "../rollout/index.js";
import { type RemoteRollouts, RolloutFeed } from "../serve/remote-sampler.js";
import { mix32, Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import { noGrad, tidy } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";

/** The rows of a step: one per completion (or episode), grouped. */
export interface Rollout {
  prompts: number[][];
  completions: Completion[];
  texts: string[];
  problems: Problem[];
  groupIndex: Int32Array;
}

/** A step's scored rollouts and what it cost. */
export interface Collected {
  ro: Rollout;
  /** Rewards [K][N] per reward function (NaN = not applicable). */
  byFn: Float64Array[];
  failures: number;
  sampledTokens: number;
  samplingMs: number;
  metrics: Record<string, number>;
}

export interface RolloutSource<C = Collected> {
  /** The scored rollouts of optimizer step `step` (1-based). */
  collect(step: number): Promise<C>;
  /** Called once before the first step with the last step this run trains. */
  begin?(lastStep: number): void;
  /** The source's resumable state (data RNG, rollout plan), for checkpoints. */
  state?(): Record<string, unknown>;
  load?(state: Record<string, unknown>): void;
  /** Metrics of the last `collect` to log with the step (rollout workers, waits). */
  metrics?(): Record<string, number>;
  /**
   * The advantage stage of its rows when they are not plain completions (episodes: step rows, hole masks);
   * absent: the pipeline's stage over the completions.
   */
  stage?(pl: Pipeline, col: C, inputs: StageInputs): RewardStage;
  /** Finishes work under way (batches generated ahead) and releases connections. */
  close?(): Promise<void>;
}

/** Seed of request `i` of a step: a hash of (run seed, step, i), so sampling does not depend on history. */
export function requestSeed(seed: number, step: number, i: number): number {
  return mix32(seed * 0x9e3779b1 + step * 0x85ebca6b + i * 0xc2b2ae35);
}

/** Prompt text → token ids (BOS first when the tokenizer has one). */
export function encodePrompt(tok: Tokenizer, text: string): number[] {
  const ids = tok.encode(text);
  return tok.bosId !== null ? [tok.bosId, ...ids] : ids;
}

export function completionText(tok: Tokenizer, c: Completion): string {
  return tok.decode(c.tokens, { skipSpecialTokens: true });
}

/**
 * `counts[b]` completions of `problems[b]` (0 = skipped); `seed(i)` is the i-th request's seed. `promptTexts[b]`,
 * when given, is sampled from instead of `problems[b].prompt` (rollout wrappers); rows keep `problems[b]`.
 */
export type Generate = (
  problems: readonly Problem[],
  counts: readonly number[],
  seed: (i: number) => number,
  promptTexts?: readonly (string | undefined)[],
) => Promise<Rollout>;

/** Completions from a `Sampler` (local or remote), G per prompt, in one batched request per round. */
export function textGenerate(sampler: Sampler, tok: Tokenizer, params: Omit<SamplingParams, "seed">): Generate {
  return async (problems, counts, seed, promptTexts) => {
    const prompts: number[][] = [];
    const groupIndex: number[] = [];
    const perRow: Problem[] = [];
    let group = 0;
    problems.forEach((p, b) => {
      const n = counts[b] as number;
      if (n <= 0) return;
      const ids = encodePrompt(tok, promptTexts?.[b] ?? p.prompt);
      for (let g = 0; g < n; g++) {
        groupIndex.push(group);
        prompts.push(ids);
        perRow.push(p);
      }
      group++;
    });
    const completions = await sampler.generate(prompts, { ...params, seed: prompts.map((_, i) => seed(i)) });
    return {
      prompts,
      completions,
      texts: completions.map((c) => completionText(tok, c)),
      problems: perRow,
      groupIndex: Int32Array.from(groupIndex),
    };
  };
}

/** Episodes of an environment, their turns sampled from `sampler` (the local one or the rollout workers). */
export function episodeGenerate(
  env: EpisodeSource,
  sampler: Sampler,
  maxPositions: number,
  params: RollParams,
): Generate {
  return async (problems, counts, seed) => env.rollout(sampler, maxPositions, problems, counts, seed, params);
}

/** Mean sampled-token log-prob of each row under π_old (0 for an empty completion). */
export function meanLogprobsOf(ro: Rollout): Float64Array {
  return Float64Array.from(ro.completions, (c) =>
    c.logprobs.length ? c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length : 0,
  );
}

/** A completion that was not sampled from the policy (a DaGRPO anchor). */
type OffPolicyCompletion = Completion & { offPolicy: true };

export function isOffPolicy(c: Completion): boolean {
  return (c as Partial<OffPolicyCompletion>).offPolicy === true;
}

/**
 * `WrapperHost.offPolicy`: one row (its own group) per problem whose completion is `texts[b]` + EOS, prompted
 * by `promptTexts[b]` ?? the problem's prompt. No sampler log-prob exists for these rows: their `logprobs`
 * are the training model's at the sampling temperature, computed here without grad (= ℓ_old of the step).
 */
export function offPolicyRollout(
  model: CausalLM,
  tok: Tokenizer,
  temperature: number,
  problems: readonly Problem[],
  texts: readonly string[],
  promptTexts?: readonly (string | undefined)[],
): Rollout {
  const prompts = problems.map((p, b) => encodePrompt(tok, promptTexts?.[b] ?? p.prompt));
  const tokens = texts.map((t) => [...tok.encode(t), tok.eosId]);
  const { lp, C } = noGrad(() =>
    tidy(() => {
      const packed = packBatch(prompts, tokens, { padId: tok.padId });
      const P = packed.promptLength;
      const r = model.logprobs(packed, { temperature });
      // [n, C] completion columns
      return { lp: r.lp.slice(1, P).to("f64").data() as Float64Array, C: (packed.inputIds.shape[1] as number) - P };
    }),
  );
  const completions: OffPolicyCompletion[] = tokens.map((ids, b) => ({
    tokens: ids,
    logprobs: Array.from(lp.subarray(b * C, b * C + ids.length)),
    finishReason: "stop",
    offPolicy: true,
  }));
  return {
    prompts,
    completions,
    texts: completions.map((c) => completionText(tok, c)),
    problems: [...problems],
    groupIndex: Int32Array.from(problems, (_, b) => b),
  };
}

/** Scores a round: rewards [K][N], the number of failed calls and (optionally) metrics of the round. */
export type Score = (
  step: number,
  ro: Rollout,
) => Promise<{ byFn: Float64Array[]; failures: number; metrics?: Record<string, number> }>;

/** The reward functions, with failures reported to `onFailures` (reward_failures.jsonl, a diagnostic). */
export function rewardScore(
  rewards: NamedReward[],
  opts: { timeoutMs: number; concurrency: number },
  onFailures: (step: number, failures: { reward: string; kind: string; message: string; sample: unknown }[]) => void,
): Score {
  return async (step, ro) => {
    const samples: RewardSample[] = ro.problems.map((p, i) => toRewardSample(p, ro.texts[i] as string));
    const scored = await scoreAll(rewards, samples, opts);
    if (scored.failures.length > 0) onFailures(step, scored.failures);
    return { byFn: toRewardMatrix(scored.rewards), failures: scored.failures.length };
  };
}

/**
 * Preferences instead of rewards: every group's completions are compared pairwise and each row's one reward is
 * its win rate against the rest of its group (src/reward/preference.ts). Failed calls count as ties and are
 * reported to `onFailures`.
 */
export function preferenceScore(
  pref: NamedPreference,
  opts: { timeoutMs: number; concurrency: number },
  onFailures: (step: number, failures: { reward: string; kind: string; message: string; sample: unknown }[]) => void,
  /** Metrics of a round's completions (rps_style: the style shares, src/train/preference-eval.ts). */
  roundMetrics?: (texts: readonly string[]) => Record<string, number>,
): Score {
  return async (step, ro) => {
    const s = await scorePreferences(pref.fn, ro.problems, ro.texts, ro.groupIndex, opts);
    if (s.failures.length > 0)
      onFailures(
        step,
        s.failures.map((f) => ({ reward: pref.name, ...f })),
      );
    return {
      byFn: [s.winRates],
      failures: s.failures.length,
      ...(roundMetrics ? { metrics: roundMetrics(ro.texts) } : {}),
    };
  };
}

/** An environment's episode returns. */
export function episodeScore(env: EpisodeSource): Score {
  return async (_step, ro) => ({ byFn: env.scores(ro.completions), failures: 0 });
}

export interface PlanSourceOptions {
  plan: RolloutPlan;
  algo: AlgoConfig;
  task: Task;
  rewardCount: number;
  generate: Generate;
  score: Score;
  /** DaGRPO anchors: log-prob rows from the training model. */
  offPolicy: (
    problems: readonly Problem[],
    texts: readonly string[],
    promptTexts?: readonly (string | undefined)[],
  ) => Rollout;
  promptsPerStep: number;
  groupSize: number;
  /** The run's seed (data order and request seeds). */
  seed: number;
  /** With data parallelism: this process's share of each draw. */
  dist: DataParallel | null;
}

/**
 * The step's scored rollouts: prompts from the prompt sampler, completions per prompt from the budget
 * allocator (total B·G), and with dynamic sampling further rounds until B groups have reward variance.
 * Every round's outcomes update the sampler and the pass-rate history. The data RNG and the plan's state are
 * checkpointed.
 */
export function planSource(o: PlanSourceOptions): RolloutSource {
  const { plan, dist } = o;
  // with data parallelism the ranks of a split plan share one data stream; else each has its own
  const streamSeed = dist ? dist.streamSeed(o.seed) : o.seed;
  let rng = Rng.fromSeed(BigInt(streamSeed));
  const collect = async (step: number): Promise<Collected> => {
    // with data parallelism: this rank's B/N prompts; request seeds continue from its first global row
    const B = dist ? dist.localPrompts(o.promptsPerStep) : o.promptsPerStep;
    const total = B * o.groupSize;
    let offset = dist ? dist.firstRow(o.promptsPerStep, o.groupSize) : 0;
    let failures = 0;
    let sampledTokens = 0;
    let samplingMs = 0;
    const counts: number[] = [];
    const wrapperMetrics: Record<string, number>[] = [];
    /** One generation call at the step's running request offset, scored. */
    const sampleScored = async (
      ps: readonly Problem[],
      cs: readonly number[],
      texts?: readonly (string | undefined)[],
    ): Promise<ScoredRollout<Completion>> => {
      const t = performance.now();
      const base = offset;
      const ro = await o.generate(ps, cs, (i) => requestSeed(streamSeed, step, base + i), texts);
      samplingMs += performance.now() - t;
      offset += ro.completions.length;
      for (const c of ro.completions) sampledTokens += c.tokens.length;
      const sc = await o.score(step, ro);
      failures += sc.failures;
      if (sc.metrics) wrapperMetrics.push(sc.metrics);
      return { ...ro, byFn: sc.byFn };
    };
    const runRound = async (): Promise<ScoredRollout<Completion>> => {
      const problems =
        dist?.mode === "split" ? dist.share(plan.sampler.next(o.promptsPerStep, rng)) : plan.sampler.next(B, rng);
      const alloc = plan.allocator.allocate(problems, plan.history, total);
      counts.push(...alloc);
      if (plan.wrapper !== undefined) {
        const res = await plan.wrapper.rollout(wrapperHost, problems, alloc);
        wrapperMetrics.push(res.metrics);
        const b = res.batch;
        plan.record(plan.outcomes(b.problems, b.groupIndex, b.byFn, b.texts));
        return b;
      }
      const r = await sampleScored(problems, alloc);
      // plain GRPO sampling reads no outcome, so its checkpoints carry no pass-rate history
      if (!plan.isDefault) plan.record(plan.outcomes(r.problems, r.groupIndex, r.byFn, r.texts));
      return r;
    };
    /** The sampling and scoring a rollout wrapper calls (seeds continue the step's request offsets). */
    const wrapperHost: WrapperHost<Completion> = {
      step,
      groupSize: o.groupSize,
      sample: async (ps, cs, texts) => {
        if (!cs.some((n) => n > 0)) {
          const none = { prompts: [], completions: [], texts: [], problems: [], groupIndex: new Int32Array(0) };
          return { ...none, byFn: Array.from({ length: o.rewardCount }, () => new Float64Array(0)) };
        }
        return sampleScored(ps, cs, texts);
      },
      generate: async (texts) => {
        if (texts.length === 0) return [];
        const t = performance.now();
        const base = offset;
        const ps = texts.map((prompt, b) => ({ id: `hint/${b}`, prompt, meta: {} }));
        const ro = await o.generate(
          ps,
          ps.map(() => 1),
          (i) => requestSeed(streamSeed, step, base + i),
        );
        samplingMs += performance.now() - t;
        offset += ro.completions.length;
        for (const c of ro.completions) sampledTokens += c.tokens.length;
        return ro.texts;
      },
      success: (batch, i) => plan.isSuccess(batch.byFn, i),
      reward: (batch, i) => plan.successReward(batch.byFn, i),
      successIndex: plan.successIndex,
      task: o.task,
      offPolicy: async (ps, texts, promptTexts) => {
        const r = o.offPolicy(ps, texts, promptTexts);
        const sc = await o.score(step, r);
        failures += sc.failures;
        return { ...r, byFn: sc.byFn };
      },
    };
    const ds = plan.cfg.dynamicSampling;
    const metrics: Record<string, number> = {};
    let scored: ScoredRollout<Completion>;
    if (ds === undefined) {
      scored = await runRound();
    } else {
      const res = await dynamicSampling(B, ds, async () => {
        const r = await runRound();
        const keptGroups = groupsWithVariance(o.algo, r.byFn, {
          groupIndex: r.groupIndex,
          lengths: Int32Array.from(r.completions, (c) => c.tokens.length),
          meanLogprobs: Float64Array.from(r.completions, (c) =>
            c.logprobs.length ? c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length : 0,
          ),
          truncated: Uint8Array.from(r.completions, (c) => (c.finishReason === "length" ? 1 : 0)),
          texts: r.texts,
        });
        return { batch: r, keptGroups };
      });
      // under train-partial with no group kept, the last round is trained as is (its groups carry A = 0)
      scored = res.groupsKept > 0 ? concatGroups(res.picks) : res.last;
      metrics["rollout/rounds"] = res.rounds;
      metrics["rollout/prompts_sampled"] = res.promptsSampled;
      metrics["rollout/groups_kept"] = res.groupsKept;
      metrics["rollout/capped"] = res.capped ? 1 : 0;
    }
    if (!plan.isDefault) Object.assign(metrics, allocationMetrics(counts), plan.sampler.metrics());
    // a wrapper's metrics, averaged over the step's rounds
    for (const k of new Set(wrapperMetrics.flatMap((m) => Object.keys(m)))) {
      const vs = wrapperMetrics.map((m) => m[k]).filter((v): v is number => v !== undefined);
      metrics[k] = vs.reduce((a, v) => a + v, 0) / vs.length;
    }
    const { byFn, ...ro } = scored;
    return { ro, byFn, failures, sampledTokens, samplingMs, metrics };
  };
  return {
    collect,
    state: () => JSON.parse(JSON.stringify({ rng: rng.state(), rollout: plan.state() })),
    load(s) {
      rng = Rng.fromState(s.rng as ReturnType<Rng["state"]>);
      if (s.rollout !== undefined) plan.load(s.rollout as Record<string, unknown>);
    },
  };
}

/** Episode rows: the environment computes their advantages (step rows, observation holes). */
export function withEpisodeStage(source: RolloutSource, env: EpisodeSource): RolloutSource {
  return {
    ...source,
    stage: (pl, col, inputs) =>
      env.advantages(pl, col.byFn, col.ro.completions, col.ro.groupIndex, inputs, col.ro.problems),
  };
}

/**
 * Orders rollouts, weight pushes and updates (`sampler.overlap`, src/serve/remote-sampler.ts `RolloutFeed`):
 * before a batch starts, the policy's weights are pushed to the rollout workers when due; with overlap K the
 * next K batches generate while the current step trains. A checkpoint holds the source's state from before
 * the batches generated ahead, which resume regenerates.
 */
export function feedSource(
  inner: RolloutSource,
  o: { overlap: number; remote: RemoteRollouts | null; sync: (step: number) => Promise<void> },
): RolloutSource {
  let feed: RolloutFeed<Collected, Record<string, unknown>> | null = null;
  const snapshot = () => inner.state?.() ?? {};
  return {
    begin(lastStep) {
      feed = new RolloutFeed({
        overlap: o.overlap,
        lastStep,
        remote: o.remote,
        sync: o.sync,
        collect: (step) => inner.collect(step),
        snapshot,
      });
    },
    collect(step) {
      if (feed === null) throw new Error("internal: feedSource.collect before begin");
      return feed.take(step);
    },
    // batches generated ahead are not part of a checkpoint: they are generated again on resume
    state: () => feed?.resumeState() ?? snapshot(),
    load: (s) => inner.load?.(s),
    metrics: () => (o.remote && feed ? feed.metrics : {}),
    ...(inner.stage ? { stage: inner.stage } : {}),
    async close() {
      await feed?.drain(); // batches still generating ahead (a stop, an error) finish before the model is freed
      o.remote?.close();
      await inner.close?.();
    },
  };
}
