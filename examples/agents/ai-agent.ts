// The calculator agent written with the Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`): generateText with a
// tool and a step limit. Trained by Cohort through `agent: ./ai-agent.ts#run`.
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { generateText, stepCountIs, tool } from "ai";
import { z } from "zod";
import { CALC_DESCRIPTION, type CalcTask, calc, score } from "./calc.js";

export async function run({ task, baseURL, signal }: { task: CalcTask; baseURL: string; signal: AbortSignal }) {
  const provider = createOpenAICompatible({ name: "cohort", baseURL, apiKey: "unused" });
  const result = await generateText({
    model: provider.chatModel("calc-tools-tiny"),
    prompt: task.prompt,
    tools: {
      calc: tool({
        description: CALC_DESCRIPTION,
        inputSchema: z.object({ expression: z.string() }),
        execute: async ({ expression }) => calc(expression),
      }),
    },
    stopWhen: stepCountIs(3),
    maxRetries: 0,
    abortSignal: signal,
  });
  return { reward: score(task, result.text) };
}
