// Every preset gives the same loss and gradient however one optimizer step is split: 1, 2 and 4 micro-batches,
// and 2 data-parallel ranks (each rank's loss with the step's global counts and step-wide sums, gradients
// summed) against one process on the combined batch. The trainer runs the same pieces (src/algo/step.ts).
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { advantageEstimators } from "../../src/algo/advantage.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { addGlobals } from "../../src/algo/policy-loss.js";
import { computeStepLoss, microBatchRows, stepCounts } from "../../src/algo/step.js";
import type { LossBatch } from "../../src/algo/types.js";
import { presetNames, resolvePreset } from "../../src/presets/index.js";
import { noGrad, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { RUN_SPECIFIC, stepFixture } from "../helpers/step-fixture.js";

const fixtures = new Map<number, ReturnType<typeof stepFixture>>();
after(() => {
  for (const f of fixtures.values()) f.dispose();
});
/** Groups of 4, or larger when the preset's estimator needs them (pass@k: k + 1). */
function fixtureFor(name: string): ReturnType<typeof stepFixture> {
  const c = resolvePreset(name, RUN_SPECIFIC[name] ?? {}, { rewardFunctions: 2 });
  const G = Math.max(4, advantageEstimators.get(c.advantage.estimator).minGroupSize?.(c.advantage.options) ?? 0);
  let f = fixtures.get(G);
  if (f === undefined) {
    f = stepFixture(3, 3, G);
    fixtures.set(G, f);
  }
  return f;
}

interface Outcome {
  loss: number;
  grad: number[];
}

function run(name: string, microBatches: number): Outcome {
  const fx = fixtureFor(name);
  const algo = resolvePreset(name, RUN_SPECIFIC[name] ?? {}, { rewardFunctions: 2 });
  const tokens = fx.tokens();
  const res = computeStepLoss(new Pipeline(algo), fx.rows, tokens, { microBatches, step: 3 });
  const g = tokens.logprobs.grad as Tensor | null;
  const grad = g ? Array.from(g.data() as Float64Array) : new Array(fx.N * fx.T).fill(0);
  g?.dispose();
  tokens.logprobs.dispose();
  if (res.advantages.kind === "token") res.advantages.values.dispose();
  if (res.stage.estimated !== res.advantages && res.stage.estimated.kind === "token")
    res.stage.estimated.values.dispose();
  return { loss: res.loss, grad };
}

function assertSame(a: Outcome, b: Outcome, what: string): void {
  const scale = Math.max(1, Math.abs(a.loss), ...a.grad.map(Math.abs));
  assert.ok(Math.abs(a.loss - b.loss) <= 1e-10 * scale, `${what}: loss ${a.loss} vs ${b.loss}`);
  let worst = 0;
  a.grad.forEach((x, i) => {
    worst = Math.max(worst, Math.abs(x - (b.grad[i] as number)));
  });
  assert.ok(worst <= 1e-10 * scale, `${what}: gradient differs by ${worst}`);
}

describe("every preset: the same loss and gradient for 1, 2 and 4 micro-batches", () => {
  for (const name of presetNames()) {
    test(name, () => {
      const one = run(name, 1);
      assert.ok(Number.isFinite(one.loss), `loss ${one.loss}`);
      assertSame(one, run(name, 2), `${name}, 2 micro-batches`);
      assertSame(one, run(name, 4), `${name}, 4 micro-batches`);
    });
  }
});

/**
 * Two ranks as the trainer runs them: the advantages of the step (one stage), each rank's kept rows (whole
 * groups), counts and prepass sums summed over the ranks (the all-reduce), each rank's loss backward on its
 * own rows, gradients summed.
 */
function twoRanks(name: string): Outcome {
  const fx = fixtureFor(name);
  const algo = resolvePreset(name, RUN_SPECIFIC[name] ?? {}, { rewardFunctions: 2 });
  const pl = new Pipeline(algo);
  const tokens = fx.tokens();
  const { byFn, ...base } = fx.rows;
  const stage = pl.advantages(byFn, base, {
    mask: tokens.mask,
    meanEntropy: () =>
      tidy(() => {
        const m = tokens.mask;
        return (tokens.entropy as Tensor).mul(m).sum(1).div(m.sum(1).clamp(1, null)).data() as Float64Array;
      }),
    targetRatio: tokens.targetRatio as (t: number) => Tensor,
    ...(algo.rewardKl
      ? { rewardKl: tidy(() => tokens.oldLogprobs.sub(tokens.refLogprobs as Tensor).mul(tokens.mask)) }
      : {}),
  });
  const tok = pl.tokenStage(stage, {
    mask: tokens.mask,
    groupIndex: base.groupIndex,
    truncated: base.truncated as Uint8Array,
    tokenIds: tokens.tokenIds as Tensor,
    entropy: tokens.entropy as Tensor,
    curvature: tokens.curvature as Tensor,
  });
  const kept = Array.from({ length: fx.N }, (_, i) => i).filter((i) => stage.keep[i] === 1);
  const half = Math.floor((new Set(kept.map((r) => base.groupIndex[r])).size + 1) / 2);
  const groupsInOrder = [...new Set(kept.map((r) => base.groupIndex[r] as number))];
  const rankOf = (r: number) => (groupsInOrder.indexOf(base.groupIndex[r] as number) < half ? 0 : 1);
  const rankRows = [kept.filter((r) => rankOf(r) === 0), kept.filter((r) => rankOf(r) === 1)];
  const passRate = Float64Array.from(stage.batch.rewards);
  const idx = (rs: number[]) => tensor(rs, { dtype: "i64" });
  const lb = (rs: number[], grad: boolean): LossBatch => {
    const pick = (t: Tensor) => t.indexSelect(0, idx(rs));
    const w = tok.advantageWeights;
    let adv: Tensor;
    if (stage.advantages.kind === "sequence") {
      const a = stage.advantages.values;
      adv = tensor(
        Float64Array.from(rs, (r) => a[r] as number),
        { dtype: "f64" },
      );
      if (w) adv = adv.unsqueeze(1).mul(pick(w).to("f64"));
    } else {
      adv = pick(stage.advantages.values).to("f64");
      if (w) adv = adv.mul(pick(w).to("f64"));
    }
    const groups = new Map<number, number[]>();
    fx.rows.groupIndex.forEach((g, i) => {
      const rw = stage.batch.rewards[i] as number;
      if (Number.isNaN(rw)) return;
      const e = groups.get(g) ?? [];
      e.push(rw);
      groups.set(g, e);
    });
    fx.rows.groupIndex.forEach((g, i) => {
      const e = groups.get(g) ?? [];
      passRate[i] = e.length ? e.reduce((x, y) => x + y, 0) / e.length : 0;
    });
    return {
      logprobs: grad ? pick(tokens.logprobs) : pick(tokens.logprobs.detach()),
      oldLogprobs: pick(tokens.oldLogprobs),
      refLogprobs: pick(tokens.refLogprobs as Tensor),
      entropy: pick(tokens.entropy as Tensor),
      advantages: adv,
      mask: pick(tok.mask).to("f64"),
      groupIndex: Int32Array.from(rs, (r) => base.groupIndex[r] as number),
      rewards: Float64Array.from(rs, (r) => stage.batch.rewards[r] as number),
      passRate: Float64Array.from(rs, (r) => passRate[r] as number),
      ...(base.itemIndex ? { itemIndex: pick(base.itemIndex) } : {}),
    };
  };
  const wholeGroups = pl.has("wholeGroups");
  const rankMicros = rankRows.map((rs) => microBatchRows(rs, base.groupIndex, 2, wholeGroups));
  // the all-reduce of counts: each rank's counts summed
  const perRank = rankMicros.map((ms) =>
    tidy(() =>
      stepCounts(
        algo,
        ms.map((rs) => tok.mask.indexSelect(0, idx(rs))),
        ms,
        base.groupIndex,
      ),
    ),
  );
  const counts = {
    ...perRank[0]!,
    tokens: perRank[0]!.tokens + perRank[1]!.tokens,
    sequences: perRank[0]!.sequences + perRank[1]!.sequences,
    groups: (perRank[0]!.groups ?? 0) + (perRank[1]!.groups ?? 0),
  };
  const global = pl.loss.emptyGlobals();
  noGrad(() => {
    for (const ms of rankMicros)
      for (const rs of ms) tidy(() => addGlobals(global, pl.loss.prepass(lb(rs, false), counts)));
  });
  let loss = 0;
  for (const ms of rankMicros) {
    for (const rs of ms) {
      tidy(() => {
        const res = pl.loss.compute(lb(rs, true), counts, { step: 3, global });
        res.loss.backward();
        loss += res.loss.item();
      });
    }
  }
  const g = tokens.logprobs.grad as Tensor | null;
  const grad = g ? Array.from(g.data() as Float64Array) : new Array(fx.N * fx.T).fill(0);
  g?.dispose();
  tokens.logprobs.dispose();
  tok.mask.dispose();
  tok.advantageWeights?.dispose();
  for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") a.values.dispose();
  return { loss, grad };
}

describe("every preset: 2 data-parallel ranks give the one-process loss and gradient", () => {
  for (const name of presetNames()) {
    test(name, () => {
      assertSame(run(name, 1), twoRanks(name), `${name}, 2 ranks`);
    });
  }
});
