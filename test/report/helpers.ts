// Hand-made run directories for report tests: metrics.jsonl / samples.jsonl / config.json as the trainer
// writes them, with smooth curves plus seeded noise, so aggregation and rendering can be checked without
// training anything.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prng } from "../helpers/step-fixture.js";

export function tmpDir(prefix = "cohort-report-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Writes rows as JSONL. */
export function writeJsonl(path: string, rows: unknown[]): void {
  writeFileSync(path, rows.map((r) => `${JSON.stringify(r)}\n`).join(""));
}

export interface SyntheticRun {
  preset: string;
  seed: number;
  steps: number;
  /** Final held-out accuracy the curve approaches. */
  accuracy: number;
  evalEvery?: number;
  finished?: boolean;
  /** Seconds per step. */
  stepS?: number;
}

/** Writes a run directory `<root>/<preset>-s<seed>` with plausible curves; returns its path. */
export function writeSyntheticRun(root: string, r: SyntheticRun): string {
  const dir = join(root, `${r.preset}-s${r.seed}`);
  mkdirSync(dir, { recursive: true });
  const rand = prng(r.seed * 7919 + r.preset.length * 104729 + r.preset.charCodeAt(0));
  const evalEvery = r.evalEvery ?? 5;
  const rows: Record<string, unknown>[] = [{ step: 0, eval_accuracy: 0.05, eval_format: 0.2 }];
  const samples: Record<string, unknown>[] = [];
  for (let step = 1; step <= r.steps; step++) {
    const p = 1 - Math.exp(-step / (r.steps / 3));
    const m: Record<string, unknown> = {
      step,
      reward_mean: 0.2 + (r.accuracy + 0.5 - 0.2) * p + 0.08 * (rand() - 0.5),
      reward_std: 0.3,
      frac_reward_zero_std: 0.5 * (1 - p) + 0.1 * rand(),
      "completions/mean_length": 12 - 4 * p + rand(),
      "completions/clipped_ratio": 0.3 * (1 - p) * rand(),
      loss: 0.01 * (rand() - 0.5),
      kl: 0.02 * p + 0.002 * rand(),
      entropy: 2.5 - 1.2 * p + 0.1 * rand(),
      grad_norm: 0.5 + rand(),
      learning_rate: 1e-4,
      "clip/low_ratio": 0.01 * rand(),
      "clip/high_ratio": 0.02 * rand(),
      "clip/region_ratio": 0.03 * rand(),
      "sampler/logprob_abs_diff_mean": 1e-7,
      "tokens_per_s/sampling": 2000,
      "tokens_per_s/training": 1500,
      "time/step_s": (r.stepS ?? 0.5) * (0.9 + 0.2 * rand()),
    };
    if (step % evalEvery === 0 || step === r.steps) {
      m.eval_accuracy = 0.05 + (r.accuracy - 0.05) * p + 0.03 * (rand() - 0.5);
      m.eval_format = Math.min(1, 0.2 + 0.8 * p);
      for (let i = 0; i < 2; i++)
        samples.push({
          step,
          prompt: `${i + 3}+${step}=`,
          completion: `${i + 3 + step}`,
          answer: `${i + 3 + step}`,
          correct: i === 0,
        });
    }
    rows.push(m);
  }
  writeJsonl(join(dir, "metrics.jsonl"), rows);
  writeJsonl(join(dir, "samples.jsonl"), [
    { step: 0, prompt: "3+4=", completion: "<b>x</b>", answer: "7", correct: false },
    ...samples,
  ]);
  writeFileSync(
    join(dir, "config.json"),
    JSON.stringify({ name: `${r.preset}-s${r.seed}`, preset: r.preset, seed: r.seed, train: { steps: r.steps } }),
  );
  if (r.finished !== false) mkdirSync(join(dir, "final"), { recursive: true });
  return dir;
}
