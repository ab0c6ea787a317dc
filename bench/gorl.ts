/**
 * `npm run bench:gorl`: GoRL (preset `gorl`, policy.kind gorl) against a Gaussian policy trained by the same PPO
 * (preset `ppo` with GoRL's clip 0.3, the same critic), through the real training loop, on
 *
 * - `bimodal`: the one-step bandit with two separated optimal actions per context (src/control/bimodal.ts); the
 *   metrics are the return of *sampled* actions (eval at temperature 1, 128 fresh contexts) after the run, and the
 *   bimodality of the final policy's actions, 2·min(p₊, p₋) with p± the share of 2000 sampled actions within 2w
 *   of each optimum (ALGORITHMS.md §E.3 (b): mean reward and bimodality of the action histogram). Two
 *   baselines: the tanh-squashed Gaussian (whose action density is itself bimodal once σ_u² > 1/2, peaks at
 *   ±√(1 − 1/(2σ_u²)) around the centre — near this task's optima) and an unsquashed Gaussian whose actions the
 *   environment clips (unimodal inside the box: the case bimodal.ts's bound is about);
 * - `hopper` (stand, 100 steps per episode, crouched seeded starts): the greedy evaluation return (8 fixed starts)
 *   after the run, against the tanh-squashed Gaussian.
 *
 * Both methods get the same steps, episodes and environment steps (no episode ends early). N seeds per method
 * (`BENCH_SEEDS`, default 3), compared with Welch's t-test (src/report/stats.ts). One JSON line per comparison;
 * the claim (GoRL's, arXiv 2512.02581): GoRL ≥ the Gaussian policy; `claim_holds` = mean ours ≥ mean baseline
 * (`p` is Welch's two-sided p-value). First, a line with the MuJoCo stepping rate of the hopper: n MjData of one
 * MjModel stepped together (MjBatch) against one environment stepped alone.
 *
 * Env: BENCH_SEEDS, BENCH_SCALE (multiplies the steps of every run, default 1), BENCH_TASKS (comma list of
 * mujoco, bimodal, hopper; default all). The default run takes ~4 minutes on 2 idle cores.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bimodalReward } from "../src/control/bimodal.js";
import { GorlPolicy, gorlDecoderSchema } from "../src/control/gorl.js";
import { HOPPER_XML, HopperTask } from "../src/control/hopper.js";
import { MjBatch } from "../src/control/mjbatch.js";
import { compiled } from "../src/control/mujoco.js";
import { GaussianMLP, type Policy } from "../src/control/policy.js";
import { readSafetensors } from "../src/io/safetensors.js";
import { Rng } from "../src/task/rng.js";
import { noGrad, type Tensor } from "../src/tensor/index.js";
import { parseTrainConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";
import { claimLine, claimSummary, mean, round } from "./claims.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 3);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const tasks = (process.env.BENCH_TASKS ?? "mujoco,bimodal,hopper").split(",").map((s) => s.trim());
const out = mkdtempSync(join(tmpdir(), "cohort-bench-gorl-"));

interface Case {
  env: string;
  metric: string;
  steps: number;
  /** The Gaussian baselines this task compares with. */
  baselines: Baseline[];
  config: (method: Method, seed: number) => Record<string, unknown>;
}

type Baseline = "gaussian" | "gaussian_clip";
type Method = "gorl" | Baseline;
const BASELINE_NAMES: Record<Baseline, string> = {
  gaussian: "ppo (tanh-Gaussian MLP, clip 0.3)",
  gaussian_clip: "ppo (unsquashed Gaussian MLP, actions clipped by the env, clip 0.3)",
};

const policyOf = (method: Method, decoder: Record<string, unknown>) =>
  method === "gorl"
    ? { kind: "gorl", hidden: [32], critic: { hidden: [32] }, decoder }
    : {
        kind: "gaussian_mlp",
        hidden: [32],
        std: "learned",
        critic: { hidden: [32] },
        ...(method === "gaussian_clip" ? { squash: false } : {}),
      };

const common = (method: Method, seed: number, steps: number) => ({
  // the same PPO for both: GoRL's preset on its latent, `ppo` with GoRL's clip on the Gaussian
  preset: method === "gorl" ? "gorl" : "ppo",
  ...(method !== "gorl" ? { algo: { gate: { type: "clip", low: 0.3, high: 0.3 } } } : {}),
  outputDir: out,
  name: `${method}-${seed}-${Date.now()}`,
  seed,
  checkpoint: { everySteps: 0 },
  eval: { everySteps: steps },
});

const BIMODAL_DECODER = { decoderEvery: 10, collect: 3, elite: 0.5, steps: 150, batch: 64 };

const CASES: Case[] = [
  {
    env: "bimodal",
    metric: "sampled_return",
    steps: Math.round(30 * scale),
    baselines: ["gaussian", "gaussian_clip"],
    config(method, seed) {
      const c = common(method, seed, this.steps);
      return {
        ...c,
        policy: policyOf(method, BIMODAL_DECODER),
        env: { name: "bimodal", options: BIMODAL },
        train: { steps: this.steps, promptsPerStep: 8, groupSize: 16, innerIterations: 4, miniBatches: 2, lr: 3e-3 },
        eval: { ...c.eval, problems: 128, temperature: 1 },
      };
    },
  },
  {
    env: "hopper",
    metric: "return",
    steps: Math.round(40 * scale),
    baselines: ["gaussian"],
    config(method, seed) {
      const c = common(method, seed, this.steps);
      return {
        ...c,
        policy: policyOf(method, { decoderEvery: 8, collect: 2, elite: 0.5, steps: 150, batch: 64 }),
        env: { name: "hopper", options: { task: "stand", horizon: 100 } },
        train: { steps: this.steps, promptsPerStep: 4, groupSize: 4, innerIterations: 4, miniBatches: 2, lr: 3e-3 },
        eval: { ...c.eval, problems: 8, temperature: 0 },
      };
    },
  },
];

const lines: Record<string, unknown>[] = [];

const BIMODAL = { gap: 1.2, width: 0.1, shift: 0.2, horizon: 1 };

/**
 * The exported bimodal policy (run/final) sampled at 2000 fresh contexts: p± = the share of actions within 2w
 * of each optimum m±; bimodality = 2·min(p₊, p₋) (1: both optima equally, 0: one of them only).
 */
function actionModes(runDir: string, method: Method, decoder: Record<string, unknown>) {
  const st = readSafetensors(join(runDir, "final", "policy.safetensors")).tensors;
  const bounds = { low: [-1], high: [1] };
  let p: Policy;
  if (method === "gorl") {
    const g = new GorlPolicy(1, 1, { hidden: [32], bounds, decoder: gorlDecoderSchema.parse(decoder), rowsPerStep: 1 });
    noGrad(() => {
      for (const [n, t] of g.decoderState()) t.copy_(st[`gorl.${n}`] as Tensor);
    });
    p = g;
  } else p = new GaussianMLP(1, 1, { hidden: [32], std: "learned", ...(method === "gaussian" ? { bounds } : {}) });
  const own: Record<string, Tensor> = {};
  for (const [n, t] of Object.entries(st)) if (n.startsWith("policy.")) own[n.slice(7)] = t;
  p.load(own);
  const rng = Rng.fromSeed(12345);
  const n = 2000;
  const obs = Float64Array.from({ length: n }, () => rng.float() * 2 - 1);
  const a = p.sample(obs, rng).actions;
  let plus = 0;
  let minus = 0;
  let reward = 0;
  for (let i = 0; i < n; i++) {
    const c = obs[i] as number;
    const m = BIMODAL.shift * c;
    const x = Math.max(-1, Math.min(1, a[i] as number)); // the environment clips
    if (Math.abs(x - m - BIMODAL.gap / 2) < 2 * BIMODAL.width) plus++;
    if (Math.abs(x - m + BIMODAL.gap / 2) < 2 * BIMODAL.width) minus++;
    reward += bimodalReward(BIMODAL, c, x);
  }
  p.dispose();
  for (const t of Object.values(st)) t.dispose();
  return { bimodality: (2 * Math.min(plus, minus)) / n, nearOptima: (plus + minus) / n, reward: reward / n };
}

/** Physics steps per second of the hopper: n MjData stepped together, and one environment alone. */
async function mujocoRate(): Promise<void> {
  const { mj, model } = await compiled("hopper", HOPPER_XML);
  const task = new HopperTask({
    task: "stand",
    horizon: 100,
    crouch: 0.3,
    noise: 0.1,
    standHeight: 1,
    hopSpeed: 2,
    fallHeight: 0,
  });
  const rng = Rng.fromSeed(0);
  const rate = (n: number, actions: number): number => {
    const b = new MjBatch(mj, model, task, n);
    try {
      b.reset(Array.from({ length: n }, (_, i) => i));
      const acts = Float64Array.from({ length: n * task.nu }, () => rng.float() * 2 - 1);
      const t = performance.now();
      for (let k = 0; k < actions; k++) b.step(acts);
      return (n * actions * task.substeps) / ((performance.now() - t) / 1000);
    } finally {
      b.dispose();
    }
  };
  rate(8, 200); // warm-up (JIT)
  const single = rate(1, 6400);
  const batch = rate(64, 100);
  const line = {
    bench: "mujoco",
    model: "hopper",
    metric: "physics_steps_per_s",
    batch_members: 64,
    batch: round(batch, 0),
    single: round(single, 0),
  };
  lines.push(line);
  console.log(JSON.stringify(line));
}

function compare(
  env: string,
  steps: number,
  metric: string,
  ours: number[],
  base: number[],
  baseline: Baseline,
  extra: object,
): void {
  lines.push(
    claimLine({
      bench: "control",
      method: "gorl",
      metric,
      ours,
      base,
      baselineMethod: BASELINE_NAMES[baseline],
      fields: { env, steps, ...extra },
    }),
  );
}

const t0 = performance.now();
try {
  if (tasks.includes("mujoco")) await mujocoRate();
  for (const c of CASES) {
    if (!tasks.includes(c.env)) continue;
    const methods: Method[] = ["gorl", ...c.baselines];
    const res: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, []]));
    const modes: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, []]));
    const secs: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, []]));
    let envSteps = 0;
    for (let s = 0; s < seeds; s++)
      for (const method of methods) {
        const t = performance.now();
        const cfg = parseTrainConfig(c.config(method, s));
        const r = await train(cfg, { log: () => {} });
        const last = r.metrics.at(-1) as Record<string, number>;
        const v = last.eval_return as number;
        (res[method] as number[]).push(v);
        (secs[method] as number[]).push((performance.now() - t) / 1000);
        if (c.env === "bimodal") {
          const m = actionModes(r.runDir, method, BIMODAL_DECODER);
          (modes[method] as number[]).push(m.bimodality);
          process.stderr.write(
            `  actions: bimodality ${m.bimodality.toFixed(3)}, near an optimum ${m.nearOptima.toFixed(3)}, reward ${m.reward.toFixed(3)}\n`,
          );
        }
        const episodes = cfg.train.promptsPerStep * cfg.train.groupSize;
        envSteps = r.metrics.slice(1).reduce((a, m) => a + (m.episode_length as number) * episodes, 0);
        process.stderr.write(
          `${c.env} ${method} seed ${s}: eval_return ${v.toFixed(3)} after ${last.step} steps, ${((performance.now() - t) / 1000).toFixed(1)}s\n`,
        );
      }
    const extra = {
      seconds_per_run: Object.fromEntries(methods.map((m) => [m, round(mean(secs[m] as number[]), 1)])),
      env_steps_per_run: envSteps,
    };
    for (const b of c.baselines) {
      compare(c.env, c.steps, c.metric, res.gorl as number[], res[b] as number[], b, extra);
      if (c.env === "bimodal")
        compare(c.env, c.steps, "action_bimodality", modes.gorl as number[], modes[b] as number[], b, {});
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
const cmp = lines.filter((l) => l.bench === "control");
claimSummary({ bench: "control", method: "gorl" }, cmp, {
  seeds,
  scale,
  seconds: round((performance.now() - t0) / 1000, 1),
});
