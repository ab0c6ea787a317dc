// TON thought dropout (a data transform of `cohort pretrain`): arithmetic SFT targets get digit-wise reasoning
// traces; dropout empties them at the configured rate on a seed, never at p = 0, and refuses to run when the
// targets have no trace to drop.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { arithmeticTask, arithmeticTrace } from "../../src/task/arithmetic.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem } from "../../src/task/types.js";
import { liveTensors } from "../../src/tensor/index.js";
import { EMPTY_THOUGHT, pretrain, sftTarget, thoughtDropout } from "../../src/train/pretrain.js";

test("arithmetic traces: column addition with carries, subtraction with borrows, partial products", () => {
  assert.equal(arithmeticTrace({ op: "add", a: "47", b: "85" }), "7+5=12,4+8+1=13");
  assert.equal(arithmeticTrace({ op: "add", a: "7", b: "85" }), "7+5=12,8+1=9");
  assert.equal(arithmeticTrace({ op: "sub", a: "52", b: "17" }), "12-7=5,5-1-1=3");
  assert.equal(arithmeticTrace({ op: "sub", a: "3", b: "10" }), "10-3=7,1-0-1=0,negate");
  assert.equal(arithmeticTrace({ op: "mul", a: "46", b: "23" }), "46*3=138,46*20=920,138+920=1058");
  assert.equal(arithmeticTrace({ op: "mul", a: "12", b: "105" }), "12*5=60,12*100=1200,60+1200=1260");
  const t = arithmeticTask({ digits: [1, 2] });
  const p = t.sample(Rng.fromSeed(4), "train");
  const target = sftTarget(p, t.trace(p));
  assert.equal(target, `<think>${arithmeticTrace(p.meta)}</think><answer>${p.answer}</answer>`);
  assert.deepEqual(t.verify(p, target), { correct: true, format: true, parsed: p.answer }, "a trace keeps it correct");
});

const targets = (n: number): string[] =>
  Array.from({ length: n }, (_, i) => `<think>${i}+1=${i + 1}</think><answer>${i + 1}</answer>`);

test("thought dropout empties traces at the configured rate, the same ones for the same seed", () => {
  const xs = targets(4000);
  const a = thoughtDropout(xs, 0.5, Rng.fromSeed(7));
  // binomial(4000, 0.5): sd ≈ 31.6; ±4 sd
  assert.ok(Math.abs(a.dropped - 2000) < 127, `dropped ${a.dropped}`);
  assert.equal(a.targets.filter((t) => t.startsWith(EMPTY_THOUGHT)).length, a.dropped);
  a.targets.forEach((t, i) => {
    assert.ok(t === xs[i] || t === `<think>\n\n</think><answer>${i + 1}</answer>`, t);
  });
  assert.deepEqual(thoughtDropout(xs, 0.5, Rng.fromSeed(7)), a, "same seed, same drops");
  assert.notDeepEqual(thoughtDropout(xs, 0.5, Rng.fromSeed(8)).targets, a.targets);
  const low = thoughtDropout(xs, 0.1, Rng.fromSeed(7)).dropped;
  assert.ok(Math.abs(low - 400) < 76, `p = 0.1 dropped ${low}`); // sd ≈ 19
  assert.deepEqual(thoughtDropout(xs, 0, Rng.fromSeed(7)), { targets: xs, dropped: 0 }, "p = 0 never drops");
  assert.equal(thoughtDropout(xs, 1, Rng.fromSeed(7)).dropped, 4000);
});

test("thought dropout without traces says there is nothing to drop", () => {
  const plain = ["<answer>3</answer>", "<answer>4</answer>"];
  assert.throws(
    () => thoughtDropout(plain, 0.5, Rng.fromSeed(1)),
    /no SFT target holds a <think>…<\/think> reasoning trace, so there is nothing to drop/,
  );
  assert.deepEqual(thoughtDropout(plain, 0, Rng.fromSeed(1)), { targets: plain, dropped: 0 });
  assert.throws(() => thoughtDropout(plain, 1.5, Rng.fromSeed(1)), /expected a probability in \[0, 1\]/);
  const out = mkdtempSync(join(tmpdir(), "cohort-ton-"));
  assert.throws(
    () => pretrain({ task: "arithmetic", out, thoughtDropout: 0.5, maxSteps: 1, log: () => {} }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.path, "--thought-dropout");
      assert.match(e.message, /the SFT targets have none .* so there is nothing to drop; add --think/);
      return true;
    },
  );
  assert.throws(
    () => pretrain({ task: "countdown", out, think: true, maxSteps: 1, log: () => {} }),
    /task "countdown" writes no reasoning traces/,
  );
});

test("cohort pretrain --think --thought-dropout 0.5 trains on traced targets and counts the drops", () => {
  const run = () =>
    pretrain({
      task: "arithmetic",
      taskOptions: { digits: [1, 2], ops: { add: 1, sub: 1 } },
      out: mkdtempSync(join(tmpdir(), "cohort-ton-")),
      seed: 3,
      maxSteps: 3,
      batchSize: 32,
      evalEvery: 1000,
      evalProblems: 4,
      hiddenSize: 32,
      intermediateSize: 64,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      think: true,
      thoughtDropout: 0.5,
      log: () => {},
    });
  const before = liveTensors();
  const r = run();
  assert.equal(liveTensors(), before);
  assert.equal(r.steps, 3);
  assert.equal(r.thoughts.total, 96);
  assert.ok(r.thoughts.dropped > 96 * 0.25 && r.thoughts.dropped < 96 * 0.75, `dropped ${r.thoughts.dropped}`);
  for (const h of r.history) assert.ok(Number.isFinite(h.loss));
  const again = run();
  assert.deepEqual(again.thoughts, r.thoughts, "seeded: the same targets are dropped");
  assert.deepEqual(
    again.history.map((h) => h.loss),
    r.history.map((h) => h.loss),
  );
});

test("one uniform draw per traced target: a target kept at p = 0.9 is also kept at p = 0.3", () => {
  const t = arithmeticTask({ digits: [1, 2] });
  const rng = Rng.fromSeed(9);
  const withTraces = Array.from({ length: 64 }, () => {
    const p: Problem = t.sample(rng, "train");
    return sftTarget(p, t.trace(p));
  });
  const a = thoughtDropout(withTraces, 0.3, Rng.fromSeed(1)).targets;
  const b = thoughtDropout(withTraces, 0.9, Rng.fromSeed(1)).targets;
  let keptAtHigh = 0;
  b.forEach((x, i) => {
    if (x !== withTraces[i]) return;
    keptAtHigh++;
    assert.equal(a[i], withTraces[i]);
  });
  assert.ok(keptAtHigh > 0);
});
