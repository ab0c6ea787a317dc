/**
 * Control policies through the real loop (`train` with `policy:` and `env:`): learning on a Garnet MDP measured
 * by the exact optimality gap, PPO with its critic on cart-pole, a squashed Gaussian on the pendulum, and exact
 * resume after a stop.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

const root = () => mkdtempSync(join(tmpdir(), "cohort-control-"));

test("mdpo on a Garnet MDP with a tabular policy: the exact optimality gap shrinks", async () => {
  const cfg = parseTrainConfig({
    preset: "mdpo",
    outputDir: root(),
    policy: { kind: "tabular" },
    env: { name: "garnet", options: { states: 8, actions: 3, horizon: 15, seed: 1 } },
    train: { steps: 30, promptsPerStep: 8, groupSize: 8, innerIterations: 4, lr: 0.1, maxGradNorm: 0 },
    eval: { everySteps: 30, problems: 16 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: () => {} });
  const first = r.metrics[0]?.eval_optimality_gap as number;
  const last = r.metrics.at(-1)?.eval_optimality_gap as number;
  assert.ok(first > 0 && last < 0.6 * first, `optimality gap ${first} → ${last}`);
  assert.ok(r.metrics.slice(1).every((m) => Number.isFinite(m.loss as number)));
  assert.ok((r.metrics.at(-1)?.["mdpo/t"] as number) < 1, "t_k anneals");
});

test("ppo with a learned critic on MuJoCo cart-pole trains through the loop", async () => {
  const cfg = parseTrainConfig({
    preset: "ppo",
    outputDir: root(),
    policy: { kind: "categorical_mlp", hidden: [32], critic: { hidden: [32] } },
    env: { name: "cartpole", options: { horizon: 50 } },
    train: { steps: 3, promptsPerStep: 2, groupSize: 4, innerIterations: 2, miniBatches: 2, lr: 3e-3 },
    eval: { everySteps: 3, problems: 4 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: () => {} });
  assert.equal(r.steps, 3);
  for (const m of r.metrics.slice(1)) {
    assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.value_loss as number));
    assert.ok((m.episode_length as number) >= 1);
  }
  assert.ok(JSON.parse(readFileSync(join(r.runDir, "final", "policy.json"), "utf8")).policy.critic);
});

test("a tanh-squashed Gaussian policy on the MuJoCo pendulum; stop and resume give the same run", async () => {
  const raw = (out: string) => ({
    preset: "grpo",
    outputDir: out,
    policy: { kind: "gaussian_mlp", hidden: [16], std: "state" },
    env: { name: "pendulum", options: { horizon: 20 } },
    algo: { regularizers: [] },
    train: { steps: 4, promptsPerStep: 2, groupSize: 3, innerIterations: 2, lr: 1e-2 },
    eval: { everySteps: 2, problems: 3 },
    checkpoint: { everySteps: 1 },
  });
  const straight = await train(parseTrainConfig(raw(root())), { log: () => {} });
  const dir = root();
  const part = await train(parseTrainConfig(raw(dir)), { log: () => {}, stopAfterStep: 2 });
  assert.equal(part.steps, 2);
  const resumed = await train(parseTrainConfig(raw(dir)), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 4);
  const pick = (ms: typeof straight.metrics) =>
    ms.map((m) => [m.step, m.loss, m.reward, m.grad_norm, m.eval_return].map((x) => x ?? null));
  assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
});

test("control configs fail early with clear errors", () => {
  const base = { outputDir: root(), env: { name: "cartpole" }, policy: { kind: "categorical_mlp" } };
  assert.throws(() => parseTrainConfig({ ...base, preset: "ppo" }), /need "stepValues".*policy\.critic/);
  assert.throws(() => parseTrainConfig({ ...base, policy: { kind: "tabular" } }), /policy\.kind: a tabular policy/);
  assert.throws(() => parseTrainConfig({ ...base, env: { name: "maze" } }), /env\.name: unknown control environment/);
  assert.throws(() => parseTrainConfig({ ...base, policy: { kind: "mlp" } }), /policy\.kind/);
  assert.throws(() => parseTrainConfig({ ...base, model: { path: "m" } }), /`model` and `policy` are both set/);
  assert.throws(() => parseTrainConfig({ ...base, preset: "grpo", algo: {} }), /refLogprobs/);
});
