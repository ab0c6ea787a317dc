/**
 * Double backward and the policy-gradient optimizers of arXiv 2302.01734: autograd.grad and Hessian-vector
 * products of a policy log-likelihood against PyTorch float64 double backward, HARPG's B̂v against a per-
 * trajectory PyTorch computation and ALGORITHMS.md §E.2's bandit vector, and the update rules against the
 * spec's hand-computed vectors.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { hessianVector, PgOptimizer, pgOptimizerSchema, pgSchedule } from "../../src/control/pg-optim.js";
import { CategoricalMLP, TabularSoftmax } from "../../src/control/policy.js";
import { autograd, noGrad, type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { assertClose, py, runOracle } from "../helpers/oracle.js";

const TOL = { rtol: 1e-9, atol: 1e-11 };
const arr = (t: Tensor) => Float64Array.from(t.toArray());

// a fixed small problem: 5 observations of dimension 3, 4 actions, an MLP with one hidden layer of 6
const OBS = [0.3, -1.2, 0.5, 1.1, 0.4, -0.7, -0.2, 0.9, 1.5, 0.8, -0.3, 0.1, -1.0, 0.6, 0.2];
const ACT = [2, 0, 3, 1, 2];
const ADV = [0.7, -1.3, 0.4, 1.9, -0.6];
const TRAJ = [0, 0, 1, 1, 2]; // trajectory of each step (for B̂v)

function mlp(): CategoricalMLP {
  const p = new CategoricalMLP(3, 4, { hidden: [6], dtype: "f64" });
  noGrad(() => {
    let k = 0;
    for (const [, t] of p.namedParameters()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      const vals = Float64Array.from({ length: n }, (_, i) => Math.sin(1.7 * (i + 1) + 0.3 * k) * 0.8);
      t.copy_(tensor(vals, { shape: t.shape, dtype: "f64" }));
      k++;
    }
  });
  return p;
}

const PY_MLP = `
def lp_fn(W0, b0, W1, b1):
    h = torch.tanh(obs @ W0 + b0)
    return torch.log_softmax(h @ W1 + b1, -1).gather(1, act.long().unsqueeze(1)).squeeze(1)
ps = [W0, b0, W1, b1]
for p in ps: p.requires_grad_(True)
`;

test("autograd.grad and hvp of a policy log-likelihood match PyTorch double backward (float64)", () => {
  const pol = mlp();
  const params = pol.parameters();
  const vs = params.map((p, k) =>
    tensor(
      Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(0.9 * i + k)),
      { shape: p.shape, dtype: "f64" },
    ),
  );
  const { g, h, gv } = tidy(() => {
    const obs = tensor(OBS, { shape: [5, 3], dtype: "f64" });
    const act = tensor(ACT, { shape: [5], dtype: "i64" });
    const lp = pol.logProb(obs, act).lp;
    const f = lp.mul(tensor(ADV, { shape: [5], dtype: "f64" })).sum();
    const g1 = autograd.grad([f], params, { retainGraph: true });
    // a vector-valued output with gradOutputs
    const gv1 = autograd.grad([lp], params, {
      gradOutputs: [tensor(ADV, { shape: [5], dtype: "f64" })],
      retainGraph: true,
    });
    const h1 = autograd.hvp(f, params, vs);
    return { g: g1.map(arr), h: h1.map(arr), gv: gv1.map(arr) };
  });
  // no gradient accumulated into .grad
  for (const p of params) assert.equal(p.grad, null);
  const names = ["W0", "b0", "W1", "b1"];
  const inputs: Record<string, ReturnType<typeof py>> = {
    obs: py(tensor(OBS, { shape: [5, 3], dtype: "f64" })),
    act: py(tensor(ACT, { shape: [5], dtype: "f64" })),
    adv: py(tensor(ADV, { shape: [5], dtype: "f64" })),
  };
  params.forEach((p, k) => {
    inputs[names[k] as string] = py(p.detach());
    inputs[`v${k}`] = py(vs[k] as Tensor);
  });
  const res = runOracle([
    {
      id: "hvp",
      code: `${PY_MLP}
f = (lp_fn(*ps) * adv).sum()
g = torch.autograd.grad(f, ps, create_graph=True)
hv = torch.autograd.grad(sum((gi * vi).sum() for gi, vi in zip(g, [v0, v1, v2, v3])), ps)
out = [x.detach() for x in g] + list(hv)`,
      inputs,
    },
  ]).get("hvp");
  const outs = res?.outs ?? [];
  for (let k = 0; k < 4; k++) {
    assertClose(g[k] as Float64Array, (outs[k] as { values: Float64Array }).values, TOL, `grad ${names[k]}`);
    assertClose(
      gv[k] as Float64Array,
      (outs[k] as { values: Float64Array }).values,
      TOL,
      `grad via gradOutputs ${names[k]}`,
    );
    assertClose(h[k] as Float64Array, (outs[4 + k] as { values: Float64Array }).values, TOL, `hvp ${names[k]}`);
  }
  // the Hessian term is not trivially zero
  assert.ok(h.some((x) => x.some((y) => Math.abs(y) > 1e-3)));
  pol.dispose();
});

test("HARPG's B̂v (paper form) matches a per-trajectory PyTorch double backward", () => {
  const pol = mlp();
  const params = pol.parameters();
  const vs = params.map((p, k) =>
    tensor(
      Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(0.4 * i - k)),
      { shape: p.shape, dtype: "f64" },
    ),
  );
  const G = [1.5, -0.5, 2.0]; // Ĝ per trajectory
  const n = 3;
  const out = tidy(() => {
    const obs = tensor(OBS, { shape: [5, 3], dtype: "f64" });
    const act = tensor(ACT, { shape: [5], dtype: "i64" });
    const lp = pol.logProb(obs, act).lp; // [5]
    const onehot = tensor(
      TRAJ.flatMap((j) => Array.from({ length: n }, (_, i) => (i === j ? 1 : 0))),
      { shape: [5, n], dtype: "f64" },
    );
    const logp = lp.reshape(1, 5).matmul(onehot).reshape(n);
    const phi = logp.mul(tensor(G, { shape: [n], dtype: "f64" }));
    return {
      paper: hessianVector(params, { phi, logp, steps: 5 }, vs, "paper").map(arr),
      code: hessianVector(params, { phi, logp, steps: 5 }, vs, "authorsCode").map(arr),
    };
  });
  const names = ["W0", "b0", "W1", "b1"];
  const inputs: Record<string, ReturnType<typeof py>> = {
    obs: py(tensor(OBS, { shape: [5, 3], dtype: "f64" })),
    act: py(tensor(ACT, { shape: [5], dtype: "f64" })),
    traj: py(tensor(TRAJ, { shape: [5], dtype: "f64" })),
    G: py(tensor(G, { shape: [3], dtype: "f64" })),
  };
  params.forEach((p, k) => {
    inputs[names[k] as string] = py(p.detach());
    inputs[`v${k}`] = py(vs[k] as Tensor);
  });
  const res = runOracle([
    {
      id: "bv",
      code: `${PY_MLP}
vv = [v0, v1, v2, v3]
lp = lp_fn(*ps)
tot = [torch.zeros_like(p) for p in ps]
for i in range(3):
    logp_i = lp[traj == i].sum()
    phi_i = logp_i * G[i]
    gphi = torch.autograd.grad(phi_i, ps, create_graph=True, retain_graph=True)
    glp = torch.autograd.grad(logp_i, ps, retain_graph=True)
    c = sum((a * b).sum() for a, b in zip(glp, vv))
    hv = torch.autograd.grad(sum((a * b).sum() for a, b in zip(gphi, vv)), ps, retain_graph=True)
    for k in range(4):
        tot[k] += (gphi[k].detach() * c + hv[k]) / 3
# the released code's form: Hessian of the mean minus grad(mean phi)·(grad(mean log pi over steps)·v)
phibar = sum(lp[traj == i].sum() * G[i] for i in range(3)) / 3
gbar = torch.autograd.grad(phibar, ps, create_graph=True, retain_graph=True)
gl = torch.autograd.grad(lp.mean(), ps, retain_graph=True)
cbar = sum((a * b).sum() for a, b in zip(gl, vv))
hbar = torch.autograd.grad(sum((a * b).sum() for a, b in zip(gbar, vv)), ps)
code = [hbar[k] - gbar[k].detach() * cbar for k in range(4)]
out = tot + code`,
      inputs,
    },
  ]).get("bv");
  const outs = res?.outs ?? [];
  for (let k = 0; k < 4; k++) {
    assertClose(out.paper[k] as Float64Array, (outs[k] as { values: Float64Array }).values, TOL, `B̂v ${names[k]}`);
    assertClose(out.code[k] as Float64Array, (outs[4 + k] as { values: Float64Array }).values, TOL, `code ${names[k]}`);
  }
  pol.dispose();
});

test("B̂v on the 2-arm softmax bandit of §E.2(a): per action and its expectation ∇²J·v", () => {
  // one state, θ = [0.3, −0.2], r = [1, 0], v = [1, 2]: Φ = log π(a)·r(a)
  const pol = new TabularSoftmax(1, 2, { dtype: "f64" });
  noGrad(() => pol.theta.copy_(tensor([0.3, -0.2], { shape: [1, 2], dtype: "f64" })));
  const v = [tensor([1, 2], { shape: [1, 2], dtype: "f64" })];
  const bv = (a: number, form: "paper" | "authorsCode") =>
    tidy(() => {
      const lp = pol.logProb(tensor([0], { shape: [1], dtype: "i64" }), tensor([a], { shape: [1], dtype: "i64" })).lp;
      const phi = lp.mul(a === 0 ? 1 : 0);
      return arr(hessianVector(pol.parameters(), { phi, logp: lp, steps: 1 }, v, form)[0] as Tensor);
    });
  const b0 = bv(0, "paper");
  const b1 = bv(1, "paper");
  assertClose(b0, [0.0924668, -0.0924668], { rtol: 0, atol: 5e-8 }, "a = 0");
  assertClose(b1, [0, 0], { rtol: 0, atol: 1e-12 }, "a = 1");
  const pi0 = 1 / (1 + Math.exp(-0.5));
  const e = b0.map((x, i) => pi0 * x + (1 - pi0) * (b1[i] as number));
  assertClose(e, [0.0575568, -0.0575568], { rtol: 0, atol: 5e-8 }, "E[B̂v] = ∇²J·v");
  // the released code's form (ascent space = −loss space): a = 0 → −[−0.3775407, 0.3775407]
  assertClose(bv(0, "authorsCode"), [0.3775407, -0.3775407], { rtol: 0, atol: 5e-8 }, "authorsCode");
  pol.dispose();
});

test("step-size and momentum schedules match §E.2(a)", () => {
  const igt = pgOptimizerSchema.parse({ type: "npg_igt" });
  const nh = pgOptimizerSchema.parse({ type: "harpg" });
  const h = pgOptimizerSchema.parse({ type: "harpg", normalized: false });
  const at = (c: typeof igt, k: "gamma" | "eta") => [0, 1, 2, 3].map((t) => pgSchedule(c, t)[k]);
  assertClose(at(igt, "gamma"), [0.1, 0.0666667, 0.05, 0.04], { rtol: 0, atol: 5e-8 });
  assertClose(at(igt, "eta"), [1, 0.7229812, 0.5743492, 0.4804498], { rtol: 0, atol: 5e-8 });
  assertClose(at(nh, "eta"), [1, 2 / 3, 0.5, 0.4], { rtol: 0, atol: 1e-12 });
  assertClose(at(h, "gamma"), [0.1, 0.0816497, 0.0707107, 0.0632456], { rtol: 0, atol: 5e-8 });
});

/** A two-parameter "policy": one tensor θ [2] with a settable gradient g (ascent) = −grad. */
function twoParams(theta: number[]) {
  const p = tensor(theta, { shape: [2], dtype: "f64" }).requireGrad(true);
  const setAscent = (g: number[]) => {
    p.grad = tensor(
      g.map((x) => -x),
      { shape: [2], dtype: "f64" },
    );
  };
  return { p, setAscent };
}

test("N-PG-IGT step of §E.2(a): the iterate, the momentum and the extrapolated point", () => {
  const cfg = pgOptimizerSchema.parse({ type: "npg_igt" }) as Exclude<
    ReturnType<typeof pgOptimizerSchema.parse>,
    { type: "adamw" }
  >;
  // state at t = 1: θ_0 = [0, 0], θ_1 = [0.1, −0.05], d_0 = [0.5, 0.5]; the weights hold θ̃_1
  const eta0 = 1;
  const eta1 = (2 / 3) ** 0.8;
  const ext = (1 - eta0) / eta0; // η_0 = 1: θ̃_1 = θ_1 (the vector's θ̃ uses η_{t−1} = η_1, checked below)
  const { p, setAscent } = twoParams([0.1 + ext * 0.1, -0.05 + ext * -0.05]);
  const opt = new PgOptimizer([p], cfg);
  opt.load({
    tensors: {
      "d.0": tensor([0.5, 0.5], { shape: [2], dtype: "f64" }),
      "prev.0": tensor([0, 0], { shape: [2], dtype: "f64" }),
      "theta.0": tensor([0.1, -0.05], { shape: [2], dtype: "f64" }),
    },
    meta: { kind: "npg_igt", step: 1 },
  });
  setAscent([1, -2]);
  opt.step();
  const st = opt.state();
  assertClose(arr(st.tensors["d.0"] as Tensor), [0.8614906, -1.307453], { rtol: 0, atol: 5e-7 }, "d");
  assertClose(arr(st.tensors["theta.0"] as Tensor), [0.1366804, -0.1056686], { rtol: 0, atol: 5e-7 }, "θ_2");
  assertClose(arr(st.tensors["prev.0"] as Tensor), [0.1, -0.05], TOL, "θ_1");
  // the weights now hold θ̃_2 = θ_2 + ((1 − η_1)/η_1)(θ_2 − θ_1)
  const e = (1 - eta1) / eta1;
  const th2 = [0.1366804, -0.1056686];
  assertClose(
    arr(p.detach()),
    th2.map((x, i) => x + e * (x - [0.1, -0.05][i]!)),
    { rtol: 0, atol: 1e-6 },
    "θ̃_2",
  );
  // the vector's extrapolation itself: θ_{t−1} = 0, θ_t = [0.1, −0.05], η = 0.7229812 → θ̃ = [0.1383162, −0.0691581]
  assertClose([0.1 * (1 + e), -0.05 * (1 + e)], [0.1383162, -0.0691581], { rtol: 0, atol: 5e-8 });
  // evaluation reads θ_2
  assertClose(
    opt.atIterate(() => arr(p.detach())),
    th2,
    { rtol: 0, atol: 5e-7 },
  );
  assert.equal(opt.stepCount, 2);
  opt.dispose();
});

test("N-HARPG step of §E.2(a): momentum with B̂v, θ̂ at b between θ_{t−1} and θ_t, normalised step", () => {
  const cfg = pgOptimizerSchema.parse({ type: "harpg" }) as Exclude<
    ReturnType<typeof pgOptimizerSchema.parse>,
    { type: "adamw" }
  >;
  const { p, setAscent } = twoParams([0.2, 0.4]);
  const seen: Float64Array[] = [];
  // a Hessian batch whose B̂v is exactly [0.2, −0.1] for v = θ_1 − θ_0 = [0.2, 0.4]: Φ = ½ θᵀAθ with A v = Bv,
  // log p constant (no cross term); A = [[1, 0], [0, −0.25]]
  const hessian = (ps: Tensor[]) => {
    seen.push(arr((ps[0] as Tensor).detach()));
    const th = ps[0] as Tensor;
    const a = tensor([1, -0.25], { shape: [2], dtype: "f64" });
    const phi = th.square().mul(a).sum().mul(0.5).reshape(1);
    return { phi, logp: th.mul(0).sum().reshape(1), steps: 1 };
  };
  const opt = new PgOptimizer([p], cfg, { hessian, drawB: () => 0.25 });
  opt.load({
    tensors: {
      "d.0": tensor([0.5, 0.5], { shape: [2], dtype: "f64" }),
      "prev.0": tensor([0, 0], { shape: [2], dtype: "f64" }),
    },
    meta: { kind: "harpg", step: 1 },
  });
  setAscent([1, -2]);
  opt.step();
  assertClose(seen[0] as Float64Array, [0.05, 0.1], TOL, "θ̂ = bθ_1 + (1 − b)θ_0");
  assertClose(arr(opt.state().tensors["d.0"] as Tensor), [0.9, -1.2], TOL, "d");
  // θ_2 = θ_1 + γ_1 d/‖d‖, γ_1 = 0.1·2/3, d/‖d‖ = [0.6, −0.8]
  assertClose(arr(p.detach()), [0.2 + (0.2 / 3) * 0.6, 0.4 - (0.2 / 3) * 0.8], TOL, "θ_2");
  assertClose(arr(opt.state().tensors["prev.0"] as Tensor), [0.2, 0.4], TOL, "θ_1 kept");
  opt.dispose();
});

test("autograd.grad refuses bad input with the op and shapes named", () => {
  const x = tensor([1, 2, 3], { shape: [3], dtype: "f64" }).requireGrad(true);
  const y = tensor([1, 2], { shape: [2], dtype: "f64" }).requireGrad(true);
  tidy(() => {
    const v = x.mul(2);
    assert.throws(() => autograd.grad([v], [x]), /autogradGrad.*not a scalar; pass its gradOutput/s);
    assert.throws(() => autograd.grad([v.sum()], [x, y], { retainGraph: true }), /input 1 .*not used/s);
    assert.deepEqual(
      autograd.grad([v.sum()], [x, y], { allowUnused: true, retainGraph: true }).map((g) => (g ? arr(g) : null)),
      [Float64Array.from([2, 2, 2]), null],
    );
    assert.throws(
      () => autograd.grad([v], [x], { gradOutputs: [tensor([1, 1], { shape: [2], dtype: "f64" })] }),
      /gradOutput 0 is \[2\] f64.*output 0/s,
    );
    assert.throws(() => autograd.grad([v.detach().sum()], [x]), /output 0 .*does not require grad/s);
  });
});
