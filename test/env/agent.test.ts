// Agent advantage estimators on hand-computed step batches (ALGORITHMS.md B.20–B.22, B.36, B.37, D.14), the
// broadcast of step advantages onto each turn's action tokens, and the agent presets.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  advantageEstimators,
  discountedStepReturns,
  drMas,
  gigpo,
  grpo,
  runEstimator,
  stepGrpo,
} from "../../src/algo/advantage.js";
import { alignSubAgentSteps, hiAgent, mGrpo } from "../../src/algo/agent.js";
import { parseAlgoConfig } from "../../src/algo/config.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import type { RewardBatch } from "../../src/algo/types.js";
import type { Episode, EpisodeStep } from "../../src/env/roller.js";
import { EpisodeSource, episodeCompletion, oneStepEpisodes } from "../../src/env/source.js";
import { CohortError } from "../../src/errors.js";
import { getPreset, resolvePreset } from "../../src/presets/index.js";
import { liveTensors, type Tensor } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { close } from "../helpers/close.js";

const seqValues = (a: { kind: string; values: unknown }): number[] => {
  assert.equal(a.kind, "sequence");
  return Array.from(a.values as Float64Array);
};

/** Two trajectories of one task: τ0 visits a, b, c (rewards 0, 0, 1), τ1 visits a, d (rewards 0, 0). */
const twoTrajectories = (): RewardBatch => ({
  rewards: Float64Array.of(0, 0, 1, 0, 0),
  groupIndex: Int32Array.of(0, 0, 0, 0, 0),
  trajectoryIndex: Int32Array.of(0, 0, 0, 1, 1),
  stepIndex: Int32Array.of(0, 1, 2, 0, 1),
  observationKey: ["a", "b", "c", "a", "d"],
});

describe("GiGPO (B.20)", () => {
  test("D.14: γ = 0.95, step rewards [0, 0, 1] → returns [0.9025, 0.95, 1.0]", () => {
    close(
      Array.from(discountedStepReturns(Float64Array.of(0, 0, 1), Int32Array.of(0, 0, 0), 0.95)),
      [0.9025, 0.95, 1.0],
      1e-12,
    );
  });
  test("episode advantage + anchor-state step advantage; singleton step groups add 0", () => {
    // A^E over the 5 step rows (code default): mean R^E = 3/5 → τ0 +0.4, τ1 −0.6.
    // Anchor "a" holds τ0 step 0 (R^S 0.9025) and τ1 step 0 (R^S 0): A^S = ±0.45125; b, c, d are singletons.
    close(seqValues(gigpo(twoTrajectories(), { gamma: 0.95 })), [0.85125, 0.4, 0.4, -1.05125, -0.6], 1e-12);
    // ω scales only the step part; per-trajectory episode statistics give ±0.5
    close(
      seqValues(gigpo(twoTrajectories(), { gamma: 0.95, omega: 2, episodeStats: "trajectories" })),
      [0.5 + 0.9025, 0.5, 0.5, -0.5 - 0.9025, -0.5],
      1e-12,
    );
  });
  test("mean-std mode normalises both levels", () => {
    const a = seqValues(gigpo(twoTrajectories(), { gamma: 0.95, mode: "mean-std", episodeStats: "trajectories" }));
    // episode: [1, 0] → ±0.7071; step group a: [0.9025, 0] → ±0.7071 (eps 1e-6)
    const e = 0.5 / (Math.SQRT1_2 + 1e-6);
    const s = 0.45125 / (0.9025 * Math.SQRT1_2 + 1e-6);
    close(a, [e + s, e, e, -e - s, -e], 1e-9);
  });
  test("steps of different task groups never share an anchor", () => {
    const b = { ...twoTrajectories(), groupIndex: Int32Array.of(0, 0, 0, 1, 1) };
    // every group has one trajectory: A^E = 0 and every step group is a singleton
    close(seqValues(gigpo(b, { gamma: 0.95 })), [0, 0, 0, 0, 0], 1e-12);
  });
});

describe("Step-GRPO (B.36)", () => {
  test("rewards are normalised per step index across the rollouts of a task", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 0, 1, 0),
      groupIndex: Int32Array.of(0, 0, 0, 0, 0),
      stepIndex: Int32Array.of(0, 1, 0, 1, 0),
    };
    const a = seqValues(stepGrpo(b));
    // step 0: [1, 0, 0] (rows 0, 2, 4); step 1: [0, 1] (rows 1, 3)
    const s0 = Math.sqrt(1 / 3);
    close(
      a,
      [
        2 / 3 / (s0 + 1e-6),
        -0.5 / (Math.SQRT1_2 + 1e-6),
        -1 / 3 / (s0 + 1e-6),
        0.5 / (Math.SQRT1_2 + 1e-6),
        -1 / 3 / (s0 + 1e-6),
      ],
      1e-9,
    );
  });
});

describe("Dr. MAS (B.21)", () => {
  test("each agent is normalised with its own statistics within the prompt group", () => {
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 5, 3, 0, 1),
      groupIndex: Int32Array.of(0, 0, 0, 0, 0, 0),
      agentId: Int32Array.of(0, 0, 1, 1, 0, 1),
    };
    const a = seqValues(drMas(b));
    const agent0 = seqValues(grpo({ rewards: Float64Array.of(1, 0, 0), groupIndex: Int32Array.of(0, 0, 0) }));
    const agent1 = seqValues(grpo({ rewards: Float64Array.of(5, 3, 1), groupIndex: Int32Array.of(0, 0, 0) }));
    close(a, [agent0[0]!, agent0[1]!, agent1[0]!, agent1[1]!, agent0[2]!, agent1[2]!], 1e-12);
    // one global baseline would differ
    assert.notDeepEqual(a, seqValues(grpo(b)));
  });
});

describe("M-GRPO (B.22)", () => {
  // τ0 (R = 1): main + 1 sub; τ1 (R = 0): main + 3 subs; τ2 (R = 1): main only
  const batch: RewardBatch = {
    rewards: Float64Array.of(1, 1, 0, 0, 0, 0, 1),
    groupIndex: Int32Array.of(0, 0, 0, 0, 0, 0, 0),
    trajectoryIndex: Int32Array.of(0, 0, 1, 1, 1, 1, 2),
    stepIndex: Int32Array.of(0, 1, 0, 1, 2, 3, 0),
    agentId: Int32Array.of(0, 1, 0, 1, 1, 1, 0),
  };
  test("alignment: sub-agent steps cut or repeated to K per trajectory, main steps once", () => {
    assert.deepEqual(Array.from(alignSubAgentSteps(batch, 2)), [1, 2, 1, 1, 1, 0, 1]);
    // K = 3 with 1 invocation repeats it 3 times; with 3, all once
    assert.deepEqual(Array.from(alignSubAgentSteps(batch, 3)), [1, 3, 1, 1, 1, 1, 1]);
    // K = 2 with 3 invocations and shuffled rows: the first two by step index are kept
    const shuffled = { ...batch, stepIndex: Int32Array.of(0, 1, 0, 3, 1, 2, 0) };
    assert.deepEqual(Array.from(alignSubAgentSteps(shuffled, 2)), [1, 2, 1, 0, 1, 1, 1]);
  });
  test("main and sub-agents normalised separately over the aligned multiset", () => {
    const a = seqValues(mGrpo(batch, { subAgentSteps: 2 }));
    // main rewards [1, 0, 1]: mean 2/3, std √(1/3); sub multiset [1, 1, 0, 0]: mean 0.5, std √(1/3)
    const s = Math.sqrt(1 / 3) + 1e-6;
    close(a, [1 / 3 / s, 2 * (0.5 / s), -2 / 3 / s, -0.5 / s, -0.5 / s, 0, 1 / 3 / s], 1e-9);
  });
  test("needs agent ids; a bad K is an error", () => {
    assert.throws(() => mGrpo({ rewards: Float64Array.of(1, 0), groupIndex: Int32Array.of(0, 0) }), /agentId/);
    assert.throws(() => mGrpo(batch, { subAgentSteps: 0 }), /m_grpo\.subAgentSteps: .*>=1/);
  });
});

describe("Hi-Agent foresight (B.37)", () => {
  const b = {
    rewards: Float64Array.of(0, 0, 0, 1),
    groupIndex: Int32Array.of(0, 0, 0, 0),
    trajectoryIndex: Int32Array.of(0, 1, 0, 1),
    stepIndex: Int32Array.of(0, 0, 1, 1),
    observationKey: ["a", "a", "b", "c"],
    executed: Uint8Array.of(1, 0, 1, 1),
  };
  test("r_high = step reward + λ·executed, normalised over the steps from the same state", () => {
    // state a: r_high [0.5, 0] → ±0.25 / (std 0.35355 + eps); b and c are singletons → 0
    const d = 0.25 / (Math.sqrt(0.125) + 1e-6);
    close(seqValues(hiAgent(b)), [d, -d, 0, 0], 1e-9);
    // γ = 1: τ1's step 0 sees the later reward 1 → r_high a: [0.5, 1]
    close(seqValues(hiAgent(b, { gamma: 1 })), [-d, d, 0, 0], 1e-9);
    // without execution feedback the λ term vanishes
    close(seqValues(hiAgent({ ...b, executed: undefined })), [0, 0, 0, 0], 1e-12);
  });
  test("options are checked", () => {
    assert.throws(() => hiAgent(b, { lamda: 1 } as never), /unknown option "lamda" for hi_agent/);
    assert.throws(() => hiAgent(b, { lambda: -1 }), CohortError);
  });
});

describe("single-turn rows are one-step episodes", () => {
  test("gigpo, step_grpo, dr_mas and m_grpo reduce to group-relative advantages", () => {
    const problems = [{ id: "p" }, { id: "p" }, { id: "q" }, { id: "q" }];
    const b: RewardBatch = {
      rewards: Float64Array.of(1, 0, 0, 0),
      groupIndex: Int32Array.of(0, 0, 1, 1),
      ...oneStepEpisodes(problems),
    };
    const g = seqValues(grpo(b));
    for (const est of ["step_grpo", "dr_mas", "m_grpo"])
      close(seqValues(runEstimator(advantageEstimators.get(est), b, {}) as never), g, 1e-12);
    // gigpo (mean mode): A^E = r − mean, plus the same again from the shared anchor (the prompt)
    close(seqValues(gigpo(b, { gamma: 0.95 })), [1, -1, 0, 0], 1e-12);
  });
});

/** A synthetic episode whose steps sit at the given completion spans (other tokens are observations). */
function episode(
  steps: { key: string; reward: number; span: [number, number]; agent?: number }[],
  len: number,
): Episode {
  const lossMask = new Array<number>(len).fill(0);
  const st: EpisodeStep[] = steps.map((s) => {
    for (let j = s.span[0]; j < s.span[1]; j++) lossMask[j] = 1;
    return {
      observation: s.key,
      stateKey: s.key,
      action: "R",
      reward: s.reward,
      info: { valid: true, ...(s.agent !== undefined ? { agent: s.agent } : {}) },
      start: s.span[0],
      end: s.span[1],
    };
  });
  return {
    prompt: [1, 5],
    tokens: new Array<number>(len).fill(7),
    logprobs: new Array<number>(len).fill(-1),
    lossMask,
    steps: st,
    totalReward: steps.reduce((a, s) => a + s.reward, 0),
    success: steps.some((s) => s.reward > 0),
    finish: "done",
  };
}

describe("step advantages reach each turn's action tokens (EpisodeSource.advantages)", () => {
  const source = new EpisodeSource({ name: "maze", options: {}, template: "text" } as never, new CharTokenizer());
  const eps = [
    episode(
      [
        { key: "a", reward: 0, span: [0, 2] },
        { key: "b", reward: 0, span: [5, 7] },
        { key: "c", reward: 1, span: [9, 11] },
      ],
      11,
    ),
    episode(
      [
        { key: "a", reward: 0, span: [0, 2] },
        { key: "d", reward: 0, span: [4, 6] },
      ],
      6,
    ),
  ];
  const rows = eps.map(episodeCompletion);
  const groupIndex = Int32Array.of(0, 0);
  test("gigpo: per-step values on the action columns, 0 on observation columns and padding", () => {
    const before = liveTensors();
    const algo = resolvePreset("gigpo");
    const stage = source.advantages(new Pipeline(algo), source.scores(rows), rows, groupIndex);
    assert.equal(stage.advantages.kind, "token");
    const t = stage.advantages.values as Tensor;
    assert.deepEqual(t.shape, [2, 11]);
    const v = Array.from(t.data() as Float32Array);
    t.dispose();
    const [a0, a1, a2, b0, b1] = [0.85125, 0.4, 0.4, -1.05125, -0.6];
    const row0 = [a0, a0, 0, 0, 0, a1, a1, 0, 0, a2, a2];
    const row1 = [b0, b0, 0, 0, b1, b1, 0, 0, 0, 0, 0];
    close(v, [...row0, ...row1], 1e-6);
    assert.deepEqual(Array.from(stage.batch.rewards), [1, 0], "episode returns");
    assert.equal(stage.metrics["env/success_rate"], 0.5);
    assert.equal(liveTensors(), before, "the hole mask is released");
  });
  test("grpo: one advantage per episode (the return), broadcast by the loss over the action tokens", () => {
    const stage = source.advantages(new Pipeline(resolvePreset("grpo")), source.scores(rows), rows, groupIndex);
    assert.equal(stage.advantages.kind, "sequence");
    close(Array.from(stage.advantages.values as Float64Array), [0.7071063, -0.7071063], 1e-6);
  });
});

describe("agent presets", () => {
  const agents = { gigpo: "CODE", step_grpo: "ABSTRACT", dr_mas: "CODE", m_grpo: "ABSTRACT", hi_agent: "ABSTRACT" };
  test("exist with arXiv id and tag, resolve, and read step rows", () => {
    for (const [name, tag] of Object.entries(agents)) {
      const p = getPreset(name);
      assert.match(p.arxiv, /^\d{4}\.\d{5}$/, name);
      assert.equal(p.confidence, tag, name);
      if (tag === "ABSTRACT") assert.match(p.doc, /design choice/, name);
      const c = resolvePreset(name);
      assert.ok(advantageEstimators.has(c.advantage.estimator), name);
      assert.ok(advantageEstimators.get(c.advantage.estimator).rows !== undefined, name);
    }
    const g = resolvePreset("gigpo");
    assert.deepEqual(g.advantage.options, {
      gamma: 0.95,
      omega: 1,
      mode: "mean",
      eps: 1e-6,
      episodeStats: "steps",
      singleton: "zero",
    });
  });
  test("the estimators are valid config names", () => {
    for (const est of ["m_grpo", "hi_agent"]) {
      assert.equal(parseAlgoConfig({ advantage: { estimator: est } }).advantage.estimator, est);
    }
  });
});
