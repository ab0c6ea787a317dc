/**
 * procmaze: levels are a function of the level seed, the train and test splits are disjoint, every level is
 * solvable from its start, and a hand-built level steps, observes and rewards as written.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { controlEnvSpec } from "../../src/control/env.js";
import {
  bfsDistances,
  type GridLevel,
  levelKey,
  MazeEnv,
  procmazeLevels,
  procmazeOptions,
} from "../../src/control/procmaze.js";
import { ConfigError } from "../../src/errors.js";
import { Rng } from "../../src/task/rng.js";

const opts = (o: Record<string, unknown> = {}) => procmazeOptions.parse(o);

test("procmaze levels are a function of the level seed; train and test are disjoint and solvable", () => {
  const o = opts({ levels: { train: 60, test: 40 }, levelSeed: 3 });
  const a = procmazeLevels(o);
  const b = procmazeLevels(o);
  assert.deepEqual(a.train.map(levelKey), b.train.map(levelKey));
  assert.deepEqual(a.test.map(levelKey), b.test.map(levelKey));
  const other = procmazeLevels({ ...o, levelSeed: 4 });
  assert.notDeepEqual(other.train.map(levelKey), a.train.map(levelKey));
  const train = new Set(a.train.map(levelKey));
  const test = new Set(a.test.map(levelKey));
  assert.equal(train.size, 60);
  assert.equal(test.size, 40);
  for (const k of test) assert.ok(!train.has(k), "a test level is also a train level");
  for (const l of [...a.train, ...a.test]) {
    assert.equal(l.walls[l.start], 0);
    assert.equal(l.walls[l.goal], 0);
    assert.ok((bfsDistances(l)[l.goal] as number) >= o.minDistance);
  }
  // more train levels keep the first ones (level i depends on i only)
  const more = procmazeLevels({ ...o, levels: { train: 80, test: 10 } });
  assert.deepEqual(more.train.slice(0, 60).map(levelKey), a.train.map(levelKey));
  // the walls vary: not every level is the same layout with a different start
  assert.ok(new Set(a.train.map((l) => l.walls.join(""))).size > 50);
});

test("procmaze: a tiny family that cannot hold the levels asked for fails with a clear error", () => {
  assert.throws(
    () => procmazeLevels(opts({ size: 3, wallDensity: 0, minDistance: 5, levels: { train: 5, test: 1 } })),
    /no level with the goal ≥ 5 moves/,
  );
  assert.throws(
    () => procmazeLevels(opts({ size: 3, wallDensity: 0, minDistance: 1, levels: { train: 200, test: 10 } })),
    /only \d+ distinct levels/,
  );
});

/**
 * 4 × 4, walls at (1,0), (1,1), (1,2); start (0,0), goal (2,0). Row-major cells:
 *   S # G .
 *   . # . .
 *   . # . .
 *   . . . .
 * Shortest path: down ×3, right ×2, up ×3 = 8 moves.
 */
const HAND: GridLevel = {
  size: 4,
  walls: Uint8Array.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
  start: 0,
  goal: 2,
};
const UP = Float64Array.of(0);
const DOWN = Float64Array.of(1);
const LEFT = Float64Array.of(2);
const RIGHT = Float64Array.of(3);

test("procmaze on a hand-built level: walls and edges block, the goal pays goalReward and ends the episode", () => {
  assert.equal(bfsDistances(HAND)[HAND.goal], 8);
  const env = new MazeEnv([HAND], { size: 4, view: "egocentric", radius: 1, goalReward: 10, horizon: 20 });
  env.reset(12345);
  assert.equal(env.position, 0);
  assert.deepEqual(env.step(RIGHT), { obs: env.step(UP).obs, reward: 0, done: false }); // wall, then edge
  assert.equal(env.position, 0);
  env.step(LEFT);
  assert.equal(env.position, 0, "off the grid stays put");
  for (const a of [DOWN, DOWN, DOWN, RIGHT, RIGHT, UP, UP]) {
    const r = env.step(a);
    assert.equal(r.reward, 0);
    assert.equal(r.done, false);
  }
  assert.equal(env.position, 6);
  const last = env.step(UP);
  assert.equal(last.reward, 10);
  assert.equal(last.done, true);
  assert.equal(env.position, 2);
});

test("procmaze observations: the egocentric window with its compass, and the global grid", () => {
  const ego = new MazeEnv([HAND], { size: 4, view: "egocentric", radius: 1, goalReward: 10, horizon: 20 });
  assert.equal(ego.obsDim, 2 * 9 + 2);
  const o = ego.reset(0);
  // window rows y = −1..1 around (0,0): outside → wall; (1,0) and (1,1) are walls; no goal in sight
  assert.deepEqual([...o.subarray(0, 9)], [1, 1, 1, 1, 0, 1, 1, 0, 1]);
  assert.deepEqual([...o.subarray(9, 18)], [0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...o.subarray(18)], [2 / 4, 0]);
  // walk to (2,1), down to (2,2), back up, then right to (3,1): the goal (2,0) is up-left in the window
  for (const a of [DOWN, DOWN, DOWN, RIGHT, RIGHT, UP, UP, DOWN, UP]) assert.equal(ego.step(a).done, false);
  assert.equal(ego.position, 6);
  const p = ego.step(RIGHT).obs;
  assert.equal(ego.position, 7);
  assert.deepEqual([...p.subarray(9, 18)], [1, 0, 0, 0, 0, 0, 0, 0, 0], "goal up-left of (3,1)");
  assert.deepEqual([...p.subarray(0, 9)], [0, 0, 1, 0, 0, 1, 0, 0, 1], "right edge reads as wall");
  assert.deepEqual([...p.subarray(18)], [-1 / 4, -1 / 4]);

  const glob = new MazeEnv([HAND], { size: 4, view: "global", radius: 1, goalReward: 10, horizon: 20 });
  assert.equal(glob.obsDim, 48);
  const g = glob.reset(7);
  assert.deepEqual([...g.subarray(0, 16)], [...HAND.walls]);
  assert.equal(g.subarray(16, 32).indexOf(1), 0);
  assert.equal(g.subarray(32, 48).indexOf(1), 2);
  assert.equal(
    g.reduce((s, x) => s + x, 0),
    5,
  );
});

test("procmaze episodes are deterministic under a seed; the seed picks the level; eval plays test levels", async () => {
  const { spec, options } = controlEnvSpec("procmaze", { levels: { train: 8, test: 5 }, horizon: 15 });
  const make = await spec.create(options);
  const makeEval = await (spec.createEval as NonNullable<typeof spec.createEval>)(options);
  const play = (mk: () => MazeEnv, seed: number) => {
    const env = mk();
    const rng = Rng.fromSeed(seed);
    const out: number[] = [...env.reset(seed)];
    for (let t = 0; t < env.horizon; t++) {
      const r = env.step(Float64Array.of(rng.int(0, 3)));
      out.push(...r.obs, r.reward, r.done ? 1 : 0);
      if (r.done) break;
    }
    return { out, key: levelKey(env.level) };
  };
  const a = play(make as () => MazeEnv, 11);
  assert.deepEqual(play(make as () => MazeEnv, 11), a);
  assert.equal(play(make as () => MazeEnv, 11 + 8).key, a.key, "seed mod 8 picks the level");
  const levels = procmazeLevels(options as never);
  const trainKeys = new Set(levels.train.map(levelKey));
  for (let s = 0; s < 20; s++) {
    assert.ok(trainKeys.has(play(make as () => MazeEnv, s).key));
    assert.ok(!trainKeys.has(play(makeEval as () => MazeEnv, s).key));
  }
  assert.equal(spec.success, "terminated");
});

test("procmaze options are checked with their path", () => {
  assert.throws(
    () => controlEnvSpec("procmaze", { levels: { train: 0 } }),
    (e: unknown) => e instanceof ConfigError && e.path === "env.options.levels.train",
  );
  assert.throws(() => controlEnvSpec("procmaze", { view: "pixels" }), /env\.options\.view/);
  assert.throws(() => controlEnvSpec("procmaze", { colour: 1 }), /procmaze takes size, wallDensity/);
});
