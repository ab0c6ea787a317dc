/** The MDPO proximity term against ALGORITHMS.md E.1's test vectors (token form, float64). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { PolicyLoss } from "../../src/algo/policy-loss.js";
import { mdpoStepSize } from "../../src/algo/regularizers.js";
import { type Tensor, tensor } from "../../src/tensor/index.js";

function lossAt(delta: number, A: number, t: number): { L: number; dL: number } {
  const loss = new PolicyLoss({
    advantage: { estimator: "grpo" },
    gate: { type: "none" },
    regularizers: [{ type: "mdpo", t }],
    aggregate: { mode: "token-mean" },
  });
  const lp = tensor([delta - 1], { shape: [1, 1], dtype: "f64" }).requireGrad();
  const res = loss.compute(
    {
      logprobs: lp,
      oldLogprobs: tensor([-1], { shape: [1, 1], dtype: "f64" }),
      advantages: tensor([A], { shape: [1], dtype: "f64" }),
      mask: tensor([1], { shape: [1, 1], dtype: "f64" }),
      groupIndex: Int32Array.of(0),
    },
    { tokens: 1, sequences: 1 },
    { step: 1 },
  );
  res.loss.backward();
  return { L: res.loss.item(), dL: (lp.grad as Tensor).item() };
}

test("mdpo: L = −ρA + κ/t and dL/dℓ = −ρA + (ρ/t)(ℓ − ℓ_old) match E.1(a)", () => {
  const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
  let r = lossAt(0.1, 1, 1);
  close(r.L, -1.0998247);
  close(r.dL, -0.9946538);
  r = lossAt(0.1, -1, 0.5);
  close(r.L, 1.1158633);
  close(r.dL, 1.3262051);
  close(lossAt(-0.2, 1, 1).L, -0.8012077);
  r = lossAt(-0.2, -1, 0.5);
  close(r.L, 0.8537769);
  close(r.dL, 0.4912385);
  r = lossAt(0, 0.7, 0.3);
  close(r.dL, -0.7);
  // t_k = max(1 − k/K, 0.1) with k = step − 1
  const p = { totalSteps: 4, floor: 0.1 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((s) => mdpoStepSize(p, s)),
    [1, 0.75, 0.5, 0.25, 0.1],
  );
});
