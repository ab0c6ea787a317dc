/**
 * Control policies against a float64 PyTorch oracle (log-probs, entropy, KL, the tanh correction included) and
 * their gradients against central finite differences.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CategoricalMLP,
  GaussianMLP,
  type Policy,
  type PolicySnapshot,
  TabularSoftmax,
} from "../../src/control/policy.js";
import { Rng } from "../../src/task/rng.js";
import { manualSeed, noGrad, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { assertParamGradients } from "../helpers/finite-diff.js";
import { assertClose, type PyTensor, py, runOracle } from "../helpers/oracle.js";

const TOL = { rtol: 1e-9, atol: 1e-10 };

function inputsOf(p: Policy): Record<string, PyTensor> {
  return Object.fromEntries(p.namedParameters().map(([n, t]) => [n.replaceAll(".", "_"), py(t)]));
}

const MLP = (prefix: string, layers: number) =>
  `def ${prefix}_net(x):\n    h = x\n${Array.from(
    { length: layers },
    (_, l) =>
      `    h = h @ ${prefix}_${l}_weight + ${prefix}_${l}_bias\n${l + 1 < layers ? "    h = torch.tanh(h)\n" : ""}`,
  ).join("")}    return h\n`;

/** Random observations [n, d] (state indices for a tabular policy) and actions sampled by the policy. */
function batchFor(p: Policy, n: number, seed: number): { obs: Tensor; raw: Tensor; sampledLp: Float64Array } {
  const rng = Rng.fromSeed(seed);
  const obsArr =
    p.kind === "tabular"
      ? Float64Array.from({ length: n }, () => rng.int(0, (p as TabularSoftmax).states - 1))
      : Float64Array.from({ length: n * p.obsDim }, () => rng.float() * 4 - 2);
  const s = p.sample(obsArr, rng);
  const obs = tensor(obsArr, { shape: p.kind === "tabular" ? [n] : [n, p.obsDim], dtype: "f64" });
  const raw =
    p.action.kind === "discrete"
      ? tensor(s.raw, { shape: [n], dtype: "i64" })
      : tensor(s.raw, { shape: [n, p.action.dim], dtype: "f64" });
  return { obs, raw, sampledLp: s.logprobs };
}

function values(t: Tensor): Float64Array {
  return Float64Array.from(t.toArray());
}

/** Perturbs θ: randomises every parameter a little so that no head starts at exactly zero. */
function jitter(p: Policy, seed: number): void {
  const rng = Rng.fromSeed(seed);
  noGrad(() => {
    for (const [, t] of p.namedParameters()) {
      const v = Float64Array.from(t.toArray(), (x) => x + (rng.float() - 0.5) * 0.8);
      t.copy_(tensor(v, { shape: [...t.shape], dtype: "f64" }));
    }
  });
}

interface Case {
  name: string;
  make: () => Policy;
  /** Python code over obs, act and the parameters that sets out = (lp, ent). */
  code: string;
}

const cases: Case[] = [
  {
    name: "tabular softmax",
    make: () => new TabularSoftmax(5, 3, { dtype: "f64" }),
    code: "logits = theta[obs.long()]\nd = torch.distributions.Categorical(logits=logits)\nout = (d.log_prob(act.long()), d.entropy())",
  },
  {
    name: "categorical MLP",
    make: () => new CategoricalMLP(3, 4, { hidden: [8, 6], dtype: "f64" }),
    code: `${MLP("pi", 3)}d = torch.distributions.Categorical(logits=pi_net(obs))\nout = (d.log_prob(act.long()), d.entropy())`,
  },
  {
    name: "Gaussian MLP, learned std",
    make: () => new GaussianMLP(3, 2, { hidden: [8], std: "learned", dtype: "f64" }),
    code: `${MLP("mu", 2)}m = mu_net(obs)\nd = torch.distributions.Normal(m, log_std.exp().expand_as(m))\nout = (d.log_prob(act).sum(-1), d.entropy().sum(-1))`,
  },
  {
    name: "Gaussian MLP, state-dependent std",
    make: () => new GaussianMLP(3, 2, { hidden: [8], std: "state", dtype: "f64" }),
    code: `${MLP("mu", 2)}${MLP("log_std", 2)}m = mu_net(obs)\nd = torch.distributions.Normal(m, log_std_net(obs).clamp(-20, 2).exp())\nout = (d.log_prob(act).sum(-1), d.entropy().sum(-1))`,
  },
  {
    name: "Gaussian MLP, fixed std",
    make: () => new GaussianMLP(3, 1, { hidden: [8], std: "fixed", initStd: 0.5, dtype: "f64" }),
    code: `${MLP("mu", 2)}m = mu_net(obs)\nd = torch.distributions.Normal(m, torch.full_like(m, 0.5))\nout = (d.log_prob(act).sum(-1), d.entropy().sum(-1))`,
  },
  {
    name: "Gaussian MLP, tanh-squashed into [-2, 2] × [0, 1]",
    make: () =>
      new GaussianMLP(3, 2, { hidden: [8], std: "state", bounds: { low: [-2, 0], high: [2, 1] }, dtype: "f64" }),
    // the change of variables written directly: log N(u) − Σ log(h·(1 − tanh² u))
    code: `${MLP("mu", 2)}${MLP("log_std", 2)}m = mu_net(obs)\nd = torch.distributions.Normal(m, log_std_net(obs).clamp(-20, 2).exp())\nh = torch.tensor([2.0, 0.5], dtype=torch.float64)\nlp = (d.log_prob(act) - torch.log(h * (1 - torch.tanh(act) ** 2))).sum(-1)\nout = (lp, -lp)`,
  },
];

test("policies: log-probs and entropy match PyTorch float64; sampled log-probs match logProb", () => {
  manualSeed(3);
  const reqs = [];
  const ours: { lp: Float64Array; ent: Float64Array; sampled: Float64Array }[] = [];
  for (const [k, c] of cases.entries()) {
    const p = c.make();
    jitter(p, 10 + k);
    const b = batchFor(p, 7, 100 + k);
    const r = noGrad(() => p.logProb(b.obs, b.raw, { entropy: true }));
    ours.push({ lp: values(r.lp), ent: values(r.entropy as Tensor), sampled: b.sampledLp });
    reqs.push({ id: c.name, code: c.code, inputs: { ...inputsOf(p), obs: py(b.obs), act: py(b.raw) } });
  }
  const res = runOracle(reqs);
  for (const [k, c] of cases.entries()) {
    const o = res.get(c.name);
    assert.ok(o, c.name);
    const mine = ours[k] as (typeof ours)[number];
    assertClose(mine.lp, (o.outs[0] as PyTensor).values, TOL, `${c.name} log-prob`);
    assertClose(mine.ent, (o.outs[1] as PyTensor).values, TOL, `${c.name} entropy`);
    assertClose(mine.sampled, mine.lp, { rtol: 1e-9, atol: 1e-9 }, `${c.name} sampled log-prob`);
  }
});

test("policies: KL(π ‖ π_old) matches PyTorch's closed form", () => {
  manualSeed(4);
  const pairs: [string, () => Policy, string][] = [
    [
      "categorical",
      () => new CategoricalMLP(3, 4, { hidden: [5], dtype: "f64" }),
      `${MLP("pi", 2)}P = torch.distributions.Categorical(logits=pi_net(obs))\nQ = torch.distributions.Categorical(logits=old)\nout = torch.distributions.kl_divergence(P, Q)`,
    ],
    [
      "gaussian",
      () => new GaussianMLP(3, 2, { hidden: [5], std: "state", dtype: "f64" }),
      `${MLP("mu", 2)}${MLP("log_std", 2)}P = torch.distributions.Normal(mu_net(obs), log_std_net(obs).clamp(-20, 2).exp())\nQ = torch.distributions.Normal(old_mean, old_log_std.exp())\nout = torch.distributions.kl_divergence(P, Q).sum(-1)`,
    ],
  ];
  const reqs = [];
  const ours: Float64Array[] = [];
  for (const [k, [name, make, code]] of pairs.entries()) {
    const p = make();
    jitter(p, 20 + k);
    const b = batchFor(p, 6, 200 + k);
    const old: PolicySnapshot = p.snapshot(b.obs);
    jitter(p, 30 + k); // the policy moves; the snapshot stays
    ours.push(values(noGrad(() => p.klTo(b.obs, old))));
    const oldIn: Record<string, PyTensor> =
      "logits" in old ? { old: py(old.logits) } : { old_mean: py(old.mean), old_log_std: py(old.logStd) };
    reqs.push({ id: name, code, inputs: { ...inputsOf(p), obs: py(b.obs), ...oldIn } });
  }
  const res = runOracle(reqs);
  for (const [k, [name]] of pairs.entries()) {
    assertClose(ours[k] as Float64Array, (res.get(name)?.outs[0] as PyTensor).values, TOL, `${name} KL`);
  }
});

test("policies: gradients of Σ w·log π + Σ v·H match central finite differences", () => {
  manualSeed(5);
  for (const [k, c] of cases.entries()) {
    const p = c.make();
    jitter(p, 40 + k);
    const b = batchFor(p, 5, 300 + k);
    const w = tensor(
      Float64Array.from({ length: 5 }, (_, i) => 0.3 * i - 0.5),
      { shape: [5], dtype: "f64" },
    );
    const v = tensor(
      Float64Array.from({ length: 5 }, (_, i) => 0.2 - 0.1 * i),
      { shape: [5], dtype: "f64" },
    );
    const objective = () =>
      tidy(() => {
        const r = p.logProb(b.obs, b.raw, { entropy: true });
        return r.lp
          .mul(w)
          .sum()
          .add((r.entropy as Tensor).mul(v).sum());
      });
    assertParamGradients(p.namedParameters(), objective, c.name);
    p.dispose();
  }
});

test("policies: sampling is a function of the seed; state round-trips", () => {
  manualSeed(6);
  const p = new GaussianMLP(2, 1, { hidden: [4], bounds: { low: [-1], high: [1] } });
  const obs = Float64Array.from([0.1, 0.2, -0.3, 0.4]);
  const a = p.sample(obs, Rng.fromSeed(9));
  const b = p.sample(obs, Rng.fromSeed(9));
  assert.deepEqual(a.actions, b.actions);
  for (const x of a.actions) assert.ok(x > -1 && x < 1);
  const q = new GaussianMLP(2, 1, { hidden: [4], bounds: { low: [-1], high: [1] } });
  q.load(p.state());
  assert.deepEqual(q.sample(obs, Rng.fromSeed(9)).logprobs, a.logprobs);
  assert.throws(() => new TabularSoftmax(3, 2).sample(Float64Array.from([5]), Rng.fromSeed(1)), /outside 0..2/);
});
