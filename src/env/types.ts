/**
 * The environment contract for multi-turn agents: an environment is reset to a task, then stepped with the
 * text of each action until it says it is done. Observations are text; the episode roller (roller.ts) turns
 * them into tokens that are fed to the model but masked out of the loss.
 *
 * ```
 * obs  = env.reset(seed, task)
 * loop: action = model(history);  {observation, reward, done, info} = env.step(action)
 * ```
 * @module
 */
import type { z } from "zod";
import type { Rng } from "../task/rng.js";
import type { Split } from "../task/types.js";

/** What a step reports besides its observation and reward. All fields optional. */
export interface StepInfo {
  /** The action was understood (a legal move, a well-formed tool call or answer). */
  valid?: boolean;
  /** The episode ended in success (goal reached, answer right). Set on the final step. */
  success?: boolean;
  /** The step's execution succeeded and advanced the task (Hi-Agent's execution feedback). */
  executed?: boolean;
  /** The agent (role) whose action this was, for multi-agent methods (Dr. MAS, M-GRPO). Default 0. */
  agent?: number;
  /** The tool called in this step, when the action was a tool call. */
  tool?: string;
  [key: string]: unknown;
}

export interface StepResult {
  /** What the agent sees next (ignored once `done`). */
  observation: string;
  /** Reward r_t of this step. */
  reward: number;
  /** The episode is over (goal reached, answer given, or the environment gave up). */
  done: boolean;
  info: StepInfo;
}

/** One episode's state machine. Deterministic given (seed, task) and the actions. */
export interface Environment<T = unknown> {
  /** Starts an episode of `task`; returns the first observation. */
  reset(seed: number, task: T): string;
  /** Applies the text of one action. Never throws on model output: a bad action is an observation. */
  step(action: string): StepResult;
  /**
   * Anchor-state key of the latest observation: steps of one task group taken from equal keys form a
   * GiGPO step group. Default: the observation text.
   */
  stateKey?(): string;
  /**
   * Step rewards decided in hindsight (optional), read once when the episode ends (done, turn or token limit):
   * one per step taken, replacing the rewards `step` returned — for a step whose reward depends on later steps
   * (MasHost's component rationality: was this node's output used?).
   */
  hindsightRewards?(): number[];
}

/** A tool the agent may call; its arguments are a zod schema (shown to the model as JSON schema). */
export interface Tool<A = unknown> {
  name: string;
  description: string;
  args: z.ZodType<A>;
  /** Runs the tool; the returned text is the tool output (an observation, masked out of the loss). */
  run(args: A): string;
}

/** A task instance of an environment, drawn for a split. `canonical` decides the split (by hash). */
export interface EnvTaskDraw<T> {
  id: string;
  task: T;
}

/** Limits of an episode. */
export interface EpisodeLimits {
  /** Actions per episode at most; the episode ends unfinished after that. */
  maxTurns: number;
  /** Tokens per action at most (the action's text ends at `terminator` or EOS before that). */
  maxActionTokens: number;
}

/** A built environment kind: draws tasks, makes fresh environment instances, knows its limits and tools. */
export interface EnvFactory<T = unknown> {
  readonly name: string;
  readonly limits: EpisodeLimits;
  readonly tools: readonly Tool[];
  /** Draws one task of `split` (train and eval never overlap). Deterministic given the generator. */
  sampleTask(rng: Rng, split: Split): EnvTaskDraw<T>;
  /** A fresh environment instance (one per episode). */
  make(): Environment<T>;
  /**
   * A scripted policy for supervised pre-training (optional): it reads the environment's state and returns
   * the next action text; `noise` ∈ [0, 1] is how often it acts at random instead of well.
   */
  expert?(noise: number): ScriptedPolicy<T>;
}

/** Picks the next action of an episode in progress (an expert for SFT data, or a test policy). */
export type ScriptedPolicy<T = unknown> = (env: Environment<T>, rng: Rng) => string;

/** A registered environment: its options schema (validated at config time) and how to build it. */
export interface EnvSpec<O = unknown> {
  name: string;
  description: string;
  /** Strict zod schema of the options; each field documented in `.meta()`. */
  options: z.ZodType;
  /** Builds the factory; throws a ConfigError at `path` on invalid options. */
  create(options: O, path: string): EnvFactory;
}
