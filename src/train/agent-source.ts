/**
 * Agent episodes as training rows (`agent:` in the run config, agent-config.ts): the user's own agent code,
 * written with any SDK that speaks OpenAI's chat completions, plays G episodes per task against a recording
 * `cohort serve` endpoint (src/serve/server.ts, recorder.ts) that runs in the trainer's process over the policy
 * being trained. The recorded turns become the step's rows.
 *
 * ```
 * per step:   B tasks from the run's task or dataset (train split), G episodes each, `concurrency` at once
 * episode:    id = recorder.open();  reward = await run({ task, baseURL: <server>/episodes/<id>/v1, signal })
 *             throws / times out (signal aborted) / no finite number → fallbackReward (recorded in agent_failures.jsonl)
 * rows:       turns in arrival order; a turn whose prompt ids start with the previous row's prompt + completion
 *             extends that row: the ids in between (tool results, template glue) are appended with loss mask 0
 *             and log-prob 0, the new completion with mask 1; any other turn starts a row of its own
 * advantages: the pipeline's estimator over episodes (one reward per episode, grouped by task), each row
 *             carrying its episode's advantage (design choice: an episode of k rows weighs k times in a
 *             sequence-mean aggregate, as separate turns do in the Python proxies)
 * ```
 * Only turns that completed are trained on (a turn cut short by a disconnect, or sampled at another
 * temperature than `sampling.temperature`, is left out and counted). Each row carries the policy version that
 * sampled it (`policyVersion`, the number of updates its weights had) and its sampler log-probs, so
 * `sampler.importanceSampling` applies as with rollout workers; in process every episode of a step is sampled
 * by the current weights (staleness 0), logged as `agent/staleness_mean`.
 * Resuming restores the task stream; the episodes themselves depend on the agent's code and timing.
 * @module
 */
import { join } from "node:path";
import type { Pipeline, RewardStage } from "../algo/pipeline.js";
import { ConfigError } from "../errors.js";
import type { Completion } from "../model/sampler.js";
import { loadRewardFn } from "../reward/load.js";
import type { ServedModel } from "../serve/load.js";
import type { EpisodeRecord, RecordedTurn } from "../serve/recorder.js";
import { Recorder } from "../serve/recorder.js";
import { type RunningServer, startServer } from "../serve/server.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import type { AgentConfig } from "./agent-config.js";
import { appendLines } from "./rundir.js";
import type { Collected, RolloutSource } from "./sources.js";

/** What the agent's `run` receives. */
export interface AgentRunArgs {
  /** The task: its id, prompt and every field of its problem (a dataset line's fields, e.g. `answer`). */
  task: { id: string; prompt: string; answer?: string; [field: string]: unknown };
  /** OpenAI-compatible base URL of this episode (`…/episodes/<id>/v1`); any API key is accepted. */
  baseURL: string;
  /** Aborted when the episode runs past `timeoutMs` or the run stops. */
  signal: AbortSignal;
}

export type AgentRun = (args: AgentRunArgs) => Promise<{ reward: number } | number> | { reward: number } | number;

/** A training row made of agent turns (a `Completion` with a loss mask with holes). */
export interface AgentRow extends Completion {
  lossMask: number[];
  /** The episode (index in the step) the row belongs to. */
  agentEpisode: number;
  /** Policy version of the turn's weights (the oldest among merged turns). */
  policyVersion: number;
  /** Turns merged into the row. */
  turns: number;
}

/** One played episode. */
export interface AgentEpisode {
  id: string;
  problem: Problem;
  reward: number;
  /** null, or why the fallback reward was used. */
  failure: string | null;
  timedOut: boolean;
  record: EpisodeRecord;
}

const startsWith = (a: readonly number[], prefix: readonly number[]): boolean => {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
};

/**
 * An episode's turns as rows (see the module doc). `usable(turn)` says whether a turn may be trained on; the
 * others are skipped (a following turn then starts its own row unless it still extends the current one).
 */
export function turnsToRows(
  turns: readonly RecordedTurn[],
  episode: number,
  usable: (t: RecordedTurn) => boolean = (t) => t.status === "complete",
): { prompts: number[][]; rows: AgentRow[] } {
  const prompts: number[][] = [];
  const rows: AgentRow[] = [];
  let cur: { prompt: number[]; row: AgentRow } | null = null;
  for (const t of turns) {
    if (!usable(t) || t.completionIds.length === 0) continue;
    if (cur !== null && startsWith(t.promptIds, [...cur.prompt, ...cur.row.tokens])) {
      const r = cur.row;
      const gap = t.promptIds.slice(cur.prompt.length + r.tokens.length);
      r.tokens.push(...gap, ...t.completionIds);
      r.logprobs.push(...gap.map(() => 0), ...t.logprobs);
      r.lossMask.push(...gap.map(() => 0), ...t.completionIds.map(() => 1));
      r.finishReason = t.finishReason === "length" ? "length" : "stop";
      r.policyVersion = Math.min(r.policyVersion, t.policyVersion);
      r.turns++;
      continue;
    }
    const row: AgentRow = {
      tokens: [...t.completionIds],
      logprobs: [...t.logprobs],
      finishReason: t.finishReason === "length" ? "length" : "stop",
      lossMask: t.completionIds.map(() => 1),
      agentEpisode: episode,
      policyVersion: t.policyVersion,
      turns: 1,
    };
    cur = { prompt: [...t.promptIds], row };
    prompts.push(cur.prompt);
    rows.push(row);
  }
  return { prompts, rows };
}

/** The reward of a `run` result, or null when it is not a finite number. */
export function rewardOf(v: unknown): number | null {
  const r = typeof v === "number" ? v : (v as { reward?: unknown } | null)?.reward;
  return typeof r === "number" && Number.isFinite(r) ? r : null;
}

/** Loads `./module.ts#export` as the agent's run function (errors name the `agent.run` setting). */
export async function loadAgent(ref: string, configFile?: string): Promise<AgentRun> {
  try {
    return (await loadRewardFn(ref, {
      path: "agent.run",
      ...(configFile !== undefined ? { configFile } : {}),
    })) as unknown as AgentRun;
  } catch (e) {
    if (e instanceof ConfigError)
      throw new ConfigError(e.message.replace(/^agent\.run: /, "").replace(/^reward "/, 'agent "'), "agent.run");
    throw e;
  }
}

export interface AgentSourceOptions {
  cfg: AgentConfig;
  run: AgentRun;
  /** The policy being trained, served by the recording endpoint. */
  served: ServedModel;
  task: Task;
  promptsPerStep: number;
  groupSize: number;
  seed: number;
  /** `sampling.temperature`: turns sampled at another temperature are not trained on. */
  temperature: number;
  runDir: string;
  log: (line: string) => void;
}

const mean = (xs: readonly number[]): number => (xs.length > 0 ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** The rollout source of `agent:` runs (see the module doc). */
export class AgentSource implements RolloutSource<Collected> {
  readonly recorder = new Recorder();
  #server: RunningServer | null = null;
  #rng: Rng;
  /** Updates the served weights have had (the recorded policy version). */
  #version = 0;
  #episodes: AgentEpisode[] = [];
  #warnedTemperature = false;
  #metrics: Record<string, number> = {};

  constructor(readonly o: AgentSourceOptions) {
    this.#rng = Rng.fromSeed(BigInt(o.seed) ^ 0xa6e47n);
  }

  /** The recording server (started on first use, on a free loopback port). */
  async server(): Promise<RunningServer> {
    this.#server ??= await startServer(this.o.served, {
      port: 0,
      recorder: this.recorder,
      acceptAnyModel: true,
      seed: this.o.seed,
      maxQueue: Math.max(64, this.o.cfg.concurrency * 2),
      maxConcurrency: this.o.cfg.concurrency,
    });
    return this.#server;
  }

  /** Plays one episode of each problem (at most `concurrency` at once), in order. */
  async play(problems: readonly Problem[]): Promise<AgentEpisode[]> {
    const srv = await this.server();
    const out: AgentEpisode[] = new Array(problems.length);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= problems.length) return;
        out[i] = await this.#episode(srv, problems[i] as Problem);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.cfg.concurrency, problems.length) }, worker));
    return out;
  }

  async #episode(srv: RunningServer, problem: Problem): Promise<AgentEpisode> {
    const id = this.recorder.open();
    const ac = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ac.abort(new Error(`the episode ran past agent.timeoutMs (${this.o.cfg.timeoutMs} ms)`));
    }, this.o.cfg.timeoutMs);
    let reward: number | null = null;
    let failure: string | null = null;
    try {
      const task = {
        ...problem.meta,
        id: problem.id,
        prompt: problem.prompt,
        ...(problem.answer !== undefined ? { answer: problem.answer } : {}),
      };
      const res = await Promise.race([
        Promise.resolve(this.o.run({ task, baseURL: `${srv.url}/episodes/${id}/v1`, signal: ac.signal })),
        new Promise<never>((_, reject) => {
          ac.signal.addEventListener("abort", () => reject(ac.signal.reason), { once: true });
        }),
      ]);
      reward = rewardOf(res);
      if (reward === null) failure = `run() returned ${JSON.stringify(res)}; expected a finite number or {reward}`;
    } catch (e) {
      failure = timedOut
        ? `timed out after ${this.o.cfg.timeoutMs} ms`
        : `threw: ${(e as Error)?.message ?? String(e)}`;
    } finally {
      clearTimeout(timer);
      if (!ac.signal.aborted) ac.abort(new Error("the episode ended"));
    }
    const record = this.recorder.close(id);
    return { id, problem, reward: reward ?? this.o.cfg.fallbackReward, failure, timedOut, record };
  }

  async collect(step: number): Promise<Collected> {
    const t0 = performance.now();
    this.recorder.policyVersion = this.#version;
    const { promptsPerStep: B, groupSize: G } = this.o;
    const tasks = Array.from({ length: B }, () => this.o.task.sample(this.#rng, "train"));
    const problems = tasks.flatMap((p) => Array.from({ length: G }, () => p));
    const eps = await this.play(problems);
    this.#episodes = eps;
    const prompts: number[][] = [];
    const completions: AgentRow[] = [];
    const rowProblems: Problem[] = [];
    const groupIndex: number[] = [];
    let skippedTemperature = 0;
    let cut = 0;
    const usable = (t: RecordedTurn) => {
      if (t.status !== "complete") {
        cut++;
        return false;
      }
      if (Math.abs(t.temperature - this.o.temperature) > 1e-9) {
        skippedTemperature++;
        return false;
      }
      return true;
    };
    eps.forEach((e, k) => {
      const r = turnsToRows(e.record.turns, k, usable);
      prompts.push(...r.prompts);
      completions.push(...r.rows);
      for (let j = 0; j < r.rows.length; j++) {
        rowProblems.push(e.problem);
        groupIndex.push(Math.floor(k / G));
      }
    });
    if (skippedTemperature > 0 && !this.#warnedTemperature) {
      this.#warnedTemperature = true;
      this.o.log(
        `agent: ${skippedTemperature} turn(s) were sampled at another temperature than sampling.temperature ${this.o.temperature}; they are not trained on (their log-probs belong to another distribution)`,
      );
    }
    const failed = eps.filter((e) => e.failure !== null);
    if (failed.length > 0)
      appendLines(
        join(this.o.runDir, "agent_failures.jsonl"),
        failed.map((e) =>
          JSON.stringify({ step, episode: e.id, task: e.problem.id, failure: e.failure, turns: e.record.turns.length }),
        ),
      );
    const turns = eps.map((e) => e.record.turns.length);
    const calls = eps.map((e) => e.record.turns.reduce((a, t) => a + t.toolCalls.length, 0));
    this.#metrics = {
      "agent/reward_mean": mean(eps.map((e) => e.reward)),
      "agent/failure_rate": failed.length / Math.max(1, eps.length),
      "agent/timeout_rate": eps.filter((e) => e.timedOut).length / Math.max(1, eps.length),
      "agent/turns_mean": mean(turns),
      "agent/tool_calls_mean": mean(calls),
      "agent/tool_call_rate": mean(calls.map((c) => (c > 0 ? 1 : 0))),
      "agent/rows_per_episode": completions.length / Math.max(1, eps.length),
      "agent/merged_turns_mean": mean(completions.map((r) => r.turns)),
      "agent/turns_cut": cut,
      "agent/turns_other_temperature": skippedTemperature,
      "agent/staleness_mean": mean(completions.map((r) => this.#version - r.policyVersion)),
      "agent/policy_version": this.#version,
    };
    if (completions.length === 0)
      throw new ConfigError(
        `agent: step ${step} recorded no completed turn in ${eps.length} episodes (${failed[0]?.failure ?? "the agent made no request"}); does run() send its requests to the baseURL it is given?`,
        "agent.run",
      );
    // the next collect samples from weights one update newer
    this.#version++;
    return {
      ro: {
        prompts,
        completions,
        texts: completions.map((c) => this.o.served.tokenizer.decode(c.tokens, { skipSpecialTokens: true })),
        problems: rowProblems,
        groupIndex: Int32Array.from(groupIndex),
      },
      byFn: [Float64Array.from(completions, (c) => (eps[c.agentEpisode] as AgentEpisode).reward)],
      failures: failed.length,
      sampledTokens: completions.reduce((a, c) => a + c.lossMask.reduce((s, m) => s + m, 0), 0),
      samplingMs: performance.now() - t0,
      metrics: { ...this.#metrics },
    };
  }

  /**
   * Advantages over episodes (one reward each, grouped by task), each row carrying its episode's. The
   * estimator must give one advantage per sequence.
   */
  stage(pl: Pipeline, col: Collected): RewardStage {
    const eps = this.#episodes;
    const G = this.o.groupSize;
    const rows = col.ro.completions as AgentRow[];
    const modelTokens = new Array<number>(eps.length).fill(0);
    const lpSum = new Array<number>(eps.length).fill(0);
    const truncated = new Uint8Array(eps.length);
    for (const r of rows) {
      const e = r.agentEpisode;
      r.lossMask.forEach((m, j) => {
        if (m > 0) {
          modelTokens[e] = (modelTokens[e] as number) + 1;
          lpSum[e] = (lpSum[e] as number) + (r.logprobs[j] as number);
        }
      });
      if (r.finishReason === "length") truncated[e] = 1;
    }
    const s = pl.advantages([Float64Array.from(eps, (e) => e.reward)], {
      groupIndex: Int32Array.from(eps, (_, k) => Math.floor(k / G)),
      lengths: Int32Array.from(modelTokens),
      meanLogprobs: Float64Array.from(eps, (_, k) =>
        (modelTokens[k] as number) > 0 ? (lpSum[k] as number) / (modelTokens[k] as number) : 0,
      ),
      truncated,
    });
    if (s.advantages.kind !== "sequence" || s.estimated.kind !== "sequence") {
      for (const a of new Set([s.advantages, s.estimated])) if (a.kind === "token") a.values.dispose();
      throw new ConfigError(
        `estimator "${pl.algo.advantage.estimator}" gives per-token advantages; agent episodes need one advantage per episode (e.g. grpo, rloo)`,
        "algo.advantage.estimator",
      );
    }
    const pick = <T extends Float64Array | Int32Array | Uint8Array>(a: T | undefined, make: (n: number) => T) => {
      if (a === undefined) return undefined;
      const out = make(rows.length);
      rows.forEach((r, i) => {
        out[i] = a[r.agentEpisode] as number;
      });
      return out;
    };
    const adv = s.advantages.values;
    const est = s.estimated.values;
    const b = s.batch;
    return {
      batch: {
        ...b,
        rewards: pick(b.rewards, (n) => new Float64Array(n)) as Float64Array,
        groupIndex: col.ro.groupIndex,
        ...(b.rewardsByFn
          ? { rewardsByFn: b.rewardsByFn.map((x) => pick(x, (n) => new Float64Array(n)) as Float64Array) }
          : {}),
        lengths: Int32Array.from(rows, (r) => r.tokens.length),
        meanLogprobs: pick(b.meanLogprobs, (n) => new Float64Array(n)),
        truncated: Uint8Array.from(rows, (r) => (r.finishReason === "length" ? 1 : 0)),
      },
      advantages: { kind: "sequence", values: pick(adv, (n) => new Float64Array(n)) as Float64Array },
      estimated: {
        kind: "sequence",
        values:
          adv === est
            ? (pick(adv, (n) => new Float64Array(n)) as Float64Array)
            : (pick(est, (n) => new Float64Array(n)) as Float64Array),
      },
      keep: pick(s.keep, (n) => new Uint8Array(n)) as Uint8Array,
      metrics: s.metrics,
    };
  }

  /** Plays each held-out problem once; accuracy = the share of episodes with reward ≥ passReward. */
  async evaluate(problems: readonly Problem[], logSamples = 0, step = 0) {
    const eps = await this.play(problems);
    const passed = eps.map((e) => (e.reward >= this.o.cfg.passReward ? 1 : 0));
    const tok = this.o.served.tokenizer;
    return {
      accuracy: mean(passed),
      format: mean(eps.map((e) => (e.failure === null ? 1 : 0))),
      samples: eps.slice(0, logSamples).map((e) => ({
        step,
        prompt: e.problem.prompt,
        completion: e.record.turns.map((t) => tok.decode(t.completionIds, { skipSpecialTokens: true })).join(" | "),
        correct: e.reward >= this.o.cfg.passReward,
        reward: e.reward,
        turns: e.record.turns.length,
        ...(e.failure ? { failure: e.failure } : {}),
      })),
      metrics: {
        eval_reward_mean: mean(eps.map((e) => e.reward)),
        eval_tool_call_rate: mean(eps.map((e) => (e.record.turns.some((t) => t.toolCalls.length > 0) ? 1 : 0))),
      },
    };
  }

  state(): Record<string, unknown> {
    return { rng: JSON.parse(JSON.stringify(this.#rng.state())), version: this.#version };
  }

  load(s: Record<string, unknown>): void {
    this.#rng = Rng.fromState(s.rng as ReturnType<Rng["state"]>);
    if (typeof s.version === "number") this.#version = s.version;
  }

  async close(): Promise<void> {
    await this.#server?.close({ drainTimeoutMs: 1_000 });
    this.#server = null;
  }
}
