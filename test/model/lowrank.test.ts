/**
 * DR-RL's rank-r attention (src/model/lowrank.ts): the batched native SVD and rank truncation against PyTorch
 * float64, the low-rank attention output against PyTorch, the incremental rank update against a fresh
 * truncation, ALGORITHMS.md §F.4's test vectors, and the perturbation bounds on random matrices.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import {
  attentionOutputBound,
  drrlReward,
  energyRatio,
  meanTokenCosine,
  outputSensitivity,
  rankChangeNorm,
  rankUpdate,
  scoreFlops,
  truncate,
} from "../../src/model/lowrank.js";
import {
  attention,
  Generator,
  liveTensors,
  randn,
  svd,
  svdvals,
  type Tensor,
  tensor,
  tidy,
} from "../../src/tensor/index.js";
import { assertClose, PYTHON, py, runOracle } from "../helpers/oracle.js";

const haveOracle = existsSync(PYTHON);
const f64 = (t: Tensor) => Float64Array.from(t.to("f64").toArray());
const fro = (t: Tensor) => tidy(() => t.to("f64").square().sum().sqrt().item());

describe(
  "batched SVD and rank truncation against PyTorch float64",
  { skip: haveOracle ? false : `${PYTHON} missing` },
  () => {
    test("singular values, reconstruction and every rank-r truncation of a [2, 3, 7, 5] stack", () => {
      tidy(() => {
        const g = new Generator(11);
        const a = randn([2, 3, 7, 5], { generator: g, dtype: "f64" });
        const at = randn([4, 6, 9], { generator: g, dtype: "f64" }); // wide: k = min(6, 9) = 6
        const f = svd(a);
        const ft = svd(at);
        assert.deepEqual(f.U.shape, [2, 3, 7, 5]);
        assert.deepEqual(f.S.shape, [2, 3, 5]);
        assert.deepEqual(f.Vh.shape, [2, 3, 5, 5]);
        const reqs = [
          { id: "S", expr: "torch.linalg.svdvals(a)", inputs: { a: py(a) } },
          { id: "St", expr: "torch.linalg.svdvals(a)", inputs: { a: py(at) } },
          ...[1, 2, 3, 4, 5].map((r) => ({
            id: `r${r}`,
            code: `U, S, Vh = torch.linalg.svd(a, full_matrices=False)\nout = U[..., :${r}] @ torch.diag_embed(S[..., :${r}]) @ Vh[..., :${r}, :]`,
            inputs: { a: py(a) },
          })),
          ...[1, 3, 6, 8].map((r) => ({
            id: `t${r}`,
            code: `U, S, Vh = torch.linalg.svd(a, full_matrices=False)\nout = U[..., :${r}] @ torch.diag_embed(S[..., :${r}]) @ Vh[..., :${r}, :]`,
            inputs: { a: py(at) },
          })),
        ];
        const res = runOracle(reqs);
        const tol = { rtol: 1e-10, atol: 1e-10 };
        assertClose(f64(f.S), (res.get("S")?.outs[0] as { values: Float64Array }).values, tol, "S");
        assertClose(f64(svdvals(a)), (res.get("S")?.outs[0] as { values: Float64Array }).values, tol, "svdvals");
        assertClose(f64(ft.S), (res.get("St")?.outs[0] as { values: Float64Array }).values, tol, "S wide");
        for (const r of [1, 2, 3, 4, 5])
          assertClose(
            f64(truncate(f, r)),
            (res.get(`r${r}`)?.outs[0] as { values: Float64Array }).values,
            tol,
            `r=${r}`,
          );
        for (const r of [1, 3, 6, 8])
          assertClose(
            f64(truncate(ft, r)),
            (res.get(`t${r}`)?.outs[0] as { values: Float64Array }).values,
            tol,
            `wide r=${r}`,
          );
        // full rank reconstructs the input
        assertClose(f64(truncate(f, 5)), f64(a), tol, "A = U S Vh");
        // f32 input: same spectrum to f32 precision
        assertClose(f64(svdvals(a.to("f32"))), f64(f.S), { rtol: 1e-5, atol: 1e-5 }, "f32");
      });
    });

    test("causal attention with rank-r queries and keys per head (GQA layout) equals PyTorch's", () => {
      tidy(() => {
        const g = new Generator(5);
        const [H, Hkv, T, hd] = [4, 2, 12, 8];
        const q = randn([1, H, T, hd], { generator: g, dtype: "f64" }).mul(1.5);
        const k = randn([1, Hkv, T, hd], { generator: g, dtype: "f64" }).mul(1.5);
        const v = randn([1, Hkv, T, hd], { generator: g, dtype: "f64" });
        const idx = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => j <= i));
        const mask = tensor(idx, { dtype: "bool" }).reshape(1, 1, T, T);
        const code = (r: number) => `
def tr(m):
    U, S, Vh = torch.linalg.svd(m, full_matrices=False)
    return U[..., :${r}] @ torch.diag_embed(S[..., :${r}]) @ Vh[..., :${r}, :]
kk = tr(k).repeat_interleave(2, 1)
vv = v.repeat_interleave(2, 1)
out = attention(tr(q), kk, vv, causal=True)`;
        const ranks = [1, 2, 5, 8];
        const res = runOracle(
          ranks.map((r) => ({ id: `${r}`, code: code(r), inputs: { q: py(q), k: py(k), v: py(v) } })),
        );
        for (const r of ranks) {
          const qr = truncate(svd(q), r);
          const kr = truncate(svd(k), r).repeatInterleave(2, 1);
          const o = attention(qr, kr, v.repeatInterleave(2, 1), mask);
          assertClose(
            f64(o),
            (res.get(`${r}`)?.outs[0] as { values: Float64Array }).values,
            { rtol: 1e-9, atol: 1e-10 },
            `rank ${r}`,
          );
        }
      });
    });
  },
);

describe("native svd refuses bad input, naming the op and the shapes", () => {
  test("a vector, an integer matrix and a NaN", () => {
    tidy(() => {
      assert.throws(
        () => svd(tensor([1, 2, 3])),
        (e: Error) => /svd/.test(e.message) && /\[3\]/.test(e.message) && /matrices/.test(e.message),
      );
      assert.throws(
        () =>
          svd(
            tensor(
              [
                [1, 2],
                [3, 4],
              ],
              { dtype: "i64" },
            ),
          ),
        /svd.*f32 or f64/s,
      );
      assert.throws(
        () =>
          svdvals(
            tensor(
              [
                [1, Number.NaN],
                [3, 4],
              ],
              { dtype: "f64" },
            ),
          ),
        /svdvals.*finite/s,
      );
    });
  });
});

describe("ALGORITHMS.md §F.4 test vectors", () => {
  const sigma = [5, 3, 2, 1, 0.5];
  test("Eq. 8 rank-change norm, NER, Eq. 9 sensitivity", () => {
    assert.ok(Math.abs(rankChangeNorm(sigma, 2, 4) - 2.236068) < 1e-6);
    assert.ok(Math.abs(rankChangeNorm(sigma, 4, 2) - 2.236068) < 1e-6);
    assert.ok(Math.abs(energyRatio(sigma, 2) - 0.866242) < 1e-6);
    const vFro = Math.sqrt(1 + 4 + 9 + 16); // V = [[1,2],[3,4]]
    assert.ok(Math.abs(outputSensitivity(rankChangeNorm(sigma, 2, 4), vFro) - 12.2474487) < 1e-6);
  });
  test("token cosine, FLOPs and the reward", () => {
    const cos = tidy(() =>
      meanTokenCosine(
        tensor(
          [
            [1, 0, 1],
            [0, 2, 0],
          ],
          { dtype: "f64" },
        ),
        tensor(
          [
            [1, 0.1, 0.9],
            [0, 1.9, 0.3],
          ],
          { dtype: "f64" },
        ),
      ),
    );
    assert.ok(Math.abs(cos - 0.9918168) < 1e-6, `${cos}`);
    const dims = { B: 1, H: 8, L: 1024, headDim: 64 };
    const low = scoreFlops({ ...dims, rank: 16 }, "prototype");
    const full = scoreFlops({ ...dims, rank: 64 }, "prototype");
    assert.equal(low, 16_777_216);
    assert.equal(full, 1_073_741_824);
    const w = { alpha: 1, beta: 0.05, gamma: 0.1 };
    const dA = rankChangeNorm(sigma, 2, 4);
    assert.ok(Math.abs(drrlReward({ cos, flops: low, deltaA: dA }, w) - 0.7673711) < 1e-6);
    assert.ok(Math.abs(drrlReward({ cos, flops: full, deltaA: dA }, w) - 0.7145229) < 1e-6);
  });
  test("factored score FLOPs: L²r + Lr² + r²·hd per head, never above dense", () => {
    const d = { B: 1, H: 4, L: 100, headDim: 32 };
    assert.equal(scoreFlops({ ...d, rank: 8 }, "factored"), 2 * 4 * (100 * 100 * 8 + 100 * 64 + 64 * 32));
    assert.equal(scoreFlops({ ...d, rank: 32 }, "factored"), 2 * 4 * 100 * 100 * 32);
    assert.equal(scoreFlops({ ...d, rank: 30 }, "factored"), 2 * 4 * 100 * 100 * 32); // factored would cost more
  });
});

describe("perturbation bounds on random matrices", () => {
  test("the incremental rank update equals a fresh truncation, and its Frobenius change is Eq. 8 exactly", () => {
    tidy(() => {
      const g = new Generator(3);
      const a = randn([3, 20, 8], { generator: g, dtype: "f64" });
      const f = svd(a);
      const S = f64(f.S);
      for (const [r, r2] of [
        [2, 6],
        [6, 2],
        [1, 8],
        [5, 5],
      ] as const) {
        const from = truncate(f, r);
        const up = rankUpdate(from, f, r, r2);
        assertClose(f64(up), f64(truncate(f, r2)), { rtol: 1e-10, atol: 1e-10 }, `${r} → ${r2}`);
        for (let m = 0; m < 3; m++) {
          const diff = fro(up.narrow(0, m, 1).sub(from.narrow(0, m, 1)));
          const eq8 = rankChangeNorm(S.subarray(m * 8, (m + 1) * 8), r, r2);
          assert.ok(Math.abs(diff - eq8) < 1e-9, `matrix ${m}: ${diff} vs ${eq8}`);
        }
      }
    });
  });

  test("Eq. 9: ‖(A_r′ − A_r)·V‖_F ≤ ‖ΔA‖_F·‖V‖_F", () => {
    tidy(() => {
      const g = new Generator(9);
      for (let trial = 0; trial < 20; trial++) {
        const a = randn([16, 16], { generator: g, dtype: "f64" });
        const v = randn([16, 6], { generator: g, dtype: "f64" }).mul(1 + trial);
        const f = svd(a);
        const [r, r2] = [1 + (trial % 7), 8 + (trial % 5)];
        const dA = rankChangeNorm(f64(f.S), r, r2);
        const lhs = fro(truncate(f, r2).sub(truncate(f, r)).matmul(v));
        assert.ok(lhs <= outputSensitivity(dA, fro(v)) + 1e-9, `trial ${trial}: ${lhs} > bound`);
      }
    });
  });

  test("the attention-output bound holds for every rank, scale and seed (causal mask)", () => {
    const before = liveTensors();
    let tightest = 0;
    tidy(() => {
      const g = new Generator(21);
      const [T, hd] = [24, 8];
      const idx = Array.from({ length: T }, (_, i) => Array.from({ length: T }, (_, j) => j <= i));
      const mask = tensor(idx, { dtype: "bool" }).reshape(1, T, T);
      for (let trial = 0; trial < 12; trial++) {
        const scale = [0.3, 1, 3][trial % 3] as number;
        // decaying spectra, as in attention inputs
        const decay = tensor(
          Array.from({ length: hd }, (_, i) => Math.exp(-i / (1 + (trial % 4)))),
          { dtype: "f64" },
        );
        const q = randn([1, T, hd], { generator: g, dtype: "f64" }).mul(decay).mul(scale);
        const k = randn([1, T, hd], { generator: g, dtype: "f64" }).mul(decay).mul(scale);
        const v = randn([1, T, hd], { generator: g, dtype: "f64" });
        const fq = svd(q);
        const fk = svd(k);
        const sq = f64(fq.S);
        const sk = f64(fk.S);
        const full = attention(q.unsqueeze(0), k.unsqueeze(0), v.unsqueeze(0), mask.unsqueeze(0));
        for (let r = 1; r <= hd; r++) {
          const low = attention(
            truncate(fq, r).unsqueeze(0),
            truncate(fk, r).unsqueeze(0),
            v.unsqueeze(0),
            mask.unsqueeze(0),
          );
          const actual = fro(low.sub(full));
          const bound = attentionOutputBound(
            {
              dQ: rankChangeNorm(sq, r, hd),
              dK: rankChangeNorm(sk, r, hd),
              q1: sq[0] as number,
              k1: sk[0] as number,
              vFrobenius: fro(v),
            },
            hd,
          );
          assert.ok(actual <= bound + 1e-12, `trial ${trial} rank ${r}: ‖ΔO‖ ${actual} > bound ${bound}`);
          if (r === hd) assert.ok(actual < 1e-10 && bound < 1e-10);
          else if (bound > 0) tightest = Math.max(tightest, actual / bound);
        }
      }
    });
    assert.equal(liveTensors(), before);
    // loose (‖ΔS‖ by the triangle inequality, softmax at its worst slope, ‖V‖_F for ‖V‖₂), yet not vacuous: somewhere within a factor 200
    assert.ok(tightest > 0.005, `tightest ratio ${tightest}`);
  });
});
