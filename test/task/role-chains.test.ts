/**
 * MultiRole-R1's data pipeline for arithmetic (src/task/role-chains.ts): each role's wording against hand-written
 * chains, the writer's slips, the verifier on hand-made good and bad chains, the filter (wrong chains dropped,
 * every kept line's answer right, roles as specified, diversity thresholds), determinism and the shipped files,
 * and the MultiRole-R1 rewards on outputs of this format against hand-computed values.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { builtinRewards } from "../../src/reward/builtin.js";
import { distinctN, multiRoleReward, perspectiveDiversity, roleTags } from "../../src/reward/process.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";
import { Rng } from "../../src/task/rng.js";
import {
  CHAIN_ROLES,
  type ChainRole,
  drawPlan,
  joinChain,
  makeRoleChainData,
  verifyRoleChain,
  writeChain,
  writeRole,
} from "../../src/task/role-chains.js";
import type { Problem } from "../../src/task/types.js";

const problem = (a: number, op: "add" | "sub", b: number): Problem => ({
  id: `arithmetic/${a}${op === "add" ? "+" : "-"}${b}`,
  prompt: `${a}${op === "add" ? "+" : "-"}${b}=`,
  answer: `${op === "add" ? a + b : a - b}`,
  meta: { op, a: `${a}`, b: `${b}` },
});
const p4785 = problem(47, "add", 85);
const p5217 = problem(52, "sub", 17);
const near = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

describe("role wordings (hand-written)", () => {
  test("teacher: column by column, three wordings; subtraction borrows", () => {
    assert.equal(writeRole(p4785, "teacher", 0).text, "ones 7+5=12 carry 1 tens 4+8+1=13 so 132");
    assert.equal(writeRole(p4785, "teacher", 1).text, "digits 7+5=12, 4+8+1=13 makes 132");
    assert.equal(writeRole(p4785, "teacher", 2).text, "right to left 7+5=12 then 4+8+1=13 reads 132");
    assert.equal(writeRole(p5217, "teacher", 0).text, "ones 12-7=5 borrow 1 tens 5-1-1=3 so 35");
    assert.equal(writeRole(problem(100, "sub", 99), "teacher", 1).text, "digits 10-9=1, 10-9-1=0, 1-0-1=0 makes 1");
    assert.equal(writeRole(p4785, "teacher", 0).result, 132n);
  });
  test("estimator: round to tens, then correct by the rounding", () => {
    assert.equal(writeRole(p4785, "estimator", 0).text, "round 50+90=140 then 140-3-5=132");
    assert.equal(writeRole(problem(85, "sub", 47), "estimator", 2).text, "estimate 90-50=40 correct 40-5+3=38");
    assert.equal(writeRole(problem(40, "add", 70), "estimator", 1).text, "about 40+70=110 exact");
    assert.equal(writeRole(problem(44, "sub", 36), "estimator", 0).text, "round 40-40=0 then 0+4+4=8");
  });
  test("checker: the inverse operation from the claimed answer", () => {
    assert.equal(writeRole(p4785, "checker", 0, { claim: 132n }).text, "check 132-85=47 ok");
    assert.equal(writeRole(p4785, "checker", 2, { claim: 132n }).text, "reverse 132-47=85 fits");
    assert.equal(writeRole(p4785, "checker", 1, { claim: 122n }).text, "undo 122-85=37 differs");
    assert.equal(writeRole(p5217, "checker", 0, { claim: 35n }).text, "check 35+17=52 ok");
    assert.throws(() => writeRole(p4785, "checker", 0), /the checker needs a value to check/);
    assert.throws(() => writeRole(p4785, "teacher", 3), /teacher has wordings 0..2, got 3/);
  });
  test("slips: a dropped carry, a column off by one, a correction with the wrong sign", () => {
    const carry = writeRole(p4785, "teacher", 0, { slip: "carry" });
    assert.equal(carry.text, "ones 7+5=12 carry 1 tens 4+8=12 so 122");
    assert.equal(carry.result, 122n);
    const column = writeRole(p4785, "teacher", 0, { slip: "column", rng: Rng.fromSeed(3) });
    assert.notEqual(column.result, 132n);
    const sign = writeRole(p4785, "estimator", 0, { slip: "sign", rng: Rng.fromSeed(1) });
    assert.ok(["round 50+90=140 then 140+3-5=138", "round 50+90=140 then 140-3+5=142"].includes(sign.text), sign.text);
  });
});

describe("verifyRoleChain", () => {
  const good =
    "<role>teacher</role> ones 7+5=12 carry 1 tens 4+8+1=13 so 132 <role>checker</role> check 132-85=47 ok <answer>132</answer>";
  test("a right chain passes", () => {
    assert.deepEqual(verifyRoleChain(p4785, good), { ok: true });
    const parts = [writeRole(p4785, "estimator", 1), writeRole(p4785, "checker", 2, { claim: 132n })];
    assert.deepEqual(verifyRoleChain(p4785, joinChain(parts, 132n)), { ok: true });
  });
  const bad: [string, string, RegExp][] = [
    ["wrong answer", good.replace("<answer>132", "<answer>131"), /^answer: wrong value/],
    ["false equation", good.replace("4+8+1=13", "4+8+1=14"), /false equation 4\+8\+1=14 in the teacher part/],
    ["dropped carry", good.replace("4+8+1=13 so 132", "4+8=12 so 122"), /the teacher part arrives at 122, not 132/],
    ["checker of another value", good.replace("check 132-85=47", "check 122-85=37"), /checker part arrives at 122/],
    ["unknown role", good.replace("<role>checker</role>", "<role>judge</role>"), /unknown role "judge"/],
    ["empty part", good.replace(" check 132-85=47 ok", ""), /the checker part is empty/],
    ["no roles", "so 132 <answer>132</answer>", /text before the first role tag/],
    ["text after the answer", `${good} and more`, /must end with its one <answer>/],
  ];
  for (const [what, chain, reason] of bad)
    test(`drops: ${what}`, () => {
      const v = verifyRoleChain(p4785, chain);
      assert.equal(v.ok, false);
      assert.match(v.reason as string, reason);
    });
  test("every slip-free chain passes, every chain with a wrong answer or a wrong part fails", () => {
    const rng = Rng.fromSeed(7);
    const task = arithmeticTask({ ops: { add: 1, sub: 1 }, digits: [1, 3] });
    let slipped = 0;
    let caught = 0;
    for (let i = 0; i < 400; i++) {
      const p = task.sample(rng, "train");
      const plan = drawPlan(rng, 0.5);
      const chain = writeChain(p, plan, rng);
      const v = verifyRoleChain(p, chain);
      if (plan.slip === null) assert.ok(v.ok, `${chain}: ${v.reason}`);
      else {
        slipped++;
        // a slip either changed nothing (no carry to drop, nothing to correct) or the verifier catches it
        const clean = writeChain(p, { ...plan, slip: null }, rng);
        if (chain !== clean) {
          assert.equal(v.ok, false, chain);
          caught++;
        }
      }
    }
    assert.ok(slipped > 100 && caught > 50, `${slipped} slipped, ${caught} caught`);
  });
});

describe("the pipeline (generate → verify → select)", () => {
  const data = makeRoleChainData({ problems: 300, evalProblems: 40, seed: 5 });
  const task = arithmeticTask({ ops: { add: 1, sub: 1 }, digits: [1, 3] });
  test("wrong chains were generated and dropped; one-role chains dropped as not diverse", () => {
    const s = data.stats.train;
    assert.equal(s.problems - s.emptyProblems, 300);
    assert.equal(s.generated, 6 * s.problems);
    assert.ok(s.droppedWrong > 0.1 * s.generated, `${s.droppedWrong} of ${s.generated} dropped as wrong`);
    assert.ok(s.droppedNotDiverse > 0);
    assert.equal(s.kept, data.train.length);
    assert.equal((s.byRoleCount[2] ?? 0) + (s.byRoleCount[3] ?? 0), s.kept);
    assert.ok((s.byRoleCount[2] ?? 0) > 50 && (s.byRoleCount[3] ?? 0) > 50, "a mix of two- and three-role chains");
  });
  test("every kept line: the answer is right (task verifier and by hand), the chain verifies, roles as specified", () => {
    for (const l of [...data.train, ...data.eval]) {
      const a = BigInt(l.a);
      const b = BigInt(l.b);
      assert.equal(l.prompt, `${l.a}${l.op === "add" ? "+" : "-"}${l.b}=`);
      assert.equal(BigInt(l.answer), l.op === "add" ? a + b : a - b);
      const p: Problem = { id: l.prompt, prompt: l.prompt, answer: l.answer, meta: { op: l.op, a: l.a, b: l.b } };
      assert.ok(task.verify(p as never, l.chain).correct, l.chain);
      assert.deepEqual(verifyRoleChain(p, l.chain), { ok: true });
      assert.ok(l.chain.endsWith(`<answer>${l.answer}</answer>`));
      assert.deepEqual(l.roles, roleTags(l.chain));
      assert.ok(l.roles.every((r) => (CHAIN_ROLES as readonly string[]).includes(r)));
      assert.equal(new Set(l.roles).size, l.roles.length, "each role once");
      assert.ok(l.roles.length >= 2, "at least two perspectives");
      assert.notEqual(l.roles[0], "checker" as ChainRole, "the checker never opens a chain");
      assert.ok(distinctN(l.chain, 2) >= 0.6);
    }
  });
  test("training lines come from the task's train split, held-out lines from its eval split; each prompt once", () => {
    const trainPrompts = new Set(data.train.map((l) => l.prompt));
    assert.equal(trainPrompts.size, data.train.length);
    assert.ok(data.eval.every((l) => !trainPrompts.has(l.prompt)));
    assert.equal(data.eval.length, 40);
  });
  test("deterministic: the same options give the same lines, another seed others", () => {
    const again = makeRoleChainData({ problems: 300, evalProblems: 40, seed: 5 });
    assert.deepEqual(again, data);
    const other = makeRoleChainData({ problems: 300, evalProblems: 40, seed: 6 });
    assert.notDeepEqual(other.train, data.train);
  });
  test("the thresholds change what is kept", () => {
    const three = makeRoleChainData({ problems: 50, evalProblems: 0, minRoles: 3 });
    assert.ok(three.train.every((l) => l.roles.length === 3));
    const any = makeRoleChainData({ problems: 50, evalProblems: 0, minRoles: 1, perProblem: 6 });
    assert.ok(any.train.some((l) => l.roles.length === 1));
    assert.ok(any.train.length > 50);
    const strict = makeRoleChainData({ problems: 20, evalProblems: 0, minDistinct2: 1 });
    assert.ok(
      strict.stats.train.droppedNotDiverse >
        makeRoleChainData({ problems: 20, evalProblems: 0 }).stats.train.droppedNotDiverse,
    );
    const clean = makeRoleChainData({ problems: 50, evalProblems: 0, slip: 0 });
    assert.equal(clean.stats.train.droppedWrong, 0);
  });
  test("bad options: a ConfigError naming what is allowed", () => {
    assert.throws(
      () => makeRoleChainData({ task: { ops: { mul: 1 } } }),
      (e: unknown) => e instanceof ConfigError && /allowed ops: add, sub/.test(e.message),
    );
    assert.throws(
      () => makeRoleChainData({ task: { ops: { add: 1, sub: 1 }, negative: true } }),
      /a ≥ b; set negative: false/,
    );
    assert.throws(() => makeRoleChainData({ slip: 1 } as never), ConfigError);
    assert.throws(() => makeRoleChainData({ colour: 1 } as never), /Unrecognized key/);
  });
  test("the shipped files are the script's output, byte for byte", () => {
    const shipped = makeRoleChainData({
      task: { ops: { add: 1, sub: 1 }, digits: [1, 3] },
      problems: 6000,
      evalProblems: 200,
    });
    const text = (ls: unknown[]) => ls.map((l) => `${JSON.stringify(l)}\n`).join("");
    assert.equal(readFileSync("examples/multirole/role-chains.jsonl", "utf8"), text(shipped.train));
    assert.equal(readFileSync("examples/multirole/role-chains-eval.jsonl", "utf8"), text(shipped.eval));
  });
});

describe("MultiRole-R1 rewards on outputs of this format (hand-computed)", () => {
  const ctx = { task: arithmeticTask({ ops: { add: 1, sub: 1 } }) } as never;
  const score = (name: string, completion: string, p = p4785) =>
    builtinRewards.get(name)(ctx)({
      prompt: p.prompt,
      completion,
      answer: p.answer as string,
      fields: p.meta,
      id: p.id,
    }) as number;
  test("a two-role chain: perspective 2/3, distinct-2 1 (13 bigrams, all different)", () => {
    const c =
      "<role>teacher</role> ones 7+5=12 carry 1 tens 4+8+1=13 so 132 <role>checker</role> check 132-85=47 ok <answer>132</answer>";
    near(score("perspective", c), 2 / 3);
    near(score("distinct_2", c), 1);
    near(score("correctness", c), 1);
    near(multiRoleReward(1, c), 1 + 0.5 * (2 / 3) + 0.5 * 1);
  });
  test("a degenerate sample: one role twice, repeated words, wrong answer", () => {
    // tokens: T so so so T so so A → bigrams (T,so) (so,so) (so,so) (so,T) (T,so) (so,so) (so,A): 4 distinct of 7
    const c = "<role>teacher</role> so so so <role>teacher</role> so so <answer>1</answer>";
    near(score("perspective", c), 1 / 3);
    near(score("distinct_2", c), 4 / 7);
    near(score("correctness", c), 0);
    near(multiRoleReward(0, c), 0.5 / 3 + 0.5 * (4 / 7));
  });
  test("three roles in any case: perspective 1; tags the model half-writes do not count", () => {
    const c =
      "<role>Estimator</role> round 50+90=140 then 140-3-5=132 <role>teacher</role> digits 7+5=12, 4+8+1=13 makes 132 " +
      "<role>CHECKER</role> undo 132-85=47 same <answer>132</answer>";
    near(score("perspective", c), 1);
    near(perspectiveDiversity(roleTags(c)), 1);
    near(
      score("perspective", "<role>teacher</role> a <role>checker b <role>teacher</role> c <answer>132</answer>"),
      1 / 3,
    );
  });
});
