/**
 * Reweighters and filters: test vectors D.10 (DGPO question weights) and D.16 (DCPO advantage mixing),
 * the DAPO zero-std filter report, truncated and top-entropy masks (PyTorch quantile oracle), GTPO
 * conflict-token weights and entropy shift, the generic score filter, ARM and state()/load().
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { grpo } from "../../src/algo/advantage.js";
import {
  entropyQuantileThreshold,
  gtpoConflictWeights,
  sampleFilters,
  scoreTokenFilter,
  tokenFilters,
  topEntropyMask,
  truncatedMask,
  zeroStdFilter,
} from "../../src/algo/filters.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import {
  advantageReweighters,
  armConfidence,
  dcpoAlpha,
  dcpoMix,
  dcpoTemperature,
  dgpoDqw,
  dgpoQuestionWeights,
  gtpoEntropyShift,
  scaleSequences,
  targetDistributionRatio,
} from "../../src/algo/reweight.js";
import type { Advantages, RewardBatch } from "../../src/algo/types.js";
import { liveTensors, type Tensor, tensor } from "../../src/tensor/index.js";
import { close } from "../helpers/close.js";
import { py, runOracle } from "../helpers/oracle.js";

const seq = (values: number[]): Advantages => ({ kind: "sequence", values: Float64Array.from(values) });

function tokenValues(a: Advantages): Tensor {
  assert.equal(a.kind, "token");
  return a.values as Tensor;
}

describe("DGPO question weighting (D.10)", () => {
  const batch: RewardBatch = {
    rewards: Float64Array.of(1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1),
    groupIndex: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
  };
  test("w = V·softmax(−acc/T), T = 2; zero-std groups keep 1", () => {
    const w = dgpoQuestionWeights(batch, { temperature: 2 });
    const [a, b, c] = [1.1272696, 0.9948119, 0.8779185];
    close(w, [a, a, a, a, b, b, b, b, c, c, c, c, 1, 1, 1, 1]);
    close([a + b + c], [3]);
  });
  test("acc from the main reward; acc = 0 with non-zero std counts as 1", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 2, 1),
      groupIndex: Int32Array.of(0, 0, 1, 1),
      rewardsByFn: [Float64Array.of(0, 0, 1, 0), Float64Array.of(1, 0, 1, 1)],
    };
    // group 0: acc 0 → 1; group 1: acc 0.5 → weights 2·softmax([−0.5, −0.25])
    const e0 = Math.exp(-0.5);
    const e1 = Math.exp(-0.25);
    const w = dgpoQuestionWeights(b);
    close(w, [(2 * e0) / (e0 + e1), (2 * e0) / (e0 + e1), (2 * e1) / (e0 + e1), (2 * e1) / (e0 + e1)], 1e-12);
  });
  test("reweighter scales sequence advantages; token rescale by (all tokens)/(active tokens)", () => {
    const adv = grpo(batch);
    const out = dgpoDqw(adv, batch);
    const w = dgpoQuestionWeights(batch);
    close(
      out.values as Float64Array,
      (adv.values as Float64Array).map((x, i) => x * w[i]!),
      1e-15,
    );
    const lengths = Int32Array.from({ length: 16 }, () => 2);
    const resc = dgpoDqw(adv, { ...batch, lengths }, { rescaleTokens: true });
    close(
      resc.values as Float64Array,
      (out.values as Float64Array).map((x) => (x * 32) / 24),
      1e-12,
    );
  });
});

describe("DCPO advantage mixing (D.16)", () => {
  test("temperature, α and target ratio", () => {
    assert.equal(dcpoTemperature(0.3, 0.5), 1.2);
    assert.equal(dcpoTemperature(0.7, 0.5), 0.8);
    close([dcpoAlpha(0.3, 0.5)], [0.1666667]);
    assert.equal(dcpoAlpha(0.3, 0), 0, "p = 0 guard");
    const logits = tensor([[[2, 1, 0]]], { dtype: "f64" });
    const tokens = tensor([[0]], { dtype: "i64" });
    const rho = targetDistributionRatio(logits, tokens, 1.2);
    close(rho.toArray(), [0.9259248]);
    const l1 = logits.logSoftmax(-1);
    close([l1.toArray()[0]!], [-0.407606]);
    for (const t of [logits, tokens, rho, l1]) t.dispose();
  });
  test("A' = (1 − α)A + α·b·ρ^T", () => {
    const before = liveTensors();
    const b: RewardBatch = { rewards: Float64Array.of(1, 0, 0, 1), groupIndex: Int32Array.of(0, 0, 0, 0) };
    const logits = tensor(
      Array.from({ length: 4 }, () => [[2, 1, 0]]),
      { dtype: "f64" },
    );
    const tokens = tensor([[0], [0], [0], [0]], { dtype: "i64" });
    const rho = targetDistributionRatio(logits, tokens, dcpoTemperature(0.3));
    const out = dcpoMix(grpo(b), b, rho, 0.3);
    assert.equal(out.kind, "token");
    close(out.values.toArray(), [0.8760074, -0.7216866, -0.7216866, 0.8760074]);
    for (const t of [logits, tokens, rho, out.values]) t.dispose();
    assert.equal(liveTensors(), before, "no tensor leaked");
  });
  test("as a stateful reweighter: H from the last update (observe → endStep), ρ^T at T(H), state round trip", () => {
    const pl = new Pipeline({ reweighters: [{ name: "dcpo" }] });
    const b = { groupIndex: Int32Array.of(0, 0, 0, 0) };
    const temps: number[] = [];
    const targetRatio = (t: number) => {
      temps.push(t);
      return tensor([[1.5], [0.5], [1], [1]], { dtype: "f64" });
    };
    const first = pl.advantages([Float64Array.of(1, 0, 0, 1)], b, { targetRatio });
    assert.equal(temps[0], 1.2, "H = 0 before the first update: T = 1.2");
    tokenValues(first.advantages).dispose();
    const lp = tensor([
      [-1, -2, -9],
      [-0.5, -9, -9],
    ]);
    const m = tensor([
      [1, 1, 0],
      [1, 0, 0],
    ]);
    pl.observe({ logprobs: lp, oldLogprobs: lp, advantages: lp, mask: m, groupIndex: Int32Array.of(0, 0) });
    pl.endStep(true);
    const st = pl.state() as Record<string, { entropy: number }>;
    close([st["reweighter:0:dcpo"]!.entropy], [3.5 / 3], 1e-12);
    const second = pl.advantages([Float64Array.of(1, 0, 0, 1)], b, { targetRatio });
    assert.equal(temps[1], 0.8, "H = 1.17 > 0.5: T = 0.8");
    tokenValues(second.advantages).dispose();
    const copy = new Pipeline({ reweighters: [{ name: "dcpo" }] });
    copy.load(pl.state());
    assert.deepEqual(copy.state(), pl.state());
    assert.throws(() => copy.load({ "reweighter:0:dcpo": { entropy: "x", sum: 0, weight: 0 } }), /must be a number/);
    pl.observe({ logprobs: lp, oldLogprobs: lp, advantages: lp, mask: m, groupIndex: Int32Array.of(0, 0) });
    pl.endStep(false);
    assert.deepEqual(pl.state(), copy.state(), "a skipped step drops what was gathered");
    lp.dispose();
    m.dispose();
  });
});

describe("ARM confidence reweighting (design choice)", () => {
  test("down-weights over-confident positives, leaves A ≤ 0 alone", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 1, 0, 0),
      groupIndex: Int32Array.of(0, 0, 0, 0),
      meanLogprobs: Float64Array.of(Math.log(0.8), Math.log(0.2), -1, -1),
    };
    const out = armConfidence(seq([1, 1, -1, -1]), b, { alpha: 1 }).values as Float64Array;
    // c̄ = 0.5: factors (0.8/0.5)^−1 = 0.625, (0.2/0.5)^−1 = 2.5 → clamp 2
    close(out, [0.625, 2, -1, -1], 1e-12);
    const add = armConfidence(seq([1, 1, -1, -1]), b, { alpha: 1, form: "additive" }).values as Float64Array;
    close(add, [1 - 0.3, 1 + 0.3, -1, -1], 1e-12);
  });
});

describe("GTPO", () => {
  test("entropy filter and shift", () => {
    const b: RewardBatch = { rewards: Float64Array.of(1, 0, 1), groupIndex: Int32Array.of(0, 0, 0) };
    const meanEntropy = () => Float64Array.of(0.5, 0.2, 0.9);
    const out = gtpoEntropyShift(seq([1, -1, 0.5]), b, {}, { meanEntropy });
    close(out.values as Float64Array, [0.95, -1.02, 0], 1e-12);
    const tok = gtpoEntropyShift(
      {
        kind: "token",
        values: tensor([
          [1, 1],
          [-1, -1],
          [0.5, 0.5],
        ]),
      },
      b,
      {},
      { meanEntropy },
    );
    close(tokenValues(tok).toArray(), [0.95, 0.95, -1.02, -1.02, 0, 0], 1e-6);
    tokenValues(tok).dispose();
  });
  test("conflict-token weights: forward/backward initial runs, W for positives, 0 for negatives; δ weighs A, not the mask", () => {
    const ids = tensor(
      [
        [5, 6, 7, 8],
        [5, 6, 9, 8],
        [5, 1, 7, 0],
        [5, 6, 7, 8],
        [5, 6, 7, 8],
      ],
      { dtype: "i64" },
    );
    const mask = tensor([
      [1, 1, 1, 1],
      [1, 1, 1, 1],
      [1, 1, 1, 0],
      [1, 1, 1, 1],
      [1, 1, 0, 0],
    ]);
    const res = gtpoConflictWeights({
      mask,
      tokenIds: ids,
      advantages: seq([1, -0.5, -0.5, 0, 0]),
      groupIndex: Int32Array.of(0, 0, 0, 1, 1),
    });
    assert.equal(res.mask, undefined, "the loss mask (and so the normaliser |o_i|) is unchanged");
    assert.deepEqual(res.advantageWeights.tolist(), [
      [2, 2, 2, 4],
      [0, 0, 1, 0],
      [0, 1, 1, 1],
      [1, 1, 1, 1],
      [1, 1, 1, 1],
    ]);
    assert.deepEqual([...res.conflicts], [4, 3, 1, 0, 0]);
    assert.equal(res.removedTokens, 4);
    const div = gtpoConflictWeights(
      { mask, tokenIds: ids, advantages: seq([1, -0.5, -0.5, 0, 0]), groupIndex: Int32Array.of(0, 0, 0, 1, 1) },
      { divideByConflicts: true },
    );
    close(div.advantageWeights.toArray().slice(0, 4), [0.5, 0.5, 0.5, 1], 1e-12);
    for (const t of [ids, mask, res.advantageWeights, div.advantageWeights]) t.dispose();
  });
});

describe("sample filter: DAPO zero-std", () => {
  const nan = Number.NaN;
  const b: RewardBatch = {
    rewards: Float64Array.of(1, 1, 1, 1, 1, 0, 0, 0, 0.5, nan, 1, 1),
    groupIndex: Int32Array.of(0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 3, 3),
    lengths: Int32Array.of(3, 3, 3, 3, 5, 5, 5, 5, 7, 2, 2, 2),
  };
  test("drops all-equal groups and reports groups, sequences and tokens removed", () => {
    const r = zeroStdFilter(b);
    assert.deepEqual([...r.keep], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0]);
    assert.deepEqual(
      { kept: r.keptGroups, g: r.removedGroups, s: r.removedSequences, t: r.removedTokens },
      { kept: 1, g: 3, s: 8, t: 12 + 7 + 6 },
    );
  });
  test("keepSingletons (verl) and the metric of another reward function", () => {
    const r = zeroStdFilter(b, { keepSingletons: true });
    assert.equal(r.keep[8], 1);
    const withAcc: RewardBatch = {
      ...b,
      rewardsByFn: [Float64Array.of(1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1)],
    };
    assert.deepEqual([...zeroStdFilter(withAcc, { metric: 0 }).keep], [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
  });
  test("token counts from the mask when lengths are absent; error when neither", () => {
    const mask = tensor([
      [1, 1, 0],
      [1, 0, 0],
      [1, 1, 1],
    ]);
    const r = zeroStdFilter({ rewards: Float64Array.of(1, 1, 0), groupIndex: Int32Array.of(0, 0, 1), mask });
    assert.equal(r.removedTokens, 3 + 3);
    mask.dispose();
    assert.throws(() => zeroStdFilter({ rewards: Float64Array.of(1), groupIndex: Int32Array.of(0) }), /lengths/);
    assert.deepEqual(sampleFilters.names(), ["dagrpo_pairs", "zero_std"]);
  });
});

describe("token filters", () => {
  test("truncated-completion mask", () => {
    const mask = tensor([
      [1, 1, 1],
      [1, 1, 0],
      [1, 1, 1],
    ]);
    const r = truncatedMask({ mask, truncated: Uint8Array.of(0, 1, 1) });
    assert.deepEqual(r.mask.tolist(), [
      [1, 1, 1],
      [0, 0, 0],
      [0, 0, 0],
    ]);
    assert.equal(r.removedTokens, 5);
    mask.dispose();
    r.mask.dispose();
  });
  test("top-entropy mask: threshold = (1 − ρ)-quantile of valid tokens (torch.quantile oracle)", () => {
    const before = liveTensors();
    const ent = tensor(
      [
        [0.1, 2.5, 0.7, 1.3, 9.0],
        [0.4, 0.05, 3.1, 0.9, 9.0],
        [1.7, 0.2, 0.6, 9.0, 9.0],
      ],
      { dtype: "f64" },
    );
    const mask = tensor([
      [1, 1, 1, 1, 0],
      [1, 1, 1, 1, 0],
      [1, 1, 1, 0, 0],
    ]);
    const res = runOracle([
      { id: "q", code: "out = torch.quantile(e[m > 0], 0.8)", inputs: { e: py(ent), m: py(mask) } },
    ]);
    const thr = entropyQuantileThreshold(ent, mask, 0.8);
    close([thr], res.get("q")!.outs[0]!.values, 1e-12);
    const r = topEntropyMask({ mask, entropy: ent }, { quantile: 0.2 });
    const kept = r.mask.toArray();
    const e = ent.toArray();
    const m = mask.toArray();
    for (let i = 0; i < e.length; i++) assert.equal(kept[i], m[i]! > 0 && e[i]! >= thr ? 1 : 0, `token ${i}`);
    assert.equal(r.removedTokens, 11 - kept.reduce((a, b) => a + b, 0));
    const all = topEntropyMask({ mask, entropy: ent }, { quantile: 1 });
    assert.equal(all.removedTokens, 0);
    for (const t of [ent, mask, r.mask, all.mask]) t.dispose();
    assert.equal(liveTensors(), before, "no tensor leaked");
  });
  test("generic score filter (CAPO hook): threshold or custom rule", () => {
    const mask = tensor([
      [1, 1, 1],
      [1, 1, 0],
    ]);
    const score = tensor([
      [0.1, 5, 0.2],
      [3, 0.3, 9],
    ]);
    const r = scoreTokenFilter({ mask, score }, { source: "custom", threshold: 1 });
    assert.deepEqual(r.mask?.tolist(), [
      [1, 0, 1],
      [0, 1, 0],
    ]);
    assert.equal(r.removedTokens, 2);
    // the curvature source: the top (1 − q) of the valid tokens by score leave
    const q = scoreTokenFilter({ mask, curvature: score }, { quantile: 0.5 });
    assert.deepEqual(q.mask?.tolist(), [
      [1, 0, 1],
      [0, 1, 0],
    ]);
    assert.throws(() => scoreTokenFilter({ mask }, { threshold: 1 }), /curvature/);
    assert.throws(
      () => scoreTokenFilter({ mask, score }, { source: "custom" }),
      /exactly one of threshold and quantile/,
    );
    for (const t of [mask, score, r.mask, q.mask]) t?.dispose();
    assert.deepEqual(tokenFilters.names(), ["gtpo_conflict", "score", "top_entropy", "truncated"]);
  });
});

describe("helpers and registry", () => {
  test("scaleSequences on token advantages scales rows", () => {
    const t = tensor([
      [1, 2],
      [3, 4],
    ]);
    const out = scaleSequences({ kind: "token", values: t }, Float64Array.of(2, -1));
    assert.deepEqual(tokenValues(out).tolist(), [
      [2, 4],
      [-3, -4],
    ]);
    t.dispose();
    tokenValues(out).dispose();
  });
  test("reweighter names", () => {
    assert.deepEqual(advantageReweighters.names(), ["arm", "dcpo", "dgpo_dqw", "faker_air", "gtpo_entropy"]);
  });
});
