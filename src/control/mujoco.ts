/**
 * MuJoCo environments written for Cohort, stepped by the `mujoco-js` WebAssembly build (the module and its
 * WebAssembly binary ship inside the npm package; nothing is downloaded at run time). One model per
 * environment is compiled once per process; every episode has its own MjData.
 * @module
 */
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import type { ControlEnv, StepResult } from "./env.js";

// biome-ignore lint/suspicious/noExplicitAny: the emscripten module's embind classes
type Mujoco = any;
let modulePromise: Promise<Mujoco> | null = null;

/** The MuJoCo WebAssembly module (loaded once). */
export function loadMujoco(): Promise<Mujoco> {
  modulePromise ??= import("mujoco-js")
    .then((m) => (m as { default: () => Promise<Mujoco> }).default())
    .catch((e: unknown) => {
      modulePromise = null;
      throw new CohortError(
        `could not load the MuJoCo WebAssembly module (npm package mujoco-js): ${(e as Error).message}; run npm install`,
      );
    });
  return modulePromise;
}

const models = new Map<string, Mujoco>();

/** The MuJoCo module and the model compiled from `xml` (once per process and name). */
export async function compiled(name: string, xml: string): Promise<{ mj: Mujoco; model: Mujoco }> {
  const mj = await loadMujoco();
  let model = models.get(name);
  if (model === undefined) {
    const path = `/cohort-${name}.xml`;
    mj.FS.writeFile(path, xml);
    model = mj.MjModel.loadFromXML(path);
    models.set(name, model);
  }
  return { mj, model };
}

/** Pendulum: a 1 m capsule on a hinge (qpos 0 = hanging down), torque motor; 10 ms physics, 5 per action. */
export const PENDULUM_XML = `<mujoco model="cohort-pendulum">
  <option timestep="0.01" gravity="0 0 -9.81" integrator="RK4"/>
  <worldbody>
    <body name="pole" pos="0 0 0">
      <joint name="hinge" type="hinge" axis="0 1 0" damping="0.05"/>
      <geom type="capsule" fromto="0 0 0 0 0 -1" size="0.045" mass="1"/>
    </body>
  </worldbody>
  <actuator>
    <motor name="torque" joint="hinge" gear="1" ctrllimited="true" ctrlrange="-2 2"/>
  </actuator>
</mujoco>`;

/** Cart-pole: a slider cart (1 kg) with a hinged 1 m pole (0.1 kg, qpos 0 = upright); 10 ms physics, 2 per action. */
export const CARTPOLE_XML = `<mujoco model="cohort-cartpole">
  <option timestep="0.01" gravity="0 0 -9.81" integrator="RK4"/>
  <worldbody>
    <body name="cart" pos="0 0 0">
      <joint name="slider" type="slide" axis="1 0 0" limited="false"/>
      <geom type="box" size="0.2 0.1 0.05" mass="1"/>
      <body name="pole" pos="0 0 0">
        <joint name="hinge" type="hinge" axis="0 1 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 1" size="0.02" mass="0.1"/>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor name="push" joint="slider" gear="1" ctrllimited="true" ctrlrange="-10 10"/>
  </actuator>
</mujoco>`;

const wrapAngle = (x: number): number => ((((x + Math.PI) % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI)) - Math.PI;

abstract class MjEnv implements ControlEnv {
  abstract readonly obsDim: number;
  abstract readonly action: ControlEnv["action"];
  readonly horizon: number;
  protected readonly mj: Mujoco;
  protected readonly model: Mujoco;
  protected readonly data: Mujoco;

  constructor(mj: Mujoco, model: Mujoco, horizon: number) {
    this.mj = mj;
    this.model = model;
    this.data = new mj.MjData(model);
    this.horizon = horizon;
  }
  protected resetTo(qpos: number[], qvel: number[]): void {
    this.mj.mj_resetData(this.model, this.data);
    qpos.forEach((v, i) => {
      this.data.qpos[i] = v;
    });
    qvel.forEach((v, i) => {
      this.data.qvel[i] = v;
    });
    this.mj.mj_forward(this.model, this.data);
  }
  protected advance(ctrl: number, substeps: number): void {
    this.data.ctrl[0] = ctrl;
    for (let k = 0; k < substeps; k++) this.mj.mj_step(this.model, this.data);
  }
  abstract reset(seed: number): Float64Array;
  abstract step(action: Float64Array): StepResult;
  dispose(): void {
    this.data.delete();
  }
}

class PendulumEnv extends MjEnv {
  readonly obsDim = 3;
  readonly action = { kind: "continuous", dim: 1 } as const;
  readonly maxTorque: number;
  constructor(mj: Mujoco, model: Mujoco, horizon: number, maxTorque: number) {
    super(mj, model, horizon);
    this.maxTorque = maxTorque;
  }
  #obs(): Float64Array {
    const th = (this.data.qpos[0] as number) - Math.PI; // 0 = upright
    return Float64Array.of(Math.cos(th), Math.sin(th), this.data.qvel[0] as number);
  }
  reset(seed: number): Float64Array {
    const rng = Rng.fromSeed(seed);
    this.resetTo([Math.PI + (rng.float() * 2 - 1) * Math.PI], [rng.float() * 2 - 1]);
    return this.#obs();
  }
  step(action: Float64Array): StepResult {
    const u = Math.max(-this.maxTorque, Math.min(this.maxTorque, action[0] as number));
    const th = wrapAngle((this.data.qpos[0] as number) - Math.PI);
    const thdot = this.data.qvel[0] as number;
    const cost = th * th + 0.1 * thdot * thdot + 0.001 * u * u;
    this.advance(u, 5);
    return { obs: this.#obs(), reward: -cost, done: false };
  }
}

class CartpoleEnv extends MjEnv {
  readonly obsDim = 4;
  readonly action = { kind: "discrete", n: 2 } as const;
  #obs(): Float64Array {
    const q = this.data.qpos;
    const v = this.data.qvel;
    return Float64Array.of(q[0], v[0], q[1], v[1]);
  }
  reset(seed: number): Float64Array {
    const rng = Rng.fromSeed(seed);
    const u = () => (rng.float() * 2 - 1) * 0.05;
    this.resetTo([u(), u()], [u(), u()]);
    return this.#obs();
  }
  step(action: Float64Array): StepResult {
    this.advance((action[0] as number) === 1 ? 10 : -10, 2);
    const obs = this.#obs();
    const done = Math.abs(obs[2] as number) > 0.2 || Math.abs(obs[0] as number) > 2.4;
    return { obs, reward: 1, done };
  }
}

export async function pendulumEnv(o: { horizon: number; maxTorque: number }): Promise<() => ControlEnv> {
  const { mj, model } = await compiled("pendulum", PENDULUM_XML);
  return () => new PendulumEnv(mj, model, o.horizon, o.maxTorque);
}

export async function cartpoleEnv(o: { horizon: number }): Promise<() => ControlEnv> {
  const { mj, model } = await compiled("cartpole", CARTPOLE_XML);
  return () => new CartpoleEnv(mj, model, o.horizon);
}
