// `cohort train --nproc 2` against one process on the same batch: the same metric trajectory (fp32, 1e-5) with the
// gradient all-reduce overlapped with the backward pass (the default) and after it, and a checkpoint holding
// both ranks' state.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { latestCheckpoint, loadCheckpoint } from "../../src/train/checkpoint.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { assertSameTrajectory, cohort, tinyModelDir, tmpRunRoot, writeConfig } from "./helpers.js";

const root = tmpRunRoot();
const model = tinyModelDir(3);
// the one-process run both tests compare with
let oneRun: ReturnType<typeof train> | null = null;
const oneProcess = () => {
  oneRun ??= train(loadTrainConfig(writeConfig(root, model, "one")), { log: () => {} });
  return oneRun;
};

test("--nproc 2 follows the metric trajectory of one process on the combined batch", async () => {
  const one = await oneProcess();
  const run = cohort([writeConfig(root, model, "two"), "--nproc", "2", "--quiet"]);
  const { code } = await run.exited;
  assert.equal(code, 0, run.out.stderr);
  assert.match(run.out.stderr, /cohort: 2 ranks on 127\.0\.0\.1:\d+ \(pids \d+, \d+\)/);
  const two = new MetricsLog(join(root, "two", "metrics.jsonl")).read();
  // the run learns, so agreement is not trivial
  assert.ok(one.metrics.some((m) => typeof m.grad_norm === "number" && m.grad_norm > 0.1));
  assert.ok(one.metrics.some((m) => typeof m.eval_accuracy === "number"));
  assertSameTrajectory(two, one.metrics, 1e-5, "2 ranks vs 1 process");
  // every gradient bucket of every optimizer step was launched before its backward pass returned
  const trained = two.filter((m) => typeof m.grad_norm === "number");
  assert.equal(trained.length, 4);
  for (const m of trained) {
    assert.equal(m["dist/allreduce_in_backward"], 1, `step ${m.step}`);
    assert.ok((m["time/allreduce_wait_s"] as number) >= 0);
  }
  // rank 0 wrote a checkpoint holding both ranks' state, and the final model
  const ck = loadCheckpoint(latestCheckpoint(join(root, "two")) as string);
  for (const t of [...Object.values(ck.weights), ...Object.values(ck.optimizer.tensors)]) t.dispose();
  const ranks = ck.state.ranks as { torchRng: string }[];
  assert.equal(ck.state.worldSize, 2);
  assert.equal(ranks.length, 2);
  assert.notEqual(ranks[0]?.torchRng, ranks[1]?.torchRng, "each rank has its own derived seed");
  assert.ok(existsSync(join(root, "two", "final", "model.safetensors")));
});

test("--nproc 2 with train.overlapAllreduce false: all-reduce after the backward passes, the same trajectory", async () => {
  const one = await oneProcess();
  const run = cohort([
    writeConfig(root, model, "off"),
    "--nproc",
    "2",
    "--quiet",
    "--set",
    "train.overlapAllreduce=false",
  ]);
  const { code } = await run.exited;
  assert.equal(code, 0, run.out.stderr);
  const off = new MetricsLog(join(root, "off", "metrics.jsonl")).read();
  assertSameTrajectory(off, one.metrics, 1e-5, "2 ranks (all-reduce after backward) vs 1 process");
  for (const m of off.filter((r) => typeof r.grad_norm === "number")) assert.equal(m["dist/allreduce_in_backward"], 0);
});

// Estimators, losses and filters with statistics over the whole step (GDPO's batch normalisation, REINFORCE++'s
// token whitening, DisCO's 1/#questions and step KL): the stage runs over every rank's rows, counts and step-wide
// sums are all-reduced, so 2 ranks give one process's trajectory.
for (const preset of ["gdpo", "reinforce_pp_baseline", "disco"]) {
  test(`--nproc 2 follows one process for ${preset} (whole-step statistics)`, async () => {
    const algo = `preset: ${preset}`;
    const one = await train(loadTrainConfig(writeConfig(root, model, `one-${preset}`, algo)), { log: () => {} });
    assert.ok(one.metrics.some((m) => typeof m.grad_norm === "number" && m.grad_norm > 0));
    const run = cohort([writeConfig(root, model, `two-${preset}`, algo), "--nproc", "2", "--quiet"]);
    const { code } = await run.exited;
    assert.equal(code, 0, run.out.stderr);
    const two = new MetricsLog(join(root, `two-${preset}`, "metrics.jsonl")).read();
    assertSameTrajectory(two, one.metrics, 1e-5, `${preset}: 2 ranks vs 1 process`);
  });
}
