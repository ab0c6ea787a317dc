// A test agent for agent-source.test.ts: the example `openai` agent, except that of every four episodes one
// crashes after playing, one hangs until its signal aborts it (a timeout) and one returns no number.

import type { CalcTask } from "../../examples/agents/calc.js";
import { run as openaiRun } from "../../examples/agents/openai-agent.js";

let episodes = 0;

export async function run(args: { task: CalcTask; baseURL: string; signal: AbortSignal }) {
  const k = episodes++ % 4;
  if (k === 1) {
    await openaiRun(args);
    throw new Error("the agent crashed");
  }
  if (k === 2) {
    await new Promise((_, reject) => args.signal.addEventListener("abort", () => reject(args.signal.reason)));
  }
  if (k === 3) return { reward: Number.NaN };
  return openaiRun(args);
}
