import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";
import { createTask, taskRegistry } from "../../src/task/registry.js";
import { Rng } from "../../src/task/rng.js";
import { splitOf } from "../../src/task/split.js";

test("generation is deterministic for a fixed seed (exact first prompts)", () => {
  const t = arithmeticTask();
  const rng = Rng.fromSeed(42);
  const train = Array.from({ length: 5 }, () => t.sample(rng, "train"));
  assert.deepEqual(
    train.map((p) => [p.prompt, p.answer]),
    [
      ["85+68=", "153"],
      ["52*365=", "18980"],
      ["8*7=", "56"],
      ["7+494=", "501"],
      ["66*47=", "3102"],
    ],
  );
  assert.deepEqual(train[1], {
    id: "arithmetic/52*365",
    prompt: "52*365=",
    answer: "18980",
    meta: { op: "mul", a: "52", b: "365" },
  });
  assert.deepEqual(
    Array.from({ length: 3 }, () => t.sample(rng, "eval").prompt),
    ["68+820=", "587-49=", "7-7="],
  );
});

test("products beyond 2^53 are exact (BigInt)", () => {
  const t = arithmeticTask({ digits: 20, ops: { mul: 1 } });
  const p = t.sample(Rng.fromSeed(5), "train");
  assert.equal(p.prompt, "99345763112452831095*40558578690161377229=");
  assert.equal(p.answer, "4029322950730549612843814418825316135755");
  assert.equal(BigInt(p.meta.a) * BigInt(p.meta.b), BigInt(p.answer!));
  assert.equal(t.verify(p, "<answer>4029322950730549612843814418825316135755</answer>").correct, true);
  // Off by one in the last digit, which a float64 comparison could not tell apart.
  assert.equal(t.verify(p, "<answer>4029322950730549612843814418825316135756</answer>").correct, false);
});

test("operation mix and digit counts are respected; answers are exact", () => {
  const t = arithmeticTask({ ops: { add: 1, sub: 1 }, digitsA: [3, 3], digitsB: [1, 2] });
  const rng = Rng.fromSeed(1);
  for (let i = 0; i < 500; i++) {
    const p = t.sample(rng, "train");
    const { op, a, b } = p.meta;
    assert.ok(op === "add" || op === "sub");
    const big = op === "add" ? a : a.length >= b.length ? a : b;
    assert.ok(big.length === 3 || (op === "sub" && a.length === 3), p.prompt);
    const expected = op === "add" ? BigInt(a) + BigInt(b) : BigInt(a) - BigInt(b);
    assert.equal(p.answer, `${expected}`);
    assert.ok(!p.answer!.startsWith("-"), "negative: false keeps differences ≥ 0");
  }
});

test("negative differences when allowed", () => {
  const t = arithmeticTask({ ops: { sub: 1 }, negative: true });
  const rng = Rng.fromSeed(3);
  const answers = Array.from({ length: 200 }, () => t.sample(rng, "train").answer!);
  assert.ok(answers.some((a) => a.startsWith("-")));
  const p = { id: "x", prompt: "3-10=", answer: "-7", meta: { op: "sub" as const, a: "3", b: "10" } };
  assert.deepEqual(t.verify(p, "<answer>-7</answer>"), { correct: true, format: true, parsed: "-7" });
});

test("verifier: correct, incorrect and malformed answers", () => {
  const t = arithmeticTask();
  const p = {
    id: "arithmetic/12+345",
    prompt: "12+345=",
    answer: "357",
    meta: { op: "add" as const, a: "12", b: "345" },
  };
  assert.deepEqual(t.verify(p, "<answer>357</answer>"), { correct: true, format: true, parsed: "357" });
  assert.deepEqual(t.verify(p, "<answer>357</answer>9+9=<answer>1"), { correct: true, format: false, parsed: "357" });
  assert.deepEqual(t.verify(p, "<answer>357</answer>junk"), { correct: true, format: true, parsed: "357" });
  assert.deepEqual(t.verify(p, "<answer>0357</answer>"), { correct: true, format: true, parsed: "0357" });
  assert.deepEqual(t.verify(p, "<answer>358</answer>"), {
    correct: false,
    format: true,
    parsed: "358",
    reason: "wrong value",
  });
  assert.deepEqual(t.verify(p, "357"), { correct: false, format: false, reason: "no <answer>…</answer> span" });
  assert.deepEqual(t.verify(p, "<answer>357"), { correct: false, format: false, reason: "no <answer>…</answer> span" });
  assert.deepEqual(t.verify(p, "<answer>3 57</answer>"), {
    correct: false,
    format: true,
    parsed: "3 57",
    reason: "answer is not an integer",
  });
  assert.equal(t.verify(p, "<answer>+357</answer>").correct, false);
  assert.equal(t.verify(p, "<answer>357.0</answer>").correct, false);
  assert.equal(t.verify(p, "<answer></answer>").format, false);
});

test("train and eval never overlap over 10,000 problems (hash split, commutative operands)", () => {
  const t = arithmeticTask({ digits: [1, 2], evalFraction: 0.2 });
  const rng = Rng.fromSeed(11);
  const canonical = (id: string) => {
    const m = /^arithmetic\/(\d+)([+*-])(\d+)$/.exec(id)!;
    const [a, op, b] = [m[1]!, m[2]!, m[3]!];
    return op === "-" || BigInt(a) <= BigInt(b) ? `${a}${op}${b}` : `${b}${op}${a}`;
  };
  const train = new Set<string>();
  const evalSet = new Set<string>();
  for (let i = 0; i < 5000; i++) train.add(canonical(t.sample(rng, "train").id));
  for (let i = 0; i < 5000; i++) evalSet.add(canonical(t.sample(rng, "eval").id));
  for (const c of evalSet) assert.ok(!train.has(c), `${c} is in both splits`);
  // Membership is the hash of the canonical form (operands of + and * sorted), so a+b and b+a share a split.
  for (const c of evalSet) assert.equal(splitOf(c, 0.2, "arithmetic"), "eval");
  for (const c of train) assert.equal(splitOf(c, 0.2, "arithmetic"), "train");
  // Both splits are well populated.
  assert.ok(train.size > 2000 && evalSet.size > 1000, `${train.size} ${evalSet.size}`);
});

test("empty split and bad options fail with explanations", () => {
  assert.throws(() => arithmeticTask({ evalFraction: 0 }).sample(Rng.fromSeed(1), "eval"), /eval split is empty/);
  assert.throws(
    () => arithmeticTask({ ops: { add: 0 } }),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.path === "task.options.ops" &&
      e.message === 'task.options.ops: at least one operation needs a positive weight (got {"add":0})',
  );
  assert.throws(() => arithmeticTask({ digits: [3, 1] }), /min ≤ max/);
  assert.throws(() => arithmeticTask({ digitz: 3 } as never), /unknown key "digitz"; allowed keys: .*digits/);
});

test("registry builds tasks by name and lists known names", () => {
  assert.deepEqual(taskRegistry.names(), ["arithmetic", "countdown", "nearest"]);
  const t = createTask("arithmetic", { digits: 2 });
  assert.equal(t.name, "arithmetic");
  assert.match(t.sample(Rng.fromSeed(0), "train").prompt, /^\d\d[+*-]\d\d=$/);
  assert.throws(
    () => createTask("arith"),
    (e: unknown) =>
      e instanceof ConfigError &&
      e.message === 'task.name: unknown task "arith"; known: arithmetic, countdown, nearest',
  );
  assert.throws(() => createTask("countdown", { count: 1 }), /^ConfigError: task\.options: count\[0\]: Too small/);
});
