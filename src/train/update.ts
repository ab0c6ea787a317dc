/**
 * The update of one training step (ALGORITHMS.md §A.1 steps 3–6) from its scored rollouts:
 *
 * ```
 * whole    = per-token inputs by need (entropy, curvature, π_old/π_ref for KL in the reward)   batch.ts
 * stage    = rewards → advantages → sample filters (over every rank's rows)               pipeline / sync
 * tokens   = token filters over the whole batch                                           pipeline
 * micro    = kept rows → minibatches → micro-batches (at group boundaries when needed)
 * for μ passes, for each minibatch:
 *   counts, step-wide sums (prepass) over every micro-batch and rank
 *   Σ micro-batches: loss = PolicyLoss(forward(micro), counts, sums) → backward; components observe
 *   all-reduce gradients, clip, AdamW step; stateful components step once
 * ```
 * @module
 */

import type { ImportanceSamplingMode } from "../algo/importance.js";
import { emptyIsStats, mergeIsStats, samplerImportanceWeights } from "../algo/importance.js";
import type { RewardStage, StageInputs, TokenStage } from "../algo/pipeline.js";
import { addGlobals, broadcastAdvantages, groupPassRate } from "../algo/policy-loss.js";
import { microBatchRows, rowsPerPart, stepCounts } from "../algo/step.js";
import type { GlobalCounts, LossBatch } from "../algo/types.js";
import { oneStepEpisodes } from "../env/source.js";
import { isRankingTask } from "../task/ranking.js";
import { clipGradNorm, keep, learningRate, noGrad, type Tensor, tensor, tidy } from "../tensor/index.js";
import {
  type BatchSource,
  buildMicro,
  disposeMicro,
  disposeWhole,
  type Micro,
  pickRows,
  targetRatioOf,
  type WholeBatch,
  wholeBatch,
} from "./batch.js";
import type { TrainConfig } from "./config.js";
import type { Run } from "./context.js";
import type { MetricRecord } from "./metrics.js";
import { addMismatchRows, emptyMismatchBuckets, mismatchRowSums } from "./mismatch.js";
import { rankInputs } from "./ranked.js";
import type { Collected, Rollout } from "./sources.js";
import { isOffPolicy, meanLogprobsOf } from "./sources.js";
import { rolloutRows, stepMetrics, type TrainingTotals } from "./step-metrics.js";

/** What the batch builders (batch.ts) read of the run. */
export function batchSource(run: Run): BatchSource {
  return {
    model: run.policy.model,
    ref: run.policy.ref,
    lora: run.policy.lora,
    padId: run.tok.padId,
    temperature: run.cfg.sampling.temperature,
    microBatchSize: run.cfg.train.microBatchSize,
    backend: run.backend,
  };
}

function maskedMean(x: Tensor, mask: Tensor): number {
  return tidy(() => {
    const d = mask.sum().item();
    return d > 0 ? x.mul(mask).sum().item() / d : 0;
  });
}

function split<T>(xs: T[], parts: number): T[][] {
  const out: T[][] = [];
  const size = Math.ceil(xs.length / parts);
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Mean of `x` over each row's valid tokens → length N. */
function rowMeans(x: Tensor, mask: Tensor): Float64Array {
  return tidy(() => {
    const m = mask.to("f64");
    return x.to("f64").mul(m).sum(1).div(m.sum(1).clamp(1, null)).data() as Float64Array;
  });
}

/** The loss inputs of a micro-batch from its forward pass (pass rates over whole groups, for ETR). */
function lossBatchOf(m: Micro, f: { lp: Tensor; entropy?: Tensor }, ro: Rollout, rewards: Float64Array): LossBatch {
  const passRate = groupPassRate(rewards, ro.groupIndex);
  return {
    logprobs: f.lp,
    oldLogprobs: m.oldLp ?? f.lp.detach(),
    ...(m.refLp ? { refLogprobs: m.refLp } : {}),
    ...(f.entropy ? { entropy: f.entropy } : {}), // with grad: entropy bonuses differentiate it
    advantages: m.adv,
    mask: m.mask,
    groupIndex: Int32Array.from(m.rows, (r) => ro.groupIndex[r] as number),
    rewards: Float64Array.from(m.rows, (r) => rewards[r] as number),
    passRate: Float64Array.from(m.rows, (r) => passRate[r] as number),
    ...(m.itemIndex ? { itemIndex: m.itemIndex } : {}),
  };
}

/**
 * The step-wide prepass sums of a minibatch (components that need the whole step, e.g. DisCO's KL_old, R²VPO's
 * mean ratio): a forward pass without gradient per micro-batch, summed over micro-batches and processes.
 */
function prepassOf(run: Run, mb: Micro[], ro: Rollout, rewards: Float64Array, counts: GlobalCounts, step: number) {
  const loss = run.pipeline.loss;
  const global = loss.emptyGlobals();
  noGrad(() => {
    for (const m of mb) {
      tidy(() => {
        const f = run.backend.logprobs(run.policy.model, m, run.cfg.sampling.temperature, false);
        addGlobals(global, loss.prepass(lossBatchOf(m, f, ro, rewards), counts, { step }));
      });
    }
  });
  const recs: Record<string, number>[] = Object.values(global);
  const summed = run.sync.sums(recs.flatMap((rec) => Object.values(rec)));
  let k = 0;
  for (const rec of recs) for (const f of Object.keys(rec)) rec[f] = summed[k++] as number;
  return global;
}

/** The advantage and token stages of the step's rows. */
function stages(
  run: Run,
  col: Collected,
  src: BatchSource,
): { stage: RewardStage; tok: TokenStage; whole: WholeBatch; itemIndex: Tensor | null; cleanup: () => void } {
  const pl = run.pipeline;
  const { ro, byFn } = col;
  const lengths = Int32Array.from(ro.completions, (c) => c.tokens.length);
  const truncated = Uint8Array.from(ro.completions, (c) => (c.finishReason === "length" ? 1 : 0));
  const whole = wholeBatch(src, ro, { pipeline: pl });
  const rewardKl =
    whole.old && whole.ref ? keep(tidy(() => (whole.old as Tensor).sub(whole.ref as Tensor).mul(whole.mask))) : null;
  // Rank-GRPO: the rank rewards and the item of every token, from a ranking task's lists (ranked.ts)
  const ranked =
    (pl.has("rankRewards") || pl.has("itemIndex")) && isRankingTask(run.task)
      ? rankInputs(run.task, run.tok, ro, whole.mask.shape[1] as number)
      : null;
  try {
    const entropy = whole.entropy;
    const inputs: StageInputs = {
      ...(entropy ? { meanEntropy: () => rowMeans(entropy, whole.mask) } : {}),
      ...(pl.has("targetRatio") ? { targetRatio: targetRatioOf(src, ro, whole.C, whole.mask) } : {}),
      ...(rewardKl ? { rewardKl } : {}),
    };
    const base = {
      groupIndex: ro.groupIndex,
      lengths,
      meanLogprobs: meanLogprobsOf(ro),
      truncated,
      texts: ro.texts,
      fields: ro.problems.map((p) => (p.meta ?? {}) as Record<string, unknown>),
      ...oneStepEpisodes(ro.problems),
      ...(ranked ? { rankRewards: ranked.rankRewards, itemIndex: ranked.itemIndex } : {}),
    };
    // the source's own stage (episodes), else the pipeline's over every process's rows
    const stage =
      run.source.stage?.(pl, col, inputs) ?? run.sync.advantages(pl, byFn, base, { ...inputs, mask: whole.mask });
    const tok = pl.tokenStage(stage, {
      mask: whole.mask,
      tokenIds: whole.tokenIds,
      truncated,
      groupIndex: ro.groupIndex,
      ...(entropy ? { entropy } : {}),
      ...(whole.curvature ? { curvature: whole.curvature } : {}),
    });
    return {
      stage,
      tok,
      whole,
      itemIndex: ranked?.itemIndex ?? null,
      cleanup: () => {
        ranked?.itemIndex.dispose();
        disposeWhole(whole);
        tok.mask.dispose();
        tok.advantageWeights?.dispose();
        for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") a.values.dispose();
      },
    };
  } catch (e) {
    ranked?.itemIndex.dispose();
    throw e;
  } finally {
    rewardKl?.dispose();
  }
}

/** Each row's advantage (a token advantage: its mean over the row's tokens), or null when rows are not completions. */
function rowAdvantages(stage: RewardStage, mask: Tensor, n: number): Float64Array | null {
  const a = stage.advantages;
  if (a.kind === "sequence") return a.values.length === n ? Float64Array.from(a.values) : null;
  return a.values.shape[0] === n && mask.shape[0] === n ? rowMeans(a.values, mask) : null;
}

/** A step's metrics and its rollout table (made on demand: the rows samples.jsonl logs at an evaluation step). */
export interface StepUpdate {
  metrics: MetricRecord;
  rollouts: () => Record<string, unknown>[];
}

/**
 * Trains on a step's scored rollouts; returns the step's metrics and its rollout table. `t0`: when the step
 * began (for timings).
 */
/** The learning rate of optimizer step `step` (1-based) under `train.schedule`. */
export function stepLearningRate(cfg: TrainConfig, step: number): number {
  const t = cfg.train;
  return learningRate(
    { kind: t.schedule, lr: t.lr, warmupSteps: t.warmupSteps, totalSteps: t.steps, minLrRatio: t.minLrRatio },
    step - 1,
  );
}

export function update(run: Run, step: number, col: Collected, t0: number): StepUpdate {
  const { cfg, algo } = run;
  const pl = run.pipeline;
  const { ro } = col;
  const N = ro.completions.length;
  const src = batchSource(run);
  const { stage, tok, whole, itemIndex, cleanup } = stages(run, col, src);
  const rewards = stage.batch.rewards;

  // ---- minibatches and micro-batches of the kept rows (cut at group boundaries for per-question losses) ----
  const kept = Array.from({ length: N }, (_, i) => i).filter((i) => stage.keep[i] === 1);
  const wholeGroups = pl.has("wholeGroups");
  const miniBatches = run.sync.miniBatches(kept, cfg.train.miniBatches, (rows, parts) =>
    wholeGroups ? microBatchRows(rows, ro.groupIndex, rowsPerPart(rows.length, parts), true) : split(rows, parts),
  );
  // π_old is cached when the weights move before the last update of this batch (μ > 1, several minibatches)
  const storeOld = cfg.train.innerIterations > 1 || Math.min(cfg.train.miniBatches, N) > 1;
  const cache = { storeOld, ref: pl.has("refLogprobs") };
  let micros: Micro[][];
  let advantages: Float64Array | null;
  try {
    advantages = run.cfg.eval.logSamples > 0 ? rowAdvantages(stage, whole.mask, N) : null;
    micros = miniBatches.map((mb) =>
      // ⌈n / microBatchSize⌉ micro-batches of equal size (at group boundaries when a component needs whole groups)
      microBatchRows(
        mb,
        ro.groupIndex,
        rowsPerPart(mb.length, Math.ceil(mb.length / cfg.train.microBatchSize)),
        wholeGroups,
      ).map((rows) => {
        const m = buildMicro(src, ro, rows, stage, tok, whole, cache, isOffPolicy);
        if (itemIndex) m.itemIndex = pickRows(itemIndex, rows, m.C, run.policy.model.device);
        return m;
      }),
    );
  } finally {
    cleanup();
  }

  // ---- μ passes of optimisation ------------------------------------------------------------------
  const tTrain0 = performance.now();
  const totals: TrainingTotals = {
    gradNorm: 0,
    lossSum: 0,
    entSum: 0,
    entTok: 0,
    klSum: 0,
    mismatchSum: 0,
    mismatchTok: 0,
    mismatchBuckets: emptyMismatchBuckets(),
    isStats: emptyIsStats(),
    skipped: 0,
    optSteps: 0,
    lossMetrics: {},
  };
  const lr = stepLearningRate(cfg, step);
  const T = cfg.sampling.temperature;
  const params = run.policy.params;
  const is = run.importanceSampling;
  for (let it = 0; it < cfg.train.innerIterations; it++) {
    for (const mb of micros) {
      run.opt.zeroGrad();
      const local = stepCounts(
        algo,
        mb.map((m) => m.mask),
        mb.map((m) => m.rows),
        ro.groupIndex,
      );
      const counts = run.sync.counts(local);
      // step-wide sums (one forward without gradient per micro-batch; from the same forward when there is one)
      const onePass = mb.length === 1 && run.sync.worldSize === 1;
      let global = pl.loss.needsPrepass && !onePass ? prepassOf(run, mb, ro, rewards, counts, step) : {};
      let finiteLoss = true;
      for (const m of mb) {
        tidy(() => {
          // the trainer's own `entropy` metric reads the entropy of every step
          const f = run.backend.logprobs(run.policy.model, m, T, true);
          const lb = lossBatchOf(m, f, ro, rewards);
          if (pl.loss.needsPrepass && onePass)
            global = pl.loss.prepass({ ...lb, logprobs: f.lp.detach() }, counts, { step });
          // train/sampler mismatch correction (algo/importance.ts): w scales each token's advantage
          const isw = is
            ? samplerImportanceWeights(
                lb.oldLogprobs,
                m.samplerLp,
                m.mask,
                is.mode as ImportanceSamplingMode,
                is.cap,
                m.offPolicy,
              )
            : null;
          if (isw && it === 0) totals.isStats = mergeIsStats(totals.isStats, isw.stats);
          if (isw) lb.advantages = broadcastAdvantages(m.adv, f.lp).mul(isw.weights);
          const res = pl.loss.compute(lb, counts, { step, global });
          const lv = res.loss.item();
          if (!Number.isFinite(lv)) finiteLoss = false;
          else {
            // data parallel: buckets are all-reduced during the step's last backward pass
            if (m === mb[mb.length - 1]) run.sync.beforeLastBackward(params);
            res.loss.backward();
          }
          pl.observe(lb);
          totals.lossSum += lv;
          for (const [k, v] of Object.entries(res.metrics)) {
            totals.lossMetrics[k] ??= [];
            totals.lossMetrics[k].push(v);
          }
          if (it === 0) observeFirstPass(totals, m, f, ro);
        });
      }
      finiteLoss = run.sync.reduceGradients(params, finiteLoss);
      const gn = clipGradNorm(params, cfg.train.maxGradNorm > 0 ? cfg.train.maxGradNorm : Number.POSITIVE_INFINITY);
      totals.gradNorm = gn;
      // stateful components move once per optimizer step, with the same sums in every process
      pl.setStepSums(run.sync.sums(pl.stepSums()));
      if (!finiteLoss || !Number.isFinite(gn)) {
        totals.skipped++;
        run.opt.zeroGrad();
        pl.endStep(false);
        run.diagnostics.nonFinite(step, finiteLoss ? "gradient norm" : "loss");
        continue;
      }
      run.opt.step(lr);
      pl.endStep(true);
      totals.optSteps++;
      run.diagnostics.gradNorm(step, gn);
    }
  }
  run.opt.zeroGrad();
  for (const m of micros.flat()) disposeMicro(m);
  const times = { t0, tSample: t0 + col.samplingMs, tTrain0, tEnd: performance.now() };
  const metrics = stepMetrics(run, step, col, {
    rewards,
    metrics: { ...stage.metrics, ...tok.metrics },
    kept,
    lr,
    totals,
    times,
  });
  const rows = run.cfg.eval.logSamples;
  return { metrics, rollouts: () => rolloutRows(run, step, col, { rewards, advantages, rows }) };
}

/** Entropy, KL to the reference (or drift from π_old) and sampler mismatch of the first pass. */
function observeFirstPass(t: TrainingTotals, m: Micro, f: { lp: Tensor; entropy?: Tensor }, ro: Rollout): void {
  const tokens = m.mask.gt(0).to("f32");
  const nTok = tokens.sum().item();
  if (f.entropy) {
    t.entSum += maskedMean(f.entropy, tokens) * nTok;
    t.entTok += nTok;
  }
  const before = m.oldLp ?? f.lp.detach();
  // off-policy rows carry the training model's log-probs, not a sampler's: not a mismatch sample
  const onPolicyTokens = m.offPolicy.includes(1)
    ? tokens.mul(
        tensor(
          Float32Array.from(m.offPolicy, (o) => 1 - o),
          { shape: [m.rows.length, 1], device: tokens.device },
        ),
      )
    : tokens;
  const nSampled = onPolicyTokens.sum().item();
  t.mismatchSum += maskedMean(before.sub(m.samplerLp).abs(), onPolicyTokens) * nSampled;
  t.mismatchTok += nSampled;
  // by completion length, summed in float64 (the split into micro-batches changes only the rounding)
  const rows = mismatchRowSums(before, m.samplerLp, onPolicyTokens);
  const lengths = m.rows.map((r) => ro.completions[r]?.tokens.length ?? 0);
  addMismatchRows(t.mismatchBuckets, lengths, rows.sums, rows.tokens);
  const refOrOld = m.refLp ?? m.oldLp;
  if (refOrOld) {
    const d = refOrOld.sub(f.lp.detach()).clamp(-20, 20);
    t.klSum += maskedMean(d.exp().sub(d).sub(1), tokens) * nTok;
  }
}
