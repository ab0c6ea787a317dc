/**
 * A calculator-tool task: answer a multiplication (or any configured operation) that a small model cannot
 * do in its head, by calling the `calc` tool first.
 *
 * ```
 * first observation   "37*48=?"
 * action              "calc(37*48)"        a tool call (compact form; `calc({"expression":"37*48"})` also works)
 * observation         "=1776"              the tool output (masked out of the loss)
 * action              "1776"               any action that is not a tool call is the final answer
 * ```
 * (in the `text` template each of these is one line).
 * Rewards: 1 for a right final answer (success), 0 for a wrong one (both end the episode); tool calls earn 0.
 * A malformed call is answered with an error observation. `info.executed` is true for a tool call that ran;
 * `info.agent` is 1 for tool-calling steps and 0 for the answering step, so multi-agent estimators (Dr. MAS,
 * M-GRPO) can treat the tool caller and the answerer as two roles.
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { evaluateExpression } from "../task/expression.js";
import { envEvalFraction, intRange, parseOptions } from "../task/options.js";
import type { Rng } from "../task/rng.js";
import { drawInSplit } from "../task/split.js";
import type { Split } from "../task/types.js";
import { defineTool, parseToolCall } from "./tools.js";
import type { EnvFactory, Environment, EnvSpec, ScriptedPolicy, StepResult, Tool } from "./types.js";

const CALC_OPS = { add: "+", sub: "-", mul: "*" } as const;

export const calculatorOptions = z
  .strictObject({
    digits: intRange(1, 9)
      .default([2, 3])
      .meta({ description: "Digit count of each operand, [min, max] or one integer." }),
    ops: z
      .array(z.enum(["add", "sub", "mul"]))
      .min(1)
      .default(["mul"])
      .meta({ description: "Operations the questions use." }),
    evalFraction: envEvalFraction("questions"),
  })
  .meta({ description: "Arithmetic questions answered with the help of a calculator tool." });

export type CalculatorOptions = z.input<typeof calculatorOptions>;

export interface CalculatorTask {
  a: number;
  b: number;
  op: keyof typeof CALC_OPS;
}

/** The answer of a question, as the decimal integer text. */
export function calculatorAnswer(t: CalculatorTask): string {
  const a = BigInt(t.a);
  const b = BigInt(t.b);
  return String(t.op === "add" ? a + b : t.op === "sub" ? a - b : a * b);
}

/** The `calc` tool: evaluates an arithmetic expression exactly (integers, + - * / and parentheses). */
export const calcTool: Tool<{ expression: string }> = defineTool({
  name: "calc",
  description: "evaluates an arithmetic expression exactly",
  args: z.strictObject({
    expression: z.string().min(1).max(64).meta({ description: "integers with + - * / and parentheses, e.g. 37*48" }),
  }),
  run({ expression }) {
    const r = evaluateExpression(expression);
    if (!r.ok) return `error: ${r.reason}`;
    const v = r.value;
    return v.den === 1n ? `=${v.num}` : `=${v.num}/${v.den}`;
  },
});

/** One episode of a calculator question. */
export class CalculatorEnv implements Environment<CalculatorTask> {
  #task: CalculatorTask | null = null;
  /** The latest observation (a tool output after a call). */
  lastObservation = "";

  get task(): CalculatorTask {
    if (this.#task === null) throw new CohortError("calculator: step() before reset(); reset the environment first");
    return this.#task;
  }

  reset(_seed: number, task: CalculatorTask): string {
    if (!(task.op in CALC_OPS) || !Number.isInteger(task.a) || !Number.isInteger(task.b)) {
      throw new CohortError(`calculator: invalid task ${JSON.stringify(task)}; expected {a, b, op: add|sub|mul}`);
    }
    this.#task = task;
    this.lastObservation = `${task.a}${CALC_OPS[task.op]}${task.b}=?`;
    return this.lastObservation;
  }

  step(action: string): StepResult {
    const r = this.#step(action);
    this.lastObservation = r.observation;
    return r;
  }

  #step(action: string): StepResult {
    const t = this.task;
    const text = action.trim();
    const call = parseToolCall(text, [calcTool]);
    if (call !== null) {
      if (!call.ok) {
        return { observation: `error: ${call.error}`, reward: 0, done: false, info: { valid: false, agent: 1 } };
      }
      const out = call.tool.run(call.args);
      const ran = !out.startsWith("error");
      return {
        observation: out,
        reward: 0,
        done: false,
        info: { valid: ran, executed: ran, agent: 1, tool: call.tool.name },
      };
    }
    const valid = /^-?\d+$/.test(text);
    const success = valid && BigInt(text) === BigInt(calculatorAnswer(t));
    return { observation: "", reward: success ? 1 : 0, done: true, info: { valid, success, agent: 0 } };
  }
}

/**
 * A scripted solver, for SFT data: calls `calc` with the question, then answers with the tool's result. With
 * probability `noise` it answers at once with a guess of the right length instead (usually wrong).
 */
export function calculatorExpert(noise: number): ScriptedPolicy<CalculatorTask> {
  return (env, rng) => {
    const e = env as CalculatorEnv;
    const t = e.task;
    const last = e.lastObservation;
    if (last.startsWith("=")) return last.slice(1);
    if (rng.float() < noise) {
      const len = calculatorAnswer(t).length;
      return String(rng.int(10 ** (len - 1), 10 ** len - 1));
    }
    return `calc(${t.a}${CALC_OPS[t.op]}${t.b})`;
  };
}

/** The calculator environment kind for `options`. */
export function calculatorFactory(options: CalculatorOptions = {}, path = "env.options"): EnvFactory<CalculatorTask> {
  const c = parseOptions(calculatorOptions, options, path);
  const operand = (rng: Rng): number => {
    const d = rng.int(c.digits[0], c.digits[1]);
    return d === 1 ? rng.int(0, 9) : rng.int(10 ** (d - 1), 10 ** d - 1);
  };
  return {
    name: "calculator",
    limits: { maxTurns: 3, maxActionTokens: 24 },
    tools: [calcTool as Tool],
    sampleTask(rng: Rng, split: Split) {
      const task = drawInSplit("calculator", split, c.evalFraction, () => {
        const t: CalculatorTask = { a: operand(rng), b: operand(rng), op: rng.pick(c.ops) };
        return { canonical: `${t.a}${CALC_OPS[t.op]}${t.b}`, value: t };
      });
      const h = createHash("sha256").update(JSON.stringify(task)).digest("hex").slice(0, 12);
      return { id: `calc-${h}`, task };
    },
    make: () => new CalculatorEnv(),
    expert: (noise) => calculatorExpert(noise),
  };
}

export const calculatorSpec: EnvSpec<CalculatorOptions> = {
  name: "calculator",
  description: "Arithmetic questions; the model calls calc(expression) and then answers with the integer.",
  options: calculatorOptions,
  create: (o, path) => calculatorFactory(o, path),
};
