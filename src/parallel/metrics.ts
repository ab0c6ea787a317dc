/**
 * One step's metrics of a data-parallel run, combined from every rank's local metrics and a few row-level
 * facts (`StepFacts`), so that the logged values are those of the whole batch, as one process would log them:
 *
 * | metric | combined as |
 * |---|---|
 * | `reward_mean`, `reward_std`, `reward/{fn}/mean`, `reward/{fn}/std`, `completions/{mean,min,max}_length` | recomputed from every rank's rows |
 * | `completions/clipped_ratio` | truncated rows / rows |
 * | `frac_reward_zero_std` | zero-std groups / groups |
 * | a policy-loss metric (`clip/*`, `ratio/*`, `loss/policy`, a regularizer's `kl`, …) | mean over every rank's micro-batches, as one process averages over its micro-batches |
 * | `kl` (without a KL regularizer), `entropy`, `sampler/logprob_abs_diff_mean` | token-weighted mean (null when no rank trained a token) |
 * | `sampler/logprob_abs_diff/<length bucket>`, `sampler/is_*` | recomputed from every rank's sums (`facts.mismatchBuckets`, `facts.isStats`) |
 * | `loss` | sum (each rank's loss is already divided by the global token/sequence counts) |
 * | `grad_norm`, `learning_rate`, `skipped_updates`, `step` | rank 0's (equal on every rank after the gradient all-reduce) |
 * | `reward_failures`, `filter/{name}/removed_tokens`, `rollout/prompts_sampled`, `rollout/groups_kept` | sum |
 * | `rollout/rounds`, `rollout/capped`, `time/*` (incl. `time/allreduce_wait_s`) | max |
 * | `dist/allreduce_in_backward` (data-parallel runs only) | mean over ranks |
 * | `tokens_per_s/sampling`, `tokens_per_s/training` | all ranks' tokens / the slowest rank's time |
 * | any other number | mean over the ranks that report it, weighted by their rows |
 * @module
 */
import { emptyIsStats, type ImportanceSamplingStats, isMetrics, mergeIsStats } from "../algo/importance.js";
import type { MetricRecord } from "../train/metrics.js";
import { stats } from "../train/metrics.js";
import {
  emptyMismatchBuckets,
  type MismatchBuckets,
  mergeMismatchBuckets,
  mismatchBucketMetrics,
} from "../train/mismatch.js";

/** Row-level facts of one rank's step (what the means and stds above are recomputed from). */
export interface StepFacts {
  /** Finite combined rewards of the rank's rows. */
  rewards: number[];
  /** Per reward function, its finite values. */
  rewardsByFn: Record<string, number[]>;
  /** Completion lengths (tokens) of every row. */
  lengths: number[];
  truncated: number;
  groups: number;
  zeroStdGroups: number;
  /** Tokens behind `entropy`/`kl` and behind `sampler/logprob_abs_diff_mean`. */
  entropyTokens: number;
  mismatchTokens: number;
  /** The mismatch sums by completion length (train/mismatch.ts `MISMATCH_LENGTH_BUCKETS`). */
  mismatchBuckets?: MismatchBuckets;
  /** The importance-sampling sums, when the rank weighted any token or sequence. */
  isStats?: ImportanceSamplingStats;
  sampledTokens: number;
  trainedTokens: number;
  /** Per policy-loss metric, how many micro-batch values its mean is over. */
  microBatchValues: Record<string, number>;
}

export interface RankStep {
  metrics: MetricRecord;
  facts: StepFacts;
}

const SUM = [
  /^loss$/,
  /^reward_failures$/,
  /^filter\/.+\/removed_tokens$/,
  /^rollout\/prompts_sampled$/,
  /^rollout\/groups_kept$/,
];
const MAX = [/^rollout\/rounds$/, /^rollout\/capped$/, /^time\//];
const MEAN = [/^dist\//];
const FIRST = new Set(["step", "grad_norm", "learning_rate", "skipped_updates"]);

function weighted(parts: RankStep[], key: string, weight: (f: StepFacts) => number): number | null {
  let num = 0;
  let den = 0;
  for (const p of parts) {
    const v = p.metrics[key];
    const w = weight(p.facts);
    if (typeof v === "number" && Number.isFinite(v) && w > 0) {
      num += v * w;
      den += w;
    }
  }
  return den > 0 ? num / den : null;
}

/** The step's metrics over all ranks (see the table above). `parts[r]` is rank r's. */
export function combineStepMetrics(parts: RankStep[]): MetricRecord {
  const first = parts[0] as RankStep;
  const keys = new Set(parts.flatMap((p) => Object.keys(p.metrics)));
  const out: MetricRecord = {};
  for (const k of keys) {
    const vals = parts.map((p) => p.metrics[k]);
    const nums = vals.filter((v): v is number => typeof v === "number");
    if (FIRST.has(k)) out[k] = first.metrics[k] ?? null;
    else if (nums.length === 0) out[k] = vals.find((v) => v !== undefined) ?? null;
    else if (SUM.some((re) => re.test(k))) out[k] = nums.reduce((a, b) => a + b, 0);
    else if (MAX.some((re) => re.test(k))) out[k] = Math.max(...nums);
    else if (MEAN.some((re) => re.test(k))) out[k] = nums.reduce((a, b) => a + b, 0) / nums.length;
    else out[k] = weighted(parts, k, (f) => f.lengths.length);
  }
  const all = (f: (s: StepFacts) => number[]) => parts.flatMap((p) => f(p.facts));
  const rs = stats(all((f) => f.rewards));
  out.reward_mean = rs.mean;
  out.reward_std = rs.std;
  for (const name of Object.keys(first.facts.rewardsByFn)) {
    const s = stats(all((f) => f.rewardsByFn[name] ?? []));
    out[`reward/${name}/mean`] = s.mean;
    out[`reward/${name}/std`] = s.std;
  }
  const lengths = all((f) => f.lengths);
  const ls = stats(lengths);
  out["completions/mean_length"] = ls.mean;
  out["completions/min_length"] = ls.min;
  out["completions/max_length"] = ls.max;
  const total = (f: (s: StepFacts) => number) => parts.reduce((a, p) => a + f(p.facts), 0);
  if (keys.has("completions/clipped_ratio"))
    out["completions/clipped_ratio"] = lengths.length > 0 ? total((f) => f.truncated) / lengths.length : 0;
  if (keys.has("frac_reward_zero_std")) {
    const groups = total((f) => f.groups);
    out.frac_reward_zero_std = groups > 0 ? total((f) => f.zeroStdGroups) / groups : 0;
  }
  for (const k of ["kl", "entropy"]) if (keys.has(k)) out[k] = weighted(parts, k, (f) => f.entropyTokens);
  const micro = new Set(parts.flatMap((p) => Object.keys(p.facts.microBatchValues)));
  for (const k of micro) out[k] = weighted(parts, k, (f) => f.microBatchValues[k] ?? 0);
  if (keys.has("sampler/logprob_abs_diff_mean"))
    out["sampler/logprob_abs_diff_mean"] =
      weighted(parts, "sampler/logprob_abs_diff_mean", (f) => f.mismatchTokens) ?? 0;
  if (parts.some((p) => p.facts.mismatchBuckets)) {
    const b = parts.reduce((a, p) => mergeMismatchBuckets(a, p.facts.mismatchBuckets ?? []), emptyMismatchBuckets());
    for (const [k, v] of Object.entries(mismatchBucketMetrics(b))) if (keys.has(k)) out[k] = v;
  }
  const is = parts.reduce((a, p) => (p.facts.isStats ? mergeIsStats(a, p.facts.isStats) : a), emptyIsStats());
  Object.assign(out, isMetrics(is));
  const slowest = (k: string) => Math.max(1e-9, ...parts.map((p) => Number(p.metrics[k] ?? 0)));
  if (keys.has("tokens_per_s/sampling"))
    out["tokens_per_s/sampling"] = total((f) => f.sampledTokens) / slowest("time/sampling_s");
  if (keys.has("tokens_per_s/training"))
    out["tokens_per_s/training"] = total((f) => f.trainedTokens) / slowest("time/training_s");
  return out;
}
