// Int8 weight-only rollouts: the native quantizer and matmul kernel against fp32, and the local sampler
// decoding through them (prefill and fused steps) against the fp32 model of the same (dequantized) weights.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CohortError } from "../../src/errors.js";
import { packBatch } from "../../src/model/batch.js";
import { CausalLM, int8Linear, quantizeInt8 } from "../../src/model/llama.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { Generator, linear, liveTensors, noGrad, randn, tidy } from "../../src/tensor/index.js";
import { randomModel, smallConfig } from "./helpers.js";

const PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10, 11], [12, 13, 14, 15, 16], [17, 18]];

describe("int8 quantizer and kernel", () => {
  test("per-row scales: q in [-127, 127], |w - q·s| ≤ s/2, the row max hits ±127", () => {
    tidy(() => {
      const w = randn([37, 29], { generator: new Generator(1) });
      const { q, scale } = quantizeInt8(w);
      assert.equal(q.dtype, "i8");
      assert.deepEqual(q.shape, [37, 29]);
      const qs = q.data() as Int8Array;
      const s = scale.data() as Float32Array;
      const wd = w.data() as Float32Array;
      for (let n = 0; n < 37; n++) {
        let top = 0;
        for (let k = 0; k < 29; k++) {
          const v = qs[n * 29 + k] as number;
          top = Math.max(top, Math.abs(v));
          assert.ok(Math.abs((wd[n * 29 + k] as number) - v * (s[n] as number)) <= (s[n] as number) / 2 + 1e-7);
        }
        assert.equal(top, 127);
      }
    });
  });

  test("kernel = torch = fp32 matmul of the dequantized weight, every tail shape; error vs fp32 bounded", () => {
    // K: vectorised (multiple of 8) and not; N: whole panels of 4 and a tail; M: 1, odd, paired, > 32 (auto → torch)
    for (const [M, K, N] of [
      [1, 64, 32],
      [3, 64, 30],
      [16, 896, 131],
      [5, 27, 9],
      [40, 48, 20],
    ] as const) {
      tidy(() => {
        const g = new Generator(M * 1000 + K + N);
        const x = randn([M, K], { generator: g });
        const w = randn([N, K], { generator: g }).mul(0.1);
        const b = randn([N], { generator: g });
        const qw = quantizeInt8(w);
        const deq = qw.q.to("f32").mul(qw.scale.unsqueeze(1));
        const ref = linear(x, deq, b);
        for (const mode of ["kernel", "torch", "auto"] as const) {
          const y = int8Linear(x, qw, b, mode);
          assert.deepEqual(y.shape, [M, N]);
          const err = y.sub(ref).abs().amax().item();
          assert.ok(err < 1e-4 * Math.sqrt(K), `${mode} [${M},${K}]x[${N},${K}]: |Δ| ${err} vs dequantized fp32`);
        }
        // against the unquantized weight: |Δ| ≤ Σ_k |x_k| · s_n / 2 per output (the rounding bound)
        const bound = x.abs().sum(-1, true).mul(qw.scale.unsqueeze(0)).mul(0.5).add(1e-4);
        const diff = int8Linear(x, qw, b)
          .sub(linear(x, w, b))
          .abs();
        assert.equal(diff.le(bound).logicalNot().sum().item(), 0);
      });
    }
  });

  test("3-d activations keep their leading shape; bad inputs name the op", () => {
    tidy(() => {
      const qw = quantizeInt8(randn([6, 16], { generator: new Generator(3) }));
      assert.deepEqual(int8Linear(randn([2, 3, 16]), qw).shape, [2, 3, 6]);
      assert.throws(() => int8Linear(randn([2, 15]), qw), /int8Linear.*K/);
      assert.throws(() => int8Linear(randn([2, 16]), { q: qw.scale, scale: qw.scale }), /int8Linear/);
    });
  });
});

describe("LocalSampler with precision int8", () => {
  /** The model whose projections and lm_head are the int8 plan's dequantized weights (untied; embed kept). */
  function dequantizedTwin(m: CausalLM): CausalLM {
    const twin = new CausalLM(m.config);
    tidy(() => {
      const src = m.state().tensors;
      const out: Record<string, ReturnType<typeof randn>> = {};
      for (const [name, t] of Object.entries(src)) {
        const proj = name.endsWith("_proj.weight") || name === "lm_head.weight";
        if (!proj) out[name] = t;
        else {
          const { q, scale } = quantizeInt8(t);
          out[name] = q.to("f32").mul(scale.unsqueeze(1));
        }
      }
      twin.load({ tensors: out, meta: {} });
    });
    return twin;
  }

  test("int8 sampler log-probs = the dequantized model's training log-probs (prefill and steps); close to fp32", async (t) => {
    const m = randomModel(smallConfig({ eosTokenId: null, hiddenSize: 64, intermediateSize: 96 }), 11);
    const twin = dequantizedTwin(m);
    const s = new LocalSampler(m, { maxBatch: 3, precision: "int8" });
    await s.generate(PROMPTS, { maxTokens: 9, seed: 1 }); // grows the model's RoPE tables once
    const before = liveTensors();
    const out = await s.generate(PROMPTS, { maxTokens: 9, temperature: 0.8, seed: 42, stopTokenIds: [0] });
    assert.equal(liveTensors(), before, "the int8 plan is freed after generate");
    const b = packBatch(
      PROMPTS,
      out.map((o) => o.tokens),
    );
    const lpTwin = noGrad(() => tidy(() => twin.logprobs(b, { temperature: 0.8 }).lp.tolist())) as number[][];
    const lpFp32 = noGrad(() => tidy(() => m.logprobs(b, { temperature: 0.8 }).lp.tolist())) as number[][];
    let exact = 0;
    let vsFp32 = 0;
    let sum = 0;
    let n = 0;
    out.forEach((o, r) => {
      o.tokens.forEach((_, i) => {
        const col = b.promptLength + i;
        exact = Math.max(exact, Math.abs((lpTwin[r]?.[col] as number) - (o.logprobs[i] as number)));
        const d = Math.abs((lpFp32[r]?.[col] as number) - (o.logprobs[i] as number));
        vsFp32 = Math.max(vsFp32, d);
        sum += d;
        n++;
      });
    });
    // the int8 path computes exactly the dequantized model (fp32 accumulation order aside)
    assert.ok(exact < 1e-4, `int8 sampler vs dequantized fp32 model: max |Δlogprob| ${exact}`);
    t.diagnostic(`int8 vs fp32 |Δlogprob|: max ${vsFp32.toFixed(4)}, mean ${(sum / n).toFixed(4)} over ${n} tokens`);
    // measured on this deliberately rough model (weights ~N(0, 0.25²), 2 layers, d 64, T 0.8): max 0.21,
    // mean ≈ 0.05; bounded at 0.5 / 0.1
    assert.ok(vsFp32 < 0.5, `int8 vs fp32 log-probs: max |Δ| ${vsFp32}`);
    assert.ok(sum / n < 0.1, `int8 vs fp32 log-probs: mean |Δ| ${sum / n}`);
    assert.ok(vsFp32 > 0, "int8 rollouts must actually decode through the quantized weights");
    twin.dispose();
    m.dispose();
  });

  test("greedy int8 decoding of a tied model mostly agrees with fp32", async () => {
    const m = randomModel(
      smallConfig({ modelType: "llama", attentionBias: false, tieWordEmbeddings: true, eosTokenId: null }),
      4,
    );
    const p = { maxTokens: 8, temperature: 0, seed: 1 };
    const a = await new LocalSampler(m).generate(PROMPTS, p);
    const q = await new LocalSampler(m, { precision: "int8" }).generate(PROMPTS, p);
    const firstSame = a.filter((c, i) => c.tokens[0] === q[i]?.tokens[0]).length;
    assert.ok(firstSame >= 4, `first greedy token agrees for ${firstSame}/5 prompts`);
    m.dispose();
  });

  test("int8 is refused where it cannot run, with the reason", async () => {
    const m = randomModel(smallConfig(), 2);
    await assert.rejects(
      new LocalSampler(m, { precision: "int8", fusedDecode: false }).generate([[1, 2]], { maxTokens: 2 }),
      (e: unknown) => e instanceof CohortError && /fused/.test(e.message),
    );
    const bf = new CausalLM(smallConfig(), { precision: "bf16" });
    await assert.rejects(
      new LocalSampler(bf, { precision: "int8" }).generate([[1, 2]], { maxTokens: 2 }),
      (e: unknown) => e instanceof CohortError && /int8 rollouts run on the CPU from fp32 weights/.test(e.message),
    );
    bf.dispose();
    m.dispose();
  });
});
