/**
 * examples/multirole.yaml through train() from the shipped models/arithmetic-roles: the model writes role tags,
 * so the perspective reward is non-zero and differs within groups (it carries signal), the diversity metrics are
 * logged per step and at evaluation, and each rollout's combined reward is correctness + 0.5·perspective +
 * 0.5·distinct-2 of its own completion, recomputed here from the text.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { distinctN, perspectiveDiversity, roleTags } from "../../src/reward/process.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

test("examples/multirole.yaml: two steps with a live perspective reward and logged diversity metrics", async () => {
  const out = mkdtempSync(join(tmpdir(), "cohort-multirole-"));
  const cfg = loadTrainConfig("examples/multirole.yaml", [
    `outputDir=${out}`,
    "train.steps=2",
    "train.promptsPerStep=3",
    "train.groupSize=4",
    "eval.everySteps=1",
    "eval.problems=6",
    "checkpoint.everySteps=2",
  ]);
  const r = await train(cfg, { log: () => {} });
  assert.equal(r.steps, 2);
  for (const m of r.metrics.filter((x) => (x.step as number) > 0) as Record<string, number>[]) {
    const at = (k: string) => m[k] as number;
    assert.ok(at("reward/perspective/mean") > 0, `step ${m.step}: perspective ${m["reward/perspective/mean"]}`);
    assert.ok(at("reward/distinct_2/mean") > 0.5, `step ${m.step}: distinct-2 ${m["reward/distinct_2/mean"]}`);
    assert.ok(Number.isFinite(m["reward/perspective/std"]) && Number.isFinite(m["reward/distinct_2/std"]));
    assert.ok(at("eval_reward/perspective") > 0, `eval perspective ${m["eval_reward/perspective"]}`);
    assert.ok(Number.isFinite(m["eval_reward/distinct_2"]));
  }
  const rows = readFileSync(join(r.runDir, "samples.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((x) => x.kind === "rollout");
  assert.ok(rows.length > 0, "rollout rows in samples.jsonl");
  const byGroup = new Map<string, Set<number>>();
  for (const row of rows) {
    const text = row.completion as string;
    const rw = row.rewards as { correctness: number; perspective: number; distinct_2: number };
    const persp = perspectiveDiversity(roleTags(text), 3);
    assert.equal(rw.perspective, persp, text);
    assert.equal(rw.distinct_2, distinctN(text, 2), text);
    assert.ok(Math.abs((row.reward as number) - (rw.correctness + 0.5 * persp + 0.5 * distinctN(text, 2))) < 1e-9);
    const key = `${row.step}/${row.group}`;
    byGroup.set(key, (byGroup.get(key) ?? new Set()).add(persp));
  }
  assert.ok(
    rows.some((row) => roleTags(row.completion as string).length >= 2),
    "the model writes chains of several roles",
  );
  assert.ok(
    [...byGroup.values()].some((s) => s.size > 1),
    "in some group the perspective reward differs between completions",
  );
});
