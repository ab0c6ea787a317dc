/**
 * Hyper++ against the spec's vectors (ALGORITHMS.md §E.6 (a)) and a float64 PyTorch oracle written here from
 * the formulas (torch.sinh/cosh/asinh/acosh, F.softplus with β, torch.special.erf): the exponential maps, the
 * distances, both MLR heads (values and gradients), the whole hyper_mlp policy (log-probs, entropy, gradients
 * also by finite differences), the HL-Gauss targets, loss and value, the shared-encoder critic's loss and
 * gradients, and the feature-norm bound.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  acosh,
  asinh,
  HyperCritic,
  HyperMLP,
  hyperboloidDistance,
  hyperboloidExpmap0,
  hyperboloidMlr,
  lorentzInner,
  poincareDistance,
  poincareExpmap0,
  poincareMlr,
  smoothClamp,
} from "../../src/control/hyper.js";
import { HlGauss, hlGaussSchema } from "../../src/control/value.js";
import { Rng } from "../../src/task/rng.js";
import { manualSeed, noGrad, type Tensor, tensor, tidy, zeroGrad } from "../../src/tensor/index.js";
import { assertParamGradients } from "../helpers/finite-diff.js";
import { assertClose, type PyTensor, py, runOracle } from "../helpers/oracle.js";

const TOL = { rtol: 1e-9, atol: 1e-11 };
const f64 = (values: number[], shape: number[]) => tensor(Float64Array.from(values), { shape, dtype: "f64" });
const vals = (t: Tensor) => Float64Array.from(t.toArray());

/** Uniform values in [lo, hi) from a seeded generator. */
function uniform(rng: Rng, n: number, lo: number, hi: number): number[] {
  return Array.from({ length: n }, () => lo + (hi - lo) * rng.float());
}

const PY_MATH = `
BND = math.log(2 / 2**-52)
def sclamp(y):
    return y - F.softplus(y - BND, beta=50.0) + F.softplus(-BND - y, beta=50.0)
def h_exp(v, c):
    sc = c ** 0.5
    n = v.norm(dim=-1, keepdim=True)
    xs = torch.sinh(sc * n) / (sc * n) * v
    return torch.cat([torch.sqrt((xs * xs).sum(-1, keepdim=True) + 1 / c), xs], -1)
def h_mlr(x, z, r, c):
    sc = c ** 0.5
    zn = z.norm(dim=-1)
    a = -x[:, :1] * torch.sinh(sc * r) * zn + torch.cosh(sc * r) * (x[:, 1:] @ z.T)
    return zn * torch.asinh(sclamp(sc * a / zn)) / sc
def p_exp(v, c):
    sc = c ** 0.5
    n = v.norm(dim=-1, keepdim=True)
    return torch.tanh(sc * n) * v / (sc * n)
def p_mlr(x, z, r, c):
    sc = c ** 0.5
    zn = z.norm(dim=-1)
    lam = 2 / (1 - c * (x * x).sum(-1, keepdim=True))
    arg = lam * sc * (x @ z.T) / zn * torch.cosh(2 * sc * r) - (lam - 1) * torch.sinh(2 * sc * r)
    return 2 * zn / sc * torch.asinh(sclamp(arg))
def h_dist(x, y, c):
    inner = -x[:, 0] * y[:, 0] + (x[:, 1:] * y[:, 1:]).sum(-1)
    return torch.acosh(-c * inner) / c ** 0.5
def p_dist(x, y, c):
    num = 2 * c * ((x - y) ** 2).sum(-1)
    den = (1 - c * (x * x).sum(-1)) * (1 - c * (y * y).sum(-1))
    return torch.acosh(1 + num / den) / c ** 0.5
def hl_probs(y, bins, lo, hi, smoothing):
    sigma = smoothing * (hi - lo) / bins
    edges = torch.linspace(lo, hi, bins + 1, dtype=torch.float64)
    cdf = torch.special.erf((edges - y.clamp(lo, hi).unsqueeze(-1)) / (math.sqrt(2.0) * sigma))
    return (cdf[..., 1:] - cdf[..., :-1]) / (cdf[..., -1] - cdf[..., 0]).unsqueeze(-1)
`;

test("hyper: the spec's vectors (hyperboloid exp₀ and MLR, Poincaré exp₀, feature scaling)", () => {
  const v = f64([0.3, -0.4], [1, 2]);
  const x = hyperboloidExpmap0(v, 1);
  assertClose(vals(x), [1.127626, 0.3126572, -0.4168762], { rtol: 0, atol: 5e-7 }, "exp₀");
  assertClose(vals(lorentzInner(x, x)), [-1], { rtol: 0, atol: 1e-12 }, "⟨x, x⟩_L");
  const s = hyperboloidMlr(x, f64([1, 0.5, -0.2, 0.8], [2, 2]), f64([0.1, -0.3], [2]), 1);
  assertClose(vals(s), [-0.0215407, -0.1302828], { rtol: 0, atol: 5e-8 }, "scores");
  assertClose(vals(poincareExpmap0(v, 1)), [0.2772703, -0.3696937], { rtol: 0, atol: 5e-8 }, "Poincaré exp₀");

  // h = [2, −1, 0.5, 0], w = [0.1, 0.2, −0.3, 0.4], b = 0 → v = [0.4126086, −0.3082125, 0.1800982, 0]
  const p = new HyperMLP(4, 2, { hidden: [], hyper: { featureDim: 4 }, dtype: "f64" });
  const named = Object.fromEntries(p.namedParameters());
  noGrad(() => {
    (named["enc.0.weight"] as Tensor).copy_(f64([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], [4, 4]));
    (named["enc.0.bias"] as Tensor).copy_(f64([0, 0, 0, 0], [4]));
    (named["scale.0.weight"] as Tensor).copy_(f64([0.1, 0.2, -0.3, 0.4], [4, 1]));
    (named["scale.0.bias"] as Tensor).copy_(f64([0], [1]));
  });
  const feat = noGrad(() => p.features(f64([2, -1, 0.5, 0], [1, 4])));
  assertClose(vals(feat), [0.4126086, -0.3082125, 0.1800982, 0], { rtol: 0, atol: 5e-7 }, "scaled features");
  assertClose([p.normBound], [1.8317808], { rtol: 0, atol: 5e-8 }, "atanh(0.95)");
});

test("hyper: asinh, acosh and the smooth clamp", () => {
  const y = f64([-40, -3, -1e-9, 0, 2e-9, 0.7, 30], [7]);
  assertClose(vals(asinh(y)), vals(y).map(Math.asinh), { rtol: 1e-14, atol: 1e-15 }, "asinh");
  const a = f64([1, 1.5, 10], [3]);
  assertClose(vals(acosh(a)).slice(1), [Math.acosh(1.5), Math.acosh(10)], { rtol: 1e-14, atol: 0 }, "acosh");
  const c = vals(smoothClamp(f64([-100, -5, 0, 5, 36, 100], [6])));
  assertClose(c.slice(1, 4), [-5, 0, 5], { rtol: 0, atol: 1e-15 }, "identity inside");
  assert.ok(Math.abs((c[0] as number) + 36.7368) < 1e-3 && Math.abs((c[5] as number) - 36.7368) < 1e-3);
  // asinh's gradient at 0 is 1 (no sign() branch losing it)
  const z = f64([0], [1]).requireGrad(true);
  asinh(z).sum().backward();
  assertClose(vals(z.grad as Tensor), [1], { rtol: 0, atol: 1e-15 }, "asinh'(0)");
});

test("hyper: exp maps, distances and MLR heads match PyTorch float64 (values and gradients)", () => {
  const rng = Rng.fromSeed(11);
  const n = 5;
  const d = 3;
  const k = 4;
  const cases = [
    { id: "c=1", c: 1, vScale: 1, zScale: 1 },
    { id: "c=0.7", c: 0.7, vScale: 1.5, zScale: 0.8 },
    // large features and hyperplanes push the asinh argument past the clamp
    { id: "clamped", c: 1.3, vScale: 4, zScale: 3 },
  ];
  const reqs = [];
  const ours = [];
  for (const cs of cases) {
    const v = f64(uniform(rng, n * d, -cs.vScale, cs.vScale), [n, d]);
    const w = f64(uniform(rng, n * d, -0.5, 0.5), [n, d]);
    const z = f64(uniform(rng, k * d, -cs.zScale, cs.zScale), [k, d]);
    const r = f64(uniform(rng, k, -0.5, 0.5), [k]);
    const gH = f64(uniform(rng, n * k, -1, 1), [n, k]);
    const gP = f64(uniform(rng, n * k, -1, 1), [n, k]);
    const gD = f64(uniform(rng, n, -1, 1), [n]);
    const leaves = [v, w, z, r].map((t) => t.detach().clone().requireGrad(true));
    const [lv, lw, lz, lr] = leaves as [Tensor, Tensor, Tensor, Tensor];
    const c = cs.c;
    const hx = hyperboloidExpmap0(lv, c);
    const hy = hyperboloidExpmap0(lw, c);
    const px = poincareExpmap0(lv, c);
    const py_ = poincareExpmap0(lw, c);
    const hs = hyperboloidMlr(hx, lz, lr, c);
    const ps = poincareMlr(px, lz, lr, c);
    const hd = hyperboloidDistance(hx, hy, c);
    const pd = poincareDistance(px, py_, c);
    const obj = hs.mul(gH).sum().add(ps.mul(gP).sum()).add(hd.add(pd).mul(gD).sum());
    obj.backward();
    if (cs.id === "clamped") {
      // sinh(score·√c/‖z_k‖) is the clamped asinh argument: some sit at the bound ln(2/ε) = 36.74
      const sc = vals(hs.detach());
      const zn = noGrad(() => vals(z.square().sum(1).sqrt()));
      const args = sc.map((x, i) => Math.abs(Math.sinh((x * Math.sqrt(c)) / (zn[i % k] as number))));
      assert.ok(
        args.some((a) => a > 36.5),
        `no clamped argument: ${Math.max(...args)}`,
      );
    }
    ours.push({
      outs: [hx, px, hs, ps, hd, pd].map(vals),
      grads: leaves.map((t) => vals(t.grad as Tensor)),
    });
    reqs.push({
      id: cs.id,
      code: `${PY_MATH}
c = ${c}
hx = h_exp(v, c); px = p_exp(v, c)
out = (hx, px, h_mlr(hx, z, r, c), p_mlr(px, z, r, c), h_dist(hx, h_exp(w, c), c), p_dist(px, p_exp(w, c), c))`,
      inputs: { v: py(v), w: py(w), z: py(z), r: py(r) },
      grad: ["v", "w", "z", "r"],
      // the exp maps' own outputs get zero upstream gradient: the objective is the heads' and distances'
      gouts: [
        py(tensor(new Float64Array(n * (d + 1)), { shape: [n, d + 1], dtype: "f64" })),
        py(tensor(new Float64Array(n * d), { shape: [n, d], dtype: "f64" })),
        py(gH),
        py(gP),
        py(gD),
        py(gD),
      ],
    });
  }
  const res = runOracle(reqs);
  const names = ["hyperboloid exp₀", "Poincaré exp₀", "hyperboloid MLR", "Poincaré MLR", "d_H", "d_P"];
  for (const [i, cs] of cases.entries()) {
    const o = res.get(cs.id);
    assert.ok(o);
    const mine = ours[i] as (typeof ours)[number];
    for (const [j, name] of names.entries())
      assertClose(mine.outs[j] as Float64Array, (o.outs[j] as PyTensor).values, TOL, `${cs.id} ${name}`);
    for (const [j, name] of ["v", "w", "z", "r"].entries())
      assertClose(
        mine.grads[j] as Float64Array,
        (o.grads[j] as PyTensor).values,
        { rtol: 1e-8, atol: 1e-10 },
        `${cs.id} ∂/∂${name}`,
      );
  }
});

test("hyper: exp₀ of a tiny tangent vector is accurate and has finite gradients", () => {
  const v = f64([3e-6, -4e-6], [1, 2]).requireGrad(true);
  const x = hyperboloidExpmap0(v, 1);
  const s = Math.sinh(5e-6) / 5e-6;
  assertClose(vals(x).slice(1), [3e-6 * s, -4e-6 * s], { rtol: 1e-15, atol: 0 }, "space part");
  x.sum().backward();
  assert.ok(vals(v.grad as Tensor).every(Number.isFinite));
});

/** Python for the whole hyper_mlp network over its named parameters (dots → underscores). */
function pyPolicy(p: HyperMLP, layers: number): string {
  const o = p.o;
  const enc = Array.from(
    { length: layers },
    (_, l) => `    h = h @ enc_${l}_weight + enc_${l}_bias\n${l + 1 < layers ? "    h = torch.tanh(h)\n" : ""}`,
  ).join("");
  const head =
    o.manifold === "hyperboloid"
      ? "h_mlr(h_exp(v, C), pi_z, pi_r, C)"
      : o.manifold === "poincare"
        ? "p_mlr(p_exp(v, C), pi_z, pi_r, C)"
        : "v @ pi_weight + pi_bias";
  return `${PY_MATH}
C = ${o.curvature}
def features(x):
    h = x
${enc}    h = h * torch.rsqrt((h * h).mean(-1, keepdim=True) + 2 ** -52)
    x = torch.tanh(h) / math.sqrt(${o.featureDim})
    s = torch.sigmoid(x @ scale_0_weight + scale_0_bias)
    return s * (math.atanh(${o.alpha}) / math.sqrt(C)) * x
v = features(obs)
d = torch.distributions.Categorical(logits=${head})
`;
}

function jitter(p: { namedParameters(): [string, Tensor][] }, seed: number, amount = 0.8): void {
  const rng = Rng.fromSeed(seed);
  noGrad(() => {
    for (const [, t] of p.namedParameters()) {
      const v = Float64Array.from(t.toArray(), (x) => x + (rng.float() - 0.5) * amount);
      t.copy_(tensor(v, { shape: [...t.shape], dtype: "f64" }));
    }
  });
}

const inputsOf = (params: [string, Tensor][], prefix = "") =>
  Object.fromEntries(params.map(([n, t]) => [`${prefix}${n.replaceAll(".", "_")}`, py(t)]));

const POLICIES = [
  { name: "hyperboloid", hyper: { manifold: "hyperboloid", featureDim: 4 } },
  { name: "poincare, c = 0.5", hyper: { manifold: "poincare", featureDim: 4, curvature: 0.5 } },
  { name: "euclidean heads", hyper: { manifold: "euclidean", featureDim: 4 } },
] as const;

test("hyper_mlp: log-probs and entropy match PyTorch float64; gradients match finite differences", () => {
  manualSeed(21);
  const n = 6;
  const reqs = [];
  const ours = [];
  for (const [k, c] of POLICIES.entries()) {
    const p = new HyperMLP(3, 4, { hidden: [5], hyper: c.hyper, dtype: "f64" });
    jitter(p, 100 + k);
    const rng = Rng.fromSeed(200 + k);
    const obsArr = Float64Array.from(uniform(rng, n * 3, -2, 2));
    const s = p.sample(obsArr, rng);
    const obs = tensor(obsArr, { shape: [n, 3], dtype: "f64" });
    const act = tensor(s.raw, { shape: [n], dtype: "i64" });
    const r = noGrad(() => p.logProb(obs, act, { entropy: true }));
    ours.push({ lp: vals(r.lp), ent: vals(r.entropy as Tensor), sampled: s.logprobs });
    reqs.push({
      id: c.name,
      code: `${pyPolicy(p, 2)}out = (d.log_prob(act.long()), d.entropy())`,
      inputs: { ...inputsOf(p.namedParameters()), obs: py(obs), act: py(act) },
    });

    // Σ w·log π + Σ u·H by central differences, every parameter
    const w = f64(uniform(rng, n, -1, 1), [n]);
    const u = f64(uniform(rng, n, -0.5, 0.5), [n]);
    const objective = () =>
      tidy(() => {
        const f = p.logProb(obs, act, { entropy: true });
        return f.lp
          .mul(w)
          .sum()
          .add((f.entropy as Tensor).mul(u).sum());
      });
    assertParamGradients(p.namedParameters(), objective, c.name);
  }
  const res = runOracle(reqs);
  for (const [k, c] of POLICIES.entries()) {
    const o = res.get(c.name);
    assert.ok(o);
    const mine = ours[k] as (typeof ours)[number];
    assertClose(mine.lp, (o.outs[0] as PyTensor).values, TOL, `${c.name} log-prob`);
    assertClose(mine.ent, (o.outs[1] as PyTensor).values, TOL, `${c.name} entropy`);
    assertClose(mine.sampled, mine.lp, { rtol: 1e-9, atol: 1e-9 }, `${c.name} sampled log-prob`);
  }
});

test("HL-Gauss: the spec's vectors and PyTorch float64 (targets, cross-entropy and its gradient, value)", () => {
  const hl = new HlGauss(hlGaussSchema.parse({}));
  assertClose([hl.sigma], [0.2941176], { rtol: 0, atol: 5e-8 }, "σ");
  const p = vals(hl.probs(f64([0, 3.3, 12], [3])));
  const row = (i: number) => p.slice(i * 51, (i + 1) * 51);
  assertClose(
    [25, 26, 24].map((b) => row(0)[b] as number),
    [0.4950149, 0.2297424, 0.2297424],
    { rtol: 0, atol: 5e-8 },
  );
  assertClose(
    [33, 34, 32].map((b) => row(1)[b] as number),
    [0.4338844, 0.380888, 0.1058976],
    { rtol: 0, atol: 5e-8 },
  );
  for (let i = 0; i < 3; i++) assertClose([row(i).reduce((a, b) => a + b, 0)], [1], { rtol: 0, atol: 1e-12 });
  const expect = (i: number) => row(i).reduce((a, q, b) => a + q * (hl.centres[b] as number), 0);
  assertClose([expect(0), expect(1), expect(2)], [0, 3.299999, 9.7293543], { rtol: 0, atol: 5e-7 }, "E[p(y)]");
  assertClose(
    vals(hl.crossEntropy(tensor(new Float64Array(51), { shape: [1, 51], dtype: "f64" }), f64([1.7], [1]))),
    [Math.log(51)],
    { rtol: 0, atol: 1e-12 },
    "CE vs zero logits = ln 51",
  );

  // a non-default support, random logits and targets (some outside the support)
  const o = hlGaussSchema.parse({ bins: 7, min: -2, max: 3, smoothing: 0.6 });
  const h7 = new HlGauss(o);
  const rng = Rng.fromSeed(5);
  const logits = f64(uniform(rng, 4 * 7, -2, 2), [4, 7]);
  const y = f64([-2.5, 0.3, 2.9, 5], [4]);
  const gout = f64(uniform(rng, 4, -1, 1), [4]);
  const leaf = logits.detach().clone().requireGrad(true);
  const ce = h7.crossEntropy(leaf, y);
  ce.mul(gout).sum().backward();
  const res = runOracle([
    {
      id: "hl",
      code: `${PY_MATH}
p = hl_probs(y, 7, -2.0, 3.0, 0.6)
centres = (torch.linspace(-2.0, 3.0, 8, dtype=torch.float64)[1:] + torch.linspace(-2.0, 3.0, 8, dtype=torch.float64)[:-1]) / 2
out = (p, -(p * torch.log_softmax(logits, -1)).sum(-1), (torch.softmax(logits, -1) * centres).sum(-1))`,
      inputs: { logits: py(logits), y: py(y) },
      grad: ["logits"],
      gouts: [py(tensor(new Float64Array(28), { shape: [4, 7], dtype: "f64" })), py(gout), py(f64([0, 0, 0, 0], [4]))],
    },
  ]).get("hl");
  assert.ok(res);
  assertClose(vals(h7.probs(y)), (res.outs[0] as PyTensor).values, TOL, "targets");
  assertClose(vals(ce), (res.outs[1] as PyTensor).values, TOL, "cross-entropy");
  assertClose(vals(noGrad(() => h7.value(logits))), (res.outs[2] as PyTensor).values, TOL, "value");
  assertClose(vals(leaf.grad as Tensor), (res.grads[0] as PyTensor).values, TOL, "∂CE/∂logits");
});

test("Hyper++ critic: HL-Gauss loss over the shared encoder matches PyTorch, gradients reach the encoder", () => {
  manualSeed(31);
  const p = new HyperMLP(3, 4, { hidden: [5], hyper: { featureDim: 4 }, dtype: "f64" });
  const critic = new HyperCritic(p, hlGaussSchema.parse({ bins: 9, min: -3, max: 3 }));
  jitter(p, 300);
  jitter({ namedParameters: () => critic.params }, 301);
  const rng = Rng.fromSeed(7);
  const rows = 2;
  const T = 3;
  const obs = f64(uniform(rng, rows * T * 3, -2, 2), [rows * T, 3]);
  const targets = f64([0.5, -1, 4, 2, 0, 0], [rows, T]);
  const mask = f64([1, 1, 1, 1, 0, 0], [rows, T]);
  zeroGrad([...p.parameters(), ...critic.params.map(([, t]) => t)]);
  const loss = critic.loss(obs, targets, mask);
  loss.backward();
  const all: [string, Tensor][] = [
    ...p.namedParameters(),
    ...critic.params.map(([n, t]): [string, Tensor] => [`critic.${n}`, t]),
  ];
  const names = all.map(([n]) => n.replaceAll(".", "_"));
  const res = runOracle([
    {
      id: "critic",
      code: `${pyPolicy(p, 2)}logits = h_mlr(h_exp(v, C), critic_head_z, critic_head_r, C)
p = hl_probs(targets.reshape(-1), 9, -3.0, 3.0, 0.75)
ce = -(p * torch.log_softmax(logits, -1)).sum(-1)
m = mask.reshape(-1)
centres = torch.linspace(-3.0, 3.0, 10, dtype=torch.float64)
centres = (centres[1:] + centres[:-1]) / 2
out = ((ce * m).sum() / m.sum(), (torch.softmax(logits, -1) * centres).sum(-1))`,
      inputs: { ...inputsOf(all), obs: py(obs), targets: py(targets), mask: py(mask) },
      grad: names,
      gouts: [py(f64([1], [])), py(f64(new Array(rows * T).fill(0), [rows * T]))],
    },
  ]).get("critic");
  assert.ok(res);
  // the critic computes in float64 and hands float32 values to the run: compare at float32 precision
  assertClose([loss.item()], (res.outs[0] as PyTensor).values, { rtol: 1e-6, atol: 1e-6 }, "critic loss");
  assertClose(vals(noGrad(() => critic.value(obs))), (res.outs[1] as PyTensor).values, { rtol: 1e-6, atol: 1e-6 });
  for (const [i, [name, t]] of all.entries()) {
    if (name.startsWith("pi.")) {
      // the actor's head is not on the critic's path
      assert.equal(res.grads[i], null);
      continue;
    }
    assertClose(vals(t.grad as Tensor), (res.grads[i] as PyTensor).values, { rtol: 1e-5, atol: 1e-6 }, `∂/∂${name}`);
  }
  assert.ok(
    vals(p.namedParameters()[0]?.[1].grad as Tensor).some((g) => g !== 0),
    "the encoder gets the critic's gradient",
  );
});

test("Hyper++ features: ‖v‖ < atanh(α)/√c for any input and weights; without the scaling it is not bounded", () => {
  manualSeed(41);
  const rng = Rng.fromSeed(3);
  const obs = f64(uniform(rng, 64 * 6, -300, 300), [64, 6]);
  const norms = (hyper: Record<string, unknown>) => {
    const p = new HyperMLP(6, 3, { hidden: [16], hyper: { featureDim: 8, ...hyper }, dtype: "f64" });
    jitter(p, 7, 40);
    const m = p.featureMetrics(obs, null);
    return { max: m["hyper/feature_norm_max"] as number, bound: p.normBound, m };
  };
  for (const c of [1, 0.3, 4])
    for (const alpha of [0.5, 0.95, 0.999]) {
      const r = norms({ curvature: c, alpha });
      assertClose([r.bound], [Math.atanh(alpha) / Math.sqrt(c)], { rtol: 1e-15, atol: 0 });
      assert.ok(r.max < r.bound, `c ${c} α ${alpha}: max ‖v‖ ${r.max} ≥ ${r.bound}`);
      assert.ok(r.max > 0.3 * r.bound, `c ${c} α ${alpha}: the features use the ball (max ${r.max})`);
      assert.equal(r.m["hyper/feature_norm_bound"], r.bound);
    }
  assert.ok(norms({ scaling: "dim" }).max <= 1);
  const free = norms({ scaling: "none", norm: "none" });
  assert.ok(free.max > 2, `unscaled features reach ${free.max}`);
  assert.equal(free.m["hyper/feature_norm_bound"], undefined);
});

test("hyper_mlp: state round-trips every parameter; the scale and heads are parameters", () => {
  manualSeed(51);
  const make = () => new HyperMLP(3, 4, { hidden: [5], hyper: { featureDim: 4 } });
  const p = make();
  const names = p.namedParameters().map(([n]) => n);
  assert.deepEqual(names, [
    "enc.0.weight",
    "enc.0.bias",
    "enc.1.weight",
    "enc.1.bias",
    "scale.0.weight",
    "scale.0.bias",
    "pi.z",
    "pi.r",
  ]);
  const q = make();
  q.load(p.state());
  const obs = Float64Array.from([0.1, 0.2, -0.3, 0.4, 1, -1]);
  assert.deepEqual(q.sample(obs, Rng.fromSeed(9)).logprobs, p.sample(obs, Rng.fromSeed(9)).logprobs);
  const e = new HyperMLP(3, 4, { hidden: [5], hyper: { featureDim: 4, manifold: "euclidean" } });
  assert.deepEqual(
    e
      .namedParameters()
      .map(([n]) => n)
      .slice(-2),
    ["pi.weight", "pi.bias"],
  );
});
