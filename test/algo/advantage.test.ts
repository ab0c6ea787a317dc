/**
 * Advantage estimators: test vectors of ALGORITHMS.md §D (D.1, D.2, D.8, D.9, D.10, D.14), edge cases
 * (zero-std groups, groups of one, NaN rewards, fully masked sequences) and a PyTorch oracle for the token
 * whitening of REINFORCE++ and the Beta density of BNPO.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  advantageEstimators,
  betaPdf,
  bnpo,
  bnpoBetaParams,
  dgpo,
  discountedStepReturns,
  drGrpo,
  drMas,
  gae,
  gdpo,
  gigpo,
  grpo,
  rankAdvantageTable,
  rankGrpo,
  reinforcePlusPlus,
  reinforcePlusPlusBaseline,
  rloo,
  runEstimator,
  stepGrpo,
} from "../../src/algo/advantage.js";
import { rankRewards } from "../../src/algo/rewards.js";
import type { Advantages, RewardBatch } from "../../src/algo/types.js";
import { CohortError, ConfigError } from "../../src/errors.js";
import { nearestTask } from "../../src/task/nearest.js";
import { liveTensors, tensor } from "../../src/tensor/index.js";
import { close } from "../helpers/close.js";
import { py, runOracle } from "../helpers/oracle.js";

function seqValues(a: Advantages): Float64Array {
  assert.equal(a.kind, "sequence");
  return a.values as Float64Array;
}

function batchOf(rewards: number[], groups?: number[]): RewardBatch {
  return {
    rewards: Float64Array.from(rewards),
    groupIndex: Int32Array.from(groups ?? rewards.map(() => 0)),
  };
}

describe("GRPO (D.1)", () => {
  test("r = [1,0,0,1], unbiased std, eps 1e-6", () => {
    close(seqValues(grpo(batchOf([1, 0, 0, 1]))), [0.8660239, -0.8660239, -0.8660239, 0.8660239]);
  });
  test("eps 1e-4 (TRL) and population std with eps 0", () => {
    close(seqValues(grpo(batchOf([1, 0, 0, 1]), { eps: 1e-4 })), [0.8658754, -0.8658754, -0.8658754, 0.8658754]);
    close(seqValues(grpo(batchOf([1, 0, 0, 1]), { eps: 0, std: "population" })), [1, -1, -1, 1], 1e-12);
  });
  test("all-equal group → exactly 0, also with eps 0 (no 0/0)", () => {
    assert.deepEqual([...seqValues(grpo(batchOf([1, 1, 1, 1])))], [0, 0, 0, 0]);
    assert.deepEqual([...seqValues(grpo(batchOf([1, 1, 1, 1]), { eps: 0 }))], [0, 0, 0, 0]);
  });
  test("r = [1,0,0,0] and r = [0.5,1,0,0.25]", () => {
    close(seqValues(grpo(batchOf([1, 0, 0, 0]))), [1.499997, -0.499999, -0.499999, -0.499999]);
    close(seqValues(grpo(batchOf([0.5, 1.0, 0.0, 0.25]))), [0.1463847, 1.317462, -1.0246927, -0.439154]);
  });
  test("groups by id, not adjacency: interleaved groups give the per-group values", () => {
    const a = seqValues(grpo(batchOf([1, 1, 0, 0, 0, 0, 1, 0], [0, 1, 0, 1, 0, 1, 0, 1])));
    close(a, [0.8660239, 1.499997, -0.8660239, -0.499999, -0.8660239, -0.499999, 0.8660239, -0.499999]);
  });
  test("groups of one → 0 (default) or r (verl, singleton: reward)", () => {
    const b = batchOf([0.7, 1, 0], [0, 1, 1]);
    close(seqValues(grpo(b)), [0, 0.7071061, -0.7071061]);
    close(seqValues(grpo(b, { singleton: "reward" })), [0.7, 0.7071061, -0.7071061]);
  });
  test("NaN reward → A = 0 and left out of mean/std", () => {
    const a = seqValues(grpo(batchOf([1, 0, Number.NaN, 0])));
    // stats over [1, 0, 0]: mean 1/3, unbiased std sqrt(1/3)
    const s = Math.sqrt(1 / 3) + 1e-6;
    close(a, [2 / 3 / s, -(1 / 3) / s, 0, -(1 / 3) / s]);
    assert.deepEqual([...seqValues(grpo(batchOf([Number.NaN, Number.NaN])))], [0, 0]);
  });
  test('scale "batch": group-centred numerator over the std of all rewards', () => {
    const r = [1, 0, 0, 1, 1, 1, 1, 0];
    const all = r.reduce((x, y) => x + y, 0) / r.length;
    const sd = Math.sqrt(r.reduce((x, y) => x + (y - all) ** 2, 0) / (r.length - 1));
    const a = seqValues(grpo(batchOf(r, [0, 0, 0, 0, 1, 1, 1, 1]), { scale: "batch" }));
    close(
      a,
      [0.5, -0.5, -0.5, 0.5, 0.25, 0.25, 0.25, -0.75].map((x) => x / (sd + 1e-6)),
    );
  });
  test("errors: infinite reward, unknown option, bad scale, group id count", () => {
    assert.throws(() => grpo(batchOf([1, Number.POSITIVE_INFINITY])), CohortError);
    assert.throws(() => grpo(batchOf([1, 0]), { epsilon: 1e-4 } as never), /unknown option "epsilon".*eps/);
    assert.throws(() => grpo(batchOf([1, 0]), { scale: "std" as never }), ConfigError);
    assert.throws(() => grpo({ rewards: Float64Array.of(1, 0), groupIndex: Int32Array.of(0) }), /group id/);
  });
});

describe("Dr. GRPO and RLOO (D.2)", () => {
  test("Dr. GRPO", () => {
    close(seqValues(drGrpo(batchOf([1, 0, 0, 1]))), [0.5, -0.5, -0.5, 0.5], 1e-12);
    close(seqValues(drGrpo(batchOf([1, 0, 0, 0]))), [0.75, -0.25, -0.25, -0.25], 1e-12);
  });
  test("RLOO", () => {
    close(seqValues(rloo(batchOf([1, 0, 0, 1]))), [0.6666667, -0.6666667, -0.6666667, 0.6666667]);
    close(seqValues(rloo(batchOf([1, 0, 0, 0]))), [1.0, -0.3333333, -0.3333333, -0.3333333]);
  });
  test("RLOO group of one: 0, or r with singleton: reward (verl)", () => {
    close(seqValues(rloo(batchOf([0.4]))), [0]);
    close(seqValues(rloo(batchOf([0.4]), { singleton: "reward" })), [0.4]);
  });
  test("RLOO with a NaN member uses G = number of valid rewards", () => {
    // valid [1, 0, 0]: A_0 = 1 − 0 = 1, A_1 = 0 − 0.5 = −0.5
    close(seqValues(rloo(batchOf([1, 0, Number.NaN, 0]))), [1, -0.5, 0, -0.5]);
  });
});

describe("BNPO (D.8)", () => {
  test("Beta(1.5, 1.5) density", () => {
    close(
      [betaPdf(0.25, 1.5, 1.5), betaPdf(0.75, 1.5, 1.5), betaPdf(0.5, 1.5, 1.5)],
      [1.1026578, 1.1026578, 1.2732395],
    );
    assert.deepEqual(bnpoBetaParams([0.25, 0.5, 0.75]), { alpha: 1.5, beta: 1.5 });
  });
  test("three prompts", () => {
    const b = batchOf([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    const a = seqValues(bnpo(b));
    const s = 0.2267249;
    close(a, [0.6801748, -s, -s, -s, 0.3926991, 0.3926991, -0.3926991, -0.3926991, s, s, s, -0.6801748]);
  });
  test("two prompts", () => {
    const b = batchOf([1, 0, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1]);
    const s = 0.2388688;
    close(seqValues(bnpo(b)), [0.7166064, -s, -s, -s, s, s, s, -0.7166064]);
    const { alpha } = bnpoBetaParams([0.25, 0.75]);
    close([alpha, betaPdf(0.25, alpha, alpha)], [1.1666667, 1.0465996]);
  });
  test("one prompt: α = β = 1, plain group-mean baseline; v = 0 falls back to α = β = 1", () => {
    close(seqValues(bnpo(batchOf([1, 0, 0, 0]))), [0.75, -0.25, -0.25, -0.25], 1e-12);
    const same = batchOf([1, 0, 1, 0], [0, 0, 1, 1]);
    close(seqValues(bnpo(same)), [0.5, -0.5, 0.5, -0.5], 1e-12);
  });
  test("rMin/rMax rescale, and out-of-range pass rates are a ConfigError", () => {
    const b = batchOf([2, 0, 0, 0]);
    close(seqValues(bnpo(b, { rMax: 2 })), [0.75, -0.25, -0.25, -0.25], 1e-12);
    assert.throws(() => bnpo(batchOf([3, 3, 3, 3])), ConfigError);
  });
  test("advantage decomposition = mean of the per-reward BNPO advantages", () => {
    const groups = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
    const acc = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0];
    const fmt = [1, 1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1];
    const b: RewardBatch = { ...batchOf(acc, groups), rewardsByFn: [Float64Array.from(acc), Float64Array.from(fmt)] };
    const a1 = seqValues(bnpo(batchOf(acc, groups)));
    const a2 = seqValues(bnpo(batchOf(fmt, groups)));
    close(
      seqValues(bnpo(b, { decompose: true })),
      a1.map((x, i) => (x + a2[i]!) / 2),
      1e-12,
    );
  });
  test("Beta density matches torch.distributions.Beta", () => {
    const cases = [
      [0.25, 1.5, 1.5],
      [0.1, 2.3, 1.2],
      [0.9, 1, 3.7],
      [0.5, 7.25, 1],
    ] as const;
    const res = runOracle([
      {
        id: "beta",
        code: "out = torch.stack([torch.distributions.Beta(c[1], c[2]).log_prob(c[0]).exp() for c in x])",
        inputs: { x: { shape: [4, 3], dtype: "f64", values: Float64Array.from(cases.flat()) } },
      },
    ]);
    const want = res.get("beta")!.outs[0]!.values;
    close(
      cases.map(([p, a, b]) => betaPdf(p, a, b)),
      want,
      1e-12,
    );
  });
});

describe("GDPO (D.9)", () => {
  const groups = [0, 0, 0, 0, 1, 1, 1, 1];
  const c = [1, 0, 0, 1, 0, 0, 0, 1];
  const f = [1, 1, 0, 1, 1, 1, 1, 1];
  const batch: RewardBatch = {
    rewards: Float64Array.from(c, (x, i) => x + f[i]!),
    groupIndex: Int32Array.from(groups),
    rewardsByFn: [Float64Array.from(c), Float64Array.from(f)],
  };
  test("eps 0: exact values", () => {
    const q = -0.3747042;
    close(seqValues(gdpo(batch, { eps: 0 })), [1.0237108, -0.2743025, -1.7731192, 1.0237108, q, q, q, 1.1241125]);
  });
  test("eps 1e-4 everywhere (TRL)", () => {
    const q = -0.3746723;
    close(seqValues(gdpo(batch, { eps: 1e-4 })), [1.0236411, -0.2742965, -1.7729857, 1.0236411, q, q, q, 1.1240168]);
  });
  test("weights from the combiner (rewardWeights) and from options agree", () => {
    const w = Float64Array.of(2, 0.5);
    close(seqValues(gdpo({ ...batch, rewardWeights: w }, { eps: 0 })), seqValues(gdpo(batch, { eps: 0, weights: w })));
  });
  test("contrast: GRPO sum-then-normalise", () => {
    close(seqValues(grpo(batch, { eps: 0 })), [0.7833495, -0.2611165, -1.3055824, 0.7833495, -0.5, -0.5, -0.5, 1.5]);
    close([seqValues(grpo(batch))[0]!], [0.7833486]);
  });
  test('batchNorm "token" (verl): length-weighted whitening', () => {
    const len = Int32Array.of(3, 1, 2, 2, 4, 1, 1, 2);
    const s = [1.3660254, -0.3660254, -2.3660254, 1.3660254, -0.5, -0.5, -0.5, 1.5];
    const wsum = len.reduce((a, b) => a + b, 0);
    const mean = s.reduce((a, x, i) => a + len[i]! * x, 0) / wsum;
    const v = (s.reduce((a, x, i) => a + len[i]! * (x - mean) ** 2, 0) / wsum) * (wsum / (wsum - 1));
    const a = seqValues(gdpo({ ...batch, lengths: len }, { eps: 0, batchNorm: "token" }));
    close(
      a,
      s.map((x) => (x - mean) / Math.sqrt(v + 1e-8)),
      1e-6,
    );
  });
  test("completion with no applicable reward → 0, excluded from batch stats", () => {
    const nan = Number.NaN;
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 1, 0, nan),
      groupIndex: Int32Array.of(0, 0, 0, 0, 0),
      rewardsByFn: [Float64Array.of(1, 0, 1, 0, nan)],
    };
    const a = seqValues(gdpo(b, { eps: 0 }));
    assert.equal(a[4], 0);
    close(a.slice(0, 4), [0.8660254, -0.8660254, 0.8660254, -0.8660254]);
  });
  test("missing rewardsByFn is an error that names the fix", () => {
    assert.throws(() => gdpo(batchOf([1, 0])), /rewardsByFn/);
  });
});

describe("DGPO DGAE (D.10)", () => {
  test("eps → 0: Σ|A| = G", () => {
    const b = batchOf([1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]);
    const a = seqValues(dgpo(b, { eps: 0 }));
    close(a, [2, -2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1, 2 / 3, 2 / 3, 2 / 3, -2], 1e-12);
    for (let g = 0; g < 3; g++) {
      close([a.slice(4 * g, 4 * g + 4).reduce((s, x) => s + Math.abs(x), 0)], [4], 1e-12);
    }
  });
  test("eps 1e-4 (code)", () => {
    const a = seqValues(dgpo(batchOf([1, 0, 0, 0]), { eps: 1e-4 }));
    close(a.slice(0, 2), [1.9998667, -0.6666222]);
  });
  test("zero-MAD group → 0 even with eps 0", () => {
    assert.deepEqual([...seqValues(dgpo(batchOf([1, 1, 1]), { eps: 0 }))], [0, 0, 0]);
  });
});

describe("GiGPO (D.14, B.20)", () => {
  test("discounted step returns, γ = 0.95", () => {
    close(discountedStepReturns(Float64Array.of(0, 0, 1), Int32Array.of(0, 0, 0), 0.95), [0.9025, 0.95, 1.0], 1e-12);
    // order by stepIndex, not by row order
    close(
      discountedStepReturns(Float64Array.of(1, 0, 0), Int32Array.of(7, 7, 7), 0.95, Int32Array.of(2, 0, 1)),
      [1.0, 0.9025, 0.95],
      1e-12,
    );
  });
  test("episode + anchor-state step advantages", () => {
    // one task group, two trajectories: τ0 = 3 steps (obs a, b, c), rewards [0,0,1]; τ1 = 2 steps (a, b), [0,0]
    const b: RewardBatch = {
      rewards: Float64Array.of(0, 0, 1, 0, 0),
      groupIndex: Int32Array.of(0, 0, 0, 0, 0),
      trajectoryIndex: Int32Array.of(0, 0, 0, 1, 1),
      stepIndex: Int32Array.of(0, 1, 2, 0, 1),
      observationKey: ["a", "b", "c", "a", "b"],
    };
    const a = seqValues(gigpo(b, { gamma: 0.95 }));
    // episode: rows [1,1,1,0,0], mean over step rows 0.6 → A^E = [0.4,0.4,0.4,−0.6,−0.6]
    // steps: R^S = [0.9025, 0.95, 1, 0, 0]; group a: {0.9025, 0} → ±0.45125; b: {0.95, 0} → ±0.475; c: singleton → 0
    close(a, [0.4 + 0.45125, 0.4 + 0.475, 0.4, -0.6 - 0.45125, -0.6 - 0.475], 1e-12);
    const t = seqValues(gigpo(b, { gamma: 0.95, episodeStats: "trajectories", omega: 0.5 }));
    close(t, [0.5 + 0.225625, 0.5 + 0.2375, 0.5, -0.5 - 0.225625, -0.5 - 0.2375], 1e-12);
  });
  test("needs trajectoryIndex and observationKey", () => {
    assert.throws(() => gigpo(batchOf([0, 1])), /trajectoryIndex/);
  });
});

describe("Dr. MAS, Step-GRPO, Rank-GRPO", () => {
  test("Dr. MAS normalises each agent with its own statistics", () => {
    const b: RewardBatch = {
      ...batchOf([1, 0, 10, 20, 0, 1], [0, 0, 0, 0, 0, 0]),
      agentId: Int32Array.of(0, 0, 1, 1, 0, 0),
    };
    const a = seqValues(drMas(b));
    const agent0 = seqValues(grpo(batchOf([1, 0, 0, 1])));
    const agent1 = seqValues(grpo(batchOf([10, 20])));
    close(a, [agent0[0]!, agent0[1]!, agent1[0]!, agent1[1]!, agent0[2]!, agent0[3]!], 1e-12);
    assert.throws(() => drMas(batchOf([1, 0])), /agentId/);
  });
  test("Step-GRPO groups by (prompt, step index)", () => {
    const b: RewardBatch = { ...batchOf([1, 0, 0, 0, 0, 1, 1, 1]), stepIndex: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1) };
    const a = seqValues(stepGrpo(b));
    close(a, [1.499997, -0.499999, -0.499999, -0.499999, -1.499997, 0.499999, 0.499999, 0.499999]);
  });
  test("Rank-GRPO: per-rank group normalisation, broadcast to item tokens, overflow → 0", () => {
    const b: RewardBatch = {
      ...batchOf([0, 0]),
      rankRewards: [Float64Array.of(1, 0.5), Float64Array.of(0, 0.5)],
      itemIndex: tensor(
        [
          [0, 0, 1, -1],
          [0, 1, 1, 2],
        ],
        { dtype: "i64" },
      ),
    };
    const table = rankAdvantageTable(b, { scale: "none" });
    close(table[0]!, [0.5, 0], 1e-12);
    close(table[1]!, [-0.5, 0], 1e-12);
    const adv = rankGrpo(b, { scale: "none", dtype: "f64" });
    assert.equal(adv.kind, "token");
    assert.deepEqual(adv.values.tolist(), [
      [0.5, 0.5, 0, 0],
      [-0.5, 0, 0, 0],
    ]);
    adv.values.dispose();
    b.itemIndex?.dispose();
  });
  test("Rank-GRPO on a group of nearest lists: per-rank advantages against hand-computed vectors", () => {
    // 3 near 47: 12 50 33 81 45 60= (nearest first 45 50 60 33 81 12), graded relevance (k − t)/k
    const task = nearestTask();
    const p = {
      id: "p",
      prompt: "3 near 47: 12 50 33 81 45 60=",
      meta: { target: 47, candidates: [12, 50, 33, 81, 45, 60], ranking: [45, 50, 60, 33, 81, 12] },
    };
    const lists = ["<answer>45 50 60</answer>", "<answer>50 45 33</answer>", "<answer>45 45 x</answer>", "45 50 60"];
    const rel = lists.map((c) => task.rank(p, c).relevance);
    assert.deepEqual(rel, [
      [1, 2 / 3, 1 / 3],
      [2 / 3, 1, 0],
      [1, 0, 0],
      [0, 0, 0],
    ]);
    // suffix DCG r_k = Σ_{j≥k} rel_j / log2(j + 1) and (r − mean)/(std + 1e-6) per rank, PyTorch float64
    const b: RewardBatch = { ...batchOf([0, 0, 0, 0]), rankRewards: rankRewards(rel) };
    close(b.rankRewards![0]!, [1.5872865023809717, 0.5872865023809717, 0.16666666666666666], 1e-15);
    close(b.rankRewards![1]!, [1.2975964202381243, 0.6309297535714575, 0], 1e-15);
    const table = rankAdvantageTable(b);
    const expected = [
      [0.8922680871774435, 0.8029415805734701, 1.4999820002159974],
      [0.4727005225915741, 0.9268855513871782, -0.4999940000719991],
      [0.041681951485598626, -0.8649135659803242, -0.4999940000719991],
      [-1.4066505612546163, -0.8649135659803242, -0.4999940000719991],
    ];
    table.forEach((row, i) => {
      close(row, expected[i]!, 1e-12);
    });
  });
});

describe("REINFORCE++ (token whitening)", () => {
  test("REINFORCE++-baseline matches a PyTorch masked whitening; masked rows and NaN rows get 0", () => {
    const before = liveTensors();
    const mask = tensor([
      [1, 1, 1, 0],
      [1, 1, 0, 0],
      [1, 1, 1, 1],
      [0, 0, 0, 0],
      [1, 1, 1, 0],
      [1, 0, 0, 0],
      [1, 1, 0, 0],
    ]);
    const nan = Number.NaN;
    const b: RewardBatch = {
      ...batchOf([1, 0, 0.5, 1, 0.25, 1, nan], [0, 0, 0, 0, 1, 1, 1]),
      mask,
    };
    const adv = reinforcePlusPlusBaseline(b, { dtype: "f64" });
    assert.equal(adv.kind, "token");
    const got = adv.values.toArray();
    // Group 0 mean over valid rows (all 4, incl. the fully masked one) = 0.625; group 1 over [0.25, 1] = 0.625.
    const res = runOracle([
      {
        id: "w",
        code: [
          "a = (r - torch.tensor([0.625,0.625,0.625,0.625,0.625,0.625,0.0], dtype=torch.float64)).unsqueeze(1) * m",
          "m2 = m.clone(); m2[6] = 0",
          "mu = (a*m2).sum()/m2.sum()",
          "var = (((a-mu)**2)*m2).sum()/m2.sum() * m2.sum()/(m2.sum()-1)",
          "out = (a-mu)/(var.sqrt()+1e-8) * m2",
        ].join("\n"),
        inputs: {
          r: { shape: [7], dtype: "f64", values: Float64Array.of(1, 0, 0.5, 1, 0.25, 1, 0) },
          m: py(mask),
        },
      },
    ]);
    close(got, res.get("w")!.outs[0]!.values, 1e-12, "whitened");
    for (let t = 0; t < 4; t++) {
      assert.equal(got[3 * 4 + t], 0, "fully masked row");
      assert.equal(got[6 * 4 + t], 0, "NaN-reward row");
    }
    // verl form (rsqrt(var + 1e-8)) differs only at the 1e-8 level
    const verl = reinforcePlusPlusBaseline(b, { dtype: "f64", whiten: "rsqrt" });
    close(verl.values.toArray(), got, 1e-6);
    adv.values.dispose();
    verl.values.dispose();
    mask.dispose();
    assert.equal(liveTensors(), before, "no tensor leaked");
  });
  test("REINFORCE++ return-to-go with γ over valid tokens, skipping masked (tool) tokens", () => {
    const mask = tensor([
      [1, 1, 0, 1, 0],
      [1, 1, 1, 0, 0],
    ]);
    const tokenRewards = tensor(
      [
        [0, 1, 0, 2, 0],
        [0, 0, 3, 0, 0],
      ],
      { dtype: "f64" },
    );
    const adv = reinforcePlusPlus({ ...batchOf([0, 0], [0, 1]), mask, tokenRewards }, { gamma: 0.5, dtype: "f64" });
    // row 0 returns over valid tokens t3, t1, t0 (t2 is a tool token: skipped): 2, 1 + 0.5·2 = 2, 0 + 0.5·2 = 1
    // row 1: 3, 1.5, 0.75
    const rets = [1, 2, 2, 0.75, 1.5, 3];
    const mu = rets.reduce((a, b) => a + b, 0) / 6;
    const sd = Math.sqrt(rets.reduce((a, b) => a + (b - mu) ** 2, 0) / 5);
    const z = (x: number) => (x - mu) / (sd + 1e-8);
    close(adv.values.toArray(), [z(1), z(2), 0, z(2), 0, z(0.75), z(1.5), z(3), 0, 0], 1e-12);
    adv.values.dispose();
    // scalar rewards sit on the last valid token
    const adv2 = reinforcePlusPlus({ ...batchOf([1, 3], [0, 1]), mask }, { dtype: "f64" });
    const r2 = [1, 1, 1, 3, 3, 3];
    const mu2 = 2;
    const sd2 = Math.sqrt(r2.reduce((a, b) => a + (b - mu2) ** 2, 0) / 5);
    const z2 = (x: number) => (x - mu2) / (sd2 + 1e-8);
    close(adv2.values.toArray(), [z2(1), z2(1), 0, z2(1), 0, z2(3), z2(3), z2(3), 0, 0], 1e-12);
    adv2.values.dispose();
    mask.dispose();
    tokenRewards.dispose();
  });
  test("fully masked batch or all-NaN rewards → zeros, never NaN", () => {
    const mask = tensor([
      [0, 0],
      [0, 0],
    ]);
    const a = reinforcePlusPlusBaseline({ ...batchOf([1, 0]), mask }, { dtype: "f64" });
    assert.deepEqual(a.values.toArray(), [0, 0, 0, 0]);
    a.values.dispose();
    mask.dispose();
    const ones = tensor([
      [1, 1],
      [1, 0],
    ]);
    const b = reinforcePlusPlus({ ...batchOf([Number.NaN, Number.NaN]), mask: ones }, { dtype: "f64" });
    assert.deepEqual(b.values.toArray(), [0, 0, 0, 0]);
    b.values.dispose();
    ones.dispose();
  });
  test("needs batch.mask", () => {
    assert.throws(() => reinforcePlusPlusBaseline(batchOf([1, 0])), /batch\.mask/);
  });
});

describe("PyTorch reference on random groups (ids shuffled)", () => {
  test("GRPO (group/batch/none), RLOO and GDPO match a vectorised torch implementation", () => {
    const G = 4;
    const B = 6;
    const n = G * B;
    // deterministic pseudo-random rewards in [0, 1), two reward functions; some exact ties
    let s = 12345;
    const rnd = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    };
    const r1 = Float64Array.from({ length: n }, (_, i) => (i % 7 === 0 ? 1 : Math.round(rnd() * 4) / 4));
    const r2 = Float64Array.from({ length: n }, () => rnd());
    // torch sees groups as rows of a [B, G] view; ours gets the rows in a shuffled order with group ids
    const perm = Array.from({ length: n }, (_, i) => i).sort((a, b) => ((a * 7919) % n) - ((b * 7919) % n));
    const groupIndex = Int32Array.from(perm, (p) => Math.floor(p / G));
    const pick = (x: Float64Array) => Float64Array.from(perm, (p) => x[p]!);
    const batch: RewardBatch = {
      rewards: pick(r1),
      groupIndex,
      rewardsByFn: [pick(r1), pick(r2)],
    };
    const code = [
      "g1 = a.view(6, 4); g2 = b.view(6, 4)",
      "def norm(g, eps): return ((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps)).reshape(-1)",
      "grp = norm(g1, 1e-6)",
      "bat = ((g1 - g1.mean(1, keepdim=True)) / (a.std() + 1e-6)).reshape(-1)",
      "none = (g1 - g1.mean(1, keepdim=True)).reshape(-1)",
      "loo = (g1 - (g1.sum(1, keepdim=True) - g1) / 3).reshape(-1)",
      "sm = norm(g1, 1e-4) + 0.5 * norm(g2, 1e-4)",
      "gd = (sm - sm.mean()) / (sm.std() + 1e-4)",
      "out = (grp, bat, none, loo, gd)",
    ].join("\n");
    const res = runOracle([
      {
        id: "adv",
        code,
        inputs: { a: { shape: [n], dtype: "f64", values: r1 }, b: { shape: [n], dtype: "f64", values: r2 } },
      },
    ]);
    const [grp, bat, none, loo, gd] = res.get("adv")!.outs.map((o) => pick(o.values));
    close(seqValues(grpo(batch)), grp!, 1e-9, "group");
    close(seqValues(grpo(batch, { scale: "batch" })), bat!, 1e-9, "batch");
    close(seqValues(grpo(batch, { scale: "none" })), none!, 1e-12, "none");
    close(seqValues(rloo(batch)), loo!, 1e-12, "rloo");
    close(seqValues(gdpo(batch, { eps: 1e-4, weights: [1, 0.5] })), gd!, 1e-9, "gdpo");
  });
});

describe("GAE (1506.02438)", () => {
  // the sum form Â_j = Σ_{k≥j} (γλ)^{k−j} δ_k, δ_k = r_k + γV_{k+1} − V_k over each row's valid steps,
  // bootstrapped from V at the first step after them — written independently of the recursion in src
  const n = 3;
  const t = 5;
  const lens = [5, 3, 1];
  const maskV = Array.from({ length: n * t }, (_, k) => (k % t < (lens[Math.floor(k / t)] as number) ? 1 : 0));
  const V = Array.from({ length: n * (t + 1) }, (_, k) => Math.sin(1.3 * k + 0.2));
  const R = Array.from({ length: n * t }, (_, k) => (maskV[k] ? Math.cos(0.7 * k) : 0));
  function reference(rewards: number[], gamma: number, lambda: number): number[] {
    const out = new Array<number>(n * t).fill(0);
    for (let i = 0; i < n; i++) {
      const len = lens[i] as number;
      const delta = (k: number) =>
        (rewards[i * t + k] as number) + gamma * (V[i * (t + 1) + k + 1] as number) - (V[i * (t + 1) + k] as number);
      for (let j = 0; j < len; j++) {
        let a = 0;
        for (let k = j; k < len; k++) a += (gamma * lambda) ** (k - j) * delta(k);
        out[i * t + j] = a;
      }
    }
    return out;
  }
  const batch = (tokenRewards: boolean, rewards = [0, 0, 0]): RewardBatch => ({
    ...batchOf(rewards, [0, 1, 2]),
    mask: tensor(maskV, { shape: [n, t], dtype: "f64" }),
    values: tensor(V, { shape: [n, t + 1], dtype: "f64" }),
    ...(tokenRewards ? { tokenRewards: tensor(R, { shape: [n, t], dtype: "f64" }) } : {}),
  });
  const tokenValues = (a: Advantages) => {
    assert.equal(a.kind, "token");
    return (a.values as ReturnType<typeof tensor>).data() as Float64Array;
  };
  test("per-step rewards, without normalisation, for (γ, λ) = (0.99, 0.95) and (0.9, 0.5)", () => {
    for (const [gamma, lambda] of [
      [0.99, 0.95],
      [0.9, 0.5],
    ] as const) {
      const got = tokenValues(gae(batch(true), { gamma, lambda, normalize: false }));
      close(got, reference(R, gamma, lambda), 1e-12, `γ ${gamma} λ ${lambda}`);
    }
  });
  test("normalised over the valid steps (mean 0, unbiased std 1); padding stays 0", () => {
    const raw = reference(R, 0.99, 0.95);
    const valid = raw.filter((_, k) => maskV[k]);
    const mean = valid.reduce((a, b) => a + b, 0) / valid.length;
    const std = Math.sqrt(valid.reduce((a, b) => a + (b - mean) ** 2, 0) / (valid.length - 1));
    const want = raw.map((x, k) => (maskV[k] ? (x - mean) / (std + 1e-8) : 0));
    close(tokenValues(gae(batch(true), {})), want, 1e-12);
  });
  test("without per-step rewards the row reward sits on its last valid step", () => {
    const rows = [1, -0.5, 2];
    const onLast = new Array<number>(n * t).fill(0);
    rows.forEach((r, i) => {
      onLast[i * t + (lens[i] as number) - 1] = r;
    });
    close(tokenValues(gae(batch(false, rows), { normalize: false })), reference(onLast, 0.99, 0.95), 1e-12);
  });
});

describe("registry", () => {
  test("every estimator is registered; an unknown name lists the known ones", () => {
    assert.deepEqual(advantageEstimators.names(), [
      "bnpo",
      "dgpo",
      "dr_grpo",
      "dr_mas",
      "gae",
      "gdpo",
      "gigpo",
      "grpo",
      "passk",
      "rank_grpo",
      "reinforce_plus_plus",
      "reinforce_plus_plus_baseline",
      "rloo",
      "step_grpo",
    ]);
    assert.throws(() => advantageEstimators.get("ppo"), /known: bnpo, dgpo/);
    const est = advantageEstimators.get("grpo");
    close(
      seqValues(runEstimator(est, batchOf([1, 0, 0, 1]), { eps: 1e-4 })),
      [0.8658754, -0.8658754, -0.8658754, 0.8658754],
    );
    assert.throws(
      () => runEstimator(est, batchOf([1, 0]), { epsilon: 1 }),
      /unknown option "epsilon" for grpo; known options: scale, std, eps, singleton/,
    );
  });
});
