// The README's "Your own task" tutorial, run as written (at tiny sizes) so that it cannot rot: its commands are
// read from the README between the own-task markers and run as separate processes in a copy of
// examples/own-task/, each with flags that only shrink it (fewer steps, a smaller model, fewer problems).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { tmpRunRoot } from "../train/helpers.js";

/** The tutorial's commands: the `npx cohort …` lines of the README's own-task block, continuations joined. */
function tutorialCommands(): string[][] {
  const readme = readFileSync("README.md", "utf8");
  const block = /<!-- own-task:start[^>]*-->\s*```sh\n([\s\S]*?)```\s*<!-- own-task:end -->/.exec(readme);
  assert.ok(block, "the README has the own-task block");
  return (block[1] as string)
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "")
    .map(shellWords);
}

/** Words of a command line as a POSIX shell splits them (plain words and single-quoted strings). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  for (const m of line.matchAll(/'([^']*)'|(\S+)/g)) words.push((m[1] ?? m[2]) as string);
  return words;
}

/** Flags that only make a command smaller (appended: a later value of a flag wins). */
const TINY: Record<string, string[]> = {
  pretrain: [
    "--steps",
    "6",
    "--eval-every",
    "3",
    "--hidden",
    "32",
    "--layers",
    "1",
    "--heads",
    "2",
    "--kv-heads",
    "1",
    "--mlp",
    "64",
  ],
  train: [
    "--set",
    "train.steps=2",
    "--set",
    "train.promptsPerStep=2",
    "--set",
    "train.groupSize=2",
    "--set",
    "eval.everySteps=1",
    "--set",
    "eval.problems=6",
    "--set",
    "checkpoint.everySteps=1",
  ],
  eval: ["--problems", "6"],
  report: [],
};

test("the README's own-task tutorial runs as written", () => {
  const commands = tutorialCommands();
  assert.deepEqual(
    commands.map((c) => c.slice(0, 3)),
    [
      ["npx", "cohort", "pretrain"],
      ["npx", "cohort", "train"],
      ["npx", "cohort", "eval"],
      ["npx", "cohort", "report"],
    ],
  );
  const root = tmpRunRoot();
  mkdirSync(join(root, "examples"));
  cpSync("examples/own-task", join(root, "examples", "own-task"), {
    recursive: true,
    filter: (src) => !/[\\/](runs|sorter)$/.test(src),
  });
  const main = resolve("src/cli/main.ts");
  const outputs: string[] = [];
  for (const [, , sub, ...args] of commands) {
    const argv = ["--import", import.meta.resolve("tsx"), main, sub as string, ...args, ...(TINY[sub as string] ?? [])];
    const r = spawnSync(process.execPath, argv, {
      cwd: root,
      encoding: "utf8",
      env: { ...process.env, COHORT_SKIP_BLAS_CHECK: "1" },
    });
    assert.equal(r.status, 0, `cohort ${sub} failed:\n${r.stderr}`);
    outputs.push(r.stdout);
  }
  const own = join(root, "examples", "own-task");
  assert.ok(existsSync(join(own, "sorter", "model.safetensors")), "pretrain wrote the starting model");
  const metrics = readFileSync(join(own, "runs", "sort-grpo", "metrics.jsonl"), "utf8");
  assert.match(metrics, /"eval_reward\/reward#score":/);
  assert.match(outputs[2] as string, /accuracy [\d.]+% \(reward "reward#score" ≥ 1\) on 6 problems/);
  assert.match(outputs[2] as string, /sort-grpo\/final\]/);
  assert.ok(existsSync(join(own, "runs", "sort-grpo", "report.html")), "report written");
});
