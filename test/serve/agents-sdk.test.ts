// The recording endpoint with the real SDK packages (`openai`, `ai` + `@ai-sdk/openai-compatible`, `@openai/agents`,
// LangGraph.js over `@langchain/openai`) against a `cohort serve` child process over the shipped tool-use model: multi-turn agents with tool calls, the
// recorded token ids and log-probs against the model's own, streaming with tools through each SDK's streaming
// API, malformed calls, unknown episodes, concurrent episodes and a client that disconnects mid-stream.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { AIMessageChunk } from "@langchain/core/messages";
import { tool as lcTool } from "@langchain/core/tools";
import { ChatOpenAICompletions } from "@langchain/openai";
import { Agent, tool as agentTool, OpenAIChatCompletionsModel, run as runAgent } from "@openai/agents";
import { generateText, stepCountIs, streamText, tool } from "ai";
import OpenAI from "openai";
import { z } from "zod";
import { run as agentsRun } from "../../examples/agents/agents-agent.js";
import { run as aiRun } from "../../examples/agents/ai-agent.js";
import { CALC_DESCRIPTION, type CalcTask, calc, calcParameters } from "../../examples/agents/calc.js";
import { run as langgraphRun } from "../../examples/agents/langgraph-agent.js";
import { run as openaiRun } from "../../examples/agents/openai-agent.js";
import { packBatch } from "../../src/model/batch.js";
import type { CausalLM } from "../../src/model/llama.js";
import { loadServedModel } from "../../src/serve/load.js";
import type { EpisodeRecord, RecordedTurn } from "../../src/serve/recorder.js";
import { noGrad, tidy } from "../../src/tensor/index.js";
import type { Tokenizer } from "../../src/tokenizer/types.js";
import { http, type ServeProcess, startServe, waitFor } from "./helpers.js";

const MODEL = "models/calc-tools-tiny";
const NAME = "calc-tools-tiny";

function ownLogprobs(m: CausalLM, prompt: number[], tokens: number[]): number[] {
  return noGrad(() =>
    tidy(() => {
      const b = packBatch([prompt], [tokens]);
      const lp = m.logprobs(b, { temperature: 1 }).lp.tolist() as number[][];
      return tokens.map((_, i) => lp[0]?.[b.promptLength + i] as number);
    }),
  );
}

const TASKS: CalcTask[] = [
  ["37*48", 1776],
  ["12*91", 1092],
  ["55*23", 1265],
  ["64*17", 1088],
  ["29*83", 2407],
  ["71*46", 3266],
  ["18*39", 702],
  ["93*58", 5394],
].map(([q, a], i) => ({ id: `t${i}`, prompt: `${q}=?`, answer: String(a) }));

type Run = (a: { task: CalcTask; baseURL: string; signal: AbortSignal }) => Promise<{ reward: number }>;
const AGENTS: [string, Run][] = [
  ["openai", openaiRun],
  ["ai", aiRun],
  ["@openai/agents", agentsRun],
  ["langgraph", langgraphRun],
];

describe("the recording endpoint with the OpenAI, Vercel AI, OpenAI Agents and LangGraph SDKs", () => {
  let srv: ServeProcess;
  let model: CausalLM;
  let tok: Tokenizer;

  const open = async (): Promise<{ id: string; base_url: string }> => {
    const r = await http(`${srv.url}/episodes`, "POST", {});
    assert.equal(r.status, 201, r.body);
    return r.json();
  };
  const record = async (id: string, close = true): Promise<EpisodeRecord> => {
    const r = await http(`${srv.url}/episodes/${id}`, close ? "DELETE" : "GET");
    assert.equal(r.status, 200, r.body);
    return r.json();
  };
  /** Checks a turn's ids and log-probs against the model: |Δ| < 1e-4 on every sampled token. */
  const checkTurn = (t: RecordedTurn) => {
    assert.equal(t.status, "complete");
    assert.ok(t.completionIds.length > 0);
    assert.equal(t.logprobs.length, t.completionIds.length);
    const own = ownLogprobs(model, t.promptIds, t.completionIds);
    const worst = Math.max(...own.map((v, i) => Math.abs(v - (t.logprobs[i] as number))));
    assert.ok(worst < 1e-4, `recorded log-probs differ from the model's by ${worst}`);
  };
  /** Plays tasks until an episode called the tool and went on to answer (a multi-turn episode). */
  const multiTurn = async (run: Run): Promise<{ rec: EpisodeRecord; task: CalcTask; reward: number }> => {
    for (const task of TASKS) {
      const ep = await open();
      // a tiny model may write past its context in a later turn (a 400 the agent throws): try the next task
      const reward = await run({ task, baseURL: ep.base_url, signal: new AbortController().signal }).then(
        (r) => r.reward,
        () => null,
      );
      const rec = await record(ep.id);
      if (reward !== null && rec.turns.length >= 2 && (rec.turns[0] as RecordedTurn).toolCalls.length > 0)
        return { rec, task, reward };
    }
    throw new Error("no episode of the 8 tasks called the tool");
  };

  before(async () => {
    srv = await startServe(MODEL, ["--model-name", NAME, "--seed", "7"]);
    ({ model, tokenizer: tok } = loadServedModel(MODEL));
  });
  after(async () => {
    model.dispose();
    assert.equal(await srv.stop(), 0, srv.stderr());
  });

  for (const [name, run] of AGENTS) {
    test(`${name}: a multi-turn episode with a tool call is recorded token for token`, async () => {
      const { rec, task, reward } = await multiTurn(run);
      const [t0, t1] = rec.turns as [RecordedTurn, RecordedTurn];
      for (const t of rec.turns) checkTurn(t);
      // the first turn: BOS and the question through the chat template (the prompt the model was trained on),
      // a call of calc with the question's expression
      assert.equal(t0.promptIds[0], tok.bosId);
      assert.equal(tok.decode(t0.promptIds.slice(1)), `user: ${task.prompt}\nassistant: `);
      const call = t0.toolCalls[0]!;
      assert.equal(call.name, "calc");
      const expr = (JSON.parse(call.arguments) as { expression: string }).expression;
      // the second turn extends the first exactly (so the source merges them), the tool's result in between
      const seen = [...t0.promptIds, ...t0.completionIds];
      assert.deepEqual(t1.promptIds.slice(0, seen.length), seen);
      assert.equal(tok.decode(t1.promptIds.slice(seen.length)), `\ntool: ${calc(expr)}\nassistant: `);
      assert.equal(reward, tok.decode(t1.completionIds, { skipSpecialTokens: true }).trim() === task.answer ? 1 : 0);
      assert.equal(t0.policyVersion, 0);
    });
  }

  test("tool calls round-trip: the response's calls, rendered back, are the tokens the model wrote", async () => {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "x", maxRetries: 0 });
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "calc", description: CALC_DESCRIPTION, parameters: calcParameters } },
    ];
    for (let seed = 0; seed < 16; seed++) {
      const res = await client.chat.completions.create({
        model: NAME,
        messages: [{ role: "user", content: "37*48=?" }],
        tools,
        seed,
        // vLLM's extension: the sampled ids come back with the response
        ...({ return_token_ids: true } as object),
      });
      const choice = res.choices[0]!;
      const calls = choice.message.tool_calls ?? [];
      if (calls.length === 0) continue;
      assert.equal(choice.finish_reason, "tool_calls");
      // the same conversation sent back renders to the prompt + the sampled ids
      const again = await http(`${srv.url}/v1/chat/completions`, "POST", {
        model: NAME,
        messages: [
          { role: "user", content: "37*48=?" },
          choice.message,
          { role: "tool", tool_call_id: calls[0]!.id, content: "1776" },
        ],
        tools,
        max_tokens: 1,
        return_token_ids: true,
      });
      assert.equal(again.status, 200, again.body);
      const ids = (res as unknown as { prompt_token_ids: number[] }).prompt_token_ids;
      const sampled = (choice as unknown as { token_ids: number[] }).token_ids;
      const prefix = [...ids, ...sampled];
      assert.deepEqual(again.json().prompt_token_ids.slice(0, prefix.length), prefix);
      return;
    }
    assert.fail("no tool call in 16 seeds");
  });

  test("streaming with tools: each SDK's streaming API gives the calls the non-streamed request gives", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "calc", description: CALC_DESCRIPTION, parameters: calcParameters } },
    ];
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "x", maxRetries: 0 });
    let seed = 0;
    let plain: OpenAI.ChatCompletion | undefined;
    for (; seed < 16; seed++) {
      plain = await client.chat.completions.create({
        model: NAME,
        messages: [{ role: "user", content: "64*17=?" }],
        tools,
        seed,
      });
      if (plain.choices[0]?.message.tool_calls?.length) break;
    }
    const want = plain!.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    // openai: chunks with tool-call deltas, assembled by the SDK's stream helper
    const stream = client.chat.completions.stream({
      model: NAME,
      messages: [{ role: "user", content: "64*17=?" }],
      tools,
      seed,
    });
    const done = await stream.finalChatCompletion();
    const got = done.choices[0]!.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    assert.deepEqual(got.function, want.function);
    assert.equal(done.choices[0]!.finish_reason, "tool_calls");

    // ai: streamText's tool-call parts, then the tool's result fed back for the next step
    const provider = createOpenAICompatible({ name: "cohort", baseURL: `${srv.url}/v1`, apiKey: "x" });
    const aiTools = {
      calc: tool({
        description: CALC_DESCRIPTION,
        inputSchema: z.object({ expression: z.string() }),
        execute: async ({ expression }) => calc(expression),
      }),
    };
    // one step: the model's call and the tool's result, streamed and not
    const aiCallArgs = {
      model: provider.chatModel(NAME),
      prompt: "64*17=?",
      tools: aiTools,
      seed,
      stopWhen: stepCountIs(1),
      maxRetries: 0,
    };
    const s = streamText(aiCallArgs);
    const parts: string[] = [];
    for await (const p of s.fullStream) parts.push(p.type);
    const steps = await s.steps;
    const aiCall = steps[0]!.toolCalls[0]!;
    assert.equal(aiCall.toolName, "calc");
    assert.deepEqual(aiCall.input, JSON.parse(want.function.arguments));
    assert.ok(parts.includes("tool-call") && parts.includes("tool-result"), parts.join(","));
    const g = await generateText(aiCallArgs);
    assert.deepEqual(g.toolCalls[0]!.input, aiCall.input);

    // @openai/agents: a streamed run emits the tool call and finishes
    const agent = new Agent({
      name: "calculator",
      model: new OpenAIChatCompletionsModel(client, NAME),
      modelSettings: { providerData: { seed } },
      tools: [
        agentTool({
          name: "calc",
          description: CALC_DESCRIPTION,
          parameters: z.object({ expression: z.string() }),
          execute: async ({ expression }) => calc(expression),
        }),
      ],
    });
    const events: string[] = [];
    try {
      const r = await runAgent(agent, "64*17=?", { stream: true, maxTurns: 3 });
      for await (const ev of r) if (ev.type === "run_item_stream_event") events.push(ev.name);
      await r.completed;
    } catch {
      // the turn after the tool's output may outgrow the tiny model's context; the call was streamed before it
    }
    assert.ok(events.includes("tool_called") && events.includes("tool_output"), events.join(","));

    // LangGraph / LangChain: the chat model's stream of tool-call chunks, concatenated, is the same call
    const lcCalc = lcTool(async ({ expression }: { expression: string }) => calc(expression), {
      name: "calc",
      description: CALC_DESCRIPTION,
      schema: z.object({ expression: z.string() }),
    });
    const lc = new ChatOpenAICompletions({
      model: NAME,
      apiKey: "x",
      maxRetries: 0,
      configuration: { baseURL: `${srv.url}/v1` },
    }).bindTools([lcCalc]);
    let acc: AIMessageChunk | undefined;
    for await (const chunk of await lc.stream("64*17=?", { seed })) acc = acc === undefined ? chunk : acc.concat(chunk);
    assert.ok(acc instanceof AIMessageChunk);
    const lcCall = acc.tool_calls?.[0];
    assert.equal(lcCall?.name, "calc");
    assert.deepEqual(lcCall?.args, JSON.parse(want.function.arguments));
  });

  test("a malformed tool call (cut by a stop string) comes back as plain text, streamed or not", async () => {
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "x", maxRetries: 0 });
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "calc", description: CALC_DESCRIPTION, parameters: calcParameters } },
    ];
    for (let seed = 0; seed < 16; seed++) {
      const req = { model: NAME, messages: [{ role: "user" as const, content: "37*48=?" }], tools, seed, stop: ["}}"] };
      const res = await client.chat.completions.create(req);
      const msg = res.choices[0]!.message;
      if (!msg.content?.startsWith("<tool_call>")) continue;
      assert.ok(!msg.tool_calls || msg.tool_calls.length === 0);
      assert.equal(res.choices[0]!.finish_reason, "stop");
      assert.ok(!msg.content.includes("}}") && !msg.content.includes("</tool_call>"), msg.content);
      const st = await client.chat.completions.create({ ...req, stream: true });
      let text = "";
      let toolDeltas = 0;
      for await (const c of st) {
        text += c.choices[0]?.delta.content ?? "";
        toolDeltas += c.choices[0]?.delta.tool_calls?.length ?? 0;
      }
      assert.equal(text, msg.content);
      assert.equal(toolDeltas, 0);
      return;
    }
    assert.fail("no call-shaped completion in 16 seeds");
  });

  test("an unknown episode id is a 404 that says how to open one, by path and by header", async () => {
    const client = new OpenAI({ baseURL: `${srv.url}/episodes/no-such-episode/v1`, apiKey: "x", maxRetries: 0 });
    await assert.rejects(
      client.chat.completions.create({ model: NAME, messages: [{ role: "user", content: "1*1=?" }] }),
      (e: unknown) =>
        e instanceof OpenAI.NotFoundError && /episode "no-such-episode" is not open.*POST \/episodes/.test(e.message),
    );
    const byHeader = await http(
      `${srv.url}/v1/chat/completions`,
      "POST",
      { model: NAME, messages: [{ role: "user", content: "1*1=?" }] },
      { "x-cohort-episode": "gone" },
    );
    assert.equal(byHeader.status, 404);
    assert.equal(byHeader.json().error.param, "episode");
    // a closed episode is unknown too; the header records like the path does
    const ep = await open();
    const ok = await http(
      `${srv.url}/v1/chat/completions`,
      "POST",
      { model: NAME, messages: [{ role: "user", content: "1*1=?" }], max_tokens: 3 },
      { "x-cohort-episode": ep.id },
    );
    assert.equal(ok.status, 200, ok.body);
    assert.equal((await record(ep.id)).turns.length, 1);
    assert.equal((await http(`${srv.url}/episodes/${ep.id}`, "GET")).status, 404);
    assert.equal((await http(`${srv.url}/episodes`, "POST", { id: "bad id!" })).status, 400);
  });

  test("concurrent episodes of all four SDKs are kept apart", async () => {
    const eps = await Promise.all(TASKS.slice(0, 8).map(() => open()));
    await Promise.allSettled(
      eps.map((ep, i) =>
        (AGENTS[i % AGENTS.length]![1] as Run)({
          task: TASKS[i]!,
          baseURL: ep.base_url,
          signal: new AbortController().signal,
        }),
      ),
    );
    for (const [i, ep] of eps.entries()) {
      const rec = await record(ep.id);
      assert.ok(rec.turns.length >= 1);
      for (const t of rec.turns) {
        const text = tok.decode(t.promptIds, { skipSpecialTokens: true });
        assert.ok(text.startsWith(`user: ${TASKS[i]!.prompt}\n`), text);
        checkTurn(t);
      }
    }
    const health = (await http(`${srv.url}/health`, "GET")).json();
    assert.ok(health.maxJobsPerBatch > 1, "the episodes' requests shared batches");
  });

  test("a client that disconnects mid-stream leaves a consistent record, and the episode goes on", async () => {
    const ep = await open();
    const ac = new AbortController();
    const client = new OpenAI({ baseURL: ep.base_url, apiKey: "x", maxRetries: 0 });
    const st = await client.chat.completions.create(
      {
        model: NAME,
        messages: [{ role: "user", content: "37*48=?" }],
        stream: true,
        ignore_eos: true,
        max_tokens: 100,
      } as OpenAI.ChatCompletionCreateParamsStreaming,
      { signal: ac.signal },
    );
    let chunks = 0;
    try {
      for await (const _ of st) if (++chunks === 3) ac.abort();
    } catch {
      // the SDK may end the iteration or throw an abort error: either way the connection is gone
    }
    assert.equal(chunks, 3);
    await waitFor(async () => (await record(ep.id, false)).turns[0]?.status !== "running", "the cut turn to end");
    const t = (await record(ep.id, false)).turns[0]!;
    assert.equal(t.status, "cancelled");
    assert.ok(t.completionIds.length >= 2 && t.completionIds.length < 100, `${t.completionIds.length} tokens`);
    assert.equal(t.logprobs.length, t.completionIds.length);
    const own = ownLogprobs(model, t.promptIds, t.completionIds);
    assert.ok(Math.max(...own.map((v, i) => Math.abs(v - t.logprobs[i]!))) < 1e-4);
    const next = await client.chat.completions.create({
      model: NAME,
      messages: [{ role: "user", content: "37*48=?" }],
      max_tokens: 4,
    });
    assert.ok(next.choices.length === 1);
    const rec = await record(ep.id);
    assert.deepEqual(
      rec.turns.map((x) => x.status),
      ["cancelled", "complete"],
    );
  });
});
