// sampleTokens has two implementations of one rule: a per-row loop for CPU logits, and whole-tensor ops for
// logits on a device (where the [B, V] work must stay). Forced onto the CPU, the tensor path must draw the
// loop's tokens and log-probs from the same per-row generators, under every filter combination, with ties
// and -inf logits.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Generator, randn, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { native } from "../../src/tensor/native.js";

function draw(logits: Tensor, seeds: number[], T: number, k: number, p: number, minP: number, tensorOps: boolean) {
  const gens = seeds.map((s) => new Generator(s));
  const [tok, lp] = (
    native.sampleTokens!(
      logits.h,
      gens.map((g) => g.h),
      T,
      k,
      p,
      minP,
      tensorOps,
    ) as unknown[]
  ).map((x) => new (logits.constructor as new (h: unknown) => Tensor)(x)) as [Tensor, Tensor];
  const out = { tokens: Array.from(tok.data() as BigInt64Array, Number), lps: Array.from(lp.data() as Float32Array) };
  tok.dispose();
  lp.dispose();
  return out;
}

const SETTINGS: [T: number, topK: number, topP: number, minP: number][] = [
  [0, 0, 1, 0],
  [1, 0, 1, 0],
  [0.7, 0, 1, 0],
  [1, 5, 1, 0],
  [1, 0, 0.9, 0],
  [1, 0, 0.3, 0],
  [0.8, 10, 0.8, 0],
  [1, 0, 1, 0.1],
  [1.3, 7, 0.95, 0.05],
  [1, 1, 1, 0],
];

test("the tensor-op path draws the loop's tokens and log-probs (random logits, every filter)", () => {
  const B = 48;
  const V = 37;
  const seeds = Array.from({ length: B }, (_, i) => 1000 + 17 * i);
  tidy(() => {
    for (const [j, [T, k, p, m]] of SETTINGS.entries()) {
      const logits = randn([B, V], { generator: new Generator(j) }).mul(2);
      const a = draw(logits, seeds, T, k, p, m, false);
      const b = draw(logits, seeds, T, k, p, m, true);
      assert.deepEqual(b.tokens, a.tokens, `T ${T}, topK ${k}, topP ${p}, minP ${m}`);
      assert.deepEqual(b.lps, a.lps, `log-probs, T ${T}, topK ${k}, topP ${p}, minP ${m}`);
      if (T > 0 && k !== 1) assert.ok(new Set(a.tokens).size > 3, "the draws vary");
    }
  });
});

test("ties, -inf logits and a single finite logit are handled alike", () => {
  const rows = [
    [1, 1, 1, 1, 0, 0, -1, -1], // four-way tie at the top: top-k 2 keeps all four (≥ threshold), top-p by index
    [0, 0, 0, 0, 0, 0, 0, 0], // uniform
    [-Infinity, 2, -Infinity, 2, 1, -Infinity, 0, 0], // masked tokens are never drawn
    [-Infinity, -Infinity, 5, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity],
  ];
  const logits = tensor(rows.flat(), { shape: [4, 8] });
  try {
    for (const [T, k, p, m] of SETTINGS) {
      for (let rep = 0; rep < 5; rep++) {
        const seeds = [rep, rep + 10, rep + 20, rep + 30];
        const a = draw(logits, seeds, T, k, p, m, false);
        const b = draw(logits, seeds, T, k, p, m, true);
        assert.deepEqual(b.tokens, a.tokens, `T ${T}, topK ${k}, topP ${p}, minP ${m}, rep ${rep}`);
        assert.deepEqual(b.lps, a.lps);
        assert.ok(![0, 2, 5].includes(a.tokens[2] as number), "a -inf logit was drawn");
        assert.equal(a.tokens[3], 2);
      }
    }
  } finally {
    logits.dispose();
  }
});
