/**
 * Hyper++ through the real loop on procmaze: the step's metrics (trust-region violations, feature norms within
 * their bound, evaluation on held-out and on training levels), every new parameter in the checkpoint, a
 * SIGKILL mid-run and `--resume` giving the uninterrupted run's metrics, the trust-region metric against a
 * hand-computed case, the categorical critic as a live knob of a Euclidean critic, and the config errors.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { TabularSoftmax } from "../../src/control/policy.js";
import { trustRegionMetrics } from "../../src/control/trust.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { noGrad, tensor } from "../../src/tensor/index.js";
import { latestCheckpoint } from "../../src/train/checkpoint.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";

const root = () => mkdtempSync(join(tmpdir(), "cohort-hyper-"));
const quiet = () => {};
const MAZE = { name: "procmaze", options: { size: 5, horizon: 12, levels: { train: 6, test: 4 } } };

const hyperRun = (out: string, extra: Record<string, unknown> = {}) => ({
  preset: "hyper_pp",
  outputDir: out,
  seed: 3,
  policy: { kind: "hyper_mlp", hidden: [16], hyper: { featureDim: 8 }, critic: { categorical: {} } },
  env: MAZE,
  train: { steps: 3, promptsPerStep: 2, groupSize: 3, innerIterations: 2, miniBatches: 2, lr: 3e-3 },
  eval: { everySteps: 3, problems: 6, temperature: 1 },
  checkpoint: { everySteps: 1 },
  ...extra,
});

test("hyper_pp on procmaze: trust-region and feature-norm metrics, held-out evaluation, every parameter checkpointed", async () => {
  const r = await train(parseTrainConfig(hyperRun(root())), { log: quiet });
  assert.equal(r.steps, 3);
  for (const m of r.metrics.slice(1)) {
    for (const k of [
      "trust/violation_rate",
      "trust/approx_kl",
      "trust/max_ratio_dev",
      "value_loss",
      "entropy_reg/coef",
    ])
      assert.ok(Number.isFinite(m[k] as number), `${k} = ${m[k]}`);
    const v = m["trust/violation_rate"] as number;
    assert.ok(v >= 0 && v <= 1);
    assert.ok((m["trust/approx_kl"] as number) >= 0);
    assert.ok((m["hyper/feature_norm_max"] as number) < (m["hyper/feature_norm_bound"] as number));
    assert.ok((m["hyper/feature_norm"] as number) > 0);
  }
  const last = r.metrics.at(-1) as Record<string, unknown>;
  assert.ok(Number.isFinite(last.eval_return as number) && Number.isFinite(last.eval_train_return as number));
  // success on procmaze is reaching the goal (10 points, nothing else pays): accuracy = return / 10
  assert.ok(Math.abs((last.eval_accuracy as number) * 10 - (last.eval_return as number)) < 1e-9);
  // the update moved the policy: some ratio left 1
  assert.ok(r.metrics.slice(1).some((m) => (m["trust/max_ratio_dev"] as number) > 1e-4));
  const ck = latestCheckpoint(r.runDir);
  assert.ok(ck);
  const names = Object.keys(readSafetensors(join(ck, "weights.safetensors")).tensors).sort();
  assert.deepEqual(names, [
    "critic.head.r",
    "critic.head.z",
    "policy.enc.0.bias",
    "policy.enc.0.weight",
    "policy.enc.1.bias",
    "policy.enc.1.weight",
    "policy.pi.r",
    "policy.pi.z",
    "policy.scale.0.bias",
    "policy.scale.0.weight",
  ]);
  const bins = readSafetensors(join(ck, "weights.safetensors")).tensors["critic.head.z"];
  assert.deepEqual(bins?.shape, [51, 8]);
});

function writeConfig(dir: string, name: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    [
      `name: ${name}`,
      `outputDir: ${dir}`,
      "seed: 5",
      "preset: hyper_pp",
      "policy: {kind: hyper_mlp, hidden: [16], hyper: {featureDim: 8}, critic: {categorical: {bins: 21, min: -2, max: 12}}}",
      "env: {name: procmaze, options: {size: 5, horizon: 12, levels: {train: 6, test: 4}}}",
      "train: {steps: 6, promptsPerStep: 2, groupSize: 3, innerIterations: 2, miniBatches: 2, lr: 0.003}",
      "eval: {everySteps: 2, problems: 6, temperature: 1}",
      "checkpoint: {everySteps: 2}",
      "",
    ].join("\n"),
  );
  return file;
}

const deterministic = (m: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("time/") && !k.startsWith("mem/")));

test("hyper_pp: SIGKILL mid-run, then resume: the metric trajectory equals the uninterrupted run", async () => {
  const dir = root();
  const ref = await train(loadTrainConfig(writeConfig(dir, "straight")), { log: quiet });
  assert.equal(ref.steps, 6);
  const cfgFile = writeConfig(dir, "killed");
  const metricsPath = join(dir, "killed", "metrics.jsonl");
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", cfgFile, "--quiet"], {
    stdio: "ignore",
  });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_code, sig) => res(sig)));
  // kill once step 3 is logged (the checkpoint of step 2 exists)
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (existsSync(metricsPath) && new MetricsLog(metricsPath).read().some((m) => m.step === 3)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  assert.ok(new MetricsLog(metricsPath).read().length < ref.metrics.length, "killed before the end");
  const resumed = await train(loadTrainConfig(cfgFile), { resume: true, log: quiet });
  assert.equal(resumed.steps, 6);
  assert.deepEqual(new MetricsLog(metricsPath).read().map(deterministic), ref.metrics.map(deterministic));
});

test("trust-region metrics on a hand-computed case", () => {
  // two states, two actions; π(·|s0) = softmax(0, ln 3) = (1/4, 3/4), π(·|s1) = (1/2, 1/2)
  const p = new TabularSoftmax(2, 2, { dtype: "f64" });
  noGrad(() => p.theta.copy_(tensor(Float64Array.of(0, Math.log(3), 0, 0), { shape: [2, 2], dtype: "f64" })));
  // episode rows × T = 3: (s0, a1), (s1, a0), (s0, a0) | (s1, a1), padded, padded
  const obs = tensor(Float64Array.of(0, 1, 0, 1, 0, 0), { shape: [6], dtype: "f64" });
  const raw = tensor(Float64Array.of(1, 0, 0, 1, 0, 0), { shape: [6], dtype: "i64" });
  // π_old of those actions: 0.5, 0.5, 0.2, 0.45 → ratios 1.5, 1, 1.25, 1.111…
  const old = tensor(Float64Array.of(0.5, 0.5, 0.2, 0.45, 0.9, 0.9).map(Math.log), { shape: [2, 3], dtype: "f64" });
  const mask = tensor(Float64Array.of(1, 1, 1, 1, 0, 0), { shape: [2, 3], dtype: "f64" });
  const ratios = [1.5, 1, 1.25, 0.5 / 0.45];
  const kl = ratios.reduce((a, r) => a + r - 1 - Math.log(r), 0) / 4;
  const m = trustRegionMetrics(p, obs, raw, old, mask, [0, 1], { type: "clip", low: 0.2, high: 0.2 });
  assert.equal(m["trust/violation_rate"], 0.5); // 1.5 and 1.25 leave [0.8, 1.2]
  assert.ok(Math.abs((m["trust/approx_kl"] as number) - kl) < 1e-12);
  assert.ok(Math.abs((m["trust/max_ratio_dev"] as number) - 0.5) < 1e-12);
  // clip-higher bounds: 1.25 is inside [0.8, 1.28]; a gate without bounds is measured at 0.2
  assert.equal(
    trustRegionMetrics(p, obs, raw, old, mask, [0, 1], { type: "clip", low: 0.2, high: 0.28 })["trust/violation_rate"],
    0.25,
  );
  assert.equal(trustRegionMetrics(p, obs, raw, old, mask, [0, 1], { type: "none" })["trust/violation_rate"], 0.5);
  // only the kept rows count
  assert.equal(
    trustRegionMetrics(p, obs, raw, old, mask, [1], { type: "clip", low: 0.2, high: 0.2 })["trust/violation_rate"],
    0,
  );
  assert.deepEqual(trustRegionMetrics(p, obs, raw, old, mask, [], { type: "clip" }), {});
});

test("a Euclidean critic with `categorical` trains on HL-Gauss bins (the knob changes the run)", async () => {
  const run = (categorical: boolean) =>
    train(
      parseTrainConfig({
        preset: "ppo",
        outputDir: root(),
        seed: 1,
        policy: {
          kind: "categorical_mlp",
          hidden: [8],
          critic: { hidden: [8], ...(categorical ? { categorical: {} } : {}) },
        },
        env: MAZE,
        train: { steps: 2, promptsPerStep: 2, groupSize: 2, innerIterations: 1, lr: 3e-3 },
        eval: { everySteps: 2, problems: 2 },
        checkpoint: { everySteps: 2 },
      }),
      { log: quiet },
    );
  const mse = await run(false);
  const cat = await run(true);
  const v = (r: typeof mse) => r.metrics.at(-1)?.value_loss as number;
  assert.notEqual(v(mse), v(cat));
  // a 51-bin cross-entropy starts near ln 51
  assert.ok(Math.abs((cat.metrics[1]?.value_loss as number) - Math.log(51)) < 1.5, `${cat.metrics[1]?.value_loss}`);
  const ck = latestCheckpoint(cat.runDir) as string;
  assert.deepEqual(readSafetensors(join(ck, "weights.safetensors")).tensors["critic.v.1.bias"]?.shape, [51]);
});

test("Hyper++ configs fail early with clear errors", () => {
  const base = { outputDir: root(), env: MAZE };
  const hyper = { kind: "hyper_mlp", critic: { categorical: {} } };
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "hyper_pp", policy: { kind: "categorical_mlp", critic: {} } }),
    /policy\.kind: preset hyper_pp trains Hyper\+\+'s hyperbolic policy/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "hyper_pp", policy: { kind: "hyper_mlp", critic: {} } }),
    /policy\.critic\.categorical: preset hyper_pp trains a categorical critic/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "ppo", policy: { kind: "categorical_mlp", critic: {}, hyper: {} } }),
    /policy\.hyper: applies to policy\.kind hyper_mlp/,
  );
  assert.throws(
    () =>
      parseTrainConfig({ ...base, preset: "hyper_pp", policy: { ...hyper, critic: { categorical: {}, hidden: [8] } } }),
    /policy\.critic\.hidden: a hyper_mlp critic is a head on the policy's encoder/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "hyper_pp", env: { name: "pendulum" }, policy: hyper }),
    /pendulum has continuous actions/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, preset: "hyper_pp", policy: { ...hyper, hyper: { manifold: "sphere" } } }),
    /policy\.hyper\.manifold/,
  );
  assert.throws(
    () =>
      parseTrainConfig({
        ...base,
        preset: "hyper_pp",
        policy: { kind: "hyper_mlp", critic: { categorical: { min: 3, max: 1 } } },
      }),
    /min < max/,
  );
  assert.doesNotThrow(() => parseTrainConfig({ ...base, preset: "hyper_pp", policy: hyper }));
});
