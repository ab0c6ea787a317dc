/**
 * Tool calling in the chat-completions API of `cohort serve`: OpenAI's `tools` / `tool_calls` / `tool` messages
 * on one side, the model's text on the other.
 *
 * ```
 * model output    text <tool_call>{"name": "calc", "arguments": {"expression": "37*48"}}</tool_call>
 * response        {content: "text", tool_calls: [{id, type: "function", function: {name, arguments: "{…}"}}]}
 * ```
 * - Parsing: Hermes-style blocks (the format of Qwen2/2.5/3 and Hermes templates, whitespace around the JSON
 *   allowed). A block whose JSON does not parse, is not `{name: string, arguments?: object | string}`, or is
 *   not closed stays in the content as plain text: a malformed call is never an error.
 * - Rendering: a template that reads `tool_calls` itself (its source mentions `tool_calls`) gets the messages
 *   as transformers passes them (arguments as objects) and the request's `tools` as its `tools` variable. Any
 *   other template (the tiny char models' `role: content` lines) gets each assistant tool call written into the
 *   content as the compact block `<tool_call>{"name":…,"arguments":{…}}</tool_call>` (or, when the call was
 *   recorded in an episode, the exact text the model wrote), and `tool` messages as their own role; such a
 *   template has no place for tool descriptions, so its model must have learned its tools (design choice).
 * - Streaming: `ToolCallStream` passes text through until a block may begin, holds a block back until it
 *   closes, then emits it as OpenAI's tool-call deltas (id, name and empty arguments first, then the
 *   arguments), or as text when it does not parse.
 * @module
 */
import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { ChatMessage } from "../tokenizer/types.js";
import { ApiError, type toolChoiceSchema, type toolSchema } from "./protocol.js";

export const TOOL_CALL_OPEN = "<tool_call>";
export const TOOL_CALL_CLOSE = "</tool_call>";

export type ToolSpec = z.output<typeof toolSchema>;
export type ToolChoice = z.output<typeof toolChoiceSchema>;

/** An OpenAI tool call of a response message. */
export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** A parsed block: the call and the exact text it was parsed from. */
export interface ParsedCall {
  call: ToolCall;
  raw: string;
}

export const newToolCallId = (): string => `call_${randomBytes(12).toString("hex")}`;

/** The call in a block's inner text, or null when it is not a well-formed call. */
export function parseCallJson(inner: string): { name: string; arguments: string } | null {
  let v: unknown;
  try {
    v = JSON.parse(inner.trim());
  } catch {
    return null;
  }
  if (v === null || typeof v !== "object" || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (typeof o.name !== "string" || o.name === "") return null;
  const args = o.arguments ?? o.parameters ?? {};
  if (typeof args === "string") {
    try {
      const parsed = JSON.parse(args) as unknown;
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) return null;
    } catch {
      return null;
    }
    return { name: o.name, arguments: args };
  }
  if (args === null || typeof args !== "object" || Array.isArray(args)) return null;
  return { name: o.name, arguments: JSON.stringify(args) };
}

/**
 * Splits a completion's text into content and tool calls. Well-formed blocks become calls; everything else
 * (text around them, malformed or unclosed blocks) is the content, trimmed; null content when nothing is left.
 */
export function parseToolCalls(text: string): { content: string | null; calls: ParsedCall[] } {
  const calls: ParsedCall[] = [];
  let content = "";
  let at = 0;
  for (;;) {
    const open = text.indexOf(TOOL_CALL_OPEN, at);
    if (open < 0) break;
    const close = text.indexOf(TOOL_CALL_CLOSE, open + TOOL_CALL_OPEN.length);
    if (close < 0) break;
    const end = close + TOOL_CALL_CLOSE.length;
    const parsed = parseCallJson(text.slice(open + TOOL_CALL_OPEN.length, close));
    content += text.slice(at, open);
    if (parsed === null) content += text.slice(open, end);
    else calls.push({ call: { id: newToolCallId(), type: "function", function: parsed }, raw: text.slice(open, end) });
    at = end;
  }
  content += text.slice(at);
  if (calls.length === 0) return { content: text, calls };
  const trimmed = content.trim();
  return { content: trimmed === "" ? null : trimmed, calls };
}

/** The compact text of a call (what a template without a tool format sees, and what tiny models learn). */
export function renderCall(name: string, args: string): string {
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    value = args;
  }
  return `${TOOL_CALL_OPEN}${JSON.stringify({ name, arguments: value })}${TOOL_CALL_CLOSE}`;
}

/** Whether a chat template renders tool calls itself. */
export function templateHandlesTools(template: string | null): boolean {
  return template?.includes("tool_calls") ?? false;
}

const assistantCallSchema = z.looseObject({
  id: z.string().optional(),
  type: z.literal("function").optional(),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string().default("{}") }),
});

/**
 * The messages as the chat template receives them (see the module doc). `rawById` maps tool-call ids this
 * server issued in the same episode to the text the model wrote, so a conversation re-renders token for token.
 */
export function renderToolMessages(
  messages: readonly ChatMessage[],
  native: boolean,
  rawById: (id: string) => string | undefined = () => undefined,
): ChatMessage[] {
  return messages.map((m, i) => {
    const tc = m.tool_calls;
    if (m.role !== "assistant" || tc === undefined || tc === null) return m;
    const r = z.array(assistantCallSchema).safeParse(tc);
    if (!r.success) {
      const issue = r.error.issues[0] as z.core.$ZodIssue;
      const path = ["messages", i, "tool_calls", ...issue.path].map(String).join(".");
      throw new ApiError(
        400,
        `${path}: ${issue.message}; expected [{id, type: "function", function: {name, arguments}}]`,
        path,
      );
    }
    if (native) {
      return {
        ...m,
        tool_calls: r.data.map((c) => {
          let args: unknown;
          try {
            args = JSON.parse(c.function.arguments);
          } catch {
            args = c.function.arguments;
          }
          return { ...c, function: { name: c.function.name, arguments: args } };
        }),
      };
    }
    const { tool_calls: _, ...rest } = m;
    const blocks = r.data.map(
      (c) => (c.id ? rawById(c.id) : undefined) ?? renderCall(c.function.name, c.function.arguments),
    );
    return { ...rest, content: m.content + blocks.join("") };
  });
}

/** Refuses tool choices the server cannot honour (no constrained decoding). */
export function checkToolChoice(
  choice: ToolChoice | null | undefined,
  tools: readonly ToolSpec[] | null | undefined,
): void {
  if (choice === undefined || choice === null || choice === "auto" || choice === "none") return;
  if (!tools || tools.length === 0) throw new ApiError(400, "tool_choice: needs tools", "tool_choice");
  throw new ApiError(
    400,
    `tool_choice: ${JSON.stringify(choice)} is not supported; use "auto" or "none" (the server does not constrain decoding to force a call)`,
    "tool_choice",
  );
}

/** A tool-call delta of a streamed chunk (OpenAI's chunk format). */
export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: "function";
  function: { name?: string; arguments: string };
}

/** Longest suffix of `text` that is a proper prefix of `marker`. */
function partialSuffix(text: string, marker: string): number {
  for (let k = Math.min(marker.length - 1, text.length); k > 0; k--) if (marker.startsWith(text.slice(-k))) return k;
  return 0;
}

/**
 * Per-choice streaming state: feed it text deltas, get content deltas and tool-call deltas. Content that may
 * start a block is held back; a closed block is emitted as a call, or as text when malformed.
 */
export class ToolCallStream {
  #pending = "";
  readonly calls: ParsedCall[] = [];

  /** Feeds a text delta. */
  push(delta: string): { content: string; calls: ToolCallDelta[] } {
    this.#pending += delta;
    let content = "";
    const calls: ToolCallDelta[] = [];
    for (;;) {
      const open = this.#pending.indexOf(TOOL_CALL_OPEN);
      if (open < 0) {
        const keep = partialSuffix(this.#pending, TOOL_CALL_OPEN);
        content += this.#pending.slice(0, this.#pending.length - keep);
        this.#pending = this.#pending.slice(this.#pending.length - keep);
        break;
      }
      content += this.#pending.slice(0, open);
      this.#pending = this.#pending.slice(open);
      const close = this.#pending.indexOf(TOOL_CALL_CLOSE);
      if (close < 0) break; // inside a block: wait for its end
      const end = close + TOOL_CALL_CLOSE.length;
      const raw = this.#pending.slice(0, end);
      this.#pending = this.#pending.slice(end);
      const parsed = parseCallJson(raw.slice(TOOL_CALL_OPEN.length, close));
      if (parsed === null) {
        content += raw;
        continue;
      }
      const call: ToolCall = { id: newToolCallId(), type: "function", function: parsed };
      const index = this.calls.length;
      this.calls.push({ call, raw });
      calls.push(
        { index, id: call.id, type: "function", function: { name: parsed.name, arguments: "" } },
        { index, function: { arguments: parsed.arguments } },
      );
    }
    return { content, calls };
  }

  /** At the end of the choice: whatever is held back (an unclosed block) is text. */
  flush(): string {
    const rest = this.#pending;
    this.#pending = "";
    return rest;
  }
}
