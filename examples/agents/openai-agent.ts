// The calculator agent written with the `openai` client: a plain tool-calling loop over chat completions.
// Trained by Cohort through `agent: ./openai-agent.ts#run` (train.yaml); `baseURL` is the recording endpoint.
import OpenAI from "openai";
import { CALC_DESCRIPTION, type CalcTask, calc, calcParameters, score } from "./calc.js";

export async function run({ task, baseURL, signal }: { task: CalcTask; baseURL: string; signal: AbortSignal }) {
  const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0 });
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: task.prompt }];
  const tools: OpenAI.ChatCompletionTool[] = [
    { type: "function", function: { name: "calc", description: CALC_DESCRIPTION, parameters: calcParameters } },
  ];
  for (let turn = 0; turn < 3; turn++) {
    const res = await client.chat.completions.create(
      { model: "calc-tools-tiny", messages, tools },
      { signal },
    );
    const msg = res.choices[0]?.message;
    if (!msg?.tool_calls?.length) return { reward: score(task, msg?.content) };
    messages.push(msg);
    for (const call of msg.tool_calls) {
      if (call.type !== "function") continue;
      const { expression } = JSON.parse(call.function.arguments) as { expression: string };
      messages.push({ role: "tool", tool_call_id: call.id, content: calc(String(expression)) });
    }
  }
  return { reward: 0 };
}
