// Ctrl-C (SIGINT) and SIGTERM during `cohort train` save a checkpoint after the current step and exit (130 / 143);
// --resume finishes the run.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "./helpers.js";

test("SIGINT saves a checkpoint and exits 130; --resume completes the run", async () => {
  const root = tmpRunRoot();
  const file = join(root, "cfg.yaml");
  writeFileSync(
    file,
    [
      "name: int",
      `outputDir: ${root}`,
      `model: {path: ${tinyModelDir(2)}}`,
      "task: {name: arithmetic, options: {digits: [1, 1]}}",
      "train: {steps: 400, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 0}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  const metrics = new MetricsLog(join(root, "int", "metrics.jsonl"));
  const run = (args: string[]) =>
    spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", file, "--quiet", ...args]);
  const child = run([]);
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const done = new Promise<number | null>((res) => child.on("exit", (code) => res(code)));
  while (!(existsSync(metrics.path) && metrics.read().length >= 3)) await new Promise((r) => setTimeout(r, 20));
  child.kill("SIGINT");
  assert.equal(await done, 130, stderr);
  const ck = latestCheckpoint(join(root, "int"));
  assert.ok(ck !== null, "a checkpoint was written on Ctrl-C");
  const stoppedAt = metrics.read().length;
  assert.ok(stoppedAt < 400);
  assert.match(stderr, /stopping after this step/);
  const resumed = run(["--resume", "--set", `train.steps=${stoppedAt + 2}`]);
  assert.equal(await new Promise((res) => resumed.on("exit", res)), 0);
  assert.equal(metrics.read().at(-1)?.step, stoppedAt + 2);
});

test("SIGTERM (preemption) saves a checkpoint after the current step and exits 143; --resume equals the uninterrupted run", async () => {
  const root = tmpRunRoot();
  const model = tinyModelDir(3);
  const signaller = resolve("test/fixtures/rewards/interrupt.ts");
  const config = (name: string) => {
    const file = join(root, `${name}.yaml`);
    writeFileSync(
      file,
      [
        `name: ${name}`,
        `outputDir: ${root}`,
        "seed: 5",
        `model: {path: ${model}}`,
        "task: {name: arithmetic, options: {digits: [1, 1]}}",
        `rewards: ["${signaller}#parityOrSignal", correctness]`,
        "train: {steps: 6, promptsPerStep: 2, groupSize: 2, lr: 0.003}",
        "sampling: {maxNewTokens: 5}",
        "eval: {everySteps: 2, problems: 4}",
        "checkpoint: {everySteps: 0}",
        "",
      ].join("\n"),
    );
    return file;
  };
  const ref = await train(loadTrainConfig(config("straight")), { log: () => {} });
  const file = config("term");
  // the reward sends SIGTERM to its own process during step 3 (4 calls per step): a deterministic kill point
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", file, "--quiet"], {
    env: { ...process.env, COHORT_TEST_SIGNAL: "SIGTERM", COHORT_TEST_SIGNAL_AT_CALL: "10" },
  });
  let stderr = "";
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const code = await new Promise<number | null>((res) => child.on("exit", (c) => res(c)));
  assert.equal(code, 143, stderr);
  assert.match(stderr, /SIGTERM: stopping after this step \(saving a checkpoint\)/);
  const ck = latestCheckpoint(join(root, "term"));
  assert.ok(ck !== null, "a checkpoint was written on SIGTERM");
  const metrics = new MetricsLog(join(root, "term", "metrics.jsonl"));
  const stoppedAt = metrics.read().at(-1)?.step as number;
  assert.ok(stoppedAt >= 3 && stoppedAt < 6, `stopped after step ${stoppedAt}`);
  assert.match(ck, new RegExp(`step-${String(stoppedAt).padStart(6, "0")}$`));
  const resumed = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", file, "--quiet", "--resume"]);
  assert.equal(await new Promise((res) => resumed.on("exit", res)), 0);
  assert.deepEqual(metrics.read().map(deterministicPart), ref.metrics.map(deterministicPart));
});
