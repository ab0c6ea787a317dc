// Contract every registered task meets (one suite, every task).
import assert from "node:assert/strict";
import { test } from "node:test";
import { wrapAnswer } from "../../src/task/format.js";
import { createTask, taskRegistry } from "../../src/task/registry.js";
import { Rng } from "../../src/task/rng.js";

// Characters a small char-level model has to learn: digits, + - * / = ( ) space, newline, letters, < > /, and
// the colon of nearest's prompt.
const ALPHABET = /^[0-9+\-*/=() \nA-Za-z<>:]*$/;

for (const name of taskRegistry.names()) {
  test(`${name}: deterministic, self-consistent, serialisable, ASCII, disjoint splits`, () => {
    const task = createTask(name);
    assert.equal(task.name, name);
    const draw = (seed: number) => {
      const rng = Rng.fromSeed(seed);
      return Array.from({ length: 200 }, (_, i) => task.sample(rng, i % 4 === 0 ? "eval" : "train"));
    };
    const problems = draw(99);
    assert.deepEqual(draw(99), problems);
    assert.notDeepEqual(draw(100), problems);
    const trainIds = new Set(problems.filter((_, i) => i % 4 !== 0).map((p) => p.id));
    for (const [i, p] of problems.entries()) {
      if (i % 4 === 0) assert.ok(!trainIds.has(p.id), `${p.id} drawn for both splits`);
      assert.ok(p.answer !== undefined);
      const completion = wrapAnswer(p.answer);
      assert.match(p.prompt, ALPHABET);
      assert.match(completion, ALPHABET);
      const roundTrip = JSON.parse(JSON.stringify(p));
      assert.deepEqual(roundTrip, p);
      assert.deepEqual(task.verify(roundTrip, completion), { correct: true, format: true, parsed: p.answer });
      assert.deepEqual(task.verify(p, `${completion}\n${p.prompt}`).correct, true);
      const empty = task.verify(p, "");
      assert.equal(empty.correct, false);
      assert.equal(empty.format, false);
    }
  });
}
