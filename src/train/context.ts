/**
 * A training run's parts, as the loop (trainer.ts) and the update (update.ts) see them: the policy with its
 * reference and optimizer, the pipeline of the design space, the rollout source, the forward backend, the
 * gradient sync, the held-out evaluation and the diagnostics. setup.ts builds them from a config.
 * @module
 */
import type { AlgoConfig } from "../algo/config.js";
import type { Pipeline } from "../algo/pipeline.js";
import type { CausalLM } from "../model/llama.js";
import type { LoraAdapter } from "../model/lora.js";
import type { LocalSampler } from "../model/sampler.js";
import type { NamedReward } from "../reward/types.js";
import type { Problem, Task } from "../task/types.js";
import type { Optimizer, Tensor } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { TrainConfig } from "./config.js";
import type { Diagnostics } from "./diagnostics.js";
import type { EvalMetric, EvalResult } from "./evaluate.js";
import type { MetricRecord } from "./metrics.js";
import type { ForwardBackend, GradSync } from "./parts.js";
import type { Collected, RolloutSource } from "./sources.js";

/** The trained model: the policy, its reference (a frozen copy, or LoRA adapters off) and what is trained. */
export interface PolicyParts {
  model: CausalLM;
  /** With `model.lora`: the adapters (the trainable weights; off = the reference policy). */
  lora: LoraAdapter | null;
  /** A frozen copy of the starting model, when a component needs π_ref and there are no adapters. */
  ref: CausalLM | null;
  /** The tensors the optimizer updates. */
  params: Tensor[];
}

/** A held-out evaluation: the trainer logs `accuracy` (success rate), `format` and any further `metrics`. */
export interface RunEval {
  accuracy: number;
  format: number;
  samples: Record<string, unknown>[];
  /** More eval metrics, logged under their own keys (e.g. `eval_return`). */
  metrics?: Record<string, number>;
}

/**
 * What the loop (trainer.ts) and checkpoints see of a run, whatever its policy is: the rollout source whose
 * batches (`C`) the run's `update` trains on, the pipeline, optimizer, gradient sync and diagnostics, the
 * trainable tensors, the held-out evaluation and the run's own start-up checks and export. A language-model
 * run (`Run`, setup.ts) and a control-policy run (src/control/run.ts) are both one.
 */
export interface LoopRun<C = Collected> {
  cfg: TrainConfig;
  runDir: string;
  log: (line: string) => void;
  /** Advantages, token filters, the policy loss and the state of stateful components (src/algo/pipeline.ts). */
  pipeline: Pipeline;
  opt: Optimizer;
  /** Where each step's scored rollouts come from (sources.ts). */
  source: RolloutSource<C>;
  /** What a step shares with other processes (parts.ts). */
  sync: GradSync;
  diagnostics: Diagnostics;
  /** The named tensors a checkpoint holds (and resume restores). */
  trainable(): [string, Tensor][];
  /** Checks that need the built parts (prompts against the context, finite weights), before the run directory. */
  check(): void;
  /** Trains on one step's batch; returns the step's metrics (`t0`: when the step began). */
  update(step: number, col: C, t0: number): MetricRecord;
  /**
   * The last updated step's rollout table (samples.jsonl at an evaluation step: each row's prompt, completion,
   * every reward's score and its advantage), made on demand; absent when the run keeps none.
   */
  rollouts?(): Record<string, unknown>[];
  /** Held-out evaluation at a step (it may score completions with async reward functions). */
  evaluate(step: number): RunEval | Promise<RunEval>;
  /** Writes the trained policy to `dir` at the end of the run. */
  exportTo(dir: string): void;
  /** Releases the run's parts (native memory, connections). */
  dispose(): Promise<void>;
}

export interface Run extends LoopRun<Collected> {
  algo: AlgoConfig;
  policy: PolicyParts;
  tok: Tokenizer;
  task: Task;
  rewards: NamedReward[];
  /** How micro-batch log-probs are computed (parts.ts). */
  backend: ForwardBackend;
  /** The local sampler (held-out evaluation; rollouts unless they come from workers). */
  sampler: LocalSampler;
  evalProblems: Problem[];
  stopIds: number[];
  /** The train/sampler mismatch correction of remote or int8 local rollouts (`sampler.importanceSampling`), or null. */
  importanceSampling: { mode: string; cap: number } | null;
  /** Whether row `i` passed the task (its success reward), for the likelihood-of-correct diagnostic. */
  isSuccess(byFn: readonly Float64Array[], i: number): boolean;
  /** What `eval_accuracy` counts (the verifier, or a reward at a pass mark). */
  metric: EvalMetric;
  /** Held-out evaluation at a step (completions scored by the verifier and every reward function). */
  evaluate(step: number): Promise<EvalResult>;
}

/** The weights a checkpoint holds: the adapters with LoRA, else the whole model. */
export function trainableState(p: PolicyParts): Record<string, Tensor> {
  return Object.fromEntries(p.lora ? p.lora.namedParameters() : p.model.namedParameters());
}
