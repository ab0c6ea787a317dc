/**
 * The loss step of one optimizer step, from rewards to gradients, over given per-token log-probs: the same
 * pieces the trainer runs around its model (src/train), exported so that a combination of components can be
 * unit-tested on fixed inputs (`computeStepLoss`) and checked against an independent oracle.
 *
 * ```
 * stage   = pipeline.advantages(rewards)                 combine → shape → KL in reward → estimate → reweight → sample filters
 * tokens  = pipeline.tokenStage(stage, whole-batch [N, T])   token filters: mask and advantage weights
 * rows    = kept rows, cut into micro-batches (at group boundaries when a component needs whole groups)
 * counts  = global token / sequence / group counts of the kept rows
 * global  = Σ over micro-batches of the components' prepass sums (no gradient)
 * loss    = Σ over micro-batches of PolicyLoss(micro-batch, counts, global) → backward
 * ```
 * @module
 */
import { CohortError } from "../errors.js";
import { type Device, noGrad, type Tensor, tensor, tidy } from "../tensor/index.js";
import { globalCounts } from "./aggregate.js";
import type { AlgoConfig, AlgoConfigInput } from "./config.js";
import { Pipeline, type RewardStage } from "./pipeline.js";
import { addGlobals, groupPassRate } from "./policy-loss.js";
import type { Advantages, GlobalCounts, LossBatch, RewardBatch } from "./types.js";

/**
 * Rows of the kept completions cut into micro-batches of at most `size` rows. With `wholeGroups` every group
 * stays whole inside one micro-batch (groups are packed greedily in order; a group larger than `size` is a
 * micro-batch of its own).
 */
export function microBatchRows(
  kept: readonly number[],
  groupIndex: Int32Array,
  size: number,
  wholeGroups: boolean,
): number[][] {
  if (!(size >= 1)) throw new CohortError(`micro-batch size must be ≥ 1, got ${size}`);
  const out: number[][] = [];
  if (!wholeGroups) {
    for (let i = 0; i < kept.length; i += size) out.push(kept.slice(i, i + size));
    return out;
  }
  const byGroup = new Map<number, number[]>();
  for (const r of kept) {
    const g = groupIndex[r] as number;
    let rows = byGroup.get(g);
    if (rows === undefined) {
      rows = [];
      byGroup.set(g, rows);
    }
    rows.push(r);
  }
  let cur: number[] = [];
  for (const rows of byGroup.values()) {
    if (cur.length > 0 && cur.length + rows.length > size) {
      out.push(cur);
      cur = [];
    }
    cur = cur.concat(rows);
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/** The number of micro-batch rows that splits `n` rows into `parts` micro-batches. */
export function rowsPerPart(n: number, parts: number): number {
  return Math.max(1, Math.ceil(n / Math.max(1, parts)));
}

/** Counts of one optimizer step over its micro-batches' masks, with the number of distinct groups (questions). */
export function stepCounts(
  algo: AlgoConfig,
  masks: Tensor[],
  rows: readonly (readonly number[])[],
  groupIndex: Int32Array,
): GlobalCounts {
  const counts = globalCounts(masks, {
    countMaskedSequences: algo.aggregate.countMaskedSequences,
    ...(algo.aggregate.maxLength !== undefined ? { maxLength: algo.aggregate.maxLength } : {}),
  });
  const groups = new Set<number>();
  for (const rs of rows) for (const r of rs) groups.add(groupIndex[r] as number);
  counts.groups = groups.size;
  return counts;
}

/**
 * Advantages of `rows` as a tensor on `device`: [n] for sequence advantages without weights, else [n, C] (token
 * advantages, or sequence advantages times the token filters' weights), columns cut to C.
 */
export function rowAdvantages(
  adv: Advantages,
  weights: Tensor | null,
  rows: readonly number[],
  C: number,
  dtype: "f32" | "f64",
  device: Device,
): Tensor {
  return tidy(() => {
    const idx = tensor(Array.from(rows), { dtype: "i64" });
    const cols = (t: Tensor): Tensor => {
      const have = t.shape[1] as number;
      return have >= C ? t.narrow(1, 0, C) : t;
    };
    let a: Tensor;
    if (adv.kind === "sequence") {
      a = tensor(
        Float64Array.from(rows, (r) => adv.values[r] as number),
        { dtype: "f64" },
      );
      if (weights !== null) a = a.unsqueeze(1).mul(cols(weights.to("cpu").indexSelect(0, idx).to("f64")));
    } else {
      a = cols(adv.values.to("cpu").indexSelect(0, idx).to("f64"));
      if (weights !== null) a = a.mul(cols(weights.to("cpu").indexSelect(0, idx).to("f64")));
    }
    return a.to(dtype).to(device);
  });
}

/** Per-token inputs of `computeStepLoss`, [N, T] over the whole batch (the same columns for every row). */
export interface StepTokens {
  /** ℓ with gradient (usually a leaf with `requireGrad()`); the gradient lands in its `.grad`. */
  logprobs: Tensor;
  oldLogprobs: Tensor;
  refLogprobs?: Tensor;
  /** Per-token entropy (entropy bonus, top-entropy filter, GTPO's mean entropy). */
  entropy?: Tensor;
  tokenIds?: Tensor;
  /** Completion mask (1 = a completion token). */
  mask: Tensor;
  /** CAPO curvature score (score filter, source curvature). */
  curvature?: Tensor;
  /** A caller's per-token score (score filter, source custom). */
  score?: Tensor;
  /** DCPO: ρ^T at a target temperature T. */
  targetRatio?: (temperature: number) => Tensor;
}

/** Rows of the batch: per-function rewards and what the components read beside them. */
export type StepRows = Omit<RewardBatch, "rewards" | "rewardsByFn" | "mask"> & { byFn: Float64Array[] };

export interface StepOptions {
  /** Micro-batches the kept rows are cut into (default 1). */
  microBatches?: number;
  /** Optimizer step (β schedules). */
  step?: number;
}

export interface StepResult {
  /** Σ over micro-batches of the micro-batch losses: the step's loss. */
  loss: number;
  stage: RewardStage;
  advantages: Advantages;
  keep: Uint8Array;
  metrics: Record<string, number>;
}

/** Mean of `x` over each row's valid tokens → length N. */
function rowMeans(x: Tensor, mask: Tensor): Float64Array {
  return tidy(() => {
    const m = mask.to("f64");
    return x.to("f64").mul(m).sum(1).div(m.sum(1).clamp(1, null)).data() as Float64Array;
  });
}

/**
 * One optimizer step's loss and gradient from fixed per-token log-probs, through the same pipeline the trainer
 * runs: advantages, token filters, micro-batches with global counts and step-wide prepass sums, the policy
 * loss summed over micro-batches with `backward()` on each. After the call `tokens.logprobs.grad` holds
 * dLoss/dℓ. Stateful components gather their statistics here; step them after, once per optimizer step, with
 * `pipeline.endStep()` (pass a Pipeline to keep their state between calls).
 */
export function computeStepLoss(
  algo: AlgoConfig | AlgoConfigInput | Pipeline,
  rows: StepRows,
  tokens: StepTokens,
  opts: StepOptions = {},
): StepResult {
  const pipeline = algo instanceof Pipeline ? algo : new Pipeline(algo);
  const { byFn, ...base } = rows;
  const n = base.groupIndex.length;
  const mask = tokens.mask;
  const C = mask.shape[1] as number;
  const dev = mask.device;
  const dtype = tokens.logprobs.dtype === "f64" ? "f64" : "f32";
  const rewardKl =
    pipeline.algo.rewardKl !== undefined && tokens.refLogprobs !== undefined
      ? tidy(() => tokens.oldLogprobs.sub(tokens.refLogprobs as Tensor).mul(mask))
      : undefined;
  const entropy = tokens.entropy;
  const stage = (() => {
    try {
      return pipeline.advantages(byFn, base, {
        mask,
        ...(entropy ? { meanEntropy: () => rowMeans(entropy, mask) } : {}),
        ...(tokens.targetRatio ? { targetRatio: tokens.targetRatio } : {}),
        ...(rewardKl ? { rewardKl } : {}),
      });
    } finally {
      rewardKl?.dispose();
    }
  })();
  const tok = pipeline.tokenStage(stage, {
    mask,
    groupIndex: base.groupIndex,
    ...(base.truncated ? { truncated: base.truncated } : {}),
    ...(tokens.tokenIds ? { tokenIds: tokens.tokenIds } : {}),
    ...(entropy ? { entropy } : {}),
    ...(tokens.curvature ? { curvature: tokens.curvature } : {}),
    ...(tokens.score ? { score: tokens.score } : {}),
  });
  const metrics: Record<string, number> = { ...stage.metrics, ...tok.metrics };
  try {
    const kept = Array.from({ length: n }, (_, i) => i).filter((i) => stage.keep[i] === 1);
    const parts = microBatchRows(
      kept,
      base.groupIndex,
      rowsPerPart(kept.length, opts.microBatches ?? 1),
      pipeline.has("wholeGroups"),
    );
    const rewards = stage.batch.rewards;
    // a group's pass rate from all its rows, however the step is split (ETR's macro bound)
    const passRate = groupPassRate(rewards, base.groupIndex);
    const micro = (rs: number[], withGrad: boolean): LossBatch => {
      const idx = tensor(rs, { dtype: "i64" }).to(dev);
      const pick = (t: Tensor) => t.indexSelect(0, idx);
      const lp = withGrad ? pick(tokens.logprobs) : pick(tokens.logprobs.detach());
      return {
        logprobs: lp,
        oldLogprobs: pick(tokens.oldLogprobs),
        ...(tokens.refLogprobs ? { refLogprobs: pick(tokens.refLogprobs) } : {}),
        ...(entropy ? { entropy: pick(entropy) } : {}),
        advantages: rowAdvantages(stage.advantages, tok.advantageWeights, rs, C, dtype, dev),
        mask: pick(tok.mask).to(dtype),
        groupIndex: Int32Array.from(rs, (r) => base.groupIndex[r] as number),
        rewards: Float64Array.from(rs, (r) => rewards[r] as number),
        passRate: Float64Array.from(rs, (r) => passRate[r] as number),
        ...(base.itemIndex ? { itemIndex: pick(base.itemIndex) } : {}),
      };
    };
    const counts = tidy(() =>
      stepCounts(
        pipeline.algo,
        parts.map((rs) => tok.mask.indexSelect(0, tensor(rs, { dtype: "i64" }).to(dev))),
        parts,
        base.groupIndex,
      ),
    );
    const global = pipeline.loss.emptyGlobals();
    if (pipeline.loss.needsPrepass) {
      noGrad(() => {
        for (const rs of parts) tidy(() => addGlobals(global, pipeline.loss.prepass(micro(rs, false), counts, opts)));
      });
    }
    let total = 0;
    const lossMetrics: Record<string, number[]> = {};
    for (const rs of parts) {
      tidy(() => {
        const lb = micro(rs, true);
        const res = pipeline.loss.compute(lb, counts, { step: opts.step ?? 0, global });
        res.loss.backward();
        pipeline.observe(lb);
        total += res.loss.item();
        for (const [k, v] of Object.entries(res.metrics)) {
          lossMetrics[k] ??= [];
          lossMetrics[k].push(v);
        }
      });
    }
    for (const [k, vs] of Object.entries(lossMetrics)) metrics[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
    return { loss: total, stage, advantages: stage.advantages, keep: stage.keep, metrics };
  } finally {
    tok.mask.dispose();
    tok.advantageWeights?.dispose();
  }
}
