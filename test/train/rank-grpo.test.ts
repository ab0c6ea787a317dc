// Rank-GRPO through the real loop on the nearest ranking task: the preset is accepted there (and still refused
// where no task ranks items), its per-rank advantages reach the weights through the item ratio, and a stopped
// run resumes exactly.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { liveTensors } from "../../src/tensor/index.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tmpRunRoot } from "./helpers.js";

const quiet = () => {};
const model = "models/nearest-tiny";

function config(outputDir: string, steps: number, extra: Record<string, unknown> = {}) {
  return parseTrainConfig({
    seed: 5,
    preset: "rank_grpo",
    model: { path: model },
    outputDir,
    task: { name: "nearest" },
    rewards: ["ndcg"],
    train: { steps, promptsPerStep: 2, groupSize: 4, microBatchSize: 4, innerIterations: 2, lr: 0.003 },
    sampling: { maxNewTokens: 28 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 1, keep: 5 },
    ...extra,
  });
}

test("rank_grpo: accepted on a ranking task, refused (before any work) where no task ranks items", () => {
  assert.equal(config(tmpRunRoot(), 1).resolvedAlgo.advantage.estimator, "rank_grpo");
  assert.throws(
    () => config(tmpRunRoot(), 1, { task: { name: "arithmetic" }, rewards: ["correctness"] }),
    (e: unknown) =>
      e instanceof ConfigError &&
      /need "rankRewards"\), which cohort train on this data does not supply; it comes from cohort train on a ranking task.*nearest/.test(
        e.message,
      ),
  );
  // the example config parses as shipped
  assert.equal(loadTrainConfig("examples/rank_grpo.yaml").preset, "rank_grpo");
});

test("rank_grpo trains on nearest: per-rank advantages move the weights; a stopped run resumes exactly", async () => {
  const before = liveTensors();
  const root = tmpRunRoot();
  const straight = await train(config(root, 3), { log: quiet });
  assert.equal(liveTensors(), before, "no tensor outlives the run");
  assert.equal(straight.steps, 3);
  const steps = straight.metrics.filter((m) => (m.step as number) > 0);
  for (const m of steps) {
    assert.ok(Number.isFinite(m.loss as number), `loss ${m.loss}`);
    assert.equal(m.skipped_updates, 0);
  }
  // the advantages are the rank rewards' (the scalar NDCG is not read): a gradient means the lists' ranks
  // reached the tokens of their items
  assert.ok(
    steps.some((m) => (m.grad_norm as number) > 0),
    "a gradient reached the weights",
  );
  // stop after step 2, resume: step 3 and the final weights equal the uninterrupted run's
  const root2 = tmpRunRoot();
  const first = await train(config(root2, 3), { log: quiet, stopAfterStep: 2 });
  assert.equal(first.steps, 2);
  const resumed = await train(config(root2, 3), { log: quiet, resume: true });
  assert.equal(resumed.steps, 3);
  const last = (ms: typeof straight.metrics) => deterministicPart(ms.at(-1) as Record<string, unknown>);
  assert.deepEqual(last(resumed.metrics), last(straight.metrics));
  const weights = (dir: string) => readFileSync(join(dir, "final", "model.safetensors"));
  assert.ok(weights(resumed.runDir).equals(weights(straight.runDir)), "same final weights");
});
