// A learning test that can fail: GiGPO from the shipped maze model must raise the held-out success rate within
// 6 steps on a fixed seed. Start and end are measured on the same 100 held-out mazes with the same episode
// seeds, sampled at the training temperature (the pre-trained model succeeds on about two thirds of them).
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { evaluateEnvModel } from "../../src/env/evaluate.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tmpRunRoot } from "../train/helpers.js";

test("GiGPO raises the held-out maze success rate from models/maze-tiny", async () => {
  const start = resolve("models/maze-tiny");
  const cfg = parseTrainConfig({
    name: "maze",
    seed: 0,
    outputDir: tmpRunRoot(),
    model: { path: start },
    env: { name: "maze" },
    preset: "gigpo",
    train: { steps: 6, promptsPerStep: 6, groupSize: 8, lr: 3e-4 },
    sampling: { temperature: 1 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: () => {} });
  const success = (dir: string) =>
    evaluateEnvModel(dir, { name: "maze" }, { problems: 100, temperatures: [1] })[0]?.successRate as number;
  const before = success(start);
  const after = success(join(r.runDir, "final"));
  assert.ok(after >= before + 0.08, `held-out success ${before} → ${after}`);
  const first = r.metrics.find((m) => m.step === 1)?.["env/success_rate"] as number;
  const last = r.metrics.find((m) => m.step === 6)?.["env/success_rate"] as number;
  assert.ok(last > first, `training success ${first} → ${last}`);
});
