// Contract tests generated from the registries: every registered component, in a GRPO config of its own,
// keeps the properties every design-space component must have — masked positions get no gradient; permuting
// the completions inside a group permutes the outputs; groups whose rewards are all equal carry no advantage;
// extreme inputs give finite outputs; a stateful component's state round-trips through a checkpoint (JSON)
// and the run continues exactly. Names come from the registries, never from a hand-kept list.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { advantageEstimators } from "../../src/algo/advantage.js";
import type { ComponentDef } from "../../src/algo/component.js";
import type { AlgoConfigInput } from "../../src/algo/config.js";
import { sampleFilters, tokenFilters } from "../../src/algo/filters.js";
import { gates } from "../../src/algo/gates.js";
import { policyLosses } from "../../src/algo/losses.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { regularizers } from "../../src/algo/regularizers.js";
import { rewardCombiners, rewardShapers } from "../../src/algo/rewards.js";
import { advantageReweighters } from "../../src/algo/reweight.js";
import { computeStepLoss, type StepRows, type StepTokens } from "../../src/algo/step.js";
import type { Advantages } from "../../src/algo/types.js";
import { type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { stepFixture } from "../helpers/step-fixture.js";

const fx = stepFixture(7);
after(() => fx.dispose());

/** Options a component needs beyond its defaults, to run on the fixture. */
const REQUIRED: Record<string, Record<string, unknown>> = {
  overlong: { maxLength: 20000, cacheLength: 4000 },
  score: { quantile: 0.9 },
};

/** One config per registered component: GRPO with that component in its slot. */
function componentConfigs(): { slot: string; name: string; cfg: AlgoConfigInput }[] {
  const out: { slot: string; name: string; cfg: AlgoConfigInput }[] = [];
  const add = (
    slot: string,
    reg: { list(): ComponentDef[] },
    make: (n: string, o: Record<string, unknown>) => AlgoConfigInput,
  ) => {
    for (const d of reg.list()) out.push({ slot, name: d.name, cfg: make(d.name, REQUIRED[d.name] ?? {}) });
  };
  add("estimator", advantageEstimators, (n, o) => ({
    advantage: { estimator: n, options: n === "bnpo" ? { rMax: 2 } : o },
    ...(advantageEstimators.get(n).granularity === "token" ? {} : {}),
  }));
  add("combiner", rewardCombiners, (n, o) => ({ reward: { combine: n, options: o } }));
  add("shaper", rewardShapers, (n, o) => ({ shapers: [{ name: n, options: o }] }));
  add("reweighter", advantageReweighters, (n, o) => ({ reweighters: [{ name: n, options: o }] }));
  add("sample filter", sampleFilters, (n, o) => ({ sampleFilters: [{ name: n, options: o }] }));
  add("token filter", tokenFilters, (n, o) => ({ tokenFilters: [{ name: n, options: o }] }));
  add("gate", gates, (n) => ({ gate: { type: n } }));
  add("loss", policyLosses, (n) => (n === "surrogate" ? {} : { loss: { type: n }, gate: { type: "none" } }));
  add("regularizer", regularizers, (n) => ({ regularizers: [{ type: n }] }));
  return out;
}

interface Out {
  loss: number;
  grad: Float64Array;
  adv: number[][];
  /** The estimator's own output (before reweighters) and the rewards it read. */
  estimated: number[][];
  rewards: Float64Array;
  metrics: Record<string, number>;
}

function advRows(a: Advantages, n: number): number[][] {
  if (a.kind === "sequence") return Array.from(a.values, (v) => [v]);
  const t = a.values.to("f64");
  const d = t.data() as Float64Array;
  const c = d.length / n;
  t.dispose();
  return Array.from({ length: n }, (_, i) => Array.from(d.subarray(i * c, (i + 1) * c)));
}

function runOnce(pl: Pipeline, rows: StepRows, tokens: StepTokens, step = 1): Out {
  const res = computeStepLoss(pl, rows, tokens, { step });
  const g = tokens.logprobs.grad as Tensor | null;
  const grad = g ? Float64Array.from(g.data() as Float64Array) : new Float64Array(fx.N * fx.T);
  g?.dispose();
  tokens.logprobs.dispose();
  const adv = advRows(res.advantages, rows.groupIndex.length);
  const estimated = advRows(res.stage.estimated, rows.groupIndex.length);
  for (const a of new Set([res.advantages, res.stage.estimated])) if (a.kind === "token") a.values.dispose();
  return { loss: res.loss, grad, adv, estimated, rewards: res.stage.batch.rewards, metrics: res.metrics };
}

/** Rows permuted inside their groups: row i of the result is row perm[i] of the input. */
function permuted(perm: number[]): { rows: StepRows; tokens: () => StepTokens; release: () => void } {
  const idx = tensor(perm, { dtype: "i64" });
  const r = fx.rows;
  const take = <T>(xs: ArrayLike<T>) => perm.map((p) => xs[p] as T);
  const held: Tensor[] = [idx];
  const pick = (t: Tensor) => {
    const out = t.indexSelect(0, idx);
    held.push(out);
    return out;
  };
  const rows: StepRows = {
    ...r,
    byFn: r.byFn.map((f) => Float64Array.from(take(f))),
    lengths: Int32Array.from(take(r.lengths as Int32Array)),
    meanLogprobs: Float64Array.from(take(r.meanLogprobs as Float64Array)),
    truncated: Uint8Array.from(take(r.truncated as Uint8Array)),
    texts: take(r.texts as string[]),
    fields: take(r.fields as Record<string, unknown>[]),
    trajectoryIndex: Int32Array.from(take(r.trajectoryIndex as Int32Array)),
    stepIndex: Int32Array.from(take(r.stepIndex as Int32Array)),
    observationKey: take(r.observationKey as string[]),
    agentId: Int32Array.from(take(r.agentId as Int32Array)),
    executed: Uint8Array.from(take(r.executed as Uint8Array)),
    rankRewards: take(r.rankRewards as Float64Array[]),
    itemIndex: pick(r.itemIndex as Tensor),
    values: pick(r.values as Tensor),
  };
  const base = fx.tokens();
  const fixed = {
    oldLogprobs: pick(base.oldLogprobs),
    refLogprobs: pick(base.refLogprobs as Tensor),
    entropy: pick(base.entropy as Tensor),
    tokenIds: pick(base.tokenIds as Tensor),
    mask: pick(base.mask),
    curvature: pick(base.curvature as Tensor),
    score: pick(base.score as Tensor),
  };
  const lp = tidy(() => base.logprobs.detach().indexSelect(0, idx));
  held.push(lp);
  base.logprobs.dispose();
  return {
    rows,
    tokens: () => ({
      ...fixed,
      logprobs: tidy(() => lp.add(0)).requireGrad(),
      targetRatio: (t: number) => tidy(() => (base.targetRatio as (t: number) => Tensor)(t).indexSelect(0, idx)),
    }),
    release: () => {
      for (const t of held) t.dispose();
    },
  };
}

const close = (a: number, b: number, what: string) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a)), `${what}: ${a} vs ${b}`);

for (const { slot, name, cfg } of componentConfigs()) {
  describe(`${slot} ${name}`, () => {
    const def = new Pipeline(cfg);
    test("masked positions get zero gradient", () => {
      const tokens = fx.tokens();
      const mask = Array.from(tokens.mask.data() as Float64Array);
      const out = runOnce(new Pipeline(cfg), fx.rows, tokens);
      assert.ok(Number.isFinite(out.loss), `loss ${out.loss}`);
      mask.forEach((m, k) => {
        if (m === 0) assert.equal(out.grad[k], 0, `gradient at masked position ${k}`);
      });
    });
    test("permuting completions within a group permutes the outputs", () => {
      const G = fx.G;
      // reversed inside each group
      const perm = Array.from({ length: fx.N }, (_, i) => Math.floor(i / G) * G + (G - 1 - (i % G)));
      // the trajectory pairing (rows 2k, 2k + 1) moves with the rows: keep pairs together
      const pairPerm = Array.from({ length: fx.N }, (_, i) => {
        const g = Math.floor(i / G) * G;
        return g + ((i - g + 2) % G);
      });
      for (const p of [pairPerm, ...(slot === "estimator" ? [] : [perm])]) {
        const a = runOnce(new Pipeline(cfg), fx.rows, fx.tokens());
        const q = permuted(p);
        try {
          const b = runOnce(new Pipeline(cfg), q.rows, q.tokens());
          close(a.loss, b.loss, "loss");
          for (let i = 0; i < fx.N; i++) {
            const ai = a.adv[p[i] as number] as number[];
            (b.adv[i] as number[]).forEach((v, t) => close(v, ai[t] as number, `advantage of row ${i}`));
            for (let t = 0; t < fx.T; t++)
              close(
                b.grad[i * fx.T + t] as number,
                a.grad[(p[i] as number) * fx.T + t] as number,
                `gradient [${i}, ${t}]`,
              );
          }
        } finally {
          q.release();
        }
      }
    });
    test("groups whose rewards reach the estimator all equal get no advantage from it", () => {
      const est = advantageEstimators.get(def.algo.advantage.estimator);
      if (est.groupRelative === false) return; // no group baseline (REINFORCE++)
      if (est.absolute === true) return; // an absolute term by design (VGPO; test/generators/vgpo.test.ts)
      const equal: StepRows = {
        ...fx.rows,
        byFn: fx.rows.byFn.map((f) => f.map(() => 0.5)),
        rankRewards: fx.rows.rankRewards?.map((r) => r.map(() => 0.5)),
        executed: new Uint8Array(fx.N), // Hi-Agent's foresight term off
      };
      const out = runOnce(new Pipeline(cfg), equal, fx.tokens());
      // shapers may make a group's rewards differ (length penalty, rank scaling): judge the groups they leave equal
      const byGroup = new Map<number, number[]>();
      fx.rows.groupIndex.forEach((g, i) => {
        byGroup.set(g, [...(byGroup.get(g) ?? []), i]);
      });
      let judged = 0;
      for (const rows of byGroup.values()) {
        const rs = rows.map((i) => out.rewards[i] as number);
        if (rs.some((x) => x !== rs[0])) continue;
        judged++;
        for (const i of rows)
          for (const v of out.estimated[i] as number[]) assert.ok(Math.abs(v) < 1e-12, `advantage ${v}`);
      }
      if (slot !== "shaper") assert.ok(judged > 0, "some group stayed all-equal");
    });
    test("extreme inputs give finite outputs", () => {
      // rewards far from 0 (BNPO's rewards must stay in its declared range [rMin, rMax]: 0 or 2)
      const bounded = def.algo.advantage.options.rMax !== undefined;
      const big = {
        ...fx.rows,
        byFn: fx.rows.byFn.map((f) => f.map((v, i) => (bounded ? (i % 2) * 1 : i % 2 ? v * 1e6 : -v * 1e6))),
      };
      const tokens = fx.tokens();
      const wild = tidy(() => tokens.logprobs.detach().mul(20).sub(30));
      tokens.logprobs.dispose();
      const out = runOnce(new Pipeline(cfg), big, { ...tokens, logprobs: wild.requireGrad() });
      assert.ok(Number.isFinite(out.loss), `loss ${out.loss}`);
      assert.ok(out.grad.every(Number.isFinite), "finite gradient");
      for (const [k, v] of Object.entries(out.metrics)) assert.ok(!Number.isNaN(v), `metric ${k} is NaN`);
    });
    test("state round-trips through a checkpoint and the run continues exactly", () => {
      const a = new Pipeline(cfg);
      runOnce(a, fx.rows, fx.tokens(), 1);
      a.endStep(true);
      const b = new Pipeline(cfg);
      b.load(JSON.parse(JSON.stringify(a.state())));
      assert.deepEqual(b.state(), a.state());
      const next = [runOnce(a, fx.rows, fx.tokens(), 2), runOnce(b, fx.rows, fx.tokens(), 2)];
      close(next[0]!.loss, next[1]!.loss, "loss after resume");
      a.endStep(true);
      b.endStep(true);
      assert.deepEqual(b.state(), a.state());
    });
  });
}
