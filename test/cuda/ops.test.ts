// The native ops on a CUDA device against the same ops on the CPU (fp32, and bf16 matmuls within bf16's
// precision). Skipped, with the reason, where this libtorch build or machine has no CUDA; scripts/gpu-check.sh
// runs it on a GPU machine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { availableBackends } from "../../src/parallel/group.js";
import {
  AdamW,
  attention,
  cudaAvailable,
  type Device,
  embedding,
  Generator,
  randn,
  rmsNorm,
  type Tensor,
  tensor,
  tidy,
  tokenLogprobs,
  torchVersion,
} from "../../src/tensor/index.js";
import { close } from "../helpers/close.js";

const skip = cudaAvailable()
  ? false
  : `CUDA is not available to this build (torch ${torchVersion()}): build against a CUDA libtorch on a GPU machine (docs/GPU.md)`;

const values = (t: Tensor): number[] => Array.from(t.to("f32").data() as Float32Array);

/** The same computation on the CPU and on cuda:0, from the same seeded inputs. */
function both(fn: (dev: Device) => Tensor[]): [number[][], number[][]] {
  return tidy(() => [fn("cpu").map(values), fn("cuda").map(values)]);
}

function rnd(shape: number[], seed: number, dev: Device): Tensor {
  return randn(shape, { generator: new Generator(seed) }).to(dev);
}

test("cuda: elementwise, reductions, matmul, softmax", { skip }, () => {
  const [cpu, gpu] = both((d) => {
    const a = rnd([8, 33], 1, d);
    const b = rnd([33, 17], 2, d);
    return [a.exp().add(a.mul(3)).sigmoid(), a.sum(1), a.amax(0), a.matmul(b), a.logSoftmax(-1), a.softmax(0)];
  });
  cpu.forEach((c, i) => close(gpu[i] as number[], c, 1e-4, `output ${i}`));
});

test("cuda: fused token log-probs and entropy, attention, RMSNorm, embedding", { skip }, () => {
  const [cpu, gpu] = both((d) => {
    const logits = rnd([3, 5, 50], 3, d);
    const targets = tensor([1, 7, 49, 0, 3, 8, 9, 10, 11, 12, 40, 41, 42, 43, 44], { shape: [3, 5], dtype: "i64" }).to(
      d,
    );
    const lp = tokenLogprobs(logits, targets, 0.7, true);
    const q = rnd([2, 2, 4, 8], 4, d);
    const k = rnd([2, 2, 6, 8], 5, d);
    const v = rnd([2, 2, 6, 8], 6, d);
    const x = rnd([4, 16], 7, d);
    const w = rnd([16], 8, d);
    const table = rnd([10, 4], 9, d);
    return [
      lp.logprobs,
      lp.entropy as Tensor,
      attention(q, k, v, null, true),
      rmsNorm(x, w, 1e-6),
      embedding(table, tensor([3, 0, 9], { dtype: "i64" }).to(d)),
    ];
  });
  cpu.forEach((c, i) => close(gpu[i] as number[], c, 1e-4, `output ${i}`));
});

test("cuda: gradients and one AdamW step match the CPU", { skip }, () => {
  const [cpu, gpu] = both((d) => {
    const w = rnd([16, 8], 10, d).requireGrad();
    const x = rnd([4, 16], 11, d);
    const loss = x.matmul(w).tanh().square().mean();
    loss.backward();
    const g = w.grad as Tensor;
    const opt = new AdamW([w], { lr: 0.01, weightDecay: 0.1 });
    opt.step();
    const out = [loss, g, w.detach()];
    opt.dispose();
    return out;
  });
  cpu.forEach((c, i) => close(gpu[i] as number[], c, 1e-5, `output ${i}`));
});

test("cuda: bf16 matmul (autocast-style) stays within bf16 precision of fp32", { skip }, () => {
  const [out] = tidy(() => {
    const a = rnd([64, 256], 12, "cuda");
    const b = rnd([256, 64], 13, "cuda");
    const full = a.matmul(b);
    const half = a.to("bf16").matmul(b.to("bf16")).to("f32");
    return [[values(full), values(half)]];
  }) as [[number[], number[]]];
  const [full, half] = out;
  // relative Frobenius error: bf16 keeps 8 significand bits (≈ 0.4 % per input), fp32 accumulation
  const err = Math.sqrt(full.reduce((a, x, i) => a + (x - (half[i] as number)) ** 2, 0));
  const norm = Math.sqrt(full.reduce((a, x) => a + x * x, 0));
  assert.ok(err / norm < 2e-2, `relative error ${err / norm}`);
});

test("cuda: this build has the NCCL backend for data parallel", { skip }, () => {
  assert.ok(
    availableBackends().includes("nccl"),
    `backends: ${availableBackends().join(", ")}; rebuild against a pip torch with CUDA and NCCL headers (docs/GPU.md)`,
  );
});
