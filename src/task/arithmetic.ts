/**
 * Multi-digit integer arithmetic: addition, subtraction and multiplication with exact (BigInt) answers.
 *
 * Prompt and completion (plain ASCII, within the char tokenizer's alphabet):
 * ```
 * prompt      "12+345="     "907-78="     "46*3="
 * completion  "<answer>357</answer>"
 * ```
 * The answer is the decimal integer, with a leading "-" when negative. The verifier compares integer
 * values, so "0357" also counts as correct; anything else in the answer span (spaces inside the number,
 * "+", letters) is not an integer and is wrong.
 *
 * Split: the canonical problem is the prompt without "=", with the operands of + and * in ascending
 * order, so "12+345" and "345+12" always share a split.
 *
 * Besides `sample` and `verify`, the task writes paraphrases of a prompt with the same answer (`paraphrases`,
 * for PS-GRPO's paraphrase sets: "12+345=", "345+12=", "What is 12 plus 345?", …) and a short digit-wise
 * reasoning trace (`trace`, for SFT targets with a `<think>…</think>` part, e.g. "7+5=12,4+8+1=13" for
 * 47+85). Both use printable ASCII only, so the char tokenizer encodes them.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { extractAnswer } from "./format.js";
import { evalFractionSchema, intRange, parseOptions, tagSchema } from "./options.js";
import type { Rng } from "./rng.js";
import { drawInSplit } from "./split.js";
import type { Problem, Split, Task, Verdict } from "./types.js";

export const ARITHMETIC_OPS = ["add", "sub", "mul"] as const;
export type ArithmeticOp = (typeof ARITHMETIC_OPS)[number];

const SYMBOL: Record<ArithmeticOp, string> = { add: "+", sub: "-", mul: "*" };

export const arithmeticOptions = z
  .strictObject({
    ops: z
      .partialRecord(z.enum(ARITHMETIC_OPS), z.number().min(0))
      .default({ add: 1, sub: 1, mul: 1 })
      .refine((w) => Object.values(w).some((x) => (x ?? 0) > 0), {
        message: "at least one operation needs a positive weight",
      })
      .meta({ description: "Relative weight of each operation (add, sub, mul); missing ones get 0." }),
    digits: intRange(1, 40)
      .default([1, 3])
      .meta({ description: "Digit count of each operand, [min, max] or one integer; 1-digit operands include 0." }),
    digitsA: intRange(1, 40).optional().meta({ description: "Digit count of the left operand; overrides digits." }),
    digitsB: intRange(1, 40).optional().meta({ description: "Digit count of the right operand; overrides digits." }),
    negative: z
      .boolean()
      .default(false)
      .meta({ description: "Allow negative differences; when false, a − b has a ≥ b (operands are swapped)." }),
    evalFraction: evalFractionSchema,
    tag: tagSchema,
  })
  .meta({ description: "Multi-digit addition, subtraction and multiplication." });

export type ArithmeticOptions = z.input<typeof arithmeticOptions>;

/** Problem metadata; operands are decimal strings (they may exceed 2^53). */
export type ArithmeticMeta = { op: ArithmeticOp; a: string; b: string };

function randomDigits(rng: Rng, digits: number): bigint {
  if (digits === 1) return BigInt(rng.int(0, 9));
  let s = String(rng.int(1, 9));
  for (let i = 1; i < digits; i++) s += String(rng.int(0, 9));
  return BigInt(s);
}

const INTEGER_RE = /^-?[0-9]+$/;
const OPERAND_RE = /^[0-9]+$/;

/** Other wordings of an arithmetic prompt, same answer, the most familiar form first (without the prompt). */
export function arithmeticParaphrases(meta: ArithmeticMeta): string[] {
  const { op, a, b } = meta;
  if (op === "add") return [...(a !== b ? [`${b}+${a}=`] : []), `What is ${a} plus ${b}?`, `Add ${a} and ${b}:`];
  if (op === "sub") return [`What is ${a} minus ${b}?`, `Subtract ${b} from ${a}:`];
  return [...(a !== b ? [`${b}*${a}=`] : []), `What is ${a} times ${b}?`, `Multiply ${a} by ${b}:`];
}

const digitsOf = (x: string): number[] => [...x].reverse().map(Number);

/** Column addition, least significant digit first: "7+5=12,4+8+1=13" for 47+85. */
function addTrace(a: string, b: string): string {
  const da = digitsOf(a);
  const db = digitsOf(b);
  const steps: string[] = [];
  let carry = 0;
  for (let i = 0; i < Math.max(da.length, db.length); i++) {
    const terms = [da[i], db[i], carry > 0 ? carry : undefined].filter((t): t is number => t !== undefined);
    const sum = terms.reduce((x, y) => x + y, 0);
    steps.push(`${terms.join("+")}=${sum}`);
    carry = sum >= 10 ? 1 : 0;
  }
  return steps.join(",");
}

/** Column subtraction of x ≥ y with borrows: "12-7=5,5-1-1=3" for 52-17. */
function subTrace(x: string, y: string): string {
  const dx = digitsOf(x);
  const dy = digitsOf(y);
  const steps: string[] = [];
  let borrow = 0;
  for (let i = 0; i < dx.length; i++) {
    const top = dx[i] as number;
    const sub = dy[i] ?? 0;
    const lend = top - borrow < sub ? 10 : 0;
    steps.push(`${top + lend}-${sub}${borrow > 0 ? "-1" : ""}=${top + lend - sub - borrow}`);
    borrow = lend > 0 ? 1 : 0;
  }
  return steps.join(",");
}

/** Partial products by the digits of b, then their sum: "46*3=138,46*20=920,138+920=1058". */
function mulTrace(a: string, b: string): string {
  const db = digitsOf(b);
  const parts: bigint[] = [];
  const steps: string[] = [];
  db.forEach((d, i) => {
    if (d === 0 && db.length > 1) return;
    const factor = BigInt(d) * 10n ** BigInt(i);
    const part = BigInt(a) * factor;
    parts.push(part);
    steps.push(`${a}*${factor}=${part}`);
  });
  if (parts.length > 1) steps.push(`${parts.join("+")}=${parts.reduce((x, y) => x + y, 0n)}`);
  return steps.join(",");
}

/** A digit-wise reasoning trace that ends at the answer (no tags; printable ASCII). */
export function arithmeticTrace(meta: ArithmeticMeta): string {
  const { op, a, b } = meta;
  if (op === "add") return addTrace(a, b);
  if (op === "mul") return mulTrace(a, b);
  return BigInt(a) >= BigInt(b) ? subTrace(a, b) : `${subTrace(b, a)},negate`;
}

/** The arithmetic task: `Task` plus paraphrases and reasoning traces of its problems. */
export interface ArithmeticTask extends Task<ArithmeticMeta> {
  /** Other prompts with the same answer (PS-GRPO); see `arithmeticParaphrases`. */
  paraphrases(problem: Problem): string[];
  /** A digit-wise reasoning trace (SFT `<think>…</think>` targets); see `arithmeticTrace`. */
  trace(problem: Problem): string;
}

/** The operands of an arithmetic problem; fails for a problem this task did not build. */
function metaOf(problem: Problem): ArithmeticMeta {
  const m = problem.meta as Partial<ArithmeticMeta>;
  if (
    !ARITHMETIC_OPS.includes(m.op as ArithmeticOp) ||
    typeof m.a !== "string" ||
    typeof m.b !== "string" ||
    !OPERAND_RE.test(m.a) ||
    !OPERAND_RE.test(m.b)
  ) {
    throw new CohortError(
      `arithmetic problem ${problem.id} has no operands in meta {op, a, b}; build problems with sample()`,
    );
  }
  return m as ArithmeticMeta;
}

/** Build the task; invalid options throw a ConfigError at `path`. */
export function arithmeticTask(options: ArithmeticOptions = {}, path = "task.options"): ArithmeticTask {
  const o = parseOptions(arithmeticOptions, options, path);
  const ops = ARITHMETIC_OPS.filter((op) => (o.ops[op] ?? 0) > 0);
  const weights = ops.map((op) => o.ops[op] ?? 0);
  const digitsA = o.digitsA ?? o.digits;
  const digitsB = o.digitsB ?? o.digits;
  const name = "arithmetic";

  function draw(rng: Rng): { canonical: string; value: Problem<ArithmeticMeta> } {
    const op = ops[rng.weighted(weights)] as ArithmeticOp;
    let a = randomDigits(rng, rng.int(digitsA[0], digitsA[1]));
    let b = randomDigits(rng, rng.int(digitsB[0], digitsB[1]));
    if (op === "sub" && !o.negative && a < b) [a, b] = [b, a];
    const result = op === "add" ? a + b : op === "sub" ? a - b : a * b;
    const sym = SYMBOL[op];
    const text = `${a}${sym}${b}`;
    const canonical = op === "sub" || a <= b ? text : `${b}${sym}${a}`;
    return {
      canonical,
      value: { id: `${name}/${text}`, prompt: `${text}=`, answer: `${result}`, meta: { op, a: `${a}`, b: `${b}` } },
    };
  }

  return {
    name,
    sample(rng: Rng, split: Split) {
      return drawInSplit(name, split, o.evalFraction, () => draw(rng), name);
    },
    verify(problem, completion): Verdict {
      if (problem.answer === undefined || !INTEGER_RE.test(problem.answer)) {
        throw new CohortError(`arithmetic problem ${problem.id} has no integer answer; build problems with sample()`);
      }
      const { format, parsed } = extractAnswer(completion, o.tag);
      if (parsed === undefined) return { correct: false, format, reason: `no <${o.tag}>…</${o.tag}> span` };
      if (!INTEGER_RE.test(parsed)) return { correct: false, format, parsed, reason: "answer is not an integer" };
      const correct = BigInt(parsed) === BigInt(problem.answer);
      return correct ? { correct, format, parsed } : { correct, format, parsed, reason: "wrong value" };
    },
    paraphrases: (problem) => arithmeticParaphrases(metaOf(problem)),
    trace: (problem) => arithmeticTrace(metaOf(problem)),
  };
}
