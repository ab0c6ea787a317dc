import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { packBatch } from "../../src/model/batch.js";
import { LocalSampler } from "../../src/model/sampler.js";
import { dispose, liveTensors, noGrad, tidy } from "../../src/tensor/index.js";
import { randomModel, smallConfig } from "./helpers.js";

const PROMPTS = [[1, 2, 3, 4, 5, 6, 7], [8], [9, 10, 11], [12, 13, 14, 15, 16], [17, 18]];

describe("LocalSampler", () => {
  test("sampled log-probs equal training log-probs of the same tokens (padding, mixed lengths, fp32)", async () => {
    const variants = [
      { over: {}, fusedDecode: true },
      { over: {}, fusedDecode: false },
      {
        over: { modelType: "llama", attentionBias: false, numKeyValueHeads: 1, tieWordEmbeddings: true },
        fusedDecode: true,
      },
      {
        over: { modelType: "llama", attentionBias: false, numKeyValueHeads: 1, tieWordEmbeddings: true },
        fusedDecode: false,
      },
    ] as const;
    for (const { over, fusedDecode } of variants) {
      const m = randomModel(smallConfig({ ...over, eosTokenId: null }), 5);
      const s = new LocalSampler(m, { maxBatch: 3, fusedDecode }); // 2 batches: 3 + 2 rows
      for (const temperature of [1, 0.6]) {
        const out = await s.generate(PROMPTS, {
          maxTokens: 9,
          temperature,
          topK: 20,
          topP: 0.95,
          stopTokenIds: [0],
          seed: 42,
        });
        assert.equal(out.length, PROMPTS.length);
        const b = packBatch(
          PROMPTS,
          out.map((o) => o.tokens),
        );
        const lp = noGrad(() => m.logprobs(b, { temperature })).lp.tolist() as number[][];
        let n = 0;
        let worst = 0;
        out.forEach((o, r) => {
          assert.equal(o.tokens.length, o.logprobs.length);
          assert.ok(o.finishReason === "length" ? o.tokens.length === 9 : o.tokens.at(-1) === 0);
          o.tokens.forEach((_, i) => {
            worst = Math.max(worst, Math.abs((lp[r]?.[b.promptLength + i] as number) - (o.logprobs[i] as number)));
            n++;
          });
        });
        assert.ok(n >= 20, `only ${n} tokens compared`);
        assert.ok(worst < 1e-4, `max |Δ logprob| ${worst}`);
        dispose(b);
      }
      m.dispose();
    }
  });

  test("per-request seeds reproduce completions, also in a different batch", async () => {
    const m = randomModel(smallConfig({ eosTokenId: null }), 6);
    const s = new LocalSampler(m);
    const p = { maxTokens: 8, temperature: 1 };
    const a = await s.generate(PROMPTS, { ...p, seed: [1, 2, 3, 4, 5] });
    const b = await s.generate(PROMPTS, { ...p, seed: [1, 2, 3, 4, 5] });
    assert.deepEqual(a, b);
    const alone = await s.generate([PROMPTS[2] as number[]], { ...p, seed: [3] });
    assert.deepEqual(alone[0]?.tokens, a[2]?.tokens);
    const other = await s.generate(PROMPTS, { ...p, seed: [6, 7, 8, 9, 10] });
    assert.notDeepEqual(
      other.map((o) => o.tokens),
      a.map((o) => o.tokens),
    );
    m.dispose();
  });

  test("greedy, top-k 1, tiny top-p and min-p 1 all pick the argmax", async () => {
    const m = randomModel(smallConfig({ eosTokenId: null }), 8);
    const s = new LocalSampler(m);
    const greedy = await s.generate(PROMPTS, { maxTokens: 6, temperature: 0 });
    // greedy continuation = argmax of the full forward at each step
    const b = packBatch(
      PROMPTS,
      greedy.map((o) => o.tokens),
    );
    const argmax = tidy(() =>
      noGrad(() => m.forward(b.inputIds, b.attentionMask))
        .argmax(-1)
        .tolist(),
    ) as number[][];
    greedy.forEach((o, r) => {
      o.tokens.forEach((t, i) => assert.equal(t, argmax[r]?.[b.promptLength + i - 1]));
    });
    dispose(b);
    for (const extra of [{ topK: 1 }, { topP: 1e-6 }, { minP: 1 }]) {
      const out = await s.generate(PROMPTS, { maxTokens: 6, temperature: 1.3, seed: 9, ...extra });
      assert.deepEqual(
        out.map((o) => o.tokens),
        greedy.map((o) => o.tokens),
        JSON.stringify(extra),
      );
    }
    m.dispose();
  });

  test("stop token ids, eos from the config, stop strings and the length limit", async () => {
    const m = randomModel(smallConfig({ vocabSize: 61, eosTokenId: null }), 9);
    const s0 = new LocalSampler(m);
    const free = await s0.generate(PROMPTS, { maxTokens: 12, temperature: 1, seed: 1 });
    assert.ok(free.every((o) => o.finishReason === "length" && o.tokens.length === 12));
    // stop at the 3rd token drawn in row 0
    const stopTok = free[0]?.tokens[2] as number;
    const stopped = await s0.generate(PROMPTS, { maxTokens: 12, temperature: 1, seed: 1, stopTokenIds: [stopTok] });
    const first = free[0]?.tokens.indexOf(stopTok) as number;
    assert.deepEqual(stopped[0]?.tokens, free[0]?.tokens.slice(0, first + 1));
    assert.equal(stopped[0]?.finishReason, "stop");
    // rows stopping do not change the others' draws
    stopped.forEach((o, r) => {
      const f = free[r]?.tokens as number[];
      const k = f.indexOf(stopTok);
      assert.deepEqual(o.tokens, k >= 0 ? f.slice(0, k + 1) : f);
    });
    // eos of the config is the default stop id
    const me = randomModel(smallConfig({ vocabSize: 61, eosTokenId: stopTok }), 9);
    const viaEos = await new LocalSampler(me).generate(PROMPTS, { maxTokens: 12, temperature: 1, seed: 1 });
    assert.deepEqual(viaEos, stopped);
    // stop strings through a decode function: token t ↦ letter
    const decode = (ids: number[]) => ids.map((t) => String.fromCharCode(65 + (t % 26))).join("");
    const s1 = new LocalSampler(m, { decode });
    const text = decode(free[1]?.tokens as number[]);
    const stop = text.slice(3, 5);
    const byString = await s1.generate(PROMPTS, { maxTokens: 12, temperature: 1, seed: 1, stop: [stop] });
    const cut = text.indexOf(stop) + stop.length;
    assert.deepEqual(byString[1]?.tokens, free[1]?.tokens.slice(0, cut));
    assert.equal(byString[1]?.finishReason, "stop");
    assert.throws(() => s0.generateSync(PROMPTS, { maxTokens: 3, stop: ["x"] }), /stop strings need a decode function/);
    assert.throws(() => s0.generateSync(PROMPTS, { maxTokens: 0 }), /maxTokens: must be an integer ≥ 1/);
    assert.throws(() => s0.generateSync([[1, 99]], { maxTokens: 2 }), /prompt 0 holds token 99, outside \[0, 61\)/);
    m.dispose();
    me.dispose();
  });

  test("dropping finished rows mid-batch changes no completion", async () => {
    const m = randomModel(smallConfig({ eosTokenId: null }), 12);
    const prompts = Array.from({ length: 32 }, (_, i) =>
      Array.from({ length: 1 + (i % 5) }, (_, j) => (3 * i + j) % 61),
    );
    const p = { maxTokens: 20, temperature: 1.2, stopTokenIds: Array.from({ length: 6 }, (_, i) => 10 * i), seed: 77 };
    const together = new LocalSampler(m, { maxBatch: 32 }).generateSync(prompts, p);
    const lengths = together.map((o) => o.tokens.length);
    assert.ok(lengths.filter((n) => n < 8).length >= 8, `too few early stops to exercise compaction: ${lengths}`);
    assert.ok(
      lengths.some((n) => n === 20),
      `no row ran to the limit: ${lengths}`,
    );
    const oneByOne = new LocalSampler(m, { maxBatch: 1 }).generateSync(prompts, p);
    assert.deepEqual(
      together.map((o) => o.tokens),
      oneByOne.map((o) => o.tokens),
    );
    const b = packBatch(
      prompts,
      together.map((o) => o.tokens),
    );
    const lp = tidy(() => noGrad(() => m.logprobs(b, { temperature: 1.2 }).lp.tolist())) as number[][];
    together.forEach((o, r) =>
      o.logprobs.forEach((x, i) => assert.ok(Math.abs(x - (lp[r]?.[b.promptLength + i] as number)) < 1e-4)),
    );
    dispose(b);
    m.dispose();
  });

  test("rows that stop early are dropped from the cache without leaking a tensor", async () => {
    const m = randomModel(smallConfig({ eosTokenId: null }), 11);
    const s = new LocalSampler(m, { maxBatch: 64 });
    const prompts = Array.from({ length: 32 }, (_, i) => [1 + (i % 50), 2 + (i % 40)]);
    const p = { maxTokens: 24, stopTokenIds: Array.from({ length: 12 }, (_, i) => i * 5) };
    await s.generate(prompts, p); // warm-up: RoPE tables
    const live = liveTensors();
    const out = await s.generate(prompts, p);
    const lengths = new Set(out.map((o) => o.tokens.length));
    assert.ok(lengths.size >= 3, `rows stop at different steps (lengths ${[...lengths]})`); // keepRows ran
    assert.equal(liveTensors(), live);
    m.dispose();
  });

  test("sampling 1,000 sequences keeps live tensors and RSS flat", async (t) => {
    const m = randomModel(smallConfig({ eosTokenId: null }), 10);
    const s = new LocalSampler(m, { maxBatch: 50 });
    const prompts = Array.from({ length: 100 }, (_, i) => Array.from({ length: 1 + (i % 7) }, (_, j) => (i + j) % 61));
    await s.generate(prompts, { maxTokens: 16, topP: 0.9 }); // warm-up: RoPE tables, allocator pools
    const live = liveTensors();
    const rss0 = process.memoryUsage().rss;
    let tokens = 0;
    for (let round = 0; round < 10; round++) {
      const out = await s.generate(prompts, { maxTokens: 16, topP: 0.9 });
      tokens += out.reduce((a, o) => a + o.tokens.length, 0);
      assert.equal(liveTensors(), live, `round ${round}`);
    }
    assert.equal(tokens, 1000 * 16);
    const growthMb = (process.memoryUsage().rss - rss0) / 2 ** 20;
    t.diagnostic(`RSS growth over 1,000 sequences: ${growthMb.toFixed(1)} MB`);
    assert.ok(growthMb < 16, `RSS grew ${growthMb.toFixed(1)} MB over 1,000 sequences`);
    m.dispose();
  });
});
