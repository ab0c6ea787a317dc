import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import type { CausalLM } from "../../src/model/llama.js";
import { applyLora } from "../../src/model/lora.js";
import { type Completion, LocalSampler, type SamplingParams } from "../../src/model/sampler.js";
import { AdamW, Generator, liveTensors, noGrad, randn, tensor, tidy } from "../../src/tensor/index.js";
import { randomModel, SAMPLE_PROMPTS, smallConfig } from "./helpers.js";

const params: SamplingParams = { maxTokens: 6, temperature: 1, seed: 11 };
const fresh = (m: CausalLM, precision: "fp32" | "int8"): Completion[] =>
  new LocalSampler(m, { precision, cachePlan: false }).generateSync(SAMPLE_PROMPTS, params);

/** One optimizer step on the trainable tensors (a loss that moves every one of them). */
function step(m: CausalLM): void {
  const opt = new AdamW(m.parameters(), { lr: 0.05 });
  tidy(() => {
    const b = packBatch(SAMPLE_PROMPTS, [[1, 2], [3], [4, 5, 6]]);
    m.logprobs(b).lp.mul(b.completionMask).sum().neg().backward();
  });
  opt.step();
  opt.zeroGrad();
  opt.dispose();
}

describe("LocalSampler keeps its decoding plan while the weights stay", () => {
  for (const lora of [false, true]) {
    test(`int8${lora ? " with LoRA" : ""}: reused without a weight change, rebuilt after a step, a load, a merge`, () => {
      const m = randomModel(smallConfig({ maxPositionEmbeddings: 4096 }));
      const adapter = lora ? applyLora(m, { rank: 4, alpha: 8, targets: ["q", "v"], seed: 2 }) : null;
      if (adapter)
        tidy(() => {
          for (const [n, t] of adapter.namedParameters())
            if (n.includes("lora_B")) t.copy_(randn(t.shape, { generator: new Generator(4) }).mul(0.3));
        });
      const s = new LocalSampler(m, { precision: "int8" });
      const first = s.generateSync(SAMPLE_PROMPTS, params);
      assert.equal(s.planBuilds, 1);
      assert.deepEqual(s.generateSync(SAMPLE_PROMPTS, params), first);
      s.generateSync([[1, 2, 3, 4, 5, 6, 7]], { ...params, maxTokens: 9 }); // another length, within the plan
      assert.equal(s.planBuilds, 1, "a generate call without a weight change re-quantized");
      assert.deepEqual(first, fresh(m, "int8"), "the kept plan decodes differently from a fresh one");

      step(m);
      const after = s.generateSync(SAMPLE_PROMPTS, params);
      assert.equal(s.planBuilds, 2, "the optimizer step did not invalidate the plan");
      assert.notDeepEqual(
        after.map((c) => c.logprobs),
        first.map((c) => c.logprobs),
      );
      assert.deepEqual(after, fresh(m, "int8"), "after a step the sampler does not decode the new weights");

      // the model's rotary tables grow (and are replaced) under a long forward; the kept plan has its own
      noGrad(() =>
        tidy(() =>
          m.forward(
            tensor(
              Array.from({ length: 600 }, (_, i) => i % 61),
              { dtype: "i64" },
            ).reshape(1, 600),
          ),
        ),
      );
      assert.deepEqual(s.generateSync(SAMPLE_PROMPTS, params), after);
      assert.equal(s.planBuilds, 2);

      if (adapter) {
        // the reference policy: the adapter off is another set of weights; back on, the adapted ones again
        const base = adapter.disabled(() => s.generateSync(SAMPLE_PROMPTS, params));
        assert.deepEqual(
          base,
          adapter.disabled(() => fresh(m, "int8")),
        );
        assert.deepEqual(s.generateSync(SAMPLE_PROMPTS, params), after);
        adapter.merge();
        const merged = s.generateSync(SAMPLE_PROMPTS, params);
        assert.deepEqual(merged, fresh(m, "int8"));
        adapter.unmerge();
        assert.equal(s.planBuilds, 5);
      } else {
        // load(): the same values written again still count as a change (no stale plan is ever possible)
        const st = m.state();
        const copy = Object.fromEntries(Object.entries(st.tensors).map(([k, t]) => [k, tidy(() => t.mul(1.01))]));
        m.load({ tensors: copy, meta: {} });
        for (const t of Object.values(copy)) t.dispose();
        assert.deepEqual(s.generateSync(SAMPLE_PROMPTS, params), fresh(m, "int8"));
        assert.equal(s.planBuilds, 3);
      }
      const live = liveTensors();
      s.dispose();
      assert.ok(liveTensors() < live, "dispose() did not free the kept plan");
      m.dispose();
    });
  }

  test("fp32 rebuilds per call by default and keeps its plan when asked", () => {
    const m = randomModel(smallConfig());
    const plain = new LocalSampler(m);
    plain.generateSync(SAMPLE_PROMPTS, params);
    plain.generateSync(SAMPLE_PROMPTS, params);
    assert.equal(plain.planBuilds, 2);
    const kept = new LocalSampler(m, { cachePlan: true });
    const a = kept.generateSync(SAMPLE_PROMPTS, params);
    assert.deepEqual(kept.generateSync(SAMPLE_PROMPTS, params), a);
    assert.equal(kept.planBuilds, 1);
    step(m);
    assert.deepEqual(kept.generateSync(SAMPLE_PROMPTS, params), fresh(m, "fp32"));
    assert.equal(kept.planBuilds, 2);
    kept.dispose();
    m.dispose();
  });
});
