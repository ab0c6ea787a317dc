/**
 * Reacher: a planar two-link arm (links 0.1 m and 0.11 m, hinges about z, no gravity) whose fingertip must
 * reach a target drawn from the episode's seed. Written for Cohort; the physical constants (gear 200 on a
 * [−1, 1] control, armature 1, damping 1, 10 ms physics, 2 steps per action) follow the common Gym reacher.
 *
 * | quantity    | definition                                                                                  |
 * |-------------|---------------------------------------------------------------------------------------------|
 * | start       | q ~ U(−0.1, 0.1)², q̇ ~ U(−0.005, 0.005)²; target uniform in the disc of radius `targetRadius` |
 * | observation | cos q₀, sin q₀, cos q₁, sin q₁, target x, y, q̇₀, q̇₁, tip − target (x, y)   (10 values)        |
 * | action      | two joint torques in [−1, 1] (×200 gear)                                                    |
 * | reward      | −‖tip − target‖ − ctrlCost·‖u‖² after each action                                         |
 * | end         | `horizon` actions (no terminal state)                                                       |
 *
 * The target sits on two force-free slide joints (qpos[2], qpos[3]), so it is part of the MjData state.
 * @module
 */
import type { Rng } from "../task/rng.js";
import type { ControlEnv } from "./env.js";
import { type MjTask, MjTaskEnv, type Mujoco } from "./mjbatch.js";
import { compiled } from "./mujoco.js";

/** The reacher model: arm at the origin, fingertip site `tip`, target on slide joints `target_x`/`target_y`. */
export const REACHER_XML = `<mujoco model="cohort-reacher">
  <option timestep="0.01" gravity="0 0 0" integrator="RK4"/>
  <default>
    <joint armature="1" damping="1" limited="true"/>
    <geom contype="0" conaffinity="0" friction="1 0.1 0.1"/>
  </default>
  <worldbody>
    <body name="arm" pos="0 0 0.01">
      <joint name="shoulder" type="hinge" axis="0 0 1" limited="false"/>
      <geom type="capsule" fromto="0 0 0 0.1 0 0" size="0.01"/>
      <body name="forearm" pos="0.1 0 0">
        <joint name="elbow" type="hinge" axis="0 0 1" range="-3.0 3.0"/>
        <geom type="capsule" fromto="0 0 0 0.11 0 0" size="0.01"/>
        <site name="tip" pos="0.11 0 0" size="0.01"/>
      </body>
    </body>
    <body name="target" pos="0 0 0.01">
      <joint name="target_x" type="slide" axis="1 0 0" limited="false" armature="0" damping="0"/>
      <joint name="target_y" type="slide" axis="0 1 0" limited="false" armature="0" damping="0"/>
      <geom type="sphere" size="0.009" mass="0.01"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="shoulder" gear="200" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="elbow" gear="200" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>`;

export interface ReacherOptions {
  horizon: number;
  /** Weight of the control cost ‖u‖². */
  ctrlCost: number;
  /** Targets are uniform in the disc of this radius (the arm reaches 0.21 m). */
  targetRadius: number;
}

const u = (rng: Rng, a: number) => (rng.float() * 2 - 1) * a;

export class ReacherTask implements MjTask {
  readonly name = "reacher";
  readonly obsDim = 10;
  readonly nu = 2;
  readonly substeps = 2;
  readonly horizon: number;
  readonly o: ReacherOptions;
  constructor(o: ReacherOptions) {
    this.o = o;
    this.horizon = o.horizon;
  }
  reset(_mj: Mujoco, _model: Mujoco, data: Mujoco, rng: Rng): void {
    const q = data.qpos as Float64Array;
    const v = data.qvel as Float64Array;
    q[0] = u(rng, 0.1);
    q[1] = u(rng, 0.1);
    v[0] = u(rng, 0.005);
    v[1] = u(rng, 0.005);
    // uniform in the disc: radius √U·R, angle U·2π
    const r = Math.sqrt(rng.float()) * this.o.targetRadius;
    const phi = rng.float() * 2 * Math.PI;
    q[2] = r * Math.cos(phi);
    q[3] = r * Math.sin(phi);
  }
  /** Fingertip minus target (x, y). */
  delta(data: Mujoco): [number, number] {
    const s = data.site_xpos as Float64Array; // [nsite, 3]; site 0 = tip
    const q = data.qpos as Float64Array;
    return [(s[0] as number) - (q[2] as number), (s[1] as number) - (q[3] as number)];
  }
  obs(data: Mujoco): Float64Array {
    const q = data.qpos as Float64Array;
    const v = data.qvel as Float64Array;
    const [dx, dy] = this.delta(data);
    const q0 = q[0] as number;
    const q1 = q[1] as number;
    const t = (x: number | undefined) => x as number;
    return Float64Array.of(
      Math.cos(q0),
      Math.sin(q0),
      Math.cos(q1),
      Math.sin(q1),
      t(q[2]),
      t(q[3]),
      t(v[0]),
      t(v[1]),
      dx,
      dy,
    );
  }
  reward(data: Mujoco, ctrl: Float64Array): { reward: number; done: boolean } {
    const [dx, dy] = this.delta(data);
    let c = 0;
    for (const x of ctrl) c += x * x;
    return { reward: -Math.hypot(dx, dy) - this.o.ctrlCost * c, done: false };
  }
}

export async function reacherEnv(o: ReacherOptions): Promise<() => ControlEnv> {
  const { mj, model } = await compiled("reacher", REACHER_XML);
  const task = new ReacherTask(o);
  return () => new MjTaskEnv(mj, model, task);
}
