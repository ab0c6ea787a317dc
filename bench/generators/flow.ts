/**
 * `npm run bench:flow`: Flow-GRPO (preset `flow_grpo`) against VGPO (preset `vgpo`) on the 8×8 digits generator,
 * through the real training loop (policy flow_sde on env digits_flow, src/generators).
 *
 * 1. `pretrainFlow` trains the velocity network by flow matching (and the reward classifier) twice: a `weak`
 *    start (150 steps: blurry digits the classifier reads ~2/3 of the time, room to learn) and a `strong` one
 *    (1000 steps: ~97%, so most groups are read correctly by every image and carry no relative signal).
 * 2. For each start and seed, both methods fine-tune the same generator with the same budget: S steps of
 *    8 groups × 8 images (a group: one asked digit, one start noise), 10 SDE steps (noise level 0.7), reward = 1
 *    when the classifier reads the asked digit (binary), lr 3e-4, 2 minibatches. Flow-GRPO's env skips the
 *    projections it does not read (`process: false`; its returns are the same).
 * 3. Metrics, on 200 images (20 per digit) from the Euler ODE sampler with fixed start noise, before (the
 *    pre-trained generator) and after each run: accuracy and p(c|x) (the reward), contrast, diversity (mean
 *    distance between images of a digit) and nn_distance (to the nearest real digit; lower is better), see
 *    src/generators/quality.ts; and the group signal: the first step whose mean |advantage| over the step's
 *    denoising steps is below 0.1 (`signal_vanish_step`; null = never), the fraction of groups with equal
 *    rewards, the mean |A| and the gradient norm over the last 5 steps.
 *
 * One JSON line per metric and start: `{"bench":"generators","method","metric","ours","baseline","claim_holds",…}`;
 * for comparisons ours = VGPO and baseline = Flow-GRPO (means over seeds, Welch's two-sided p, `noise` = p ≥ 0.05:
 * the difference is within seed noise), for gains ours = after and baseline = before. The claims (VGPO paper):
 * higher reward and quality than Flow-GRPO, and a signal that does not vanish when a group's rewards are equal.
 *
 * Env: FLOW_BENCH_SEEDS (weak start, default 8), FLOW_BENCH_STEPS (default 100), FLOW_BENCH_STRONG_SEEDS (default 5),
 * FLOW_BENCH_STRONG_STEPS (default 50), FLOW_BENCH_FULL=1 (12 and 8 seeds, 200 and 100 steps),
 * FLOW_BENCH_KEEP (a directory to keep the runs and generators in, for `cohort report`).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gaussian } from "../../src/control/policy.js";
import { loadClassifier, loadGenerator, pretrainFlow } from "../../src/generators/pretrain.js";
import { type SampleQuality, sampleOde, sampleQuality } from "../../src/generators/quality.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { welchTTest } from "../../src/report/stats.js";
import { Rng } from "../../src/task/rng.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { train } from "../../src/train/trainer.js";

const full = process.env.FLOW_BENCH_FULL === "1";
const num = (k: string, d: number) => Number(process.env[k] ?? d);
const STARTS = [
  {
    start: "weak",
    pretrainSteps: 150,
    seeds: num("FLOW_BENCH_SEEDS", full ? 12 : 8),
    steps: num("FLOW_BENCH_STEPS", full ? 200 : 100),
  },
  {
    start: "strong",
    pretrainSteps: 1000,
    seeds: num("FLOW_BENCH_STRONG_SEEDS", full ? 8 : 5),
    steps: num("FLOW_BENCH_STRONG_STEPS", full ? 100 : 50),
  },
];
const keep = process.env.FLOW_BENCH_KEEP;
const tmp = mkdtempSync(join(tmpdir(), "cohort-bench-flow-"));
const out = keep ?? tmp;
const VANISH = 0.1;
const METHODS = ["flow_grpo", "vgpo"] as const;

const t0 = performance.now();
const log = (s: string) => process.stderr.write(`${s}\n`);
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const round = (x: number, d = 4) => Number(x.toFixed(d));
const lines: Record<string, unknown>[] = [];
function emit(line: Record<string, unknown>) {
  lines.push(line);
  console.log(JSON.stringify({ bench: "generators", ...line }));
}

// the fixed evaluation set: 20 images per digit from seeded start noise
const evalClasses = Int32Array.from({ length: 200 }, (_, i) => i % 10);
const evalRng = Rng.fromSeed(12345);
const evalStart = Float64Array.from({ length: 200 * 64 }, () => gaussian(evalRng));

interface RunOut {
  q: SampleQuality;
  vanish: number | null;
  equalGroups: number;
  lateGrad: number;
  lateAbsAdv: number;
}

try {
  for (const { start, pretrainSteps, seeds, steps } of STARTS) {
    const gen = join(out, `generator-${start}`);
    const pr = pretrainFlow({ out: gen, steps: pretrainSteps, seed: 0 });
    log(
      `${start} start: ${pretrainSteps} flow-matching steps, loss ${pr.finalLoss.toFixed(4)}, classifier held-out accuracy ${(100 * pr.classifierAccuracy).toFixed(1)}% (${((performance.now() - t0) / 1000).toFixed(0)}s)`,
    );
    const classifier = loadClassifier(gen);
    const quality = (dir: string | null): SampleQuality => {
      const net = loadGenerator(gen);
      try {
        if (dir !== null) {
          const { tensors } = readSafetensors(join(dir, "policy.safetensors"));
          net.load(Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k.replace(/^policy\./, ""), t])));
          for (const t of Object.values(tensors)) t.dispose();
        }
        return sampleQuality(sampleOde(net, evalClasses, evalStart, 10), evalClasses, classifier);
      } finally {
        net.dispose();
      }
    };
    const before = quality(null);
    log(`${start} before: ${JSON.stringify(before)}`);
    const res: Record<string, RunOut[]> = { flow_grpo: [], vgpo: [] };
    for (let s = 0; s < seeds; s++)
      for (const method of METHODS) {
        const t = performance.now();
        const cfg = parseTrainConfig({
          name: `${start}-${method}-${s}`,
          preset: method,
          seed: s,
          outputDir: out,
          policy: { kind: "flow_sde", sde: { noiseLevel: 0.7 } },
          env: {
            name: "digits_flow",
            options: { generator: gen, steps: 10, reward: { classScore: "correct" }, process: method === "vgpo" },
          },
          train: { steps, promptsPerStep: 8, groupSize: 8, miniBatches: 2, lr: 3e-4, maxGradNorm: 1 },
          eval: { everySteps: steps, problems: 16, temperature: 0, logSamples: 16 },
          checkpoint: { everySteps: 0 },
        });
        const r = await train(cfg, { log: () => {} });
        const ms = r.metrics.filter((m) => (m.step as number) > 0 && m["advantage/abs_mean"] !== undefined);
        const vanishAt = ms.find((m) => (m["advantage/abs_mean"] as number) < VANISH);
        const late = ms.slice(-5);
        const o: RunOut = {
          q: quality(join(r.runDir, "final")),
          vanish: vanishAt === undefined ? null : (vanishAt.step as number),
          equalGroups: mean(late.map((m) => m["groups/equal_reward"] as number)),
          lateGrad: mean(late.map((m) => m.grad_norm as number)),
          lateAbsAdv: mean(late.map((m) => m["advantage/abs_mean"] as number)),
        };
        (res[method] as RunOut[]).push(o);
        log(
          `${start} ${method} seed ${s}: accuracy ${o.q.accuracy.toFixed(3)} (before ${before.accuracy.toFixed(3)}), diversity ${o.q.diversity.toFixed(3)}, vanish step ${o.vanish}, late |A| ${o.lateAbsAdv.toFixed(3)}, late grad ${o.lateGrad.toFixed(4)} (${((performance.now() - t) / 1000).toFixed(0)}s)`,
        );
      }

    // gains over the pre-trained generator, per method
    for (const method of METHODS) {
      const after = (res[method] as RunOut[]).map((o) => o.q.accuracy);
      emit({
        method,
        metric: "reward_gain",
        start,
        ours: round(mean(after)),
        baseline: round(before.accuracy),
        claim_holds: mean(after) > before.accuracy,
        what: "classifier accuracy of 200 ODE samples after (ours) vs before (baseline) fine-tuning",
        seeds,
        steps,
        ours_per_seed: after.map((x) => round(x)),
      });
    }
    // VGPO against Flow-GRPO; `higher` says which direction is better
    const cmp: [keyof SampleQuality, boolean, string][] = [
      ["accuracy", true, "reward: the classifier reads the asked digit"],
      ["prob", true, "p(c|x) of the asked digit"],
      ["contrast", true, "aesthetic-like: mean |pixel|"],
      ["diversity", true, "mean distance between images of a digit"],
      ["nn_distance", false, "distance to the nearest real digit (lower is better)"],
    ];
    for (const [metric, higher, what] of cmp) {
      const ours = (res.vgpo as RunOut[]).map((o) => o.q[metric]);
      const base = (res.flow_grpo as RunOut[]).map((o) => o.q[metric]);
      const w = welchTTest(ours, base);
      emit({
        method: "vgpo",
        metric,
        start,
        ours: round(mean(ours)),
        baseline: round(mean(base)),
        baseline_method: "flow_grpo",
        claim_holds: higher ? mean(ours) >= mean(base) : mean(ours) <= mean(base),
        ...(w ? { p: round(w.p), noise: w.p >= 0.05 } : {}),
        before: round(before[metric]),
        what,
        seeds,
        ours_per_seed: ours.map((x) => round(x)),
        baseline_per_seed: base.map((x) => round(x)),
      });
    }
    // the group signal
    for (const method of METHODS) {
      const v = (res[method] as RunOut[]).map((o) => o.vanish);
      emit({
        method,
        metric: "signal_vanish_step",
        start,
        ours: v.every((x) => x === null) ? null : mean(v.map((x) => x ?? steps + 1)),
        baseline: null,
        claim_holds: method === "vgpo" ? v.every((x) => x === null) : null,
        what: `first step with mean |A| < ${VANISH}, mean over seeds (a seed that never vanishes counts ${steps + 1}; null: no seed vanished within ${steps} steps)`,
        per_seed: v,
        late_equal_reward_groups: round(mean((res[method] as RunOut[]).map((o) => o.equalGroups))),
      });
    }
    for (const [metric, key] of [
      ["late_abs_advantage", "lateAbsAdv"],
      ["late_grad_norm", "lateGrad"],
    ] as const) {
      const ours = (res.vgpo as RunOut[]).map((o) => o[key]);
      const base = (res.flow_grpo as RunOut[]).map((o) => o[key]);
      const w = welchTTest(ours, base);
      emit({
        method: "vgpo",
        metric,
        start,
        ours: round(mean(ours)),
        baseline: round(mean(base)),
        baseline_method: "flow_grpo",
        claim_holds: mean(ours) > mean(base),
        ...(w ? { p: round(w.p), noise: w.p >= 0.05 } : {}),
        what: "mean over the last 5 steps (the update signal that remains)",
        seeds,
      });
    }
  }
} finally {
  if (keep === undefined) rmSync(tmp, { recursive: true, force: true });
  else log(`runs and generators kept in ${keep}`);
}
const held = lines.filter((l) => l.claim_holds === true).length;
const judged = lines.filter((l) => typeof l.claim_holds === "boolean").length;
console.log(
  JSON.stringify({
    bench: "generators",
    summary: true,
    claims_judged: judged,
    claim_holds: held,
    claim_fails: judged - held,
    starts: STARTS,
    seconds: round((performance.now() - t0) / 1000, 1),
  }),
);
