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

test("int8 local rollouts: weight, ESS and length-bucket metrics logged, equal for 1, 2 and 4 micro-batches", async () => {
  const KEYS = [
    "sampler/is_raw_ratio/min",
    "sampler/is_raw_ratio/mean",
    "sampler/is_raw_ratio/max",
    "sampler/is_capped_fraction",
    "sampler/is_ess",
    "sampler/is_raw_ess",
    "sampler/is_masked_fraction",
  ];
  const BUCKETS = ["len_0_64", "len_64_256", "len_256_plus"].map((b) => `sampler/logprob_abs_diff/${b}`);
  const runs = [];
  // 2 prompts × 4 completions = 8 rows: micro-batches of 8, 4 and 2 rows
  for (const microBatchSize of [8, 4, 2]) {
    const c = base({ precision: "int8" }, { kind: "local", importanceSampling: { mode: "sequence_mask", cap: 1.05 } });
    const cfg = parseTrainConfig({ ...c, train: { ...c.train, steps: 1, promptsPerStep: 2, microBatchSize } });
    runs.push((await train(cfg)).metrics[0] as Record<string, unknown>);
  }
  const [one, ...rest] = runs as [Record<string, unknown>, ...Record<string, unknown>[]];
  for (const k of KEYS) assert.equal(typeof one[k], "number", k);
  const ess = one["sampler/is_ess"] as number;
  assert.ok(ess >= 0 && ess <= 1, `ESS ${ess} in [0, 1]`);
  assert.ok((one["sampler/is_raw_ess"] as number) > 0 && (one["sampler/is_raw_ess"] as number) <= 1);
  assert.ok((one["sampler/is_ratio/max"] as number) <= 1.05);
  assert.equal(one["sampler/is_masked_fraction"], one["sampler/is_capped_fraction"]);
  // completions of at most 12 tokens: the first bucket only
  assert.ok((one[BUCKETS[0] as string] as number) > 0);
  assert.equal(one[BUCKETS[1] as string], null);
  assert.equal(one[BUCKETS[2] as string], null);
  // step 1 samples the same rollouts whatever the split; the trainer's log-probs of a row may move by float32
  // rounding with the batch shape, so the values agree to 1e-4 (the unit test checks exact sums)
  for (const r of rest)
    for (const k of [...KEYS, "sampler/is_ratio/mean", BUCKETS[0] as string]) {
      const a = one[k] as number;
      const b = r[k] as number;
      assert.ok(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(a)), `${k}: ${a} vs ${b}`);
    }
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
