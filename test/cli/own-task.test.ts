// Your own task from the command line, as separate processes: `cohort pretrain --dataset` makes a starting model
// from a JSONL file; `cohort eval` takes a run directory (its final/ model or a checkpoint), a dataset and your
// own reward, with a JSON last line; bad input exits 2 before any work; `cohort train` shows elapsed time, ETA
// and throughput; `cohort compare` shows each run's progress.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { runCompare } from "../../src/cli/compare.js";
import { formatDuration, formatRate, Progress } from "../../src/train/clock.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "../train/helpers.js";

const constant = fileURLToPath(new URL("../fixtures/rewards/constant.ts", import.meta.url));
const model = tinyModelDir(11);

function cli(...args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, COHORT_SKIP_BLAS_CHECK: "1" },
  });
}

function refused(r: ReturnType<typeof cli>, re: RegExp): void {
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
}

/** The last stdout line as JSON. */
function lastJson(r: ReturnType<typeof cli>): Record<string, unknown> {
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) as string) as Record<string, unknown>;
}

function writeLines(file: string, rows: unknown[]): string {
  writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  return file;
}

/** A small arithmetic run's config file in `root`: `steps` steps, a checkpoint every `checkpointEvery`. */
function arithmeticConfig(root: string, steps: number, checkpointEvery: number): string {
  const file = join(root, "cfg.yaml");
  writeFileSync(
    file,
    [
      "name: r",
      `outputDir: ${root}`,
      `model: {path: ${model}}`,
      "task: {name: arithmetic, options: {digits: [1, 1]}}",
      `train: {steps: ${steps}, promptsPerStep: 2, groupSize: 2}`,
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 0}",
      `checkpoint: {everySteps: ${checkpointEvery}}`,
      "",
    ].join("\n"),
  );
  return file;
}

/** A finished 2-step run (checkpoints at steps 1 and 2) on arithmetic. */
async function finishedRun(root: string): Promise<string> {
  const file = arithmeticConfig(root, 2, 1);
  return (await train(loadTrainConfig(file), { log: () => {} })).runDir;
}

test("cohort eval takes a run directory: its final/ model, or --checkpoint latest|N", async () => {
  const run = await finishedRun(tmpRunRoot());
  const task = ["--task", "arithmetic", "--options", '{"digits":[1,1]}', "--problems", "6", "--json"];
  const fin = lastJson(cli("eval", run, ...task));
  assert.equal(fin.model, join(run, "final"));
  assert.equal(fin.n, 6);
  assert.equal(fin.metric, "the task's verifier");
  assert.equal(typeof fin.accuracy, "number");
  assert.equal(
    lastJson(cli("eval", run, ...task, "--checkpoint", "latest")).model,
    join(run, "checkpoints", "step-000002"),
  );
  assert.equal(lastJson(cli("eval", run, ...task, "--checkpoint", "1")).model, join(run, "checkpoints", "step-000001"));
  refused(cli("eval", run, ...task, "--checkpoint", "7"), /has no checkpoint of step 7; the latest is .*step-000002/);
  refused(cli("eval", model, ...task, "--checkpoint", "latest"), /--checkpoint latest needs a run directory/);
  // an environment: its success rate
  const env = lastJson(cli("eval", "models/maze-tiny", "--env", "maze", "--problems", "4", "--json"));
  assert.deepEqual([env.metric, env.n], ["the environment's success rate", 4]);
  // a run that has not finished names the way to its checkpoints
  const { renameSync } = await import("node:fs");
  renameSync(join(run, "final"), join(run, "final-moved"));
  refused(cli("eval", run, ...task), /is a run without a final\/ model .*--checkpoint latest/);
});

test("cohort eval --dataset scores by your reward at a pass mark; --json ends with one JSON object", () => {
  const root = tmpRunRoot();
  const data = writeLines(join(root, "eval.jsonl"), [
    { prompt: "1+1=", answer: "2" },
    { prompt: "2+2=", answer: "4" },
    { prompt: "3+3=", answer: "6" },
  ]);
  const reward = `${constant}#one`;
  const r = cli("eval", model, "--dataset", data, "--reward", reward, "--max-new-tokens", "4", "--json");
  const j = lastJson(r);
  assert.deepEqual([j.accuracy, j.reward_mean, j.n], [1, 1, 3]);
  assert.equal(j.metric, 'reward "constant#one" ≥ 1');
  // the built-in verifier reads no <answer> tags in the random model's completions: said, not hidden
  assert.match(r.stderr, /warning: your completions never contain <answer>…<\/answer>.*answerFormat: plain/);
  const strict = lastJson(cli("eval", model, "--dataset", data, "--reward", reward, "--pass", "1.5", "--json"));
  assert.deepEqual([strict.accuracy, strict.reward_mean], [0, 1]);
  // without --json: a table of samples with every reward's score, then a summary line
  const human = cli("eval", model, "--dataset", data, "--reward", reward, "--samples", "2");
  assert.equal(human.status, 0, human.stderr);
  assert.match(human.stdout, /prompt +completion +answer +constant#one +ok/);
  assert.match(human.stdout, /accuracy 100\.0% \(reward "constant#one" ≥ 1\) on 3 problems/);
});

test("bad input to eval and pretrain --dataset exits 2 naming the problem, before any work", () => {
  const root = tmpRunRoot();
  const data = writeLines(join(root, "d.jsonl"), [{ prompt: "1+1=", answer: "2" }]);
  refused(cli("eval", model, "--dataset", join(root, "none.jsonl")), /cannot read dataset .*none\.jsonl/);
  refused(cli("eval", model, "--task", "arithmetic", "--dataset", data), /--task and --dataset are both given/);
  refused(cli("eval", model), /one of --task NAME, --dataset FILE\.jsonl or --env NAME/);
  refused(
    cli("eval", model, "--dataset", data, "--reward", `${constant}#one`, "--metric", "nope"),
    /--metric: no reward function named "nope"; the --reward functions are named: constant#one/,
  );
  refused(cli("eval", model, "--dataset", data, "--split", "test"), /--split "test": expected one of all, eval, train/);
  refused(cli("eval", model, "--task", "arithmetic", "--pass", "1"), /--metric and --pass choose among --reward/);
  refused(
    cli("eval", model, "--dataset", data, "--dataset-options", '{"evalFile":"x"}'),
    /dataset\.options\.evalFile: unknown key "evalFile"; allowed keys: .*evalPath/,
  );
  const out = join(root, "m");
  refused(
    cli("pretrain", "--dataset", data, "--out", out, "--dataset-options", '{"promtField":"q"}'),
    /dataset\.options\.promtField: unknown key "promtField"; allowed keys: promptField/,
  );
  refused(cli("pretrain", "--dataset", data, "--out", out, "--think"), /--think applies to --task/);
  refused(
    cli("pretrain", "--dataset", data, "--out", out, "--template", "jinja"),
    /--template "jinja": expected one of/,
  );
  refused(cli("pretrain", "--dataset", data, "--task", "arithmetic", "--out", out), /got --task and --dataset/);
  refused(
    cli("pretrain", "--dataset", writeLines(join(root, "n.jsonl"), [{ prompt: "x" }]), "--out", out),
    /n\.jsonl:1: missing field "answer"/,
  );
  const ten = writeLines(
    join(root, "ten.jsonl"),
    Array.from({ length: 10 }, (_, i) => ({ prompt: `1${i}+34=`, answer: String(44 + i) })),
  );
  const evalHalf = ["--dataset-options", '{"evalFraction":0.5}', "--max-positions", "28"];
  refused(
    cli("pretrain", "--dataset", ten, "--out", out, ...evalHalf, "--max-new-tokens", "25"),
    /held-out prompts of up to 7 tokens \+ 25 generated tokens exceed the model's 28 positions; set --max-new-tokens ≤ 21 or --max-positions ≥ 32/,
  );
  assert.ok(!existsSync(out), "nothing was written");
});

test("cohort pretrain --dataset: a fresh char model over the data's characters, a held-out metric, --from", () => {
  const root = tmpRunRoot();
  const rows = Array.from({ length: 40 }, (_, i) => {
    const d = String(100 + i * 7).split("");
    return { prompt: `sort ${d.join("")} é:`, answer: [...d].sort().join("") };
  });
  const data = writeLines(join(root, "data.jsonl"), rows);
  const held = writeLines(join(root, "held.jsonl"), [
    {
      messages: [
        { role: "user", content: "sort 321 é:" },
        { role: "assistant", content: "123" },
      ],
    },
  ]);
  const out = join(root, "sorter");
  const shape = ["--hidden", "32", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--mlp", "64"];
  const options = JSON.stringify({ answerFormat: "plain", evalPath: held });
  const r = cli(
    "pretrain",
    "--dataset",
    data,
    "--dataset-options",
    options,
    "--out",
    out,
    "--steps",
    "20",
    "--eval-every",
    "10",
    ...shape,
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /sft: 40 training lines, 1 held-out lines/);
  assert.match(
    r.stderr,
    /step 10\/20 +loss [\d.]+ +held-out loss [\d.]+ +held-out accuracy [\d.]+% +\d+ tok\/s +elapsed \d+s, ETA \d+s/,
  );
  assert.match(r.stdout, /saved .*sorter: 20 steps, held-out accuracy [\d.]+%/);
  for (const f of ["config.json", "model.safetensors", "tokenizer.json", "PRETRAIN.md"])
    assert.ok(existsSync(join(out, f)), f);
  const tokenizer = readFileSync(join(out, "tokenizer.json"), "utf8");
  assert.ok(tokenizer.includes('"é"'), "the data's own characters are in the vocabulary");
  assert.match(readFileSync(join(out, "PRETRAIN.md"), "utf8"), /cohort pretrain --dataset .*data\.jsonl/);
  // and from a given model (a shipped one, or the one just made)
  const again = cli(
    "pretrain",
    "--dataset",
    data,
    "--dataset-options",
    options,
    "--out",
    join(root, "more"),
    "--from",
    out,
    "--steps",
    "4",
    "--eval-every",
    "2",
  );
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`from ${out.replaceAll("/", "\\/")}`));
  refused(
    cli("pretrain", "--dataset", data, "--out", join(root, "x"), "--from", out, "--hidden", "8"),
    /--hidden shapes a fresh model; --from starts from the given one/,
  );
});

test("elapsed time, ETA and rates as progress lines print them", () => {
  assert.deepEqual(
    [formatDuration(42.4), formatDuration(185), formatDuration(3720), formatDuration(Number.NaN)],
    ["42s", "3m05s", "1h02m", "–"],
  );
  assert.deepEqual([formatRate(850.4), formatRate(12_345)], ["850 tok/s", "12.3k tok/s"]);
  const p = new Progress(10, 0);
  p.update(0, 5_000); // step 0 (the first evaluation): no pace yet
  assert.equal(p.text(), "elapsed 5s, ETA –");
  p.update(2, 25_000); // 2 steps in 25 s (start-up included)
  assert.equal(p.text(), "elapsed 25s, ETA 1m40s");
  const resumed = new Progress(10, 0, 6); // resumed at step 6
  resumed.update(8, 20_000);
  assert.equal(resumed.text(), "elapsed 20s, ETA 20s");
});

test("cohort train's progress lines show elapsed time, ETA and rollout and training throughput", () => {
  const file = arithmeticConfig(tmpRunRoot(), 3, 0);
  const r = cli("train", file);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.startsWith("step "));
  assert.equal(lines.length, 3, r.stderr);
  for (const l of lines)
    assert.match(l, /\| rollout \d+(\.\d+k)? tok\/s, train \d+(\.\d+k)? tok\/s \| elapsed \d+s, ETA (\d+s|\d+m\d\ds)$/);
  assert.match(lines[2] as string, /^step 3\/3 .*ETA 0s$/);
});

test("cohort compare shows each run's progress: its step, ETA and latest evaluation", async () => {
  const root = tmpRunRoot();
  const file = join(root, "cmp.yaml");
  writeFileSync(
    file,
    [
      "name: cmp",
      `model: {path: ${model}}`,
      "task: {name: arithmetic, options: {digits: [1, 1]}}",
      "algo: {regularizers: []}",
      "train: {steps: 4, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 2, problems: 4}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  const lines: string[] = [];
  const r = await runCompare({
    configFile: file,
    presets: ["grpo", "dr_grpo"],
    seeds: [0],
    out: join(root, "out"),
    workers: 2,
    progressMs: 50,
    log: (l) => lines.push(l),
  });
  assert.equal(r.manifest.runs.filter((x) => x.status === "finished").length, 2, lines.join("\n"));
  for (const name of ["grpo-s0", "dr_grpo-s0"]) {
    const mine = lines.filter((l) => l.startsWith(`compare: ${name} step `));
    assert.ok(mine.length >= 1, lines.join("\n"));
    for (const l of mine)
      assert.match(
        l,
        new RegExp(`^compare: ${name} step [1-4]/4(, eval [\\d.]+% \\(step \\d\\))?, elapsed \\d+s, ETA \\d+s$`),
      );
    assert.ok(
      lines.some((l) => new RegExp(`^compare: done  ${name} in [\\d.]+ s, eval [\\d.]+%$`).test(l)),
      lines.join("\n"),
    );
  }
});
