// Your own data, in training: unknown keys name their full path and the keys allowed there; a separate eval
// file; conversational lines and system prompts through the model's own chat template; the built-in verifier
// reading bare answers (answerFormat: plain); and eval_accuracy, the logged samples and the rollout table
// counted by a declared reward rather than by "has <answer> tags", with a diagnostic when the verifier never
// matches.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { ConfigError } from "../../src/errors.js";
import { writeModelDir } from "../../src/io/hf.js";
import { configToHF, modelConfig } from "../../src/model/config.js";
import { CausalLM } from "../../src/model/llama.js";
import { writeReport } from "../../src/report/index.js";
import { jsonlTask, loadJsonl, parseJsonl } from "../../src/task/jsonl.js";
import { templatedDataset } from "../../src/task/template.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { evalMetricOf } from "../../src/train/setup.js";
import { train } from "../../src/train/trainer.js";
import { tinyModelDir, tmpRunRoot } from "./helpers.js";

const constant = fileURLToPath(new URL("../fixtures/rewards/constant.ts", import.meta.url));
const model = tinyModelDir(7);

function configError(f: () => unknown, path: string, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.path, path);
    assert.match(e.message, message);
    return true;
  });
}

function writeLines(file: string, rows: unknown[]): void {
  writeFileSync(file, `${rows.map((r) => JSON.stringify(r)).join("\n")}\n`);
}

test("an unknown key names its full path and lists the keys allowed there", () => {
  const base = { model: { path: "m" } };
  configError(
    () => parseTrainConfig({ ...base, dataset: { path: "d.jsonl", options: { evalFile: "e.jsonl" } } }),
    "dataset.options.evalFile",
    /unknown key "evalFile"; allowed keys: promptField, answerField, .*evalPath, messagesField, answerFormat/,
  );
  configError(
    () => parseTrainConfig({ ...base, dataset: { path: "d.jsonl", evalPath: "e.jsonl" } }),
    "dataset.evalPath",
    /unknown key "evalPath"; allowed keys: path, options, onBadRow, template, system/,
  );
  configError(
    () => parseTrainConfig({ ...base, task: { name: "arithmetic" }, eval: { metrc: {} } }),
    "eval.metrc",
    /allowed keys: everySteps, problems, temperature, logSamples, metric/,
  );
  configError(
    () => parseTrainConfig({ ...base, task: { name: "arithmetic", options: { digitz: 2 } } }),
    "task.options.digitz",
    /unknown key "digitz"; allowed keys: .*digits/,
  );
  configError(
    () => parseTrainConfig({ ...base, task: { name: "arithmetic" }, algo: { rollout: { sucess: {} } } }),
    "algo.rollout.sucess",
    /allowed keys: promptSampler, budget, dynamicSampling, wrapper, success/,
  );
  configError(
    () =>
      parseTrainConfig({
        ...base,
        dataset: { path: "d.jsonl" },
        rewards: ["./r.ts#score"],
        eval: { metric: { reward: "score" } },
      }),
    "eval.metric.reward",
    /no reward function named "score"; the configured rewards are named: r#score/,
  );
  configError(
    () =>
      parseTrainConfig({
        ...base,
        task: { name: "arithmetic" },
        preset: "dno",
        preference: "verifier",
        eval: { metric: { pass: 1 } },
      }),
    "eval.metric",
    /with `preference`, the reward is a win rate against the group/,
  );
});

test("a separate eval file: every training line trains, the held-out lines are that file's", async () => {
  const root = tmpRunRoot();
  writeLines(join(root, "train.jsonl"), [
    { prompt: "a", answer: "1" },
    { prompt: "b", answer: "2" },
    { prompt: "c", answer: "3" },
  ]);
  writeLines(join(root, "held.jsonl"), [
    { prompt: "x", answer: "9" },
    { prompt: "y", answer: "8" },
  ]);
  const ds = await loadJsonl(join(root, "train.jsonl"), { evalPath: "held.jsonl" }, root);
  assert.deepEqual(
    ds.train.map((p) => p.prompt),
    ["a", "b", "c"],
  );
  assert.deepEqual(
    ds.eval.map((p) => [p.id, p.prompt]),
    [
      ["held.jsonl:1", "x"],
      ["held.jsonl:2", "y"],
    ],
  );
  await assert.rejects(
    loadJsonl(join(root, "train.jsonl"), { evalPath: "held.jsonl", evalFraction: 0.2 }, root),
    /dataset\.options\.evalFraction: with evalPath the held-out lines come from that file/,
  );
  await assert.rejects(
    loadJsonl(join(root, "train.jsonl"), { evalPath: "missing.jsonl" }, root),
    /cannot read eval file \(dataset\.options\.evalPath\) .*missing\.jsonl/,
  );
  // in a run, the held-out evaluation reads the eval file's lines (in file order)
  writeFileSync(
    join(root, "cfg.yaml"),
    [
      "name: r",
      `outputDir: ${root}`,
      `model: {path: ${model}}`,
      "dataset: {path: train.jsonl, options: {evalPath: held.jsonl}}",
      "rewards: [correctness]",
      "train: {steps: 1, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 1, problems: 10, logSamples: 10}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  await train(loadTrainConfig(join(root, "cfg.yaml")), { log: () => {} });
  const rows = readFileSync(join(root, "r", "samples.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; kind: string; prompt: string });
  assert.deepEqual(
    rows.filter((r) => r.kind === "eval" && r.step === 0).map((r) => r.prompt),
    ["x", "y"],
  );
  assert.ok(rows.filter((r) => r.kind === "rollout").every((r) => ["a", "b", "c"].includes(r.prompt)));
});

test("conversational lines and a system prompt go through the model's own chat template", async () => {
  const tok = new CharTokenizer({
    chatTemplate:
      "{%- for m in messages -%}{{ '[' + m.role + '] ' + m.content + '\\n' }}{%- endfor -%}" +
      "{%- if add_generation_prompt -%}{{ '[assistant] ' }}{%- endif -%}",
  });
  const text = [
    JSON.stringify({
      messages: [
        { role: "user", content: "sort 31" },
        { role: "assistant", content: "13" },
      ],
    }),
    JSON.stringify({
      messages: [
        { role: "system", content: "be brief" },
        { role: "user", content: "sort 21" },
      ],
      answer: "12",
    }),
    JSON.stringify({ prompt: "sort 54", answer: "45" }),
  ].join("\n");
  const ds = parseJsonl(text, "chat.jsonl", { evalFraction: 0 });
  assert.deepEqual(
    ds.problems.map((p) => p.answer),
    ["13", "12", "45"],
  );
  const auto = templatedDataset(ds, tok, { template: "auto", system: "You sort digits." });
  assert.deepEqual(
    auto.problems.map((p) => p.prompt),
    [
      "[system] You sort digits.\n[user] sort 31\n[assistant] ",
      "[system] be brief\n[user] sort 21\n[assistant] ",
      "You sort digits.\nsort 54",
    ],
  );
  const chat = templatedDataset(ds, tok, { template: "chat" });
  assert.equal(chat.problems[2]?.prompt, "[user] sort 54\n[assistant] ");
  assert.throws(() => templatedDataset(ds, tok, { template: "text" }), /chat\.jsonl:1: a conversational line/);
  // the line as written stays the reward's `fields`; the split and ids do not move
  assert.deepEqual(auto.problems[0]?.meta, ds.problems[0]?.meta);
  assert.equal(auto.problems[0]?.id, "chat.jsonl:1");
  assert.throws(
    () => parseJsonl(JSON.stringify({ messages: [{ role: "assistant", content: "x" }] }), "bad.jsonl"),
    /bad\.jsonl:1: messages has no user message before the answer/,
  );

  // in a run: the rollouts are prompted with the model directory's template
  const root = tmpRunRoot();
  const dir = join(root, "model");
  const cfg = modelConfig({
    vocabSize: tok.vocabSize,
    hiddenSize: 32,
    intermediateSize: 64,
    numHiddenLayers: 1,
    numAttentionHeads: 2,
    numKeyValueHeads: 1,
    maxPositionEmbeddings: 96,
    tieWordEmbeddings: true,
    bosTokenId: tok.bosId,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  });
  const m = new CausalLM(cfg, { seed: 1, initStd: 0.1 });
  writeModelDir(dir, { config: configToHF(cfg), tensors: m.state().tensors, tokenizerFiles: tok.toFiles() });
  m.dispose();
  writeFileSync(join(root, "chat.jsonl"), `${text}\n`);
  writeFileSync(
    join(root, "cfg.yaml"),
    [
      "name: r",
      `outputDir: ${root}`,
      "model: {path: model}",
      "dataset: {path: chat.jsonl, options: {evalFraction: 0}, template: chat, system: You sort digits.}",
      `rewards: ["${constant}#one"]`,
      "train: {steps: 1, promptsPerStep: 3, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 1, problems: 3, logSamples: 6}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  await assert.rejects(
    train(loadTrainConfig(join(root, "cfg.yaml")), { log: () => {} }),
    /no held-out lines to evaluate on .*evalPath/,
  );
  const cfg2 = loadTrainConfig(join(root, "cfg.yaml"), ["eval.everySteps=0"]);
  const seen: string[] = [];
  await train(cfg2, {
    log: () => {},
    source: (run) => {
      const inner = run.source;
      return {
        ...inner,
        begin: (n) => inner.begin?.(n),
        async collect(step) {
          const col = await inner.collect(step);
          seen.push(...col.ro.problems.map((p) => p.prompt));
          return col;
        },
      };
    },
  });
  assert.ok(seen.length > 0);
  for (const p of seen)
    assert.match(p, /^\[system\] (You sort digits\.|be brief)\n\[user\] sort \d\d\n\[assistant\] $/);
});

test("answerFormat plain: the verifier reads the whole completion", () => {
  const ds = parseJsonl('{"prompt": "p", "answer": "04789"}\n', "p.jsonl", { answerFormat: "plain" });
  const task = jsonlTask(ds);
  const p = ds.problems[0] as (typeof ds.problems)[number];
  assert.deepEqual(task.verify(p, " 04789"), { correct: true, format: true, parsed: "04789" });
  assert.equal(task.verify(p, "<answer>04789</answer>").correct, false);
  assert.equal(
    jsonlTask(parseJsonl('{"prompt": "p", "answer": "04789"}\n', "t.jsonl")).verify(p, " 04789").correct,
    false,
  );
});

test("eval_accuracy, the samples and the rollout table count by a declared reward; the verifier's silence is diagnosed", async () => {
  const root = tmpRunRoot();
  writeLines(
    join(root, "train.jsonl"),
    ["1", "2", "3", "4"].map((d) => ({ prompt: `${d}+0=`, answer: d })),
  );
  writeLines(join(root, "held.jsonl"), [
    { prompt: "5+0=", answer: "5" },
    { prompt: "6+0=", answer: "6" },
  ]);
  writeFileSync(
    join(root, "cfg.yaml"),
    [
      "name: r",
      `outputDir: ${root}`,
      `model: {path: ${model}}`,
      "dataset: {path: train.jsonl, options: {evalPath: held.jsonl}}",
      `rewards: [{fn: "${constant}#one", name: mine}]`,
      "train: {steps: 2, promptsPerStep: 2, groupSize: 2}",
      "sampling: {maxNewTokens: 4}",
      "eval: {everySteps: 2, problems: 2, logSamples: 2, metric: {reward: mine, pass: 1}}",
      "checkpoint: {everySteps: 0}",
      "",
    ].join("\n"),
  );
  const lines: string[] = [];
  const r = await train(loadTrainConfig(join(root, "cfg.yaml")), { log: (l) => lines.push(l) });
  // the random model writes no <answer> tags: the built-in verifier would read 0 throughout
  const evals = r.metrics.filter((m) => typeof m.eval_accuracy === "number");
  assert.deepEqual(
    evals.map((m) => [m.step, m.eval_accuracy, m.eval_format, m["eval_reward/mine"]]),
    [
      [0, 1, 0, 1],
      [2, 1, 0, 1],
    ],
  );
  assert.ok(lines.some((l) => /eval_accuracy: the share of held-out completions with reward "mine" ≥ 1/.test(l)));
  const diag = lines.filter((l) => /never contain <answer>…<\/answer>/.test(l));
  assert.equal(diag.length, 1, lines.join("\n"));
  assert.match(diag[0] as string, /^diagnostic at step 0: .*reward "mine" averages 1\.000.*answerFormat: plain/);
  const rows = readFileSync(join(root, "r", "samples.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const held = rows.filter((x) => x.kind === "eval");
  assert.equal(held.length, 4);
  for (const x of held) {
    assert.equal(x.correct, true);
    assert.deepEqual(x.rewards, { mine: 1 });
  }
  const rollouts = rows.filter((x) => x.kind === "rollout");
  assert.equal(rollouts.length, 2, "one whole group of G = 2 rows (logSamples 2)");
  for (const x of rollouts) {
    assert.equal(x.step, 2);
    assert.equal(x.group, 0);
    assert.deepEqual(x.rewards, { mine: 1 });
    assert.equal(x.reward, 1);
    assert.equal(x.advantage, 0);
    assert.equal(typeof x.completion, "string");
  }
  // the report shows both tables with every reward's score, ✓ by the declared reward
  const html = readFileSync(writeReport(join(root, "r")).out, "utf8");
  assert.match(html, /rollouts of step 2/);
  assert.match(html, /Held-out accuracy \(reward (&quot;|\\?")mine(&quot;|\\?") ≥ 1\)/);
  assert.match(html, /<th>mine<\/th><th>reward<\/th><th>advantage<\/th>/);
  assert.match(html, /<td class="num">1\.000<\/td><td class="ok">✓<\/td>/);
});

test("the default metric: the verifier for tasks and the correctness reward, else the success reward", () => {
  const base = { model: { path: "m" } };
  const plan = (successIndex: number, reward?: string) => ({ successIndex, cfg: { success: { reward } } });
  const names = (...n: string[]) => n.map((name) => ({ name }));
  const ds = parseTrainConfig({ ...base, dataset: { path: "d.jsonl" } });
  assert.deepEqual(evalMetricOf(ds, names("correctness", "format"), plan(0)), { kind: "verifier" });
  assert.deepEqual(evalMetricOf(ds, names("r#score"), plan(0)), { kind: "reward", name: "r#score", pass: 1 });
  assert.deepEqual(evalMetricOf(ds, names("correctness", "r#score"), plan(0, "r#score")), {
    kind: "reward",
    name: "r#score",
    pass: 1,
  });
  const task = parseTrainConfig({ ...base, task: { name: "arithmetic" } });
  assert.deepEqual(evalMetricOf(task, names("r#score"), plan(0)), { kind: "verifier" });
  const pass = parseTrainConfig({ ...base, task: { name: "arithmetic" }, eval: { metric: { pass: 0.5 } } });
  assert.deepEqual(evalMetricOf(pass, names("r#score"), plan(0)), { kind: "reward", name: "r#score", pass: 0.5 });
});
