/**
 * Flow-GRPO and VGPO through the real loop on digits_flow (a small generator pre-trained here): the runs train, the
 * digits_flow rewards telescope to the terminal reward, a run stopped by SIGKILL resumes to the same metrics as an
 * uninterrupted one, evaluation rows carry the 8×8 pictures, the example configs run, and bad configs fail early.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { stringify } from "yaml";
import { playEpisodes } from "../../src/control/run.js";
import { DigitsFlowEnv, digitsFlowOptions } from "../../src/generators/env.js";
import { FlowSdePolicy } from "../../src/generators/policy.js";
import { loadClassifier, loadGenerator, pretrainFlow } from "../../src/generators/pretrain.js";
import { Rng } from "../../src/task/rng.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

const root = () => mkdtempSync(join(tmpdir(), "cohort-flow-"));
let gen = "";
before(() => {
  gen = join(root(), "gen");
  pretrainFlow({ out: gen, steps: 150, batch: 64, hidden: 32, layers: 2, classifierSteps: 100 });
});

const raw = (out: string, preset: string, steps = 4) => ({
  name: "flow",
  preset,
  outputDir: out,
  policy: { kind: "flow_sde" },
  env: { name: "digits_flow", options: { generator: gen, steps: 4, classes: [0, 1, 7] } },
  train: { steps, promptsPerStep: 2, groupSize: 3, miniBatches: 2, lr: 1e-3 },
  eval: { everySteps: 2, problems: 3, temperature: 0 },
  checkpoint: { everySteps: 1 },
});

test("digits_flow: per-step rewards sum to the terminal reward; their running sums score the projections", () => {
  const o = digitsFlowOptions.parse({ generator: gen, steps: 4 });
  const classifier = loadClassifier(gen);
  const policy = new FlowSdePolicy(loadGenerator(gen));
  let last: DigitsFlowEnv | null = null;
  const make = () => {
    const e = new DigitsFlowEnv(o, classifier);
    e.bind(policy);
    last = e;
    return e;
  };
  const b = playEpisodes(make, policy, [11], 2, Rng.fromSeed(3));
  const env = last as unknown as DigitsFlowEnv;
  for (let i = 0; i < 2; i++) {
    const final = b.lastObs.subarray(i * b.obsDim, i * b.obsDim + 64);
    // both episodes of the group ask for the same digit (the env's class of the seed)
    env.reset(11);
    assert.ok(Math.abs((b.returns[i] as number) - env.reward(final)) < 1e-12, "return = terminal reward");
    // step 1's running sum is the reward of x̂_0 projected from the latent after step 1
    const x1 = b.obs.subarray((i * b.T + 1) * b.obsDim, (i * b.T + 1) * b.obsDim + 64);
    const proj = policy.project(Float64Array.from(x1), Float64Array.of(0.75), Int32Array.of(env.digit));
    // (batched in the policy's sample call: float32 rounding of a batched matmul)
    assert.ok(Math.abs((b.rewards[i * b.T] as number) - env.reward(proj)) < 1e-5, "Φ after step 1");
  }
  // without process rewards, everything sits on the last step
  const plain = digitsFlowOptions.parse({ generator: gen, steps: 4, process: false });
  const b2 = playEpisodes(() => new DigitsFlowEnv(plain, classifier), policy, [11], 2, Rng.fromSeed(3));
  assert.deepEqual(Array.from(b2.rewards.subarray(0, 3)), [0, 0, 0]);
  policy.dispose();
});

for (const preset of ["flow_grpo", "vgpo"]) {
  test(`${preset} trains on digits_flow; evaluation rows carry the asked digit and its picture`, async () => {
    const r = await train(parseTrainConfig(raw(root(), preset, 2)), { log: () => {} });
    assert.equal(r.steps, 2);
    for (const m of r.metrics.slice(1)) {
      assert.ok(Number.isFinite(m.loss as number) && (m.grad_norm as number) > 0, `loss ${m.loss}`);
      assert.equal(m.episode_length, 4);
      assert.ok((m["advantage/abs_mean"] as number) >= 0);
    }
    const rows = readFileSync(join(r.runDir, "samples.jsonl"), "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    const ev = rows.find((x) => x.step === 0);
    assert.match(ev.prompt, /^digit [017]$/);
    assert.equal(ev.image.pixels.length, 64);
  });
}

test("a vgpo run killed with SIGKILL resumes to the same metrics as an uninterrupted one", async () => {
  const straight = await train(parseTrainConfig(raw(root(), "vgpo")), { log: () => {} });
  const dir = root();
  const cfgFile = join(dir, "run.yaml");
  writeFileSync(cfgFile, stringify(raw(dir, "vgpo")));
  // a child process trains and is killed once the checkpoint of step 2 exists
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", cfgFile], { stdio: "ignore" });
  const ckpts = join(dir, "flow", "checkpoints");
  await new Promise<void>((res, rej) => {
    const t = setInterval(() => {
      const done = existsSync(ckpts) && readdirSync(ckpts).some((d) => /^step-0*[23]$/.test(d));
      if (done) {
        child.kill("SIGKILL");
        clearInterval(t);
        res();
      }
    }, 20);
    child.on("exit", () => {
      clearInterval(t);
      res();
    });
    setTimeout(() => rej(new Error("no checkpoint after 120 s")), 120_000);
  });
  await new Promise((res) =>
    child.exitCode !== null || child.signalCode !== null ? res(null) : child.on("exit", res),
  );
  assert.equal(child.signalCode, "SIGKILL", "the run was killed before it finished");
  assert.ok(!existsSync(join(dir, "flow", "final")), "no final export before the resume");
  const resumed = await train(loadTrainConfig(cfgFile), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 4);
  const pick = (ms: typeof straight.metrics) =>
    ms.map((m) => [m.step, m.loss, m.reward, m.grad_norm, m.eval_return].map((x) => x ?? null));
  assert.deepEqual(pick(resumed.metrics), pick(straight.metrics));
});

test("examples/flow configs parse and train one step", async () => {
  for (const f of readdirSync("examples/flow").filter((x) => x.endsWith(".yaml"))) {
    const cfg = loadTrainConfig(join("examples/flow", f), [
      `outputDir=${root()}`,
      `env.options.generator=${gen}`,
      "train.steps=1",
      "train.promptsPerStep=2",
      "train.groupSize=2",
      "eval.everySteps=1",
      "eval.problems=2",
    ]);
    const r = await train(cfg, { log: () => {} });
    assert.equal(r.steps, 1, f);
    assert.ok(Number.isFinite(r.metrics.at(-1)?.eval_return as number), f);
  }
});

test("flow configs fail early with clear errors", () => {
  const base = raw(root(), "flow_grpo");
  assert.throws(
    () => parseTrainConfig({ ...base, policy: { kind: "gaussian_mlp" } }),
    /policy\.kind: digits_flow trains its generator: use policy\.kind flow_sde/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "pendulum" } }),
    /policy\.kind: a flow_sde policy is the generator of env digits_flow, not of pendulum/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, policy: { kind: "gaussian_mlp", sde: {} }, env: { name: "pendulum" } }),
    /policy\.sde: applies to policy\.kind flow_sde only/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "digits_flow", options: { generator: gen, classes: [12] } } }),
    /env\.options\.classes/,
  );
  assert.throws(
    () => parseTrainConfig({ ...base, env: { name: "digits_flow", options: {} } }),
    /env\.options\.generator/,
  );
});
