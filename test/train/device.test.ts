// `model.device` and `model.precision` in the train config: validation, the refusal of CUDA on a build
// without it, and a bf16 run that trains (fp32 master weights) and resumes. CUDA runs: test/cuda/model.test.ts.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { cudaAvailable, liveTensors } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

const model = tinyModelDir(5);
const quiet = () => {};
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;

function config(over: Record<string, unknown> = {}, steps = 3) {
  return parseTrainConfig({
    seed: 2,
    model: { path: model, ...over },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    rewards: [parity],
    train: { steps, promptsPerStep: 2, groupSize: 4, microBatchSize: 4, lr: 0.003 },
    sampling: { maxNewTokens: 5 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 1 },
  });
}

test("model.device and model.precision default to cpu / fp32 and refuse unknown values by name", () => {
  const c = config();
  assert.equal(c.model?.device, "cpu");
  assert.equal(c.model?.precision, "fp32");
  assert.equal(config({ device: "cuda:1" }).model?.device, "cuda:1");
  assert.throws(() => config({ device: "gpu" }), /model\.device[\s\S]*"cpu", "cuda" or "cuda:N"/);
  assert.throws(() => config({ precision: "fp16" }), /model\.precision[\s\S]*fp32[\s\S]*bf16/);
});

test(
  "device cuda on a build without CUDA fails before any work, naming the fix",
  { skip: cudaAvailable() },
  async () => {
    const cfg = config({ device: "cuda" });
    await assert.rejects(
      () => train(cfg, { log: quiet }),
      /model\.device is "cuda" but[\s\S]*docs\/GPU\.md[\s\S]*model\.device: cpu/,
    );
  },
);

test("a bf16 run trains with fp32 master weights, differs from fp32 only by rounding, and resumes", async () => {
  const before = liveTensors();
  const fp32 = await train(config(), { log: quiet });
  const bf16 = await train(config({ precision: "bf16" }), { log: quiet });
  assert.equal(liveTensors(), before, "no tensor outlives the runs");
  assert.equal(bf16.steps, 3);
  for (const m of bf16.metrics) {
    for (const k of ["loss", "grad_norm", "reward_mean"])
      assert.ok(Number.isFinite(m[k] as number), `${k} at ${m.step}`);
  }
  assert.ok((bf16.metrics[0]?.grad_norm as number) > 0, "gradients reach the weights");
  // step 1 samples from identical weights with fp32 lm_head logits; its rewards match unless bf16 rounding
  // flips a sampled token, and its gradient norm agrees to bf16 precision
  const g32 = fp32.metrics[0]?.grad_norm as number;
  const g16 = bf16.metrics[0]?.grad_norm as number;
  assert.ok(Math.abs(g32 - g16) <= 0.05 * g32, `grad_norm fp32 ${g32} vs bf16 ${g16}`);
  // resume: stop after step 2, continue to 3; the metrics of step 3 equal the uninterrupted run's
  const cfg = config({ precision: "bf16" });
  await train(cfg, { log: quiet, stopAfterStep: 2 });
  const resumed = await train(cfg, { log: quiet, resume: true });
  const last = (r: typeof resumed) => r.metrics.find((m) => m.step === 3) as Record<string, unknown>;
  assert.equal(last(resumed).loss, last(bf16).loss);
  assert.equal(last(resumed).grad_norm, last(bf16).grad_norm);
});
