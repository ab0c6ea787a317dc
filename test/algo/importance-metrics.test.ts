// Train/sampler mismatch metrics (algo/importance.ts, train/mismatch.ts) against a float64 oracle written out
// in plain JS: the importance weights before and after truncation / masking, the fraction over the cap, the
// effective sample size, and the mismatch by completion length; the same values whether the batch is one
// micro-batch or split in 2 or 4, and when two data-parallel ranks each hold half of it.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  emptyIsStats,
  type ImportanceSamplingMode,
  isMetrics,
  mergeIsStats,
  samplerImportanceWeights,
} from "../../src/algo/importance.js";
import { combineStepMetrics, type StepFacts } from "../../src/parallel/metrics.js";
import { tensor, tidy } from "../../src/tensor/index.js";
import {
  addMismatchRows,
  emptyMismatchBuckets,
  MISMATCH_LENGTH_BUCKETS,
  type MismatchBuckets,
  mismatchBucketMetrics,
  mismatchRowSums,
} from "../../src/train/mismatch.js";

// 6 rows × 5 tokens: trainer and sampler log-probs, loss mask (padding at the end), completion lengths (one
// per bucket at least) and one off-policy row (an anchor: left out of the correction and the mismatch)
const N = 6;
const T = 5;
let seed = 7;
const rnd = () => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const lpOld = Array.from({ length: N }, () => Array.from({ length: T }, () => -0.2 - 2 * rnd()));
// sampler log-probs off by up to ±0.8 nats, so that several token and sequence ratios pass the cap
const lpSampler = lpOld.map((r) => r.map((x) => x + (rnd() - 0.5) * 1.6));
const mask = [
  [1, 1, 1, 1, 1],
  [1, 1, 1, 0, 0],
  [1, 1, 1, 1, 0],
  [1, 0, 0, 0, 0],
  [1, 1, 1, 1, 1],
  [1, 1, 0, 0, 0],
];
const lengths = [5, 70, 300, 1, 64, 256];
const offPolicy = Uint8Array.from([0, 0, 0, 0, 1, 0]);
const CAP = 1.5;
const MODES: ImportanceSamplingMode[] = ["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"];

/** The expected metrics of `rows`, in float64 by the definitions (importance.ts header, STEP_METRICS). */
function oracle(mode: ImportanceSamplingMode, rows: number[]): Record<string, number | null> {
  const raw: number[] = [];
  for (const i of rows) {
    if (offPolicy[i]) continue;
    const ds: number[] = [];
    for (let t = 0; t < T; t++)
      if ((mask[i] as number[])[t])
        ds.push(((lpOld[i] as number[])[t] as number) - ((lpSampler[i] as number[])[t] as number));
    if (ds.length === 0) continue;
    const clampLog = (x: number) => Math.exp(Math.min(50, Math.max(-50, x)));
    if (mode.startsWith("token")) for (const d of ds) raw.push(clampLog(d));
    else raw.push(clampLog(ds.reduce((a, b) => a + b, 0)));
  }
  const applied = raw.map((w) => (mode.endsWith("truncate") ? Math.min(w, CAP) : w > CAP ? 0 : w));
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const ess = (xs: number[]) => sum(xs) ** 2 / (xs.length * sum(xs.map((x) => x * x)));
  const over = raw.filter((w) => w > CAP).length;
  const out: Record<string, number | null> = {
    "sampler/is_ratio/min": Math.min(...applied),
    "sampler/is_ratio/mean": sum(applied) / applied.length,
    "sampler/is_ratio/max": Math.max(...applied),
    "sampler/is_masked_fraction": mode.endsWith("mask") ? over / raw.length : 0,
    "sampler/is_raw_ratio/min": Math.min(...raw),
    "sampler/is_raw_ratio/mean": sum(raw) / raw.length,
    "sampler/is_raw_ratio/max": Math.max(...raw),
    "sampler/is_capped_fraction": over / raw.length,
    "sampler/is_ess": ess(applied),
    "sampler/is_raw_ess": ess(raw),
  };
  for (const b of MISMATCH_LENGTH_BUCKETS) {
    let s = 0;
    let n = 0;
    for (const i of rows) {
      const L = lengths[i] as number;
      if (offPolicy[i] || L < b.lo || L >= b.hi) continue;
      for (let t = 0; t < T; t++)
        if ((mask[i] as number[])[t]) {
          s += Math.abs(((lpOld[i] as number[])[t] as number) - ((lpSampler[i] as number[])[t] as number));
          n++;
        }
    }
    out[`sampler/logprob_abs_diff/${b.name}`] = n > 0 ? s / n : null;
  }
  return out;
}

/** What the trainer accumulates over the micro-batches `parts` (update.ts: one call per micro-batch). */
function accumulate(mode: ImportanceSamplingMode, parts: number[][]) {
  let stats = emptyIsStats();
  const buckets = emptyMismatchBuckets();
  for (const rows of parts)
    tidy(() => {
      const t = (xs: number[][]) =>
        tensor(
          rows.map((i) => xs[i] as number[]),
          { dtype: "f64" },
        );
      const m = t(mask);
      const excl = Uint8Array.from(rows, (i) => offPolicy[i] as number);
      const { weights, stats: s } = samplerImportanceWeights(t(lpOld), t(lpSampler), m, mode, CAP, excl);
      weights.dispose();
      stats = mergeIsStats(stats, s);
      const onPolicy = m.mul(
        tensor(
          Float64Array.from(excl, (e) => 1 - e),
          { shape: [rows.length, 1], dtype: "f64" },
        ),
      );
      const r = mismatchRowSums(t(lpOld), t(lpSampler), onPolicy);
      addMismatchRows(
        buckets,
        rows.map((i) => lengths[i] as number),
        r.sums,
        r.tokens,
      );
    });
  return { stats, buckets };
}

const metricsOf = (a: { stats: ReturnType<typeof emptyIsStats>; buckets: MismatchBuckets }) => ({
  ...isMetrics(a.stats),
  ...mismatchBucketMetrics(a.buckets),
});

function assertClose(got: Record<string, unknown>, want: Record<string, number | null>, what: string) {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), what);
  for (const [k, w] of Object.entries(want)) {
    const g = got[k];
    if (w === null) assert.equal(g, null, `${what}: ${k}`);
    else
      assert.ok(
        typeof g === "number" && Math.abs(g - w) <= 1e-12 * Math.max(1, Math.abs(w)),
        `${what}: ${k} = ${g}, want ${w}`,
      );
  }
}

const ALL = Array.from({ length: N }, (_, i) => i);
const split = (k: number) => Array.from({ length: k }, (_, j) => ALL.filter((i) => i % k === j));

test("mismatch metrics match the float64 oracle in every importance-sampling mode", () => {
  for (const mode of MODES) {
    const want = oracle(mode, ALL);
    assertClose(metricsOf(accumulate(mode, [ALL])), want, mode);
    // the data exercise both sides of the cap and every length bucket
    assert.ok((want["sampler/is_capped_fraction"] as number) > 0, `${mode}: some weights over the cap`);
    assert.ok((want["sampler/is_capped_fraction"] as number) < 1, `${mode}: some weights under the cap`);
    for (const b of MISMATCH_LENGTH_BUCKETS) assert.notEqual(want[`sampler/logprob_abs_diff/${b.name}`], null);
  }
});

test("mismatch metrics are the same for 1, 2 and 4 micro-batches", () => {
  for (const mode of MODES) {
    const want = oracle(mode, ALL);
    for (const k of [1, 2, 4]) {
      // row order changes too (rows i ≡ j mod k), as micro-batches of grouped rows would
      assertClose(metricsOf(accumulate(mode, split(k))), want, `${mode}, ${k} micro-batches`);
    }
  }
});

test("data parallel: two ranks' metrics combine into the whole batch's", () => {
  for (const mode of MODES) {
    const ranks = split(2).map((rows) => {
      const a = accumulate(mode, [rows]);
      const facts: StepFacts = {
        rewards: [],
        rewardsByFn: {},
        lengths: rows.map((i) => lengths[i] as number),
        truncated: 0,
        groups: 1,
        zeroStdGroups: 0,
        entropyTokens: 1,
        mismatchTokens: a.buckets.reduce((s, b) => s + b.tok, 0),
        mismatchBuckets: a.buckets,
        ...(a.stats.count > 0 ? { isStats: a.stats } : {}),
        sampledTokens: 0,
        trainedTokens: 0,
        microBatchValues: {},
      };
      // what each rank's step-metrics.ts writes; facts travel as JSON (allgatherJson)
      return JSON.parse(JSON.stringify({ metrics: { step: 1, ...metricsOf(a) }, facts }));
    });
    const out = combineStepMetrics(ranks);
    const want = oracle(mode, ALL);
    assertClose(Object.fromEntries(Object.keys(want).map((k) => [k, out[k]])), want, `${mode}, 2 ranks`);
  }
});
