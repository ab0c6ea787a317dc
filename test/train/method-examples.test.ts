/**
 * The example configs of the agent and preference-free methods (Dr. Zero HRPO, MasHost HRPO, GraphRAG-R1's
 * two phases, MultiRole-R1) parse and train one step through the loop from their shipped models; the
 * hop-grouped run really groups across questions (one episode per question still carries advantages).
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

const small = (extra: string[] = []) => [
  `outputDir=${mkdtempSync(join(tmpdir(), "cohort-method-example-"))}`,
  "train.steps=1",
  "eval.everySteps=1",
  "eval.problems=4",
  "checkpoint.everySteps=1",
  ...extra,
];

for (const [file, extra] of [
  ["examples/drzero_hrpo.yaml", ["train.promptsPerStep=12"]],
  ["examples/graphrag_r1/pra.yaml", ["train.promptsPerStep=2", "train.groupSize=3"]],
  // phase 3 from the shipped model (the phase-2 run directory does not exist in a fresh clone)
  [
    "examples/graphrag_r1/caf.yaml",
    ["train.promptsPerStep=2", "train.groupSize=3", "model.path=../../models/wordnet-tiny"],
  ],
  ["examples/mashost_hrpo.yaml", ["train.promptsPerStep=2", "train.groupSize=3"]],
  ["examples/multirole.yaml", ["train.promptsPerStep=2", "train.groupSize=3"]],
] as const) {
  test(`${file} trains one step`, async () => {
    const cfg = loadTrainConfig(file, small([...extra]));
    assert.ok(existsSync(join(file, "..", (cfg.model as { path: string }).path)), "the shipped model exists");
    const r = await train(cfg, { log: () => {} });
    assert.equal(r.steps, 1);
    const m = r.metrics.at(-1) as Record<string, number>;
    assert.ok(Number.isFinite(m.loss), `loss ${m.loss}`);
    if (file.includes("drzero")) {
      // one episode per question: per-question GRPO is refused (a group of one carries no signal); the hop
      // groups (questions of equal hop count) give a baseline, so the update moves the weights
      assert.ok((m.grad_norm as number) > 0, `grad_norm ${m.grad_norm}`);
      assert.throws(
        () => loadTrainConfig(file, small([...extra, "preset=grpo"])),
        /groupSize 1: group-relative advantages need at least 2 completions per prompt/,
      );
    }
  });
}
