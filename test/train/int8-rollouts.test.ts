// sampling.precision int8: local rollouts decode through int8 weights while training stays fp32; the
// mismatch metric is logged and sampler.importanceSampling corrects local rollouts too.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { tmpRunRoot } from "./helpers.js";

const MODEL = resolve("models/arithmetic-tiny");
const base = (sampling: Record<string, unknown>, sampler: Record<string, unknown>) => ({
  name: "int8",
  outputDir: tmpRunRoot(),
  seed: 1,
  threads: 1,
  model: { path: MODEL },
  task: { name: "arithmetic", options: { ops: { add: 1 }, digits: [1, 2] } },
  train: { steps: 2, promptsPerStep: 3, groupSize: 4, lr: 3e-4 },
  sampling: { maxNewTokens: 12, ...sampling },
  eval: { everySteps: 0 },
  checkpoint: { everySteps: 0 },
  sampler,
});

test("int8 local rollouts: mismatch logged (> 0), importance weights applied and logged", async () => {
  const cfg = parseTrainConfig(
    base({ precision: "int8" }, { kind: "local", importanceSampling: { mode: "token_truncate", cap: 2 } }),
  );
  const r = await train(cfg);
  for (const m of r.metrics) {
    const diff = m["sampler/logprob_abs_diff_mean"] as number;
    assert.ok(diff > 0 && diff < 0.5, `int8 rollouts differ from fp32 training log-probs by ${diff}`);
    for (const k of ["min", "mean", "max"]) assert.equal(typeof m[`sampler/is_ratio/${k}`], "number");
    assert.ok((m["sampler/is_ratio/max"] as number) <= 2);
  }
  // fp32 local rollouts: no mismatch beyond float noise
  const fp = await train(parseTrainConfig(base({}, { kind: "local" })));
  assert.ok((fp.metrics[0]?.["sampler/logprob_abs_diff_mean"] as number) < 1e-4);
});

test("config: int8 needs local rollouts on an fp32 CPU model", () => {
  const remote = { kind: "openai", baseUrl: "http://127.0.0.1:1/v1", model: "m" };
  assert.throws(
    () => parseTrainConfig(base({ precision: "int8" }, remote)),
    (e: unknown) => e instanceof ConfigError && /sampling.precision: .*local rollouts/.test(e.message),
  );
  assert.throws(
    () =>
      parseTrainConfig({
        ...base({ precision: "int8" }, { kind: "local" }),
        model: { path: MODEL, precision: "bf16" },
      }),
    (e: unknown) => e instanceof ConfigError && /CPU from fp32 weights/.test(e.message),
  );
  assert.throws(() => parseTrainConfig(base({ precision: "int4" }, { kind: "local" })), /sampling.precision/);
});
