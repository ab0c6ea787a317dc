/**
 * `npm run bench:hyper`: Hyper++ (preset `hyper_pp`: hyper_mlp policy, shared-encoder HL-Gauss critic) against
 * Euclidean PPO (preset `ppo` with Hyper++'s PPO settings: GAE γ 0.999, entropy bonus 0.01; a tanh-MLP policy
 * and a separate MLP critic) on procmaze, through the real training loop (`train` with `policy:` and `env:`).
 *
 * Both train on 100 procedurally generated levels for the same steps and episodes, then play 100 episodes on
 * 100 held-out levels (sampling, temperature 1). Metrics, per run:
 * - `return_heldout`: eval_return after the last step (claim: Hyper++ ≥ PPO, `claim_holds` = ours ≥ baseline);
 * - `trust_region_violation_rate`: the mean over steps of trust/violation_rate, the fraction of the step's
 *   samples whose ratio π_new/π_old left [0.8, 1.2] after the update (src/control/trust.ts; claim: Hyper++
 *   violates less, `claim_holds` = ours ≤ baseline).
 * Each pair is run at every value critic coefficient in BENCH_VF_COEFS (default the paper's 0.5, and 0.05):
 * Hyper++'s critic shares the encoder, so the coefficient weighs the value loss against the policy loss in
 * the features, while PPO's separate critic only sees it through the common gradient-norm clip.
 *
 * N seeds per arm (`BENCH_SEEDS`, default 3), Welch's t-test (src/report/stats.ts, `p` two-sided). One JSON
 * line per comparison, a summary line last.
 *
 * Env: BENCH_SEEDS, BENCH_SCALE (multiplies the 80 training steps), BENCH_VF_COEFS (comma list),
 * BENCH_UNBOUNDED=1 adds the paper's failure mode as a second baseline: a hyperbolic agent without Hyper++'s
 * fixes (Poincaré-ball heads on unnormalised, unscaled features, squared-error critic).
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTrainConfig } from "../src/train/config.js";
import type { MetricRecord } from "../src/train/metrics.js";
import { train } from "../src/train/trainer.js";
import { claimLine, claimSummary, mean, round } from "./claims.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 3);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const coefs = (process.env.BENCH_VF_COEFS ?? "0.5,0.05").split(",").map((s) => Number(s.trim()));
const withUnbounded = process.env.BENCH_UNBOUNDED === "1";
const steps = Math.max(1, Math.round(80 * scale));
const out = mkdtempSync(join(tmpdir(), "cohort-bench-hyper-"));

const ENV = { name: "procmaze", options: { size: 7, horizon: 32, levels: { train: 100, test: 100 } } };
const TRAIN = { steps, promptsPerStep: 8, groupSize: 4, innerIterations: 2, miniBatches: 4, lr: 1e-3 };
/** Hyper++'s PPO settings for the PPO baselines (the preset hyper_pp sets them itself). */
const PPO_ALGO = {
  advantage: { estimator: "gae", options: { gamma: 0.999, lambda: 0.95 } },
  regularizers: [{ type: "entropy", coef: 0.01 }],
};

const ARMS: Record<string, (coef: number) => Record<string, unknown>> = {
  hyper_pp: (coef) => ({
    preset: "hyper_pp",
    policy: { kind: "hyper_mlp", hidden: [64], critic: { coef, categorical: {} } },
  }),
  ppo: (coef) => ({
    preset: "ppo",
    algo: PPO_ALGO,
    policy: { kind: "categorical_mlp", hidden: [64], critic: { hidden: [64], coef } },
  }),
  hyper_unbounded: (coef) => ({
    preset: "ppo",
    algo: PPO_ALGO,
    policy: {
      kind: "hyper_mlp",
      hidden: [64],
      hyper: { manifold: "poincare", norm: "none", scaling: "none" },
      critic: { coef },
    },
  }),
};

interface RunResult {
  heldout: number;
  train: number;
  violation: number;
  approxKl: number;
  featureNormMax: number | null;
  seconds: number;
}

async function runArm(arm: string, coef: number, seed: number): Promise<RunResult> {
  const t = performance.now();
  const cfg = parseTrainConfig({
    ...(ARMS[arm] as (c: number) => Record<string, unknown>)(coef),
    outputDir: out,
    name: `${arm}-${coef}-${seed}-${Date.now()}`,
    seed,
    env: ENV,
    train: TRAIN,
    eval: { everySteps: steps, problems: 100, temperature: 1 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: () => {} });
  const ms = r.metrics.filter((m) => (m.step as number) > 0);
  const last = r.metrics.at(-1) as MetricRecord;
  const fn = ms.map((m) => m["hyper/feature_norm_max"]).filter((x): x is number => typeof x === "number");
  return {
    heldout: last.eval_return as number,
    train: last.eval_train_return as number,
    violation: mean(ms.map((m) => m["trust/violation_rate"] as number)),
    approxKl: mean(ms.map((m) => m["trust/approx_kl"] as number)),
    featureNormMax: fn.length > 0 ? Math.max(...fn) : null,
    seconds: (performance.now() - t) / 1000,
  };
}

const lines: Record<string, unknown>[] = [];

function compare(
  metric: string,
  higherIsBetter: boolean,
  ours: number[],
  base: number[],
  baselineMethod: string,
  extra: Record<string, unknown>,
) {
  lines.push(
    claimLine({
      bench: "control",
      method: "hyper_pp",
      metric,
      ours,
      base,
      baselineMethod,
      higherIsBetter,
      fields: { env: "procmaze", ...extra },
    }),
  );
}

const t0 = performance.now();
try {
  const arms = ["hyper_pp", "ppo", ...(withUnbounded ? ["hyper_unbounded"] : [])];
  for (const coef of coefs) {
    const res: Record<string, RunResult[]> = Object.fromEntries(arms.map((a) => [a, []]));
    for (let s = 0; s < seeds; s++)
      for (const arm of arms) {
        const r = await runArm(arm, coef, s);
        res[arm]?.push(r);
        process.stderr.write(
          `vf ${coef} ${arm} seed ${s}: held-out ${r.heldout.toFixed(2)}, train levels ${r.train.toFixed(2)}, violations ${r.violation.toFixed(4)}, approx-KL ${r.approxKl.toFixed(4)}${r.featureNormMax === null ? "" : `, max ‖v‖ ${r.featureNormMax.toFixed(3)}`}, ${r.seconds.toFixed(1)}s\n`,
        );
      }
    const ours = res.hyper_pp as RunResult[];
    for (const base of arms.slice(1)) {
      const b = res[base] as RunResult[];
      const extra = {
        vf_coef: coef,
        steps,
        episodes_per_step: TRAIN.promptsPerStep * TRAIN.groupSize,
        levels: ENV.options.levels,
        train_levels_return: {
          ours: round(mean(ours.map((r) => r.train))),
          baseline: round(mean(b.map((r) => r.train))),
        },
        approx_kl: {
          ours: round(mean(ours.map((r) => r.approxKl)), 5),
          baseline: round(mean(b.map((r) => r.approxKl)), 5),
        },
      };
      compare(
        "return_heldout",
        true,
        ours.map((r) => r.heldout),
        b.map((r) => r.heldout),
        base,
        extra,
      );
      compare(
        "trust_region_violation_rate",
        false,
        ours.map((r) => r.violation),
        b.map((r) => r.violation),
        base,
        extra,
      );
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
claimSummary({ bench: "control", method: "hyper_pp" }, lines, {
  seeds,
  steps,
  vf_coefs: coefs,
  seconds: round((performance.now() - t0) / 1000, 1),
});
