// The design space inside the real training loop: stateful components move once per optimizer step, are
// checkpointed and resume exactly; KL in the reward is applied; component metrics keep their own prefix and
// the trainer's `kl` / `entropy` keep theirs; config mistakes are refused in one step, before any work.
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { checkpointsDir, latestCheckpoint, listCheckpoints, readCheckpointState } from "../../src/train/checkpoint.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "./helpers.js";

const model = tinyModelDir(6);
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;
const quiet = () => {};

function config(algo: Record<string, unknown>, outputDir: string, innerIterations = 1) {
  return parseTrainConfig({
    seed: 11,
    preset: "grpo",
    model: { path: model },
    outputDir,
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    rewards: ["correctness", parity],
    algo,
    train: { steps: 3, promptsPerStep: 3, groupSize: 4, microBatchSize: 6, lr: 0.01, innerIterations },
    sampling: { maxNewTokens: 6 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 1, keep: 5 },
  });
}

const STATEFUL = {
  reweighters: [{ name: "dcpo" }],
  regularizers: [
    { type: "r2vpo", delta: 0, eta: 50, lambdaInit: 0 },
    { type: "entropy", coef: 0.01, target: 5, lr: 0.05 },
  ],
};

test("stateful components move once per optimizer step, are checkpointed, and resume exactly", async () => {
  // two updates per batch, so the ratio leaves 1 and R²VPO's variance is not 0
  const root = tmpRunRoot();
  const straight = await train(config(STATEFUL, root, 2), { log: quiet });
  assert.equal(straight.steps, 3);
  const states = listCheckpoints(straight.runDir).map(
    (d) =>
      readCheckpointState(join(checkpointsDir(straight.runDir), d)).components as Record<
        string,
        Record<string, number>
      >,
  );
  assert.equal(states.length, 3);
  const track = (key: string, field: string) => states.map((s) => s[key]?.[field] as number);
  const lambda = track("loss:0:r2vpo", "lambda");
  const coef = track("loss:1:entropy", "coef");
  const entropy = track("reweighter:0:dcpo", "entropy");
  for (const [what, xs, init] of [
    ["R²VPO λ", lambda, 0],
    ["entropy coefficient", coef, 0.01],
    ["DCPO entropy estimate", entropy, 0],
  ] as const) {
    assert.ok(xs.every(Number.isFinite), `${what}: ${xs}`);
    assert.notEqual(xs[0], init, `${what} moved at step 1`);
    assert.notEqual(xs[2], xs[1], `${what} moved at step 3`);
  }
  assert.ok(coef[2]! > coef[0]!, "the entropy target (5 nats) is above the policy's: the coefficient rises");
  // stop after step 2, resume: step 3 and the final state equal the uninterrupted run's
  const root2 = tmpRunRoot();
  const first = await train(config(STATEFUL, root2, 2), { log: quiet, stopAfterStep: 2 });
  assert.equal(first.steps, 2);
  const resumed = await train(config(STATEFUL, root2, 2), { log: quiet, resume: true });
  assert.equal(resumed.steps, 3);
  const last = (m: typeof straight.metrics) => deterministicPart(m.at(-1) as Record<string, unknown>);
  assert.deepEqual(last(resumed.metrics), last(straight.metrics));
  const endState = (dir: string) => readCheckpointState(latestCheckpoint(dir) as string).components;
  assert.deepEqual(endState(resumed.runDir), endState(straight.runDir));
});

test("KL in the reward reaches the advantages: kl_in_reward is logged and moves once the policy moves", async () => {
  const r = await train(config({ regularizers: null, rewardKl: { beta: 0.5 } }, tmpRunRoot()), { log: quiet });
  const kl = r.metrics.filter((m) => (m.step as number) > 0).map((m) => m.kl_in_reward as number);
  assert.equal(kl.length, 3);
  assert.ok(kl.every(Number.isFinite), `kl_in_reward ${kl}`);
  assert.equal(kl[0], 0, "at step 1 the policy is the reference");
  assert.ok(
    kl.slice(1).some((v) => v !== 0),
    "after an update π_old differs from π_ref",
  );
  assert.ok(r.metrics.filter((m) => (m.step as number) > 0).every((m) => m["kl_in_reward/beta"] === 0.5));
});

test("component metrics keep their prefix; the trainer's kl and entropy keep their own meaning", async () => {
  const r = await train(
    config(
      {
        regularizers: [
          { type: "kl", estimator: "k1", beta: 0.04 },
          { type: "entropy", coef: 0.001 },
        ],
      },
      tmpRunRoot(),
    ),
    { log: quiet },
  );
  for (const m of r.metrics.filter((x) => (x.step as number) > 0)) {
    for (const k of ["kl", "entropy", "kl_reg/kl", "kl_reg/beta", "entropy_reg/entropy", "entropy_reg/coef"]) {
      assert.equal(typeof m[k], "number", `step ${m.step}: ${k}`);
    }
    // the trainer's kl is k3 (never negative); the regularizer's is the configured k1 (can be)
    assert.ok((m.kl as number) >= 0);
  }
  const later = r.metrics.at(-1) as Record<string, number>;
  assert.notEqual(later.kl, later["kl_reg/kl"], "the two KL figures are different estimators");
});

test("config mistakes are refused in one step by the library entry, naming what is allowed", () => {
  const bad = (algo: Record<string, unknown>, path: string, message: RegExp) =>
    assert.throws(
      () => config(algo, tmpRunRoot()),
      (e: unknown) => e instanceof ConfigError && e.path === path && message.test(e.message),
      `${JSON.stringify(algo)} → ${path}`,
    );
  bad({ shapers: [{ name: "overlng" }] }, "algo.shapers.0.name", /unknown reward shaper "overlng"; known: .*overlong/);
  bad({ tokenFilters: [{ name: "top_entropi" }] }, "algo.tokenFilters.0.name", /known: .*top_entropy/);
  bad(
    { advantage: { estimator: "grpo", options: { epsilon: 1e-4 } } },
    "algo.advantage.options.epsilon",
    /unknown option "epsilon" for grpo; known options: scale, std, eps, singleton/,
  );
  bad({ regularizers: [{ type: "kl", beta: -1 }] }, "algo.regularizers.0.beta", /kl/);
  bad(
    { tokenFilters: [{ name: "score", options: { source: "custom", quantile: 0.9 } }] },
    "algo.tokenFilters.0.name",
    /needs a per-token score .*need "tokenScore".*your own loop/,
  );
  // a preset's field removed with null
  assert.equal(config({ regularizers: null }, tmpRunRoot()).resolvedAlgo.regularizers.length, 0);
});
