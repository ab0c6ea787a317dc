/**
 * A training step's metrics, made in one place from the step's rollouts, stages and update totals, combined
 * over processes by one function (GradSync.stepMetrics → src/parallel/metrics.ts), with the documented keys below
 * (the README's metrics table is generated from `STEP_METRICS` and checked by a test).
 * @module
 */
import type { ImportanceSamplingStats } from "../algo/importance.js";
import { isMetrics } from "../algo/importance.js";
import type { Problem } from "../task/types.js";
import type { Run } from "./context.js";
import { type MetricRecord, stats } from "./metrics.js";
import { type MismatchBuckets, mismatchBucketMetrics } from "./mismatch.js";
import { type Collected, meanLogprobsOf } from "./sources.js";

/** The trainer's own keys (components add theirs under their own prefix: docs/COMPONENTS.md). */
export const STEP_METRICS: readonly (readonly [string, string])[] = [
  ["reward_mean, reward_std", "combined, shaped reward over the step's rows (KL in the reward included)"],
  ["reward/<fn>/mean, reward/<fn>/std", "each reward function's raw values"],
  ["reward_failures", "reward calls that threw, timed out or returned NaN (scored as the fallback)"],
  ["frac_reward_zero_std", "fraction of groups whose rewards are all equal (no signal)"],
  ["completions/mean_length, min_length, max_length, clipped_ratio", "completion lengths; share cut at the limit"],
  ["loss", "the policy loss, averaged over the step's optimizer steps"],
  ["kl", "k3 estimate of KL(π_θ‖π_ref) when a reference is used, else of the drift from π_old (0 at μ = 1)"],
  ["entropy", "mean token entropy of the policy on the trained tokens"],
  ["grad_norm, learning_rate, skipped_updates", "of the last optimizer step; updates skipped for NaN/Inf"],
  ["loss/policy, loss/total, ratio/mean|min|max, clip/low_ratio|high_ratio|region_ratio", "the policy loss's own"],
  ["sampler/logprob_abs_diff_mean", "mean |sampler − trainer| log-prob of the same tokens"],
  [
    "sampler/logprob_abs_diff/len_0_64|len_64_256|len_256_plus",
    "the same by completion length in tokens: [0, 64), [64, 256), ≥ 256 (null when no completion falls in it)",
  ],
  [
    "sampler/is_ratio/min|mean|max, sampler/is_masked_fraction",
    "importance-sampling correction (sampler.importanceSampling): the applied weights; share zeroed by a mask mode",
  ],
  [
    "sampler/is_raw_ratio/min|mean|max, sampler/is_capped_fraction",
    "the weights before truncation / masking; share over the cap (truncated or masked)",
  ],
  [
    "sampler/is_ess, sampler/is_raw_ess",
    "effective sample size (Σw)²/(N·Σw²) in [0, 1] of the applied / raw weights, over tokens or sequences as the mode weights",
  ],
  ["filter/<name>/removed_groups|removed_sequences|removed_tokens", "what the sample and token filters removed"],
  ["kl_in_reward, kl_in_reward/beta", "mean per-token k1 put into the reward (algo.rewardKl)"],
  ["rollout/…, budget/…, vas/…, gdro/…", "rollout-level components (dynamic sampling rounds, budgets, samplers)"],
  ["pool/…, time/rollout_wait_s", "rollout workers (sampler: openai)"],
  ["dist/allreduce_in_backward, time/allreduce_wait_s", "data parallel: gradient all-reduce"],
  ["tokens_per_s/sampling|training, time/sampling_s|training_s|step_s", "throughput and wall time"],
  [
    "mem/peak_rss_gb",
    "peak resident memory of the process over the step in GiB (VmHWM after resetting it at the step's start; the process's peak where Linux does not allow the reset)",
  ],
  [
    "eval_accuracy, eval_format",
    "held-out evaluation (every eval.everySteps): the share counted correct by the task's verifier or by `eval.metric` (a reward ≥ its pass mark); the share whose answer the verifier could read",
  ],
  ["eval_reward/<fn>", "each reward function's mean on the held-out completions"],
];

/** The README's table of metric keys (between the `metrics` markers), generated from `STEP_METRICS`. */
export function readmeMetricsTable(): string {
  const esc = (x: string) => x.replaceAll("|", "\\|");
  const rows = STEP_METRICS.map(
    ([k, v]) =>
      `| ${k
        .split(", ")
        .map((x) => `\`${esc(x)}\``)
        .join(", ")} | ${esc(v)} |`,
  );
  return ["| keys | meaning |", "|---|---|", ...rows].join("\n");
}

/** Running sums of a step's update (update.ts). */
export interface TrainingTotals {
  gradNorm: number;
  lossSum: number;
  entSum: number;
  entTok: number;
  klSum: number;
  mismatchSum: number;
  mismatchTok: number;
  /** The mismatch by completion length (first pass, every micro-batch). */
  mismatchBuckets: MismatchBuckets;
  isStats: ImportanceSamplingStats;
  skipped: number;
  optSteps: number;
  lossMetrics: Record<string, number[]>;
}

export interface StepOutcome {
  /** Combined, shaped rewards per row. */
  rewards: Float64Array;
  /** The advantage and token stages' metrics. */
  metrics: Record<string, number>;
  kept: number[];
  lr: number;
  totals: TrainingTotals;
  times: { t0: number; tSample: number; tTrain0: number; tEnd: number };
}

/**
 * The step's rollout table (TRL's completion table): whole groups from the first until at least `rows` rows,
 * each with its prompt, completion, every reward function's score, the combined reward, the advantage (a token
 * advantage's mean) and whether the evaluation metric counts it correct.
 */
export function rolloutRows(
  run: Run,
  step: number,
  col: Collected,
  o: { rewards: Float64Array; advantages: Float64Array | null; rows: number },
): Record<string, unknown>[] {
  const { ro, byFn } = col;
  const out: Record<string, unknown>[] = [];
  const value = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? null : x);
  const metric = run.metric;
  const k = metric.kind === "reward" ? run.rewards.findIndex((r) => r.name === metric.name) : -1;
  let lastGroup = -1;
  for (let i = 0; i < ro.completions.length; i++) {
    const g = ro.groupIndex[i] as number;
    if (out.length >= o.rows && g !== lastGroup) break;
    lastGroup = g;
    const p = ro.problems[i] as Problem;
    const text = ro.texts[i] as string;
    let correct: boolean | null = null;
    if (metric.kind === "reward") correct = ((byFn[k]?.[i] ?? Number.NaN) as number) >= metric.pass;
    else if (run.cfg.env === undefined) {
      try {
        correct = run.task.verify(p, text).correct;
      } catch {
        correct = null; // a problem the task cannot check (made by a custom rollout source)
      }
    }
    out.push({
      step,
      kind: "rollout",
      group: g,
      prompt: p.prompt,
      completion: text,
      answer: p.answer ?? null,
      rewards: Object.fromEntries(run.rewards.map((r, j) => [r.name, value(byFn[j]?.[i])])),
      reward: value(o.rewards[i]),
      advantage: o.advantages === null ? null : value(o.advantages[i]),
      correct,
    });
  }
  return out;
}

/** The step's metrics (combined over processes) and the diagnostics they trigger. */
export function stepMetrics(run: Run, step: number, col: Collected, o: StepOutcome): MetricRecord {
  const { ro, byFn, sampledTokens } = col;
  const { rewards, totals: t, times } = o;
  const N = ro.completions.length;
  const lengths = Int32Array.from(ro.completions, (c) => c.tokens.length);
  const truncated = ro.completions.reduce((a, c) => a + (c.finishReason === "length" ? 1 : 0), 0);
  const metrics: MetricRecord = { step };
  const finite = Array.from(rewards).filter((r) => !Number.isNaN(r));
  const rs = stats(finite);
  metrics.reward_mean = rs.mean;
  metrics.reward_std = rs.std;
  run.rewards.forEach((r, k) => {
    const s = stats(Array.from(byFn[k] as Float64Array).filter((x) => !Number.isNaN(x)));
    metrics[`reward/${r.name}/mean`] = s.mean;
    metrics[`reward/${r.name}/std`] = s.std;
  });
  metrics.reward_failures = col.failures;
  // groups of the trained batch (B, unless a budget allocator skipped prompts or dynamic sampling fell short)
  let zeroStd = 0;
  let B = 0;
  for (const g of ro.groupIndex) B = Math.max(B, g + 1);
  for (let b = 0; b < B; b++) {
    const g = Array.from(rewards).filter((_, i) => ro.groupIndex[i] === b && !Number.isNaN(rewards[i] as number));
    if (g.length < 2 || stats(g).std === 0) zeroStd++;
  }
  metrics.frac_reward_zero_std = B > 0 ? zeroStd / B : 0;
  const ls = stats(lengths);
  metrics["completions/mean_length"] = ls.mean;
  metrics["completions/min_length"] = ls.min;
  metrics["completions/max_length"] = ls.max;
  metrics["completions/clipped_ratio"] = truncated / N;
  Object.assign(metrics, o.metrics, col.metrics);
  const trainedTokens = o.kept.reduce((a, r) => a + (lengths[r] as number), 0) * run.cfg.train.innerIterations;
  metrics.loss = t.optSteps + t.skipped > 0 ? t.lossSum / Math.max(1, t.optSteps + t.skipped) : 0;
  // null (not 0) when every sample was filtered out and nothing was trained on
  metrics.kl = t.entTok > 0 ? t.klSum / t.entTok : null;
  metrics.entropy = t.entTok > 0 ? t.entSum / t.entTok : null;
  metrics.grad_norm = t.gradNorm;
  metrics.learning_rate = o.lr;
  metrics.skipped_updates = t.skipped;
  for (const [k, vs] of Object.entries(t.lossMetrics)) metrics[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
  metrics["sampler/logprob_abs_diff_mean"] = t.mismatchTok > 0 ? t.mismatchSum / t.mismatchTok : 0;
  if (t.mismatchTok > 0) Object.assign(metrics, mismatchBucketMetrics(t.mismatchBuckets));
  Object.assign(metrics, isMetrics(t.isStats));
  metrics["tokens_per_s/sampling"] = sampledTokens / ((times.tSample - times.t0) / 1000);
  metrics["tokens_per_s/training"] = trainedTokens / Math.max(1e-9, (times.tEnd - times.tTrain0) / 1000);
  metrics["time/sampling_s"] = (times.tSample - times.t0) / 1000;
  metrics["time/training_s"] = (times.tEnd - times.tTrain0) / 1000;
  metrics["time/step_s"] = (times.tEnd - times.t0) / 1000;
  // the whole batch's metrics over every process (src/parallel/metrics.ts); the same record with one process
  const out = run.sync.stepMetrics(metrics, {
    rewards: finite,
    rewardsByFn: Object.fromEntries(
      run.rewards.map((r, k) => [r.name, Array.from(byFn[k] as Float64Array).filter((x) => !Number.isNaN(x))]),
    ),
    lengths: Array.from(lengths),
    truncated,
    groups: B,
    zeroStdGroups: zeroStd,
    entropyTokens: t.entTok,
    mismatchTokens: t.mismatchTok,
    mismatchBuckets: t.mismatchBuckets,
    ...(t.isStats.count > 0 ? { isStats: t.isStats } : {}),
    sampledTokens,
    trainedTokens,
    microBatchValues: Object.fromEntries(Object.entries(t.lossMetrics).map(([k, vs]) => [k, vs.length])),
  });
  // diagnostics that explain themselves
  run.diagnostics.zeroStd(step, out.frac_reward_zero_std as number);
  if (typeof out.entropy === "number") run.diagnostics.entropy(step, out.entropy);
  // likelihood of the successful completions (the task's success reward, as rollout wrappers judge it)
  const meanLp = meanLogprobsOf(ro);
  const lp = Array.from(meanLp).filter((_, i) => run.isSuccess(byFn, i));
  if (lp.length > 0) run.diagnostics.correctLikelihood(step, stats(lp).mean);
  return out;
}
