/**
 * Presets (named points of the design space) and config validation: required presets and their metadata,
 * defaults, deep-merged overrides, errors with key paths, and a smoke run of every preset's policy loss.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { globalCounts } from "../../src/algo/aggregate.js";
import { parseAlgoConfig } from "../../src/algo/config.js";
import { PolicyLoss } from "../../src/algo/policy-loss.js";
import type { LossBatch } from "../../src/algo/types.js";
import { ConfigError } from "../../src/errors.js";
import { getPreset, presetNames, resolvePreset } from "../../src/presets/index.js";
import { type Tensor, tensor, tidy } from "../../src/tensor/index.js";

const REQUIRED = [
  "grpo",
  "dr_grpo",
  "dapo",
  "gspo",
  "gspo_token",
  "sapo",
  "rloo",
  "reinforce_pp",
  "reinforce_pp_baseline",
  "bnpo",
  "gdpo",
  "dgpo",
  "gtpo",
  "disco",
  "disco_b",
  "llds",
  "etr",
  "r2vpo",
  "dhpo",
  "unlikeliness",
  "opmd",
  "asymre",
  "rec",
  "reg_grpo",
  "rm_ensemble_wco",
  "rm_ensemble_uwo",
  "grpo_d",
];

/** Overrides a preset needs because the value is run-specific. */
const RUN_SPECIFIC: Record<string, Record<string, unknown>> = { dr_grpo: { aggregate: { maxLength: 4 } } };

function configError(fn: () => unknown, path: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.path, path);
    assert.match(e.message, message);
    return true;
  });
}

describe("preset registry", () => {
  test("every required preset exists with arXiv id, confidence tag and a doc paragraph", () => {
    for (const name of REQUIRED) {
      const p = getPreset(name);
      assert.equal(p.name, name);
      assert.match(p.arxiv, /^\d{4}\.\d{5}$/, `${name} arxiv`);
      assert.ok(["CODE", "CODE-FW", "PAPER", "PAPER-KNOWN", "ABSTRACT"].includes(p.confidence), `${name} confidence`);
      assert.ok(p.doc.length > 100, `${name} doc`);
    }
    assert.ok(presetNames().length >= REQUIRED.length);
  });
  test("ABSTRACT presets say which formula is a design choice", () => {
    for (const name of presetNames()) {
      const p = getPreset(name);
      if (p.confidence === "ABSTRACT") assert.match(p.doc, /design choice/i, name);
    }
  });
  test("every preset resolves to a valid config", () => {
    for (const name of presetNames()) {
      const c = resolvePreset(name, RUN_SPECIFIC[name] ?? {});
      assert.equal(typeof c.advantage.estimator, "string");
    }
  });
  test("unknown preset lists the known ones", () => {
    assert.throws(() => getPreset("grpoo"), /unknown preset "grpoo"; known: .*grpo/);
  });
});

describe("preset component names match the registries of the other slots", () => {
  test("estimators, combiners, shapers, reweighters and filters named by presets are registered", async () => {
    const { advantageEstimators } = await import("../../src/algo/advantage.js");
    const { rewardCombiners, rewardShapers } = await import("../../src/algo/rewards.js");
    const { advantageReweighters } = await import("../../src/algo/reweight.js");
    const { sampleFilters, tokenFilters } = await import("../../src/algo/filters.js");
    for (const name of presetNames()) {
      const c = resolvePreset(name, RUN_SPECIFIC[name] ?? {});
      assert.ok(advantageEstimators.has(c.advantage.estimator), `${name}: estimator ${c.advantage.estimator}`);
      assert.ok(rewardCombiners.has(c.reward.combine), `${name}: combiner ${c.reward.combine}`);
      for (const s of c.shapers) assert.ok(rewardShapers.has(s.name), `${name}: shaper ${s.name}`);
      for (const r of c.reweighters) assert.ok(advantageReweighters.has(r.name), `${name}: reweighter ${r.name}`);
      for (const f of c.sampleFilters) assert.ok(sampleFilters.has(f.name), `${name}: sample filter ${f.name}`);
      for (const f of c.tokenFilters) assert.ok(tokenFilters.has(f.name), `${name}: token filter ${f.name}`);
    }
  });
  test("short estimator spellings are accepted", () => {
    assert.equal(
      parseAlgoConfig({ advantage: { estimator: "reinforce_pp_baseline" } }).advantage.estimator,
      "reinforce_plus_plus_baseline",
    );
  });
});

describe("preset defaults", () => {
  test("grpo: DeepSeekMath defaults (β 0.04 k3, ε 0.2, seq-mean-token-mean)", () => {
    const c = resolvePreset("grpo");
    assert.equal(c.advantage.estimator, "grpo");
    assert.equal(c.ratio.level, "token");
    assert.deepEqual(c.gate, { type: "clip", low: 0.2, high: 0.2 });
    assert.equal(c.regularizers.length, 1);
    const kl = c.regularizers[0];
    assert.ok(kl?.type === "kl");
    assert.equal(kl.estimator, "k3");
    assert.equal(kl.beta, 0.04);
    assert.equal(c.aggregate.mode, "seq-mean-token-mean");
    assert.equal(c.aggregate.countMaskedSequences, false);
  });
  test("dapo: clip-higher 0.2/0.28, token-mean, zero-std filter, overlong shaper, no KL", () => {
    const c = resolvePreset("dapo");
    assert.deepEqual(c.gate, { type: "clip", low: 0.2, high: 0.28 });
    assert.equal(c.aggregate.mode, "token-mean");
    assert.deepEqual(
      c.sampleFilters.map((f) => f.name),
      ["zero_std"],
    );
    assert.equal(c.shapers[0]?.name, "overlong");
    assert.equal(c.regularizers.length, 0);
  });
  test("dr_grpo, gspo, gspo_token, sapo, disco, grpo_d", () => {
    const dr = resolvePreset("dr_grpo", { aggregate: { maxLength: 1024 } });
    assert.equal(dr.advantage.estimator, "dr_grpo");
    assert.deepEqual(dr.aggregate, { mode: "seq-mean-token-sum-norm", maxLength: 1024, countMaskedSequences: false });
    const gspo = resolvePreset("gspo");
    assert.equal(gspo.ratio.level, "sequence");
    assert.deepEqual(gspo.gate, { type: "clip", low: 3e-4, high: 4e-4 });
    assert.equal(resolvePreset("gspo_token").ratio.level, "sequence-token");
    assert.deepEqual(resolvePreset("sapo").gate, { type: "sapo", tauPos: 1.0, tauNeg: 1.05 });
    const disco = resolvePreset("disco");
    assert.deepEqual(disco.loss, { type: "disco", score: "logL", form: "lse", tau: 10, positiveThreshold: 0.5 });
    assert.deepEqual(disco.regularizers, [{ type: "disco_kl", beta: 1e3, delta: 1e-4 }]);
    const d = resolvePreset("grpo_d").regularizers[0];
    assert.deepEqual(d?.beta, { kind: "linear", start: 0, end: 0.04, steps: 1000 });
  });
});

describe("resolvePreset overrides (deep merge)", () => {
  test("a nested field merges, its siblings stay", () => {
    const c = resolvePreset("dapo", { gate: { high: 0.3 } });
    assert.deepEqual(c.gate, { type: "clip", low: 0.2, high: 0.3 });
    assert.equal(c.aggregate.mode, "token-mean");
  });
  test("changing a discriminator replaces the object", () => {
    const c = resolvePreset("dapo", { gate: { type: "sapo" } });
    assert.deepEqual(c.gate, { type: "sapo", tauPos: 1.0, tauNeg: 1.05 });
  });
  test("arrays are replaced, and the preset data is not mutated", () => {
    const c = resolvePreset("grpo", { regularizers: [{ type: "kl", beta: 0.001 }] });
    const kl = c.regularizers[0];
    assert.ok(kl?.type === "kl" && kl.beta === 0.001);
    assert.equal(resolvePreset("grpo").regularizers.length, 1);
    const again = resolvePreset("grpo").regularizers[0];
    assert.ok(again?.type === "kl" && again.beta === 0.04);
  });
  test("override errors carry the key path and the preset name", () => {
    configError(
      () => resolvePreset("grpo", { gate: { epsilon: 0.3 } } as never),
      "algo.gate.epsilon",
      /unknown option "epsilon" for clip; known options: low, high, dualClip, delta.*preset "grpo"/,
    );
  });
  test("null in an override removes the preset's field", () => {
    assert.equal(resolvePreset("reinforce_pp").rewardKl?.beta, 0.001);
    assert.equal(resolvePreset("reinforce_pp", { rewardKl: null }).rewardKl, undefined);
    assert.deepEqual(resolvePreset("llds", { regularizers: null }).regularizers, []);
    assert.equal(resolvePreset("gspo", { ratio: { hybrid: null } }).ratio.level, "sequence");
  });
});

describe("validation of combinations", () => {
  test("unknown keys are rejected with their path", () => {
    configError(() => parseAlgoConfig({ aggregat: {} }), "algo.aggregat", /unknown key "aggregat"/);
    configError(() => parseAlgoConfig({ ratio: { level: "token", clamp: 3 } }), "algo.ratio.clamp", /unknown key/);
  });
  test("wrong value names the path", () => {
    configError(() => parseAlgoConfig({ gate: { type: "clip", low: 1.5 } }), "algo.gate.low", /1/);
    configError(() => parseAlgoConfig({ aggregate: { mode: "mean" } }), "algo.aggregate.mode", /seq-mean-token-mean/);
  });
  test("a sequence-level ratio with token-level advantages", () => {
    configError(
      () => parseAlgoConfig({ advantage: { estimator: "reinforce_pp" }, ratio: { level: "sequence" } }),
      "algo.ratio.level",
      /needs one advantage per sequence.*"reinforce_plus_plus" gives token-level.*sequence-token/,
    );
    // GSPO-token accepts them
    assert.equal(
      parseAlgoConfig({ advantage: { estimator: "rank_grpo" }, ratio: { level: "sequence-token" } }).ratio.level,
      "sequence-token",
    );
  });
  test("seq-mean-token-sum-norm without maxLength (e.g. dr_grpo unresolved)", () => {
    configError(() => resolvePreset("dr_grpo"), "algo.aggregate.maxLength", /maxLength.*Dr\. GRPO.*preset "dr_grpo"/);
    configError(
      () => parseAlgoConfig({ aggregate: { mode: "token-mean", maxLength: 10 } }),
      "algo.aggregate.maxLength",
      /only used/,
    );
  });
  test("GDPO with a single reward function", () => {
    configError(
      () => resolvePreset("gdpo", { reward: { functions: ["correct"] } }),
      "algo.advantage.estimator",
      /at least 2 reward functions \(got 1\)/,
    );
    configError(
      () => parseAlgoConfig({ advantage: { estimator: "gdpo" } }, { rewardFunctions: 1 }),
      "algo.advantage.estimator",
      /at least 2/,
    );
    assert.ok(resolvePreset("gdpo", { reward: { functions: ["correct", "format"], weights: [1, 0.5] } }));
    configError(
      () => parseAlgoConfig({ reward: { functions: ["a", "b"], weights: [1] } }),
      "algo.reward.weights",
      /one weight per function/,
    );
    configError(
      () => resolvePreset("rm_ensemble_wco", { reward: { functions: ["rm1"] } }),
      "algo.reward.combine",
      /ensemble/,
    );
  });
  test("alternative losses refuse a clip/gate or a non-token ratio level", () => {
    configError(
      () => parseAlgoConfig({ loss: { type: "disco" }, gate: { type: "clip" } }),
      "algo.gate.type",
      /does not use a clip\/gate/,
    );
    // left out, the gate of an alternative loss defaults to "none"
    assert.equal(parseAlgoConfig({ loss: { type: "disco" } }).gate.type, "none");
    configError(
      () => parseAlgoConfig({ loss: { type: "rec" }, gate: { type: "none" }, ratio: { level: "sequence" } }),
      "algo.ratio.level",
      /would be ignored/,
    );
    configError(
      () =>
        parseAlgoConfig({ advantage: { estimator: "rank_grpo" }, loss: { type: "reg_grpo" }, gate: { type: "none" } }),
      "algo.loss.type",
      /one advantage per sequence/,
    );
  });
  test("hybrid ratio settings, clip δ, duplicate regularizers, KL placed twice", () => {
    configError(
      () => parseAlgoConfig({ ratio: { level: "token", hybrid: {} } }),
      "algo.ratio.hybrid",
      /level "hybrid"/,
    );
    configError(
      () => parseAlgoConfig({ ratio: { level: "hybrid" }, gate: { type: "sapo" } }),
      "algo.gate.type",
      /"clip" or "none"/,
    );
    configError(
      () => parseAlgoConfig({ gate: { type: "clip", high: 0.28, delta: 1.2 } }),
      "algo.gate.delta",
      /must exceed 1 \+ gate.high/,
    );
    configError(
      () => parseAlgoConfig({ regularizers: [{ type: "kl" }, { type: "kl", beta: 0.1 }] }),
      "algo.regularizers.1.type",
      /appears twice/,
    );
    configError(
      () => parseAlgoConfig({ rewardKl: { beta: 0.01 }, regularizers: [{ type: "kl" }] }),
      "algo.rewardKl",
      /pick one placement/,
    );
    configError(
      () =>
        parseAlgoConfig({ regularizers: [{ type: "kl", beta: { kind: "exponential", start: 0, end: 1, steps: 5 } }] }),
      "algo.regularizers.0.beta",
      /start > 0/,
    );
  });
});

describe("every preset runs", () => {
  const f64 = (x: number[] | number[][]) => tensor(x, { dtype: "f64" });
  for (const name of REQUIRED.concat(["rank_grpo"])) {
    test(`${name}: finite loss and gradients on a small batch`, () => {
      tidy(() => {
        const pl = new PolicyLoss(resolvePreset(name, RUN_SPECIFIC[name] ?? {}));
        const lp = f64([
          [-1.0, -0.5, -2.0],
          [-0.7, -1.2, -0.1],
          [-0.3, -0.9, -0.4],
          [-1.1, -0.2, -0.6],
        ]).requireGrad();
        const batch: LossBatch = {
          logprobs: lp,
          oldLogprobs: lp.detach().add(0.05),
          refLogprobs: lp.detach().sub(0.1),
          entropy: f64([
            [0.5, 0.6, 0.7],
            [0.4, 0.3, 0.2],
            [0.9, 1.0, 1.1],
            [0.1, 0.2, 0.3],
          ]),
          advantages: f64([0.9, -0.9, 0.5, -0.5]),
          mask: f64([
            [1, 1, 1],
            [1, 1, 0],
            [1, 1, 1],
            [1, 0, 0],
          ]),
          groupIndex: Int32Array.from([0, 0, 1, 1]),
          rewards: Float64Array.from([1, 0, 1, 0]),
          itemIndex: tensor(
            [
              [0, 0, 1],
              [0, 1, 1],
              [0, 0, 0],
              [0, -1, -1],
            ],
            { dtype: "i64" },
          ),
        };
        const counts = { ...globalCounts(batch.mask, { maxLength: 4 }), groups: 2 };
        const { loss, metrics } = pl.compute(batch, counts);
        assert.ok(Number.isFinite(loss.item()), `${name} loss ${loss.item()}`);
        loss.backward();
        const g = (lp.grad as Tensor).toArray();
        assert.ok(g.every(Number.isFinite), `${name} grad`);
        assert.ok(
          g.some((v) => v !== 0),
          `${name} has a gradient`,
        );
        assert.ok(Number.isFinite(metrics["loss/total"] as number));
        pl.endStep();
      });
    });
  }
});
