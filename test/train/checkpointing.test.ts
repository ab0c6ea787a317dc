// train.activationCheckpointing: refused where it cannot run, and a run with it is the run without it.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "./helpers.js";

// a reward that varies within every group (a random model rarely answers right): the completion's length mod 5
const rewardFile = join(mkdtempSync(join(tmpdir(), "cohort-ckpt-")), "r.mjs");
writeFileSync(rewardFile, "export const len = (s) => s.completion.length % 5;\n");

const base = (model: string, trainOver: Record<string, unknown>, lora = false) => ({
  name: "ckpt",
  outputDir: tmpRunRoot(),
  seed: 3,
  threads: 1,
  model: { path: model, ...(lora ? { lora: { rank: 4, targets: ["q", "v", "down"] } } : {}) },
  task: { name: "arithmetic", options: { ops: { add: 1 }, digits: [1, 1] } },
  train: { steps: 2, promptsPerStep: 2, groupSize: 3, lr: 1e-2, microBatchSize: 4, ...trainOver },
  rewards: [`${rewardFile}#len`],
  sampling: { maxNewTokens: 6 },
  eval: { everySteps: 0 },
  checkpoint: { everySteps: 0 },
});

test("activationCheckpointing is refused with the shared-prefix forward and off the CPU", () => {
  const dir = tinyModelDir();
  assert.throws(
    () => parseTrainConfig(base(dir, { activationCheckpointing: true, forward: "shared-prefix" })),
    (e: unknown) => e instanceof ConfigError && /train.forward plain/.test(e.message),
  );
  const c = base(dir, { activationCheckpointing: true });
  assert.throws(
    () => parseTrainConfig({ ...c, model: { ...c.model, device: "cuda" } }),
    (e: unknown) => e instanceof ConfigError && /CPU only/.test(e.message),
  );
});

for (const lora of [false, true]) {
  test(`a run with activation checkpointing equals the run without (${lora ? "LoRA" : "full fine-tuning"})`, async () => {
    const dir = tinyModelDir(2);
    const plain = await train(parseTrainConfig(base(dir, {}, lora)));
    const ckpt = await train(parseTrainConfig(base(dir, { activationCheckpointing: true }, lora)));
    assert.ok(plain.metrics.some((m) => typeof m.grad_norm === "number" && m.grad_norm > 0));
    assert.deepEqual(ckpt.metrics.map(deterministicPart), plain.metrics.map(deterministicPart));
  });
}
