/**
 * Rollout-level methods: prompt samplers (uniform, VAS, GDRO), budget allocators (fixed, GDRO √-rule, V₀)
 * and DAPO dynamic sampling, wired together for the trainer by `RolloutPlan`.
 * @module
 */
import { ConfigError } from "../errors.js";
import type { Task } from "../task/types.js";
import { type BudgetAllocator, budgetAllocators } from "./budget.js";
import { parseRolloutConfig, type RolloutConfig } from "./config.js";
import { PassRateHistory, type PromptStats } from "./history.js";
import { type PromptSampler, promptSamplers } from "./prompt-samplers.js";
import { type RolloutWrapper, rolloutWrappers } from "./wrappers/index.js";

export * from "./budget.js";
export * from "./config.js";
export * from "./dynamic.js";
export * from "./history.js";
export * from "./prompt-samplers.js";
export * from "./wrappers/index.js";

/** The rollout components of a run and their shared state. */
export class RolloutPlan {
  readonly cfg: RolloutConfig;
  readonly sampler: PromptSampler;
  readonly allocator: BudgetAllocator;
  /** The rollout wrapper, when configured (default: direct sampling). */
  readonly wrapper: RolloutWrapper | undefined;
  readonly history = new PassRateHistory();
  /** Index of the reward function whose value decides success. */
  readonly successIndex: number;

  constructor(rollout: unknown, task: Task, rewardNames: readonly string[], root = "algo.rollout") {
    this.cfg = parseRolloutConfig(rollout, root);
    const ps = this.cfg.promptSampler;
    this.sampler = promptSamplers.get(ps.name, `${root}.promptSampler.name`)(
      task,
      ps.options,
      `${root}.promptSampler.options`,
    );
    const b = this.cfg.budget;
    this.allocator = budgetAllocators.get(b.name, `${root}.budget.name`)(b.options, `${root}.budget.options`);
    const w = this.cfg.wrapper;
    this.wrapper =
      w === undefined
        ? undefined
        : rolloutWrappers.get(w.name, `${root}.wrapper.name`)(w.options, `${root}.wrapper.options`);
    const want = this.cfg.success.reward;
    if (want !== undefined) {
      this.successIndex = rewardNames.indexOf(want);
      if (this.successIndex < 0) {
        throw new ConfigError(
          `no reward function named "${want}"; configured: ${rewardNames.join(", ")}`,
          `${root}.success.reward`,
        );
      }
    } else {
      this.successIndex = Math.max(0, rewardNames.indexOf("correctness"));
    }
  }

  /** Whether the run samples exactly as plain GRPO (uniform prompts, G each, one round). */
  get isDefault(): boolean {
    return (
      this.cfg.promptSampler.name === "uniform" &&
      this.cfg.budget.name === "fixed" &&
      this.cfg.dynamicSampling === undefined &&
      this.cfg.wrapper === undefined
    );
  }

  /** Value of the success reward of row `i` (NaN when it failed to score). */
  successReward(byFn: readonly Float64Array[], i: number): number {
    return byFn[this.successIndex]?.[i] ?? Number.NaN;
  }

  /** Whether row `i` is a success: success reward > threshold (NaN fails). */
  isSuccess(byFn: readonly Float64Array[], i: number): boolean {
    return this.successReward(byFn, i) > this.cfg.success.threshold;
  }

  /** Per-prompt success outcomes of a scored round (NaN rewards are failures). */
  outcomes(
    problems: readonly { id: string }[],
    groupIndex: Int32Array,
    byFn: readonly Float64Array[],
    texts: readonly string[],
  ): PromptStats[] {
    const row = byFn[this.successIndex];
    const out = new Map<number, PromptStats>();
    groupIndex.forEach((g, i) => {
      let st = out.get(g);
      if (st === undefined) {
        const p = problems[i] as PromptStats["problem"];
        st = { id: p.id, problem: p, rewards: [], texts: [] };
        out.set(g, st);
      }
      const v = row?.[i] ?? Number.NaN;
      st.rewards.push(v > this.cfg.success.threshold ? 1 : 0);
      st.texts?.push(texts[i] as string);
    });
    return [...out.keys()].sort((a, b) => a - b).map((g) => out.get(g) as PromptStats);
  }

  /** Feeds a round's outcomes to the sampler and the history. */
  record(stats: readonly PromptStats[]): void {
    this.sampler.update(stats);
    this.history.record(stats);
  }

  state(): Record<string, unknown> {
    const wrapper = this.wrapper?.state?.();
    return { sampler: this.sampler.state(), history: this.history.state(), ...(wrapper ? { wrapper } : {}) };
  }

  load(state: Record<string, unknown>): void {
    this.sampler.load((state.sampler ?? {}) as Record<string, unknown>);
    if (state.history !== undefined) this.history.load(state.history as Record<string, unknown>);
    if (state.wrapper !== undefined) this.wrapper?.load?.(state.wrapper as Record<string, unknown>);
  }
}
