// The trainer with `sampler: {kind: openai}` against a real `cohort serve` child process: rollouts come over
// HTTP with token ids and log-probs, weights are pushed to the server after every step, and the train/sampler
// mismatch and the importance-sampling correction are logged.
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { readModelDir } from "../../src/io/hf.js";
import { writeSafetensors } from "../../src/io/safetensors.js";
import { dispose, tidy } from "../../src/tensor/index.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tmpRunRoot } from "../train/helpers.js";
import { http, startServe } from "./helpers.js";

const MODEL = resolve("models/arithmetic-tiny");

function config(root: string, sampler: Record<string, unknown>, steps: number) {
  return parseTrainConfig({
    name: "remote",
    outputDir: root,
    seed: 1,
    threads: 1,
    model: { path: MODEL },
    task: { name: "arithmetic", options: { ops: { add: 1, sub: 1 }, digits: [1, 2] } },
    train: { steps, promptsPerStep: 3, groupSize: 4, lr: 3e-4 },
    sampling: { maxNewTokens: 24 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    sampler,
  });
}

test("a short run samples from cohort serve: mismatch < 1e-4 with weight sync, IS metrics logged", async () => {
  const root = tmpRunRoot();
  const srv = await startServe(MODEL, ["--weights-dir", root]);
  try {
    const base = { kind: "openai", baseUrl: `${srv.url}/v1`, model: "arithmetic-tiny" };
    const synced = await train(
      config(root, { ...base, syncWeights: true, importanceSampling: { mode: "token_truncate", cap: 2 } }, 3),
      { log: () => {} },
    );
    assert.equal(synced.steps, 3);
    for (const m of synced.metrics) {
      const d = m["sampler/logprob_abs_diff_mean"] as number;
      assert.ok(d < 1e-4, `step ${m.step}: the server sampled the trained weights, yet |Δ| = ${d}`);
      for (const k of ["min", "mean", "max"]) assert.equal(typeof m[`sampler/is_ratio/${k}`], "number");
      assert.ok(Math.abs((m["sampler/is_ratio/mean"] as number) - 1) < 1e-3);
      assert.equal(m["sampler/is_masked_fraction"], 0);
      assert.ok((m["completions/mean_length"] as number) > 0);
    }
    assert.ok(existsSync(join(synced.runDir, "sync", "model.safetensors")));
    assert.equal((await http(`${srv.url}/health`, "GET")).json().weightsVersion, 3);

    // without the sync the server keeps whatever weights it holds (here: perturbed ones): the mismatch
    // shows, and the mask mode zeroes the tokens whose ratio passes a tight cap
    const snapshot = join(root, "perturbed.safetensors");
    const dir = readModelDir(MODEL);
    const perturbed = tidy(() => ({ ...dir.tensors, "model.norm.weight": dir.tensors["model.norm.weight"]!.mul(0.8) }));
    writeSafetensors(snapshot, perturbed, { format: "pt" });
    dispose([dir.tensors, perturbed]);
    assert.equal((await http(`${srv.url}/v1/reload`, "POST", { path: snapshot })).status, 200);
    const stale = await train(
      config(tmpRunRoot(), { ...base, importanceSampling: { mode: "token_mask", cap: 1.0001 } }, 2),
      { log: () => {} },
    );
    const d1 = stale.metrics[0]?.["sampler/logprob_abs_diff_mean"] as number;
    assert.ok(d1 > 1e-3, `the server holds perturbed weights, yet |Δ| = ${d1}`);
    assert.ok((stale.metrics[0]?.["sampler/is_masked_fraction"] as number) > 0);
    assert.ok((stale.metrics[0]?.["sampler/is_ratio/max"] as number) <= 1.0001);
  } finally {
    assert.equal(await srv.stop(), 0, srv.stderr());
  }
});

test("config: the correction needs a surrogate loss; environments may use workers", () => {
  const root = tmpRunRoot();
  const remote = { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", model: "m", importanceSampling: {} };
  const cfg = config(root, remote, 1);
  assert.equal(cfg.sampler.kind, "openai");
  if (cfg.sampler.kind === "openai")
    assert.deepEqual(cfg.sampler.importanceSampling, { mode: "sequence_mask", cap: 3 });
  assert.throws(
    () =>
      parseTrainConfig({
        model: { path: MODEL },
        task: { name: "arithmetic" },
        algo: { loss: { type: "reinforce" }, gate: { type: "none" } },
        sampler: remote,
      }),
    (e: unknown) => e instanceof ConfigError && /sampler.importanceSampling: .*surrogate/.test(e.message),
  );
  // environments roll out on workers too (test/env/remote.test.ts)
  const agent = parseTrainConfig({
    model: { path: MODEL },
    env: { name: "maze", options: { wallDensity: 0.1 } },
    preset: "gigpo",
    sampler: { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", model: "m" },
  });
  assert.equal(agent.sampler.kind, "openai");
  assert.throws(
    () => parseTrainConfig({ model: { path: MODEL }, task: { name: "arithmetic" }, sampler: { kind: "vllm" } }),
    (e: unknown) => e instanceof ConfigError && e.path.startsWith("sampler"),
  );
});
