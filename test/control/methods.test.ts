/**
 * algo.control through the real loop: the policy-gradient optimizers (state moves, exact resume after a stop),
 * IWOCS (the §E.4 toy against hand values; the loop's search and resume), action grouping (the §E.5 loss vector,
 * grouping recovering latent action types, the loop on the grouped MDP), and the config errors.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  actionFeatures,
  averagedGrouped,
  chooseGrouping,
  groupedGarnet,
  groupingLoss,
  kmeansGroups,
  liftPolicy,
} from "../../src/control/grouping.js";
import {
  greedyTable,
  iwocsPlanning,
  type ModelSpan,
  robustGarnetOptions,
  robustGarnetSpan,
  worstCase,
} from "../../src/control/iwocs.js";
import { type TabularMdp, valueIteration } from "../../src/control/mdp.js";
import { Rng } from "../../src/task/rng.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { assertClose } from "../helpers/oracle.js";

const root = () => mkdtempSync(join(tmpdir(), "cohort-ctlm-"));
const garnetEnv = { name: "garnet", options: { states: 6, actions: 3, horizon: 10, seed: 2 } };

function raw(preset: string, out: string, extra: Record<string, unknown> = {}) {
  return {
    preset,
    outputDir: out,
    policy: { kind: "tabular" },
    env: garnetEnv,
    train: { steps: 6, promptsPerStep: 2, groupSize: 4, lr: 0.1, maxGradNorm: 0 },
    eval: { everySteps: 3, problems: 4 },
    checkpoint: { everySteps: 1 },
    ...extra,
  };
}

for (const preset of ["npg_igt", "harpg", "reinforce"]) {
  test(`${preset} trains through the loop, moves its state, and resumes exactly after a stop`, async () => {
    const straight = await train(parseTrainConfig(raw(preset, root())), { log: () => {} });
    const dir = root();
    const part = await train(parseTrainConfig(raw(preset, dir)), { log: () => {}, stopAfterStep: 3 });
    assert.equal(part.steps, 3);
    const resumed = await train(parseTrainConfig(raw(preset, dir)), { log: () => {}, resume: true });
    assert.equal(resumed.steps, 6);
    const pick = (ms: typeof straight.metrics) =>
      ms.map((m) =>
        [m.step, m.loss, m.reward, m["pg/d_norm"], m["pg/hv_norm"], m["pg/b"], m.eval_optimality_gap].map(
          (x) => x ?? null,
        ),
      );
    assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
    const ms = straight.metrics.filter((m) => (m.step as number) > 0 && m["pg/gamma"] !== undefined);
    assert.equal(ms.length, 6);
    // the schedules move: γ_t decreases; the momentum methods' η_t too
    assert.ok((ms[5]?.["pg/gamma"] as number) < (ms[0]?.["pg/gamma"] as number));
    if (preset !== "reinforce") assert.ok((ms[5]?.["pg/eta"] as number) < 1 && ms[0]?.["pg/eta"] === 1);
    if (preset === "harpg") {
      // the Hessian correction is computed from the second step on, at a b in (0, 1)
      assert.equal(ms[0]?.["pg/hv_norm"], undefined);
      for (const m of ms.slice(1)) {
        assert.ok((m["pg/hv_norm"] as number) > 0, "B̂v ≠ 0");
        assert.ok((m["pg/b"] as number) > 0 && (m["pg/b"] as number) < 1);
      }
    }
  });
}

test("the optimizer's knobs change the run: gamma0 and eta0", async () => {
  const run = async (opt: Record<string, unknown>) =>
    (
      await train(
        parseTrainConfig(raw("npg_igt", root(), { algo: { control: { optimizer: { type: "npg_igt", ...opt } } } })),
        { log: () => {} },
      )
    ).metrics.at(-1)?.eval_optimality_gap as number;
  const base = await run({});
  assert.notEqual(await run({ gamma0: 0.5 }), base);
  assert.notEqual(await run({ eta0: 0.5 }), base);
});

test("HARPG's knobs change the run: normalized, crossTerm, hessianGroups, gamma0, eta0", async () => {
  const run = async (opt: Record<string, unknown>) =>
    (
      await train(
        parseTrainConfig(
          raw("harpg", root(), { algo: { control: { optimizer: { type: "harpg", eta0: 0.8, ...opt } } } }),
        ),
        { log: () => {} },
      )
    ).metrics.at(-1)?.eval_optimality_gap as number;
  const base = await run({});
  for (const o of [
    { normalized: false },
    { crossTerm: "authorsCode" },
    { hessianGroups: 2 },
    { gamma0: 0.5 },
    { eta0: 1 },
  ])
    assert.notEqual(await run(o), base, JSON.stringify(o));
});

/** §E.4(a): one decision at s0, γ = 0.9, p ∈ {0, 0.1, …, 0.5}, nominal p = 0.1. */
function toySpan(): ModelSpan {
  // states: 0 = s0, 1..3 = the safe detour, 4 = goal (absorbing, reward paid on entry), 5 = failure (absorbing 0)
  // actions: 0 = risky, 1 = safe (the same in every other state)
  const ps = [0, 0.1, 0.2, 0.3, 0.4, 0.5];
  const S = 6;
  const A = 2;
  const model = (k: number): TabularMdp => {
    const p = ps[k] as number;
    const P = new Float64Array(S * A * S);
    const R = new Float64Array(S * A);
    const to = (s: number, a: number, s2: number, pr: number) => {
      P[(s * A + a) * S + s2] = (P[(s * A + a) * S + s2] as number) + pr;
    };
    to(0, 0, 4, 1 - p);
    to(0, 0, 5, p);
    R[0] = 1 - p; // risky: reward 1 on reaching the goal
    to(0, 1, 1, 1);
    for (const a of [0, 1]) {
      to(1, a, 2, 1);
      to(2, a, 4, 1);
      R[2 * A + a] = 1; // arrival after the 3-step detour: γ² = 0.81 from s0
      to(3, a, 3, 1);
      to(4, a, 4, 1);
      to(5, a, 5, 1);
    }
    const start = new Float64Array(S);
    start[0] = 1;
    return { states: S, actions: A, P, R, gamma: 0.9, start };
  };
  return { count: ps.length, nominal: 1, model, describe: (k) => ({ p: ps[k] as number }) };
}

test("IWOCS on the §E.4(a) toy: risky first, the worst model p = 0.5 added, then safe with robust value 0.81", () => {
  const span = toySpan();
  const r = iwocsPlanning(span, { stepsPerModel: 1, maxModels: 5, tol: 1e-9 }, (m) => valueIteration(m).Q);
  assert.deepEqual(r.state.models, [1, 5]);
  assert.equal(r.iterations, 2);
  assertClose([r.state.robustValue as number, r.state.worstValue as number], [0.81, 0.81], { rtol: 0, atol: 1e-9 });
  assert.equal(r.policy[0 * 2 + 1], 1, "safe at s0");
  // the first iteration's robust policy was risky with worst value 0.5 (p = 0.5)
  const risky = greedyTable(valueIteration(span.model(1)).Q, 6, 2);
  assert.equal(risky[0], 1);
  assertClose([worstCase(span, risky).value], [0.5], { rtol: 0, atol: 1e-9 });
});

test("IWOCS through the loop: models are added, the worst case over the span is reported, resume is exact", async () => {
  const cfg = (out: string) =>
    raw("iwocs", out, {
      env: { name: "robust_garnet", options: { states: 8, actions: 3, horizon: 15, grid: 4 } },
      algo: { control: { iwocs: { stepsPerModel: 3, maxModels: 3 } } },
      train: { steps: 8, promptsPerStep: 2, groupSize: 4, lr: 0.1, maxGradNorm: 0 },
      eval: { everySteps: 4, problems: 4 },
    });
  const straight = await train(parseTrainConfig(cfg(root())), { log: () => {} });
  const last = straight.metrics.at(-1) as Record<string, number>;
  assert.ok((last["iwocs/models"] as number) >= 2, "a worst-case model was added");
  assert.ok(Number.isFinite(last.eval_worst_case_return) && Number.isFinite(last.eval_iwocs_worst_case));
  assert.ok(Number(last.eval_worst_case_return) <= Number(last.eval_nominal_return) + 1e-12);
  const dir = root();
  await train(parseTrainConfig(cfg(dir)), { log: () => {}, stopAfterStep: 5 });
  const resumed = await train(parseTrainConfig(cfg(dir)), { log: () => {}, resume: true });
  const pick = (ms: typeof straight.metrics) =>
    ms.map((m) => [m.step, m.loss, m["iwocs/model"], m.eval_worst_case_return].map((x) => x ?? null));
  assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
});

test("robust_garnet: the span is valid and α hurts the nominal-optimal policy", () => {
  const o = robustGarnetOptions.parse({ states: 8, actions: 3 });
  const span = robustGarnetSpan(o);
  const nominalPi = greedyTable(valueIteration(span.model(span.nominal)).Q, 8, 3);
  const w = worstCase(span, nominalPi);
  assert.ok(
    w.value < (w.values[span.nominal] as number) - 0.1,
    `worst ${w.value} vs nominal ${w.values[span.nominal]}`,
  );
  for (let k = 0; k < span.count; k++) {
    const m = span.model(k);
    for (let sa = 0; sa < m.states * m.actions; sa++) {
      let t = 0;
      for (let s2 = 0; s2 < m.states; s2++) t += m.P[sa * m.states + s2] as number;
      assert.ok(Math.abs(t - 1) < 1e-12);
    }
  }
});

test("grouping Loss(M) matches the §E.5(a) vector and its argmin", () => {
  const epsR = [0.05, 0.02, 0.01, 0.005, 0];
  const epsP = [0.1, 0.04, 0.02, 0.01, 0];
  const Ms = [1, 2, 4, 8, 16];
  const want: Record<number, number[]> = {
    1e4: [195.26, 179.79, 224.62, 308.83, 435.56],
    1e5: [130.13, 84.21, 84.71, 104.5, 137.74],
    1e6: [109.53, 53.98, 40.46, 39.88, 43.56],
    1e7: [103.01, 44.42, 26.47, 19.45, 13.77],
  };
  for (const [N, vals] of Object.entries(want)) {
    const got = Ms.map((M, i) =>
      groupingLoss({
        states: 5,
        gamma: 0.9,
        rMax: 1,
        vMax: 10,
        delta: 0.05,
        groups: M,
        epsR: epsR[i] as number,
        epsP: epsP[i] as number,
        samples: Number(N),
      }),
    );
    assertClose(got, vals, { rtol: 0, atol: 0.006 }, `N = ${N}`);
  }
});

test("grouping recovers the latent action types without perturbation; lifting the averaged MDP is then optimal", () => {
  const m = groupedGarnet({
    states: 6,
    actions: 12,
    clusters: 3,
    branching: 3,
    sigma: 0,
    gamma: 0.9,
    horizon: 10,
    seed: 4,
  });
  const rng = Rng.fromSeed(1);
  const h = kmeansGroups(actionFeatures(m.P, m.R, 6, 12), 3, rng);
  // same type ⇔ same group
  for (let a = 0; a < 12; a++)
    for (let b = 0; b < 12; b++) assert.equal(h[a] === h[b], m.types[a] === m.types[b], `actions ${a}, ${b}`);
  const reduced = averagedGrouped(m, h);
  const opt = valueIteration(m);
  const red = valueIteration(reduced);
  const lifted = liftPolicy(greedyTable(red.Q, 6, 3), h, 6);
  const J = (pi: Float64Array) => worstCase({ count: 1, nominal: 0, model: () => m, describe: () => ({}) }, pi).value;
  const jStar = J(greedyTable(opt.Q, 6, 12));
  assertClose([J(lifted)], [jStar], { rtol: 0, atol: 1e-9 });
  // with few samples the selection prefers few groups, with many it affords more
  const few = chooseGrouping(
    m,
    { groups: "auto", candidates: [1, 2, 3, 6, 12], samples: 200, pilot: 30, delta: 0.05 },
    Rng.fromSeed(2),
  );
  const many = chooseGrouping(
    m,
    { groups: "auto", candidates: [1, 2, 3, 6, 12], samples: 1e8, pilot: 30, delta: 0.05 },
    Rng.fromSeed(2),
  );
  assert.ok(few.groups < many.groups, `M* ${few.groups} (N = 200) vs ${many.groups} (N = 1e8)`);
});

test("action grouping through the loop: a policy over groups, the exact gap in the true MDP shrinks", async () => {
  const r = await train(
    parseTrainConfig(
      raw("action_grouping", root(), {
        env: { name: "grouped_garnet", options: { states: 6, actions: 12, clusters: 3, horizon: 15 } },
        algo: { control: { grouping: { groups: 3, samples: 5000 } } },
        train: { steps: 20, promptsPerStep: 4, groupSize: 4, lr: 0.1, maxGradNorm: 0 },
        eval: { everySteps: 20, problems: 4 },
        checkpoint: { everySteps: 0 },
      }),
    ),
    { log: () => {} },
  );
  const first = r.metrics[0] as Record<string, number>;
  const last = r.metrics.at(-1) as Record<string, number>;
  assert.equal(last.eval_groups, 3);
  assert.ok(
    Number(last.eval_optimality_gap) < Number(first.eval_optimality_gap),
    `${first.eval_optimality_gap} → ${last.eval_optimality_gap}`,
  );
});

test("control methods refuse bad configs with clear errors", () => {
  const base = (extra: Record<string, unknown>) => raw("grpo", root(), { algo: { regularizers: [] }, ...extra });
  assert.throws(
    () => parseTrainConfig(base({ algo: { regularizers: [], tokenFilters: [{ name: "gtpo_conflict" }] } })),
    /algo\.tokenFilters: token filters select language-model tokens/,
  );
  assert.throws(
    () => parseTrainConfig(raw("harpg", root(), { policy: { kind: "tabular", critic: {} } })),
    /policy\.critic: the harpg optimizer updates the policy alone/,
  );
  assert.throws(
    () => parseTrainConfig(raw("npg_igt", root(), { train: { steps: 2, innerIterations: 2 } })),
    /train\.innerIterations: the npg_igt optimizer takes one gradient estimate per step/,
  );
  assert.throws(
    () => parseTrainConfig(raw("iwocs", root())),
    /algo\.control\.iwocs: IWOCS searches a span.*robust_garnet/,
  );
  assert.throws(
    () =>
      parseTrainConfig(raw("grpo", root(), { algo: { regularizers: [], control: { optimizer: { type: "lbfgs" } } } })),
    /algo\.control\.optimizer/,
  );
  assert.throws(
    () => parseTrainConfig({ preset: "harpg", outputDir: root(), model: { path: "m" }, task: { name: "arithmetic" } }),
    /preset: preset "harpg" applies to control policies/,
  );
  assert.throws(
    () =>
      parseTrainConfig({
        preset: "grpo",
        outputDir: root(),
        model: { path: "m" },
        task: { name: "arithmetic" },
        algo: { control: { optimizer: { type: "harpg" } } },
      }),
    /algo\.control: applies to control policies/,
  );
});

test("IWOCS and grouping knobs change the run", async () => {
  const iw = async (o: Record<string, unknown>) => {
    const r = await train(
      parseTrainConfig(
        raw("iwocs", root(), {
          env: { name: "robust_garnet", options: { states: 8, actions: 3, horizon: 10, grid: 3 } },
          algo: { control: { iwocs: { stepsPerModel: 2, maxModels: 3, tol: 0.001, ...o } } },
          train: { steps: 6, promptsPerStep: 2, groupSize: 2, lr: 0.1, maxGradNorm: 0 },
          eval: { everySteps: 6, problems: 2 },
          checkpoint: { everySteps: 0 },
        }),
      ),
      { log: () => {} },
    );
    const m = r.metrics.at(-1) as Record<string, number>;
    return JSON.stringify([m["iwocs/models"], m.eval_worst_case_return, m.loss]);
  };
  const base = await iw({});
  for (const o of [{ stepsPerModel: 3 }, { maxModels: 1 }, { tol: 100 }])
    assert.notEqual(await iw(o), base, JSON.stringify(o));
  const gr = async (o: Record<string, unknown>) => {
    const r = await train(
      parseTrainConfig(
        raw("action_grouping", root(), {
          env: { name: "grouped_garnet", options: { states: 5, actions: 8, clusters: 2, horizon: 10 } },
          algo: { control: { grouping: { groups: "auto", candidates: [1, 2, 4, 8], samples: 2000, ...o } } },
          train: { steps: 2, promptsPerStep: 2, groupSize: 2, lr: 0.1, maxGradNorm: 0 },
          eval: { everySteps: 2, problems: 2 },
          checkpoint: { everySteps: 0 },
        }),
      ),
      { log: () => {} },
    );
    const m = r.metrics.at(-1) as Record<string, number>;
    return JSON.stringify([m.eval_groups, m.eval_grouping_loss, m.eval_planned_gap, m.eval_optimality_gap]);
  };
  const g0 = await gr({});
  for (const o of [{ groups: 2 }, { candidates: [1, 8] }, { samples: 200000 }, { pilot: 5 }, { delta: 0.5 }])
    assert.notEqual(await gr(o), g0, JSON.stringify(o));
});
