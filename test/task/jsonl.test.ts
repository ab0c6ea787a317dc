import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.js";
import { DatasetError, jsonlTask, loadJsonl, parseJsonl, shuffledSplit } from "../../src/task/jsonl.js";
import { Rng } from "../../src/task/rng.js";
import { EpochSampler } from "../../src/task/sampler.js";
import { splitOf } from "../../src/task/split.js";

const fixtures = fileURLToPath(new URL("../fixtures/datasets/", import.meta.url));
const qa = join(fixtures, "qa.jsonl");
const bad = join(fixtures, "bad.jsonl");

test("loads prompts, answers and all fields; ids name file and line; blank lines skipped", async () => {
  const ds = await loadJsonl(qa, { evalFraction: 0 });
  assert.equal(ds.problems.length, 4);
  assert.deepEqual(ds.problems[0], {
    id: "qa.jsonl:1",
    prompt: "What is 2+3?",
    answer: "5",
    meta: { prompt: "What is 2+3?", answer: "5", source: "hand" },
  });
  assert.equal(ds.problems[2]!.id, "qa.jsonl:4");
  assert.equal(ds.problems[2]!.answer, "2.5");
  assert.deepEqual(ds.problems[2]!.meta.tags, ["math"]);
  assert.equal(ds.train.length, 4);
  assert.equal(ds.eval.length, 0);
});

test("custom fields, no answer field, id field", () => {
  const text = '{"q": "a", "k": 1, "n": 3}\r\n{"q": "b", "k": 2, "n": 4}\n';
  const ds = parseJsonl(text, "mem.jsonl", { promptField: "q", answerField: null, idField: "k" });
  assert.deepEqual(
    ds.problems.map((p) => [p.id, p.prompt, p.answer, p.meta.n]),
    [
      ["1", "a", undefined, 3],
      ["2", "b", undefined, 4],
    ],
  );
  assert.ok(!("answer" in ds.problems[0]!));
  assert.throws(
    () =>
      parseJsonl('{"q":"a","k":1}\n{"q":"b","k":1}\n', "d.jsonl", {
        promptField: "q",
        answerField: null,
        idField: "k",
      }),
    {
      message: 'd.jsonl:2: id "1" (field "k") already used on line 1; ids must be unique',
    },
  );
});

test("bad lines: errors name the file, line and field, and say what to do", async () => {
  await assert.rejects(loadJsonl(bad, { promptField: "question", answerField: "gold" }), (e: unknown) => {
    assert.ok(e instanceof DatasetError);
    assert.equal(e.file, bad);
    assert.equal(e.line, 2);
    assert.equal(e.field, "gold");
    const lines = e.message.split("\n");
    assert.equal(lines[0], `6 bad lines in ${bad}:`);
    assert.equal(
      lines[1],
      `${bad}:2: missing field "gold" (the answer field); fields present: question. Set answerField to the field that holds the answer, or to null if rewards need no answer`,
    );
    assert.match(
      lines[2]!,
      new RegExp(
        `^${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:3: invalid JSON \\(.*\\); each line must be one JSON object$`,
      ),
    );
    assert.equal(lines[3], `${bad}:4: expected a JSON object, found array`);
    assert.equal(lines[4], `${bad}:5: field "question" (the prompt) must be a string, found number`);
    assert.equal(lines[5], `${bad}:6: field "gold" (the answer) must be a string, number or boolean, found object`);
    assert.equal(lines[6], "(1 more bad lines)");
    return true;
  });
  assert.throws(() => parseJsonl('{"text": "x"}\n', "one.jsonl"), {
    name: "DatasetError",
    message:
      'one.jsonl:1: missing field "prompt" (the prompt field) or "messages" (a conversation); fields present: text. Set promptField (or messagesField) to the field that holds the prompt',
  });
  assert.throws(() => parseJsonl("\n\n", "empty.jsonl"), /empty\.jsonl: no records/);
  await assert.rejects(loadJsonl(join(fixtures, "nope.jsonl")), /cannot read dataset .*nope\.jsonl/);
  assert.throws(() => parseJsonl("", "x.jsonl", { promptFeild: "q" } as never), ConfigError);
});

test("train/eval split is a hash of the prompt: disjoint, stable under reordering and duplicates", () => {
  const lines = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ prompt: `p${i % 1500}`, answer: `${i}` }));
  const ds = parseJsonl(lines.join("\n"), "big.jsonl", { evalFraction: 0.25 });
  const trainPrompts = new Set(ds.train.map((p) => p.prompt));
  for (const p of ds.eval) assert.ok(!trainPrompts.has(p.prompt), p.prompt);
  assert.equal(ds.train.length + ds.eval.length, 2000);
  assert.ok(ds.eval.length > 400 && ds.eval.length < 600, `${ds.eval.length}`);
  const reversed = parseJsonl([...lines].reverse().join("\n"), "big.jsonl", { evalFraction: 0.25 });
  assert.deepEqual(new Set(reversed.eval.map((p) => p.prompt)), new Set(ds.eval.map((p) => p.prompt)));
  for (const p of ds.eval) assert.equal(splitOf(p.prompt, 0.25), "eval");
  const salted = parseJsonl(lines.join("\n"), "big.jsonl", { evalFraction: 0.25, splitSalt: "b" });
  assert.notDeepEqual(
    salted.eval.map((p) => p.id),
    ds.eval.map((p) => p.id),
  );
});

test("deterministic shuffling and epoch sampling with resume", async () => {
  const ds = await loadJsonl(qa, { evalFraction: 0 });
  const a = shuffledSplit(ds, "train", Rng.fromSeed(3)).map((p) => p.id);
  const b = shuffledSplit(ds, "train", Rng.fromSeed(3)).map((p) => p.id);
  assert.deepEqual(a, b);
  assert.deepEqual([...a].sort(), ["qa.jsonl:1", "qa.jsonl:2", "qa.jsonl:4", "qa.jsonl:5"]);

  const items = Array.from({ length: 5 }, (_, i) => i);
  const s = new EpochSampler(items, 17);
  const first = s.take(5);
  assert.deepEqual([...first].sort(), items);
  assert.equal(s.epoch, 0);
  s.take(2);
  assert.equal(s.epoch, 1);
  const saved = JSON.parse(JSON.stringify(s.state()));
  const rest = s.take(9);
  const resumed = EpochSampler.restore(items, saved);
  assert.deepEqual(resumed.take(9), rest);
  assert.equal(resumed.epoch, 3);
  assert.deepEqual(new EpochSampler(items, 17).take(12), [...first, ...new EpochSampler(items, 17).take(12).slice(5)]);
  assert.throws(() => EpochSampler.restore([1], saved), /position 2 is outside \[0, 1\]/);
  assert.throws(() => new EpochSampler([], 1), /no items/);
});

test("jsonlTask samples a split and verifies tagged answers", async () => {
  const ds = await loadJsonl(qa, { evalFraction: 0 });
  const task = jsonlTask(ds);
  assert.equal(task.name, "qa.jsonl");
  const p = ds.problems[1]!;
  assert.deepEqual(task.verify(p, "<answer> Paris </answer>"), { correct: true, format: true, parsed: "Paris" });
  assert.deepEqual(task.verify(p, "<answer>paris</answer>"), {
    correct: false,
    format: true,
    parsed: "paris",
    reason: "wrong answer",
  });
  const num = jsonlTask(ds, { compare: "numeric" });
  assert.equal(num.verify(ds.problems[2]!, "<answer>2.50</answer>").correct, true);
  assert.equal(num.verify(ds.problems[2]!, "<answer>2.6</answer>").correct, false);
  assert.equal(task.verify(ds.problems[2]!, "<answer>2.50</answer>").correct, false);
  const drawn = task.sample(Rng.fromSeed(1), "train");
  assert.ok(ds.train.includes(drawn));
  assert.throws(() => task.sample(Rng.fromSeed(1), "eval"), /the eval split is empty \(4 lines\)/);
});
