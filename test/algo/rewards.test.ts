/**
 * Reward combiners and shapers: test vectors D.6 (DAPO overlong penalty), D.11 (unlikeliness reward),
 * D.14 (reward-model ensembles), null handling and the difficulty-scaling hook.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { grpo } from "../../src/algo/advantage.js";
import {
  difficultyScale,
  ensembleMean,
  ensembleUwo,
  ensembleWco,
  gdpoCombiner,
  overlongPenalty,
  overlongPenaltyValue,
  rankRewards,
  rewardCombiners,
  rewardShapers,
  toRewardMatrix,
  unlikelinessReward,
  weightedSum,
} from "../../src/algo/rewards.js";
import type { RewardBatch } from "../../src/algo/types.js";
import { CohortError, ConfigError } from "../../src/errors.js";

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    assert.ok(Math.abs(a - e) <= tol, `[${i}]: got ${a}, expected ${e} (tol ${tol})`);
  }
}

describe("combiners", () => {
  test("weighted sum skips null (not applicable); all-null → NaN", () => {
    const m = toRewardMatrix([
      [1, null, 0, null],
      [0.5, 0.25, null, null],
    ]);
    const { rewards } = weightedSum(m, { weights: [2, 4] });
    close(rewards.slice(0, 3), [4, 1, 0], 1e-12);
    assert.ok(Number.isNaN(rewards[3]!));
    assert.throws(() => weightedSum(m, { weights: [1] }), ConfigError);
  });
  test("GDPO combiner keeps the vector and the weights", () => {
    const m = toRewardMatrix([
      [1, 0],
      [1, 1],
    ]);
    const out = gdpoCombiner(m, { weights: [1, 0.5] });
    close(out.rewards, [1.5, 0.5], 1e-12);
    assert.equal(out.rewardsByFn, m);
    close(out.rewardWeights!, [1, 0.5], 0);
  });
  test("RM ensembles (D.14): WCO = min, mean, UWO = mean − λ·population var", () => {
    const m = toRewardMatrix([[0.8], [0.6], [0.7]]);
    close(ensembleWco(m).rewards, [0.6], 1e-12);
    close(ensembleMean(m).rewards, [0.7], 1e-12);
    close(ensembleUwo(m, { lambda: 0.5 }).rewards, [0.6966667]);
    // a model that did not score a completion is left out; no model → NaN
    const partial = toRewardMatrix([
      [0.8, null],
      [null, null],
      [0.6, null],
    ]);
    close(ensembleUwo(partial, { lambda: 1 }).rewards.slice(0, 1), [0.7 - 0.01], 1e-12);
    assert.ok(Number.isNaN(ensembleWco(partial).rewards[1]!));
  });
  test("registry and ragged input", () => {
    assert.deepEqual(rewardCombiners.names(), ["ensemble_mean", "ensemble_uwo", "ensemble_wco", "gdpo", "sum"]);
    assert.throws(() => weightedSum([Float64Array.of(1), Float64Array.of(1, 2)]), CohortError);
    assert.throws(() => ensembleUwo(toRewardMatrix([[1]]), { lambda: -1 }), ConfigError);
  });
});

describe("DAPO overlong penalty (D.6)", () => {
  test("L_max 20480, L_cache 4096", () => {
    const o = { maxLength: 20480, cacheLength: 4096 };
    const got = [1000, 16384, 16385, 18432, 20480, 20481].map((l) => overlongPenaltyValue(l, o));
    close(got, [0, 0, -0.000244140625, -0.5, -1.0, -1.0], 1e-15);
  });
  test("small case L_max 10, L_cache 4", () => {
    const o = { maxLength: 10, cacheLength: 4 };
    close(
      [6, 8, 9, 10, 11].map((l) => overlongPenaltyValue(l, o)),
      [0, -0.5, -0.75, -1.0, -1.0],
      1e-15,
    );
  });
  test("verl mode has no floor beyond L_max; factor scales", () => {
    const o = { maxLength: 10, cacheLength: 4, mode: "verl" as const };
    close([overlongPenaltyValue(8, o), overlongPenaltyValue(12, o)], [-0.5, -1.5], 1e-15);
    close([overlongPenaltyValue(12, { maxLength: 10, cacheLength: 4, factor: 0.5 })], [-0.5], 1e-15);
  });
  test("shaper adds the penalty to r_i; NaN stays NaN; bad config is a ConfigError", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, Number.NaN),
      groupIndex: Int32Array.of(0, 0, 0),
      lengths: Int32Array.of(9, 11, 8),
    };
    const r = overlongPenalty(b, { maxLength: 10, cacheLength: 4 });
    close(r.slice(0, 2), [0.25, -1], 1e-15);
    assert.ok(Number.isNaN(r[2]!));
    assert.throws(() => overlongPenaltyValue(5, { maxLength: 4, cacheLength: 4 }), ConfigError);
    assert.throws(
      () => overlongPenalty({ ...b, lengths: undefined }, { maxLength: 10, cacheLength: 4 }),
      /batch\.lengths/,
    );
  });
});

describe("unlikeliness reward (D.11)", () => {
  test("rank penalty then GRPO", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 1, 0, 1),
      groupIndex: Int32Array.of(0, 0, 0, 0),
      meanLogprobs: Float64Array.of(-0.2, -0.9, -0.5, -0.4),
    };
    const shaped = unlikelinessReward(b, { betaRank: 0.25 });
    close(shaped, [0.8125, 1.0, 0.0, 0.875], 1e-15);
    const a = grpo({ ...b, rewards: shaped });
    assert.equal(a.kind, "sequence");
    close(a.values as Float64Array, [0.3093038, 0.721709, -1.4777851, 0.4467722]);
  });
  test("ties keep batch order (stable); groups are ranked separately", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 1, 1, 1),
      groupIndex: Int32Array.of(0, 1, 0, 1),
      meanLogprobs: Float64Array.of(-0.5, -0.1, -0.5, -0.3),
    };
    // group 0: rows 0, 2 tie → ranks 0, 1; group 1: row 3 (−0.3) rank 0, row 1 (−0.1) rank 1
    close(unlikelinessReward(b), [1, 1 - 0.25 / 2, 1 - 0.25 / 2, 1], 1e-15);
    assert.throws(() => unlikelinessReward({ ...b, meanLogprobs: undefined }), /meanLogprobs/);
  });
});

describe("difficulty scaling hook", () => {
  const b: RewardBatch = {
    rewards: Float64Array.of(1, 0, 0, 0, 1, 1, 1, 0),
    groupIndex: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1),
  };
  test("default 1 + κ(1 − acc) per group", () => {
    close(difficultyScale(b), [1.75, 0, 0, 0, 1.25, 1.25, 1.25, 0], 1e-15);
    close(difficultyScale(b, { kappa: 2 }), [2.5, 0, 0, 0, 1.5, 1.5, 1.5, 0], 1e-15);
  });
  test("custom multiplier and accuracy from another reward function", () => {
    const withFns: RewardBatch = { ...b, rewardsByFn: [Float64Array.of(1, 1, 1, 1, 0, 0, 0, 0)] };
    close(
      difficultyScale(withFns, { multiplier: (acc) => 10 + acc, accuracyFrom: 0 }),
      [11, 0, 0, 0, 10, 10, 10, 0],
      1e-15,
    );
    assert.throws(() => difficultyScale(b, { accuracyFrom: 3 }), ConfigError);
  });
  test("cancels under group std normalisation (documented), not under Dr. GRPO", () => {
    const plain = grpo(b).values as Float64Array;
    const scaled = grpo({ ...b, rewards: difficultyScale(b) }).values as Float64Array;
    close(scaled, plain, 1e-5);
    const dr = grpo({ ...b, rewards: difficultyScale(b) }, { scale: "none" }).values as Float64Array;
    close(dr.slice(0, 1), [1.75 * 0.75], 1e-12);
  });
  test("registry", () => {
    assert.deepEqual(rewardShapers.names(), ["difficulty_scale", "overlong", "unlikeliness"]);
  });
});

describe("Rank-GRPO rank rewards", () => {
  test("suffix DCG and exp-inf", () => {
    const [r] = rankRewards([[1, 0, 1]]);
    const d = (j: number) => 1 / Math.log2(j + 1);
    close(r!, [d(1) + d(3), d(3), d(3)], 1e-15);
    close(rankRewards([[1, 0, 1]], "exp-inf")[0]!, [1, 0, 1], 0);
  });
});
