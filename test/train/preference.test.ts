// Preferences instead of rewards through the real trainer: `preference:` scores pairs within each group and the
// win rate against the group is the reward; SALT on the maze environment.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

const model = tinyModelDir(5);
const base = {
  model: { path: model },
  task: { name: "arithmetic", options: { digits: [1, 1] } },
  train: { steps: 2, promptsPerStep: 3, groupSize: 4, microBatchSize: 8 },
  sampling: { maxNewTokens: 6 },
  eval: { everySteps: 0 },
  checkpoint: { everySteps: 0 },
};

for (const [preset, preference] of [
  ["dno", "rps_style"],
  ["nash_mp", "rps_style"],
  ["p3o", "verifier"],
] as const) {
  test(`${preset} trains on the ${preference} preference (win rates against the group)`, async () => {
    const cfg = parseTrainConfig({ ...base, preset, preference, outputDir: tmpRunRoot() });
    const r = await train(cfg, { log: () => {} });
    assert.equal(r.steps, 2);
    for (const m of r.metrics.slice(1)) {
      assert.ok(Number.isFinite(m.loss as number));
      const w = m["reward/win_rate/mean"] ?? m["reward/mean"];
      if (w !== undefined) assert.ok(Math.abs((w as number) - 0.5) < 1e-9, `mean win rate ${w}`);
    }
  });
}

test("preference and rewards together are refused", () => {
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "dno", preference: "rps_style", rewards: ["correctness"] }),
    /win rate against its group; remove `rewards`/,
  );
});

test("the example configs parse", () => {
  for (const f of ["p3o", "dno", "nash_mp", "salt"]) {
    const c = loadTrainConfig(`examples/${f}.yaml`);
    assert.equal(c.preset, f);
  }
});
