/**
 * The supervised stage of the ozone forecaster (`cohort pretrain --env airq --out DIR`): a categorical MLP over
 * the ozone bins trained by cross-entropy on every day-1 forecast of the training period (May–August, observed
 * target), full batch, AdamW. The GRPO run starts from its weights (`policy.init: DIR/policy.safetensors`).
 * arXiv 2511.22169 [CODE]: SFT first, then GRPO; the loss, schedule and sizes here are design choices.
 *
 * Writes DIR/policy.safetensors (`policy.*`, the layout of a control run's export), DIR/policy.json (the
 * `policy:` and `env:` sections that rebuild it) and DIR/sft.json (the command, the settings and the held-out
 * metrics of `evaluateAirq`).
 * @module
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { writeSafetensors } from "../io/safetensors.js";
import { AdamW, manualSeed, noGrad, setNumThreads, type Tensor, tensor, tidy } from "../tensor/index.js";
import {
  type AirqOptions,
  airqEvalSeed,
  airqFeatures,
  airqStats,
  evaluateAirq,
  loadAirquality,
  NUM_BINS,
  OBS_DIM,
  ozoneBin,
  trainIssueDays,
} from "./airq.js";
import type { ControlPretrainOptions, ControlPretrainResult } from "./env.js";
import { CategoricalMLP } from "./policy.js";

export const SFT_DEFAULTS = { seed: 0, steps: 300, lr: 1e-2, hidden: 32, weightDecay: 1e-2 } as const;

/** Observations [n, OBS_DIM] and target bins [n] of the day-1 forecasts of the training period. */
export function airqSftData(): { obs: Float64Array; bins: Float64Array; n: number } {
  const days = loadAirquality();
  const st = airqStats(days);
  const issue = trainIssueDays(days, 1);
  const obs = new Float64Array(issue.length * OBS_DIM);
  const bins = new Float64Array(issue.length);
  issue.forEach((t, i) => {
    airqFeatures(days, st, t, 1, [], obs.subarray(i * OBS_DIM, (i + 1) * OBS_DIM));
    bins[i] = ozoneBin(days[t + 1]?.ozone as number);
  });
  return { obs, bins, n: issue.length };
}

/**
 * Trains the forecaster by cross-entropy, full batch, for `steps` steps; returns the policy (owned by the caller),
 * its final training NLL and, with `validate`, the NLL of the held-back days after every step.
 */
export function trainAirqSft(o: {
  seed: number;
  steps: number;
  lr: number;
  hidden: number;
  weightDecay: number;
  /** Hold out every 5th day to score the validation NLL after each step; default: fit all. */
  validate?: boolean;
}): { policy: CategoricalMLP; nll: number; validNll: number[] } {
  manualSeed(o.seed);
  const policy = new CategoricalMLP(OBS_DIM, NUM_BINS, { hidden: [o.hidden] });
  const all = airqSftData();
  const { n } = all;
  // validation rows: every 5th day (interleaved, so that both sets span May–August)
  const order = o.validate
    ? [
        ...Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 !== 4),
        ...Array.from({ length: n }, (_, i) => i).filter((i) => i % 5 === 4),
      ]
    : Array.from({ length: n }, (_, i) => i);
  const obs = new Float64Array(n * OBS_DIM);
  const bins = new Float64Array(n);
  order.forEach((r, i) => {
    obs.set(all.obs.subarray(r * OBS_DIM, (r + 1) * OBS_DIM), i * OBS_DIM);
    bins[i] = all.bins[r] as number;
  });
  const fit = o.validate ? order.filter((i) => i % 5 !== 4).length : n;
  const x = tensor(obs.subarray(0, fit * OBS_DIM), { shape: [fit, OBS_DIM], dtype: "f32" });
  const y = tensor(bins.subarray(0, fit), { shape: [fit], dtype: "i64" });
  const xv = tensor(obs.subarray(fit * OBS_DIM), { shape: [n - fit, OBS_DIM], dtype: "f32" });
  const yv = tensor(bins.subarray(fit), { shape: [n - fit], dtype: "i64" });
  const opt = new AdamW(policy.parameters(), { lr: o.lr, weightDecay: o.weightDecay });
  let nll = Number.NaN;
  const validNll: number[] = [];
  try {
    for (let s = 0; s < o.steps; s++) {
      opt.zeroGrad();
      tidy(() => {
        const loss = policy.logProb(x, y).lp.mean().neg();
        loss.backward();
        nll = loss.item();
      });
      opt.step(o.lr);
      if (fit < n) validNll.push(noGrad(() => tidy(() => policy.logProb(xv, yv).lp.mean().neg().item())));
    }
  } finally {
    for (const t of [x, y, xv, yv]) t.dispose();
    opt.dispose();
  }
  return { policy, nll, validNll };
}

/**
 * The number of SFT steps: fit 4 of every 5 training days for up to `maxSteps` and keep the step count with the
 * lowest NLL on the 5th (early stopping; the held-out month is not used).
 */
export function selectSftSteps(o: { seed: number; maxSteps: number; lr: number; hidden: number; weightDecay: number }) {
  const r = trainAirqSft({ ...o, steps: o.maxSteps, validate: true });
  r.policy.dispose();
  const best = r.validNll.indexOf(Math.min(...r.validNll));
  return { steps: best + 1, validNll: r.validNll[best] as number };
}

/** `cohort pretrain --env airq`: SFT, save, evaluate on the held-out month. */
export function airqPretrain(env: AirqOptions, opts: ControlPretrainOptions): ControlPretrainResult {
  setNumThreads(1);
  const s: { seed: number; steps: number; lr: number; hidden: number; weightDecay: number } = {
    seed: opts.seed ?? SFT_DEFAULTS.seed,
    steps: opts.steps ?? SFT_DEFAULTS.steps,
    lr: opts.lr ?? SFT_DEFAULTS.lr,
    hidden: opts.hidden ?? SFT_DEFAULTS.hidden,
    weightDecay: SFT_DEFAULTS.weightDecay,
  };
  // --steps N trains exactly N steps; without it, early stopping on every 5th training day
  const chosen =
    opts.steps === undefined
      ? selectSftSteps({ ...s, maxSteps: SFT_DEFAULTS.steps })
      : { steps: s.steps, validNll: Number.NaN };
  s.steps = chosen.steps;
  const { policy, nll } = trainAirqSft(s);
  try {
    const metrics: Record<string, number> = {
      train_nll: nll,
      ...(Number.isNaN(chosen.validNll) ? {} : { valid_nll: chosen.validNll }),
      ...evaluateAirq(policy, env, airqEvalSeed(s.seed)),
    };
    mkdirSync(opts.out, { recursive: true });
    const st: Record<string, Tensor> = Object.fromEntries(
      policy.namedParameters().map(([k, t]) => [`policy.${k}`, noGrad(() => t.detach().clone())]),
    );
    try {
      writeSafetensors(join(opts.out, "policy.safetensors"), st, { format: "pt" });
    } finally {
      for (const t of Object.values(st)) t.dispose();
    }
    const policyCfg = { kind: "categorical_mlp", hidden: [s.hidden] };
    writeFileSync(
      join(opts.out, "policy.json"),
      `${JSON.stringify({ policy: policyCfg, env: { name: "airq", options: env } }, null, 2)}\n`,
    );
    writeFileSync(
      join(opts.out, "sft.json"),
      `${JSON.stringify({ command: opts.command ?? null, settings: s, metrics }, null, 2)}\n`,
    );
    opts.log?.(
      `airq SFT: ${s.steps} steps, train NLL ${nll.toFixed(4)}, held-out F1 ${(metrics.eval_f1 as number).toFixed(3)}`,
    );
    return { steps: s.steps, metrics };
  } finally {
    policy.dispose();
  }
}
