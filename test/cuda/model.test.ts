// The model, the sampler and the trainer on a CUDA device against the same on the CPU. Skipped, with the
// reason, where this build or machine has no CUDA; scripts/gpu-check.sh runs it on a GPU machine.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import type { CausalLM } from "../../src/model/llama.js";
import { applyLora } from "../../src/model/lora.js";
import { logprobsSharedPrefixRows } from "../../src/model/prefix.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { cudaAvailable, noGrad, type Tensor, tidy, torchVersion } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { copyOf, maxAbsDiff, randomModel, SAMPLE_COMPLETIONS, SAMPLE_PROMPTS, smallConfig } from "../model/helpers.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";

const skip = cudaAvailable()
  ? false
  : `CUDA is not available to this build (torch ${torchVersion()}): build against a CUDA libtorch on a GPU machine (docs/GPU.md)`;

const PROMPTS = SAMPLE_PROMPTS;
const COMPS = SAMPLE_COMPLETIONS;

/** A CPU model and the same weights on cuda (optionally in bf16). */
function pair(seed: number, precision: "fp32" | "bf16" = "fp32"): [CausalLM, CausalLM] {
  const cpu = randomModel(smallConfig(), seed);
  return [cpu, copyOf(cpu, { device: "cuda", precision })];
}

function lpAndGrads(m: CausalLM): { lp: number[]; ent: number[]; grads: number[][] } {
  const out = tidy(() => {
    const b = packBatch(PROMPTS, COMPS, { padId: 0 });
    const r = m.logprobs(b, { entropy: true, temperature: 0.8 });
    const mask = b.completionMask.to(m.device);
    r.lp.mul(mask).sum().backward();
    return { lp: r.lp.mul(mask).toArray(), ent: (r.entropy as Tensor).mul(mask).toArray() };
  });
  return { ...out, grads: m.parameters().map((p) => (p.grad as Tensor).toArray()) };
}

test("cuda: log-probs, entropy and gradients equal the CPU model's (fp32)", { skip }, () => {
  const [cpu, gpu] = pair(21);
  try {
    assert.match(gpu.device, /^cuda/);
    for (const p of gpu.parameters()) assert.match(p.device, /^cuda/);
    const a = lpAndGrads(cpu);
    const b = lpAndGrads(gpu);
    assert.ok(maxAbsDiff(a.lp, b.lp) < 1e-4, `log-probs ${maxAbsDiff(a.lp, b.lp)}`);
    assert.ok(maxAbsDiff(a.ent, b.ent) < 1e-4, `entropy ${maxAbsDiff(a.ent, b.ent)}`);
    a.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, b.grads[i] as number[]) < 1e-3, `grad ${i}`));
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
});

test("cuda: bf16 precision follows the CPU fp32 model within bf16 rounding", { skip }, () => {
  const [cpu, gpu] = pair(22, "bf16");
  try {
    const a = lpAndGrads(cpu);
    const b = lpAndGrads(gpu);
    for (const p of gpu.parameters()) assert.equal(p.grad?.dtype, "f32");
    assert.ok(maxAbsDiff(a.lp, b.lp) < 0.1, `log-probs ${maxAbsDiff(a.lp, b.lp)}`);
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
});

test("cuda: LoRA and shared-prefix log-probs equal the CPU model's", { skip }, () => {
  const [cpu, gpu] = pair(23);
  const la = applyLora(cpu, { rank: 2, alpha: 4, targets: ["q", "v"], seed: 1 });
  const lb = applyLora(gpu, { rank: 2, alpha: 4, targets: ["q", "v"], seed: 1 });
  try {
    for (const p of lb.parameters()) assert.match(p.device, /^cuda/);
    const run = (m: CausalLM) => tidy(() => logprobsSharedPrefixRows(m, PROMPTS, COMPS).lp.toArray());
    assert.ok(maxAbsDiff(run(cpu), run(gpu)) < 1e-4);
  } finally {
    la.detach();
    lb.detach();
    cpu.dispose();
    gpu.dispose();
  }
});

test("cuda: the sampler draws the CPU model's tokens from the same seeds", { skip }, () => {
  const [cpu, gpu] = pair(24);
  try {
    const gen = (m: CausalLM) =>
      noGrad(() =>
        new LocalSampler(m, { padId: 0 }).generateSync(PROMPTS, {
          maxTokens: 8,
          temperature: 1,
          seed: [1, 2, 3],
          stopTokenIds: [],
        }),
      );
    const a = gen(cpu);
    const b = gen(gpu);
    a.forEach((c, i) => {
      assert.deepEqual(b[i]?.tokens, c.tokens, `row ${i}`);
      assert.ok(maxAbsDiff(c.logprobs, b[i]?.logprobs as number[]) < 1e-3);
    });
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
});

test("cuda: a short training run follows the CPU run", { skip }, async () => {
  const model = tinyModelDir(5);
  const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;
  const cfg = (device: string) =>
    parseTrainConfig({
      seed: 2,
      model: { path: model, device },
      outputDir: tmpRunRoot(),
      task: { name: "arithmetic", options: { digits: [1, 1] } },
      rewards: [parity],
      algo: { regularizers: [{ type: "kl", estimator: "k3", beta: 0.04 }] },
      train: { steps: 2, promptsPerStep: 2, groupSize: 4, microBatchSize: 4, lr: 0.003 },
      sampling: { maxNewTokens: 5 },
      eval: { everySteps: 0 },
      checkpoint: { everySteps: 0 },
    });
  const quiet = () => {};
  const a = await train(cfg("cpu"), { log: quiet });
  const b = await train(cfg("cuda"), { log: quiet });
  const m0 = a.metrics[0] as Record<string, number>;
  const m1 = b.metrics[0] as Record<string, number>;
  for (const k of ["reward_mean", "loss", "grad_norm"]) {
    const d = Math.abs((m0[k] as number) - (m1[k] as number));
    assert.ok(d <= 1e-3 * Math.max(1, Math.abs(m0[k] as number)), `${k}: cpu ${m0[k]}, cuda ${m1[k]}`);
  }
});
