// Rollout-level components with fixed seeds: prompt samplers (uniform, VAS, GDRO), budget allocators
// (fixed, √-rule, V₀), DAPO dynamic sampling and the algo.rollout config.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseAlgoConfig } from "../../src/algo/config.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { CohortError, ConfigError } from "../../src/errors.js";
import { resolvePreset } from "../../src/presets/index.js";
import {
  budgetAllocators,
  concatGroups,
  dynamicSampling,
  GdroPromptSampler,
  groupsWithVariance,
  PassRateHistory,
  type PromptStats,
  passAtK,
  promptSamplers,
  type ScoredRollout,
  sqrtRule,
  VasSampler,
} from "../../src/rollout/index.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem, Task } from "../../src/task/types.js";

const prob = (id: string): Problem => ({ id, prompt: `${id}=`, answer: "0", meta: {} });

/** A task whose draws are numbered "u0", "u1", … (and consume one rng value each). */
function countingTask(): Task & { drawn: number } {
  const t = {
    name: "counting",
    drawn: 0,
    sample(rng: Rng) {
      rng.nextU32();
      return prob(`u${t.drawn++}`);
    },
    verify: () => ({ correct: false, format: false }),
  };
  return t;
}

const stats = (id: string, rewards: number[]): PromptStats => ({ id, problem: prob(id), rewards });

function close(a: number, b: number, tol = 1e-12): void {
  assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);
}

describe("budget allocators", () => {
  test("the √-rule floors at min, follows sqrt(v) and sums to the budget exactly", () => {
    // sqrt(v) = [0.5, 0.3, 0, 0.3]: the zero gets the floor 2, the other 30 split 0.5 : 0.3 : 0.3
    // = 13.64, 8.18, 8.18 → floors 13, 8, 8 and the one unit left goes to the largest remainder
    assert.deepEqual(sqrtRule([0.5, 0.3, 0, 0.3], 32, 2), [14, 8, 2, 8]);
    assert.deepEqual(sqrtRule([0, 0, 0], 9, 2), [3, 3, 3]);
    assert.deepEqual(sqrtRule([1, 0, 0, 0], 8, 2), [2, 2, 2, 2]);
    const rng = Rng.fromSeed(11);
    for (let k = 0; k < 300; k++) {
      const n = rng.int(1, 12);
      const min = rng.int(1, 3);
      const total = min * n + rng.int(0, 60);
      const w = Array.from({ length: n }, () => (rng.bool(0.3) ? 0 : rng.float()));
      const c = sqrtRule(w, total, min);
      assert.equal(
        c.reduce((a, b) => a + b, 0),
        total,
      );
      for (const x of c) assert.ok(Number.isInteger(x) && x >= min);
    }
    assert.throws(() => sqrtRule([1, 1, 1], 5, 2), CohortError);
  });

  test("gdro_sqrt allocates n_q ∝ sqrt(p(1 − p)) from the pass-rate history", () => {
    const h = new PassRateHistory();
    h.record([
      stats("a", [1, 1, 1, 1, 0, 0, 0, 0]),
      stats("b", [1, 0, 0, 0, 0, 0, 0, 0]),
      stats("c", new Array(8).fill(0)),
    ]);
    h.record([stats("d", [1, 1, 1, 1, 1, 1, 1, 0])]);
    const alloc = budgetAllocators.get("gdro_sqrt")({ priorStrength: 0 }, "x");
    // sqrt(v) = [0.5, 0.3307, 0, 0.3307]: x = [12.92, 8.54, 2, 8.54] → [12, 8, 2, 8] + 2 units by remainder
    assert.deepEqual(alloc.allocate(["a", "b", "c", "d"].map(prob), h, 32), [13, 9, 2, 8]);
    // a prompt never seen gets the prior 0.5, the maximal variance
    assert.deepEqual(alloc.allocate(["c", "new"].map(prob), h, 16), [2, 14]);
  });

  test("fixed gives G each; v0 skips prompts predicted ≈0 or ≈1 and splits the rest by the √-rule", () => {
    const h = new PassRateHistory();
    const fixed = budgetAllocators.get("fixed")({}, "x");
    assert.deepEqual(fixed.allocate(["a", "b", "c"].map(prob), h, 24), [8, 8, 8]);
    h.record([
      stats("zero", new Array(8).fill(0)),
      stats("one", new Array(8).fill(1)),
      stats("half", [1, 1, 1, 1, 0, 0, 0, 0]),
    ]);
    const v0 = budgetAllocators.get("v0")({ priorStrength: 0 }, "x");
    // global rate (0 + 8 + 4)/24 = 0.5 predicts the unseen prompt: the two kept ones split 16 evenly
    assert.deepEqual(v0.allocate(["zero", "one", "half", "unseen"].map(prob), h, 16), [0, 0, 8, 8]);
    // all predicted ≈0/≈1: nothing is skipped, the budget is split evenly
    assert.deepEqual(v0.allocate(["zero", "one"].map(prob), h, 8), [4, 4]);
    assert.throws(
      () => budgetAllocators.get("v0")({ skipBelow: 0.9, skipAbove: 0.1 }, "algo.rollout.budget.options"),
      (e: unknown) => e instanceof ConfigError && e.path === "algo.rollout.budget.options.skipBelow",
    );
  });
});

describe("prompt samplers", () => {
  test("uniform draws task.sample B times from the run's generator", () => {
    const t = countingTask();
    const s = promptSamplers.get("uniform")(t, {}, "x");
    const rng = Rng.fromSeed(1);
    assert.deepEqual(
      s.next(3, rng).map((p) => p.id),
      ["u0", "u1", "u2"],
    );
    const ref = Rng.fromSeed(1);
    for (let i = 0; i < 3; i++) ref.nextU32();
    assert.deepEqual(rng.state(), ref.state());
  });

  test("VAS weights follow p(1 − p) and draws follow the weights", () => {
    const t = countingTask();
    const s = new VasSampler(t, { mixtureRatio: 1 }, "x");
    s.update([stats("a", [1, 0]), stats("b", [1, 0, 0, 0]), stats("c", [0, 0]), stats("d", [1, 1])]);
    assert.deepEqual(s.weights(), { a: 0.25, b: 0.1875, c: 0, d: 0 });
    const counts: Record<string, number> = {};
    for (const p of s.next(4000, Rng.fromSeed(3))) counts[p.id] = (counts[p.id] ?? 0) + 1;
    assert.deepEqual(Object.keys(counts).sort(), ["a", "b"]);
    const ratio = (counts.a as number) / (counts.b as number);
    assert.ok(Math.abs(ratio - 0.25 / 0.1875) < 0.1, `a/b draw ratio ${ratio}`);
    assert.equal(t.drawn, 0);
    // mixture 0.5: half weighted, half fresh uniform draws
    const m = new VasSampler(t, { mixtureRatio: 0.5, momentum: 0.5 }, "x");
    m.update([stats("a", [1, 0])]);
    const ids = m.next(6, Rng.fromSeed(4)).map((p) => p.id);
    assert.deepEqual(ids, ["a", "a", "a", "u0", "u1", "u2"]);
    assert.equal(m.metrics()["vas/weighted_draws"], 3);
    // momentum: w ← 0.5·0.25 + 0.5·p(1 − p) with the new p = 1/4
    m.update([stats("a", [1, 0, 0, 0])]);
    close(m.weights().a as number, 0.5 * 0.25 + 0.5 * 0.1875);
  });

  test("VAS with no learnable prompt draws uniformly", () => {
    const t = countingTask();
    const s = new VasSampler(t, {}, "x");
    s.update([stats("c", [0, 0])]);
    assert.deepEqual(
      s.next(2, Rng.fromSeed(5)).map((p) => p.id),
      ["u0", "u1"],
    );
  });

  test("pass@k is the unbiased estimator", () => {
    close(passAtK(4, 1, 2), 0.5);
    close(passAtK(4, 0, 2), 0);
    close(passAtK(4, 3, 2), 1);
    close(passAtK(8, 2, 1), 0.25);
  });

  test("GDRO bin weights move as multiplicative weights on the bias-corrected EMA of the failure rate", () => {
    const t = countingTask();
    const eta = 0.5;
    const beta = 0.9;
    const s = new GdroPromptSampler(t, { bins: 4, eta, beta, gamma: 0 }, "x");
    assert.deepEqual(s.weights(), [0.25, 0.25, 0.25, 0.25]);
    // a: pass 0 → bin 0, loss 1; b: pass 0.5 → bin 2, loss 0.5; c: pass 1 → bin 3, loss 0
    s.update([stats("a", [0, 0, 0, 0]), stats("b", [1, 1, 0, 0]), stats("c", [1, 1, 1, 1])]);
    let w = [Math.exp(eta * 1), 1, Math.exp(eta * 0.5), Math.exp(0)];
    let z = w.reduce((x, y) => x + y, 0);
    s.weights().forEach((x, g) => close(x, (w[g] as number) / z));
    // round 2: a → pass 0.25 (bin 1, first observation: ℓ̂ = 0.75); b → pass 0 (bin 0, second: EMA debiased)
    s.update([stats("a", [0, 0, 0, 1]), stats("b", [0, 0, 0, 0])]);
    const m0 = beta * (1 - beta) * 1 + (1 - beta) * 1;
    const hat0 = m0 / (1 - beta ** 2);
    w = w.map((x) => x / z);
    w[0] = (w[0] as number) * Math.exp(eta * hat0);
    w[1] = (w[1] as number) * Math.exp(eta * 0.75);
    z = w.reduce((x, y) => x + y, 0);
    s.weights().forEach((x, g) => close(x, (w[g] as number) / z));
    // draws: only non-empty bins (0: b, 1: a, 3: c) and only pooled prompts when γ = 0
    const ids = new Set(s.next(200, Rng.fromSeed(2)).map((p) => p.id));
    assert.deepEqual([...ids].sort(), ["a", "b", "c"]);
    // state round trip: the same draws from the same generator
    const s1 = new GdroPromptSampler(countingTask(), { bins: 4, eta, beta, gamma: 0.3 }, "x");
    s1.load(structuredClone(s.state()));
    const s2 = new GdroPromptSampler(countingTask(), { bins: 4, eta, beta, gamma: 0.3 }, "x");
    s2.load(JSON.parse(JSON.stringify(s1.state())));
    assert.deepEqual(s2.weights(), s.weights());
    const a = s1.next(20, Rng.fromSeed(9)).map((p) => p.id);
    const b = s2.next(20, Rng.fromSeed(9)).map((p) => p.id);
    assert.deepEqual(a, b);
    assert.ok(a.some((x) => x.startsWith("u")) && a.some((x) => !x.startsWith("u")), a.join(","));
  });
});

/** One round: each group's rewards, rows tagged "r<round>g<group>". */
function round(r: number, groups: number[][]): ScoredRollout<string> {
  const gi: number[] = [];
  const rewards: number[] = [];
  const texts: string[] = [];
  groups.forEach((rs, g) => {
    for (const x of rs) {
      gi.push(g);
      rewards.push(x);
      texts.push(`r${r}g${g}`);
    }
  });
  return {
    prompts: texts.map(() => [1]),
    completions: texts,
    texts,
    problems: texts.map((t) => prob(t)),
    groupIndex: Int32Array.from(gi),
    byFn: [Float64Array.from(rewards)],
  };
}

describe("DAPO dynamic sampling", () => {
  const dapo = resolvePreset("dapo");
  const keepOf = (b: ScoredRollout<string>) =>
    groupsWithVariance(dapo, b.byFn, {
      groupIndex: b.groupIndex,
      lengths: Int32Array.from(b.texts, () => 4),
      truncated: new Uint8Array(b.texts.length),
    });

  test("rounds stop at B kept groups; filtered groups never reach the batch", async () => {
    const rounds = [
      round(0, [
        [1, 1],
        [0, 1],
        [0, 0],
      ]),
      round(1, [
        [0, 1, 1],
        [1, 0],
        [1, 1],
      ]),
      round(2, [[0, 1]]),
    ];
    let calls = 0;
    const res = await dynamicSampling(3, { maxRounds: 5, onCap: "error" }, async (r) => {
      calls++;
      const batch = rounds[r] as ScoredRollout<string>;
      return { batch, keptGroups: keepOf(batch) };
    });
    assert.equal(calls, 2);
    assert.equal(res.rounds, 2);
    assert.equal(res.promptsSampled, 6);
    assert.equal(res.groupsKept, 3);
    assert.equal(res.capped, false);
    const merged = concatGroups(res.picks);
    assert.deepEqual(merged.texts, ["r0g1", "r0g1", "r1g0", "r1g0", "r1g0", "r1g1", "r1g1"]);
    assert.deepEqual([...merged.groupIndex], [0, 0, 1, 1, 1, 2, 2]);
    assert.deepEqual([...(merged.byFn[0] as Float64Array)], [0, 1, 0, 1, 1, 1, 0]);
    // the loss sees exactly these rows: advantages computed after the filter, nothing left to drop
    const stage = new Pipeline(dapo).advantages(merged.byFn, {
      groupIndex: merged.groupIndex,
      lengths: Int32Array.from(merged.texts, () => 4),
    });
    assert.deepEqual([...stage.keep], [1, 1, 1, 1, 1, 1, 1]);
    assert.equal(stage.metrics["filter/zero_std/removed_groups"], 0);
  });

  test("the cap: error by default, or train on the kept groups", async () => {
    const flat = async (r: number) => {
      const batch = round(r, [
        [1, 1],
        [0, 0],
      ]);
      return { batch, keptGroups: keepOf(batch) };
    };
    await assert.rejects(
      dynamicSampling(2, { maxRounds: 3, onCap: "error" }, flat),
      (e: unknown) =>
        e instanceof CohortError &&
        /kept 0 of 2 groups with non-zero reward variance after 3 rounds; raise algo\.rollout\.dynamicSampling\.maxRounds/.test(
          e.message,
        ),
    );
    const mixed = async (r: number) => {
      const batch = round(r, [
        [1, 0],
        [1, 1],
      ]);
      return { batch, keptGroups: keepOf(batch) };
    };
    const res = await dynamicSampling(4, { maxRounds: 3, onCap: "train-partial" }, mixed);
    assert.equal(res.rounds, 3);
    assert.equal(res.groupsKept, 3);
    assert.equal(res.capped, true);
    assert.deepEqual(concatGroups(res.picks).texts, ["r0g0", "r0g0", "r1g0", "r1g0", "r2g0", "r2g0"]);
  });
});

describe("algo.rollout config", () => {
  const fails = (rollout: unknown, path: string, msg: RegExp) =>
    assert.throws(
      () => parseAlgoConfig({ rollout }),
      (e: unknown) => e instanceof ConfigError && e.path === path && msg.test(e.message),
    );
  test("defaults, unknown keys, unknown names and bad options name their path", () => {
    assert.doesNotThrow(() => parseAlgoConfig({ rollout: {} }));
    fails({ promptSampler: { name: "vas" }, bogus: 1 }, "algo.rollout.bogus", /unknown key/);
    fails({ dynamicSampling: { maxRounds: 0 } }, "algo.rollout.dynamicSampling.maxRounds", /./);
    fails({ dynamicSampling: { onCap: "skip" } }, "algo.rollout.dynamicSampling.onCap", /./);
    fails({ promptSampler: { name: "nope" } }, "algo.rollout.promptSampler.name", /known: gdro_prompt, uniform, vas/);
    fails({ budget: { name: "gdro_sqrt", options: { mn: 2 } } }, "algo.rollout.budget.options.mn", /unknown key/);
    fails(
      { promptSampler: { name: "vas", options: { mixtureRatio: 2 } } },
      "algo.rollout.promptSampler.options.mixtureRatio",
      /./,
    );
    assert.throws(
      () => resolvePreset("grpo", { rollout: { budget: { name: "fixd" } } }),
      (e: unknown) => e instanceof ConfigError && e.path === "algo.rollout.budget.name",
    );
  });
});
