/**
 * A text grid-world maze for small models: walk from the start cell to the goal within the turn limit
 * (default 10 moves; `env.maxTurns` in a train config).
 *
 * Tiny action space and short observations, so a char-level model can learn it. An observation is where the
 * goal lies from the current cell (steps right R / left L, then down D / up U; y grows downwards) and which
 * moves are open:
 * ```
 * observation   "R3D1:DR\n"   the goal is 3 cells right and 1 down; moves D and R are open
 * action        "R\n"         one of U D L R, ended by a newline
 * observation   "R2D1:UDLR\n" the next cell
 * ```
 * (the newlines come from the `text` template: every turn is one line).
 * Rewards: 1 on reaching the goal (the episode ends, success), `progressReward` for a move that brings the
 * agent closer to the goal (shortest-path distance), 0 otherwise. A wall, the border or any other text leaves
 * the agent where it is (`info.valid` false). `info.executed` is true when the move reduced the distance
 * (Hi-Agent's execution feedback). The observation of a cell never depends on the path that led there, so
 * trajectories of the same maze revisit identical observations: GiGPO's anchor states (`stateKey` = cell).
 *
 * Tasks are random layouts (walls with `wallDensity`, start and goal connected at a shortest-path distance in
 * [minDistance, maxDistance]); train and eval tasks never overlap (split by a hash of the layout).
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { envEvalFraction, parseOptions } from "../task/options.js";
import type { Rng } from "../task/rng.js";
import { drawInSplit } from "../task/split.js";
import type { Split } from "../task/types.js";
import type { EnvFactory, Environment, EnvSpec, ScriptedPolicy, StepResult } from "./types.js";

export const mazeOptions = z
  .strictObject({
    width: z.number().int().min(2).max(9).default(5).meta({ description: "Columns of the grid (x = 0 … width−1)." }),
    height: z.number().int().min(2).max(9).default(5).meta({ description: "Rows of the grid (y = 0 … height−1)." }),
    wallDensity: z
      .number()
      .min(0)
      .max(0.6)
      .default(0.2)
      .meta({ description: "Probability that a cell is a wall (start and goal never are)." }),
    minDistance: z
      .number()
      .int()
      .min(1)
      .default(2)
      .meta({ description: "Shortest-path distance from start to goal, at least." }),
    maxDistance: z
      .number()
      .int()
      .min(1)
      .default(6)
      .meta({ description: "Shortest-path distance from start to goal, at most." }),
    progressReward: z.number().min(0).max(1).default(0).meta({
      description: "Reward of a move that brings the agent closer to the goal (0 = sparse: 1 at the goal only).",
    }),
    evalFraction: envEvalFraction("layouts"),
  })
  .refine((o) => o.minDistance <= o.maxDistance, { message: "minDistance must be ≤ maxDistance" })
  .meta({ description: "Grid-world maze with one-letter moves and short cell observations." });

export type MazeOptions = z.input<typeof mazeOptions>;
type MazeConfig = z.output<typeof mazeOptions>;

/** One maze: `walls` is row-major, "#" = wall, "." = open; positions are [x, y]. */
export interface MazeTask {
  width: number;
  height: number;
  walls: string;
  start: [number, number];
  goal: [number, number];
}

export const MOVES = { U: [0, -1], D: [0, 1], L: [-1, 0], R: [1, 0] } as const;
export type Move = keyof typeof MOVES;
const MOVE_ORDER: readonly Move[] = ["U", "D", "L", "R"];

function isOpen(t: MazeTask, x: number, y: number): boolean {
  return x >= 0 && y >= 0 && x < t.width && y < t.height && t.walls[y * t.width + x] === ".";
}

/** Open moves from (x, y), in the order U D L R. */
export function openMoves(t: MazeTask, x: number, y: number): Move[] {
  return MOVE_ORDER.filter((m) => isOpen(t, x + MOVES[m][0], y + MOVES[m][1]));
}

/** Shortest-path distance of every cell to (gx, gy) (−1 = unreachable or wall), by breadth-first search. */
export function distancesTo(t: MazeTask, gx: number, gy: number): Int32Array {
  const d = new Int32Array(t.width * t.height).fill(-1);
  if (!isOpen(t, gx, gy)) return d;
  d[gy * t.width + gx] = 0;
  const queue: [number, number][] = [[gx, gy]];
  for (let q = 0; q < queue.length; q++) {
    const [x, y] = queue[q] as [number, number];
    for (const m of MOVE_ORDER) {
      const nx = x + MOVES[m][0];
      const ny = y + MOVES[m][1];
      if (isOpen(t, nx, ny) && d[ny * t.width + nx] === -1) {
        d[ny * t.width + nx] = (d[y * t.width + x] as number) + 1;
        queue.push([nx, ny]);
      }
    }
  }
  return d;
}

/** The moves from (x, y) that lie on a shortest path to the goal. */
export function optimalMoves(t: MazeTask, x: number, y: number, dist = distancesTo(t, t.goal[0], t.goal[1])): Move[] {
  const here = dist[y * t.width + x] as number;
  return openMoves(t, x, y).filter((m) => dist[(y + MOVES[m][1]) * t.width + x + MOVES[m][0]] === here - 1);
}

/** The observation of a cell: the goal's offset (R/L then D/U with counts), ":", the open moves. */
export function cellObservation(t: MazeTask, x: number, y: number): string {
  const dx = t.goal[0] - x;
  const dy = t.goal[1] - y;
  const h = dx > 0 ? `R${dx}` : dx < 0 ? `L${-dx}` : "";
  const v = dy > 0 ? `D${dy}` : dy < 0 ? `U${-dy}` : "";
  return `${h}${v}:${openMoves(t, x, y).join("")}`;
}

/** Draws a random maze layout (not yet checked for a split). */
export function randomMaze(rng: Rng, c: MazeConfig): MazeTask {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const cells = Array.from({ length: c.width * c.height }, () => (rng.float() < c.wallDensity ? "#" : "."));
    const open = cells.flatMap((ch, i) => (ch === "." ? [i] : []));
    if (open.length < 2) continue;
    const gi = rng.pick(open);
    const t: MazeTask = {
      width: c.width,
      height: c.height,
      walls: cells.join(""),
      start: [0, 0],
      goal: [gi % c.width, Math.floor(gi / c.width)],
    };
    const dist = distancesTo(t, t.goal[0], t.goal[1]);
    const starts = open.filter((i) => (dist[i] as number) >= c.minDistance && (dist[i] as number) <= c.maxDistance);
    if (starts.length === 0) continue;
    const si = rng.pick(starts);
    t.start = [si % c.width, Math.floor(si / c.width)];
    return t;
  }
  throw new CohortError(
    `maze: no layout with a start at distance ${c.minDistance}–${c.maxDistance} from the goal in 1000 draws; ` +
      `lower wallDensity or minDistance, or enlarge the grid`,
  );
}

/** One episode of a maze. */
export class MazeEnv implements Environment<MazeTask> {
  #task: MazeTask | null = null;
  #dist: Int32Array = new Int32Array(0);
  /** Current cell. */
  x = 0;
  y = 0;

  constructor(readonly progressReward = 0) {}

  get task(): MazeTask {
    if (this.#task === null) throw new CohortError("maze: step() before reset(); reset the environment first");
    return this.#task;
  }

  /** Shortest-path distance from the current cell to the goal. */
  get distance(): number {
    return this.#dist[this.y * this.task.width + this.x] as number;
  }

  reset(_seed: number, task: MazeTask): string {
    checkMaze(task);
    this.#task = task;
    this.#dist = distancesTo(task, task.goal[0], task.goal[1]);
    [this.x, this.y] = task.start;
    return cellObservation(task, this.x, this.y);
  }

  step(action: string): StepResult {
    const t = this.task;
    const move = action.trim();
    const before = this.distance;
    let valid = false;
    if (move.length === 1 && move in MOVES) {
      const [dx, dy] = MOVES[move as Move];
      if (isOpen(t, this.x + dx, this.y + dy)) {
        this.x += dx;
        this.y += dy;
        valid = true;
      }
    }
    const executed = this.distance < before;
    if (this.x === t.goal[0] && this.y === t.goal[1]) {
      return { observation: "", reward: 1, done: true, info: { valid, executed, success: true } };
    }
    return {
      observation: cellObservation(t, this.x, this.y),
      reward: executed ? this.progressReward : 0,
      done: false,
      info: { valid, executed },
    };
  }

  stateKey(): string {
    return `${this.x},${this.y}`;
  }
}

/**
 * A noisy shortest-path walker, for SFT data: with probability `noise` a uniformly random open move (a detour
 * or a step back), otherwise a uniformly random move among those on a shortest path to the goal. It never
 * walks into a wall, so a model imitating it learns to read the open moves, and only its detours are noise.
 */
export function mazeExpert(noise: number): ScriptedPolicy<MazeTask> {
  return (env, rng) => {
    const m = env as MazeEnv;
    const open = openMoves(m.task, m.x, m.y);
    const best = optimalMoves(m.task, m.x, m.y);
    if (best.length === 0 || rng.float() < noise) return rng.pick(open.length > 0 ? open : MOVE_ORDER);
    return rng.pick(best);
  };
}

function checkMaze(t: MazeTask): void {
  const ok =
    Number.isInteger(t.width) &&
    Number.isInteger(t.height) &&
    t.walls.length === t.width * t.height &&
    /^[#.]*$/.test(t.walls) &&
    isOpen(t, t.start[0], t.start[1]) &&
    isOpen(t, t.goal[0], t.goal[1]);
  if (!ok) {
    throw new CohortError(
      `maze: invalid task ${JSON.stringify(t)}; walls must hold width·height cells of "#"/"." with start and goal open`,
    );
  }
}

/** The maze environment kind for `options`. */
export function mazeFactory(options: MazeOptions = {}, path = "env.options"): EnvFactory<MazeTask> {
  const c = parseOptions(mazeOptions, options, path);
  return {
    name: "maze",
    limits: { maxTurns: 10, maxActionTokens: 4 },
    tools: [],
    sampleTask(rng: Rng, split: Split) {
      const task = drawInSplit("maze", split, c.evalFraction, () => {
        const t = randomMaze(rng, c);
        return { canonical: `${t.width}x${t.height}|${t.walls}|${t.start}|${t.goal}`, value: t };
      });
      const h = createHash("sha256").update(JSON.stringify(task)).digest("hex").slice(0, 12);
      return { id: `maze-${h}`, task };
    },
    make: () => new MazeEnv(c.progressReward),
    expert: (noise) => mazeExpert(noise),
  };
}

export const mazeSpec: EnvSpec<MazeOptions> = {
  name: "maze",
  description: "Grid-world maze: moves U/D/L/R, observation = cell and open moves, reward 1 at the goal.",
  options: mazeOptions,
  create: (o, path) => mazeFactory(o, path),
};
