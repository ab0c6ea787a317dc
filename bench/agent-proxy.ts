/**
 * `npm run bench:agent-proxy`: the calculator agent of examples/agents/, written with each SDK (`openai`, `ai` +
 * `@ai-sdk/openai-compatible`, `@openai/agents`, LangGraph.js), trained with GRPO through the recording endpoint from the
 * shipped `models/calc-tools-tiny` (see its PRETRAIN.md). Per SDK: the held-out success rate (the agent's final
 * answer is right, which takes a well-formed `calc` call and copying its result; one episode per held-out task,
 * sampled at temperature 1 as the SDKs send no temperature) and the tool-call rate, before and after the run.
 * All runs start from the same weights with the same seed and budget.
 * Settings: BENCH_SDKS (comma list of openai, ai, agents, langgraph; default all four), BENCH_STEPS (default 30), BENCH_TASKS (tasks per step, 8),
 * BENCH_G (episodes per task, 8), BENCH_LR (3e-4), BENCH_EVAL (held-out tasks, 100), BENCH_SEED (0).
 * Last line: JSON `{"bench":"agent-proxy","openai":{"start","end","calls_start","calls_end","minutes"},…}`.
 */
// GRPO: arXiv 2402.03300 [CODE-FW]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseTrainConfig } from "../src/train/config.js";
import { train } from "../src/train/trainer.js";

const AGENTS: Record<string, string> = {
  openai: "examples/agents/openai-agent.ts#run",
  ai: "examples/agents/ai-agent.ts#run",
  agents: "examples/agents/agents-agent.ts#run",
  langgraph: "examples/agents/langgraph-agent.ts#run",
};
const sdks = (process.env.BENCH_SDKS ?? "openai,ai,agents,langgraph").split(",").filter((s) => s !== "");
for (const s of sdks)
  if (!(s in AGENTS)) throw new Error(`BENCH_SDKS: unknown SDK ${s}; use ${Object.keys(AGENTS).join(", ")}`);
const steps = Number(process.env.BENCH_STEPS ?? 30);
const tasksPerStep = Number(process.env.BENCH_TASKS ?? 8);
const G = Number(process.env.BENCH_G ?? 8);
const lr = Number(process.env.BENCH_LR ?? 3e-4);
const evalTasks = Number(process.env.BENCH_EVAL ?? 100);
const seed = Number(process.env.BENCH_SEED ?? 0);
const root = mkdtempSync(join(tmpdir(), "cohort-bench-agent-proxy-"));
const log = (line: string) => process.stderr.write(`${line}\n`);
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

try {
  const out: Record<string, Record<string, number>> = {};
  for (const sdk of sdks) {
    const cfg = parseTrainConfig({
      name: sdk,
      seed,
      outputDir: root,
      model: { path: resolve("models/calc-tools-tiny") },
      dataset: { path: resolve("examples/agents/tasks.jsonl"), options: { answerFormat: "plain", evalFraction: 0.1 } },
      agent: { run: resolve(AGENTS[sdk] as string), timeoutMs: 60_000, concurrency: tasksPerStep * G },
      preset: "grpo",
      algo: { regularizers: [] },
      train: { steps, promptsPerStep: tasksPerStep, groupSize: G, lr },
      sampling: { temperature: 1, maxNewTokens: 96 },
      eval: { everySteps: steps, problems: evalTasks, logSamples: 0 },
      checkpoint: { everySteps: 0 },
    });
    const evals: Record<string, number>[] = [];
    const t0 = performance.now();
    await train(cfg, {
      log,
      onStep: (m) => {
        if (m.eval_accuracy !== undefined) evals.push(m as Record<string, number>);
        if ((m.step as number) > 0)
          log(
            `${sdk} step ${m.step}: reward ${(m["agent/reward_mean"] as number)?.toFixed(3)}, tool calls ${pct(m["agent/tool_call_rate"] as number)}`,
          );
      },
    });
    const minutes = (performance.now() - t0) / 60_000;
    const [a, b] = [evals[0] as Record<string, number>, evals.at(-1) as Record<string, number>];
    out[sdk] = {
      start: a.eval_accuracy as number,
      end: b.eval_accuracy as number,
      calls_start: a.eval_tool_call_rate as number,
      calls_end: b.eval_tool_call_rate as number,
      minutes: Number(minutes.toFixed(2)),
    };
    log(
      `${sdk}: held-out success ${pct(a.eval_accuracy as number)} → ${pct(b.eval_accuracy as number)}, tool-call rate ${pct(a.eval_tool_call_rate as number)} → ${pct(b.eval_tool_call_rate as number)} (${steps} steps, ${minutes.toFixed(1)} min incl. both evaluations)`,
    );
  }
  console.log(JSON.stringify({ bench: "agent-proxy", steps, tasksPerStep, G, lr, evalTasks, seed, ...out }));
} finally {
  rmSync(root, { recursive: true, force: true });
}
