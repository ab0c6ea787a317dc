import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import { applyLora } from "../../src/model/lora.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { AdamW, dispose, noGrad, randn, tidy } from "../../src/tensor/index.js";
import { maxAbsDiff, randomModel, smallConfig } from "./helpers.js";

const batch = () =>
  packBatch(
    [[1, 2, 3], [4]],
    [
      [5, 6, 7, 8],
      [9, 10],
    ],
  );

describe("LoRA", () => {
  test("a fresh adapter changes nothing; only adapters train; disabled() is the base model", () => {
    const m = randomModel(smallConfig());
    const b = batch();
    const lp = () => tidy(() => noGrad(() => m.logprobs(b).lp.toArray()));
    const base = lp();
    const lora = applyLora(m, { rank: 4, alpha: 8, targets: ["q", "v", "gate", "down"], seed: 1 });
    assert.equal(m.parameters().length, 2 * 2 * 4); // 2 layers × 4 targets × (A, B)
    assert.deepEqual(
      lora
        .namedParameters()
        .slice(0, 2)
        .map(([n, t]) => `${n} [${t.shape}]`),
      ["model.layers.0.self_attn.q_proj.lora_A.weight [4,32]", "model.layers.0.self_attn.q_proj.lora_B.weight [32,4]"],
    );
    assert.ok(maxAbsDiff(lp(), base) < 1e-6);
    const frozen = m.namedParameters().map(([, p]) => p.toArray());
    const opt = new AdamW(m.parameters(), { lr: 0.05 });
    for (let i = 0; i < 3; i++) {
      tidy(() => {
        const { lp: l } = m.logprobs(b);
        l.mul(b.completionMask).sum().neg().backward();
      });
      opt.step();
      opt.zeroGrad();
    }
    const tuned = lp();
    assert.ok(maxAbsDiff(tuned, base) > 1e-3, "training did not move the adapted model");
    m.namedParameters().forEach(([n, p], i) => assert.deepEqual(p.toArray(), frozen[i], `${n} changed`));
    // the reference policy: adapters off, scoped
    assert.ok(maxAbsDiff(lora.disabled(lp), base) < 1e-6);
    assert.ok(maxAbsDiff(lp(), tuned) < 1e-6);
    assert.throws(
      () =>
        lora.disabled(() => {
          throw new Error("boom");
        }),
      /boom/,
    );
    assert.ok(maxAbsDiff(lp(), tuned) < 1e-6, "disabled() did not restore after a throw");
    // merge gives the same function up to f32 rounding of W + δ; unmerge restores the base weights bit for bit
    lora.merge();
    assert.ok(maxAbsDiff(lp(), tuned) < 1e-5);
    assert.throws(() => lora.disabled(lp), /unmerge\(\) first/);
    lora.unmerge();
    m.namedParameters().forEach(([n, p], i) => assert.deepEqual(p.toArray(), frozen[i], `${n} after unmerge`));
    const afterUnmerge = maxAbsDiff(lp(), tuned);
    assert.ok(afterUnmerge < 1e-6, `after unmerge: max |Δ lp| ${afterUnmerge}`);
    // merge and unmerge twice more: no drift
    for (let i = 0; i < 2; i++) {
      lora.merge();
      lora.unmerge();
    }
    m.namedParameters().forEach(([n, p], i) => assert.deepEqual(p.toArray(), frozen[i], `${n} after 3 cycles`));
    // state round trip into a second adapter on an identical model
    const m2 = randomModel(smallConfig());
    const lora2 = applyLora(m2, { rank: 4, alpha: 8, targets: ["q", "v", "gate", "down"], seed: 2 });
    lora2.load(lora.state());
    assert.ok(
      maxAbsDiff(
        tidy(() => noGrad(() => m2.logprobs(b).lp.toArray())),
        tuned,
      ) < 1e-6,
    );
    // detach: full parameters again, trainable
    lora.detach();
    assert.equal(m.parameters().length, m.namedParameters().length);
    assert.ok(m.parameters().every((p) => p.requiresGrad));
    assert.ok(maxAbsDiff(lp(), base) < 1e-6);
    opt.dispose();
    dispose(b);
    m.dispose();
    m2.dispose();
  });

  test("sampling folds the adapter in (fused and op by op) and disabled() samples the base model", () => {
    const m = randomModel(smallConfig({ eosTokenId: null }));
    const prompts = [[1, 2, 3], [4], [5, 6]];
    const params = { maxTokens: 6, temperature: 0.9, seed: 4 };
    const base = new LocalSampler(m).generateSync(prompts, params);
    const lora = applyLora(m, { rank: 2, targets: ["q", "k", "v", "o", "gate", "up", "down"], seed: 3 });
    tidy(() => {
      for (const p of lora.parameters()) p.copy_(randn(p.shape).mul(0.3)); // a non-trivial adapter
    });
    for (const fusedDecode of [true, false]) {
      const s = new LocalSampler(m, { fusedDecode });
      const out = s.generateSync(prompts, params);
      const b = packBatch(
        prompts,
        out.map((o) => o.tokens),
      );
      const lp = tidy(() => noGrad(() => m.logprobs(b, { temperature: 0.9 }).lp.tolist())) as number[][];
      out.forEach((o, r) =>
        o.logprobs.forEach((x, i) =>
          assert.ok(
            Math.abs(x - (lp[r]?.[b.promptLength + i] as number)) < 1e-4,
            `fused=${fusedDecode} row ${r} token ${i}`,
          ),
        ),
      );
      assert.notDeepEqual(
        out.map((o) => o.tokens),
        base.map((o) => o.tokens),
      );
      assert.deepEqual(
        lora.disabled(() => s.generateSync(prompts, params)),
        base,
      );
      dispose(b);
    }
    lora.detach();
    m.dispose();
  });

  test("configuration errors name the field", () => {
    const m = randomModel(smallConfig());
    assert.throws(() => applyLora(m, { rank: 0 }), /lora\.rank: must be an integer ≥ 1/);
    assert.throws(() => applyLora(m, { rank: 2, targets: ["qkv" as never] }), /lora\.targets: unknown target "qkv"/);
    const l = applyLora(m, { rank: 2 });
    assert.throws(() => applyLora(m, { rank: 2 }), /already has an adapter/);
    l.detach();
    m.dispose();
  });
});
