/**
 * Flow-GRPO's SDE step (ALGORITHMS.md §F.1): the coefficients against the spec's float64 vectors, and the flow_sde
 * policy's log-probs (a random velocity network in float64, mean and sum reductions) with their gradients
 * against an independent PyTorch float64 implementation of the network and the step (/usr/bin/python3).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { PIXELS } from "../../src/generators/digits.js";
import { FLOW_OBS_DIM, FlowSdePolicy } from "../../src/generators/policy.js";
import { LOG_2PI, sdeCoefficients, sigmaSchedule, VelocityNet } from "../../src/generators/velocity.js";
import { Rng } from "../../src/task/rng.js";
import { manualSeed, type Tensor, tensor, tidy, zeroGrad } from "../../src/tensor/index.js";
import { PYTHON, py, runOracle } from "../helpers/oracle.js";

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

test("SDE step: std, mean and the dimension-mean log-prob match ALGORITHMS.md F.1", () => {
  const sig = [1, 0.75, 0.5, 0.25, 0];
  const x = [0.5, -1.0];
  const v = [0.2, 0.4];
  const xn = [0.3, -0.9];
  const want = [
    { std: 0.7, mean: [0.3275, -0.855], lp: -0.5636826 },
    { std: 0.6062178, mean: [0.31525, -0.8795], lp: -0.4188666 },
    { std: 0.35, mean: [0.3765, -1.002], lp: 0.0977076 },
  ];
  want.forEach((w, j) => {
    const k = sdeCoefficients(sig[j] as number, sig[j + 1] as number, 0.7);
    close(k.std, w.std, 1e-7, `transition std ${j}`);
    let lp = 0;
    for (let d = 0; d < 2; d++) {
      const mean = k.xCoef * (x[d] as number) + k.vCoef * (v[d] as number);
      close(mean, w.mean[d] as number, 1e-12, `mean ${j}.${d}`);
      const z = ((xn[d] as number) - mean) / k.std;
      lp += -0.5 * z * z - Math.log(k.std) - 0.5 * LOG_2PI;
    }
    close(lp / 2, w.lp, 1e-7, `log-prob ${j}`);
  });
  // the schedule: linear, and SD3's shift
  assert.deepEqual(Array.from(sigmaSchedule(4)), [1, 0.75, 0.5, 0.25, 0]);
  close(sigmaSchedule(2, 3)[1] as number, 0.75, 1e-12, "shift 3 at u = 0.5");
  assert.throws(() => sdeCoefficients(0.5, 0.6, 0.7), /need 0 ≤ t' < t ≤ 1/);
});

/** obs rows [x, t, t', c] over a schedule, for n latents. */
function observations(n: number, seed: number): Float64Array {
  const rng = Rng.fromSeed(seed);
  const sig = sigmaSchedule(5);
  const obs = new Float64Array(n * FLOW_OBS_DIM);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < PIXELS; k++) obs[i * FLOW_OBS_DIM + k] = 2 * rng.float() - 1;
    const j = i % 5;
    obs[i * FLOW_OBS_DIM + PIXELS] = sig[j] as number;
    obs[i * FLOW_OBS_DIM + PIXELS + 1] = sig[j + 1] as number;
    obs[i * FLOW_OBS_DIM + PIXELS + 2] = i % 10;
  }
  return obs;
}

const ORACLE = `
import math
def vel(x, t, c):
    ang = t.reshape(-1, 1) * freqs
    h = torch.cat([x, t.reshape(-1, 1), torch.sin(ang), torch.cos(ang), emb[c.long()]], 1)
    ws = [w0, w1, w2]; bs = [b0, b1, b2]
    for l in range(3):
        h = h @ ws[l] + bs[l]
        if l < 2: h = F.silu(h)
    return h
x = obs[:, :64]; s = obs[:, 64]; s1 = obs[:, 65]; c = obs[:, 66]
v = vel(x, s, c)
dt = (s1 - s).reshape(-1, 1)
sc = s.reshape(-1, 1)
den = torch.where(sc == 1, 1 - s1.reshape(-1, 1), 1 - sc)
std_t = a * torch.sqrt(sc / den)
mean = x * (1 + std_t**2 * dt / (2 * sc)) + v * (1 + std_t**2 * (1 - sc) / (2 * sc)) * dt
sd = std_t * torch.sqrt(-dt)
lpd = -((act - mean) ** 2) / (2 * sd**2) - torch.log(sd) - 0.5 * math.log(2 * math.pi)
out = lpd.mean(1) if reduce_mean else lpd.sum(1)
`;

test(
  "flow_sde log-probs and their gradients match a PyTorch float64 oracle",
  { skip: existsSync(PYTHON) ? false : `${PYTHON} missing` },
  () => {
    manualSeed(3);
    const net = new VelocityNet({ hidden: 16, layers: 2 }, "f64");
    const n = 10;
    const obsArr = observations(n, 1);
    const reqs = [];
    const ours: { lp: Float64Array; grads: Float64Array[] }[] = [];
    const policies = (["mean", "sum"] as const).map((r) => new FlowSdePolicy(net, { noiseLevel: 0.7, logprob: r }));
    const sampled = policies[0]?.sample(obsArr, Rng.fromSeed(9)) as { raw: Float64Array; logprobs: Float64Array };
    const params = Object.fromEntries(net.params);
    for (const [r, policy] of policies.entries()) {
      zeroGrad(net.params.map(([, p]) => p));
      const res = tidy(() => {
        const obs = tensor(obsArr, { shape: [n, FLOW_OBS_DIM], dtype: "f64" });
        const raw = tensor(sampled.raw, { shape: [n, PIXELS], dtype: "f64" });
        const { lp } = policy.logProb(obs, raw);
        lp.sum().backward();
        return Float64Array.from(lp.data() as Float64Array);
      });
      const names = ["net.2.bias", "net.0.weight", "class_emb"];
      ours.push({
        lp: res,
        grads: names.map((k) => {
          const g = (params[k] as Tensor).grad as Tensor;
          const d = Float64Array.from(g.data() as Float64Array);
          g.dispose();
          return d;
        }),
      });
      const inputs: Record<string, ReturnType<typeof py> | number | boolean> = {
        obs: { shape: [n, FLOW_OBS_DIM], dtype: "f64", values: obsArr },
        act: { shape: [n, PIXELS], dtype: "f64", values: sampled.raw },
        freqs: { shape: [1, 4], dtype: "f64", values: Float64Array.from([1, 2, 4, 8], (f) => f * Math.PI) },
        a: 0.7,
        reduce_mean: r === 0,
        emb: py(params.class_emb as Tensor),
      };
      for (let l = 0; l < 3; l++) {
        inputs[`w${l}`] = py(params[`net.${l}.weight`] as Tensor);
        inputs[`b${l}`] = py(params[`net.${l}.bias`] as Tensor);
      }
      reqs.push({
        id: `r${r}`,
        code: ORACLE,
        inputs,
        grad: ["b2", "w0", "emb"],
        gouts: [{ shape: [n], dtype: "f64", values: new Float64Array(n).fill(1) }],
      });
    }
    const oracle = runOracle(reqs);
    ours.forEach((o, r) => {
      const want = oracle.get(`r${r}`) as NonNullable<ReturnType<typeof oracle.get>>;
      const lpWant = (want.outs[0] as { values: Float64Array }).values;
      o.lp.forEach((v, i) => close(v, lpWant[i] as number, 1e-10, `log-prob ${r}/${i}`));
      o.grads.forEach((g, k) => {
        const gw = (want.grads[k] as { values: Float64Array }).values;
        assert.equal(g.length, gw.length);
        g.forEach((v, i) => close(v, gw[i] as number, 1e-9, `gradient ${k}[${i}] (${r ? "sum" : "mean"})`));
      });
    });
    // the sampler's own log-probs are the training log-probs of its draws
    sampled.logprobs.forEach((v, i) => close(v, ours[0]?.lp[i] as number, 1e-10, `sampler log-prob ${i}`));
    net.dispose();
  },
);

test("the one-step projection x̂_0 = x − t·v and the Euler (greedy) step", () => {
  manualSeed(4);
  const net = new VelocityNet({ hidden: 8, layers: 1 }, "f64");
  const policy = new FlowSdePolicy(net);
  const obs = observations(2, 5);
  const x = obs.subarray(0, PIXELS);
  const t = obs[PIXELS] as number;
  const next = obs[PIXELS + 1] as number;
  const v = tidy(
    () =>
      net
        .forward(
          tensor(x, { shape: [1, PIXELS], dtype: "f64" }),
          tensor([t], { shape: [1], dtype: "f64" }),
          tensor([0], { shape: [1], dtype: "i64" }),
        )
        .data() as Float64Array,
  );
  const proj = policy.project(Float64Array.from(x), Float64Array.of(t), Int32Array.of(0));
  proj.forEach((p, k) => close(p, (x[k] as number) - t * (v[k] as number), 1e-12, `projection ${k}`));
  const greedy = policy.sample(obs, Rng.fromSeed(1), { greedy: true });
  for (let k = 0; k < PIXELS; k++)
    close(greedy.raw[k] as number, (x[k] as number) + (v[k] as number) * (next - t), 1e-12, `Euler step ${k}`);
  assert.throws(() => new FlowSdePolicy(net, { noiseLevel: 0 }), /noiseLevel must be > 0/);
  net.dispose();
});

test("padding rows (t = t' = 0, after an episode's end) give finite log-probs; a bad schedule row fails", () => {
  manualSeed(5);
  const net = new VelocityNet({ hidden: 8, layers: 1 }, "f64");
  const policy = new FlowSdePolicy(net);
  const obs = observations(2, 7);
  obs.fill(0, FLOW_OBS_DIM); // row 1: padding
  const lp = tidy(() => {
    const { lp } = policy.logProb(
      tensor(obs, { shape: [2, FLOW_OBS_DIM], dtype: "f64" }),
      tensor(new Float64Array(2 * PIXELS), { shape: [2, PIXELS], dtype: "f64" }),
    );
    return Array.from(lp.data() as Float64Array);
  });
  assert.ok(lp.every(Number.isFinite), `${lp}`);
  obs[FLOW_OBS_DIM + PIXELS + 1] = 0.5; // t' > t = 0
  assert.throws(
    () =>
      tidy(() =>
        policy.logProb(
          tensor(obs, { shape: [2, FLOW_OBS_DIM], dtype: "f64" }),
          tensor(new Float64Array(2 * PIXELS), { shape: [2, PIXELS], dtype: "f64" }),
        ),
      ),
    /need 0 ≤ t' < t ≤ 1/,
  );
  net.dispose();
});
