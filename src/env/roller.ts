/**
 * The multi-turn episode roller: runs many episodes together, one batched generation call per turn over
 * every episode still running, with the local KV-cache sampler (`roll`) or any `Sampler`, e.g. rollout
 * workers behind an OpenAI-compatible API (`rollWith`). Both drive the same turn loop (`#turns`).
 *
 * Each episode is one token sequence `prompt | a_0 o_1 a_1 o_2 … a_k`: the prompt is the first observation,
 * a_t are the action tokens exactly as sampled (loss mask 1, with the sampler's log-probs), o_t the tokens
 * of the template glue and the next observation (loss mask 0, log-prob 0): a completion mask with holes. An
 * episode ends when the environment says done, after `maxTurns` actions, or when the next turn would not fit
 * the token limit (`maxEpisodeTokens`, and the model's context): then it is marked truncated.
 * @module
 */
import { CohortError } from "../errors.js";
import type { Completion, LocalSampler, Sampler, SamplingParams } from "../model/sampler.js";
import { mix32 } from "../task/rng.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { type TemplateKind, TurnTemplate } from "./template.js";
import type { EnvFactory, EpisodeLimits, StepInfo } from "./types.js";

export interface EpisodeStep {
  /** The observation the action answered (for the first step, the whole first observation). */
  observation: string;
  /** Anchor-state key of that observation (GiGPO step groups). */
  stateKey: string;
  /** The action text the environment received. */
  action: string;
  reward: number;
  info: StepInfo;
  /** Completion columns [start, end) of this step's action tokens. */
  start: number;
  end: number;
}

export type EpisodeFinish = "done" | "turns" | "tokens";

export interface Episode {
  /** Prompt token ids (the first observation). */
  prompt: number[];
  /** Completion token ids: actions and observations, in order. */
  tokens: number[];
  /** Sampler log-prob of each completion token (0 on observation tokens). */
  logprobs: number[];
  /** 1 = an action token (trained on), 0 = observation / template token. */
  lossMask: number[];
  steps: EpisodeStep[];
  /** Σ of the step rewards. */
  totalReward: number;
  success: boolean;
  /** Why it ended: the environment said done, the turn limit, or the token limit (truncated). */
  finish: EpisodeFinish;
}

export interface RollerOptions extends Partial<EpisodeLimits> {
  template: TemplateKind;
  /** Total tokens of an episode (prompt included) at most. Default: the model's context length. */
  maxEpisodeTokens?: number;
  /** Ends an action in the `text` template. Default "\n". */
  terminator?: string;
}

export interface RollParams {
  temperature: number;
  topK?: number;
  topP?: number;
  minP?: number;
  /** Token ids that end an action (EOS). */
  stopTokenIds: number[];
}

/** Seed of turn `t` of an episode seeded `s` (a hash, so turns draw independent streams). */
export function turnSeed(s: number, t: number): number {
  return mix32(Math.imul(s >>> 0, 0x9e3779b1) ^ Math.imul(t + 1, 0x85ebca6b));
}

interface Live {
  i: number;
  env: ReturnType<EnvFactory["make"]>;
  tmpl: TurnTemplate;
  seed: number;
  observation: string;
  stateKey: string;
  ep: Episode;
}

/** Applies the environment's hindsight step rewards (if it has them) to a finished episode. */
export function settle(env: ReturnType<EnvFactory["make"]>, ep: Episode): Episode {
  if (env.hindsightRewards === undefined) return ep;
  const r = env.hindsightRewards();
  if (r.length !== ep.steps.length)
    throw new CohortError(
      `hindsightRewards() returned ${r.length} rewards for an episode of ${ep.steps.length} steps; return one per step`,
    );
  ep.totalReward = 0;
  ep.steps.forEach((s, t) => {
    s.reward = r[t] as number;
    ep.totalReward += s.reward;
  });
  return ep;
}

export class EpisodeRoller {
  readonly limits: EpisodeLimits;

  constructor(
    readonly factory: EnvFactory,
    readonly tok: Tokenizer,
    readonly opts: RollerOptions,
  ) {
    this.limits = {
      maxTurns: opts.maxTurns ?? factory.limits.maxTurns,
      maxActionTokens: opts.maxActionTokens ?? factory.limits.maxActionTokens,
    };
  }

  /** A fresh template for one episode. */
  template(): TurnTemplate {
    return new TurnTemplate(this.tok, this.opts.template, {
      tools: this.factory.tools,
      ...(this.opts.terminator !== undefined ? { terminator: this.opts.terminator } : {}),
    });
  }

  /** Plays one episode of each `tasks[i]` (environment seed `seeds[i]`), all batched turn by turn. */
  roll(sampler: LocalSampler, tasks: readonly unknown[], seeds: readonly number[], p: RollParams): Episode[] {
    const turns = this.#turns(tasks, seeds, p, sampler.model.config.maxPositionEmbeddings);
    let r = turns.next();
    while (!r.done) r = turns.next(sampler.generateSync(r.value.prompts, r.value.params));
    return r.value;
  }

  /**
   * `roll` with any sampler (a rollout pool, a remote server); `contextLength` is the policy's context, which
   * bounds the episodes as in `roll`.
   */
  async rollWith(
    sampler: Sampler,
    contextLength: number,
    tasks: readonly unknown[],
    seeds: readonly number[],
    p: RollParams,
  ): Promise<Episode[]> {
    const turns = this.#turns(tasks, seeds, p, contextLength);
    let r = turns.next();
    while (!r.done) r = turns.next(await sampler.generate(r.value.prompts, r.value.params));
    return r.value;
  }

  /** The turn loop: yields each turn's generation request, takes its completions back. */
  *#turns(
    tasks: readonly unknown[],
    seeds: readonly number[],
    p: RollParams,
    ctxLen: number,
  ): Generator<{ prompts: number[][]; params: SamplingParams }, Episode[], Completion[]> {
    if (tasks.length !== seeds.length) {
      throw new CohortError(`roll: ${seeds.length} seeds for ${tasks.length} tasks; give one seed per episode`);
    }
    const limit = Math.min(this.opts.maxEpisodeTokens ?? ctxLen, ctxLen);
    const { maxTurns, maxActionTokens } = this.limits;
    const out: Episode[] = new Array(tasks.length);
    let live: Live[] = tasks.map((task, i) => {
      const env = this.factory.make();
      const seed = seeds[i] as number;
      const observation = env.reset(seed, task);
      const tmpl = this.template();
      const prompt = tmpl.start(observation);
      if (prompt.length + maxActionTokens > limit) {
        throw new CohortError(
          `the first observation of ${this.factory.name} takes ${prompt.length} tokens; with maxActionTokens ` +
            `${maxActionTokens} it exceeds the episode limit of ${limit} tokens (maxEpisodeTokens or the model's ` +
            `context); raise the limit or shorten the observation`,
        );
      }
      const ep: Episode = {
        prompt,
        tokens: [],
        logprobs: [],
        lossMask: [],
        steps: [],
        totalReward: 0,
        success: false,
        finish: "turns",
      };
      return { i, env, tmpl, seed, observation, stateKey: env.stateKey?.() ?? observation, ep };
    });
    for (let turn = 0; turn < maxTurns && live.length > 0; turn++) {
      const comps = yield {
        prompts: live.map((l) => [...l.ep.prompt, ...l.ep.tokens]),
        params: {
          maxTokens: maxActionTokens,
          temperature: p.temperature,
          ...(p.topK !== undefined ? { topK: p.topK } : {}),
          ...(p.topP !== undefined ? { topP: p.topP } : {}),
          ...(p.minP !== undefined ? { minP: p.minP } : {}),
          stopTokenIds: p.stopTokenIds,
          ...(live[0]!.tmpl.stop.length > 0 ? { stop: live[0]!.tmpl.stop } : {}),
          seed: live.map((l) => turnSeed(l.seed, turn)),
        },
      };
      if (comps.length !== live.length) {
        throw new CohortError(
          `roll: the sampler returned ${comps.length} completions for ${live.length} episodes; a sampler must answer every prompt`,
        );
      }
      const still: Live[] = [];
      live.forEach((l, k) => {
        const c = comps[k]!;
        const ep = l.ep;
        const start = ep.tokens.length;
        ep.tokens.push(...c.tokens);
        ep.logprobs.push(...c.logprobs);
        for (let j = 0; j < c.tokens.length; j++) ep.lossMask.push(1);
        const action = l.tmpl.actionText(c.tokens);
        const r = l.env.step(action);
        ep.steps.push({
          observation: l.observation,
          stateKey: l.stateKey,
          action,
          reward: r.reward,
          info: r.info,
          start,
          end: ep.tokens.length,
        });
        ep.totalReward += r.reward;
        if (r.info.success === true) ep.success = true;
        if (r.done) {
          ep.finish = "done";
          out[l.i] = settle(l.env, ep);
          return;
        }
        if (turn === maxTurns - 1) {
          ep.finish = "turns";
          out[l.i] = settle(l.env, ep);
          return;
        }
        const obsIds = l.tmpl.next(c.tokens, r.observation);
        if (ep.prompt.length + ep.tokens.length + obsIds.length + maxActionTokens > limit) {
          ep.finish = "tokens";
          out[l.i] = settle(l.env, ep);
          return;
        }
        ep.tokens.push(...obsIds);
        for (let j = 0; j < obsIds.length; j++) {
          ep.logprobs.push(0);
          ep.lossMask.push(0);
        }
        l.observation = r.observation;
        l.stateKey = l.env.stateKey?.() ?? r.observation;
        still.push(l);
      });
      live = still;
    }
    return out;
  }
}
