/**
 * Test vectors of ALGORITHMS.md §D for the policy-loss side: D.3 (clip), D.4 (KL), D.5 (GSPO), D.12 (SAPO),
 * D.13 (DisCO), D.15 (LLDS), plus the composed PolicyLoss and its metrics.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { globalCounts } from "../../src/algo/aggregate.js";
import { ppoClip, sapoGate } from "../../src/algo/gates.js";
import { discoLoss, discoObjective, recLoss } from "../../src/algo/losses.js";
import { computePolicyLoss, PolicyLoss } from "../../src/algo/policy-loss.js";
import { sequenceRatio, tokenLogRatio } from "../../src/algo/ratio.js";
import { betaAt, discoKlPenalty, klEstimate, klInReward, lldsRegularizer } from "../../src/algo/regularizers.js";
import type { LossBatch } from "../../src/algo/types.js";
import { liveTensors, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { assertClose } from "../helpers/gradcheck.js";

const f64 = (x: number[] | number[][]) => tensor(x, { dtype: "f64" });

function clipLossAndGrad(rho: number, a: number, low: number, high: number, dualClip?: number) {
  return tidy(() => {
    const r = f64([rho]).requireGrad();
    const out = ppoClip(
      { ratio: r, advantages: f64([a]), mask: f64([1]) },
      dualClip === undefined ? { low, high } : { low, high, dualClip },
    );
    const loss = out.loss.sum();
    loss.backward();
    return { loss: loss.item(), grad: (r.grad as Tensor).item(), metrics: out.metrics };
  });
}

describe("D.3 clipped token loss", () => {
  const rows: [number, number, number, number, boolean, boolean][] = [
    // ρ, A, symmetric, DAPO, grad flows (sym), grad flows (DAPO)
    [1.5, 1, -1.2, -1.28, false, false],
    [1.5, -1, 1.5, 1.5, true, true],
    [0.5, 1, -0.5, -0.5, true, true],
    [0.5, -1, 0.8, 0.8, false, false],
    [1.1, 1, -1.1, -1.1, true, true],
    [1.25, 1, -1.2, -1.25, false, true],
    [0.9, -0.5, 0.45, 0.45, true, true],
    [1.0, 0.7, -0.7, -0.7, true, true],
  ];
  for (const [rho, a, sym, dapo, flowSym, flowDapo] of rows) {
    test(`ρ=${rho} A=${a}`, () => {
      const s = clipLossAndGrad(rho, a, 0.2, 0.2);
      const d = clipLossAndGrad(rho, a, 0.2, 0.28);
      assertClose([s.loss, d.loss], [sym, dapo], 1e-12);
      assert.equal(s.grad !== 0, flowSym, `symmetric grad ${s.grad}`);
      assert.equal(d.grad !== 0, flowDapo, `DAPO grad ${d.grad}`);
      if (flowSym) assertClose([s.grad], [-a], 1e-12);
    });
  }
  test("dual-clip c=3: ρ=5, A=−1 → 5.0 plain, 3.0 dual-clipped (zero grad)", () => {
    const plain = clipLossAndGrad(5, -1, 0.2, 0.2);
    const dual = clipLossAndGrad(5, -1, 0.2, 0.2, 3);
    assertClose([plain.loss, dual.loss, dual.grad], [5.0, 3.0, 0], 1e-12);
    assert.equal(dual.metrics["clip/dual_ratio"], 1);
  });
  test("clip metrics: low/high/region fractions over valid tokens", () => {
    const out = tidy(() => {
      const r = ppoClip(
        {
          ratio: f64([[1.5, 0.5, 1.0, 0.5]]),
          advantages: f64([[1, -1, 1, -1]]),
          mask: f64([[1, 1, 1, 0]]),
        },
        { low: 0.2, high: 0.2 },
      );
      return r.metrics;
    });
    assertClose(
      [out["clip/low_ratio"] as number, out["clip/high_ratio"] as number, out["clip/region_ratio"] as number],
      [1 / 3, 1 / 3, 2 / 3],
      1e-12,
    );
  });
});

describe("D.4 KL estimators", () => {
  const rows: [number, number, number, number, number][] = [
    [-1.0, -1.5, 0.5, 0.125, 0.1065307],
    [-1.0, -0.5, -0.5, 0.125, 0.1487213],
    [-2.0, -2.0, 0, 0, 0],
    // biome-ignore lint/suspicious/noApproximativeNumericConstant: the D.4 vector as printed (7 digits)
    [Math.log(0.5), Math.log(0.25), 0.6931472, 0.2402265, 0.1931472],
  ];
  test("k1, k2, k3 values", () => {
    tidy(() => {
      const lp = f64(rows.map((r) => r[0]));
      const ref = f64(rows.map((r) => r[1]));
      assertClose(
        klEstimate(lp, ref, "k1").toArray(),
        rows.map((r) => r[2]),
        1e-6,
        "k1",
      );
      assertClose(
        klEstimate(lp, ref, "k2").toArray(),
        rows.map((r) => r[3]),
        1e-6,
        "k2",
      );
      assertClose(
        klEstimate(lp, ref, "k3").toArray(),
        rows.map((r) => r[4]),
        1e-6,
        "k3",
      );
      // "+" forms: value of the named estimator
      assertClose(
        klEstimate(lp, ref, "k3+").toArray(),
        rows.map((r) => r[4]),
        1e-6,
        "k3+",
      );
      assertClose(
        klEstimate(lp, ref, "k1+").toArray(),
        rows.map((r) => r[2]),
        1e-6,
        "k1+",
      );
    });
  });
  test("k3+ has the gradient of k2 (ℓ − ℓ_ref)", () => {
    tidy(() => {
      const lp = f64(rows.map((r) => r[0])).requireGrad();
      const ref = f64(rows.map((r) => r[1]));
      klEstimate(lp, ref, "k3+").sum().backward();
      assertClose(
        (lp.grad as Tensor).toArray(),
        rows.map((r) => r[0] - r[1]),
        1e-12,
      );
    });
  });
  test("KL in the reward: −β(ℓ_old − ℓ_ref), masked, no grad", () => {
    tidy(() => {
      const r = klInReward(f64([[-1, -2]]), f64([[-1.5, -2]]), f64([[1, 0]]), 0.1);
      assertClose(r.toArray(), [-0.05, 0], 1e-12);
      assert.equal(r.requiresGrad, false);
    });
  });
  test("β schedules (GRPO-D design choice)", () => {
    const s = { start: 0, end: 0.04, steps: 100 };
    assertClose(
      [
        betaAt(0.04, 7),
        betaAt({ kind: "linear", ...s }, 50),
        betaAt({ kind: "linear", ...s }, 500),
        betaAt({ kind: "cosine", ...s }, 50),
        betaAt({ kind: "exponential", start: 0.01, end: 0.04, steps: 100 }, 50),
        betaAt({ kind: "constant", ...s }, 50),
      ],
      [0.04, 0.02, 0.04, 0.02, 0.02, 0],
      1e-12,
    );
  });
});

describe("D.5 GSPO sequence ratio", () => {
  const diffs = [0.1, -0.2, 0.05, 0.3];
  test("s = exp(mean log-ratio) = 1.0644945", () => {
    tidy(() => {
      const r = sequenceRatio({ logprobs: f64([diffs]), oldLogprobs: f64([[0, 0, 0, 0]]), mask: f64([[1, 1, 1, 1]]) });
      assertClose(r.ratio.toArray(), [1.0644945, 1.0644945, 1.0644945, 1.0644945], 1e-7);
    });
  });
  for (const [a, expected, flows] of [
    [1, -1.0004, false],
    [-1, 1.0644945, true],
  ] as const) {
    test(`A=${a}: loss ${expected} (${flows ? "unclipped" : "clipped, zero grad"})`, () => {
      tidy(() => {
        const lp = f64([diffs]).requireGrad();
        const batch: LossBatch = {
          logprobs: lp,
          oldLogprobs: f64([[0, 0, 0, 0]]),
          advantages: f64([a]),
          mask: f64([[1, 1, 1, 1]]),
          groupIndex: Int32Array.from([0]),
        };
        const cfg = { ratio: { level: "sequence" as const }, gate: { type: "clip" as const, low: 3e-4, high: 4e-4 } };
        const { loss, metrics } = computePolicyLoss(cfg, batch, globalCounts(batch.mask));
        assertClose([loss.item()], [expected], 1e-7);
        loss.backward();
        const g = (lp.grad as Tensor).toArray();
        if (flows)
          assertClose(
            g,
            [0, 0, 0, 0].map(() => (-a * 1.0644945) / 4),
            1e-7,
          );
        else assertClose(g, [0, 0, 0, 0], 0);
        assert.equal(metrics["clip/high_ratio"], a > 0 ? 1 : 0);
      });
    });
  }
});

describe("D.12 SAPO gate", () => {
  const rhos = [1.0, 1.2, 0.8, 2.0];
  const table: Record<string, [number[], number[]]> = {
    "1": [
      [2.0, 2.199336, 1.800664, 2.9242343],
      [1.0, 0.9900663, 0.9900663, 0.7864477],
    ],
    "1.05": [
      [1.9047619, 2.1040301, 1.7054937, 2.8219996],
      [1.0, 0.9890555, 0.9890555, 0.7681098],
    ],
  };
  for (const [tau, [f, fp]] of Object.entries(table)) {
    test(`τ=${tau}: f(ρ) and f'(ρ) = 4σ(1−σ)`, () => {
      tidy(() => {
        const r = f64(rhos).requireGrad();
        const t = Number(tau);
        const out = sapoGate(
          { ratio: r, advantages: f64([1, 1, 1, 1]), mask: f64([1, 1, 1, 1]) },
          { tauPos: t, tauNeg: 9 },
        );
        assertClose(
          out.loss.toArray(),
          f.map((x) => -x),
          1e-6,
          "value",
        );
        out.loss.sum().backward();
        assertClose(
          (r.grad as Tensor).toArray(),
          fp.map((x) => -x),
          1e-6,
          "derivative",
        );
      });
    });
  }
  test("τ_neg applies to A ≤ 0", () => {
    tidy(() => {
      const out = sapoGate({ ratio: f64([1.2]), advantages: f64([-1]), mask: f64([1]) }, { tauPos: 1, tauNeg: 1.05 });
      assertClose(out.loss.toArray(), [2.1040301], 1e-6);
    });
  });
});

describe("D.13 DisCO", () => {
  const scores = [-0.5, -0.7, -1.0, -1.2];
  const rewards = Float64Array.from([1, 1, 0, 0]);
  const groups = Int32Array.from([0, 0, 0, 0]);
  test("DisCO-b J = 0.5; DisCO (τ=10, log-mean-exp) J = 0.4995", () => {
    tidy(() => {
      const s = f64(scores);
      const b = discoObjective(s, rewards, groups, { form: "b", tau: 10, positiveThreshold: 0.5 });
      const l = discoObjective(s, rewards, groups, { form: "lse", tau: 10, positiveThreshold: 0.5 });
      assertClose([b.sum.item(), l.sum.item(), b.questions], [0.5, 0.4995, 1], 1e-6);
    });
  });
  test("squared-hinge KL penalty: inactive below δ, coefficient 0.1 above", () => {
    tidy(() => {
      const k1 = f64([5e-5]).requireGrad();
      const p1 = discoKlPenalty(k1.sum(), 1e3, 1e-4);
      p1.backward();
      assertClose([p1.item(), (k1.grad as Tensor).item()], [0, 0], 0);
      const k2 = f64([2e-4]).requireGrad();
      const p2 = discoKlPenalty(k2.sum(), 1e3, 1e-4);
      p2.backward();
      // value 0.1·2e-4; gradient = d/dKL (β/2)(KL − δ)² = β(KL − δ) = 0.1
      assertClose([p2.item(), (k2.grad as Tensor).item()], [2e-5, 0.1], 1e-12);
      assertClose([(1e3 / 2) * (2e-4 - 1e-4) ** 2], [5e-6], 1e-15);
    });
  });
  test("disco loss = −J / #questions, groups without both kinds count in the denominator", () => {
    tidy(() => {
      // question 0: the vector above (scores as constant per-token log-probs); question 1: all negative
      const lp = f64([
        [-0.5, -0.5],
        [-0.7, -0.7],
        [-1.0, -1.0],
        [-1.2, -1.2],
        [-0.3, -0.3],
        [-0.4, -0.4],
      ]);
      const batch: LossBatch = {
        logprobs: lp,
        oldLogprobs: lp,
        advantages: f64([0, 0, 0, 0, 0, 0]),
        mask: f64([
          [1, 1],
          [1, 1],
          [1, 1],
          [1, 1],
          [1, 1],
          [1, 1],
        ]),
        groupIndex: Int32Array.from([0, 0, 0, 0, 1, 1]),
        rewards: Float64Array.from([1, 1, 0, 0, 0, 0]),
      };
      const out = discoLoss(
        {
          batch,
          advantages: f64([[0, 0]]),
          tokenLogRatio: f64([[0, 0]]),
          counts: { tokens: 12, sequences: 6, groups: 2 },
        },
        { score: "logL", form: "b", tau: 10, positiveThreshold: 0.5 },
      );
      assertClose([(out.loss as Tensor).item()], [-0.25], 1e-12);
    });
  });
});

describe("D.15 LLDS", () => {
  function run(d1: number[], gate: "action" | "response"): { loss: number; grad: number[] } {
    return tidy(() => {
      const base = -1;
      const lp = f64([
        [base, base, base, base, base],
        [base, base, base, base, base],
      ]).requireGrad();
      const old = f64([d1.map((d) => base + d), [base + 0.5, base + 0.4, base, base, base]]);
      const mask = f64([
        [1, 1, 0, 1, 1],
        [1, 1, 0, 0, 0],
      ]);
      const batch: LossBatch = {
        logprobs: lp,
        oldLogprobs: old,
        advantages: f64([1, -1]),
        mask,
        groupIndex: Int32Array.from([0, 0]),
      };
      const adv = f64([
        [1, 1, 1, 1, 1],
        [-1, -1, -1, -1, -1],
      ]);
      const reg = lldsRegularizer({ lambda: 0.2, gate });
      const out = reg.compute({
        batch,
        ratio: f64([
          [1, 1, 1, 1, 1],
          [1, 1, 1, 1, 1],
        ]),
        tokenLogRatio: tokenLogRatio(batch),
        advantages: adv,
        counts: globalCounts(mask),
        step: 0,
      });
      const loss = out.loss as Tensor;
      loss.backward();
      return { loss: loss.item(), grad: (lp.grad as Tensor).toArray() };
    });
  }
  test("A-gate: 0.2·0.2/6 = 0.0066667; gradient only on the active, dropped token", () => {
    const r = run([0.2, -0.1, 0.7, -0.3, 0.1], "action");
    assertClose([r.loss], [0.0066667], 1e-7);
    assertClose(r.grad, [-0.2 / 6, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1e-12);
  });
  test("R-gate: response Σd = −0.1 → 0", () => {
    assertClose([run([0.2, -0.1, 0.7, -0.3, 0.1], "response").loss], [0], 0);
  });
  test("d = [0.2, −0.1, ·, 0.3, 0.1]: both gates give 0.2·0.6/6 = 0.02", () => {
    assertClose([run([0.2, -0.1, 0.7, 0.3, 0.1], "action").loss], [0.02], 1e-12);
    assertClose([run([0.2, -0.1, 0.7, 0.3, 0.1], "response").loss], [0.02], 1e-12);
  });
});

describe("REC masks and weights (B.33)", () => {
  test("one-side / two-side / ring keep rules and the IS weight", () => {
    tidy(() => {
      // ρ per token: 1.5 (A>0), 0.5 (A<0), 1.5 (A<0), 0.3 (A>0), 3.5 (A<0); ring bounds 0.4 and 3.0
      const rho = [1.5, 0.5, 1.5, 0.3, 3.5];
      const a = [1, -1, -1, 1, -1];
      const lp = f64([[-1, -1, -1, -1, -1]]).requireGrad();
      const batch: LossBatch = {
        logprobs: lp,
        oldLogprobs: f64([rho.map((r) => -1 - Math.log(r))]),
        advantages: f64([a]),
        mask: f64([[1, 1, 1, 1, 1]]),
        groupIndex: Int32Array.from([0]),
      };
      const ctx = {
        batch,
        advantages: f64([a]),
        tokenLogRatio: tokenLogRatio(batch),
        counts: { tokens: 5, sequences: 1 },
      };
      const base = { low: 0.2, high: 0.2, lowPrime: 0.6, highPrime: 2.0, temp: 1 } as const;
      const kept = (mask: "one-side" | "two-side" | "ring") =>
        (recLoss(ctx, { ...base, mask, weight: "none" }).tokenLoss as Tensor).toArray().map((x) => (x === 0 ? 0 : 1));
      assert.deepEqual(kept("one-side"), [0, 0, 1, 1, 1]);
      assert.deepEqual(kept("two-side"), [0, 0, 0, 0, 0]);
      assert.deepEqual(kept("ring"), [0, 0, 0, 1, 1]);
      const out = recLoss(ctx, { ...base, mask: "one-side", weight: "importance_sampling" });
      (out.tokenLoss as Tensor).sum().backward();
      // gradient −A·sg(ρ)·keep
      assertClose((lp.grad as Tensor).toArray(), [0, 0, 1.5, -0.3, 3.5], 1e-12);
      assertClose([out.metrics["rec/masked_ratio"] as number], [0.4], 1e-12);
    });
  });
});

describe("PolicyLoss composition", () => {
  function batch(): LossBatch {
    return {
      logprobs: f64([
        [-1.0, -0.5, -2.0],
        [-0.7, -1.2, -0.1],
      ]).requireGrad(),
      oldLogprobs: f64([
        [-1.1, -0.4, -2.0],
        [-0.7, -1.0, -0.3],
      ]),
      refLogprobs: f64([
        [-1.2, -0.6, -1.5],
        [-0.9, -1.0, -0.2],
      ]),
      advantages: f64([1, -1]),
      mask: f64([
        [1, 1, 1],
        [1, 1, 0],
      ]),
      groupIndex: Int32Array.from([0, 0]),
    };
  }
  test("GRPO loss = seq-mean-token-mean(clip + β·k3), with namespaced metrics", () => {
    tidy(() => {
      const b = batch();
      const { loss, metrics } = computePolicyLoss(
        { regularizers: [{ type: "kl", estimator: "k3", beta: 0.04 }] },
        b,
        globalCounts(b.mask),
      );
      // reference computed by hand from A.3/A.4
      const lp = [
        [-1.0, -0.5, -2.0],
        [-0.7, -1.2],
      ];
      const old = [
        [-1.1, -0.4, -2.0],
        [-0.7, -1.0],
      ];
      const ref = [
        [-1.2, -0.6, -1.5],
        [-0.9, -1.0],
      ];
      const A = [1, -1];
      let total = 0;
      for (let i = 0; i < 2; i++) {
        let s = 0;
        const row = lp[i] as number[];
        row.forEach((l, t) => {
          const rho = Math.exp(l - (old[i] as number[])[t]!);
          const a = A[i] as number;
          const clip = -Math.min(rho * a, Math.min(Math.max(rho, 0.8), 1.2) * a);
          const d = (ref[i] as number[])[t]! - l;
          s += clip + 0.04 * (Math.exp(d) - d - 1);
        });
        total += s / row.length;
      }
      assertClose([loss.item()], [total / 2], 1e-12);
      for (const k of [
        "loss/policy",
        "loss/total",
        "ratio/mean",
        "clip/low_ratio",
        "clip/high_ratio",
        "clip/region_ratio",
        "kl_reg/kl",
        "kl_reg/beta",
      ]) {
        assert.ok(k in metrics, `metric ${k}`);
      }
      assert.equal(metrics["kl_reg/beta"], 0.04);
      assert.ok(!("kl" in metrics) && !("entropy" in metrics), "the trainer's own kl/entropy keys stay free");
    });
  });
  test("R²VPO dual variable: ascent after the step, state round-trip", () => {
    tidy(() => {
      const pl = new PolicyLoss({
        gate: { type: "none" },
        regularizers: [{ type: "r2vpo", delta: 0, eta: 10, lambdaInit: 0 }],
      });
      const b = batch();
      const { metrics } = pl.compute(b, globalCounts(b.mask));
      const v = metrics["r2vpo/var"] as number;
      assert.ok(v > 0);
      pl.endStep();
      const st = pl.state();
      assertClose([(st["0:r2vpo"] as { lambda: number }).lambda], [10 * v], 1e-12);
      const other = new PolicyLoss({
        gate: { type: "none" },
        regularizers: [{ type: "r2vpo", delta: 0, eta: 10, lambdaInit: 0 }],
      });
      other.load(st);
      assert.deepEqual(other.state(), st);
      const skipped = new PolicyLoss({
        gate: { type: "none" },
        regularizers: [{ type: "r2vpo", delta: 0, eta: 10, lambdaInit: 0 }],
      });
      skipped.compute(b, globalCounts(b.mask));
      skipped.endStep(false);
      assert.equal((skipped.state()["0:r2vpo"] as { lambda: number }).lambda, 0, "a skipped step does not move λ");
    });
  });
  test("adaptive entropy coefficient moves toward the target", () => {
    tidy(() => {
      const pl = new PolicyLoss({ regularizers: [{ type: "entropy", coef: 0.01, target: 1.0, lr: 0.1 }] });
      const b = {
        ...batch(),
        entropy: f64([
          [0.5, 0.5, 0.5],
          [0.5, 0.5, 9],
        ]),
      };
      const { metrics } = pl.compute(b, globalCounts(b.mask));
      assertClose([metrics["entropy_reg/entropy"] as number], [0.5], 1e-12);
      pl.endStep();
      assertClose([(pl.state()["0:entropy"] as { coef: number }).coef], [0.01 + 0.1 * 0.5], 1e-12);
    });
  });
  test("no tensors leak from compute", () => {
    const b = batch();
    const counts = globalCounts(b.mask);
    const pl = new PolicyLoss({ regularizers: [{ type: "kl" }, { type: "llds" }] });
    const before = liveTensors();
    for (let i = 0; i < 3; i++) {
      const { loss } = pl.compute(b, counts);
      loss.backward();
      loss.dispose();
    }
    (b.logprobs.grad as Tensor).dispose();
    b.logprobs.grad = null;
    assert.equal(liveTensors(), before);
  });
});
