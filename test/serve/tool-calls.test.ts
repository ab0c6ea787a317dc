// Tool-call parsing and rendering of `cohort serve` (src/serve/tool-calls.ts), against hand-written vectors.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { RecordedTurn } from "../../src/serve/recorder.js";
import {
  parseToolCalls,
  renderCall,
  renderToolMessages,
  ToolCallStream,
  templateHandlesTools,
} from "../../src/serve/tool-calls.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { turnsToRows } from "../../src/train/agent-source.js";

const CALL = '<tool_call>{"name":"calc","arguments":{"expression":"37*48"}}</tool_call>';

test("a Hermes block becomes a tool call; text around it is the content", () => {
  const r = parseToolCalls(`let me compute ${CALL}`);
  assert.equal(r.content, "let me compute");
  assert.equal(r.calls.length, 1);
  const c = r.calls[0]!;
  assert.equal(c.call.type, "function");
  assert.match(c.call.id, /^call_[0-9a-f]{24}$/);
  assert.deepEqual(c.call.function, { name: "calc", arguments: '{"expression":"37*48"}' });
  assert.equal(c.raw, CALL);
  // Qwen's layout: newlines around the JSON, two calls, arguments given as a JSON string
  const q = parseToolCalls(
    '<tool_call>\n{"name": "a", "arguments": {"x": 1}}\n</tool_call>\n<tool_call>\n{"name": "b", "arguments": "{\\"y\\": 2}"}\n</tool_call>',
  );
  assert.equal(q.content, null);
  assert.deepEqual(
    q.calls.map((c) => c.call.function),
    [
      { name: "a", arguments: '{"x":1}' },
      { name: "b", arguments: '{"y": 2}' },
    ],
  );
});

test("malformed calls stay plain text", () => {
  for (const text of [
    '<tool_call>{"name":"calc","arguments":{"expression":"3*4"}</tool_call>', // unbalanced JSON
    '<tool_call>{"arguments":{}}</tool_call>', // no name
    '<tool_call>{"name":"calc","arguments":[1]}</tool_call>', // arguments not an object
    '<tool_call>{"name":"calc","arguments":"not json"}</tool_call>',
    '<tool_call>{"name":"calc"', // never closed
    "1776",
  ]) {
    const r = parseToolCalls(text);
    assert.equal(r.calls.length, 0, text);
    assert.equal(r.content, text);
  }
  // one good, one bad: the bad one is content
  const bad = "<tool_call>{oops}</tool_call>";
  const r = parseToolCalls(`${bad}${CALL}`);
  assert.equal(r.calls.length, 1);
  assert.equal(r.content, bad);
});

test("render → parse round trip, and the char template sees calls and tool results as lines", () => {
  const text = renderCall("calc", '{"expression":"37*48"}');
  assert.equal(text, CALL);
  const back = parseToolCalls(text).calls[0]!.call.function;
  assert.deepEqual(back, { name: "calc", arguments: '{"expression":"37*48"}' });

  const tok = new CharTokenizer();
  assert.equal(templateHandlesTools(tok.chatTemplate), false);
  const messages = [
    { role: "user", content: "37*48=?" },
    {
      role: "assistant",
      content: "",
      tool_calls: [{ id: "call_1", type: "function", function: { name: "calc", arguments: '{"expression":"37*48"}' } }],
    },
    { role: "tool", content: "1776", tool_call_id: "call_1" },
  ];
  const rendered = tok.applyChatTemplate(renderToolMessages(messages, false), { addGenerationPrompt: true });
  assert.equal(rendered, `user: 37*48=?\nassistant: ${CALL}<|eos|>\ntool: 1776\nassistant: `);
  // a call recorded in an episode re-renders as the model wrote it
  const spaced = '<tool_call> {"name": "calc", "arguments": {"expression": "37*48"}} </tool_call>';
  const exact = renderToolMessages(messages, false, (id) => (id === "call_1" ? spaced : undefined));
  assert.equal(exact[1]!.content, spaced);
  // a template with its own tool format gets arguments as objects
  const native = renderToolMessages(messages, true);
  assert.deepEqual((native[1]!.tool_calls as { function: unknown }[])[0]!.function, {
    name: "calc",
    arguments: { expression: "37*48" },
  });
  assert.throws(
    () => renderToolMessages([{ role: "assistant", content: "", tool_calls: [{ function: {} }] }], false),
    /messages\.0\.tool_calls\.0\.function\.name/,
  );
});

test("streaming: text passes, a block is held back and comes out as OpenAI tool-call deltas", () => {
  const s = new ToolCallStream();
  const text = `ok ${CALL} tail <tool`;
  const contents: string[] = [];
  const deltas: unknown[] = [];
  for (const ch of text) {
    const d = s.push(ch);
    if (d.content) contents.push(d.content);
    deltas.push(...d.calls);
  }
  const rest = s.flush();
  assert.equal(contents.join("") + rest, "ok  tail <tool");
  assert.equal(rest, "<tool");
  assert.equal(deltas.length, 2);
  const [head, args] = deltas as { index: number; id?: string; function: { name?: string; arguments: string } }[];
  assert.equal(head!.index, 0);
  assert.equal(head!.function.name, "calc");
  assert.equal(head!.function.arguments, "");
  assert.equal(head!.id, s.calls[0]!.call.id);
  assert.equal(args!.function.arguments, '{"expression":"37*48"}');
  // a malformed block streams as text
  const m = new ToolCallStream();
  const out = m.push("<tool_call>{bad}</tool_call>x");
  assert.equal(out.content, "<tool_call>{bad}</tool_call>x");
  assert.equal(out.calls.length, 0);
});

const turn = (promptIds: number[], completionIds: number[], extra: Partial<RecordedTurn> = {}): RecordedTurn => ({
  index: 0,
  endpoint: "chat",
  promptIds,
  completionIds,
  logprobs: completionIds.map((t) => -t / 10),
  policyVersion: 3,
  temperature: 1,
  finishReason: "stop",
  status: "complete",
  text: "",
  toolCalls: [],
  startedMs: 0,
  endedMs: 0,
  ...extra,
});

test("turns that extend the previous one merge into one row with the glue masked; others start a row", () => {
  const t1 = turn([1, 2, 3], [4, 5]);
  const t2 = turn([1, 2, 3, 4, 5, 6, 7], [8, 9], { policyVersion: 2 }); // extends: glue 6, 7
  const t3 = turn([1, 2, 99], [10]); // a rewritten history: its own row
  const t4 = turn([1, 2, 99, 10], [11], { status: "cancelled" }); // cut short: not trained on
  const { prompts, rows } = turnsToRows([t1, t2, t3, t4], 5);
  assert.deepEqual(prompts, [
    [1, 2, 3],
    [1, 2, 99],
  ]);
  assert.equal(rows.length, 2);
  const [a, b] = rows;
  assert.deepEqual(a!.tokens, [4, 5, 6, 7, 8, 9]);
  assert.deepEqual(a!.lossMask, [1, 1, 0, 0, 1, 1]);
  assert.deepEqual(a!.logprobs, [-0.4, -0.5, 0, 0, -0.8, -0.9]);
  assert.equal(a!.turns, 2);
  assert.equal(a!.policyVersion, 2);
  assert.equal(a!.agentEpisode, 5);
  assert.deepEqual(b!.tokens, [10]);
  assert.deepEqual(b!.lossMask, [1]);
});
