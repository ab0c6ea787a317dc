// Bad input to the `cohort` command ends in one line naming the problem and what is allowed, exit 2, never a
// stack trace, and loses no data.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";

const model = tinyModelDir(6);

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { encoding: "utf8" });
}

/** Exit 2 with one line on stderr that matches `re`. */
function refused(r: ReturnType<typeof cli>, re: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

function config(root: string, extra: string[] = []): string {
  const file = join(root, "cfg.yaml");
  writeFileSync(
    file,
    [
      "name: r",
      `outputDir: ${root}`,
      `model: {path: ${model}}`,
      "task: {name: arithmetic, options: {digits: [1, 1]}}",
      "train: {steps: 2, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 0}",
      "checkpoint: {everySteps: 1}",
      ...extra,
      "",
    ].join("\n"),
  );
  return file;
}

test("invalid YAML in --set is a ConfigError naming the flag", () => {
  const r = cli("train", config(tmpRunRoot()), "--set", "train.lr=[1,2");
  refused(r, /^cohort train: --set train\.lr=\[1,2: the value is not valid YAML .*; write a number/);
  assert.equal(r.stderr.trim().split("\n").length, 1);
});

test("an outputDir that is a file is refused by name", () => {
  const root = tmpRunRoot();
  writeFileSync(join(root, "afile"), "x");
  const r = cli("train", config(root), "--set", `outputDir=${join(root, "afile")}`);
  refused(r, /the run directory .*afile\/r cannot be created: .*afile is a file, not a directory. Set outputDir/);
});

test("eval and pretrain refuse malformed numbers and JSON", () => {
  refused(cli("eval", model, "--task", "arithmetic", "--seed", "x"), /--seed: expected an integer ≥ 0, got "x"/);
  refused(cli("eval", model, "--task", "arithmetic", "--problems", "abc"), /--problems: expected an integer ≥ 1/);
  refused(
    cli("eval", model, "--task", "arithmetic", "--problems", "0"),
    /--problems: expected an integer ≥ 1, got "0"/,
  );
  refused(cli("eval", model, "--task", "arithmetic", "--options", "{bad"), /--options must be a JSON object/);
  const out = join(tmpRunRoot(), "m");
  refused(
    cli("pretrain", "--task", "arithmetic", "--out", out, "--options", "{bad"),
    /--options must be a JSON object/,
  );
  refused(cli("pretrain", "--task", "arithmetic", "--out", out, "--lr", "fast"), /--lr: expected a number > 0/);
  assert.ok(!existsSync(out));
});

test("a damaged checkpoint state.json names the file and offers the older intact checkpoint", async () => {
  const root = tmpRunRoot();
  const file = config(root);
  await train(loadTrainConfig(file), { log: () => {} });
  const state = join(root, "r", "checkpoints", "step-000002", "state.json");
  writeFileSync(state, '{"step": 2, "rng": ');
  const metrics = readFileSync(join(root, "r", "metrics.jsonl"), "utf8");
  const r = cli("train", file, "--resume", "--set", "train.steps=3");
  refused(r, /step-000002\/state\.json is damaged: .*JSON.* The older checkpoint .*step-000001 is intact: move/);
  assert.equal(readFileSync(join(root, "r", "metrics.jsonl"), "utf8"), metrics, "the logs are untouched");
});

test("cohort serve on a port in use says so", async () => {
  const blocker = createServer();
  await new Promise<void>((res) => blocker.listen(0, "127.0.0.1", res));
  const port = (blocker.address() as { port: number }).port;
  try {
    const r = cli("serve", model, "--port", String(port));
    refused(r, new RegExp(`port ${port} is already in use on 127\\.0\\.0\\.1; .* pick another --port`));
  } finally {
    blocker.close();
  }
});

test("a reward that calls process.exit(1) is a reward failure naming the reward; the run goes on", () => {
  const root = tmpRunRoot();
  const exits = resolve("test/fixtures/rewards/interrupt.ts");
  const file = config(root, [`rewards: ["${exits}#exitsOnEven", correctness]`]);
  const r = cli("train", file, "--quiet");
  assert.equal(r.status, 0, r.stderr);
  const failures = readFileSync(join(root, "r", "reward_failures.jsonl"), "utf8")
    .trim()
    .split("\n");
  assert.ok(failures.length > 0);
  const f = JSON.parse(failures[0] as string);
  assert.equal(f.reward, "interrupt#exitsOnEven");
  assert.equal(f.kind, "throw");
  assert.match(f.message, /called process\.exit\(1\); the call was stopped so the run goes on/);
  assert.ok(existsSync(join(root, "r", "final", "model.safetensors")));
});
