// Fused ops (rmsNorm, attention, tokenLogprobs) against reference PyTorch code and finite differences.
import assert from "node:assert/strict";
import { test } from "node:test";
import { attention, rmsNorm, type Tensor, tensor, tidy, tokenLogprobs } from "../../src/tensor/index.js";
import { assertClose, type OpCase, opSuite, type Rng } from "../helpers/oracle.js";

const T = (x: Tensor | undefined): Tensor => x as Tensor;
const cases: OpCase[] = [];

// ---- rmsNorm ------------------------------------------------------------------------------------------------

cases.push(
  {
    name: "rmsNorm f32",
    inputs: (r) => ({ x: r.randn([2, 3, 8], "f32"), w: r.randn([8], "f32") }),
    js: ({ x, w }) => rmsNorm(T(x), T(w), 1e-6),
    py: "rms_norm(x, w, 1e-6)",
    grad: ["x", "w"],
  },
  {
    name: "rmsNorm f32, large eps",
    inputs: (r) => ({ x: r.randn([4, 6], "f32").mul(0.1), w: r.randn([6], "f32") }),
    js: ({ x, w }) => rmsNorm(T(x), T(w), 0.5),
    py: "rms_norm(x, w, 0.5)",
    grad: ["x", "w"],
  },
  {
    name: "rmsNorm bf16 input, f32 weight",
    inputs: (r) => ({ x: r.randn([3, 8], "bf16"), w: r.randn([8], "f32") }),
    js: ({ x, w }) => rmsNorm(T(x), T(w), 1e-5),
    py: "rms_norm(x, w, 1e-5)",
  },
  {
    // rmsNorm is documented to compute in fp32, so an f64 input carries f32 rounding: the finite
    // differences use a step and tolerance sized for f32 arithmetic. The weight enters in f64.
    name: "rmsNorm f64 (computed in f32)",
    inputs: (r) => ({ x: r.randn([2, 6]), w: r.randn([6]) }),
    js: ({ x, w }) => rmsNorm(T(x), T(w), 1e-6),
    py: "rms_norm(x, w, 1e-6)",
    grad: ["x", "w"],
    fd: true,
    fdTol: { rtol: 2e-3, atol: 2e-4, eps: 1e-3 },
  },
);

// ---- attention --------------------------------------------------------------------------------------------

/** A [B, 1, T, S] mask with key 0 always visible, so that no row is fully masked. */
function attnMask(r: Rng, B: number, Tq: number, S: number): Tensor {
  return tidy(() => {
    const first = tensor(
      Array.from({ length: S }, (_, j) => j === 0),
      { dtype: "bool" },
    );
    return r.mask([B, 1, Tq, S], 0.6).logicalOr(first);
  });
}

for (const dtype of ["f64", "f32"] as const) {
  const fd = dtype === "f64";
  const qkv = (r: Rng, Tq: number, S: number) => ({
    q: r.randn([2, 2, Tq, 4], dtype),
    k: r.randn([2, 2, S, 4], dtype),
    v: r.randn([2, 2, S, 4], dtype),
  });
  cases.push(
    {
      name: `attention no mask, T≠S ${dtype}`,
      inputs: (r) => qkv(r, 3, 5),
      js: ({ q, k, v }) => attention(T(q), T(k), T(v)),
      py: "attention(q, k, v)",
      grad: ["q", "k", "v"],
      fd,
    },
    {
      name: `attention causal T=S ${dtype}`,
      inputs: (r) => qkv(r, 4, 4),
      js: ({ q, k, v }) => attention(T(q), T(k), T(v), null, true),
      py: "attention(q, k, v, causal=True)",
      grad: ["q", "k", "v"],
      fd,
    },
    {
      name: `attention causal T<S (last query sees every key) ${dtype}`,
      inputs: (r) => qkv(r, 2, 5),
      js: ({ q, k, v }) => attention(T(q), T(k), T(v), null, true),
      py: "attention(q, k, v, causal=True)",
      grad: ["q", "k", "v"],
      fd,
    },
    {
      name: `attention with mask ${dtype}`,
      inputs: (r) => ({ ...qkv(r, 3, 5), m: attnMask(r, 2, 3, 5) }),
      js: ({ q, k, v, m }) => attention(T(q), T(k), T(v), T(m)),
      py: "attention(q, k, v, m)",
      grad: ["q", "k", "v"],
      fd,
    },
    {
      name: `attention with mask and causal, T≠S ${dtype}`,
      inputs: (r) => ({ ...qkv(r, 3, 5), m: attnMask(r, 2, 3, 5) }),
      js: ({ q, k, v, m }) => attention(T(q), T(k), T(v), T(m), true),
      py: "attention(q, k, v, m, True)",
      grad: ["q", "k", "v"],
      fd,
    },
  );
}

// ---- tokenLogprobs ------------------------------------------------------------------------------------------

for (const dtype of ["f64", "f32"] as const) {
  for (const temp of [1, 0.7]) {
    cases.push(
      {
        name: `tokenLogprobs with entropy, temperature ${temp} ${dtype}`,
        inputs: (r) => ({ z: r.randn([2, 3, 7], dtype).mul(2), t: r.randint(0, 7, [2, 3]) }),
        js: ({ z, t }) => {
          const res = tokenLogprobs(T(z), T(t), temp, true);
          return [res.logprobs, res.entropy as Tensor];
        },
        py: `token_logprobs(z, t, ${temp})`,
        grad: ["z"],
        fd: dtype === "f64",
      },
      {
        name: `tokenLogprobs without entropy, temperature ${temp} ${dtype}`,
        inputs: (r) => ({ z: r.randn([4, 9], dtype), t: r.randint(0, 9, [4]) }),
        js: ({ z, t }) => tokenLogprobs(T(z), T(t), temp).logprobs,
        py: `token_logprobs(z, t, ${temp})[0]`,
        grad: ["z"],
        fd: dtype === "f64",
      },
    );
  }
}

cases.push({
  // Vocabulary masking (top-k / top-p / invalid tokens) puts −inf in the logits; the entropy of the
  // remaining distribution is finite. Σ softmax(z)·z evaluates 0·(−inf) = NaN.
  name: "tokenLogprobs entropy with −inf logits",
  inputs: () => ({
    z: tensor(
      [
        [0.5, 1, Number.NEGATIVE_INFINITY, -0.3],
        [Number.NEGATIVE_INFINITY, 2, 0, 0.1],
      ],
      { dtype: "f64" },
    ),
    t: tensor([1, 3], { dtype: "i64" }),
  }),
  js: ({ z, t }) => {
    const res = tokenLogprobs(T(z), T(t), 1, true);
    return [res.logprobs, res.entropy as Tensor];
  },
  py: "token_logprobs(z, t, 1.0)",
});

opSuite(cases);

test("tokenLogprobs: entropy is null unless asked for; log-probs of all targets sum to 1 in prob space", () => {
  tidy(() => {
    const z = tensor([[0.3, -1.2, 2.0, 0.1]], { dtype: "f64" });
    const r = tokenLogprobs(z, tensor([2], { dtype: "i64" }), 0.7);
    assert.equal(r.entropy, null);
    assert.deepEqual(r.logprobs.shape, [1]);
    let total = 0;
    for (let v = 0; v < 4; v++) total += Math.exp(tokenLogprobs(z, tensor([v], { dtype: "i64" }), 0.7).logprobs.item());
    assertClose([total], [1], { rtol: 1e-12, atol: 0 }, "Σ p");
  });
});

test("attention: a query that attends to one key returns that key's value", () => {
  tidy(() => {
    const q = tensor([[[[1, 0]]]], { dtype: "f64" });
    const k = tensor(
      [
        [
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
        ],
      ],
      { dtype: "f64" },
    );
    const v = tensor(
      [
        [
          [
            [10, 20],
            [30, 40],
            [50, 60],
          ],
        ],
      ],
      { dtype: "f64" },
    );
    const m = tensor([[[[false, true, false]]]]);
    assertClose(attention(q, k, v, m).toArray(), [30, 40], { rtol: 1e-12, atol: 0 });
    // T = 1 causal: the single query is aligned with the last key and sees all keys.
    const all = attention(q, k, v, null, true).toArray();
    const none = attention(q, k, v).toArray();
    assertClose(all, none, { rtol: 1e-12, atol: 0 });
  });
});

test("attention: a query with no key to attend gets zeros and zero gradients, never NaN", () => {
  tidy(() => {
    const q = tensor(
      [
        [
          [
            [1, 0],
            [0, 1],
          ],
        ],
      ],
      { dtype: "f64" },
    ).requireGrad(); // [1, 1, 2, 2]
    const k = tensor(
      [
        [
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
        ],
      ],
      { dtype: "f64" },
    ).requireGrad(); // [1, 1, 3, 2]
    const v = tensor(
      [
        [
          [
            [10, 20],
            [30, 40],
            [50, 60],
          ],
        ],
      ],
      { dtype: "f64" },
    ).requireGrad();
    const m = tensor([
      [
        [
          [true, true, false],
          [false, false, false],
        ],
      ],
    ]); // query 1 sees no key
    const out = attention(q, k, v, m);
    const p0 = 1 / (1 + Math.exp(-1 / Math.sqrt(2))); // softmax([1/√2, 0])[0] for query 0
    const row0 = [10 * p0 + 30 * (1 - p0), 20 * p0 + 40 * (1 - p0)];
    assertClose(out.toArray(), [...row0, 0, 0], { rtol: 1e-12, atol: 0 });
    out.sum().backward();
    const gq = (q.grad as Tensor).toArray();
    assert.ok(gq.every(Number.isFinite), `q.grad ${gq}`);
    assert.notEqual(gq[0], 0);
    assert.deepEqual(gq.slice(2), [0, 0]);
    assert.ok((k.grad as Tensor).toArray().every(Number.isFinite));
    assertClose((v.grad as Tensor).toArray(), [p0, p0, 1 - p0, 1 - p0, 0, 0], { rtol: 1e-12, atol: 0 }, "v.grad");
    // causal with more queries than keys: query i sees keys j ≤ i − 1, so query 0 sees none
    const q3 = tensor(
      [
        [
          [
            [1, 0],
            [0, 1],
            [1, 1],
          ],
        ],
      ],
      { dtype: "f64" },
    );
    const k2 = k.detach().narrow(2, 0, 2);
    const v2 = v.detach().narrow(2, 0, 2);
    const c = attention(q3, k2, v2, null, true).toArray();
    assertClose(c.slice(0, 4), [0, 0, 10, 20], { rtol: 1e-12, atol: 0 });
    assertClose(c.slice(4), [20, 30], { rtol: 1e-12, atol: 0 }, "query 2 weighs both keys equally");
  });
});
