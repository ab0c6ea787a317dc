/**
 * Progress for `cohort train`: a bar on a terminal, plain log lines otherwise; both show the step, the reward,
 * the latest held-out accuracy, the elapsed time, the ETA and the rollout and training throughput.
 * @module
 */
import cliProgress from "cli-progress";
import { formatRate, Progress } from "../train/clock.js";
import type { MetricRecord } from "../train/metrics.js";

export interface ProgressReporter {
  update: (m: MetricRecord) => void;
  log: (line: string) => void;
  stop: () => void;
}

const pct = (x: unknown) => (typeof x === "number" ? `${(100 * x).toFixed(1)}%` : "–");
const num = (x: unknown) => (typeof x === "number" ? x.toFixed(3) : "–");
/** The step's mean reward: a language-model run's `reward_mean`, a control run's mean episode return. */
const rewardOf = (m: MetricRecord) => num(m.reward_mean ?? m.episode_return);

/** `rollout 1.2k tok/s, train 3.4k tok/s` of a step's metrics. */
export function throughput(m: MetricRecord): string {
  // a control run has episodes, not tokens: its sampling and training seconds
  if (m.episode_return !== undefined && m["tokens_per_s/sampling"] === undefined)
    return `sampling ${num(m["time/sampling_s"])}s, train ${num(m["time/train_s"])}s`;
  const rate = (k: string) => (typeof m[k] === "number" ? formatRate(m[k] as number) : "– tok/s");
  return `rollout ${rate("tokens_per_s/sampling")}, train ${rate("tokens_per_s/training")}`;
}

export function progressReporter(total: number, quiet = false): ProgressReporter {
  let lastAcc: unknown;
  const clock = new Progress(total);
  if (process.stderr.isTTY && !quiet) {
    const bar = new cliProgress.SingleBar(
      {
        format:
          "step {value}/{total} |{bar}| reward {reward} | eval acc {acc} | {rate} | elapsed {elapsed}, ETA {left}",
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0, { reward: "–", acc: "–", rate: "–", elapsed: "0s", left: "–" });
    let stopped = false;
    return {
      update(m) {
        if (m.eval_accuracy !== undefined) lastAcc = m.eval_accuracy;
        clock.update(m.step as number);
        const [elapsed, left] = clock.text().replace("elapsed ", "").split(", ETA ") as [string, string];
        bar.update(m.step as number, {
          reward: rewardOf(m),
          acc: pct(lastAcc),
          rate: (m.step as number) > 0 ? throughput(m) : "–",
          elapsed,
          left,
        });
      },
      log(line) {
        process.stderr.write(`\r\x1b[K${line}\n`);
      },
      stop() {
        if (!stopped) bar.stop();
        stopped = true;
      },
    };
  }
  return {
    update(m) {
      if (quiet) return;
      if (m.eval_accuracy !== undefined) lastAcc = m.eval_accuracy;
      clock.update(m.step as number);
      const t = typeof m["time/step_s"] === "number" ? ` ${(m["time/step_s"] as number).toFixed(1)}s` : "";
      const rate = (m.step as number) > 0 ? ` | ${throughput(m)}` : "";
      process.stderr.write(
        `step ${m.step}/${total} reward ${rewardOf(m)} eval_acc ${pct(lastAcc)} kl ${num(m.kl)} entropy ${num(m.entropy)}${t}${rate} | ${clock.text()}\n`,
      );
    },
    log(line) {
      process.stderr.write(`${line}\n`);
    },
    stop() {},
  };
}
