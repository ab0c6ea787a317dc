// Agent training through the real trainer: episodes of the maze and the calculator are the rows, every agent
// preset takes optimizer steps with finite losses and a gradient, the env metrics and the held-out success
// rate are logged, nothing leaks, and a run resumes exactly from its checkpoint.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot, trainLeakFree } from "../train/helpers.js";

const model = tinyModelDir(6);
const quiet = () => {};

function config(preset: string, extra: Record<string, unknown> = {}, root = tmpRunRoot()) {
  return parseTrainConfig({
    preset,
    seed: 2,
    model: { path: model },
    outputDir: root,
    env: { name: "maze", options: { width: 4, height: 4, maxDistance: 3 }, maxTurns: 4, maxActionTokens: 2 },
    train: { steps: 2, promptsPerStep: 2, groupSize: 4, microBatchSize: 8 },
    eval: { everySteps: 2, problems: 6 },
    checkpoint: { everySteps: 1 },
    ...extra,
  });
}

async function run(cfg: ReturnType<typeof config>): Promise<MetricRecord[]> {
  const r = await trainLeakFree(cfg);
  return r.metrics;
}

describe("agent presets train on the maze", () => {
  for (const preset of ["gigpo", "step_grpo", "dr_mas", "m_grpo", "hi_agent", "grpo"]) {
    test(preset, async () => {
      const ms = await run(config(preset));
      const steps = ms.filter((m) => typeof m.loss === "number");
      assert.equal(steps.length, 2);
      for (const m of steps) {
        assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.grad_norm as number), JSON.stringify(m));
        assert.equal(m.skipped_updates, 0);
        assert.equal(typeof m["env/success_rate"], "number");
        assert.ok((m["env/turns_mean"] as number) >= 1 && (m["env/turns_mean"] as number) <= 4);
        // sampler and trainer agree on the action tokens (observation tokens are masked out)
        assert.ok((m["sampler/logprob_abs_diff_mean"] as number) < 1e-4, String(m["sampler/logprob_abs_diff_mean"]));
      }
      const evals = ms.filter((m) => typeof m.eval_accuracy === "number");
      assert.deepEqual(
        evals.map((m) => m.step),
        [0, 2],
      );
      for (const m of evals) assert.ok((m.eval_accuracy as number) >= 0 && (m.eval_accuracy as number) <= 1);
    });
  }
});

test("a gradient reaches the weights when episodes differ in outcome (progress rewards)", async () => {
  const ms = await run(
    config("gigpo", {
      env: {
        name: "maze",
        options: { width: 4, height: 4, maxDistance: 3, progressReward: 0.5 },
        maxTurns: 4,
        maxActionTokens: 2,
      },
      sampling: { temperature: 1.5 },
    }),
  );
  assert.ok(
    ms.some((m) => (m.grad_norm as number) > 0),
    "some step had a non-zero gradient",
  );
});

test("the calculator trains with the chat template", async () => {
  const ms = await run(
    config("dr_mas", {
      env: { name: "calculator", options: { digits: [1, 1] }, template: "chat", maxActionTokens: 6 },
    }),
  );
  const steps = ms.filter((m) => typeof m.loss === "number");
  assert.equal(steps.length, 2);
  for (const m of steps) assert.ok(Number.isFinite(m.loss as number));
});

test("resume from a checkpoint continues exactly", async () => {
  const root = tmpRunRoot();
  const full = await run(config("gigpo", { name: "full" }, root));
  const cfg = config("gigpo", { name: "cut" }, root);
  await train(cfg, { log: quiet, stopAfterStep: 1 });
  const resumed = await train(cfg, { log: quiet, resume: true });
  const a = full.filter((m) => m.step === 2).map(deterministicPart);
  const b = resumed.metrics.filter((m) => m.step === 2).map(deterministicPart);
  assert.deepEqual(b, a);
});
