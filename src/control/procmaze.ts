/**
 * `procmaze`: a small procedurally generated grid task family in the spirit of ProcGen's maze, for measuring
 * generalisation to held-out levels (Hyper++, arXiv 2512.14202, evaluates on ProcGen's test levels). The task,
 * its generator and its observations are a design choice of ours, not ProcGen's code.
 *
 * A level is a `size × size` grid: walls (each cell with probability `wallDensity`), a start and a goal cell,
 * the goal reachable from the start in at least `minDistance` moves (breadth-first search). Everything about
 * a level is a function of (levelSeed, split, index): draws that fail the checks are redrawn from the same
 * generator, so a level is reproducible from its seed alone.
 *
 * | piece        | definition                                                                                   |
 * |--------------|----------------------------------------------------------------------------------------------|
 * | levels       | train: `levels.train` levels; test: `levels.test` levels whose layouts differ from every train |
 * |              | layout and from each other (a drawn duplicate is skipped); the two splits are disjoint       |
 * | episode      | `reset(seed)` picks level `seed mod N` of the split (the G episodes of a group share a level)  |
 * | actions      | 0 up, 1 down, 2 left, 3 right; a move into a wall or off the grid stays put                   |
 * | reward / end | `goalReward` on the move that reaches the goal (a terminal state); 0 otherwise; `horizon` cut |
 * | observation  | `egocentric` (default): a (2r+1)² window centred on the agent, channels [wall, goal] (outside  |
 * |              | the grid reads as wall), then the goal's offset (gx − ax, gy − ay)/size; `global`: the whole   |
 * |              | grid, channels [wall, agent, goal], row-major                                                 |
 *
 * Training episodes play train levels; evaluation (`createEval`) plays test levels — the return on held-out
 * levels. Success is reaching the goal (a terminal state).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { mix32, Rng } from "../task/rng.js";
import type { ControlEnv, ControlEnvSpec, StepResult } from "./env.js";

/** One level: walls row-major (1 = wall), start and goal as cell indices y·size + x. */
export interface GridLevel {
  size: number;
  walls: Uint8Array;
  start: number;
  goal: number;
}

export const procmazeOptions = z.strictObject({
  /** Cells per side. */
  size: z.number().int().min(3).max(32).default(7),
  /** Probability that a cell is a wall (before the start/goal checks). */
  wallDensity: z.number().min(0).max(0.6).default(0.25),
  /** Fewest moves from start to goal (breadth-first distance). */
  minDistance: z.number().int().min(1).default(3),
  /** Steps per episode. */
  horizon: z.number().int().positive().default(32),
  goalReward: z.number().positive().default(10),
  view: z.enum(["egocentric", "global"]).default("egocentric"),
  /** Window radius of the egocentric view. */
  radius: z.number().int().min(1).max(16).default(3),
  /** How many distinct levels each split holds. */
  levels: z
    .strictObject({
      train: z.number().int().positive().default(200),
      test: z.number().int().positive().default(100),
    })
    .default({ train: 200, test: 100 }),
  /** Seed of the level family (not of the episodes). */
  levelSeed: z.number().int().min(0).default(0),
});
export type ProcmazeOptions = z.output<typeof procmazeOptions>;

const MOVES: readonly [number, number][] = [
  [0, -1],
  [0, 1],
  [-1, 0],
  [1, 0],
];

/** Breadth-first distances from `from` (−1: unreachable). */
export function bfsDistances(level: GridLevel): Int32Array {
  const { size, walls } = level;
  const dist = new Int32Array(size * size).fill(-1);
  dist[level.start] = 0;
  const queue = [level.start];
  for (let q = 0; q < queue.length; q++) {
    const c = queue[q] as number;
    const x = c % size;
    const y = Math.floor(c / size);
    for (const [dx, dy] of MOVES) {
      const nx = x + dx;
      const ny = y + dy;
      if (nx < 0 || ny < 0 || nx >= size || ny >= size) continue;
      const n = ny * size + nx;
      if (walls[n] === 1 || dist[n] !== -1) continue;
      dist[n] = (dist[c] as number) + 1;
      queue.push(n);
    }
  }
  return dist;
}

const SPLIT_SALT = { train: 0x2545f491, test: 0x6b43a9b5 } as const;
const MAX_DRAWS = 10_000;

/** Level `index` of a split: drawn from its own generator until the goal is reachable far enough. */
export function generateLevel(o: ProcmazeOptions, split: "train" | "test", index: number): GridLevel {
  const rng = Rng.fromSeed(mix32(mix32(o.levelSeed ^ SPLIT_SALT[split]) + index * 0x9e3779b1));
  const cells = o.size * o.size;
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const walls = Uint8Array.from({ length: cells }, () => (rng.float() < o.wallDensity ? 1 : 0));
    const start = rng.int(0, cells - 1);
    const goal = rng.int(0, cells - 1);
    if (start === goal) continue;
    walls[start] = 0;
    walls[goal] = 0;
    const level = { size: o.size, walls, start, goal };
    const d = bfsDistances(level)[goal] as number;
    if (d >= o.minDistance) return level;
  }
  throw new CohortError(
    `procmaze: no level with the goal ≥ ${o.minDistance} moves from the start in ${MAX_DRAWS} draws (size ${o.size}, wallDensity ${o.wallDensity}); lower minDistance or wallDensity`,
  );
}

export const levelKey = (l: GridLevel): string => `${l.size}:${l.start}:${l.goal}:${l.walls.join("")}`;

/** The train and test levels of a family: distinct layouts, the splits disjoint. */
export function procmazeLevels(o: ProcmazeOptions): { train: GridLevel[]; test: GridLevel[] } {
  const seen = new Set<string>();
  const take = (split: "train" | "test", n: number): GridLevel[] => {
    const out: GridLevel[] = [];
    // a small grid has few layouts: stop when the draws only repeat
    for (let i = 0; out.length < n; i++) {
      if (i >= 50 * n + 1000)
        throw new CohortError(
          `procmaze: only ${seen.size} distinct levels found for ${o.levels.train} train + ${o.levels.test} test; use a larger size or fewer levels`,
        );
      const l = generateLevel(o, split, i);
      const k = levelKey(l);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push(l);
    }
    return out;
  };
  const train = take("train", o.levels.train);
  return { train, test: take("test", o.levels.test) };
}

export function procmazeObsDim(o: Pick<ProcmazeOptions, "size" | "view" | "radius">): number {
  const w = 2 * o.radius + 1;
  return o.view === "egocentric" ? 2 * w * w + 2 : 3 * o.size * o.size;
}

/** One episode on a list of levels; `reset(seed)` plays level `seed mod levels.length`. */
export class MazeEnv implements ControlEnv {
  readonly obsDim: number;
  readonly action = { kind: "discrete", n: 4 } as const;
  readonly horizon: number;
  readonly #levels: readonly GridLevel[];
  readonly #o: Pick<ProcmazeOptions, "size" | "view" | "radius" | "goalReward">;
  #level: GridLevel | null = null;
  #pos = 0;

  constructor(
    levels: readonly GridLevel[],
    o: Pick<ProcmazeOptions, "size" | "view" | "radius" | "goalReward" | "horizon">,
  ) {
    if (levels.length === 0) throw new CohortError("procmaze: no levels");
    for (const l of levels)
      if (l.size !== o.size || l.walls.length !== o.size * o.size)
        throw new CohortError(`procmaze: a level of size ${l.size} in a family of size ${o.size}`);
    this.#levels = levels;
    this.#o = o;
    this.horizon = o.horizon;
    this.obsDim = procmazeObsDim(o);
  }

  /** The level being played (after `reset`). */
  get level(): GridLevel {
    if (this.#level === null) throw new CohortError("procmaze: reset before step");
    return this.#level;
  }
  get position(): number {
    return this.#pos;
  }

  reset(seed: number): Float64Array {
    this.#level = this.#levels[(seed >>> 0) % this.#levels.length] as GridLevel;
    this.#pos = this.#level.start;
    return this.#observe();
  }

  step(action: Float64Array): StepResult {
    const l = this.level;
    const a = action[0] as number;
    const move = MOVES[a];
    if (move === undefined) throw new CohortError(`procmaze: action ${a} is not one of 0..3`);
    const x = (this.#pos % l.size) + move[0];
    const y = Math.floor(this.#pos / l.size) + move[1];
    if (x >= 0 && y >= 0 && x < l.size && y < l.size && l.walls[y * l.size + x] === 0) this.#pos = y * l.size + x;
    const done = this.#pos === l.goal;
    return { obs: this.#observe(), reward: done ? this.#o.goalReward : 0, done };
  }

  #observe(): Float64Array {
    const l = this.level;
    const S = l.size;
    const ax = this.#pos % S;
    const ay = Math.floor(this.#pos / S);
    const gx = l.goal % S;
    const gy = Math.floor(l.goal / S);
    const obs = new Float64Array(this.obsDim);
    if (this.#o.view === "global") {
      for (let c = 0; c < S * S; c++) obs[c] = l.walls[c] as number;
      obs[S * S + this.#pos] = 1;
      obs[2 * S * S + l.goal] = 1;
      return obs;
    }
    const r = this.#o.radius;
    const w = 2 * r + 1;
    for (let dy = -r; dy <= r; dy++)
      for (let dx = -r; dx <= r; dx++) {
        const x = ax + dx;
        const y = ay + dy;
        const k = (dy + r) * w + (dx + r);
        const inside = x >= 0 && y >= 0 && x < S && y < S;
        obs[k] = inside ? (l.walls[y * S + x] as number) : 1;
        obs[w * w + k] = inside && x === gx && y === gy ? 1 : 0;
      }
    obs[2 * w * w] = (gx - ax) / S;
    obs[2 * w * w + 1] = (gy - ay) / S;
    return obs;
  }

  dispose(): void {}
}

/** The env spec (registered in env.ts as `procmaze`). */
export const procmazeSpec: ControlEnvSpec<typeof procmazeOptions> = {
  name: "procmaze",
  doc: "procedurally generated grid mazes (ProcGen-like): walk to the goal; train levels for training, held-out test levels for evaluation",
  options: procmazeOptions,
  success: "terminated",
  create: async (o) => {
    const { train } = procmazeLevels(o);
    return () => new MazeEnv(train, o);
  },
  createEval: async (o) => {
    const { test } = procmazeLevels(o);
    return () => new MazeEnv(test, o);
  },
};
