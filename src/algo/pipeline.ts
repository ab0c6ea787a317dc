/**
 * The reward → advantage → filter pipeline of one step, in the slot order of ALGORITHMS.md §C, as one object
 * shared by the trainer, multi-turn environments, dynamic sampling and your own loop:
 *
 * ```
 * rewards [K][N] ─ RewardCombiner ─ RewardShapers ─ (KL in the reward, A.4) ─ AdvantageEstimator   advantages()
 *   ─ AdvantageReweighters ─ SampleFilters (group statistics, after the advantages)
 * whole-batch [N, T] tensors ─ TokenFilters (new mask and/or per-token advantage weights)          tokenStage()
 * per micro-batch: PolicyLoss (ratio → gate or alternative loss → regularizers → aggregate)         loss
 * once per optimizer step: endStep()  ·  checkpoints: state() / load()
 * ```
 *
 * Components are looked up in their registries once, when the pipeline is made; inputs beyond the rewards
 * come from `StageInputs` by need (component.ts `NEEDS`), never by component name. Stateful components
 * (reweighters such as DCPO, regularizers, losses) keep their per-run state here.
 * @module
 */
import { CohortError } from "../errors.js";
import { type Tensor, tensor, tidy } from "../tensor/index.js";
import { advantageEstimators } from "./advantage.js";
import { loadStateRecord, type Need, type StateDef } from "./component.js";
import { type AlgoConfig, type AlgoConfigInput, configNeeds, parseAlgoConfig } from "./config.js";
import { type TokenFilterInput, tokenFilters } from "./filters.js";
import { devOf } from "./groups.js";
import { PolicyLoss } from "./policy-loss.js";
import { advantageReweighters, type ReweighterDef, type ReweightInputs } from "./reweight.js";
import { applySampleFilters, combineAndShape } from "./stage.js";
import type { Advantages, LossBatch, RewardBatch } from "./types.js";

export { applySampleFilters, combineAndShape } from "./stage.js";

/** Inputs of the advantage stage, by need. */
export interface StageInputs extends ReweightInputs {
  /** The [N, T] completion mask (need `tokenMask`: per-token estimators, KL in the reward). */
  mask?: Tensor;
  /** k1 = ℓ_old − ℓ_ref per token [N, T] (masked), for KL in the reward (`algo.rewardKl`). */
  rewardKl?: Tensor;
}

export interface RewardStage {
  /** Combined, shaped rewards (with KL in the reward applied) and what the estimator read. */
  batch: RewardBatch;
  /** After the reweighters. */
  advantages: Advantages;
  /** The estimator's output, before any reweighter (what GTPO's conflict sets read, B.9 step 1). */
  estimated: Advantages;
  /** 1 = the completion goes into the loss (sample filters may drop whole groups). */
  keep: Uint8Array;
  metrics: Record<string, number>;
}

/**
 * KL in the reward (A.4, verl `use_kl_in_reward`): r_{i,t} ← r_{i,t} − β·(ℓ_old − ℓ_ref). An estimator that
 * reads per-token rewards (REINFORCE++) gets them in `batch.tokenRewards` (the outcome on the last valid
 * token); any other gets the sum over the completion's tokens subtracted from r_i (verl scores a sequence by
 * `token_level_rewards.sum(-1)`). Returns the mean per-token k1 over valid tokens.
 */
function applyRewardKl(batch: RewardBatch, kl: Tensor, mask: Tensor, beta: number, perToken: boolean): number {
  const [n, t] = mask.shape as [number, number];
  if (kl.shape[0] !== n || kl.shape[1] !== t) {
    throw new CohortError(`inputs.rewardKl has shape [${kl.shape}] but the mask has [${n}, ${t}]`);
  }
  const m = tidy(() => mask.to("f64").data() as Float64Array);
  const k = tidy(() => kl.to("f64").mul(mask.to("f64").gt(0)).data() as Float64Array);
  let sum = 0;
  let count = 0;
  for (let j = 0; j < n * t; j++) {
    if (m[j]! > 0) {
      sum += k[j]!;
      count++;
    }
  }
  if (perToken) {
    const tr = new Float64Array(n * t);
    for (let i = 0; i < n; i++) {
      const r = batch.rewards[i]!;
      let last = -1;
      for (let j = 0; j < t; j++) {
        if (!(m[i * t + j]! > 0)) continue;
        tr[i * t + j] = -beta * k[i * t + j]!;
        last = j;
      }
      if (last >= 0 && !Number.isNaN(r)) tr[i * t + last] = tr[i * t + last]! + r;
    }
    batch.tokenRewards = tensor(tr, { shape: [n, t], device: devOf(mask) });
  } else {
    batch.rewards = batch.rewards.map((r, i) => {
      if (Number.isNaN(r)) return r;
      let s = 0;
      for (let j = 0; j < t; j++) s += k[i * t + j]!;
      return r - beta * s;
    });
  }
  return count > 0 ? sum / count : 0;
}

/** A configured reweighter with its per-run state. */
interface LiveReweighter {
  key: string;
  // biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
  def: ReweighterDef<any, any>;
  params: Record<string, unknown>;
  state: Record<string, number>;
}

/** Inputs of the token stage: [N, T] tensors over the whole batch of the step (see TokenFilterInput). */
export type TokenStageInput = Omit<TokenFilterInput, "advantages">;

export interface TokenStage {
  /** The loss mask after the filters (a new tensor). */
  mask: Tensor;
  /** Product of the filters' per-token advantage weights, or null when no filter sets any. */
  advantageWeights: Tensor | null;
  metrics: Record<string, number>;
}

/** The pipeline of a config: advantages, token filters, the policy loss and the state of stateful components. */
export class Pipeline {
  readonly algo: AlgoConfig;
  readonly loss: PolicyLoss;
  readonly reweighters: LiveReweighter[];
  /** What the components read (need → config path and name of the first component that reads it). */
  readonly needs: ReadonlyMap<Need, { path: string; name: string }>;

  constructor(algo: AlgoConfig | AlgoConfigInput) {
    this.algo = parseAlgoConfig(algo);
    this.loss = new PolicyLoss(this.algo);
    this.needs = configNeeds(this.algo);
    this.reweighters = this.algo.reweighters.map((r, i) => {
      const def = advantageReweighters.get(r.name);
      const spec = def.state as StateDef<Record<string, unknown>, Record<string, number>> | undefined;
      return { key: `${i}:${r.name}`, def, params: r.options, state: spec ? spec.init(r.options) : {} };
    });
  }

  has(need: Need): boolean {
    return this.needs.has(need);
  }

  /** Rewards [K][N] (NaN = not applicable) → combined, shaped rewards, advantages and the sample filters' keep. */
  advantages(
    byFn: Float64Array[],
    base: Omit<RewardBatch, "rewards" | "rewardsByFn">,
    inputs: StageInputs = {},
  ): RewardStage {
    const algo = this.algo;
    const metrics: Record<string, number> = {};
    const batch = combineAndShape(algo, byFn, base, inputs.mask);
    const est = advantageEstimators.get(algo.advantage.estimator, "algo.advantage.estimator");
    let ownTokenRewards: Tensor | undefined;
    if (algo.rewardKl !== undefined && algo.rewardKl.beta > 0) {
      const { rewardKl: kl, mask } = inputs;
      if (kl === undefined || mask === undefined) {
        throw new CohortError("algo.rewardKl needs inputs.rewardKl (ℓ_old − ℓ_ref per token) and inputs.mask");
      }
      metrics.kl_in_reward = applyRewardKl(batch, kl, mask, algo.rewardKl.beta, est.tokenRewards === true);
      metrics["kl_in_reward/beta"] = algo.rewardKl.beta;
      ownTokenRewards = batch.tokenRewards;
    }
    try {
      const { advantages, estimated } = this.estimate(batch, inputs);
      const filtered = applySampleFilters(algo, batch);
      Object.assign(metrics, filtered.metrics);
      return { batch, advantages, estimated, keep: filtered.keep, metrics };
    } finally {
      ownTokenRewards?.dispose();
      if (ownTokenRewards !== undefined) delete batch.tokenRewards;
    }
  }

  /**
   * Estimator → reweighters over a batch whose rewards are final (e.g. the step rows of an episode batch):
   * the advantages after the reweighters, and the estimator's own output.
   */
  estimate(batch: RewardBatch, inputs: ReweightInputs = {}): { advantages: Advantages; estimated: Advantages } {
    const est = advantageEstimators.get(this.algo.advantage.estimator, "algo.advantage.estimator");
    const estimated = est.estimate(batch, this.algo.advantage.options);
    let advantages = estimated;
    for (const r of this.reweighters) {
      const next = r.def.reweight(advantages, batch, r.params, inputs, r.state);
      if (advantages !== estimated && advantages.kind === "token" && next !== advantages) advantages.values.dispose();
      advantages = next;
    }
    return { advantages, estimated };
  }

  /**
   * The token filters over the whole batch of the step (so group-wise rules, such as GTPO's conflicts, and
   * quantiles see every row however the step is later split). GTPO's conflict sets read the estimator's
   * advantages (`stage.estimated`).
   */
  tokenStage(stage: RewardStage, input: TokenStageInput): TokenStage {
    const metrics: Record<string, number> = {};
    let mask = tidy(() => input.mask.to(input.mask.dtype));
    let weights: Tensor | null = null;
    for (const [i, f] of this.algo.tokenFilters.entries()) {
      const def = tokenFilters.get(f.name, `algo.tokenFilters.${i}.name`);
      const res = def.filter({ ...input, mask, advantages: stage.estimated }, f.options);
      if (res.mask !== undefined) {
        mask.dispose();
        mask = res.mask;
      }
      if (res.advantageWeights !== undefined) {
        const w = res.advantageWeights;
        if (weights === null) weights = w;
        else {
          const prev: Tensor = weights;
          weights = tidy(() => prev.mul(w));
          prev.dispose();
          w.dispose();
        }
      }
      metrics[`filter/${f.name}/removed_tokens`] = res.removedTokens;
      if (res.metrics !== undefined) Object.assign(metrics, res.metrics);
    }
    return { mask, advantageWeights: weights, metrics };
  }

  /** Feeds one micro-batch of the loss pass to the stateful reweighters (e.g. DCPO's entropy estimate). */
  observe(batch: LossBatch): void {
    for (const r of this.reweighters) {
      const spec = r.def.state as StateDef<Record<string, unknown>, Record<string, number>> | undefined;
      spec?.observe?.(r.state, batch, r.params);
    }
  }

  /** Every stateful component as (key, spec, params, state). */
  #stateful(): {
    key: string;
    spec: StateDef<Record<string, unknown>, Record<string, number>>;
    params: Record<string, unknown>;
    holder: { state: Record<string, number> };
  }[] {
    const out = [];
    for (const r of this.reweighters) {
      if (r.def.state) out.push({ key: `reweighter:${r.key}`, spec: r.def.state, params: r.params, holder: r });
    }
    for (const l of this.loss.stateful()) {
      const spec = l.def.state as StateDef<Record<string, unknown>, Record<string, number>>;
      out.push({ key: `loss:${l.key}`, spec, params: l.params, holder: l });
    }
    return out;
  }

  /** The fields of every stateful component that are sums over the step (`StateDef.reduce`), in a fixed order. */
  stepSums(): number[] {
    return this.#stateful().flatMap((c) => (c.spec.reduce ?? []).map((f) => c.holder.state[f] as number));
  }

  /** Puts back `stepSums()` after they were summed over data-parallel ranks. */
  setStepSums(values: readonly number[]): void {
    let k = 0;
    for (const c of this.#stateful()) for (const f of c.spec.reduce ?? []) c.holder.state[f] = values[k++] as number;
  }

  /** Once per optimizer step (`applied` false when it was skipped): every stateful component moves here. */
  endStep(applied = true): void {
    for (const c of this.#stateful()) c.spec.endStep?.(c.holder.state, c.params, applied);
  }

  /** Plain-data state of every stateful component, for checkpoints. */
  state(): Record<string, Record<string, number>> {
    return Object.fromEntries(this.#stateful().map((c) => [c.key, { ...c.holder.state }]));
  }

  load(state: Record<string, unknown>): void {
    for (const c of this.#stateful()) {
      c.holder.state = loadStateRecord(c.holder.state, state[c.key], `component "${c.key}"`);
    }
  }
}
