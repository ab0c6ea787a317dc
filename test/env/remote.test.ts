// Agent episodes played on rollout workers: with `sampler: {kind: openai}` each turn of every running episode
// goes to a real `cohort serve` as one request batch; with weight sync the server samples the trained
// policy, so the sampler's log-probs of the action tokens equal the trainer's, while observation tokens
// (log-prob 0) stay out of the loss and of the mismatch metric. (Tokens differ from a local run: the server
// seeds the n completions of a shared prompt from one request seed.)
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { http, startServe } from "../serve/helpers.js";
import { tmpRunRoot } from "../train/helpers.js";

const MODEL = resolve("models/maze-tiny");
const quiet = () => {};

function config(sampler?: Record<string, unknown>, outputDir = tmpRunRoot()) {
  return parseTrainConfig({
    preset: "gigpo",
    seed: 3,
    threads: 1,
    model: { path: MODEL },
    outputDir,
    env: { name: "maze" },
    train: { steps: 3, promptsPerStep: 2, groupSize: 4, lr: 3e-4 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    ...(sampler ? { sampler } : {}),
  });
}

test("maze episodes on cohort serve: multi-turn prompts go to the worker, log-probs match the trainer's", async () => {
  const root = tmpRunRoot();
  const srv = await startServe(MODEL, ["--weights-dir", root]);
  try {
    const remote = await train(
      config({ kind: "openai", baseUrl: `${srv.url}/v1`, model: "maze-tiny", syncWeights: true }, root),
      { log: quiet },
    );
    assert.equal(remote.steps, 3);
    assert.equal((await http(`${srv.url}/health`, "GET")).json().weightsVersion, 3, "weights pushed every step");
    assert.ok(
      remote.metrics.some((m) => (m.grad_norm as number) > 0),
      "the run has a gradient",
    );
    for (const m of remote.metrics) {
      assert.ok((m["env/turns_mean"] as number) > 1, `step ${m.step}: episodes of several turns`);
      const sr = m["env/success_rate"] as number;
      assert.ok(sr >= 0 && sr <= 1);
      assert.ok(Number.isFinite(m.loss as number));
      // every action token's sampler log-prob = the trainer's (observation tokens are masked out)
      const d = m["sampler/logprob_abs_diff_mean"] as number;
      assert.ok(d < 1e-4, `step ${m.step}: |Δ log-prob| ${d}`);
    }
  } finally {
    await srv.stop();
  }
});
