/**
 * Data parallelism for the trainer: what a rank does differently from a lone process.
 *
 * - **Data.** B prompts per step are split evenly: each rank samples B/N whole prompt groups (a group never
 *   spans ranks) and computes their rewards and advantages locally. With the plain rollout plan (uniform
 *   prompts, G each, one round) the ranks draw the same B prompts from the shared data seed and each takes
 *   its contiguous share, with request seeds derived from the global row index: the run samples exactly
 *   what one process would, so its trajectory matches the one-process run. With stateful rollout components
 *   (VAS/GDRO samplers, budget allocators, dynamic sampling, wrappers) each rank runs them on its own share
 *   with a seed derived from (seed, rank), and keeps its own state (design choice: no cross-rank history).
 * - **Counts.** The aggregators' global token and sequence counts are summed over ranks, so each rank's loss
 *   is its share of the global loss and the summed gradients are the global batch's gradient.
 * - **Gradients** are summed over ranks in buckets (one flattened buffer per ≤ bucketBytes). With `overlap`
 *   (the default, `train.overlapAllreduce`), as in PyTorch's DDP: the trainer calls `beforeLastBackward`
 *   before the backward pass of each optimizer step's last micro-batch, and each bucket's all-reduce starts
 *   as soon as its gradients are accumulated, while backward goes on (group.ts `GradientReducer`); earlier
 *   micro-batches only accumulate. Without it, every bucket is launched after the backward passes (all in
 *   flight before the first wait). The sums are the same. A non-finite loss on any rank skips the step on
 *   every rank.
 * - **Metrics** are combined as in metrics.ts; **checkpoints** hold every rank's RNG and data state.
 * @module
 */
import type { GlobalCounts } from "../algo/types.js";
import { CohortError, ConfigError } from "../errors.js";
import { mix32 } from "../task/rng.js";
import { type Tensor, tensor, zerosLike } from "../tensor/index.js";
import type { MetricRecord } from "../train/metrics.js";
import type { GradientReducer, ProcessGroup, ReducerStats } from "./group.js";
import { combineStepMetrics, type StepFacts } from "./metrics.js";

export type ShareMode = "split" | "local";

/** A seed for rank `rank` of a run seeded `seed` (rank 0 keeps the run's seed). */
export function rankSeed(seed: number, rank: number): number {
  if (rank === 0) return seed;
  return mix32(seed * 0x9e3779b1 + (rank + 1) * 0x632be5ab);
}

/** The world size a checkpoint's state was written by (1 for a one-process run). */
export function checkpointWorldSize(state: Record<string, unknown>): number {
  return typeof state.worldSize === "number" ? state.worldSize : 1;
}

/** Refuses to resume a checkpoint written by a different number of ranks. */
export function checkResumeWorldSize(state: Record<string, unknown>, worldSize: number, dir: string): void {
  const saved = checkpointWorldSize(state);
  if (saved === worldSize) return;
  const how = (n: number) => (n === 1 ? "one process (no --nproc)" : `${n} ranks (--nproc ${n} or --world-size ${n})`);
  throw new CohortError(
    `checkpoint ${dir} was written by ${how(saved)}, but this run has ${how(worldSize)}. Each rank's data ` +
      `stream and RNG are saved per rank, so resume with ${how(saved)}, or start a new run (another name or outputDir).`,
  );
}

export interface DataParallelOptions {
  /** Overlap the gradient all-reduce with the backward pass (default true); false: after it. */
  overlap?: boolean;
}

export class DataParallel {
  readonly overlap: boolean;
  #reducer: GradientReducer | null = null;
  /** Since the last `gradientMetrics()`: seconds inside `reduceGradients`, buckets launched in/after backward. */
  #reduceS = 0;
  #inBackward = 0;
  #afterBackward = 0;

  constructor(
    readonly group: ProcessGroup,
    readonly mode: ShareMode,
    opts: DataParallelOptions = {},
  ) {
    this.overlap = opts.overlap ?? true;
  }

  get rank(): number {
    return this.group.rank;
  }
  get worldSize(): number {
    return this.group.worldSize;
  }
  /** Rank 0 writes logs, evaluations, checkpoints and the final model. */
  get isMain(): boolean {
    return this.group.rank === 0;
  }

  /** Throws unless B prompts split evenly over the ranks. */
  static checkPrompts(promptsPerStep: number, worldSize: number): void {
    if (promptsPerStep % worldSize !== 0) {
      const lo = Math.max(worldSize, promptsPerStep - (promptsPerStep % worldSize));
      throw new ConfigError(
        `${promptsPerStep} prompts per step do not split over ${worldSize} ranks: each rank samples whole prompt ` +
          `groups, the same number on every rank. Use a multiple of ${worldSize} (e.g. ${lo} or ${lo + worldSize}), ` +
          "or another number of ranks",
        "train.promptsPerStep",
      );
    }
  }

  /** Prompts this rank samples per step. */
  localPrompts(promptsPerStep: number): number {
    return promptsPerStep / this.worldSize;
  }

  /** Seed of this rank's data stream and request seeds (the run's seed in split mode). */
  streamSeed(seed: number): number {
    return this.mode === "split" ? seed : rankSeed(seed, this.rank);
  }

  /** Split mode: this rank's contiguous share of a global draw. */
  share<T>(all: readonly T[]): T[] {
    const n = all.length / this.worldSize;
    return all.slice(this.rank * n, (this.rank + 1) * n);
  }

  /** Split mode: index of this rank's first row among the step's rows (B/N prompts × G each before it). */
  firstRow(promptsPerStep: number, groupSize: number): number {
    return this.mode === "split" ? this.rank * this.localPrompts(promptsPerStep) * groupSize : 0;
  }

  /**
   * This rank's rows in exactly as many minibatches as every other rank: min(parts, kept rows over all ranks),
   * empty ones where this rank has fewer rows (it still takes part in each optimizer step's all-reduce).
   */
  miniBatches(kept: number[], parts: number): number[][] {
    const total = this.group.sum([kept.length])[0] as number;
    const m = Math.min(parts, total);
    const out: number[][] = [];
    if (kept.length > 0) {
      const size = Math.ceil(kept.length / Math.min(m, kept.length));
      for (let i = 0; i < kept.length; i += size) out.push(kept.slice(i, i + size));
    }
    while (out.length < m) out.push([]);
    return out;
  }

  /** Token and sequence counts of the optimizer step over all ranks. */
  reduceCounts(c: GlobalCounts): GlobalCounts {
    // groups never span ranks, so the step's questions are the sum of every rank's (DisCO's 1/#questions)
    const [tokens, sequences, groups] = this.group.sum([c.tokens, c.sequences, c.groups ?? 0]) as [
      number,
      number,
      number,
    ];
    return { ...c, tokens, sequences, ...(c.groups !== undefined ? { groups } : {}) };
  }

  /**
   * With `overlap`: call right before the backward pass of an optimizer step's last micro-batch (the one
   * `reduceGradients` follows), so that buckets are all-reduced while that backward pass runs. Without this
   * call (e.g. a rank with no rows in the minibatch, or a non-finite loss that skips backward),
   * `reduceGradients` launches every bucket itself. A no-op without `overlap`.
   */
  beforeLastBackward(params: Tensor[]): void {
    if (this.overlap) this.#reducerFor(params).prepare();
  }

  /**
   * Sums the gradients of `params` over ranks (in place). A parameter without a gradient on this rank takes
   * part with zeros; one without a gradient on every rank is left without one (the optimizer skips it, as it
   * would in one process). Returns whether the loss was finite on every rank.
   */
  reduceGradients(params: Tensor[], finiteLoss: boolean): boolean {
    const t0 = performance.now();
    try {
      if (!this.overlap) return this.#reduceAfterBackward(params, finiteLoss);
      const r = this.#reducerFor(params);
      const finite = r.finish(finiteLoss);
      const st = r.stats();
      this.#inBackward += st.launchedInBackward;
      this.#afterBackward += st.launchedAfterBackward;
      return finite;
    } finally {
      this.#reduceS += (performance.now() - t0) / 1000;
    }
  }

  /**
   * The step's gradient-sync metrics, reset after each call: `time/allreduce_wait_s` (time spent in
   * `reduceGradients`, i.e. the part of the all-reduce the backward pass did not hide) and
   * `dist/allreduce_in_backward` (the fraction of buckets launched before the backward pass returned; 0
   * without `overlap`).
   */
  gradientMetrics(): MetricRecord {
    const n = this.#inBackward + this.#afterBackward;
    const out: MetricRecord = {
      "time/allreduce_wait_s": this.#reduceS,
      "dist/allreduce_in_backward": n > 0 ? this.#inBackward / n : 0,
    };
    this.#reduceS = 0;
    this.#inBackward = 0;
    this.#afterBackward = 0;
    return out;
  }

  /** All buckets after the backward passes, through `ProcessGroup.allreduce`. */
  #reduceAfterBackward(params: Tensor[], finiteLoss: boolean): boolean {
    const grads: Tensor[] = [];
    const had: number[] = [];
    for (const p of params) {
      let g = p.grad;
      had.push(g === null ? 0 : 1);
      if (g === null) {
        g = zerosLike(p);
        p.grad = g;
      }
      grads.push(g);
    }
    const flags = tensor(Float32Array.from([...had, finiteLoss ? 0 : 1]));
    try {
      this.group.allreduce([...grads, flags]);
      const f = flags.data() as Float32Array;
      params.forEach((p, i) => {
        if (f[i] === 0) p.grad = null;
      });
      return f[params.length] === 0;
    } finally {
      for (const g of grads) g.dispose();
      flags.dispose();
    }
  }

  /** What the last overlapped reduction did (null before the first, or without `overlap`). */
  overlapStats(): ReducerStats | null {
    return this.#reducer?.stats() ?? null;
  }

  /** Removes the gradient hooks of the overlapped reduction (idempotent). */
  close(): void {
    this.#reducer?.destroy();
    this.#reducer = null;
  }

  /** The reducer of `params`: created on first use, replaced when another list of parameters comes. */
  #reducerFor(params: Tensor[]): GradientReducer {
    const r = this.#reducer;
    if (r !== null && r.params.length === params.length && r.params.every((p, i) => p === params[i])) return r;
    r?.destroy();
    this.#reducer = this.group.gradientReducer(params);
    return this.#reducer;
  }

  /** Rank 0's parameters on every rank (at start-up, so all ranks begin from the same weights). */
  broadcastParameters(params: Tensor[]): void {
    this.group.broadcast(params, 0);
  }

  /** The step's metrics over all ranks (metrics.ts), identical on every rank. */
  reduceMetrics(metrics: MetricRecord, facts: StepFacts): MetricRecord {
    return combineStepMetrics(this.group.allgatherJson({ metrics, facts }));
  }

  /** Every rank's resumable state, indexed by rank (gathered for rank 0's checkpoint). */
  gatherStates(state: Record<string, unknown>): Record<string, unknown>[] {
    return this.group.allgatherJson(state);
  }

  /** Checkpoint state holding every rank's (rank 0's at the top level, as a one-process checkpoint has it). */
  checkpointState(states: Record<string, unknown>[]): Record<string, unknown> {
    return { ...(states[0] ?? {}), worldSize: this.worldSize, ranks: states };
  }

  /** This rank's part of a checkpoint state written by `checkpointState` (refusing another world size). */
  rankState(state: Record<string, unknown>, dir: string): Record<string, unknown> {
    checkResumeWorldSize(state, this.worldSize, dir);
    const ranks = state.ranks as Record<string, unknown>[] | undefined;
    const mine = ranks?.[this.rank];
    if (mine === undefined)
      throw new CohortError(`checkpoint ${dir} has no state for rank ${this.rank}; it is damaged`);
    return mine;
  }
}
