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
import type { AdamW, Tensor } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { TrainConfig } from "./config.js";
import type { Diagnostics } from "./diagnostics.js";
import type { EvalResult } from "./evaluate.js";
import type { ForwardBackend, GradSync } from "./parts.js";
import type { RolloutSource } from "./sources.js";

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

export interface Run {
  cfg: TrainConfig;
  algo: AlgoConfig;
  runDir: string;
  log: (line: string) => void;
  policy: PolicyParts;
  opt: AdamW;
  tok: Tokenizer;
  task: Task;
  rewards: NamedReward[];
  /** Advantages, token filters, the policy loss and the state of stateful components (src/algo/pipeline.ts). */
  pipeline: Pipeline;
  /** Where each step's scored rollouts come from (sources.ts). */
  source: RolloutSource;
  /** How micro-batch log-probs are computed (parts.ts). */
  backend: ForwardBackend;
  /** What a step shares with other processes (parts.ts). */
  sync: GradSync;
  /** The local sampler (held-out evaluation; rollouts unless they come from workers). */
  sampler: LocalSampler;
  evalProblems: Problem[];
  stopIds: number[];
  diagnostics: Diagnostics;
  /** The train/sampler mismatch correction of remote or int8 local rollouts (`sampler.importanceSampling`), or null. */
  importanceSampling: { mode: string; cap: number } | null;
  /** Whether row `i` passed the task (its success reward), for the likelihood-of-correct diagnostic. */
  isSuccess(byFn: readonly Float64Array[], i: number): boolean;
  /** Held-out evaluation at a step. */
  evaluate(step: number): EvalResult;
}

/** The weights a checkpoint holds: the adapters with LoRA, else the whole model. */
export function trainableState(p: PolicyParts): Record<string, Tensor> {
  return Object.fromEntries(p.lora ? p.lora.namedParameters() : p.model.namedParameters());
}
