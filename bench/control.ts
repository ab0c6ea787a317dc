/**
 * `npm run bench:control`: MDPO (preset `mdpo`) against PPO-clip with a learned critic and GAE (preset `ppo`)
 * on control environments, through the real training loop (`train` with `policy:` and `env:`).
 *
 * - cart-pole (categorical MLP) and pendulum swing-up (tanh-squashed Gaussian MLP): every run of both methods
 *   gets the same budget of environment steps (it stops after the step that reaches it); the metric is the
 *   greedy evaluation return (`eval_return`, mean over the fixed eval episodes) after the last step;
 * - Garnet (tabular softmax): MDPO against plain group-relative policy gradient (preset `grpo` without its
 *   reference KL), same steps and episodes; the metric is the relative reduction of the exact optimality gap
 *   J* − J(π) from the start to the end of the run.
 *
 * N seeds per method (`BENCH_SEEDS`, default 5), compared with Welch's t-test (src/report/stats.ts). One JSON
 * line per comparison; claim (the MDPO paper's): MDPO ≥ the baseline, `claim_holds` = ours ≥ baseline (the
 * means; `p` is Welch's two-sided p-value, extra). A JSON summary line last.
 *
 * Env: BENCH_SEEDS (seeds per method), BENCH_SCALE (multiplies every budget, default 1), BENCH_ENVS
 * (comma list of cartpole, pendulum, garnet; default all).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTrainConfig } from "../src/train/config.js";
import type { MetricRecord } from "../src/train/metrics.js";
import { train } from "../src/train/trainer.js";
import { claimLine, claimSummary, mean, round } from "./claims.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 5);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const envs = (process.env.BENCH_ENVS ?? "cartpole,pendulum,garnet").split(",").map((s) => s.trim());
const out = mkdtempSync(join(tmpdir(), "cohort-bench-control-"));

interface Case {
  env: string;
  /** Environment steps per run (every method, every seed). */
  budget: number;
  /** A config for this method and seed (train.steps is an upper bound; the budget stops the run). */
  config: (method: string, seed: number) => Record<string, unknown>;
}

const common = (method: string, seed: number) => ({
  preset: method,
  outputDir: out,
  name: `${method}-${seed}-${Date.now()}`,
  seed,
  checkpoint: { everySteps: 0 },
});

const CASES: Case[] = [
  {
    env: "cartpole",
    budget: Math.round(25_000 * scale),
    config: (method, seed) => ({
      ...common(method, seed),
      policy: { kind: "categorical_mlp", hidden: [32], ...(method === "ppo" ? { critic: { hidden: [32] } } : {}) },
      env: { name: "cartpole", options: { horizon: 500 } },
      train: { steps: 1000, promptsPerStep: 4, groupSize: 4, innerIterations: 4, miniBatches: 2, lr: 3e-3 },
      eval: { everySteps: 1, problems: 16, temperature: 0 },
    }),
  },
  {
    env: "pendulum",
    budget: Math.round(150_000 * scale),
    config: (method, seed) => ({
      ...common(method, seed),
      policy: {
        kind: "gaussian_mlp",
        hidden: [32],
        std: "learned",
        ...(method === "ppo" ? { critic: { hidden: [32] } } : {}),
      },
      env: { name: "pendulum", options: { horizon: 200 } },
      train: { steps: 1000, promptsPerStep: 4, groupSize: 4, innerIterations: 4, miniBatches: 2, lr: 3e-3 },
      eval: { everySteps: 1, problems: 8, temperature: 0 },
    }),
  },
];

/** Runs one config until its environment-step budget is spent; the metrics of every step. */
async function runBudget(raw: Record<string, unknown>, budget: number): Promise<{ last: MetricRecord; used: number }> {
  const cfg = parseTrainConfig(raw);
  const episodes = cfg.train.promptsPerStep * cfg.train.groupSize;
  const stop = { stop: false };
  let used = 0;
  const r = await train(cfg, {
    log: () => {},
    stopSignal: stop,
    onStep: (m) => {
      if (m.step === 0) return;
      used += (m.episode_length as number) * episodes;
      if (used >= budget) stop.stop = true;
    },
  });
  return { last: r.metrics.at(-1) as MetricRecord, used };
}

const lines: Record<string, unknown>[] = [];

function compare(
  env: string,
  metric: string,
  ours: number[],
  base: number[],
  baselineMethod: string,
  extra: Record<string, unknown>,
) {
  lines.push(
    claimLine({ bench: "control", method: "mdpo", metric, ours, base, baselineMethod, fields: { env, ...extra } }),
  );
}

const t0 = performance.now();
try {
  for (const c of CASES) {
    if (!envs.includes(c.env)) continue;
    const res: Record<string, number[]> = { mdpo: [], ppo: [] };
    const used: Record<string, number[]> = { mdpo: [], ppo: [] };
    for (let s = 0; s < seeds; s++)
      for (const method of ["mdpo", "ppo"]) {
        const t = performance.now();
        const r = await runBudget(c.config(method, s), c.budget);
        (res[method] as number[]).push(r.last.eval_return as number);
        (used[method] as number[]).push(r.used);
        process.stderr.write(
          `${c.env} ${method} seed ${s}: eval_return ${(r.last.eval_return as number).toFixed(1)} after ${r.last.step} steps, ${r.used} env steps, ${((performance.now() - t) / 1000).toFixed(1)}s\n`,
        );
      }
    compare(c.env, "return", res.mdpo as number[], res.ppo as number[], "ppo", {
      env_steps_budget: c.budget,
      env_steps_used: { mdpo: round(mean(used.mdpo as number[]), 0), ppo: round(mean(used.ppo as number[]), 0) },
    });
  }
  if (envs.includes("garnet")) {
    const steps = Math.round(15 * scale);
    const gapReduction: Record<string, number[]> = { mdpo: [], grpo: [] };
    for (let s = 0; s < seeds; s++)
      for (const method of ["mdpo", "grpo"]) {
        const cfg = parseTrainConfig({
          ...common(method, s),
          policy: { kind: "tabular" },
          env: { name: "garnet", options: { states: 8, actions: 3, horizon: 15, seed: 1 + s } },
          ...(method === "grpo" ? { algo: { regularizers: [] } } : {}),
          train: { steps, promptsPerStep: 8, groupSize: 8, innerIterations: 4, lr: 0.1, maxGradNorm: 0 },
          eval: { everySteps: steps, problems: 16 },
        });
        const r = await train(cfg, { log: () => {} });
        const g0 = r.metrics[0]?.eval_optimality_gap as number;
        const g1 = r.metrics.at(-1)?.eval_optimality_gap as number;
        (gapReduction[method] as number[]).push((g0 - g1) / g0);
        process.stderr.write(`garnet ${method} seed ${s}: optimality gap ${g0.toFixed(4)} → ${g1.toFixed(4)}\n`);
      }
    compare(
      "garnet",
      "optimality_gap_reduction",
      gapReduction.mdpo as number[],
      gapReduction.grpo as number[],
      "grpo",
      {
        steps,
        episodes_per_step: 64,
      },
    );
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
claimSummary({ bench: "control" }, lines, { seeds, scale, seconds: round((performance.now() - t0) / 1000, 1) });
