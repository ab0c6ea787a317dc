/**
 * MuJoCo tasks over one compiled model: a task says how an episode starts from its seed, what the policy
 * observes and what a step pays; `MjTaskEnv` runs one episode on its own MjData (the `ControlEnv` a rollout
 * steps), `MjBatch` runs a group of episodes on n MjData of the same MjModel stepped together (the physics of
 * every member advances one action before the next action is applied: lockstep, as a group's rollout is).
 *
 * Both run the same task code, so a batch member's trajectory equals the single environment's under the same
 * seed and actions (test/control/mjtasks.test.ts).
 * @module
 */
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import type { ControlEnv, StepResult } from "./env.js";

// biome-ignore lint/suspicious/noExplicitAny: the emscripten module's embind classes
export type Mujoco = any;

export interface MjTask {
  readonly name: string;
  readonly obsDim: number;
  /** Actuators; the action is one value per actuator in [−1, 1] (clipped). */
  readonly nu: number;
  readonly horizon: number;
  /** Physics steps per action. */
  readonly substeps: number;
  /** Sets the start state of `data` (after mj_resetData) from the episode's generator. */
  reset(mj: Mujoco, model: Mujoco, data: Mujoco, rng: Rng): void;
  obs(data: Mujoco): Float64Array;
  /** The reward of the step that led to `data` under control `ctrl` (already clipped), and a terminal flag. */
  reward(data: Mujoco, ctrl: Float64Array): { reward: number; done: boolean };
}

const clip1 = (x: number): number => (Number.isFinite(x) ? Math.max(-1, Math.min(1, x)) : 0);

/** Starts an episode: reset, the task's start state, forward kinematics. */
function start(mj: Mujoco, model: Mujoco, data: Mujoco, task: MjTask, seed: number): void {
  mj.mj_resetData(model, data);
  task.reset(mj, model, data, Rng.fromSeed(seed));
  mj.mj_forward(model, data);
}

/** Applies one action (clipped to [−1, 1]) for `substeps` physics steps. */
function advance(mj: Mujoco, model: Mujoco, data: Mujoco, task: MjTask, action: ArrayLike<number>): Float64Array {
  const ctrl = new Float64Array(task.nu);
  const c = data.ctrl as Float64Array;
  for (let j = 0; j < task.nu; j++) {
    ctrl[j] = clip1(action[j] as number);
    c[j] = ctrl[j] as number;
  }
  for (let k = 0; k < task.substeps; k++) mj.mj_step(model, data);
  return ctrl;
}

/** One episode of a task on its own MjData. */
export class MjTaskEnv implements ControlEnv {
  readonly obsDim: number;
  readonly action: { kind: "continuous"; dim: number };
  readonly horizon: number;
  readonly data: Mujoco;
  readonly #mj: Mujoco;
  readonly #model: Mujoco;
  readonly #task: MjTask;
  #disposed = false;

  constructor(mj: Mujoco, model: Mujoco, task: MjTask, horizon = task.horizon) {
    this.#mj = mj;
    this.#model = model;
    this.#task = task;
    this.obsDim = task.obsDim;
    this.action = { kind: "continuous", dim: task.nu };
    this.horizon = horizon;
    this.data = new mj.MjData(model);
  }
  reset(seed: number): Float64Array {
    start(this.#mj, this.#model, this.data, this.#task, seed);
    return this.#task.obs(this.data);
  }
  step(action: Float64Array): StepResult {
    const ctrl = advance(this.#mj, this.#model, this.data, this.#task, action);
    const r = this.#task.reward(this.data, ctrl);
    return { obs: this.#task.obs(this.data), reward: r.reward, done: r.done };
  }
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.data.delete();
  }
}

/** n episodes of a task on n MjData of one MjModel, stepped together. */
export class MjBatch {
  readonly n: number;
  readonly task: MjTask;
  readonly data: Mujoco[];
  readonly #mj: Mujoco;
  readonly #model: Mujoco;
  #disposed = false;

  constructor(mj: Mujoco, model: Mujoco, task: MjTask, n: number) {
    if (!(Number.isInteger(n) && n >= 1)) throw new CohortError(`MjBatch: n must be a positive integer, got ${n}`);
    this.#mj = mj;
    this.#model = model;
    this.task = task;
    this.n = n;
    this.data = Array.from({ length: n }, () => new mj.MjData(model));
  }
  /** Starts member i from seeds[i]; the observations [n, obsDim]. */
  reset(seeds: readonly number[]): Float64Array {
    if (seeds.length !== this.n) throw new CohortError(`MjBatch.reset: ${seeds.length} seeds for ${this.n} members`);
    const D = this.task.obsDim;
    const obs = new Float64Array(this.n * D);
    this.data.forEach((d, i) => {
      start(this.#mj, this.#model, d, this.task, seeds[i] as number);
      obs.set(this.task.obs(d), i * D);
    });
    return obs;
  }
  /** One action per member (`actions` [n, nu]); observations [n, obsDim], rewards [n], terminal flags [n]. */
  step(actions: Float64Array): { obs: Float64Array; rewards: Float64Array; done: Uint8Array } {
    const { nu, obsDim: D } = this.task;
    if (actions.length !== this.n * nu)
      throw new CohortError(`MjBatch.step: ${actions.length} action values for ${this.n} members × ${nu}`);
    const obs = new Float64Array(this.n * D);
    const rewards = new Float64Array(this.n);
    const done = new Uint8Array(this.n);
    this.data.forEach((d, i) => {
      const ctrl = advance(this.#mj, this.#model, d, this.task, actions.subarray(i * nu, (i + 1) * nu));
      const r = this.task.reward(d, ctrl);
      rewards[i] = r.reward;
      done[i] = r.done ? 1 : 0;
      obs.set(this.task.obs(d), i * D);
    });
    return { obs, rewards, done };
  }
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const d of this.data) d.delete();
  }
}
