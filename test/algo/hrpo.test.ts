import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { hopGrouped, mashostHrpo } from "../../src/algo/hrpo.js";
import type { RewardBatch } from "../../src/algo/types.js";
import { CohortError } from "../../src/errors.js";

const close = (got: ArrayLike<number>, want: number[], tol = 1e-6) => {
  assert.equal(got.length, want.length);
  want.forEach((w, i) => assert.ok(Math.abs((got[i] as number) - w) <= tol, `[${i}] ${got[i]} vs ${w}`));
};

describe("hop_grouped (Dr. Zero HRPO, ALGORITHMS.md §G.6)", () => {
  const batch = (fields: Record<string, unknown>[], rewards: number[]): RewardBatch => ({
    rewards: Float64Array.from(rewards),
    // one sample per prompt: every row its own prompt group
    groupIndex: Int32Array.from(rewards, (_, i) => i),
    fields,
  });
  test("§G.6 vector: sources [h1,h1,h1,h2,h2,h3]; the singleton h3 gets mean 0, std 1", () => {
    const b = batch(
      ["h1", "h1", "h1", "h2", "h2", "h3"].map((hop) => ({ hops: hop })),
      [0.9, 0.5, 0.4, 1.2, 0.6, 0.8],
    );
    close(hopGrouped(b).values, [1.1338891, -0.377963, -0.7559261, 0.7071051, -0.7071051, 0.7999992]);
  });
  test("the groups cross prompts: per-prompt GRPO on one sample each gives zero, hop grouping does not", () => {
    const b = batch([{ hops: 2 }, { hops: 2 }], [1, 0]);
    close(hopGrouped(b).values, [0.7071064, -0.7071064]);
    // acrossPrompts false: the key is prompt × hop, so every row is a singleton here
    close(hopGrouped(b, { acrossPrompts: false, singleton: "zero" }).values, [0, 0]);
  });
  test("options change the result: field, singleton, std", () => {
    const b = batch(
      [
        { hops: 1, kind: "a" },
        { hops: 1, kind: "b" },
        { hops: 2, kind: "b" },
      ],
      [1, 0, 0.5],
    );
    close(hopGrouped(b).values, [0.7071064, -0.7071064, 0.5 / (1 + 1e-6)]);
    close(hopGrouped(b, { singleton: "zero" }).values, [0.7071064, -0.7071064, 0]);
    close(hopGrouped(b, { singleton: "reward" }).values, [0.7071064, -0.7071064, 0.5]);
    close(hopGrouped(b, { std: "population" }).values, [0.999998, -0.999998, 0.5 / (1 + 1e-6)], 1e-5);
    // by `kind`: a singleton and a pair {0, 0.5}
    close(hopGrouped(b, { field: "kind" }).values, [1 / (1 + 1e-6), -0.7071054, 0.7071054], 1e-5);
  });
  test("a missing field or a run without prompt fields is a clear error", () => {
    assert.throws(
      () => hopGrouped(batch([{ hops: 1 }, { other: 2 }], [1, 0])),
      (e: Error) => {
        assert.ok(e instanceof CohortError);
        assert.match(e.message, /row 1 has no scalar field "hops" \(fields: other\)/);
        return true;
      },
    );
    assert.throws(
      () => hopGrouped({ rewards: Float64Array.of(1), groupIndex: Int32Array.of(0) }),
      /carries no prompt fields/,
    );
  });
});

describe("mashost_hrpo (MasHost HRPO, ALGORITHMS.md §G.5)", () => {
  test("§G.5 vector: R = [0.8, 0.4, 0.6], actions [[1,0,1],[0,0],[1,1,1,0]]", () => {
    const actions = [
      [1, 0, 1],
      [0, 0],
      [1, 1, 1, 0],
    ];
    const R = [0.8, 0.4, 0.6];
    const traj = actions.flatMap((a, i) => a.map(() => i));
    const b: RewardBatch = {
      rewards: Float64Array.from(actions.flat()),
      groupIndex: new Int32Array(traj.length),
      trajectoryIndex: Int32Array.from(traj),
      episodeRewards: Float64Array.from(traj, (i) => R[i] as number),
    };
    close(
      mashostHrpo(b).values,
      [1.421631, 0.47295, 1.421631, -1.52704, -1.52704, 0.421636, 0.421636, 0.421636, -0.527045],
      2e-5,
    );
    // λ = 0: only the system's group-relative advantage
    close(
      mashostHrpo(b, { lambda: 0 }).values,
      [1, 1, 1, -1, -1, 0, 0, 0, 0].map((x) => x * 0.999995),
      2e-6,
    );
  });
  test("groups are kept apart, and rows without systems are refused", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 1, 0),
      groupIndex: Int32Array.of(0, 0, 1, 1),
      trajectoryIndex: Int32Array.of(0, 1, 2, 3),
      episodeRewards: Float64Array.of(1, 0, 5, 5),
    };
    const a = mashostHrpo(b).values;
    // group 1: equal R → the system term is 0, only the action-wise term
    close([a[2] as number, a[3] as number], [0.5 * 0.7071064, -0.5 * 0.7071064]);
    assert.throws(() => mashostHrpo({ rewards: Float64Array.of(1), groupIndex: Int32Array.of(0) }), /trajectoryIndex/);
    // without episodeRewards, R is the sum of the system's action-wise rewards
    const sum = mashostHrpo({ ...b, episodeRewards: undefined as never });
    const given = mashostHrpo({ ...b, episodeRewards: Float64Array.of(1, 0, 1, 0) });
    close(sum.values, Array.from(given.values));
  });
  test("actionStats agent: action-wise statistics per agent id within the group", () => {
    // R = [1, 0]; agent 1 pool r = [0.1, −0.1], agent 0 pool r = [1, 0]: every standardised value is ±1/√2
    const b: RewardBatch = {
      rewards: Float64Array.of(0.1, 1, -0.1, 0),
      groupIndex: Int32Array.of(0, 0, 0, 0),
      trajectoryIndex: Int32Array.of(0, 0, 1, 1),
      agentId: Int32Array.of(1, 0, 1, 0),
      episodeRewards: Float64Array.of(1, 1, 0, 0),
    };
    const sys = 0.5 / (Math.SQRT1_2 + 1e-6); // R: deviation 0.5, std 1/√2
    const node = 0.1 / (0.1 * Math.SQRT2 + 1e-6); // agent 1: deviation 0.1, std 0.1·√2
    const exit = 0.5 / (Math.SQRT1_2 + 1e-6); // agent 0: deviation 0.5, std 1/√2
    close(
      mashostHrpo(b, { actionStats: "agent" }).values,
      [sys + 0.5 * node, sys + 0.5 * exit, -sys - 0.5 * node, -sys - 0.5 * exit],
      1e-12,
    );
    assert.throws(
      () => mashostHrpo({ ...b, agentId: undefined as never }, { actionStats: "agent" }),
      /actionStats "agent" needs agentId/,
    );
    assert.throws(() => mashostHrpo(b, { actionStats: "role" as never }), /actionStats/);
  });
});
