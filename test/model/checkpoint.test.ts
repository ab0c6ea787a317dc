import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import type { CausalLM, Precision } from "../../src/model/llama.js";
import { applyLora } from "../../src/model/lora.js";
import {
  checkpoint,
  dispose,
  Generator,
  liveTensors,
  randn,
  type Tensor,
  tensor,
  tidy,
  zeroGrad,
} from "../../src/tensor/index.js";
import { copyOf, randomModel, SAMPLE_COMPLETIONS, SAMPLE_PROMPTS, smallConfig } from "./helpers.js";

const batch = () => packBatch(SAMPLE_PROMPTS, SAMPLE_COMPLETIONS);

/** Gradients of every trainable tensor under a fixed random weighting of the log-probs and entropies. */
function grads(m: CausalLM): { loss: number; g: Float32Array[] } {
  const b = batch();
  const params = m.parameters();
  zeroGrad(params);
  const loss = tidy(() => {
    const { lp, entropy } = m.logprobs(b, { entropy: true, temperature: 0.9 });
    const w = randn(lp.shape, { generator: new Generator(3) }); // [N, L]
    const l = lp
      .mul(w)
      .add((entropy as Tensor).mul(0.1))
      .mul(b.completionMask)
      .sum();
    l.backward();
    return l.item();
  });
  const g = params.map((p) =>
    tidy(() => {
      const gr = p.grad;
      assert.ok(gr !== null, "a trainable tensor got no gradient");
      return Float32Array.from(gr.toArray() as number[]);
    }),
  );
  dispose(b);
  return { loss, g };
}

/** max |a − b| / max |b| over one tensor. */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    s = Math.max(s, Math.abs(b[i] as number));
  }
  return s === 0 ? d : d / s;
}

describe("activation checkpointing", () => {
  for (const precision of ["fp32", "bf16"] as Precision[]) {
    for (const lora of [false, true]) {
      test(`${precision}, ${lora ? "LoRA" : "full fine-tuning"}: every gradient equals the plain path's`, () => {
        // Qwen2-shaped (q/k/v biases, GQA 4/2) and Llama-shaped (no biases, tied embeddings)
        for (const cfg of [
          smallConfig(),
          smallConfig({ modelType: "llama", attentionBias: false, tieWordEmbeddings: true }),
        ]) {
          const base = randomModel(cfg);
          const plain = copyOf(base, { precision });
          const ckpt = copyOf(base, { precision });
          base.dispose();
          ckpt.activationCheckpointing = true;
          if (lora) {
            for (const m of [plain, ckpt]) {
              const a = applyLora(m, { rank: 4, alpha: 8, targets: ["q", "v", "o", "gate", "down"], seed: 5 });
              // B = 0 at init would give A no gradient: move B off zero, the same way in both models
              tidy(() => {
                for (const [name, t] of a.namedParameters())
                  if (name.includes("lora_B")) t.copy_(randn(t.shape, { generator: new Generator(9) }).mul(0.1));
              });
            }
          }
          // each block runs twice per step when checkpointed: once without autograd, once in the backward
          let blocks = 0;
          const block = ckpt.block.bind(ckpt);
          ckpt.block = (...args) => {
            blocks++;
            return block(...args);
          };
          const a = grads(plain);
          grads(ckpt); // grows the rotary tables and allocates the gradients
          const before = liveTensors();
          const b = grads(ckpt);
          assert.equal(liveTensors(), before, "checkpointing leaked tensors");
          assert.equal(blocks, 2 * 2 * cfg.numHiddenLayers, "the blocks were not recomputed in the backward");
          assert.equal(a.g.length, b.g.length);
          assert.equal(b.loss, a.loss, "the checkpointed forward computes another loss");
          for (const [i, g] of b.g.entries()) {
            const ref = a.g[i] as Float32Array;
            assert.ok(
              ref.some((x) => x !== 0),
              `parameter ${i} has an all-zero gradient (test would be vacuous)`,
            );
            const e = relErr(g, ref);
            assert.ok(e <= 1e-6, `parameter ${i}: relative gradient error ${e}`);
          }
          plain.dispose();
          ckpt.dispose();
        }
      });
    }
  }

  test("the region runs once without autograd and once more in the backward", () => {
    let runs = 0;
    const w = tensor([0.5, -1.5, 2]).requireGrad();
    const x = tensor([1, 2, 3]).requireGrad();
    tidy(() => {
      const y = checkpoint(
        ([xi]) => {
          runs++;
          return (xi as Tensor).mul(w).tanh();
        },
        [x],
        [w],
      );
      assert.equal(runs, 1);
      assert.equal(y.requiresGrad, true);
      y.sum().backward();
    });
    assert.equal(runs, 2);
    // d/dx tanh(x·w) = w·(1 − tanh²), d/dw = x·(1 − tanh²), by hand
    const xs = [1, 2, 3];
    const ws = [0.5, -1.5, 2];
    const sech2 = xs.map((xv, i) => 1 - Math.tanh(xv * (ws[i] as number)) ** 2);
    const gx = x.grad?.toArray() as number[];
    const gw = w.grad?.toArray() as number[];
    for (let i = 0; i < 3; i++) {
      assert.ok(Math.abs((gx[i] as number) - (ws[i] as number) * (sech2[i] as number)) < 1e-6);
      assert.ok(Math.abs((gw[i] as number) - (xs[i] as number) * (sech2[i] as number)) < 1e-6);
    }
  });

  test("an error thrown by the recomputation reaches the caller of backward()", () => {
    let calls = 0;
    const x = tensor([1, 2]).requireGrad();
    assert.throws(
      () =>
        tidy(() => {
          const y = checkpoint(
            ([xi]) => {
              if (++calls === 2) throw new Error("recompute failed");
              return (xi as Tensor).mul(2);
            },
            [x],
            [],
          );
          y.sum().backward();
        }),
      /recompute failed/,
    );
  });
});
