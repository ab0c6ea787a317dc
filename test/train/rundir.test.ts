// The run directory across restarts: a failed start touches nothing, a fresh start never mixes with an old run
// (refused, or --overwrite moves the old run aside), --resume continues only its own run with its own config,
// and the step-keyed logs are cut back to the checkpoint on resume.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { readModelDir, tokenizerFilesToWrite, writeModelDir } from "../../src/io/hf.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { appendLines, configChanges } from "../../src/train/rundir.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "./helpers.js";

const interrupt = resolve("test/fixtures/rewards/interrupt.ts");
const flaky = resolve("test/fixtures/rewards/slow-length.ts");
const model = tinyModelDir(3);
const quiet = () => {};

/** A tiny run config; `over` replaces or adds top-level keys (`key: value` YAML lines). */
function writeConfig(root: string, name: string, over: Record<string, string> = {}): string {
  const file = join(root, `${name}.yaml`);
  const lines: Record<string, string> = {
    name,
    outputDir: root,
    seed: "7",
    model: `{path: ${model}}`,
    task: "{name: arithmetic, options: {digits: [1, 1]}}",
    rewards: `["${interrupt}#parityOrSignal", correctness]`,
    train: "{steps: 4, promptsPerStep: 2, groupSize: 2, lr: 0.003}",
    sampling: "{maxNewTokens: 6}",
    eval: "{everySteps: 2, problems: 4}",
    checkpoint: "{everySteps: 3}",
    ...over,
  };
  writeFileSync(
    file,
    `${Object.entries(lines)
      .map(([k, v]) => `${k}: ${v}`)
      .join("\n")}\n`,
  );
  return file;
}

function cli(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, ...env },
  });
}

/** Every file under `dir` (relative path → contents), for comparing a directory before and after. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = join(e.parentPath, e.name);
    out[p.slice(dir.length)] = readFileSync(p).toString("base64");
  }
  return out;
}

test("a start that fails a check (maxNewTokens beyond the context) leaves the previous run's files as they were", async () => {
  const root = tmpRunRoot();
  const file = writeConfig(root, "r");
  await train(loadTrainConfig(file), { log: quiet });
  const dir = join(root, "r");
  const before = snapshot(dir);
  assert.ok(new MetricsLog(join(dir, "metrics.jsonl")).read().length > 0);
  for (const extra of [[], ["--overwrite"], ["--resume"]]) {
    const r = cli(["train", file, "--quiet", "--set", "sampling.maxNewTokens=100", ...extra]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /maxNewTokens 100 needs \d+ positions; the model has 64/);
    assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    assert.deepEqual(snapshot(dir), before, `${extra.join(" ")}: nothing in the run directory changed`);
  }
  assert.deepEqual(
    readdirSync(dir).filter((n) => n.startsWith(".previous")),
    [],
  );
});

test("a fresh start over a run is refused; --overwrite moves it aside; killed before its first checkpoint, --resume restarts its own run", async () => {
  const root = tmpRunRoot();
  const straight = await train(loadTrainConfig(writeConfig(root, "straight")), { log: quiet });
  const file = writeConfig(root, "r");
  const dir = join(root, "r");
  // the first run: a different seed, so its checkpoint would give other metrics if it were loaded
  assert.equal(cli(["train", file, "--quiet", "--set", "seed=99"]).status, 0);
  const firstRun = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).runId as string;
  assert.match(firstRun, /^\d{8}T\d{6}Z-[0-9a-f]{6}$/);
  const oldMetrics = readFileSync(join(dir, "metrics.jsonl"), "utf8");

  const refused = cli(["train", file, "--quiet"]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, new RegExp(`already holds run ${firstRun} \\(checkpoints up to step-000004`));
  assert.match(refused.stderr, /--resume[\s\S]*--overwrite[\s\S]*another name/);
  assert.equal(readFileSync(join(dir, "metrics.jsonl"), "utf8"), oldMetrics);

  // --overwrite, then SIGKILL in step 2 (before the first checkpoint, at step 3)
  const child = spawn(
    process.execPath,
    ["--import", "tsx", "src/cli/main.ts", "train", file, "--quiet", "--overwrite"],
    {
      stdio: "ignore",
      env: { ...process.env, COHORT_TEST_SIGNAL: "SIGKILL", COHORT_TEST_SIGNAL_AT_CALL: "6" },
    },
  );
  const signal = await new Promise((res) => child.on("exit", (_c, sig) => res(sig)));
  assert.equal(signal, "SIGKILL");
  const previous = readdirSync(dir).filter((n) => n.startsWith(".previous-"));
  assert.equal(previous.length, 1);
  const moved = join(dir, previous[0] as string);
  assert.equal(readFileSync(join(moved, "metrics.jsonl"), "utf8"), oldMetrics, "the old run is kept whole");
  assert.ok(existsSync(join(moved, "checkpoints", "step-000004", "state.json")));
  assert.ok(!existsSync(join(dir, "checkpoints")), "the new run has no checkpoint yet");
  const secondRun = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")).runId as string;
  assert.notEqual(secondRun, firstRun);

  const resumed = cli(["train", file, "--quiet", "--resume"]);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.match(resumed.stderr, /restarting it from step 0/);
  const b = new MetricsLog(join(dir, "metrics.jsonl")).read().map(deterministicPart);
  assert.deepEqual(
    b.map((m) => m.step),
    [0, 1, 2, 3, 4],
  );
  assert.deepEqual(b, straight.metrics.map(deterministicPart), "the resumed run is its own run, not the old one");
  const history = readFileSync(join(dir, "history.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    history.map((h) => [h.event, h.runId]),
    [
      ["start", secondRun],
      ["resume", secondRun],
    ],
  );

  // a checkpoint of the old run placed in this run's folder is refused by its run id
  cpSync(join(moved, "checkpoints", "step-000004"), join(dir, "checkpoints", "step-000009"), { recursive: true });
  writeFileSync(join(dir, "checkpoints", "latest"), "step-000009\n");
  const foreign = cli(["train", file, "--quiet", "--resume", "--set", "train.steps=10"]);
  assert.equal(foreign.status, 2);
  assert.match(foreign.stderr, new RegExp(`step-000009 belongs to run ${firstRun}, but .* records run ${secondRun}`));
});

test("--resume refuses changed training keys by name, accepts the changeable ones and --allow-config-change", async () => {
  const root = tmpRunRoot();
  const file = writeConfig(root, "r", { algo: "{gate: {type: clip, low: 0.2, high: 0.2}}" });
  const cfg = (sets: string[]) => loadTrainConfig(file, sets);
  await train(cfg([]), { log: quiet, stopAfterStep: 3 });
  await assert.rejects(
    () => train(cfg(["seed=8", "train.lr=0.01", "preset=dapo", "rewards=[correctness]"]), { log: quiet, resume: true }),
    (e: Error) => {
      assert.match(e.message, /the config differs from the one run \S+ was started with/);
      assert.match(e.message, /seed: 7 → 8/);
      assert.match(e.message, /train\.lr: 0\.003 → 0\.01/);
      assert.match(e.message, /preset: "grpo" → "dapo"/);
      assert.match(e.message, /rewards: \[/);
      assert.match(e.message, /resolvedAlgo: \d+ field/);
      assert.match(e.message, /Changeable on resume: train\.steps, eval, checkpoint/);
      return true;
    },
  );
  // changing only eval/checkpoint cadence and the length of a constant-lr run is fine
  const r = await train(cfg(["train.steps=5", "eval.everySteps=1", "checkpoint.everySteps=1"]), {
    log: quiet,
    resume: true,
  });
  assert.equal(r.steps, 5);
  const saved = JSON.parse(readFileSync(join(root, "r", "config.json"), "utf8"));
  assert.equal(saved.train.steps, 5, "config.json records the new values");
  // a named key may change; the change is recorded in the run's history
  const lr = await train(cfg(["train.steps=6", "train.lr=0.001"]), {
    log: quiet,
    resume: true,
    allowConfigChange: ["train.lr"],
  });
  assert.equal(lr.steps, 6);
  const last = JSON.parse(
    readFileSync(join(root, "r", "history.jsonl"), "utf8")
      .trim()
      .split("\n")
      .at(-1) as string,
  );
  assert.deepEqual(
    last.configChanged.filter((c: { key: string }) => c.key.startsWith("train.")),
    [
      { key: "train.lr", from: 0.003, to: 0.001 },
      { key: "train.steps", from: 5, to: 6 },
    ],
  );
  // a longer run under a schedule that spans train.steps is another run
  const cos = writeConfig(root, "cos");
  await train(loadTrainConfig(cos, ["train.schedule=cosine"]), { log: quiet, stopAfterStep: 3 });
  await assert.rejects(
    () => train(loadTrainConfig(cos, ["train.schedule=cosine", "train.steps=8"]), { log: quiet, resume: true }),
    /train\.steps: 4 → 8 \(the cosine learning-rate schedule spans train\.steps\)/,
  );
  assert.deepEqual(configChanges({ a: { b: 1 }, runId: "x" }, { a: { b: 1 }, runId: "y" }), []);
});

test("resume cuts samples.jsonl and reward_failures.jsonl back to the checkpoint; a fresh run starts them empty", async () => {
  const root = tmpRunRoot();
  const extra = { rewards: `["${flaky}#flaky", correctness]`, eval: "{everySteps: 1, problems: 4, logSamples: 2}" };
  const straightFile = writeConfig(root, "straight", extra);
  await train(loadTrainConfig(straightFile), { log: quiet });
  const file = writeConfig(root, "cut", extra);
  // a checkpoint at step 3; steps 4 and 5 are logged, then the process "dies" (stopAfterStep, no checkpoint)
  await train(loadTrainConfig(file, ["train.steps=6"]), { log: quiet, stopAfterStep: 5 });
  const failures = (run: string) => readFileSync(join(root, run, "reward_failures.jsonl"), "utf8");
  const samples = (run: string) => readFileSync(join(root, run, "samples.jsonl"), "utf8");
  assert.ok(failures("cut").includes('"step":5'), "the flaky reward failed in steps after the checkpoint");
  const leftover = join(root, "cut", "checkpoints", ".tmp-step-000004-99999"); // a save killed mid-write
  mkdirSync(leftover);
  await train(loadTrainConfig(file, ["train.steps=4"]), { log: quiet, resume: true });
  assert.ok(!existsSync(leftover), "an unfinished checkpoint folder is removed at the next start");
  assert.ok(failures("straight").length > 0);
  assert.equal(failures("cut"), failures("straight"));
  assert.equal(samples("cut"), samples("straight"));
  // a fresh run over it (--overwrite) starts with no failures of the old run
  await train(loadTrainConfig(file, ["rewards=[correctness]"]), { log: quiet, overwrite: true });
  assert.ok(!existsSync(join(root, "cut", "reward_failures.jsonl")));
});

test("a log append that fails (a full disk) is one clear error naming the file", () => {
  const full = (e: Error) =>
    e.name === "CohortError" &&
    /could not append to \/dev\/full: ENOSPC \(the disk is full\)[\s\S]*--resume/.test(e.message);
  assert.throws(() => appendLines("/dev/full", ['{"step":1}']), full);
  assert.throws(() => new MetricsLog("/dev/full").append({ step: 1 }), full, "metrics.jsonl appends go through it");
});

test("a model with non-finite weights is refused before the run directory is created", async () => {
  const root = tmpRunRoot();
  const bad = join(root, "nan-model");
  const dir = readModelDir(model);
  const [name, first] = Object.entries(dir.tensors)[0] as [string, (typeof dir.tensors)[string]];
  const tensors = { ...dir.tensors, [name]: first.mul(Number.NaN) };
  const tok = dir.tokenizer as NonNullable<typeof dir.tokenizer>;
  writeModelDir(bad, { config: dir.config, tensors, tokenizerFiles: tokenizerFilesToWrite(tok) });
  for (const t of Object.values(tensors)) t.dispose();
  first.dispose();
  const file = writeConfig(root, "r", { model: `{path: ${bad}}` });
  await assert.rejects(
    () => train(loadTrainConfig(file), { log: quiet }),
    new RegExp(
      `the model ${bad} has non-finite \\(NaN or infinite\\) values in 1 tensor\\(s\\): ${name.replace(/\./g, "\\.")}`,
    ),
  );
  assert.ok(!existsSync(join(root, "r")));
});
