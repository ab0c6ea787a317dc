/**
 * The parts the training loop is given beside the policy and the rollout source (sources.ts):
 *
 * - `ForwardBackend`: how a micro-batch's log-probs are computed — `plainForward` (one padded forward pass) or
 *   `sharedPrefixForward` (each group's prompt once for its completions; the same log-probs and gradients).
 * - `GradSync`: what a step shares with other processes — `noSync` (one process) or `dataParallelSync`
 *   (c10d: global counts and step-wide sums, the advantage stage over every rank's rows, the gradient
 *   all-reduce overlapped with the backward pass, metrics and checkpoints of every rank).
 * @module
 */
import type { Pipeline, RewardStage, StageInputs } from "../algo/pipeline.js";
import type { GlobalCounts, RewardBatch } from "../algo/types.js";
import type { CausalLM } from "../model/llama.js";
import { logprobsSharedPrefixRows } from "../model/prefix.js";
import { checkResumeWorldSize, type DataParallel, type StepFacts } from "../parallel/index.js";
import { type Tensor, tidy } from "../tensor/index.js";
import { advantagesOverRanks } from "./dist-stage.js";
import type { MetricRecord } from "./metrics.js";

/** Rows packed for a forward pass (batch.ts `pack`). */
export interface PackedRows {
  inputIds: Tensor;
  attentionMask: Tensor;
  completionMask: Tensor;
  /** First completion column. */
  P: number;
  /** The rows' token ids (the shared-prefix forward groups rows by prompt). */
  seqs: { prompts: number[][]; completions: number[][] };
}

export interface ForwardBackend {
  readonly name: "plain" | "shared-prefix";
  /** Completion-column log-probs [n, C] (and entropy) of packed rows under `model` at `temperature`. */
  logprobs(model: CausalLM, p: PackedRows, temperature: number, entropy: boolean): { lp: Tensor; entropy?: Tensor };
}

export const plainForward: ForwardBackend = {
  name: "plain",
  logprobs(model, p, temperature, entropy) {
    return tidy(() => {
      const r = model.logprobs(
        { inputIds: p.inputIds, attentionMask: p.attentionMask, completionMask: p.completionMask },
        { temperature, entropy },
      );
      const lp = r.lp.slice(1, p.P);
      return r.entropy ? { lp, entropy: r.entropy.slice(1, p.P) } : { lp };
    });
  },
};

// Prefix Grouper (shared-prefix forward).  ALGORITHMS.md B.24 [ABSTRACT + README]
export const sharedPrefixForward: ForwardBackend = {
  name: "shared-prefix",
  logprobs: (model, p, temperature, entropy) =>
    logprobsSharedPrefixRows(model, p.seqs.prompts, p.seqs.completions, { temperature, entropy }),
};

export function forwardBackend(name: "plain" | "shared-prefix"): ForwardBackend {
  return name === "shared-prefix" ? sharedPrefixForward : plainForward;
}

type Base = Omit<RewardBatch, "rewards" | "rewardsByFn" | "mask" | "tokenRewards">;

export interface GradSync {
  /** This process writes the run's files (rank 0, or the only process). */
  readonly isMain: boolean;
  readonly worldSize: number;
  /** The counts of one optimizer step over every process. */
  counts(c: GlobalCounts): GlobalCounts;
  /** Element-wise sums of numbers over every process (step-wide prepass sums, state sums). */
  sums(values: readonly number[]): number[];
  /** The step's advantage stage, over every process's rows. */
  advantages(pl: Pipeline, byFn: Float64Array[], base: Base, inputs: StageInputs & { mask: Tensor }): RewardStage;
  /** The kept rows of this process as `parts` minibatches (the same number of optimizer steps everywhere). */
  miniBatches(kept: number[], parts: number, split: (rows: number[], parts: number) => number[][]): number[][];
  /** Call before the backward pass of an optimizer step's last micro-batch. */
  beforeLastBackward(params: Tensor[]): void;
  /** Sums the gradients over every process; returns whether the loss was finite everywhere. */
  reduceGradients(params: Tensor[], finiteLoss: boolean): boolean;
  /** True everywhere when true in any process (a stop request). */
  any(flag: boolean): boolean;
  barrier(): void;
  /** The step's metrics over every process. */
  stepMetrics(metrics: MetricRecord, facts: StepFacts): MetricRecord;
  /** A checkpoint's state over every process (null in processes that do not write it). */
  checkpointState(state: Record<string, unknown>): Record<string, unknown> | null;
  /** This process's part of a checkpoint's state. */
  rankState(state: Record<string, unknown>, dir: string): Record<string, unknown>;
}

/** One process: nothing to share. */
export const noSync: GradSync = {
  isMain: true,
  worldSize: 1,
  counts: (c) => c,
  sums: (v) => [...v],
  advantages: (pl, byFn, base, inputs) => pl.advantages(byFn, base, inputs),
  miniBatches: (kept, parts, split) => (kept.length > 0 ? split(kept, Math.min(parts, kept.length)) : []),
  beforeLastBackward: () => {},
  reduceGradients: (_params, finite) => finite,
  any: (flag) => flag,
  barrier: () => {},
  stepMetrics: (m) => m,
  checkpointState: (s) => s,
  rankState: (s, dir) => {
    checkResumeWorldSize(s, 1, dir);
    return s;
  },
};

/** One rank of a data-parallel group (src/parallel). */
export function dataParallelSync(dp: DataParallel): GradSync {
  return {
    isMain: dp.isMain,
    worldSize: dp.worldSize,
    counts: (c) => dp.reduceCounts(c),
    sums: (v) => dp.group.sum(v),
    advantages: (pl, byFn, base, inputs) => advantagesOverRanks(dp.group, pl, byFn, base, inputs),
    miniBatches: (kept, parts) => dp.miniBatches(kept, parts),
    beforeLastBackward: (params) => dp.beforeLastBackward(params),
    reduceGradients: (params, finite) => dp.reduceGradients(params, finite),
    any: (flag) => dp.group.any(flag),
    barrier: () => dp.group.barrier(),
    stepMetrics(m, facts) {
      const withGrad = { ...m, ...dp.gradientMetrics() };
      return { ...withGrad, ...dp.reduceMetrics(withGrad, facts) };
    },
    checkpointState(state) {
      const all = dp.gatherStates(state);
      return dp.isMain ? dp.checkpointState(all) : null;
    },
    rankState(state, dir) {
      checkResumeWorldSize(state, dp.worldSize, dir);
      return dp.rankState(state, dir);
    },
  };
}
