/**
 * Hopper: a planar one-legged robot (torso, thigh, leg, foot; root free in x, z and pitch) on a floor, with a
 * stand task and a hop task in the spirit of DeepMind Control's hopper-stand / hopper-hop (arXiv 2512.02581
 * evaluates GoRL on HopperStand). Written for Cohort: the body lengths and actuator constants (gear 200 on a
 * [−1, 1] control, joint armature 1 and damping 1) follow the common Gym hopper; the reward is a smooth variant
 * of DMC's (a design choice: DMC's standing term has no margin, which gives no signal to a short run).
 *
 * | quantity    | definition                                                                                   |
 * |-------------|----------------------------------------------------------------------------------------------|
 * | start       | crouched: pitch ~ U(±0.5c), thigh, leg ~ −U(0, 2.618c), foot ~ U(±0.785c) (c = `crouch`), the |
 * |             | foot body lifted to 0.1 m; qvel ~ U(±noise). Unactuated, most starts fall (return ≈ 15%)     |
 * | observation | qpos[1:] (torso z, pitch, thigh, leg, foot angles), clip(qvel, ±10)   (11 values)           |
 * | action      | thigh, leg and foot torques in [−1, 1] (×200 gear)                                           |
 * | h           | torso centre height above the foot body (1.15 m when upright)                                |
 * | standing    | tol(h ≥ standHeight; margin 0.5, Gaussian with value 0.1 at the margin)                      |
 * | upright     | (1 + cos pitch) / 2                                                                          |
 * | control     | (4 + mean_j (1 − u_j²)) / 5                                                                  |
 * | hopping     | tol(ẋ ≥ hopSpeed; margin hopSpeed/2, linear with value 0.5 at the margin)                    |
 * | reward      | stand: standing·upright·control; hop: standing·upright·control·hopping — each step in [0, 1] |
 * | end         | `horizon` actions; with `fallHeight` > 0 the episode ends once h < fallHeight                |
 *
 * Physics: 5 ms Euler steps, 4 per action (20 ms control).
 * @module
 */
import type { Rng } from "../task/rng.js";
import type { ControlEnv } from "./env.js";
import { type MjTask, MjTaskEnv, type Mujoco } from "./mjbatch.js";
import { compiled } from "./mujoco.js";

/** The hopper model; qpos = [rootx, rootz (absolute torso height), rooty (pitch), thigh, leg, foot]. */
export const HOPPER_XML = `<mujoco model="cohort-hopper">
  <option timestep="0.005"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom condim="3" friction="0.9 0.1 0.1" contype="1" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="floor" type="plane" size="40 2 0.1" pos="0 0 0"/>
    <body name="torso" pos="0 0 1.25">
      <joint name="rootx" type="slide" axis="1 0 0" limited="false" armature="0" damping="0"/>
      <joint name="rootz" type="slide" axis="0 0 1" limited="false" armature="0" damping="0" ref="1.25"/>
      <joint name="rooty" type="hinge" axis="0 1 0" limited="false" armature="0" damping="0"/>
      <geom name="torso" type="capsule" fromto="0 0 0.2 0 0 -0.2" size="0.05"/>
      <body name="thigh" pos="0 0 -0.2">
        <joint name="thigh" type="hinge" axis="0 -1 0" range="-2.618 0"/>
        <geom type="capsule" fromto="0 0 0 0 0 -0.45" size="0.05"/>
        <body name="leg" pos="0 0 -0.45">
          <joint name="leg" type="hinge" axis="0 -1 0" range="-2.618 0"/>
          <geom type="capsule" fromto="0 0 0 0 0 -0.5" size="0.04"/>
          <body name="foot" pos="0 0 -0.5">
            <joint name="foot" type="hinge" axis="0 -1 0" range="-0.785 0.785"/>
            <geom type="capsule" fromto="-0.13 0 0 0.26 0 0" size="0.06"/>
          </body>
        </body>
      </body>
    </body>
  </worldbody>
  <actuator>
    <motor joint="thigh" gear="200" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="leg" gear="200" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="foot" gear="200" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>`;

export interface HopperOptions {
  task: "stand" | "hop";
  horizon: number;
  /** Fraction of the joint ranges the start pose is drawn from (0: upright, which balances unactuated). */
  crouch: number;
  /** Half-width of the uniform start velocities. */
  noise: number;
  standHeight: number;
  hopSpeed: number;
  /** End the episode once h drops below this (0: never). */
  fallHeight: number;
}

/** DMC-style tolerance: 1 when x ≥ lo; below, a Gaussian (0.1 at `margin`) or linear (0.5 at `margin`) decay. */
export function toleranceBelow(x: number, lo: number, margin: number, sigmoid: "gaussian" | "linear"): number {
  if (x >= lo) return 1;
  const d = (lo - x) / margin;
  if (sigmoid === "gaussian") {
    const s = Math.sqrt(-2 * Math.log(0.1));
    return Math.exp(-0.5 * (d * s) ** 2);
  }
  const y = d * 0.5;
  return y < 1 ? 1 - y : 0;
}

const FOOT_BODY = 4; // world, torso, thigh, leg, foot

export class HopperTask implements MjTask {
  readonly name = "hopper";
  readonly obsDim = 11;
  readonly nu = 3;
  readonly substeps = 4;
  readonly horizon: number;
  readonly o: HopperOptions;
  constructor(o: HopperOptions) {
    this.o = o;
    this.horizon = o.horizon;
  }
  reset(mj: Mujoco, model: Mujoco, data: Mujoco, rng: Rng): void {
    const q = data.qpos as Float64Array;
    const v = data.qvel as Float64Array;
    const c = this.o.crouch;
    const pm = (a: number) => (rng.float() * 2 - 1) * a;
    q[2] = pm(0.5 * c);
    q[3] = -rng.float() * 2.618 * c;
    q[4] = -rng.float() * 2.618 * c;
    q[5] = pm(0.785 * c);
    for (let i = 0; i < 6; i++) v[i] = pm(this.o.noise);
    // lift the root so that the foot body starts at 0.1 m, its upright height
    mj.mj_forward(model, data);
    q[1] = (q[1] as number) + 0.1 - ((data.xpos as Float64Array)[FOOT_BODY * 3 + 2] as number);
  }
  /** Torso centre height above the foot body. */
  height(data: Mujoco): number {
    const x = data.xpos as Float64Array;
    return ((data.qpos as Float64Array)[1] as number) - (x[FOOT_BODY * 3 + 2] as number);
  }
  obs(data: Mujoco): Float64Array {
    const q = data.qpos as Float64Array;
    const v = data.qvel as Float64Array;
    const o = new Float64Array(11);
    for (let i = 1; i < 6; i++) o[i - 1] = q[i] as number;
    for (let i = 0; i < 6; i++) {
      const x = v[i] as number;
      o[5 + i] = Number.isFinite(x) ? Math.max(-10, Math.min(10, x)) : 0;
    }
    return o;
  }
  reward(data: Mujoco, ctrl: Float64Array): { reward: number; done: boolean } {
    const h = this.height(data);
    const standing = toleranceBelow(h, this.o.standHeight, 0.5, "gaussian");
    const upright = (1 + Math.cos((data.qpos as Float64Array)[2] as number)) / 2;
    let c = 0;
    for (const x of ctrl) c += 1 - x * x;
    const control = (4 + c / ctrl.length) / 5;
    let r = standing * upright * control;
    if (this.o.task === "hop") {
      const vx = (data.qvel as Float64Array)[0] as number;
      r *= toleranceBelow(vx, this.o.hopSpeed, this.o.hopSpeed / 2, "linear");
    }
    return { reward: r, done: this.o.fallHeight > 0 && h < this.o.fallHeight };
  }
}

export async function hopperEnv(o: HopperOptions): Promise<() => ControlEnv> {
  const { mj, model } = await compiled("hopper", HOPPER_XML);
  const task = new HopperTask(o);
  return () => new MjTaskEnv(mj, model, task);
}
