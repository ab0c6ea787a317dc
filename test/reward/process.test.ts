import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { builtinRewards } from "../../src/reward/builtin.js";
import {
  costAwareF1,
  distinctN,
  drZeroAnswer,
  drZeroDifficulty,
  drZeroProposerReward,
  drZeroTool,
  multiRoleReward,
  perspectiveDiversity,
  progressiveRetrieval,
  roleTags,
  tokenF1,
} from "../../src/reward/process.js";

const near = (a: number, b: number, tol = 1e-7) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe("GraphRAG-R1 rewards (ALGORITHMS.md §G.7)", () => {
  test("PRA(0..4) = [0, 1, 1.5, 1.75, 1.875]; the cap and α change it", () => {
    [0, 1, 1.5, 1.75, 1.875].forEach((w, n) => near(progressiveRetrieval(n), w));
    near(progressiveRetrieval(4, { cap: 1.6 }), 1.6);
    near(progressiveRetrieval(2, { alpha: 0.25 }), 1.25);
    assert.throws(() => progressiveRetrieval(-1), /integer ≥ 0/);
    assert.throws(() => progressiveRetrieval(1, { alpha: 1 }), /alpha/);
  });
  test("CAF(0.8, 2, 1000) = 0.5926546 and CAF(0.8, 5, 3000) = 0.3594632", () => {
    near(costAwareF1(0.8, 2, 1000), 0.5926546);
    near(costAwareF1(0.8, 5, 3000), 0.3594632);
    near(costAwareF1(0.8, 2, 1000, { lambda: 0, mu: 0 }), 0.8);
    assert.throws(() => costAwareF1(1.5, 0, 0), /f1 must be in \[0, 1\]/);
  });
  test("token F1 by hand", () => {
    near(tokenF1("the big cat", "the cat"), (2 * (2 / 3) * 1) / (2 / 3 + 1));
    near(tokenF1("dog", "cat"), 0);
  });
});

describe("MultiRole-R1 rewards (ALGORITHMS.md §G.8)", () => {
  const s = "the teacher thinks the rule is fair but the student thinks the rule is unfair";
  test("distinct-1 0.6, distinct-2 0.7857143", () => {
    near(distinctN(s, 1), 0.6);
    near(distinctN(s, 2), 0.7857143);
    near(distinctN("one", 2), 0);
  });
  test("roles [teacher, student, parent, teacher] → R_persp = 1; K changes it", () => {
    near(perspectiveDiversity(["teacher", "student", "parent", "teacher"]), 1);
    near(perspectiveDiversity(["teacher", "student", "teacher"], 3), 2 / 3);
    near(perspectiveDiversity(["teacher", "student", "parent"], 4), 0.75);
    assert.deepEqual(roleTags("<role>Teacher</role> x <ROLE> student </role>"), ["teacher", "student"]);
  });
  test("the combined reward and the built-ins", () => {
    const text = "<role>teacher</role> a b <role>student</role> a b";
    const persp = 2 / 3;
    const lex = distinctN(text, 2);
    near(multiRoleReward(1, text), 1 + 0.5 * persp + 0.5 * lex);
    near(multiRoleReward(0, text, { perspectiveWeight: 1, lexicalWeight: 0 }), persp);
    const task = {} as never;
    near(builtinRewards.get("distinct_2")({ task })({ prompt: "", completion: s, fields: {} }) as number, 0.7857143);
    near(builtinRewards.get("perspective")({ task })({ prompt: "", completion: text, fields: {} }) as number, persp);
  });
});

describe("Dr. Zero proposer reward (ALGORITHMS.md §G.6)", () => {
  test("difficulty, tool and format vectors", () => {
    near(drZeroDifficulty([true, false, false, false, false]), 1);
    near(drZeroDifficulty([true, true, true, true, false]), 0.25);
    near(drZeroDifficulty([true, true, true, true, true]), 0);
    near(drZeroDifficulty([false, false, false, false, false]), 0);
    near(drZeroTool(3, 1, 1), 0.6666667);
    near(drZeroTool(3, 2, 2), 1);
    near(drZeroTool(2, 0, 0), 0);
    near(drZeroTool(1, 0, 0), 1);
    near(drZeroTool(3, 2, 1), 0); // calls not answered one for one
    const r = drZeroProposerReward({ integrity: true, think: 1, tool: 2 / 3, answer: 1, difficulty: 1 });
    near(r.format, 0.9166667);
    near(r.reward, 1.4583333);
    assert.deepEqual(drZeroProposerReward({ integrity: false, think: 1, tool: 1, answer: 1, difficulty: 1 }), {
      format: 0,
      reward: 0,
    });
  });
  test("answer grounding bands", () => {
    near(drZeroAnswer("Paris", "the capital is paris"), 1);
    near(drZeroAnswer("yes", "nothing"), 1);
    near(drZeroAnswer("a b c d e f g", "x a b c d e f g y"), 0.5);
    near(drZeroAnswer("london", "the capital is paris"), 0);
    near(drZeroAnswer("", "x"), 0);
  });
});
