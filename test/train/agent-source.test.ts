// `agent:` runs: the user's agent (the example `openai` agent, wrapped so that some episodes crash, hang or return
// no number) trained through the recording endpoint over the policy; the recorded log-probs are the ones training
// recomputes, merged turns are one row, failed episodes are scored by the fallback and never stop the run.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tmpRunRoot } from "./helpers.js";

const MODEL = resolve("models/calc-tools-tiny");

function config(root: string, over: Record<string, unknown> = {}) {
  const tasks = join(root, "tasks.jsonl");
  const lines = [
    [37, 48],
    [12, 91],
    [55, 23],
    [64, 17],
    [29, 83],
    [71, 46],
    [18, 39],
    [93, 58],
  ].map(([a, b]) => JSON.stringify({ prompt: `${a}*${b}=?`, answer: String(a! * b!) }));
  writeFileSync(tasks, `${lines.join("\n")}\n`);
  return parseTrainConfig({
    name: "agent",
    outputDir: root,
    seed: 3,
    threads: 1,
    model: { path: MODEL },
    dataset: { path: tasks, options: { answerFormat: "plain", evalPath: tasks } },
    agent: { run: resolve("test/train/agent-fixture.ts#run"), timeoutMs: 4000, concurrency: 16 },
    algo: { regularizers: [] },
    train: { steps: 2, promptsPerStep: 4, groupSize: 4, lr: 1e-4 },
    sampling: { maxNewTokens: 96 },
    sampler: { kind: "local", importanceSampling: { mode: "token_truncate", cap: 2 } },
    eval: { everySteps: 2, problems: 4 },
    checkpoint: { everySteps: 0 },
    ...over,
  });
}

test("an agent run trains on recorded turns: log-probs match training's, failures use the fallback", async () => {
  const root = tmpRunRoot();
  const r = await train(config(root), { log: () => {} });
  assert.equal(r.steps, 2);
  const steps = r.metrics.filter((m) => (m.step as number) >= 1);
  assert.equal(steps.length, 2);
  for (const m of steps) {
    // the recorded log-probs of every trained token (merged rows included) are the training policy's
    const d = m["sampler/logprob_abs_diff_mean"] as number;
    assert.ok(d < 1e-4, `step ${m.step}: |Δ| = ${d}`);
    assert.ok(Math.abs((m["sampler/is_ratio/mean"] as number) - 1) < 1e-3);
    // of every four episodes: one crashes (after playing), one times out, one returns NaN
    assert.equal(m["agent/failure_rate"], 0.75);
    assert.equal(m["agent/timeout_rate"], 0.25);
    assert.equal(m["agent/policy_version"], (m.step as number) - 1);
    assert.equal(m["agent/staleness_mean"], 0);
    assert.ok((m["agent/rows_per_episode"] as number) > 0);
    assert.ok(Number.isFinite(m.loss as number));
  }
  // the run's tool-calling episodes are multi-turn, and their turns were merged into one row each
  const merged = steps.map((m) => m["agent/merged_turns_mean"] as number);
  const calls = steps.map((m) => m["agent/tool_call_rate"] as number);
  if (calls.some((c) => c > 0))
    assert.ok(
      merged.some((x) => x > 1),
      `merged ${merged}, calls ${calls}`,
    );
  const failures = readFileSync(join(r.runDir, "agent_failures.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  assert.equal(failures.length, 2 * 12);
  const kinds = new Set(failures.map((f) => String(f.failure).split(/[ :]/)[0]));
  assert.deepEqual([...kinds].sort(), ["run()", "threw", "timed"]);
  assert.ok(failures.some((f) => f.failure === "threw: the agent crashed" && f.turns > 0));
  // held-out evaluation plays the agent too
  const ev = r.metrics.at(-1)!;
  assert.equal(typeof ev.eval_accuracy, "number");
});

test("config: agent runs take their reward from the agent and their tasks from a task or dataset", () => {
  const root = tmpRunRoot();
  assert.throws(
    () => config(root, { rewards: ["correctness"] }),
    (e: unknown) => e instanceof ConfigError && /remove `rewards`/.test(e.message),
  );
  assert.throws(
    () => config(root, { sampler: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", model: "m" } }),
    (e: unknown) => e instanceof ConfigError && /recording endpoint runs in the trainer/.test(e.message),
  );
  assert.throws(
    () => config(root, { agent: { run: "./a.ts#run", timeoutMs: 0 } }),
    (e: unknown) => e instanceof ConfigError && /agent\.timeoutMs/.test(e.message),
  );
});

test("a missing agent module is refused before the run starts, naming agent.run", async () => {
  const root = tmpRunRoot();
  await assert.rejects(
    train(config(root, { agent: { run: resolve("test/train/no-such-agent.ts#run") } }), { log: () => {} }),
    (e: unknown) => e instanceof ConfigError && /^agent\.run: agent ".*no-such-agent\.ts#run": no file/.test(e.message),
  );
});
