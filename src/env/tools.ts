/**
 * Tools with zod-typed arguments: their JSON-schema description (the `tools` variable of a chat template,
 * OpenAI's function format), a one-line text description for plain-text prompts, and a parser for the
 * calls a model writes.
 *
 * A call is one line `name(arguments)`. The arguments are either a JSON object, `calc({"expression":"3*4"})`,
 * or, for a tool whose schema has exactly one string field, that string bare: `calc(3*4)` (the compact form
 * small models can learn). Arguments are validated with the tool's schema; every failure becomes an error
 * text for the model, never an exception.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import type { Tool } from "./types.js";

/** Declares a tool (checks that its name is an identifier). */
export function defineTool<A>(tool: Tool<A>): Tool<A> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tool.name)) {
    throw new ConfigError(`tool name "${tool.name}" is not an identifier; use letters, digits and "_"`);
  }
  return tool;
}

/** The tool in OpenAI's function format (what HF chat templates read from `tools`). */
export function toolJsonSchema(tool: Tool): {
  type: "function";
  function: { name: string; description: string; parameters: Record<string, unknown> };
} {
  const { $schema: _, ...parameters } = z.toJSONSchema(tool.args) as Record<string, unknown>;
  return { type: "function", function: { name: tool.name, description: tool.description, parameters } };
}

/** The single string field of a tool's argument object, if it has exactly one (compact call form). */
function soleStringField(tool: Tool): string | undefined {
  const shape = (tool.args as unknown as { shape?: Record<string, { type?: string }> }).shape;
  if (shape === undefined) return undefined;
  const keys = Object.keys(shape);
  return keys.length === 1 && shape[keys[0] as string]?.type === "string" ? keys[0] : undefined;
}

/** One line per tool, `name(field: type, …) - description`, for prompts without a chat template. */
export function describeTools(tools: readonly Tool[]): string {
  return tools
    .map((t) => {
      const schema = toolJsonSchema(t).function.parameters as { properties?: Record<string, { type?: string }> };
      const fields = Object.entries(schema.properties ?? {}).map(([k, v]) => `${k}: ${v.type ?? "any"}`);
      return `${t.name}(${fields.join(", ")}) - ${t.description}`;
    })
    .join("\n");
}

export type ToolCall = { ok: true; tool: Tool; args: unknown } | { ok: false; name: string; error: string };

const CALL = /^\s*([A-Za-z_][A-Za-z0-9_]*)\((.*)\)\s*$/s;

/**
 * Parses `text` as a tool call. Returns null when the text is not call-shaped (`name(...)`); otherwise the
 * tool and its validated arguments, or an error naming what is wrong (unknown tool, bad JSON, bad field).
 */
export function parseToolCall(text: string, tools: readonly Tool[]): ToolCall | null {
  const m = CALL.exec(text);
  if (m === null) return null;
  const name = m[1] as string;
  const inner = (m[2] as string).trim();
  const tool = tools.find((t) => t.name === name);
  if (tool === undefined) {
    return { ok: false, name, error: `unknown tool ${name}; tools: ${tools.map((t) => t.name).join(", ")}` };
  }
  let raw: unknown;
  if (inner.startsWith("{")) {
    try {
      raw = JSON.parse(inner);
    } catch {
      return { ok: false, name, error: `arguments of ${name} are not valid JSON` };
    }
  } else {
    const field = soleStringField(tool);
    if (field === undefined) return { ok: false, name, error: `${name} takes a JSON object of arguments` };
    raw = { [field]: inner };
  }
  const r = tool.args.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    const at = issue.path.length > 0 ? `${issue.path.map(String).join(".")}: ` : "";
    return { ok: false, name, error: `bad arguments for ${name}: ${at}${issue.message}` };
  }
  return { ok: true, tool, args: r.data };
}
