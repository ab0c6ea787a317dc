// Dataset rows the model cannot take (a character outside a char tokenizer's alphabet, a prompt that leaves no
// room for maxNewTokens) are found at start-up with file:line, before the run directory is created, or skipped
// with a count under dataset.onBadRow: skip. A UTF-8 byte order mark is not part of the first row.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { parseJsonl } from "../../src/task/jsonl.js";
import { loadTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

const model = tinyModelDir(4);

function setUp(): { root: string; file: string } {
  const root = tmpRunRoot();
  const rows = [
    { prompt: "1+1=", answer: "2" },
    { prompt: "2+2=", answer: "4" },
    { prompt: `${"9".repeat(70)}+1=`, answer: "x" }, // line 3: longer than the model's 64 positions
    { prompt: "3+3=", answer: "6" },
    { prompt: "caf\u00e9+1=", answer: "x" }, // line 5: é is not in the char tokenizer's alphabet
    { prompt: "4+4=", answer: "8" },
    { prompt: "5+4=", answer: "9" },
    { prompt: "6+1=", answer: "7" },
  ];
  writeFileSync(join(root, "data.jsonl"), `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
  const file = join(root, "cfg.yaml");
  writeFileSync(
    file,
    [
      "name: ds",
      `outputDir: ${root}`,
      `model: {path: ${model}}`,
      "dataset: {path: data.jsonl, options: {evalFraction: 0.3}}",
      "rewards: [correctness]",
      "train: {steps: 2, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 8}",
      "eval: {everySteps: 0, problems: 2}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  return { root, file };
}

test("bad dataset rows are refused at start-up with file:line and exit 2; nothing is written", () => {
  const { root, file } = setUp();
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", file, "--quiet"], {
    encoding: "utf8",
  });
  assert.equal(r.status, 2, r.stderr);
  const data = join(root, "data.jsonl");
  assert.match(r.stderr, /2 of 8 dataset rows cannot be sampled by this model/);
  assert.ok(r.stderr.includes(`${data}:3: the prompt is 74 tokens, which with sampling.maxNewTokens 8 needs 82`));
  assert.ok(r.stderr.includes(`${data}:5: character "é" (U+00E9) at index 3 is not in the CharTokenizer alphabet`));
  assert.match(r.stderr, /dataset\.onBadRow: skip/);
  assert.ok(!existsSync(join(root, "ds")), "the run directory was not created");
});

test("dataset.onBadRow: skip leaves the bad rows out, says how many, and trains", async () => {
  const { file } = setUp();
  const lines: string[] = [];
  const r = await train(loadTrainConfig(file, ["dataset.onBadRow=skip"]), { log: (l) => lines.push(l) });
  assert.equal(r.steps, 2);
  assert.ok(
    lines.some((l) => /skipped 2 of 8 rows \(dataset\.onBadRow: skip\); first: .*data\.jsonl:3:/.test(l)),
    lines.join("\n"),
  );
  assert.throws(() => loadTrainConfig(file, ["dataset.onBadRow=ignore"]), /dataset\.onBadRow[\s\S]*error[\s\S]*skip/);
});

test("a UTF-8 byte order mark before the first row is not part of it", () => {
  const ds = parseJsonl('\ufeff{"prompt": "1+1=", "answer": "2"}\n{"prompt": "2+3=", "answer": "5"}\n', "bom.jsonl");
  assert.equal(ds.problems.length, 2);
  assert.equal(ds.problems[0]?.prompt, "1+1=");
  assert.deepEqual(ds.lines, [1, 2]);
});
