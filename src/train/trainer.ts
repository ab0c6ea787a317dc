/**
 * The GRPO training loop (ALGORITHMS.md §A.1), over the parts of a run (context.ts, built by setup.ts):
 *
 * ```
 * check everything (config, model, data), then open the run directory (fresh, or resume a checkpoint)
 * evaluate at step 0
 * for step in start+1 … steps:
 *   col     = source.collect(step)          prompts → budgets → rollouts → rewards   (sources.ts)
 *   metrics = update(run, step, col)        advantages → μ passes of updates → stateful components step
 *   evaluate every eval.everySteps (samples.jsonl: held-out rows and the step's rollout table); log metrics;
 *   checkpoint every checkpoint.everySteps or on a stop request
 * export the final model
 * ```
 *
 * The loop does not know which policy, sampler, environment, forward pass or process group it runs with: the
 * rollout source, the update, the forward backend and the gradient sync are parts (context.ts `LoopRun`,
 * parts.ts, sources.ts); a language model (setup.ts) and a control policy (src/control/run.ts) are runs alike.
 * `TrainOptions.source` replaces a language-model run's rollout source.
 * @module
 */
import { join } from "node:path";
import { CohortError } from "../errors.js";
import type { ProcessGroup } from "../parallel/index.js";
import { fallbackHint, restoreRun, saveRun } from "./checkpoint.js";
import type { TrainConfig } from "./config.js";
import type { LoopRun, Run } from "./context.js";
import { PeakRssMeter } from "./memory.js";
import { type MetricRecord, MetricsLog } from "./metrics.js";
import { checkFiniteWeights } from "./preflight.js";
import { appendLines, openRun, planRun } from "./rundir.js";
import { setupLoop } from "./setup.js";
import type { RolloutSource } from "./sources.js";

export { requestSeed } from "./sources.js";

export interface TrainOptions {
  /**
   * Continue the run in the run directory from its latest checkpoint (only a checkpoint of the same run id,
   * and only with the same config apart from `RESUME_CHANGEABLE` keys and `allowConfigChange`; src/train/rundir.ts).
   */
  resume?: boolean;
  /** A fresh start in a directory that holds a run moves that run into `<run>/.previous-<time>/` instead of refusing. */
  overwrite?: boolean;
  /** With `resume`: config keys (or prefixes) allowed to differ from the saved run; recorded in history.jsonl. */
  allowConfigChange?: readonly string[];
  /** Called after each step with its metrics (progress bars, tests). */
  onStep?: (m: MetricRecord) => void;
  /** Plain log lines (diagnostics, checkpoints). Default: stderr. */
  log?: (line: string) => void;
  /** Stop after this step even if the config asks for more (tests of interruption). */
  stopAfterStep?: number;
  /** Set to true (e.g. on SIGINT) to save a checkpoint and stop after the current step. */
  stopSignal?: { stop: boolean };
  /** Data parallel: this process is one rank of `dist` (src/parallel); rank 0 writes logs and checkpoints. */
  dist?: ProcessGroup;
  /** Another rollout source (sources.ts) in place of the config's, made from a language-model run's other parts. */
  source?: (run: Run) => RolloutSource;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  stoppedEarly: boolean;
  metrics: MetricRecord[];
}

/** Runs (or resumes) a training run; returns when it finishes or is stopped. */
export async function train(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const run = await setupLoop(cfg, log, opts.dist);
  if (opts.source) {
    await run.source.close?.();
    run.source = opts.source(run as Run);
  }
  return loop(run, cfg, opts, log);
}

async function loop<C>(
  run: LoopRun<C>,
  cfg: TrainConfig,
  opts: TrainOptions,
  log: (l: string) => void,
): Promise<TrainResult> {
  const { sync } = run;
  try {
    // ---- every check, the model-dependent ones included, before the run directory is touched ------------
    run.check();
    const plan = planRun(run.runDir, cfg, opts, log);
    let start = 0;
    if (plan.kind === "resume" && plan.checkpoint !== null) {
      const ck = plan.checkpoint;
      try {
        start = restoreRun(run, ck);
      } catch (e) {
        if (e instanceof CohortError && !/older checkpoint|No older checkpoint/.test(e.message))
          throw new CohortError(`${e.message}.${fallbackHint(ck, run.runDir)}`);
        throw e;
      }
      checkFiniteWeights(run.trainable(), `checkpoint ${ck}`);
    }
    sync.barrier(); // every rank has read the run directory before rank 0 changes it
    // ---- from here on the run directory is written --------------------------------------------------------
    if (sync.isMain) openRun(run.runDir, plan, cfg, start);
    const metricsLog = new MetricsLog(join(run.runDir, "metrics.jsonl"));
    const rankMetrics: MetricRecord[] = []; // ranks other than 0 keep their records in memory
    const writeSamples = (rows: Record<string, unknown>[]) =>
      appendLines(
        join(run.runDir, "samples.jsonl"),
        rows.map((r) => JSON.stringify(r)),
      );
    if (plan.kind === "resume") {
      const changed = plan.changed.map((c) => c.key).join(", ");
      log(
        plan.checkpoint !== null
          ? `resumed from ${plan.checkpoint} (step ${start}), run ${plan.runId}${changed ? `; changed: ${changed}` : ""}`
          : `restarted run ${plan.runId} from step 0`,
      );
    }
    const evalEvery = cfg.eval.everySteps;
    if (start === 0 && evalEvery > 0 && sync.isMain) {
      const ev = await run.evaluate(0);
      metricsLog.append({ step: 0, eval_accuracy: ev.accuracy, eval_format: ev.format, ...ev.metrics });
      writeSamples(ev.samples);
      opts.onStep?.({ step: 0, eval_accuracy: ev.accuracy, ...ev.metrics });
    }
    let step = start;
    let stoppedEarly = false;
    const rss = new PeakRssMeter();
    const last = Math.min(cfg.train.steps, opts.stopAfterStep ?? Number.POSITIVE_INFINITY);
    run.source.begin?.(last);
    while (step < last) {
      // let signal handlers (Ctrl-C) and timers run between steps: a step is mostly synchronous native work
      await new Promise((r) => setImmediate(r));
      step++;
      const t0 = performance.now();
      rss.begin();
      const col = await run.source.collect(step); // pushes the weights to rollout workers first, when due
      const m = run.update(step, col, t0);
      m["mem/peak_rss_gb"] = rss.end().gb; // this process's peak over the step (src/train/memory.ts)
      Object.assign(m, run.source.metrics?.() ?? {}); // pool/… metrics, time/rollout_wait_s
      if (evalEvery > 0 && sync.isMain && (step % evalEvery === 0 || step === cfg.train.steps)) {
        const ev = await run.evaluate(step);
        Object.assign(m, { eval_accuracy: ev.accuracy, eval_format: ev.format, ...ev.metrics });
        writeSamples([...ev.samples, ...(run.rollouts?.() ?? [])]); // held-out rows, then the step's rollout table
      }
      if (sync.isMain) metricsLog.append(m);
      else rankMetrics.push(m);
      opts.onStep?.(m);
      // every rank stops after the same step (a stop request reaches them at different moments)
      const stopping = sync.any(opts.stopSignal?.stop === true);
      const every = cfg.checkpoint.everySteps;
      if ((every > 0 && step % every === 0) || step === cfg.train.steps || stopping) {
        const d = saveRun(run, step, plan.runId);
        if (stopping && d !== "") log(`saved ${d}`);
      }
      if (stopping) {
        stoppedEarly = true;
        break;
      }
    }
    if (step === cfg.train.steps && sync.isMain) run.exportTo(join(run.runDir, "final"));
    return {
      runDir: run.runDir,
      steps: step,
      stoppedEarly: stoppedEarly || step < cfg.train.steps,
      metrics: sync.isMain ? metricsLog.read() : rankMetrics,
    };
  } finally {
    await run.dispose();
  }
}
