/**
 * Every example config under examples/control parses with the config parser and trains one step through the
 * loop (the run directory in a temporary folder, evaluation small).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

const dir = "examples/control";
const files = readdirSync(dir).filter((f) => f.endsWith(".yaml"));

test("examples/control has an example for each control preset", () => {
  const presets = new Set(files.map((f) => loadTrainConfig(join(dir, f)).preset));
  for (const p of ["mdpo", "ppo", "reinforce", "npg_igt", "harpg", "iwocs", "action_grouping", "gorl", "hyper_pp"])
    assert.ok(presets.has(p), `no example uses preset ${p}`);
  const kinds = new Set<string | undefined>(files.map((f) => loadTrainConfig(join(dir, f)).policy?.kind));
  for (const k of ["tabular", "categorical_mlp", "gaussian_mlp", "gorl", "hyper_mlp"])
    assert.ok(kinds.has(k), `no example with ${k}`);
});

for (const f of files) {
  test(`examples/control/${f} trains one step`, async () => {
    const cfg = loadTrainConfig(join(dir, f), [
      `outputDir=${mkdtempSync(join(tmpdir(), "cohort-control-example-"))}`,
      "train.steps=1",
      "eval.everySteps=1",
      "eval.problems=2",
      "env.options.horizon=20",
    ]);
    assert.ok(cfg.policy !== undefined && cfg.env !== undefined);
    const r = await train(cfg, { log: () => {} });
    assert.equal(r.steps, 1);
    const m = r.metrics.at(-1);
    assert.ok(Number.isFinite(m?.loss as number), `loss ${m?.loss}`);
    assert.ok(Number.isFinite(m?.eval_return as number), `eval_return ${m?.eval_return}`);
  });
}
