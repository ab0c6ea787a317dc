/**
 * GoRL (src/control/gorl.ts): the latent policy's log-probs and the decoder's flow-matching loss (and its
 * gradient) and decoding ODE against PyTorch float64; the reference vectors of ALGORITHMS.md §E.3; the slow
 * timescale moves the decoder and restarts the latent policy; a run through the loop resumes exactly; bad
 * configs fail early.
 */
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { FlowDecoder, GorlPolicy, gorlDecoderSchema, timeEmbedding } from "../../src/control/gorl.js";
import { Rng } from "../../src/task/rng.js";
import { manualSeed, noGrad, type Tensor, tensor, tidy, zeros } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { assertClose, type PyTensor, py, runOracle } from "../helpers/oracle.js";

const TOL = { rtol: 1e-9, atol: 1e-10 };
const root = () => mkdtempSync(join(tmpdir(), "cohort-gorl-"));
const vals = (t: Tensor) => Float64Array.from(t.toArray());

function randomize(ts: Tensor[], rng: Rng, scale: number): void {
  noGrad(() => {
    for (const t of ts) {
      const v = Float64Array.from(
        { length: t.shape.reduce((x, y) => x * y, 1) },
        () => (rng.float() - 0.5) * 2 * scale,
      );
      t.copy_(tensor(v, { shape: [...t.shape], dtype: "f64" }));
    }
  });
}

const decoderPy = (layers: number) => `
def emb(t):
    f = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=torch.float64)
    return torch.cat([torch.cos(t * f), torch.sin(t * f)], 1)
def vel(s, x, t):
    h = torch.cat([(s - obs_mean) / obs_std, x, emb(t)], 1)
${Array.from(
  { length: layers },
  (_, l) => `    h = h @ v_${l}_weight + v_${l}_bias\n${l + 1 < layers ? "    h = torch.nn.functional.silu(h)\n" : ""}`,
).join("")}    return h
`;

function decoderInputs(d: FlowDecoder): Record<string, PyTensor> {
  return Object.fromEntries(d.named().map(([n, t]) => [n.replaceAll(".", "_"), py(t)]));
}

test("gorl: the latent log-prob and entropy match PyTorch float64; actions are tanh of the identity decoder", () => {
  manualSeed(11);
  const p = new GorlPolicy(3, 2, {
    hidden: [6],
    std: "state",
    bounds: { low: [-2, 0], high: [2, 1] },
    decoder: gorlDecoderSchema.parse({}),
    rowsPerStep: 4,
    dtype: "f64",
  });
  try {
    randomize(p.parameters(), Rng.fromSeed(1), 0.6);
    const rng = Rng.fromSeed(2);
    const obsArr = Float64Array.from({ length: 5 * 3 }, () => rng.float() * 4 - 2);
    const s = p.sample(obsArr, rng);
    // identity decoder: a = c + h·tanh(z)
    s.raw.forEach((z, k) => {
      const [c, h] = k % 2 === 0 ? [0, 2] : [0.5, 0.5];
      assert.ok(Math.abs((s.actions[k] as number) - (c + h * Math.tanh(z))) < 1e-12);
    });
    const obs = tensor(obsArr, { shape: [5, 3], dtype: "f64" });
    const z = tensor(s.raw, { shape: [5, 2], dtype: "f64" });
    const r = noGrad(() => p.logProb(obs, z, { entropy: true }));
    const inputs = Object.fromEntries(p.namedParameters().map(([n, t]) => [n.replaceAll(".", "_"), py(t)]));
    const code = `
def net(x, pre, L):
    h = x
    for l in range(L):
        h = h @ globals()[f"{pre}_{l}_weight"] + globals()[f"{pre}_{l}_bias"]
        if l + 1 < L: h = torch.tanh(h)
    return h
d = torch.distributions.Normal(net(obs, "latent_mu", 2), net(obs, "latent_log_std", 2).clamp(-20, 2).exp())
out = (d.log_prob(act).sum(-1), d.entropy().sum(-1))`;
    const res = runOracle([{ id: "lp", code, inputs: { ...inputs, obs: py(obs), act: py(z) } }]).get("lp");
    assert.ok(res);
    assertClose(vals(r.lp), (res.outs[0] as PyTensor).values, TOL, "latent log-prob");
    assertClose(vals(r.entropy as Tensor), (res.outs[1] as PyTensor).values, TOL, "latent entropy");
    assertClose(s.logprobs, vals(r.lp), TOL, "sampled log-prob");
    for (const t of [obs, z, r.lp, r.entropy as Tensor]) t.dispose();
  } finally {
    p.dispose();
  }
});

test("gorl: flow-matching loss, its gradient and the Euler decoder match PyTorch float64 on fixed inputs", () => {
  const d = new FlowDecoder(3, 2, [5, 4], { dtype: "f64", euler: 10 });
  try {
    const rng = Rng.fromSeed(4);
    d.init(rng, Float64Array.of(0.3, -0.2, 1), Float64Array.of(0.5, 2, 1.5));
    noGrad(() => d.active.copy_(tidy(() => zeros([1], { dtype: "f64" }).add(1))));
    randomize(
      d.layers.map((l) => l.b),
      rng,
      0.3,
    );
    const m = 6;
    const mk = (n: number, w: number, f: () => number) =>
      tensor(Float64Array.from({ length: n * w }, f), { shape: [n, w], dtype: "f64" });
    const s = mk(m, 3, () => rng.float() * 2 - 1);
    const a = mk(m, 2, () => rng.float() * 3 - 1.5);
    const eps = mk(m, 2, () => rng.float() * 2 - 1);
    const t = mk(m, 1, () => rng.float());
    const loss = d.fmLoss(s, a, eps, t);
    loss.backward();
    const w0 = d.layers[0]?.w as Tensor;
    const bLast = d.layers.at(-1)?.b as Tensor;
    const ours = { loss: loss.item(), gw: vals(w0.grad as Tensor), gb: vals(bLast.grad as Tensor) };
    const zTest = mk(4, 2, () => rng.float() * 2 - 1);
    const sTest = mk(4, 3, () => rng.float() * 2 - 1);
    const decoded = vals(noGrad(() => d.decode(sTest, zTest)));
    const inputs = { ...decoderInputs(d), s: py(s), a: py(a), eps: py(eps), t: py(t), zt: py(zTest), st: py(sTest) };
    const res = runOracle([
      {
        id: "fm",
        code: `${decoderPy(3)}
xt = t * eps + (1 - t) * a
out = ((vel(s, xt, t) - (eps - a)) ** 2).mean()`,
        inputs,
        grad: ["v_0_weight", "v_2_bias"],
        gouts: [py(tensor([1], { shape: [], dtype: "f64" }))],
      },
      {
        id: "decode",
        code: `${decoderPy(3)}
x = zt
for i in range(10):
    x = x - 0.1 * vel(st, x, torch.full((x.shape[0], 1), 1 - i / 10, dtype=torch.float64))
out = x`,
        inputs,
      },
    ]);
    const fm = res.get("fm");
    assert.ok(fm);
    assertClose([ours.loss], (fm.outs[0] as PyTensor).values, TOL, "flow-matching loss");
    assertClose(ours.gw, (fm.grads[0] as PyTensor).values, TOL, "dL/dW₀");
    assertClose(ours.gb, (fm.grads[1] as PyTensor).values, TOL, "dL/db_last");
    assertClose(decoded, (res.get("decode")?.outs[0] as PyTensor).values, TOL, "Euler decode");
  } finally {
    d.dispose();
  }
});

test("gorl: the reference vectors of ALGORITHMS.md §E.3 (time embedding, CFM loss)", () => {
  const e = vals(noGrad(() => timeEmbedding(tensor([0.25], { shape: [1, 1], dtype: "f64" }))));
  assertClose(
    e,
    [0.9689124, 0.8775826, 0.5403023, -0.4161468, 0.247404, 0.4794255, 0.841471, 0.9092974],
    { rtol: 0, atol: 1e-7 },
    "e(0.25)",
  );
  // a velocity net that predicts [0.4, 0.6] everywhere (all weights 0, last bias set): L = 0.01
  const d = new FlowDecoder(1, 2, [3], { dtype: "f64" });
  try {
    noGrad(() => (d.layers[1] as { b: Tensor }).b.copy_(tensor([0.4, 0.6], { dtype: "f64" })));
    const L = noGrad(() =>
      d
        .fmLoss(
          tensor([0], { shape: [1, 1], dtype: "f64" }),
          tensor([0.5, -0.3], { shape: [1, 2], dtype: "f64" }),
          tensor([1, 0.2], { shape: [1, 2], dtype: "f64" }),
          tensor([0.25], { shape: [1, 1], dtype: "f64" }),
        )
        .item(),
    );
    assert.ok(Math.abs(L - 0.01) < 1e-15, `L = ${L}`);
  } finally {
    d.dispose();
  }
});

test("gorl: the slow timescale stores elite pairs, refits the decoder (its loss falls) and restarts the latent policy", () => {
  manualSeed(5);
  const G = 4;
  const n = 2 * G;
  const p = new GorlPolicy(1, 1, {
    hidden: [8],
    bounds: { low: [-1], high: [1] },
    decoder: gorlDecoderSchema.parse({
      decoderEvery: 2,
      collect: 1,
      elite: 0.5,
      hidden: [16],
      steps: 200,
      batch: 8,
      lr: 3e-3,
    }),
    rowsPerStep: n,
  });
  try {
    const rng = Rng.fromSeed(3);
    const obs = Float64Array.from({ length: n }, () => rng.float() * 2 - 1);
    const s = p.sample(obs, rng);
    const returns = Float64Array.from({ length: n }, (_, i) => i % G); // episodes 2, 3 of each group are elite
    const batch = {
      n,
      T: 1,
      obs,
      raw: s.raw,
      lengths: new Int32Array(n).fill(1),
      returns,
      groupIndex: Int32Array.from({ length: n }, (_, i) => Math.floor(i / G)),
    };
    const before = Object.fromEntries(p.slowState().map(([k, t]) => [k, vals(t)]));
    const latentBefore = p.namedParameters().map(([, t]) => vals(t));
    // step 1 of a 2-step stage: nothing stored (collect = 1 keeps only the stage's last step)
    assert.deepEqual(p.afterUpdate(1, batch, 7), { metrics: {}, reset: false });
    const r = p.afterUpdate(2, batch, 7);
    assert.equal(r.reset, true);
    assert.equal(r.metrics["gorl/stored_pairs"], 4);
    assert.equal(r.metrics["gorl/decoder_pairs"], 4);
    assert.ok(
      (r.metrics["gorl/decoder_loss"] as number) < 0.8 * (r.metrics["gorl/decoder_loss_start"] as number),
      JSON.stringify(r.metrics),
    );
    const keep = vals(p.buffer.keep);
    assert.deepEqual([...keep], [1, 1, 1, 1, 0, 0, 0, 0]);
    // the stored a_pre are the elite episodes' latents (the identity decoder acted)
    const act = vals(p.buffer.act);
    [2, 3, 6, 7].forEach((i, k) => {
      assert.ok(Math.abs((act[k] as number) - (s.raw[i] as number)) < 1e-6);
    });
    const after = Object.fromEntries(p.slowState().map(([k, t]) => [k, vals(t)]));
    for (const k of ["decoder.v.0.weight", "decoder.v.1.weight", "decoder.active", "decoder.obs_mean"])
      assert.notDeepEqual(after[k], before[k], `${k} moved`);
    assert.ok(p.decoder.isActive());
    const latentAfter = p.namedParameters().map(([, t]) => vals(t));
    assert.notDeepEqual(latentAfter[0], latentBefore[0], "a fresh latent policy");
    // an active decoder changes the actions of the same latents
    const s2 = p.sample(obs, Rng.fromSeed(3));
    const direct = s2.raw.map((x) => Math.tanh(x));
    assert.ok(s2.actions.some((a, k) => Math.abs(a - (direct[k] as number)) > 1e-3));
  } finally {
    p.dispose();
  }
});

const gorlRun = (out: string) => ({
  preset: "gorl",
  outputDir: out,
  policy: {
    kind: "gorl",
    hidden: [8],
    critic: { hidden: [8] },
    decoder: { decoderEvery: 2, collect: 2, steps: 20, batch: 16, hidden: [8] },
  },
  env: { name: "bimodal" },
  train: { steps: 5, promptsPerStep: 2, groupSize: 4, innerIterations: 2, lr: 1e-2 },
  eval: { everySteps: 1, problems: 4, temperature: 1 },
  checkpoint: { everySteps: 1 },
});

test("gorl through the loop: stop inside a stage and resume give the same run", async () => {
  const straight = await train(parseTrainConfig(gorlRun(root())), { log: () => {} });
  const dir = root();
  const part = await train(parseTrainConfig(gorlRun(dir)), { log: () => {}, stopAfterStep: 3 });
  assert.equal(part.steps, 3);
  const resumed = await train(parseTrainConfig(gorlRun(dir)), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 5);
  const keys = ["step", "loss", "reward", "grad_norm", "eval_return", "gorl/decoder_loss", "gorl/stored_pairs"];
  const pick = (ms: typeof straight.metrics) => ms.map((m) => keys.map((k) => m[k] ?? null));
  assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
  assert.ok(
    straight.metrics.some((m) => m["gorl/decoder_loss"] !== undefined),
    "the decoder was refit",
  );
});

test("gorl in a hopper run through the loop", async () => {
  const cfg = parseTrainConfig({
    ...gorlRun(root()),
    env: { name: "hopper", options: { horizon: 10 } },
    train: { steps: 2, promptsPerStep: 1, groupSize: 3, innerIterations: 1, lr: 1e-3 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: () => {} });
  // ⌈0.5·3⌉ = 2 elite episodes × 10 steps, from each of the stage's 2 steps
  assert.equal(r.metrics.at(-1)?.["gorl/decoder_pairs"], 40);
});

test("gorl configs fail early with clear errors", () => {
  const base = { outputDir: root(), preset: "gorl", env: { name: "bimodal" } };
  const pol = { kind: "gorl", critic: {} };
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "cartpole" }, policy: pol }),
    /policy\.kind: a gorl policy decodes continuous actions/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "ppo", policy: { kind: "gaussian_mlp", critic: {}, decoder: {} } }),
    /policy\.decoder: applies to policy\.kind gorl only/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, policy: { ...pol, decoder: { decoderEvery: 2, collect: 3 } } }),
    /policy\.decoder\.collect: collect \(3\) must be ≤ decoderEvery \(2\)/,
  );
  assert.throws(() => parseTrainConfig({ ...base, policy: { ...pol, squash: false } }), /policy\.squash/);
  assert.throws(() => parseTrainConfig({ ...base, policy: { ...pol, decoder: { elite: 0 } } }), /elite/);
  assert.throws(() => parseTrainConfig({ ...base, policy: { kind: "gorl" } }), /stepValues.*policy\.critic/);
  assert.throws(
    () => parseTrainConfig({ ...base, policy: { kind: "gaussian_mlp", critic: {} } }),
    /policy\.kind: preset gorl trains a latent policy .*set policy\.kind gorl/,
  );
});
