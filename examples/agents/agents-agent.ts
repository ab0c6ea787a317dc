// The calculator agent written with the OpenAI Agents SDK (`@openai/agents`), on its chat-completions model.
// Trained by Cohort through `agent: ./agents-agent.ts#run`.
import { Agent, OpenAIChatCompletionsModel, run as runAgent, setTracingDisabled, tool } from "@openai/agents";
import OpenAI from "openai";
import { z } from "zod";
import { CALC_DESCRIPTION, type CalcTask, calc, score } from "./calc.js";

setTracingDisabled(true);

const calcTool = tool({
  name: "calc",
  description: CALC_DESCRIPTION,
  parameters: z.object({ expression: z.string() }),
  execute: async ({ expression }) => calc(expression),
});

export async function run({ task, baseURL, signal }: { task: CalcTask; baseURL: string; signal: AbortSignal }) {
  const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
  const agent = new Agent({
    name: "calculator",
    model: new OpenAIChatCompletionsModel(client, "calc-tools-tiny"),
    tools: [calcTool],
  });
  const result = await runAgent(agent, task.prompt, { maxTurns: 3, signal });
  return { reward: score(task, result.finalOutput) };
}
