/**
 * `npm run bench:agent`: agent training on the maze from the shipped `models/maze-tiny`, with the `gigpo` preset
 * and, on the same budget (steps, tasks per step, episodes per task, learning rate, seed), with `grpo`. Both
 * start from the same weights; the held-out success rate (one episode per held-out maze, fixed seeds) is
 * measured at the start and after training, sampled at the training temperature (1) and greedy.
 * `grpo` runs without its KL term (β = 0.04 in the preset) so both runs do the same work per step; every other
 * field is the preset's. Settings: BENCH_STEPS (default 30), BENCH_TASKS (tasks per step, 8), BENCH_G
 * (episodes per task, 8), BENCH_LR (3e-4), BENCH_EVAL (held-out mazes, 200), BENCH_SEED (0).
 * Last line: JSON `{"bench":"agent-maze","gigpo":{"start","end",…},"grpo":{…},…}`; start/end are the sampled
 * success rates, `*_greedy` the greedy ones.
 */
// GiGPO: arXiv 2505.10978 [CODE]; GRPO: arXiv 2402.03300 [CODE-FW]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { evaluateEnvModel } from "../src/env/evaluate.js";
import { parseTrainConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";

const steps = Number(process.env.BENCH_STEPS ?? 30);
const tasksPerStep = Number(process.env.BENCH_TASKS ?? 8);
const G = Number(process.env.BENCH_G ?? 8);
const lr = Number(process.env.BENCH_LR ?? 3e-4);
const evalTasks = Number(process.env.BENCH_EVAL ?? 200);
const seed = Number(process.env.BENCH_SEED ?? 0);
const modelDir = resolve("models/maze-tiny");
/** The environment models/maze-tiny was pre-trained on (see its PRETRAIN.md). */
const ENV = { name: "maze", options: {} };

const root = mkdtempSync(join(tmpdir(), "cohort-bench-agent-"));
const log = (line: string) => process.stderr.write(`${line}\n`);

function measure(dir: string): { sampled: number; greedy: number } {
  const [s, g] = evaluateEnvModel(dir, ENV, { problems: evalTasks, seed, temperatures: [1, 0] });
  return { sampled: s?.successRate as number, greedy: g?.successRate as number };
}

try {
  const start = measure(modelDir);
  log(
    `start: held-out success ${(100 * start.sampled).toFixed(1)}% sampled, ${(100 * start.greedy).toFixed(1)}% greedy`,
  );
  const out: Record<string, Record<string, number>> = {};
  for (const preset of ["gigpo", "grpo"]) {
    const cfg = parseTrainConfig({
      name: preset,
      seed,
      outputDir: root,
      model: { path: modelDir },
      env: ENV,
      preset,
      algo: preset === "grpo" ? { regularizers: [] } : {},
      train: { steps, promptsPerStep: tasksPerStep, groupSize: G, lr },
      sampling: { temperature: 1 },
      eval: { everySteps: 0 },
      checkpoint: { everySteps: 0 },
    });
    const t0 = performance.now();
    const r = await train(cfg, {
      log,
      onStep: (m) => {
        const step = m.step as number;
        if (typeof m.loss === "number" && (step % 5 === 0 || step === steps)) {
          log(
            `${preset} step ${m.step}: train success ${(100 * (m["env/success_rate"] as number)).toFixed(1)}%, ` +
              `turns ${(m["env/turns_mean"] as number).toFixed(2)}, valid ${(100 * (m["env/valid_action_rate"] as number)).toFixed(1)}%`,
          );
        }
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    const end = measure(join(r.runDir, "final"));
    log(
      `${preset}: held-out success ${(100 * start.sampled).toFixed(1)}% → ${(100 * end.sampled).toFixed(1)}% sampled, ` +
        `${(100 * start.greedy).toFixed(1)}% → ${(100 * end.greedy).toFixed(1)}% greedy (${seconds.toFixed(0)} s)`,
    );
    out[preset] = {
      start: start.sampled,
      end: end.sampled,
      start_greedy: start.greedy,
      end_greedy: end.greedy,
      train_s: Math.round(seconds),
    };
  }
  console.log(
    JSON.stringify({
      bench: "agent-maze",
      gigpo: out.gigpo,
      grpo: out.grpo,
      steps,
      tasks_per_step: tasksPerStep,
      episodes_per_task: G,
      lr,
      eval_mazes: evalTasks,
      seed,
      grpo_kl: "off",
    }),
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}
