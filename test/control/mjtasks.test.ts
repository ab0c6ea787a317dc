/**
 * The reacher and hopper MuJoCo models and the bimodal bandit: deterministic under a seed (same seed → the
 * same trajectory, other seeds differ), rewards on hand-set states against values computed by hand, batched
 * stepping of many MjData equal to single environments, and WebAssembly memory released on dispose.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { BimodalEnv, bimodalReward, gaussianExpectedReward } from "../../src/control/bimodal.js";
import { type ControlEnv, controlEnvSpec } from "../../src/control/env.js";
import { HOPPER_XML, HopperTask } from "../../src/control/hopper.js";
import { MjBatch } from "../../src/control/mjbatch.js";
import { compiled } from "../../src/control/mujoco.js";
import { REACHER_XML, ReacherTask } from "../../src/control/reacher.js";
import { Rng } from "../../src/task/rng.js";

async function make(name: string, options: Record<string, unknown> = {}): Promise<() => ControlEnv> {
  const { spec, options: o } = controlEnvSpec(name, options);
  return spec.create(o);
}

/** Observations and rewards of `steps` actions drawn from `actSeed` after reset(seed). */
function rollout(env: ControlEnv, seed: number, steps: number, actSeed: number): number[] {
  const rng = Rng.fromSeed(actSeed);
  const out = [...env.reset(seed)];
  const D = env.action.kind === "continuous" ? env.action.dim : 1;
  for (let t = 0; t < steps; t++) {
    const r = env.step(Float64Array.from({ length: D }, () => rng.float() * 2 - 1));
    out.push(...r.obs, r.reward);
  }
  return out;
}

for (const name of ["reacher", "hopper"]) {
  test(`${name}: the same seed gives the same trajectory, other seeds differ`, async () => {
    const mk = await make(name);
    const a = mk();
    const b = mk();
    try {
      const x = rollout(a, 7, 60, 1);
      assert.ok(x.every(Number.isFinite));
      assert.deepEqual(rollout(b, 7, 60, 1), x, "same seed, same actions");
      assert.deepEqual(rollout(a, 7, 60, 1), x, "a reset restores the start exactly");
      const y = rollout(b, 8, 60, 1);
      assert.notDeepEqual(y.slice(0, a.obsDim), x.slice(0, a.obsDim), "another seed starts elsewhere");
    } finally {
      a.dispose();
      b.dispose();
    }
  });
}

test("reacher: observation and reward on hand-set states", async () => {
  const { mj, model } = await compiled("reacher", REACHER_XML);
  const task = new ReacherTask({ horizon: 50, ctrlCost: 0.1, targetRadius: 0.2 });
  const d = new mj.MjData(model);
  try {
    // shoulder at +90°, elbow at −90°: elbow at (0, 0.1), fingertip at (0.11, 0.1); target at (0.05, −0.02)
    mj.mj_resetData(model, d);
    const q = d.qpos as Float64Array;
    q.set([Math.PI / 2, -Math.PI / 2, 0.05, -0.02]);
    mj.mj_forward(model, d);
    const o = task.obs(d);
    const want = [0, 1, 0, -1, 0.05, -0.02, 0, 0, 0.06, 0.12];
    want.forEach((w, i) => {
      assert.ok(Math.abs((o[i] as number) - w) < 1e-12, `obs[${i}] ${o[i]} vs ${w}`);
    });
    const r = task.reward(d, Float64Array.of(0.5, -1)).reward;
    assert.ok(Math.abs(r - (-Math.hypot(0.06, 0.12) - 0.1 * 1.25)) < 1e-12, `reward ${r}`);
    // both links along x: tip at (0.21, 0)
    q.set([0, 0, 0.21, 0]);
    mj.mj_forward(model, d);
    assert.ok(Math.abs(task.reward(d, Float64Array.of(0, 0)).reward) < 1e-12);
  } finally {
    d.delete();
  }
});

test("hopper: stand and hop rewards on hand-set states", async () => {
  const { mj, model } = await compiled("hopper", HOPPER_XML);
  const o = {
    task: "stand" as const,
    horizon: 10,
    crouch: 0.3,
    noise: 0.1,
    standHeight: 1,
    hopSpeed: 2,
    fallHeight: 0,
  };
  const stand = new HopperTask(o);
  const hop = new HopperTask({ ...o, task: "hop" });
  const d = new mj.MjData(model);
  const set = (q: number[], v: number[] = [0, 0, 0, 0, 0, 0]) => {
    mj.mj_resetData(model, d);
    (d.qpos as Float64Array).set(q);
    (d.qvel as Float64Array).set(v);
    mj.mj_forward(model, d);
  };
  const close = (x: number, y: number, what: string) => assert.ok(Math.abs(x - y) < 1e-9, `${what}: ${x} vs ${y}`);
  try {
    // upright: torso centre 1.25, foot body 0.1 → h = 1.15 ≥ 1, pitch 0, no control: reward 1
    set([0, 1.25, 0, 0, 0, 0]);
    close(stand.height(d), 1.15, "upright height");
    close(stand.reward(d, Float64Array.of(0, 0, 0)).reward, 1, "upright, no control");
    // control (4 + mean(1 − u²))/5 with u = (1, 0, 0): (4 + 2/3)/5
    close(stand.reward(d, Float64Array.of(1, 0, 0)).reward, (4 + 2 / 3) / 5, "control cost");
    // the straight leg (0.95 m from the hip, 0.2 m below the torso centre) swung 60° at the hip:
    // h = 0.2 + 0.95·cos 60° = 0.675 → d = (1 − 0.675)/0.5 = 0.65, standing = 0.1^(0.65²)
    set([0, 1.25, 0, -Math.PI / 3, 0, 0]);
    close(stand.height(d), 0.675, "bent height");
    close(stand.reward(d, Float64Array.of(0, 0, 0)).reward, 0.1 ** (0.65 * 0.65), "standing tolerance");
    // pitch 60°: upright = (1 + cos 60°)/2 = 0.75; the foot turns with the body: h = 1.15·cos 60°
    set([0, 1.25, Math.PI / 3, 0, 0, 0]);
    const h = stand.height(d);
    close(h, 1.15 * 0.5, "pitched height");
    const standing = Math.exp(-0.5 * (((1 - h) / 0.5) * Math.sqrt(-2 * Math.log(0.1))) ** 2);
    close(stand.reward(d, Float64Array.of(0, 0, 0)).reward, standing * 0.75, "pitched");
    // hop at ẋ = 1 (< hopSpeed 2): hopping = 1 − 0.5·(2 − 1)/1 = 0.5; at ẋ = 2: 1
    set([0, 1.25, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]);
    close(hop.reward(d, Float64Array.of(0, 0, 0)).reward, 0.5, "hop at 1 m/s");
    set([0, 1.25, 0, 0, 0, 0], [2, 0, 0, 0, 0, 0]);
    close(hop.reward(d, Float64Array.of(0, 0, 0)).reward, 1, "hop at 2 m/s");
    // observation: qpos[1:] then clipped qvel
    set([0.3, 1.25, 0.1, -0.2, -0.3, 0.4], [20, 0, 0, 0, 0, -11]);
    assert.deepEqual([...stand.obs(d)], [1.25, 0.1, -0.2, -0.3, 0.4, 10, 0, 0, 0, 0, -10]);
  } finally {
    d.delete();
  }
});

test("hopper: unactuated, the crouched starts mostly fall (the task needs control)", async () => {
  const mk = await make("hopper", { horizon: 200 });
  const env = mk();
  try {
    let sum = 0;
    for (let s = 0; s < 6; s++) {
      env.reset(s);
      for (let t = 0; t < 200; t++) sum += env.step(Float64Array.of(0, 0, 0)).reward;
    }
    assert.ok(sum / 6 < 0.5 * 200, `mean unactuated return ${sum / 6} of 200`);
  } finally {
    env.dispose();
  }
});

for (const [name, task] of [
  ["reacher", () => new ReacherTask({ horizon: 20, ctrlCost: 0.1, targetRadius: 0.2 })],
  [
    "hopper",
    () =>
      new HopperTask({
        task: "stand",
        horizon: 20,
        crouch: 0.3,
        noise: 0.1,
        standHeight: 1,
        hopSpeed: 2,
        fallHeight: 0,
      }),
  ],
] as const) {
  test(`${name}: a batch of MjData stepped together equals single environments`, async () => {
    const t = task();
    const { mj, model } = await compiled(name, name === "reacher" ? REACHER_XML : HOPPER_XML);
    const n = 5;
    const seeds = [3, 3, 4, 5, 6];
    const batch = new MjBatch(mj, model, t, n);
    const mk = await make(name, { horizon: 20 });
    const singles = Array.from({ length: n }, mk);
    try {
      const rng = Rng.fromSeed(9);
      let obs = batch.reset(seeds);
      singles.forEach((e, i) => {
        assert.deepEqual([...e.reset(seeds[i] as number)], [...obs.subarray(i * t.obsDim, (i + 1) * t.obsDim)]);
      });
      for (let step = 0; step < 20; step++) {
        const acts = Float64Array.from({ length: n * t.nu }, () => rng.float() * 2.4 - 1.2);
        const r = batch.step(acts);
        obs = r.obs;
        singles.forEach((e, i) => {
          const s = e.step(acts.subarray(i * t.nu, (i + 1) * t.nu));
          assert.deepEqual([...s.obs], [...obs.subarray(i * t.obsDim, (i + 1) * t.obsDim)], `step ${step} member ${i}`);
          assert.equal(s.reward, r.rewards[i]);
        });
      }
    } finally {
      batch.dispose();
      for (const e of singles) e.dispose();
    }
    assert.ok(
      batch.data.every((d) => d.isDeleted()),
      "dispose deletes every MjData",
    );
    assert.throws(() => new MjBatch(mj, model, t, 0), /positive integer/);
  });
}

test("MuJoCo environments free their WebAssembly memory on dispose", async () => {
  // an MjData of the hopper takes ~1 MB of the 2 GB WebAssembly heap: 2500 kept ones would exhaust it
  const mk = await make("hopper", { horizon: 5 });
  const cycle = () => {
    const e = mk();
    e.reset(1);
    e.step(Float64Array.of(0.1, 0.2, 0.3));
    e.dispose();
    e.dispose(); // idempotent
  };
  for (let i = 0; i < 50; i++) cycle();
  const rss0 = process.memoryUsage().rss;
  for (let i = 0; i < 2500; i++) cycle();
  const grown = (process.memoryUsage().rss - rss0) / 1e6;
  assert.ok(grown < 100, `RSS grew ${grown.toFixed(1)} MB over 2500 environments`);
});

test("bimodal: reward, seeded contexts, and the Gaussian's limit at equal entropy", () => {
  const o = { gap: 1.2, width: 0.1, shift: 0.2, horizon: 1 };
  const env = new BimodalEnv(o);
  const c = env.reset(5)[0] as number;
  assert.equal(env.reset(5)[0], c);
  assert.notEqual(env.reset(6)[0], c);
  env.reset(5);
  const r = env.step(Float64Array.of(0.2 * c + 0.6));
  assert.ok(r.done && Math.abs(r.reward - (1 + Math.exp(-(1.2 ** 2) / 0.02))) < 1e-12);
  assert.ok(Math.abs(bimodalReward(o, 0, 0) - 2 * Math.exp(-0.36 / 0.02)) < 1e-15);
  // closed form of E r under N(μ, σ²) against a Riemann sum
  const [mu, sigma] = [0.5, 0.3];
  let num = 0;
  const h = 1e-4;
  for (let a = -4; a <= 4; a += h)
    num +=
      bimodalReward(o, c, a) *
      (Math.exp(-((a - mu) ** 2) / (2 * sigma * sigma)) / (sigma * Math.sqrt(2 * Math.PI))) *
      h;
  assert.ok(Math.abs(num - gaussianExpectedReward(o, c, mu, sigma)) < 1e-8);
  // equal entropy: the mixture of two N(m±, s²) against the best Gaussian with σ = 2s
  const s = 0.1;
  const mixture = (gaussianExpectedReward(o, c, 0.2 * c + 0.6, s) + gaussianExpectedReward(o, c, 0.2 * c - 0.6, s)) / 2;
  let best = 0;
  for (let m = -1.5; m <= 1.5; m += 1e-3) best = Math.max(best, gaussianExpectedReward(o, c, m, 2 * s));
  assert.ok(Math.abs(mixture - Math.SQRT1_2) < 1e-6, `mixture ${mixture}`);
  // rounds: fresh seeded contexts, terminal after the last
  const three = new BimodalEnv({ ...o, horizon: 3 });
  const c0 = three.reset(5);
  const r1 = three.step(Float64Array.of(0));
  const r2 = three.step(Float64Array.of(0));
  const r3 = three.step(Float64Array.of(0));
  assert.deepEqual([c0[0], r1.done, r2.done, r3.done], [c, false, false, true]);
  assert.notEqual(r1.obs[0], c);
  assert.equal(three.reset(5)[0], c);
  assert.ok(best < 0.45 && best > 0.44, `best Gaussian ${best}`);
});
