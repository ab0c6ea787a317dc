// Faults of `cohort train --nproc 2`: a rank killed with SIGKILL stops the other with a message naming it and
// leaves only complete checkpoints; resume with 2 ranks gives the uninterrupted trajectory; resume with another
// world size is refused.
import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { checkpointsDir, latestCheckpoint, loadCheckpoint } from "../../src/train/checkpoint.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { assertSameTrajectory, cohort, tinyModelDir, tmpRunRoot, writeConfig } from "./helpers.js";

const root = tmpRunRoot();
const model = tinyModelDir(3);
const cfg = writeConfig(root, model, "killed");

test("SIGKILL of a rank: the other exits naming it, checkpoints stay whole; resume with 2 ranks matches", async () => {
  const run = cohort([cfg, "--nproc", "2", "--quiet"]);
  const metricsPath = join(root, "killed", "metrics.jsonl");
  let pids: number[] = [];
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    const m = /\(pids (\d+), (\d+)\)/.exec(run.out.stderr);
    if (m) pids = [Number(m[1]), Number(m[2])];
    if (pids.length > 0 && existsSync(metricsPath) && new MetricsLog(metricsPath).read().some((r) => r.step === 3))
      break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const [rank0, rank1] = pids as [number, number];
  process.kill(rank0, "SIGKILL"); // rank 0: the rank that writes the checkpoints and hosts the rendezvous store
  const killedAt = Date.now();
  const { code } = await run.exited;
  assert.ok(Date.now() - killedAt < 30_000, "the other rank stopped by itself (before the launcher's grace period)");
  assert.notEqual(code, 0);
  assert.match(run.out.stderr, new RegExp(`cohort: rank 0 \\(pid ${rank0}\\) was killed by SIGKILL`));
  assert.match(run.out.stderr, new RegExp(`cohort train: rank 1: \\w+ failed: .*rank 0 \\(pid ${rank0}\\) has exited`));
  assert.doesNotMatch(run.out.stderr, new RegExp(`rank 1 \\(pid ${rank1}\\) did not stop`));
  // every checkpoint folder is complete; the newest loads
  const dir = checkpointsDir(join(root, "killed"));
  const names = readdirSync(dir).filter((n) => n.startsWith("step-"));
  assert.ok(names.length > 0);
  for (const n of names)
    for (const f of ["weights.safetensors", "optimizer.safetensors", "state.json"])
      assert.ok(existsSync(join(dir, n, f)), `${n}/${f}`);
  const ck = loadCheckpoint(latestCheckpoint(join(root, "killed")) as string);
  for (const t of [...Object.values(ck.weights), ...Object.values(ck.optimizer.tensors)]) t.dispose();
  assert.ok(ck.step >= 2);

  const resumed = cohort([cfg, "--nproc", "2", "--resume", "--quiet"]);
  assert.equal((await resumed.exited).code, 0, resumed.out.stderr);
  // the uninterrupted trajectory: that of one process on the same batches (train.test.ts shows 2 ranks match it)
  const one = await train(loadTrainConfig(writeConfig(root, model, "one")), { log: () => {} });
  assertSameTrajectory(new MetricsLog(metricsPath).read(), one.metrics, 1e-5, "resumed 2 ranks vs 1 process");
});

test("a 2-rank checkpoint is not resumed by one process", async () => {
  await assert.rejects(
    train(loadTrainConfig(cfg), { resume: true, log: () => {} }),
    /was written by 2 ranks \(--nproc 2 or --world-size 2\), but this run has one process \(no --nproc\)\. .*resume with 2 ranks/,
  );
});
