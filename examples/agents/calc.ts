// The task the three example agents share: answer "37*48=?" with the help of a `calc` tool.
// Nothing here knows about Cohort: it is what an agent project would have anyway.

/** What the trainer passes as `task` (a line of tasks.jsonl plus its id). */
export interface CalcTask {
  id: string;
  prompt: string;
  answer?: string;
}

export const CALC_DESCRIPTION = "evaluates an arithmetic expression such as 37*48";

/** The tool's JSON-schema parameters (OpenAI's function format). */
export const calcParameters = {
  type: "object",
  properties: { expression: { type: "string", description: "two integers with + - or *, e.g. 37*48" } },
  required: ["expression"],
  additionalProperties: false,
} as const;

/** The tool: `a op b` with integers, exactly. */
export function calc(expression: string): string {
  const m = /^\s*(-?\d{1,9})\s*([-+*])\s*(-?\d{1,9})\s*$/.exec(expression);
  if (m === null) return "error: expected <integer> <+|-|*> <integer>";
  const a = BigInt(m[1] as string);
  const b = BigInt(m[3] as string);
  return String(m[2] === "+" ? a + b : m[2] === "-" ? a - b : a * b);
}

/** 1 when the agent's final answer is the right integer, else 0. */
export function score(task: CalcTask, final: string | null | undefined): number {
  return (final ?? "").trim() === task.answer ? 1 : 0;
}
