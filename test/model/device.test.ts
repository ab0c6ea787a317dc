// Mixed precision of the model (bf16 projections and attention, fp32 weights, lm_head and log-probs), run on
// the CPU and compared with fp32. The same model on CUDA is tested in test/cuda/model.test.ts.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import { CausalLM, KVCache } from "../../src/model/llama.js";
import { applyLora } from "../../src/model/lora.js";
import { logprobsSharedPrefixRows } from "../../src/model/prefix.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { noGrad, tensor, tidy } from "../../src/tensor/index.js";
import { copyOf, maxAbsDiff, randomModel, SAMPLE_COMPLETIONS, SAMPLE_PROMPTS, smallConfig } from "./helpers.js";

const PROMPTS = SAMPLE_PROMPTS;
const COMPS = SAMPLE_COMPLETIONS;

describe("bf16 precision", () => {
  const lpOf = (m: CausalLM, entropy = false) =>
    tidy(() => {
      const b = packBatch(PROMPTS, COMPS, { padId: 0 });
      const r = m.logprobs(b, { entropy });
      const mask = b.completionMask;
      return {
        lp: r.lp.mul(mask).toArray(),
        ent: r.entropy ? r.entropy.mul(mask).toArray() : [],
      };
    });

  test("log-probs follow fp32 within bf16 rounding, and the bf16 path really runs", () => {
    const f = randomModel(smallConfig(), 11);
    const h = copyOf(f, { precision: "bf16" });
    try {
      assert.equal(h.precision, "bf16");
      for (const p of h.parameters()) assert.equal(p.dtype, "f32", "master weights stay fp32");
      const a = lpOf(f, true);
      const b = lpOf(h, true);
      const d = maxAbsDiff(a.lp, b.lp);
      assert.ok(d < 0.1, `bf16 log-probs are ${d} from fp32`);
      assert.ok(d > 1e-5, `bf16 log-probs equal fp32 to ${d}: the bf16 path did not run`);
      assert.ok(maxAbsDiff(a.ent, b.ent) < 0.1);
    } finally {
      f.dispose();
      h.dispose();
    }
  });

  test("gradients reach the fp32 weights and are close to fp32's", () => {
    const f = randomModel(smallConfig(), 12);
    const h = copyOf(f, { precision: "bf16" });
    try {
      const grads = (m: CausalLM) => {
        tidy(() => {
          const b = packBatch(PROMPTS, COMPS, { padId: 0 });
          m.logprobs(b).lp.mul(b.completionMask).sum().backward();
        });
        return m.parameters().map((p) => {
          assert.equal(p.grad?.dtype, "f32");
          return (p.grad as NonNullable<typeof p.grad>).toArray();
        });
      };
      const gf = grads(f);
      const gh = grads(h);
      for (const [i, g] of gf.entries()) {
        const scale = Math.max(1e-3, ...g.map(Math.abs));
        const rel = maxAbsDiff(g, gh[i] as number[]) / scale;
        assert.ok(rel < 0.1, `parameter ${i}: bf16 gradient differs by ${rel} of its scale`);
      }
    } finally {
      f.dispose();
      h.dispose();
    }
  });

  test("sampling with a bf16 model matches its own log-probs (op-by-op decoding)", () => {
    const h = randomModel(smallConfig(), 13);
    const m = copyOf(h, { precision: "bf16" });
    h.dispose();
    try {
      const sampler = new LocalSampler(m, { padId: 0 });
      const out = sampler.generateSync([PROMPTS[0] as number[], PROMPTS[1] as number[]], {
        maxTokens: 6,
        temperature: 1,
        seed: [5, 6],
        stopTokenIds: [],
      });
      tidy(() => {
        const b = packBatch(
          [PROMPTS[0] as number[], PROMPTS[1] as number[]],
          out.map((c) => c.tokens),
          { padId: 0 },
        );
        const lp = noGrad(() => m.logprobs(b).lp);
        const P = b.promptLength;
        let sum = 0;
        let n = 0;
        for (const [i, c] of out.entries()) {
          const row = lp.select(0, i).narrow(0, P, c.tokens.length).toArray();
          // the same bf16 matmuls over other shapes (prefill + one token at a time vs one pass): each bf16
          // output carries a rounding of up to 2^-9 of its size, so the log-probs agree to a few 1e-2, not 1e-5
          assert.ok(maxAbsDiff(row, c.logprobs) < 0.05, `row ${i}: ${maxAbsDiff(row, c.logprobs)}`);
          row.forEach((v, j) => {
            sum += Math.abs(v - (c.logprobs[j] as number));
            n++;
          });
        }
        assert.ok(sum / n < 0.015, `mean |Δ log-prob| ${sum / n}`);
      });
    } finally {
      m.dispose();
    }
  });

  test("LoRA and shared-prefix log-probs run in bf16 and agree with the plain bf16 forward", () => {
    const f = randomModel(smallConfig(), 14);
    const m = copyOf(f, { precision: "bf16" });
    f.dispose();
    const lora = applyLora(m, { rank: 2, alpha: 4, targets: ["q", "v", "down"], seed: 3 });
    try {
      tidy(() => {
        // non-zero B so the adapters change the output
        for (const p of lora.parameters()) p.copy_(p.add(0.05));
        const b = packBatch(PROMPTS, COMPS, { padId: 0 });
        const plain = m
          .logprobs(b)
          .lp.narrow(1, b.promptLength, 4)
          .mul(b.completionMask.narrow(1, b.promptLength, 4));
        const shared = logprobsSharedPrefixRows(m, PROMPTS, COMPS).lp.mul(
          b.completionMask.narrow(1, b.promptLength, 4),
        );
        const d = maxAbsDiff(plain.toArray(), shared.toArray());
        assert.ok(d < 0.05, `shared-prefix vs plain bf16: ${d}`);
        plain.sum().backward();
      });
      for (const p of lora.parameters()) assert.equal(p.grad?.dtype, "f32");
    } finally {
      lora.detach();
      m.dispose();
    }
  });

  test("a bf16 model's KV cache is bf16 and decodes exactly as an fp32 cache would", () => {
    const f = randomModel(smallConfig(), 15);
    const m = copyOf(f, { precision: "bf16" });
    f.dispose();
    const full = new KVCache(m.config, 2, 12, "f32");
    const half = m.newCache(2, 12);
    try {
      assert.equal(half.k[0]?.dtype, "bf16");
      noGrad(() =>
        tidy(() => {
          const ids = tensor([1, 2, 3, 0, 4, 5], { shape: [2, 3], dtype: "i64" });
          const mask = tensor([1, 1, 1, 0, 1, 1], { shape: [2, 3], dtype: "i64" });
          const diffs = [
            m
              .prefill(full, ids, mask)
              .sub(m.prefill(half, ids, mask))
              .abs()
              .amax([0, 1])
              .item(),
          ];
          for (let t = 0; t < 6; t++) {
            const tok = tensor([t + 3, t + 7], { shape: [2, 1], dtype: "i64" });
            diffs.push(m.decodeStep(full, tok).sub(m.decodeStep(half, tok)).abs().amax([0, 1]).item());
          }
          assert.deepEqual(diffs, new Array(7).fill(0));
        }),
      );
    } finally {
      full.dispose();
      half.dispose();
      m.dispose();
    }
  });

  test("an unknown precision is refused by name", () => {
    assert.throws(
      () => new CausalLM(smallConfig(), { precision: "fp16" as "bf16" }),
      /model precision must be "fp32" or "bf16", got "fp16"/,
    );
  });
});
