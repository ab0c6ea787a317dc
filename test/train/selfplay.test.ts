// Dr. Zero's self-play through the real trainer: the wordnet environment with `selfPlay` makes the policy propose
// and solve each step; the step's metrics are logged, the weights move, a run resumes exactly after a cut, and
// misconfigurations are refused before any work with the key that is wrong.
import assert from "node:assert/strict";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.js";
import { liveTensors } from "../../src/tensor/index.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tmpRunRoot } from "./helpers.js";

const model = fileURLToPath(new URL("../../models/wordnet-selfplay-tiny", import.meta.url));
const quiet = () => {};

function raw(extra: Record<string, unknown> = {}, root = tmpRunRoot()): Record<string, unknown> {
  return {
    preset: "drzero_hrpo",
    seed: 4,
    model: { path: model },
    outputDir: root,
    env: { name: "wordnet", options: { hops: [1, 2], topK: 1, selfPlay: { hops: [1, 2] } } },
    train: { steps: 3, promptsPerStep: 6, groupSize: 3, lr: 1e-4, microBatchSize: 16 },
    eval: { everySteps: 3, problems: 6 },
    checkpoint: { everySteps: 1 },
    ...extra,
  };
}

async function run(extra: Record<string, unknown> = {}, root = tmpRunRoot()): Promise<MetricRecord[]> {
  const before = liveTensors();
  const r = await train(parseTrainConfig(raw(extra, root)), { log: quiet });
  assert.equal(liveTensors(), before, "no tensor outlives the run");
  return r.metrics;
}

test("self-play steps through train(): proposer and solver metrics, one update over both roles", async () => {
  const ms = await run();
  const steps = ms.filter((m) => typeof m.loss === "number");
  assert.equal(steps.length, 3);
  for (const m of steps) {
    assert.ok(Number.isFinite(m.loss as number) && (m.grad_norm as number) > 0, JSON.stringify(m));
    for (const k of [
      "selfplay/proposer_valid_rate",
      "selfplay/proposer_reward_mean",
      "selfplay/hops_mean",
      "selfplay/solver_success",
      "selfplay/difficulty_mean",
    ])
      assert.equal(typeof m[k], "number", k);
    const valid = m["selfplay/proposer_valid_rate"] as number;
    assert.ok(valid >= 0 && valid <= 1);
    // rows: B proposals, n attempts per valid question
    assert.equal(m["selfplay/proposer_rows"], 6);
    assert.equal(m["selfplay/solver_rows"], 3 * (m["selfplay/questions"] as number));
    // sampler and trainer agree on the action tokens of both roles
    assert.ok((m["sampler/logprob_abs_diff_mean"] as number) < 1e-4, String(m["sampler/logprob_abs_diff_mean"]));
  }
  // held-out evaluation: the environment's own questions, solved
  const evals = ms.filter((m) => typeof m.eval_accuracy === "number");
  assert.deepEqual(
    evals.map((m) => m.step),
    [0, 3],
  );
});

test("alternate: 1 trains the proposer's rows, then the solver's", async () => {
  const ms = (await run({ env: { name: "wordnet", options: { selfPlay: { alternate: 1 } } } })).filter(
    (m) => typeof m.loss === "number",
  );
  assert.deepEqual(
    ms.map((m) => [m["selfplay/proposer_rows"] as number, (m["selfplay/solver_rows"] as number) > 0 ? 1 : 0]),
    [
      [6, 0],
      [0, 1],
      [6, 0],
    ],
  );
});

test("resume after a cut continues exactly (the proposer tasks' data stream is checkpointed)", async () => {
  const root = tmpRunRoot();
  const full = await run({ name: "full" }, root);
  const cfg = parseTrainConfig(raw({ name: "cut" }, root));
  await train(cfg, { log: quiet, stopAfterStep: 1 });
  const resumed = await train(cfg, { log: quiet, resume: true });
  for (const s of [2, 3]) {
    const a = full.filter((m) => m.step === s).map(deterministicPart);
    const b = resumed.metrics.filter((m) => m.step === s).map(deterministicPart);
    assert.deepEqual(b, a, `step ${s}`);
  }
});

test("bad self-play configs are refused with the key to change", async () => {
  const refuses = (extra: Record<string, unknown>, key: RegExp, msg: RegExp) =>
    assert.throws(
      () => parseTrainConfig(raw(extra)),
      (e: unknown) => e instanceof ConfigError && key.test(String(e.path)) && msg.test(e.message),
    );
  refuses({ train: { steps: 3, promptsPerStep: 6, groupSize: 1 } }, /train\.groupSize/, /n ≥ 2/);
  refuses({ preset: "gigpo" }, /algo\.advantage\.estimator/, /one row per agent step/);
  refuses(
    { env: { name: "wordnet", options: { selfPlay: { alternate: -1 } } } },
    /env\.options\.selfPlay\.alternate/,
    /./,
  );
  refuses({ env: { name: "wordnet", options: { selfPlay: { hops: [1, 4] } } } }, /env\.options\.selfPlay\.hops/, /./);
  // a rollout plan needs the built parts: refused by setup, before the run directory
  await assert.rejects(
    train(parseTrainConfig(raw({ algo: { rollout: { promptSampler: { name: "vas" } } } })), { log: quiet }),
    (e: unknown) => e instanceof ConfigError && /algo\.rollout/.test(String(e.path)),
  );
});

test("examples/drzero/selfplay.yaml trains one step from its shipped model", async () => {
  const cfg = loadTrainConfig("examples/drzero/selfplay.yaml", [
    `outputDir=${tmpRunRoot()}`,
    "train.steps=1",
    "train.promptsPerStep=4",
    "eval.everySteps=1",
    "eval.problems=4",
    "checkpoint.everySteps=1",
  ]);
  const r = await train(cfg, { log: quiet });
  assert.equal(r.steps, 1);
  const m = r.metrics.at(-1) as Record<string, number>;
  assert.ok(Number.isFinite(m.loss) && typeof m["selfplay/proposer_valid_rate"] === "number");
});
