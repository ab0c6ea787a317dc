// Each diagnostic triggers once when its condition holds (and not before), says what it means, and keeps its
// memory across a checkpoint; the all-groups-zero-std one is triggered by a real run.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { parseTrainConfig } from "../../src/train/config.js";
import { Diagnostics } from "../../src/train/diagnostics.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

function collect(): { lines: string[]; d: Diagnostics } {
  const lines: string[] = [];
  return { lines, d: new Diagnostics((l) => lines.push(l)) };
}

test("entropy collapse: below the floor, once", () => {
  const { lines, d } = collect();
  d.entropy(1, 0.5);
  assert.equal(lines.length, 0);
  d.entropy(2, 0.01);
  d.entropy(3, 0.001);
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /step 2: mean token entropy fell to 0\.0100 nats.*collapsing/);
});

test("falling likelihood of correct answers: three steps below the best by the drop, once", () => {
  const { lines, d } = collect();
  for (const [s, lp] of [
    [1, -1],
    [2, -1.2],
    [3, -1.6],
    [4, -1.7],
  ] as const)
    d.correctLikelihood(s, lp);
  assert.equal(lines.length, 0, "two steps below the best are not yet a trend");
  d.correctLikelihood(5, -1.8);
  d.correctLikelihood(6, -1.9);
  assert.equal(lines.length, 1);
  assert.match(lines[0] as string, /step 5: the likelihood of correct answers keeps falling.*llds/);
});

test("gradient spike: over 10x the running median, once; the history survives a checkpoint", () => {
  const { lines, d } = collect();
  for (let s = 1; s <= 5; s++) d.gradNorm(s, 1 + s * 0.01);
  d.gradNorm(6, 5);
  assert.equal(lines.length, 0);
  const copy = collect();
  copy.d.load(JSON.parse(JSON.stringify(d.state())));
  copy.d.gradNorm(7, 50);
  copy.d.gradNorm(8, 80);
  assert.equal(copy.lines.length, 1);
  assert.match(copy.lines[0] as string, /step 7: gradient norm 5\.00e\+1 is over 10x its running median/);
});

test("NaN skip: every skipped update is reported", () => {
  const { lines, d } = collect();
  d.nonFinite(3, "loss");
  d.nonFinite(4, "gradient norm");
  assert.equal(lines.length, 2);
  assert.match(lines[0] as string, /^step 3: the loss is NaN or infinite; the update was skipped/);
  assert.match(lines[1] as string, /^step 4: the gradient norm is NaN or infinite/);
});

test("all groups zero-std: a real run whose only reward is constant", async () => {
  const lines: string[] = [];
  const cfg = parseTrainConfig({
    model: { path: tinyModelDir(2) },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    rewards: [`${resolve("test/fixtures/rewards/constant.ts")}#one`],
    train: { steps: 2, promptsPerStep: 2, groupSize: 3, microBatchSize: 6 },
    sampling: { maxNewTokens: 4 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: (l) => lines.push(l) });
  assert.ok(r.metrics.filter((m) => (m.step as number) > 0).every((m) => m.frac_reward_zero_std === 1));
  const said = lines.filter((l) => l.includes("every group's rewards are identical"));
  assert.equal(said.length, 1, lines.join("\n"));
  assert.match(said[0] as string, /^diagnostic at step 1: /);
});
