/**
 * The `attention_rank` environment (DR-RL) on the shipped models/arithmetic-think: full rank reproduces the
 * model, lower ranks lose fidelity and FLOPs, the reward is Eq. 12 of its parts, every option moves something,
 * bad options fail early, and the dr_rl preset trains through the real loop and resumes exactly after SIGKILL.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  type AttentionRankEnv,
  attentionRankFactory,
  attentionRankOptions,
  inputIds,
  rankSet,
} from "../../src/control/attention-rank.js";
import { controlEnvSpec } from "../../src/control/env.js";
import { ConfigError } from "../../src/errors.js";
import { Rng } from "../../src/task/rng.js";
import { liveTensors, noGrad, tensor, tidy } from "../../src/tensor/index.js";
import { loadTrainConfig, parseTrainConfig } from "../../src/train/config.js";
import { MetricsLog } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";

const opts = (o: Record<string, unknown> = {}) => attentionRankOptions.parse(o);
const root = () => mkdtempSync(join(tmpdir(), "cohort-drrl-"));

/** Plays one episode with the given action per layer; returns the rewards and the env's episode record. */
function play(env: AttentionRankEnv, seed: number, actions: number[]) {
  env.reset(seed);
  const rewards = actions.map((a) => env.step(Float64Array.of(a)).reward);
  return { rewards, ep: structuredClone(env.episode) as NonNullable<AttentionRankEnv["episode"]> };
}

test("full rank reproduces the model's own next-token predictions, with fidelity 1 and no perturbation", () => {
  const before = liveTensors();
  const make = attentionRankFactory(opts());
  const env = make();
  try {
    const A = env.ranks.length;
    assert.deepEqual(env.ranks, [4, 8, 12, 16, 20, 24, 28, 32]);
    assert.equal(env.horizon, 4);
    const { rewards, ep } = play(env, 3, [A - 1, A - 1, A - 1, A - 1]);
    for (const c of ep.cos) assert.ok(Math.abs(c - 1) < 1e-5, `cos ${c}`);
    // reward = α·1 − β·1 − γ·0
    for (const r of rewards) assert.ok(Math.abs(r - (1 - 0.05)) < 1e-5, `reward ${r}`);
    // the same tokens through CausalLM.forward
    const p = env.res.task.sample(Rng.fromSeed(3), "train");
    const { ids, start } = inputIds(env.res, p, true);
    assert.ok(ids.length > 40, `a long input: ${ids.length} tokens`);
    const pred = noGrad(() =>
      tidy(() =>
        env.model
          .forward(tensor([ids], { dtype: "i64" }))
          .argmax(-1)
          .reshape(-1)
          .toArray(),
      ),
    );
    let right = 0;
    for (let t = start; t < ids.length; t++) if (pred[t - 1] === ids[t]) right++;
    assert.equal(ep.accuracy, right / (ids.length - start));
    assert.ok(ep.accuracy > 0.8, `the shipped model predicts its traces: ${ep.accuracy}`);
  } finally {
    env.dispose();
  }
  assert.equal(liveTensors(), before, "the model is freed with the last episode");
});

test("lower ranks: lower fidelity and FLOPs; the reward is Eq. 12 of its parts", () => {
  const make = attentionRankFactory(opts());
  const env = make();
  try {
    const full = play(env, 5, [7, 7, 7, 7]);
    const low = play(env, 5, [0, 0, 0, 0]);
    const mid = play(env, 5, [3, 3, 3, 3]);
    assert.deepEqual(low.ep.ranks, [4, 4, 4, 4]);
    for (let l = 0; l < 4; l++) {
      assert.ok((low.ep.cos[l] as number) < (mid.ep.cos[l] as number), `layer ${l}: cos grows with rank`);
      assert.ok((mid.ep.cos[l] as number) < (full.ep.cos[l] as number) + 1e-9);
      assert.ok((low.ep.scoreFlops[l] as number) < (mid.ep.scoreFlops[l] as number));
      assert.ok((mid.ep.scoreFlops[l] as number) < (full.ep.scoreFlops[l] as number));
    }
    // layer 0 changes from full rank, layers 1..3 keep rank 4: ‖ΔA‖ is 0 there
    for (let l = 1; l < 4; l++) {
      const expect = (low.ep.cos[l] as number) - (0.05 * (low.ep.scoreFlops[l] as number)) / low.ep.fullScoreFlops;
      assert.ok(Math.abs((low.rewards[l] as number) - expect) < 1e-12, `layer ${l}`);
    }
    const noPenalty = (low.ep.cos[0] as number) - (0.05 * (low.ep.scoreFlops[0] as number)) / low.ep.fullScoreFlops;
    assert.ok((low.rewards[0] as number) < noPenalty - 1e-4, "the first layer pays for its change from full rank");
  } finally {
    env.dispose();
  }
});

test("every option changes the episode: β, γ, α, flops, epsilon, think, ranks", () => {
  const run = (o: Record<string, unknown>, actions = [0, 2, 4, 1]) => {
    const env = attentionRankFactory(opts(o))();
    try {
      return play(env, 7, actions);
    } finally {
      env.dispose();
    }
  };
  const base = run({});
  const sum = (x: number[]) => x.reduce((a, b) => a + b, 0);
  assert.ok(sum(run({ beta: 0.5 }).rewards) < sum(base.rewards));
  assert.ok(sum(run({ gamma: 0 }).rewards) > sum(base.rewards));
  assert.ok(sum(run({ alpha: 2 }).rewards) > sum(base.rewards));
  assert.notDeepEqual(run({ flops: "prototype" }).ep.scoreFlops, base.ep.scoreFlops);
  assert.ok(run({ think: false }).ep.tokens < base.ep.tokens);
  assert.deepEqual(run({ rankMin: 8, rankStep: 8 }, [0, 0, 0, 0]).ep.ranks, [8, 8, 8, 8]);
  // the guard raises ranks, one incremental update at a time, until the bound holds (a tiny ε: full rank)
  assert.deepEqual(run({ epsilon: 1e-9 }).ep.ranks, [32, 32, 32, 32]);
  const loose = run({ epsilon: 1e9 });
  assert.deepEqual(loose.ep.ranks, base.ep.ranks);
});

test("bad options fail before any episode, naming the option", () => {
  const err = (o: Record<string, unknown>, path: RegExp) =>
    assert.throws(
      () => {
        const { options } = controlEnvSpec("attention_rank", o);
        attentionRankFactory(options as ReturnType<typeof opts>);
      },
      (e: unknown) => e instanceof ConfigError && path.test(`${e.path}: ${e.message}`),
    );
  err({ rankMin: 40, rankMax: 48 }, /rankMin.*head_dim 32/);
  err({ rankMin: 16, rankMax: 8 }, /rankMin.*≤ rankMax/);
  err({ horizon: 3 }, /env\.options.*attention_rank takes model, task/);
  err({ model: "/nonexistent" }, /env\.options\.model/);
  err({ task: { digits: [0, 0] } }, /env\.options\.task/);
  assert.deepEqual(rankSet({ rankMin: 4, rankStep: 12, rankMax: 32 }), [4, 16, 28, 32]);
});

const cfgYaml = (out: string, name: string, steps: number) =>
  [
    `name: ${name}`,
    `outputDir: ${out}`,
    "seed: 1",
    "preset: dr_rl",
    "policy: {kind: categorical_mlp, hidden: [16]}",
    "env: {name: attention_rank, options: {rankMin: 8, rankStep: 8, rankMax: 32, think: false}}",
    `train: {steps: ${steps}, promptsPerStep: 2, groupSize: 3, innerIterations: 2, lr: 0.01}`,
    "eval: {everySteps: 2, problems: 2}",
    "checkpoint: {everySteps: 1}",
    "",
  ].join("\n");

test("dr_rl trains through the loop; SIGKILL then --resume gives the uninterrupted run", async () => {
  const dir = root();
  const file = (n: string) => {
    const f = join(dir, `${n}.yaml`);
    writeFileSync(f, cfgYaml(dir, n, 4));
    return f;
  };
  const straight = await train(loadTrainConfig(file("straight")), { log: () => {} });
  assert.equal(straight.steps, 4);
  assert.ok(
    straight.metrics.some((m) => typeof m.grad_norm === "number" && m.grad_norm > 0),
    "the policy moves",
  );
  const cfgFile = file("killed");
  const metricsPath = join(dir, "killed", "metrics.jsonl");
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "train", cfgFile, "--quiet"], {
    stdio: "ignore",
  });
  const exited = new Promise<NodeJS.Signals | null>((res) => child.on("exit", (_c, sig) => res(sig)));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (existsSync(metricsPath) && new MetricsLog(metricsPath).read().some((m) => m.step === 2)) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill("SIGKILL");
  assert.equal(await exited, "SIGKILL");
  assert.ok(new MetricsLog(metricsPath).read().length < straight.metrics.length, "killed before the end");
  const resumed = await train(loadTrainConfig(cfgFile), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 4);
  const pick = (ms: Record<string, unknown>[]) =>
    ms.map((m) =>
      Object.fromEntries(Object.entries(m).filter(([k]) => !k.startsWith("time/") && !k.startsWith("mem/"))),
    );
  assert.deepEqual(pick(new MetricsLog(metricsPath).read()), pick(straight.metrics));
});

test("the example config parses and trains one step", async () => {
  const cfg = loadTrainConfig("examples/dr_rl.yaml", [
    `outputDir=${root()}`,
    "train.steps=1",
    "train.promptsPerStep=1",
    "train.groupSize=2",
    "eval.everySteps=1",
    "eval.problems=1",
  ]);
  const r = await train(cfg, { log: () => {} });
  assert.equal(r.steps, 1);
  assert.ok(Number.isFinite(r.metrics.at(-1)?.loss as number));
  assert.throws(
    () =>
      parseTrainConfig({
        outputDir: root(),
        preset: "dr_rl",
        policy: { kind: "gaussian_mlp" },
        env: { name: "attention_rank" },
      }),
    /attention_rank has discrete actions/,
  );
});
