// The calculator agent written with LangGraph.js: a two-node graph (the model with its tools bound, then a
// ToolNode) over LangChain's ChatOpenAI on chat completions. Trained by Cohort through `agent: ./langgraph-agent.ts#run`.
import { tool } from "@langchain/core/tools";
import { END, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { ToolNode, toolsCondition } from "@langchain/langgraph/prebuilt";
import { ChatOpenAICompletions } from "@langchain/openai";
import { z } from "zod";
import { CALC_DESCRIPTION, type CalcTask, calc, score } from "./calc.js";

const calcTool = tool(async ({ expression }: { expression: string }) => calc(expression), {
  name: "calc",
  description: CALC_DESCRIPTION,
  schema: z.object({ expression: z.string() }),
});

export async function run({ task, baseURL, signal }: { task: CalcTask; baseURL: string; signal: AbortSignal }) {
  const llm = new ChatOpenAICompletions({
    model: "calc-tools-tiny",
    apiKey: "unused",
    maxRetries: 0,
    configuration: { baseURL },
  }).bindTools([calcTool]);
  const graph = new StateGraph(MessagesAnnotation)
    .addNode("model", async (state) => ({ messages: [await llm.invoke(state.messages, { signal })] }))
    .addNode("tools", new ToolNode([calcTool]))
    .addEdge(START, "model")
    .addConditionalEdges("model", toolsCondition, ["tools", END])
    .addEdge("tools", "model")
    .compile();
  // 3 model turns at most: model → tools → model → tools → model (recursionLimit counts node runs)
  const out = await graph.invoke({ messages: [{ role: "user", content: task.prompt }] }, { recursionLimit: 5, signal });
  const last = out.messages.at(-1);
  const final = last?.getType() === "ai" && typeof last.content === "string" ? last.content : null;
  return { reward: score(task, final) };
}
