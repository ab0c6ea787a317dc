/**
 * Data that flows between the slots of the design space (ALGORITHMS.md §C). Notation follows §0:
 * N sequences (completions) in a batch, T token positions (right-padded), groups of completions that
 * share a prompt (or an agent, step or rank, depending on the group key).
 * Fields are only ever added, and new fields are optional.
 * @module
 */
import type { Tensor } from "../tensor/index.js";

/** Rewards of one batch, before advantage estimation (host-side; N is small). */
export interface RewardBatch {
  /** Combined scalar reward r_i per completion (length N). NaN marks "no reward function applied". */
  rewards: Float64Array;
  /** Group of each completion (0..numGroups−1). Grouping is by id, never by adjacency. */
  groupIndex: Int32Array;
  /** Per-reward-function rewards [K][N] for decoupled methods (GDPO, BNPO decomposition); NaN = null. */
  rewardsByFn?: Float64Array[];
  /** Number of valid completion tokens |o_i| per completion. */
  lengths?: Int32Array;
  /** Mean token log-prob per completion (unlikeliness reward, confidence reweighting). */
  meanLogprobs?: Float64Array;
  /** Whether each completion hit the length limit. */
  truncated?: Uint8Array;
  /** Agent id per completion (Dr. MAS), step index (Step-GRPO), rank position (Rank-GRPO). */
  agentId?: Int32Array;
  stepIndex?: Int32Array;
  /** Loss mask [N, T] for estimators that return per-token advantages (REINFORCE++, Rank-GRPO). */
  mask?: Tensor;
  /** Per-token rewards [N, T] (REINFORCE++ returns-to-go); absent: r_i sits on the last valid token. */
  tokenRewards?: Tensor;
  /** Critic values V(s_t) [N, T + 1] (the last column: the bootstrap value after the last valid step, 0 at a terminal state). */
  values?: Tensor;
  /** Weight w_k of each reward function (length K), for decoupled normalisation (GDPO). */
  rewardWeights?: Float64Array;
  /** Agent episodes (GiGPO): rows are steps; the trajectory of each row, and its anchor-state key. */
  trajectoryIndex?: Int32Array;
  observationKey?: string[];
  /** The action of each step row (its text), for estimators that key nodes by the path of actions (SALT). */
  actionKey?: string[];
  /** Episode reward R^E of each row's trajectory (GiGPO); absent: the sum of the trajectory's step rewards. */
  episodeRewards?: Float64Array;
  /** Rank-GRPO: reward of each rank position, one Float64Array of length K per completion ([N][K]). */
  rankRewards?: Float64Array[];
  /** Item (rank position) of each token, [N, T] integer, −1 = not in an item (Rank-GRPO). */
  itemIndex?: Tensor;
  /** 1 when the low-level execution of a step succeeded / advanced the task (Hi-Agent foresight). */
  executed?: Uint8Array;
  /** Completion text of each row (DaGRPO pair masking compares the completions of a group). */
  texts?: readonly string[];
  /** The fields of each row's prompt (a JSONL line's columns, a task problem's meta), e.g. Dr. Zero's hop count. */
  fields?: readonly Record<string, unknown>[];
}

/** Advantages: one per sequence (broadcast over its tokens) or one per token ([N, T] tensor). */
export type Advantages = { kind: "sequence"; values: Float64Array } | { kind: "token"; values: Tensor };

/** Everything a policy loss may read for one (micro-)batch. Tensors are [N, T] unless noted. */
export interface LossBatch {
  /** ℓ = log π_θ of the sampled tokens, with grad. */
  logprobs: Tensor;
  /** ℓ_old (no grad). Equal to sg(ℓ) when μ = 1 and there is one optimizer step per generation. */
  oldLogprobs: Tensor;
  /** ℓ_ref (no grad), present when a KL regulariser needs it. */
  refLogprobs?: Tensor;
  /** Per-token entropy of π_θ; carries grad when computed with grad (the entropy bonus differentiates it). */
  entropy?: Tensor;
  /** A as [N] (sequence) or [N, T] (token). */
  advantages: Tensor;
  /** Loss mask (1 = token counts; may hold weights). f32/f64, [N, T]. */
  mask: Tensor;
  /** Group of each sequence, and the raw rewards, for losses that need them (DisCO, REC, Reg-GRPO). */
  groupIndex: Int32Array;
  rewards?: Float64Array;
  /** Item (rank position) of each token, [N, T] integer, −1 = not in an item (Rank-GRPO item ratio). */
  itemIndex?: Tensor;
  /** Pass rate p_q of each sequence's group, length N (ETR macro bound; else derived from `rewards`). */
  passRate?: Float64Array;
}

/** Counts over the whole logical batch of one optimizer step (not the micro-batch). */
export interface GlobalCounts {
  /** Σ mask over all sequences of the step. */
  tokens: number;
  /** Number of sequences with at least one valid token (or all, with countMaskedSequences). */
  sequences: number;
  /** Constant L_max for seq-mean-token-sum-norm (Dr. GRPO). */
  maxLength?: number;
  /** Number of groups (questions) in the step, for per-question losses (DisCO, Reg-GRPO). */
  groups?: number;
}

/** A component with state that must survive checkpoint/resume (dual variables, MW weights, …). */
export interface Stateful {
  state(): Record<string, unknown>;
  load(state: Record<string, unknown>): void;
}
