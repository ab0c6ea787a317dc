// Learning from comparisons (ALGORITHMS.md §G.1–G.4): the preference contract, P3O's shift invariance, DNO's and
// Nash-MP's objectives against a float64 PyTorch oracle, Nash mirror prox on a 3-action intransitive game, and
// SALT's step advantages on a hand-built trajectory graph.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { describe, test } from "node:test";
import { advantageEstimators } from "../../src/algo/advantage.js";
import { saltAdvantages, saltNodes } from "../../src/algo/agent.js";
import type { LossContext } from "../../src/algo/losses.js";
import { exploitability, kl, mirrorDescentStep, mirrorProxStep, winRateOf } from "../../src/algo/nash.js";
import { dnoLoss, dnoPairLoss, nashMpLoss, p3oLoss, p3oPairLoss } from "../../src/algo/preference.js";
import type { RewardBatch } from "../../src/algo/types.js";
import { answerStyle, rpsStylePreference, scorePreferences, verifierPreference } from "../../src/reward/preference.js";
import { createTask } from "../../src/task/index.js";
import { type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { PYTHON, py, runOracle } from "../helpers/oracle.js";

const near = (a: number, b: number, tol = 1e-6, what = "") =>
  assert.ok(Math.abs(a - b) <= tol, `${what} ${a} vs ${b} (tol ${tol})`);
const f64 = (v: number[], shape?: number[]) => tensor(Float64Array.from(v), shape ? { shape } : {});

/** A loss context over [N, T] log-probs (with grad) and the given old/ref log-probs, mask and rewards. */
function context(
  lp: number[][],
  old: number[][],
  ref: number[][],
  mask: number[][],
  rewards: number[],
  groups: number[],
  adv: number[] = rewards.map(() => 0),
): { ctx: LossContext; logprobs: Tensor; dispose: () => void } {
  const N = lp.length;
  const T = (lp[0] as number[]).length;
  const logprobs = f64(lp.flat(), [N, T]).requireGrad();
  const oldT = f64(old.flat(), [N, T]);
  const refT = f64(ref.flat(), [N, T]);
  const m = f64(mask.flat(), [N, T]);
  const a = f64(
    adv.flatMap((x) => new Array<number>(T).fill(x)),
    [N, T],
  );
  const ctx: LossContext = {
    batch: {
      logprobs,
      oldLogprobs: oldT,
      refLogprobs: refT,
      advantages: f64(adv),
      mask: m,
      groupIndex: Int32Array.from(groups),
      rewards: Float64Array.from(rewards),
    },
    advantages: a,
    tokenLogRatio: tidy(() => logprobs.sub(oldT)),
    counts: { tokens: mask.flat().reduce((s, x) => s + x, 0), sequences: N, groups: new Set(groups).size },
  };
  return {
    ctx,
    logprobs,
    dispose: () => {
      for (const t of [logprobs, oldT, refT, m, a, ctx.batch.advantages, ctx.tokenLogRatio]) t.dispose();
    },
  };
}

/** Loss value and gradient w.r.t. the log-probs of a loss over the context. */
function lossAndGrad(
  make: () => ReturnType<typeof context>,
  f: (ctx: LossContext) => { loss?: Tensor; tokenLoss?: Tensor },
) {
  const c = make();
  try {
    const out = f(c.ctx);
    const loss = out.loss ?? tidy(() => (out.tokenLoss as Tensor).mul(c.ctx.batch.mask).sum());
    loss.backward();
    const g = c.logprobs.grad as Tensor;
    const r = { loss: loss.item(), grad: Array.from(g.data() as Float64Array) };
    loss.dispose();
    out.tokenLoss?.dispose();
    g.dispose();
    return r;
  } finally {
    c.dispose();
  }
}

// two groups of 3, T = 3, the last token of row 2 masked
const LP = [
  [-1.2, -0.7, -2.0],
  [-0.3, -1.1, -0.9],
  [-2.2, -0.4, -0.6],
  [-0.8, -0.8, -1.5],
  [-1.0, -0.2, -0.4],
  [-0.5, -1.6, -1.1],
];
const OLD = LP.map((r, i) => r.map((x, t) => x + 0.05 * (((i + 2 * t) % 5) - 2)));
const REF = LP.map((r, i) => r.map((x, t) => x - 0.07 * (((3 * i + t) % 4) - 1.5)));
const MASK = LP.map((r, i) => r.map((_, t) => (i === 2 && t === 2 ? 0 : 1)));
const GROUPS = [0, 0, 0, 1, 1, 1];
const R = [0.9, 0.2, 0.55, 0.1, 0.7, 0.4];

describe("preference contract", () => {
  test("rps_style is intransitive over answer styles; the verifier as a preference", async () => {
    assert.deepEqual(["42", "forty", "-3"].map(answerStyle), ["rock", "paper", "scissors"]);
    const p = rpsStylePreference();
    const s = (a: string, b: string) => p({ prompt: "", a, b, fields: {} }) as number;
    assert.equal(s("1", "-"), 1); // rock beats scissors
    assert.equal(s("-", "x"), 1); // scissors beat paper
    assert.equal(s("x", "1"), 1); // paper beats rock
    assert.equal(s("1", "2"), 0.5);
    const task = createTask("arithmetic", { digits: [1, 1] }, "task");
    const { Rng } = await import("../../src/task/rng.js");
    const prob = task.sample(Rng.fromSeed(1n), "train");
    const v = verifierPreference(task);
    const right = `<answer>${prob.answer}</answer>`;
    assert.equal(
      v({
        prompt: prob.prompt,
        a: right,
        b: "<answer>x</answer>",
        fields: prob.meta,
        answer: prob.answer as string,
        id: prob.id,
      }),
      1,
    );
    assert.equal(
      v({ prompt: prob.prompt, a: right, b: right, fields: prob.meta, answer: prob.answer as string, id: prob.id }),
      0.5,
    );
  });

  test("win rates against the group from pairwise queries (async, failures count as ties)", async () => {
    const prob = { id: "q", prompt: "p", meta: {} };
    const texts = ["1", "x", "-", "1", "7", "boom"];
    let calls = 0;
    const pref = async (s: { a: string; b: string }) => {
      calls++;
      if (s.a === "boom" || s.b === "boom") throw new Error("judge down");
      return rpsStylePreference()({ prompt: "", a: s.a, b: s.b, fields: {} });
    };
    const r = await scorePreferences(
      pref,
      texts.map(() => prob),
      texts,
      Int32Array.from([0, 0, 0, 1, 1, 1]),
    );
    assert.equal(calls, 6); // 3 unordered pairs per group of 3
    assert.equal(r.queries, 6);
    // group 0: rock, paper, scissors → everyone wins one, loses one: ½ each
    assert.deepEqual(Array.from(r.winRates.subarray(0, 3)), [0.5, 0.5, 0.5]);
    // group 1: "1" vs "7" tie; both vs "boom" fail → ½
    assert.deepEqual(Array.from(r.winRates.subarray(3)), [0.5, 0.5, 0.5]);
    assert.equal(r.failures.length, 2);
    const m = r.matrices[0]?.P as Float64Array;
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) if (i !== j) near((m[i * 3 + j] as number) + (m[j * 3 + i] as number), 1);
  });
});

describe("P3O (§G.1)", () => {
  test("pair-loss vectors of ALGORITHMS.md", () => {
    const cases: [number, number, number, number, number][] = [
      [1, 1.3, 0.9, -0.15, -0.6],
      [1, 1, 1, 0, -0.5],
      [-2, 1.1, 0.95, 0.15, 1.1578947],
      [1, 0.7, 1, 0.15, -0.35],
    ];
    for (const [d, r1, r2, v1, v2] of cases) {
      const [a, b, c] = [f64([d]), f64([Math.log(r1)]), f64([Math.log(r2)])];
      const l1 = p3oPairLoss(a, b, c, { variant: "separate", clip: 0.2 });
      const l2 = p3oPairLoss(a, b, c, { variant: "joint", clip: 0.2 });
      near(l1.item(), v1, 1e-6, "V1");
      near(l2.item(), v2, 1e-6, "V2");
      for (const t of [a, b, c, l1, l2]) t.dispose();
    }
  });

  test("softmax bandit: at ρ = 1 both variants give the pairwise policy gradient [−0.75, 0, 0.75]", () => {
    for (const variant of ["separate", "joint"] as const) {
      const theta = f64([0.2, -0.1, 0.4]).requireGrad();
      const loss = tidy(() => {
        const lsm = theta.logSoftmax(-1);
        const l1 = lsm.slice(0, 0, 1);
        const l2 = lsm.slice(0, 2, 3);
        return p3oPairLoss(f64([1.5]), l1.sub(l1.detach()), l2.sub(l2.detach()), { variant, clip: 0.2 }).sum();
      });
      loss.backward();
      const g = Array.from((theta.grad as Tensor).data() as Float64Array);
      [-0.75, 0, 0.75].forEach((e, i) => near(g[i] as number, e, 1e-9, `${variant} grad ${i}`));
      (theta.grad as Tensor).dispose();
      loss.dispose();
      theta.dispose();
    }
  });

  test("adding a prompt-dependent constant to the rewards leaves the loss and gradient unchanged", () => {
    for (const variant of ["separate", "joint"] as const) {
      for (const beta of [0, 0.1]) {
        const p = { variant, clip: 0.2, beta };
        const base = lossAndGrad(
          () => context(LP, OLD, REF, MASK, R, GROUPS),
          (c) => p3oLoss(c, p),
        );
        const shifted = R.map((r, i) => r + (GROUPS[i] === 0 ? 37.5 : -12.25));
        const moved = lossAndGrad(
          () => context(LP, OLD, REF, MASK, shifted, GROUPS),
          (c) => p3oLoss(c, p),
        );
        near(moved.loss, base.loss, 1e-12, "loss");
        moved.grad.forEach((g, k) => near(g, base.grad[k] as number, 1e-12, `grad ${k}`));
        assert.ok(
          base.grad.some((g) => Math.abs(g) > 1e-4),
          "a gradient",
        );
        // a row-dependent shift changes it
        const skew = lossAndGrad(
          () =>
            context(
              LP,
              OLD,
              REF,
              MASK,
              R.map((r, i) => r + i),
              GROUPS,
            ),
          (c) => p3oLoss(c, p),
        );
        assert.ok(Math.abs(skew.loss - base.loss) > 1e-6);
      }
    }
  });
});

describe("DNO (§G.2)", () => {
  test("loss vectors of ALGORITHMS.md", () => {
    const d = f64([0.1 * (-10 + 11 - (-12 + 11.5))]);
    near(d.item(), 0.15, 1e-12);
    const hard = dnoPairLoss(d, f64([1]));
    const soft = dnoPairLoss(d, f64([1 / (1 + Math.exp(-0.5))]));
    near(hard.item(), 0.620957, 1e-6, "DNO-Prct");
    near(soft.item(), 0.6775881, 1e-6, "DNO");
    for (const t of [d, hard, soft]) t.dispose();
  });
});

const haveOracle = existsSync(PYTHON);
describe("DNO and Nash-MP against a float64 PyTorch oracle", { skip: haveOracle ? false : `${PYTHON} missing` }, () => {
  const inputs = {
    lp: py(f64(LP.flat(), [6, 3])),
    old: py(f64(OLD.flat(), [6, 3])),
    ref: py(f64(REF.flat(), [6, 3])),
    mask: py(f64(MASK.flat(), [6, 3])),
    r: py(f64(R)),
  };
  const ADV = [0.3, -0.4, 0.1, -0.2, 0.35, -0.15];
  const DNO_PY = (anchor: string, eta: number, hard: boolean) => `
lp, m, r = lp, mask, r
s = ((lp - ${anchor}) * m).sum(-1) * ${eta}
groups = [[0, 1, 2], [3, 4, 5]]
total = 0
for g in groups:
    terms = []
    for a in range(len(g)):
        for b in range(a + 1, len(g)):
            i, j = g[a], g[b]
            d = s[i] - s[j]
            if ${hard ? "True" : "False"}:
                if r[i] == r[j]:
                    continue
                if r[i] < r[j]:
                    d = -d
                terms.append(-F.logsigmoid(d))
            else:
                t = torch.sigmoid(r[i] - r[j])
                terms.append(-(t * F.logsigmoid(d) + (1 - t) * F.logsigmoid(-d)))
    total = total + sum(terms) / 3
out = total / len(groups)
`;
  const NASH_PY = (beta: number, eta: number) => `
def k3(a, b):
    d = b - a
    return torch.exp(d) - d - 1
A = torch.tensor(${JSON.stringify(ADV)}, dtype=torch.float64).unsqueeze(1)
out = ((-A * lp + ${beta} * k3(lp, ref) + (1 / ${eta}) * k3(lp, old)) * mask).sum()
`;
  const cases = [
    {
      id: "dno-soft-old",
      code: DNO_PY("old", 0.1, false),
      f: (c: LossContext) => dnoLoss(c, { eta: 0.1, target: "soft", margin: 0, anchor: "old" }),
    },
    {
      id: "dno-soft-ref",
      code: DNO_PY("ref", 0.5, false),
      f: (c: LossContext) => dnoLoss(c, { eta: 0.5, target: "soft", margin: 0, anchor: "ref" }),
    },
    {
      id: "dno-hard",
      code: DNO_PY("old", 0.1, true),
      f: (c: LossContext) => dnoLoss(c, { eta: 0.1, target: "hard", margin: 0, anchor: "old" }),
    },
    { id: "nash-mp", code: NASH_PY(0.1, 2), f: (c: LossContext) => nashMpLoss(c, { beta: 0.1, eta: 2 }) },
    { id: "nash-mp-b", code: NASH_PY(0.01, 0.5), f: (c: LossContext) => nashMpLoss(c, { beta: 0.01, eta: 0.5 }) },
  ];
  const oracle = runOracle(
    cases.map((c) => ({
      id: c.id,
      code: c.code,
      inputs,
      grad: ["lp"],
      gouts: [{ shape: [], dtype: "f64", values: Float64Array.of(1) }],
    })),
  );
  for (const c of cases) {
    test(`${c.id}: loss and gradient`, () => {
      const got = lossAndGrad(() => context(LP, OLD, REF, MASK, R, GROUPS, ADV), c.f);
      const want = oracle.get(c.id) as NonNullable<ReturnType<typeof oracle.get>>;
      near(got.loss, want.outs[0]?.values[0] as number, 1e-10, "loss");
      const g = want.grads[0]?.values as Float64Array;
      got.grad.forEach((x, k) => near(x, g[k] as number, 1e-10, `grad ${k}`));
      assert.ok(got.grad.some((x) => Math.abs(x) > 1e-6));
    });
  }
});

describe("Nash mirror prox on a 3-action intransitive game (§G.3)", () => {
  const P = [
    [0.5, 0.9, 0.2],
    [0.1, 0.5, 0.7],
    [0.8, 0.3, 0.5],
  ];
  const unif = [1 / 3, 1 / 3, 1 / 3];
  test("one step from uniform", () => {
    const { half, next } = mirrorProxStep(P, unif, unif, 0.1, 1);
    [0.3432768, 0.3134463, 0.3432768].forEach((x, i) => near(half[i] as number, x, 1e-6, "π½"));
    [0.3404877, 0.3134392, 0.3460731].forEach((x, i) => near(next[i] as number, x, 1e-6, "π1"));
  });
  test("the last iterate converges at β = 0.01 (100 queries), where mirror descent does not", () => {
    const star = [0.2257772, 0.3257067, 0.4485161];
    near(exploitability(P, star, unif, 0.01), 0, 1e-6, "exploitability of π*");
    let pi = unif;
    const first = winRateOf(P, pi, unif);
    for (let k = 0; k < 50; k++) {
      const prev = pi;
      pi = mirrorProxStep(P, pi, unif, 0.01, 2).next;
      // the metrics: win rate against the previous iterate and the reference, KL to the reference
      assert.ok(Number.isFinite(winRateOf(P, pi, prev)) && Number.isFinite(kl(pi, unif)));
    }
    near(first, 0.5, 1e-12);
    const mp = kl(star, pi);
    assert.ok(mp < 1e-3, `KL(π*‖π_50) = ${mp}`);
    let md = unif;
    for (let k = 0; k < 100; k++) md = mirrorDescentStep(P, md, unif, 0.01, 1);
    assert.ok(kl(star, md) > 10 * mp, `MD ${kl(star, md)} vs MP ${mp}`);
    near(winRateOf(P, pi, unif), winRateOf(P, star, unif), 1e-2);
  });
  test("exact policy gradients on softmax logits: the last iterate approaches π*_β", () => {
    // each proximal step solved by gradient ascent on the logits θ of π = softmax(θ) (the policy-gradient
    // approximation of §G.3 with exact gradients): max_π π·P(·≻opp) − β·KL(π‖π_ref) − (1/η)·KL(π‖π_k)
    const beta = 0.1;
    const eta = 2;
    const star = [0.2743506, 0.2792416, 0.4464078];
    const soft = (t: number[]) => {
      const e = t.map((x) => Math.exp(x - Math.max(...t)));
      const z = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / z);
    };
    const solve = (piK: number[], opp: number[]): number[] => {
      const w = P.map((row) => row.reduce((s, p, j) => s + p * (opp[j] as number), 0));
      let th = piK.map(Math.log);
      for (let it = 0; it < 400; it++) {
        const pi = soft(th);
        const gPi = pi.map(
          (x, y) =>
            (w[y] as number) -
            beta * (Math.log(x) - Math.log(1 / 3) + 1) -
            (Math.log(x) - Math.log(piK[y] as number) + 1) / eta,
        );
        const mean = pi.reduce((s, x, y) => s + x * (gPi[y] as number), 0);
        th = th.map((t, y) => t + 2 * (pi[y] as number) * ((gPi[y] as number) - mean));
      }
      return soft(th);
    };
    let pi = unif;
    const kls: number[] = [];
    for (let k = 0; k < 30; k++) {
      const half = solve(pi, pi);
      pi = solve(pi, half);
      kls.push(kl(star, pi));
    }
    assert.ok((kls[29] as number) < 1e-6, `KL(π*‖π_30) = ${kls[29]}`);
    assert.ok((kls[29] as number) < (kls[4] as number) / 100, "the last iterate keeps improving");
  });
});

describe("SALT (§G.4)", () => {
  test("hand-built trajectory graph: shared steps neutral, decisive steps keep their sign", () => {
    const trajs: [string[], number][] = [
      [["search", "click A", "buy"], 1],
      [["search", "click B", "back", "click A", "buy"], 1],
      [["search", "click B", "buy"], 0],
      [["look", "search", "click A", "buy"], 0],
    ];
    const rows: { t: number; s: number; a: string; r: number }[] = [];
    trajs.forEach(([acts, r], t) => {
      acts.forEach((a, s) => {
        rows.push({ t, s, a, r });
      });
    });
    const batch: RewardBatch = {
      rewards: Float64Array.from(rows, (x) => (x.s === trajs[x.t]![0].length - 1 ? x.r : 0)),
      groupIndex: new Int32Array(rows.length),
      trajectoryIndex: Int32Array.from(rows, (x) => x.t),
      stepIndex: Int32Array.from(rows, (x) => x.s),
      observationKey: rows.map(() => "page"),
      actionKey: rows.map((x) => x.a),
      episodeRewards: Float64Array.from(rows, (x) => x.r),
    };
    const a = saltAdvantages(batch, { base: "grpo", baseOptions: {}, node: "prefix" });
    const A = 0.8660254;
    const want = [
      [A / 3, A, A],
      [A / 3, 0, A, A, A],
      [A / 3, 0, -A],
      [-A, -A, -A, -A],
    ].flat();
    want.forEach((w, i) => near(a[i] as number, w, 1e-5, `row ${i}`));
    // nodes: "search" is shared by three trajectories, "search → click B" by two
    const nodes = saltNodes(batch);
    assert.equal(new Set(nodes).size, 3 + 4 + 1 + 4);
    // the registered estimator (rows of steps) gives the same
    const est = advantageEstimators.get("salt");
    const viaRegistry = est.estimate(batch, est.params.parse({}));
    assert.deepEqual(Array.from(viaRegistry.values as Float64Array), Array.from(a));
    // on GiGPO: the node mean of GiGPO's step advantages
    const g = saltAdvantages(batch, { base: "gigpo", baseOptions: { gamma: 1 }, node: "prefix" });
    assert.ok(g.every(Number.isFinite));
  });
});
