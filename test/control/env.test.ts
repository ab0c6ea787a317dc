/**
 * Tabular solvers against a hand-computed MDP; Garnet MDPs are seeded; the MuJoCo environments are
 * deterministic under a seed and behave as their physics says.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { type ControlEnv, controlEnvSpec, MdpEnv } from "../../src/control/env.js";
import {
  checkMdp,
  expectedReturn,
  garnet,
  policyEvaluation,
  type TabularMdp,
  valueIteration,
} from "../../src/control/mdp.js";

/**
 * Two states, two actions, γ = 0.5. In s0: a0 stays (r = 1), a1 moves to s1 (r = 0). In s1: a0 stays (r = 2),
 * a1 moves to s0 (r = 0). By hand: V*(s1) = 2/(1 − 0.5) = 4; V*(s0) = max(1 + 0.5·V*(s0), 0 + 0.5·4) → staying
 * gives 2, moving gives 2: a tie, V*(s0) = 2. Uniform π: V0 = 0.5 + 0.25 V0 + 0.25 V1 and
 * V1 = 1 + 0.25 V0 + 0.25 V1, so V1 − V0 = 0.5 and V0 = 0.625 + 0.5 V0: V = [5/4, 7/4].
 */
const HAND: TabularMdp = {
  states: 2,
  actions: 2,
  // P[(s·A + a)·S + s']
  P: Float64Array.of(1, 0, 0, 1, 0, 1, 1, 0),
  R: Float64Array.of(1, 0, 2, 0),
  gamma: 0.5,
  start: Float64Array.of(1, 0),
};

test("value iteration and policy evaluation on a hand-computed MDP", () => {
  checkMdp(HAND);
  const vi = valueIteration(HAND);
  assert.ok(Math.abs((vi.V[0] as number) - 2) < 1e-10, `V*(s0) = ${vi.V[0]}`);
  assert.ok(Math.abs((vi.V[1] as number) - 4) < 1e-10, `V*(s1) = ${vi.V[1]}`);
  assert.equal(vi.policy[1], 0);
  const V = policyEvaluation(HAND, Float64Array.of(0.5, 0.5, 0.5, 0.5));
  assert.ok(Math.abs((V[0] as number) - 5 / 4) < 1e-12, `V(s0) = ${V[0]}`);
  assert.ok(Math.abs((V[1] as number) - 7 / 4) < 1e-12, `V(s1) = ${V[1]}`);
  assert.ok(Math.abs(expectedReturn(HAND, V) - 5 / 4) < 1e-12);
  // the greedy optimal policy evaluates to V*
  const greedy = new Float64Array(4);
  vi.policy.forEach((a, s) => {
    greedy[s * 2 + a] = 1;
  });
  const Vg = policyEvaluation(HAND, greedy);
  for (let s = 0; s < 2; s++) assert.ok(Math.abs((Vg[s] as number) - (vi.V[s] as number)) < 1e-9);
});

test("garnet MDPs are seeded, stochastic and solvable; V* dominates every policy", () => {
  const a = garnet({ states: 12, actions: 3, branching: 3, gamma: 0.9, seed: 5 });
  const b = garnet({ states: 12, actions: 3, branching: 3, gamma: 0.9, seed: 5 });
  const c = garnet({ states: 12, actions: 3, branching: 3, gamma: 0.9, seed: 6 });
  checkMdp(a);
  assert.deepEqual(a.P, b.P);
  assert.notDeepEqual(a.P, c.P);
  for (let sa = 0; sa < 36; sa++) {
    let nz = 0;
    for (let s = 0; s < 12; s++) if ((a.P[sa * 12 + s] as number) > 0) nz++;
    assert.ok(nz <= 3 && nz >= 1);
  }
  const vi = valueIteration(a);
  const V = policyEvaluation(a, new Float64Array(36).fill(1 / 3));
  for (let s = 0; s < 12; s++) assert.ok((vi.V[s] as number) >= (V[s] as number) - 1e-9);
  // a sampled episode follows P: the same seed gives the same trajectory
  const run = (seed: number) => {
    const env = new MdpEnv(a, 30);
    const states = [env.reset(seed)[0]];
    for (let t = 0; t < 30; t++) states.push(env.step(Float64Array.of(t % 3)).obs[0]);
    return states;
  };
  assert.deepEqual(run(11), run(11));
  assert.notDeepEqual(run(11), run(12));
});

async function episode(make: () => ControlEnv, seed: number, policy: (obs: Float64Array, t: number) => number[]) {
  const env = make();
  try {
    let obs = env.reset(seed);
    const trace: number[] = [...obs];
    let ret = 0;
    for (let t = 0; t < env.horizon; t++) {
      const r = env.step(Float64Array.from(policy(obs, t)));
      obs = r.obs;
      ret += r.reward;
      trace.push(...obs);
      if (r.done) break;
    }
    return { trace, ret };
  } finally {
    env.dispose();
  }
}

test("MuJoCo pendulum and cart-pole are deterministic under a seed", async () => {
  for (const name of ["pendulum", "cartpole"]) {
    const { spec, options } = controlEnvSpec(name, {});
    const make = await spec.create(options);
    const pol = (_o: Float64Array, t: number) => (name === "pendulum" ? [Math.sin(t / 7) * 2] : [t % 3 === 0 ? 1 : 0]);
    const a = await episode(make, 7, pol);
    const b = await episode(make, 7, pol);
    const c = await episode(make, 8, pol);
    assert.deepEqual(a.trace, b.trace, `${name}: same seed, same trajectory`);
    assert.notDeepEqual(a.trace, c.trace, `${name}: another seed, another start`);
    assert.ok(a.trace.every(Number.isFinite));
  }
});

test("MuJoCo physics: the pendulum falls from upright, the cart-pole falls without control", async () => {
  const pend = await (await controlEnvSpec("pendulum", {}).spec.create({ horizon: 200, maxTorque: 2 }))();
  try {
    const o = pend.reset(1);
    assert.equal(o.length, 3);
    // from any start, zero torque: |θ| from upright never gets below its start by more than numerical damping
    let last = o;
    for (let t = 0; t < 200; t++) last = pend.step(Float64Array.of(0)).obs;
    assert.ok(Math.abs(Math.hypot(last[0] as number, last[1] as number) - 1) < 1e-9);
  } finally {
    pend.dispose();
  }
  const cp = await (await controlEnvSpec("cartpole", {}).spec.create({ horizon: 200 }))();
  try {
    cp.reset(2);
    let steps = 0;
    for (; steps < 200; steps++) if (cp.step(Float64Array.of(1)).done) break;
    assert.ok(steps < 60, `pushing right always ends the episode early (${steps} steps)`);
  } finally {
    cp.dispose();
  }
  assert.throws(() => controlEnvSpec("walker", {}), /unknown control environment "walker"/);
  assert.throws(() => controlEnvSpec("garnet", { states: 1 }), /env\.options\.states/);
});
