/**
 * The ozone forecaster (src/control/airq.ts, airq-sft.ts): the shipped data file and its extraction, class-wise
 * rewards on hand-computed confusion tables (and FAKER-Air's vectors), CRPS and the categorical log-prob against
 * PyTorch float64, the curriculum and exact resume through the real loop, and the errors of bad configs.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Pipeline } from "../../src/algo/pipeline.js";
import { fakerAirAdvantages } from "../../src/algo/reweight.js";
import {
  AirqEnv,
  airqFeatures,
  airqOptions,
  airqStats,
  alertScores,
  BIN_CENTRES,
  BIN_EDGES,
  classReward,
  confusion,
  crpsCategorical,
  curriculumHorizon,
  loadAirquality,
  NUM_BINS,
  OBS_DIM,
  ozoneBin,
  ozoneClass,
  policyProbs,
  stepWeights,
} from "../../src/control/airq.js";
import { airqPretrain, trainAirqSft } from "../../src/control/airq-sft.js";
import { CategoricalMLP } from "../../src/control/policy.js";
import { resolvePreset } from "../../src/presets/index.js";
import { Rng } from "../../src/task/rng.js";
import { manualSeed, noGrad, tensor, tidy } from "../../src/tensor/index.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";
import { assertClose, type PyTensor, py, runOracle } from "../helpers/oracle.js";

const root = () => mkdtempSync(join(tmpdir(), "cohort-airq-"));
const DATA = "data/airquality.json";

test("airq data: the shipped file's checksum, shape, NA counts and known rows", () => {
  const bytes = readFileSync(DATA);
  assert.equal(
    createHash("sha256").update(bytes).digest("hex"),
    "62906736c6aa94b7fb4c24b9c4b9126f99b14788502d608866c6d1f2a56336f5",
  );
  const d = loadAirquality();
  assert.equal(d.length, 153);
  assert.equal(d.filter((x) => x.ozone === null).length, 37);
  assert.equal(d.filter((x) => x.solar === null).length, 7);
  assert.deepEqual(d[0], { ozone: 41, solar: 190, wind: 7.4, temp: 67, month: 5, day: 1 });
  assert.deepEqual(d[152], { ozone: 20, solar: 223, wind: 11.5, temp: 68, month: 9, day: 30 });
  // R's summary(airquality$Ozone): mean 42.13 over the 116 observed days
  const oz = d.flatMap((x) => (x.ozone === null ? [] : [x.ozone]));
  assert.ok(Math.abs(oz.reduce((a, b) => a + b, 0) / oz.length - 42.12931) < 1e-5);
  assert.match(readFileSync(DATA, "utf8"), /"source":"New York State Department of Conservation/);
});

// The extraction reads an unpacked r-base-core (`apt-get download r-base-core && dpkg -x r-base-core_*.deb DIR`);
// R_BASE_CORE_ROOT=DIR, or / where R is installed.
const rRoot = [process.env.R_BASE_CORE_ROOT, "/"].find(
  (r) => r !== undefined && existsSync(join(r, "usr/lib/R/library/datasets/data/Rdata.rdb")),
);
test(
  "airq data: scripts/data/airquality.py reproduces the shipped file byte for byte",
  { skip: rRoot === undefined ? "no unpacked r-base-core (set R_BASE_CORE_ROOT)" : false },
  () => {
    const out = join(root(), "airquality.json");
    const r = spawnSync("/usr/bin/python3", ["scripts/data/airquality.py", rRoot as string, out], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync(DATA)));
  },
);

const defaults = airqOptions.parse({});

test("airq: classes, bins and bin centres", () => {
  const th = defaults.thresholds;
  assert.deepEqual(
    [0, 54, 55, 70, 71, 85, 86, 168].map((x) => ozoneClass(x, th)),
    [0, 0, 1, 1, 2, 2, 3, 3],
  );
  assert.deepEqual(
    [55, 71, 86].map((x) => ozoneClass(x, th, "lower")),
    [0, 1, 2],
  );
  // every bin lies inside one class, and a value falls in the bin whose edges hold it
  for (let b = 0; b < NUM_BINS; b++) {
    const lo = BIN_EDGES[b] as number;
    const hi = (BIN_EDGES[b + 1] as number) - 1e-9;
    assert.equal(ozoneClass(lo, th), ozoneClass(hi, th));
    assert.equal(ozoneClass(BIN_CENTRES[b] as number, th), ozoneClass(lo, th));
    assert.equal(ozoneBin(lo), b);
    assert.equal(ozoneBin(hi), b);
  }
  assert.equal(ozoneBin(500), NUM_BINS - 1);
});

test("airq: class-wise rewards on hand-computed confusion tables", () => {
  // rows: observed class 0..3, columns: forecast class 0..3
  const table = (r: Parameters<typeof classReward>[2]) =>
    [0, 1, 2, 3].map((g) => [0, 1, 2, 3].map((p) => Math.round(classReward(g, p, r) * 1e12) / 1e12));
  assert.deepEqual(table(defaults.reward), [
    [1, 0, -0.1, -0.1],
    [0, 1, -0.1, -0.1],
    [0, 0, 1, 0],
    [-0.3, -0.3, 0, 1],
  ]);
  assert.deepEqual(table({ exact: 0.5, alert: 0.5, falseAlarm: 0.2, miss: 0.4, severeMiss: 0.3 }), [
    [1, 0.5, -0.2, -0.2],
    [0.5, 1, -0.2, -0.2],
    [-0.4, -0.4, 1, 0.5],
    [-0.7, -0.7, 0.5, 1],
  ]);
  // a missed severe event costs more than a false alarm under the defaults
  assert.ok(classReward(3, 0, defaults.reward) < classReward(0, 3, defaults.reward));

  // ALGORITHMS.md §F.3 (FAKER-Air's PM2.5 classes [15, 35, 75], torch.bucketize: a value at an edge is lower)
  const gt = [10, 20, 40, 80, 15, 35];
  const pred = [12, 40, 30, 100, 16, 35];
  const pm = [15, 35, 75];
  assert.deepEqual(
    gt.map((x) => ozoneClass(x, pm, "lower")),
    [0, 1, 2, 3, 0, 1],
  );
  assert.deepEqual(
    pred.map((x) => ozoneClass(x, pm, "lower")),
    [0, 2, 1, 3, 1, 1],
  );
  assert.deepEqual(
    gt.map((x) => ozoneClass(x, pm, "upper")),
    [0, 1, 2, 3, 1, 2],
  );
  const mean = (r: Parameters<typeof classReward>[2]) =>
    gt
      .map((g, i) => classReward(ozoneClass(g, pm, "lower"), ozoneClass(pred[i] as number, pm, "lower"), r))
      .reduce((a, b) => a + b, 0) / 6;
  assert.ok(Math.abs(mean({ exact: 1, alert: 0, falseAlarm: 0.1, miss: 0, severeMiss: 0 }) - 0.4833333333) < 1e-9);
  assert.ok(Math.abs(mean({ exact: 0.5, alert: 0.5, falseAlarm: 0, miss: 0, severeMiss: 0 }) - 0.5833333333) < 1e-9);

  // confusion of the alert class (class ≥ 2) and its scores, by hand: hits 2, misses 1, false alarms 2, CN 3
  const g = [0, 1, 2, 3, 3, 0, 1, 1];
  const p = [0, 2, 2, 3, 1, 3, 1, 0];
  const c = confusion(g, p);
  assert.deepEqual(c, { hits: 2, misses: 1, falseAlarms: 2, correctNegatives: 3 });
  const s = alertScores(c);
  assert.ok(Math.abs(s.far - 2 / 4) < 1e-15 && Math.abs(s.pod - 2 / 3) < 1e-15 && Math.abs(s.f1 - 4 / 7) < 1e-15);
  assert.deepEqual(alertScores(confusion([0, 1], [0, 1])), { far: 0, pod: 0, f1: 0 });
});

test("faker_air advantages: ALGORITHMS.md §F.3 vectors, ties, groups in order, state through the pipeline", () => {
  const R = Float64Array.of(0.3, 0.55, 0.1, 0.475);
  const r = fakerAirAdvantages(R, Int32Array.of(0, 0, 0, 0), {}, { m: 0, v: 1e-6 });
  assert.ok(Math.abs(r.m - 0.0178125) < 1e-12);
  assert.ok(Math.abs(Math.sqrt(r.v) + 1e-6 - 0.0756842) < 5e-8); // the "std" of §F.3 includes eps
  assertClose(r.values, [0.072849, 1.603169, -0.791407, 0.904073], { rtol: 0, atol: 5e-7 });
  // the pure parts: rank only, EMA only
  assertClose(
    fakerAirAdvantages(R, Int32Array.of(0, 0, 0, 0), { rankWeight: 1 }, { m: 0, v: 1e-6 }).values,
    [-1 / 3, 1, -1, 1 / 3],
    {
      rtol: 0,
      atol: 1e-15,
    },
  );
  assertClose(
    fakerAirAdvantages(R, Int32Array.of(0, 0, 0, 0), { rankWeight: 0 }, { m: 0, v: 1e-6 }).values,
    [3.728486, 7.031685, 1.085927, 6.040726],
    { rtol: 0, atol: 5e-6 },
  );
  // ties share their average rank; an all-equal group gets rank 0 (only the EMA term)
  const tie = fakerAirAdvantages(
    Float64Array.of(1, 1, 0, 2),
    Int32Array.of(0, 0, 0, 0),
    { rankWeight: 1 },
    { m: 0, v: 1 },
  );
  assertClose(tie.values, [0, 0, -1, 1], { rtol: 0, atol: 1e-15 });
  // two groups, listed out of order: group 0 moves the statistics first
  const two = fakerAirAdvantages(
    Float64Array.of(1, 0, 0.5, 0.5),
    Int32Array.of(1, 1, 0, 0),
    { rankWeight: 0 },
    { m: 0, v: 1e-6 },
  );
  const m0 = 0.05 * 0.5;
  const v0 = 0.95e-6 + 0.05 * (0.5 - m0) ** 2;
  const m1 = 0.95 * m0 + 0.05 * 0.5;
  const v1 = 0.95 * v0 + 0.05 * (0.5 - m1) ** 2;
  assertClose(
    two.values,
    [
      (1 - m1) / (Math.sqrt(v1) + 1e-6),
      (0 - m1) / (Math.sqrt(v1) + 1e-6),
      (0.5 - m0) / (Math.sqrt(v0) + 1e-6),
      (0.5 - m0) / (Math.sqrt(v0) + 1e-6),
    ],
    {
      rtol: 1e-12,
      atol: 0,
    },
  );
  // through the pipeline: the statistics move only with an applied step
  const pl = new Pipeline(resolvePreset("airq_grpo"));
  const rows = { groupIndex: Int32Array.of(0, 0, 0, 0) };
  const adv = () => (pl.advantages([R], rows).advantages as { values: Float64Array }).values;
  assertClose(adv(), r.values, { rtol: 1e-12, atol: 0 });
  pl.endStep(false);
  assertClose(adv(), r.values, { rtol: 1e-12, atol: 0 }, "a skipped step keeps the statistics");
  pl.endStep(true);
  const st = Object.values(pl.state())[0] as Record<string, number>;
  assert.ok(Math.abs((st.m as number) - r.m) < 1e-15, "an applied step keeps them");
  assert.notDeepEqual([...adv()], [...r.values]);
});

test("airq: FAKER-Air step weights and the horizon curriculum", () => {
  assertClose(stepWeights(4), [1.1428571428571428, 1.0476190476190477, 0.9523809523809523, 0.8571428571428571], {
    rtol: 1e-12,
    atol: 0,
  });
  assert.deepEqual([...stepWeights(1)], [1]);
  const o = { horizon: 3, curriculum: { start: 1, increment: 1, everySteps: 10 } };
  assert.deepEqual(
    [1, 10, 11, 20, 21, 500].map((k) => curriculumHorizon(o, k)),
    [1, 1, 2, 2, 3, 3],
  );
  assert.equal(curriculumHorizon({ horizon: 2, curriculum: null }, 1), 2);
});

test("airq: features use observations up to the issue day, the episode's forecasts after it, and flag NA", () => {
  const d = loadAirquality();
  const st = airqStats(d);
  const z = (x: number) => (x - st.ozone[0]) / st.ozone[1];
  // issue day May 6 (index 5): lags May 6, 5, 4 = 28, NA, 18
  const f1 = airqFeatures(d, st, 5, 1, []);
  assertClose([...f1.subarray(0, 6)], [z(28), 0, z(18), 0, 1, 0], { rtol: 1e-12, atol: 1e-12 });
  assert.equal(f1[10], 0);
  // day 2 of the same episode after forecasting 60: lags = forecast 60, May 6 = 28, May 5 = NA; weather of May 6
  const f2 = airqFeatures(d, st, 5, 2, [60]);
  assertClose([...f2.subarray(0, 6)], [z(60), z(28), 0, 0, 0, 1], { rtol: 1e-12, atol: 1e-12 });
  assert.equal(f2[6], (66 - st.temp[0]) / st.temp[1]);
  assert.equal(f2[9], 1, "Solar.R of May 6 is NA");
  assert.equal(f2[10], 0.5);
  // the training statistics come from May–August only
  const tr = d.filter((x) => x.month <= 8 && x.ozone !== null).map((x) => x.ozone as number);
  assert.ok(Math.abs(st.ozone[0] - tr.reduce((a, b) => a + b, 0) / tr.length) < 1e-12);
});

test("airq: CRPS of a categorical forecast matches the exact integral ∫(F − 1[x ≥ y])² in PyTorch float64", () => {
  const rng = Rng.fromSeed(7);
  const cases = Array.from({ length: 6 }, (_, k) => {
    const w = Float64Array.from({ length: NUM_BINS }, () => (k === 0 ? 0 : rng.float() ** 3));
    if (k === 0) w[4] = 1; // a point mass: CRPS = |c − y|
    const sum = w.reduce((a, b) => a + b, 0);
    return { p: w.map((x) => x / sum), y: [3, 47.5, 70, 91, 168, 210][k] as number };
  });
  const reqs = cases.map((c, k) => ({
    id: `crps${k}`,
    code: `
c = centres
pts, _ = torch.sort(torch.cat([c, y.reshape(1)]))
acc = torch.zeros((), dtype=torch.float64)
for i in range(len(pts) - 1):
    a, b = pts[i], pts[i + 1]
    F = p[c <= a].sum()
    H = (a >= y).to(torch.float64)
    acc = acc + (F - H) ** 2 * (b - a)
out = acc`,
    inputs: {
      p: { shape: [NUM_BINS], dtype: "f64", values: c.p },
      centres: { shape: [NUM_BINS], dtype: "f64", values: BIN_CENTRES },
      y: { shape: [], dtype: "f64", values: Float64Array.of(c.y) },
    },
  }));
  const res = runOracle(reqs);
  cases.forEach((c, k) => {
    const want = (res.get(`crps${k}`)?.outs[0] as PyTensor).values[0] as number;
    const got = crpsCategorical(c.p, c.y);
    assert.ok(Math.abs(got - want) < 1e-9 * Math.max(1, want), `case ${k}: ${got} vs ${want}`);
  });
  assert.equal(crpsCategorical(cases[0]?.p as Float64Array, 3), Math.abs((BIN_CENTRES[4] as number) - 3));
});

test("airq: the forecaster's log-probs and bin probabilities match PyTorch float64", () => {
  manualSeed(11);
  const p = new CategoricalMLP(OBS_DIM, NUM_BINS, { hidden: [8], dtype: "f64" });
  noGrad(() => {
    const rng = Rng.fromSeed(3);
    for (const [, t] of p.namedParameters())
      t.copy_(
        tensor(
          Float64Array.from(t.toArray(), (x) => x + (rng.float() - 0.5)),
          { shape: [...t.shape], dtype: "f64" },
        ),
      );
  });
  const d = loadAirquality();
  const st = airqStats(d);
  const days = [5, 40, 70, 100];
  const obs = new Float64Array(days.length * OBS_DIM);
  days.forEach((t, i) => {
    airqFeatures(d, st, t, 1 + (i % 3), [45, 80], obs.subarray(i * OBS_DIM, (i + 1) * OBS_DIM));
  });
  const s = p.sample(obs, Rng.fromSeed(5));
  const { lp, ent } = tidy(() => {
    const f = p.logProb(
      tensor(obs, { shape: [days.length, OBS_DIM], dtype: "f64" }),
      tensor(s.raw, { shape: [days.length], dtype: "i64" }),
      {
        entropy: true,
      },
    );
    return {
      lp: Float64Array.from(f.lp.toArray()),
      ent: Float64Array.from((f.entropy as NonNullable<typeof f.entropy>).toArray()),
    };
  });
  const inputs: Record<string, PyTensor> = Object.fromEntries(
    p.namedParameters().map(([n, t]) => [n.replaceAll(".", "_"), py(t)]),
  );
  inputs.x = { shape: [days.length, OBS_DIM], dtype: "f64", values: obs };
  inputs.a = { shape: [days.length], dtype: "f64", values: s.raw };
  const res = runOracle([
    {
      id: "lp",
      code: `
h = torch.tanh(x @ pi_0_weight + pi_0_bias) @ pi_1_weight + pi_1_bias
logp = torch.log_softmax(h, -1)
out = (logp.gather(1, a.long().reshape(-1, 1)).squeeze(1), -(logp.exp() * logp).sum(1), logp.exp())`,
      inputs,
    },
  ]).get("lp");
  const TOL = { rtol: 1e-9, atol: 1e-12 };
  assertClose(lp, (res?.outs[0] as PyTensor).values, TOL, "log π");
  assertClose(ent, (res?.outs[1] as PyTensor).values, TOL, "entropy");
  assertClose(s.logprobs, lp, TOL, "sampled log π");
  // the evaluation's bin probabilities (its observations cross in f32)
  assertClose(
    policyProbs(p, obs, days.length),
    (res?.outs[2] as PyTensor).values,
    { rtol: 1e-5, atol: 1e-7 },
    "π(bin)",
  );
  p.dispose();
});

test("airq env: episodes follow the curriculum horizon, rewards are weighted class-wise scores", () => {
  const env = new AirqEnv(defaults);
  const d = loadAirquality();
  env.reset(123, { horizon: 2 });
  const t = env.issueDay;
  assert.ok(d[t + 1]?.ozone !== null && (d[t + 2]?.month as number) <= 8);
  const w = stepWeights(2);
  const bins = [2, 9];
  bins.forEach((b, k) => {
    const r = env.step(Float64Array.of(b));
    const gt = d[t + 1 + k]?.ozone;
    const want =
      gt === null || gt === undefined
        ? 0
        : ((w[k] as number) *
            classReward(
              ozoneClass(gt, defaults.thresholds),
              ozoneClass(BIN_CENTRES[b] as number, defaults.thresholds),
              defaults.reward,
            )) /
          2;
    assert.ok(Math.abs(r.reward - want) < 1e-12);
    assert.equal(r.done, false);
  });
  assert.throws(() => env.step(Float64Array.of(14)), /not a bin index/);
});

const runEnvOptions = { horizon: 3, curriculum: { everySteps: 2 }, evalMembers: 4 };
const sftDir = (() => {
  let dir: string | null = null;
  return () => {
    if (dir === null) {
      dir = root();
      airqPretrain(airqOptions.parse(runEnvOptions), { out: dir, steps: 20 });
    }
    return dir;
  };
})();

const runRaw = (out: string, extra: Record<string, unknown> = {}) => ({
  preset: "airq_grpo",
  outputDir: out,
  policy: { kind: "categorical_mlp", hidden: [32], init: join(sftDir(), "policy.safetensors") },
  env: { name: "airq", options: runEnvOptions },
  train: { steps: 6, promptsPerStep: 3, groupSize: 4, innerIterations: 1, lr: 1e-2 },
  eval: { everySteps: 3, problems: 4 },
  checkpoint: { everySteps: 1 },
  ...extra,
});

test("airq SFT: cross-entropy falls; the saved files rebuild the policy", () => {
  const a = trainAirqSft({ seed: 0, steps: 1, lr: 1e-2, hidden: 16, weightDecay: 0 });
  const b = trainAirqSft({ seed: 0, steps: 40, lr: 1e-2, hidden: 16, weightDecay: 0 });
  assert.ok(b.nll < a.nll - 0.3, `NLL ${a.nll} → ${b.nll}`);
  a.policy.dispose();
  b.policy.dispose();
  const dir = sftDir();
  const info = JSON.parse(readFileSync(join(dir, "sft.json"), "utf8"));
  assert.equal(info.settings.steps, 20);
  for (const k of ["eval_far", "eval_pod", "eval_f1", "eval_crps"]) assert.ok(Number.isFinite(info.metrics[k]), k);
  assert.equal(JSON.parse(readFileSync(join(dir, "policy.json"), "utf8")).policy.kind, "categorical_mlp");
});

test("airq_grpo through the loop: starts from the SFT weights, follows the curriculum, moves the forecaster", async () => {
  const r = await train(parseTrainConfig(runRaw(root())), { log: () => {} });
  assert.equal(r.steps, 6);
  // the step-0 evaluation is the SFT forecaster's (same weights, same ensemble draws as sft.json)
  const sft = JSON.parse(readFileSync(join(sftDir(), "sft.json"), "utf8")).metrics;
  const m0 = r.metrics[0] as Record<string, number>;
  for (const k of ["eval_far", "eval_pod", "eval_f1", "eval_crps"]) assert.equal(m0[k], sft[k], k);
  const steps = r.metrics.filter((m) => m.episode_length !== undefined);
  assert.deepEqual(
    steps.map((m) => m.episode_length),
    [1, 1, 2, 2, 3, 3],
  );
  assert.ok(steps.some((m) => (m.grad_norm as number) > 0));
  const last = r.metrics.at(-1) as Record<string, number>;
  assert.notEqual(last.eval_crps, m0.eval_crps, "the forecaster moved");
});

test("airq_grpo: stop and resume give the same run (curriculum crossing the stop)", async () => {
  const straight = await train(parseTrainConfig(runRaw(root())), { log: () => {} });
  const dir = root();
  const part = await train(parseTrainConfig(runRaw(dir)), { log: () => {}, stopAfterStep: 3 });
  assert.equal(part.steps, 3);
  const resumed = await train(parseTrainConfig(runRaw(dir)), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 6);
  const pick = (ms: typeof straight.metrics) =>
    ms.map((m) =>
      [m.step, m.loss, m.reward, m.grad_norm, m.episode_length, m.eval_far, m.eval_f1, m.eval_crps].map(
        (x) => x ?? null,
      ),
    );
  assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
});

test("airq_grpo: SIGKILL of `cohort train` mid-run, then --resume, gives the uninterrupted run", async () => {
  const steps = 40;
  const sets = (out: string) => [
    "--set",
    `outputDir=${out}`,
    "--set",
    `policy.init=${join(sftDir(), "policy.safetensors")}`,
    "--set",
    `train.steps=${steps}`,
    "--set",
    "checkpoint.everySteps=1",
    "--set",
    "eval.everySteps=10",
    "--set",
    "env.options.evalMembers=4",
    "--set",
    "env.options.curriculum.everySteps=5",
  ];
  const cli = ["--import", "tsx", "src/cli/main.ts", "train", "examples/airq/airq_grpo.yaml"];
  const straightDir = root();
  const s = spawnSync(process.execPath, [...cli, ...sets(straightDir)], { encoding: "utf8" });
  assert.equal(s.status, 0, s.stderr);
  const dir = root();
  const metricsFile = join(dir, "airq-grpo", "metrics.jsonl");
  const child = spawn(process.execPath, [...cli, ...sets(dir)], { stdio: "ignore" });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_c, sig) => res(sig)));
  // kill once a few steps are logged (the checkpoint after every step may be mid-write)
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const rows = existsSync(metricsFile) ? readFileSync(metricsFile, "utf8").trim().split("\n").length : 0;
    if (rows >= 6) break;
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  const logged = readFileSync(metricsFile, "utf8").trim().split("\n").length;
  assert.ok(logged < steps + 1, "killed before the end");
  const r = spawnSync(process.execPath, [...cli, ...sets(dir), "--resume"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const from = Number(/resumed from \S+ \(step (\d+)\)/.exec(r.stdout + r.stderr)?.[1] ?? -1);
  assert.ok(from >= 1 && from < steps, `resumed from a mid-run checkpoint (step ${from})`);
  const rows = (f: string) => {
    const byStep = new Map<number, Record<string, unknown>>();
    for (const l of readFileSync(f, "utf8").trim().split("\n")) {
      const m = JSON.parse(l) as Record<string, unknown>;
      byStep.set(m.step as number, m); // a step logged twice (before the kill and after resume) keeps the last
    }
    return [...byStep.values()].map((m) =>
      [m.step, m.loss, m.reward, m.grad_norm, m.episode_length, m.eval_far, m.eval_crps].map((x) => x ?? null),
    );
  };
  assert.deepEqual(rows(metricsFile), rows(join(straightDir, "airq-grpo", "metrics.jsonl")));
});

test("examples/airq/airq_grpo.yaml trains a step from an SFT stage", async () => {
  const cfg = loadTrainConfig("examples/airq/airq_grpo.yaml", [
    `outputDir=${root()}`,
    `policy.init=${join(sftDir(), "policy.safetensors")}`,
    "train.steps=1",
    "eval.everySteps=1",
    "env.options.evalMembers=2",
  ]);
  assert.equal(cfg.preset, "airq_grpo");
  const r = await train(cfg, { log: () => {} });
  assert.equal(r.steps, 1);
  assert.ok(Number.isFinite(r.metrics.at(-1)?.eval_crps as number));
});

test("airq configs fail early with clear errors", async () => {
  const base = runRaw(root());
  assert.throws(
    () => parseTrainConfig({ ...base, policy: { kind: "gaussian_mlp" } }),
    /policy\.kind: airq has discrete actions/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "airq", options: { horizon: 4 } } }),
    /env\.options\.horizon/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "airq", options: { thresholds: [71, 55, 86] } } }),
    /thresholds must increase/,
  );
  await assert.rejects(
    train(parseTrainConfig({ ...base, policy: { kind: "categorical_mlp", init: "/nonexistent/policy.safetensors" } }), {
      log: () => {},
    }),
    /policy\.init: no such file/,
  );
  await assert.rejects(
    train(
      parseTrainConfig({
        ...base,
        policy: { kind: "categorical_mlp", hidden: [7], init: join(sftDir(), "policy.safetensors") },
      }),
      {
        log: () => {},
      },
    ),
    /has shape/,
  );
});
