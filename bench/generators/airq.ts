/**
 * `npm run bench:airq` (part of the generators benchmark): the ozone alert forecaster on R's airquality data
 * (src/control/airq.ts), SFT only against SFT → GRPO (preset `airq_grpo`, class-wise rewards, curriculum over the
 * 1–3 day horizon) through the real training loop, on the held-out month (September 1973).
 *
 * Per seed: `cohort pretrain --env airq` (the SFT stage, early-stopped on training days) and a GRPO run that
 * starts from it; the SFT-only numbers are the run's step-0 evaluation (the same weights and ensemble draws).
 * Metrics pooled over horizons 1–3: FAR (false alarm ratio, lower is better), POD, F1 of the alert class
 * (ozone ≥ 71 ppb) and CRPS (ppb, lower is better). The claim (FAKER-Air, arXiv 2511.22169): a lower FAR at a
 * competitive F1; here `claim_holds` = FAR lower on average (far), F1 no more than 0.05 below SFT's (f1), CRPS
 * lower (crps), both of the first two (far_at_competitive_f1). `p`: Welch's two-sided p-value over seeds
 * (src/report/stats.ts), `within_noise` = p ≥ 0.05. A second baseline, `sft_fixed`: the SFT stage without early stopping, trained for as
 * many full-batch steps as GRPO takes (BENCH_STEPS), to tell GRPO's effect from more fitting. An ablation line
 * compares GRPO with the curriculum against GRPO at the full horizon from the first step: the std of the
 * gradient norm over the last third of the steps, where both roll out 3 days (FAKER-Air's variance argument).
 *
 * Env: BENCH_SEEDS (default 10), BENCH_STEPS (GRPO steps, default 60), BENCH_ABLATION=0 skips the ablation,
 * BENCH_SFT_STEPS=N starts GRPO from an SFT stage of N steps instead of the early-stopped one.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { airqOptions } from "../../src/control/airq.js";
import { airqPretrain } from "../../src/control/airq-sft.js";
import { welchTTest } from "../../src/report/stats.js";
import { parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { train } from "../../src/train/trainer.js";
import { claimLine, claimSummary, mean, round } from "../claims.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 10);
const steps = Number(process.env.BENCH_STEPS ?? 60);
const ablation = process.env.BENCH_ABLATION !== "0";
/** SFT steps of the stage GRPO starts from; absent: early stopping (the `cohort pretrain --env airq` default). */
const sftSteps = process.env.BENCH_SFT_STEPS === undefined ? undefined : Number(process.env.BENCH_SFT_STEPS);
const out = mkdtempSync(join(tmpdir(), "cohort-bench-airq-"));

const envOptions = {
  horizon: 3,
  curriculum: { start: 1, increment: 1, everySteps: Math.max(1, Math.round(steps / 3)) },
};

async function grpo(seed: number, init: string, curriculum: boolean): Promise<MetricRecord[]> {
  const cfg = parseTrainConfig({
    name: `airq-${seed}-${curriculum ? "cur" : "fixed"}-${Date.now()}`,
    seed,
    preset: "airq_grpo",
    outputDir: out,
    policy: { kind: "categorical_mlp", hidden: [32], init },
    env: { name: "airq", options: curriculum ? envOptions : { ...envOptions, curriculum: null } },
    train: { steps, promptsPerStep: 8, groupSize: 8, innerIterations: 1, lr: 3e-3 },
    eval: { everySteps: steps, problems: 8, temperature: 0 },
    checkpoint: { everySteps: 0 },
  });
  return (await train(cfg, { log: () => {} })).metrics;
}

const std = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));
const lines: Record<string, unknown>[] = [];

function line(
  metric: string,
  ours: number[],
  base: number[],
  claim: boolean,
  extra: Record<string, unknown> = {},
  baselineMethod = "sft",
) {
  lines.push(
    claimLine({
      bench: "generators",
      method: "airq_grpo",
      metric,
      ours,
      base,
      baselineMethod,
      holds: claim,
      noiseFlag: true,
      fields: extra,
    }),
  );
}

const t0 = performance.now();
try {
  const keys = ["eval_far", "eval_pod", "eval_f1", "eval_crps", "eval_alerts_issued"] as const;
  const sft: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  const ours: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  const fixed: Record<string, number[]> = Object.fromEntries(keys.map((k) => [k, []]));
  const gnStd = { curriculum: [] as number[], fixed: [] as number[] };
  let events = 0;
  for (let s = 0; s < seeds; s++) {
    const t = performance.now();
    const dir = join(out, `sft-${s}`);
    airqPretrain(airqOptions.parse(envOptions), { out: dir, seed: s, ...(sftSteps ? { steps: sftSteps } : {}) });
    const long = airqPretrain(airqOptions.parse(envOptions), { out: join(out, `sft-fixed-${s}`), seed: s, steps });
    for (const k of keys) (fixed[k] as number[]).push(long.metrics[k] as number);
    const m = await grpo(s, join(dir, "policy.safetensors"), true);
    const first = m[0] as MetricRecord;
    const last = m.at(-1) as MetricRecord;
    events = first.eval_alert_events as number;
    for (const k of keys) {
      (sft[k] as number[]).push(first[k] as number);
      (ours[k] as number[]).push(last[k] as number);
    }
    // the steps where both runs roll out the full horizon (the curriculum's last phase)
    const gn = (ms: MetricRecord[]) =>
      std(
        ms
          .filter((x) => x.grad_norm !== undefined && (x.step as number) > (2 * steps) / 3)
          .map((x) => x.grad_norm as number),
      );
    gnStd.curriculum.push(gn(m));
    if (ablation) gnStd.fixed.push(gn(await grpo(s, join(dir, "policy.safetensors"), false)));
    process.stderr.write(
      `seed ${s}: FAR ${(first.eval_far as number).toFixed(3)} → ${(last.eval_far as number).toFixed(3)}, F1 ${(first.eval_f1 as number).toFixed(3)} → ${(last.eval_f1 as number).toFixed(3)}, CRPS ${(first.eval_crps as number).toFixed(2)} → ${(last.eval_crps as number).toFixed(2)}, ${((performance.now() - t) / 1000).toFixed(1)}s\n`,
    );
  }
  const extra = {
    steps,
    sft_steps: sftSteps ?? "early stopping",
    held_out: "September 1973, horizons 1-3 pooled",
    alert_events: events,
  };
  const far = mean(ours.eval_far as number[]) < mean(sft.eval_far as number[]);
  const f1 = mean(ours.eval_f1 as number[]) >= mean(sft.eval_f1 as number[]) - 0.05;
  line("far", ours.eval_far as number[], sft.eval_far as number[], far, extra);
  line("f1", ours.eval_f1 as number[], sft.eval_f1 as number[], f1, { ...extra, competitive_within: 0.05 });
  line(
    "pod",
    ours.eval_pod as number[],
    sft.eval_pod as number[],
    mean(ours.eval_pod as number[]) >= mean(sft.eval_pod as number[]) - 0.05,
    extra,
  );
  line(
    "crps",
    ours.eval_crps as number[],
    sft.eval_crps as number[],
    mean(ours.eval_crps as number[]) < mean(sft.eval_crps as number[]),
    extra,
  );
  line(
    "alerts_issued",
    ours.eval_alerts_issued as number[],
    sft.eval_alerts_issued as number[],
    mean(ours.eval_alerts_issued as number[]) < mean(sft.eval_alerts_issued as number[]),
    extra,
  );
  line("far_at_competitive_f1", ours.eval_far as number[], sft.eval_far as number[], far && f1, extra);
  const sftFixed = `sft without early stopping (${steps} steps)`;
  const farF = mean(ours.eval_far as number[]) < mean(fixed.eval_far as number[]);
  const f1F = mean(ours.eval_f1 as number[]) >= mean(fixed.eval_f1 as number[]) - 0.05;
  line("far", ours.eval_far as number[], fixed.eval_far as number[], farF, extra, sftFixed);
  line("f1", ours.eval_f1 as number[], fixed.eval_f1 as number[], f1F, extra, sftFixed);
  line(
    "crps",
    ours.eval_crps as number[],
    fixed.eval_crps as number[],
    mean(ours.eval_crps as number[]) < mean(fixed.eval_crps as number[]),
    extra,
    sftFixed,
  );
  line("far_at_competitive_f1", ours.eval_far as number[], fixed.eval_far as number[], farF && f1F, extra, sftFixed);
  if (ablation) {
    const w = welchTTest(gnStd.curriculum, gnStd.fixed);
    const l = {
      bench: "generators",
      method: "airq_grpo",
      metric: "grad_norm_std",
      ours: round(mean(gnStd.curriculum)),
      baseline: round(mean(gnStd.fixed)),
      baseline_method: "airq_grpo without the curriculum (horizon 3 from step 1)",
      steps_compared: `${Math.floor((2 * steps) / 3) + 1}..${steps} (horizon 3 in both)`,
      seeds,
      claim_holds: mean(gnStd.curriculum) < mean(gnStd.fixed),
      ...(w ? { p: round(w.p) } : {}),
      ours_per_seed: gnStd.curriculum.map((x) => round(x)),
      baseline_per_seed: gnStd.fixed.map((x) => round(x)),
    };
    lines.push(l);
    console.log(JSON.stringify(l));
  }
} finally {
  rmSync(out, { recursive: true, force: true });
}
claimSummary({ bench: "generators", method: "airq_grpo" }, lines, {
  seeds,
  steps,
  seconds: round((performance.now() - t0) / 1000, 1),
});
