import assert from "node:assert/strict";
import { test } from "node:test";
import { CohortError } from "../../src/errors.js";
import { countdownTask } from "../../src/task/countdown.js";
import { checkNumberUse, evaluateExpression } from "../../src/task/expression.js";
import { wrapAnswer } from "../../src/task/format.js";
import { Fraction } from "../../src/task/rational.js";
import { Rng } from "../../src/task/rng.js";
import { splitOf } from "../../src/task/split.js";
import type { Problem } from "../../src/task/types.js";

type Meta = { numbers: number[]; target: number; solution: string };
const problem = (numbers: number[], target: number): Problem<Meta> => ({
  id: "t",
  prompt: `${numbers.join(" ")} to ${target}=`,
  answer: "",
  meta: { numbers, target, solution: "" },
});

const t = countdownTask();
const check = (p: Problem<Meta>, expr: string) => t.verify(p, wrapAnswer(expr));

test("verifier accepts correct expressions, including exact non-integer intermediates", () => {
  const p = problem([1, 2, 3, 6, 9], 3);
  assert.deepEqual(check(p, "9/(6-3)"), { correct: true, format: true, parsed: "9/(6-3)" });
  assert.equal(check(p, "1/3*9").correct, true); // (1/3)*9 = 3 exactly
  assert.equal(check(p, "(2/6)*9").correct, true);
  assert.equal(check(p, " 9 - 6 ").correct, true); // a subset of the numbers is enough
  assert.equal(check(p, "9÷(6−3)").correct, true);
  assert.equal(check(p, "(1+2)×(9-6)/3").correct, true);
  // The classic 24 with two 3s and two 8s needs 8/3 along the way.
  assert.deepEqual(check(problem([3, 3, 8, 8], 24), "8/(3-8/3)"), { correct: true, format: true, parsed: "8/(3-8/3)" });
});

test("verifier rejects reuse, numbers not given, division by zero, wrong targets and bad syntax", () => {
  const p = problem([1, 2, 3, 6, 9], 3);
  const reason = (expr: string) => {
    const v = check(p, expr);
    assert.equal(v.correct, false, expr);
    assert.equal(v.format, true, expr);
    return v.reason;
  };
  assert.equal(reason("9/3/1*1"), "number 1 is used more than once");
  assert.equal(reason("6-3+3-3"), "number 3 is used more than once");
  assert.equal(reason("12/4"), "number 12 is not one of the given numbers");
  assert.equal(reason("9/(1+2-3)"), "division by zero at 1");
  assert.equal(reason("9-6+1"), "expression equals 4, not 3");
  assert.equal(reason("1/2"), "expression equals 1/2, not 3");
  assert.equal(reason("-6+9"), 'unary "-" at 0 is not allowed; use only the given numbers');
  assert.equal(reason("(9-6"), 'expected ")" but found end of expression');
  assert.equal(reason("9-6)"), 'unexpected ")" at 3');
  assert.equal(reason("()"), 'expected a number or "(" but found ")" at 1');
  assert.equal(reason("9-6=3"), 'unexpected character "=" at 3');
  assert.equal(reason("3.0"), 'unexpected character "." at 1');
  assert.equal(reason("9 6"), "unexpected number 6 at 2");
  assert.equal(reason("9^1"), 'unexpected character "^" at 1');
  assert.equal(reason(`${"(".repeat(40)}3${")".repeat(40)}`), "parentheses nested deeper than 32");
  assert.equal(reason(`3${"+0".repeat(200)}`), "expression longer than 256 characters");
  // A number given twice may be used twice, but not three times.
  const q = problem([8, 8, 3, 3], 19);
  assert.equal(check(q, "8+8+3").correct, true);
  assert.equal(check(q, "8+8+8/8").reason, "number 8 is used 3 times but given 2 times");
});

test("format and correctness are independent", () => {
  const p = problem([1, 2, 3, 6, 9], 3);
  assert.deepEqual(t.verify(p, "<answer>9/3</answer>\n1 2 3 to 6=<ans"), {
    correct: true,
    format: true,
    parsed: "9/3",
  });
  assert.deepEqual(t.verify(p, "<answer>9/3</answer><answer>"), { correct: true, format: false, parsed: "9/3" });
  assert.deepEqual(t.verify(p, "9/3"), { correct: false, format: false, reason: "no <answer>…</answer> span" });
  assert.equal(t.verify(p, "<answer>9/2</answer>").format, true);
});

test("evaluateExpression and checkNumberUse are exact", () => {
  const r = evaluateExpression("(7/3)*3 - 1/6");
  assert.ok(r.ok);
  assert.ok(r.value.equals(new Fraction(41n, 6n)));
  assert.deepEqual(r.used, [7n, 3n, 3n, 1n, 6n]);
  assert.deepEqual(evaluateExpression(""), { ok: false, reason: "empty expression" });
  assert.equal(checkNumberUse([3n, 3n], [3, 3]), null);
  assert.equal(checkNumberUse([5n], [3]), "number 5 is not one of the given numbers");
});

test("verify explains problems that were not built by sample()", () => {
  const bad = { id: "x", prompt: "", meta: {} } as unknown as Problem<Meta>;
  assert.throws(() => t.verify(bad, "<answer>1</answer>"), CohortError);
  assert.throws(() => t.verify(bad, "<answer>1</answer>"), /lacks meta\.numbers/);
});

test("generation is deterministic for a fixed seed (exact first prompts)", () => {
  const rng = Rng.fromSeed(7);
  assert.deepEqual(
    Array.from({ length: 4 }, () => t.sample(rng, "train").prompt),
    ["8 6 3 to 30=", "18 24 6 to 24=", "8 2 12 to 96=", "12 16 4 to 48="],
  );
  assert.deepEqual(
    Array.from({ length: 3 }, () => t.sample(rng, "eval").prompt),
    ["6 1 25 to 26=", "2 3 18 20 to 10=", "8 7 20 10 to 148="],
  );
  const p = countdownTask().sample(Rng.fromSeed(7), "train");
  assert.deepEqual(p.id, "countdown/3 6 8 to 30");
  assert.deepEqual(p.meta.numbers, [8, 6, 3]);
  assert.equal(p.meta.target, 30);
  assert.equal(check(p, p.meta.solution).correct, true);
});

test("every generated problem is solvable by its construction and respects the options", () => {
  for (const integerSteps of [true, false]) {
    const task = countdownTask({ count: [3, 5], numbers: [1, 30], target: [10, 300], integerSteps });
    const rng = Rng.fromSeed(integerSteps ? 1 : 2);
    for (let i = 0; i < 1000; i++) {
      const p = task.sample(rng, i % 3 === 0 ? "eval" : "train");
      const { numbers, target, solution } = p.meta;
      assert.ok(numbers.length >= 3 && numbers.length <= 5, p.prompt);
      assert.ok(
        numbers.every((n) => n >= 1 && n <= 30),
        p.prompt,
      );
      assert.ok(target >= 10 && target <= 300 && Number.isInteger(target), p.prompt);
      assert.equal(p.prompt, `${numbers.join(" ")} to ${target}=`);
      assert.deepEqual(task.verify(p, wrapAnswer(solution)), { correct: true, format: true, parsed: solution });
    }
  }
});

test("train and eval never overlap (hash of sorted numbers and target)", () => {
  const task = countdownTask({ evalFraction: 0.3 });
  const rng = Rng.fromSeed(13);
  const train = new Set<string>();
  const evalSet = new Set<string>();
  for (let i = 0; i < 3000; i++) train.add(task.sample(rng, "train").id);
  for (let i = 0; i < 3000; i++) evalSet.add(task.sample(rng, "eval").id);
  for (const id of evalSet) {
    assert.ok(!train.has(id), `${id} is in both splits`);
    assert.equal(splitOf(id.slice("countdown/".length), 0.3, "countdown"), "eval");
  }
  assert.ok(train.size > 1500 && evalSet.size > 1000, `${train.size} ${evalSet.size}`);
});

test("impossible options fail with an explanation", () => {
  assert.throws(
    () => countdownTask({ numbers: [1, 2], target: [5000, 6000], count: 2 }).sample(Rng.fromSeed(1), "train"),
    {
      message: /no solvable problem in 10000 tries/,
    },
  );
  assert.throws(() => countdownTask({ count: 9 }), /count\[0\]: Too big/);
});
