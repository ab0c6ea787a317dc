/**
 * Validation of task options with zod: an invalid option becomes a ConfigError that names the option
 * path, the received value and what is allowed.
 * @module
 */
import { z } from "zod";
import { describeIssue, joinKeyPath } from "../config-issue.js";
import { ConfigError } from "../errors.js";

/**
 * Parse `input` with `schema`; on failure throw a ConfigError naming the full key path under `path` (one issue:
 * `dataset.options.evalFile: unknown key "evalFile"; allowed keys: …`), or listing every issue relative to it.
 */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, path: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => describeIssue(issue, input, schema));
  if (issues.length === 1) {
    const d = issues[0] as (typeof issues)[number];
    throw new ConfigError(d.message, joinKeyPath([path, ...d.path]));
  }
  const lines = issues.map((d) => {
    const at = joinKeyPath(d.path);
    return at === "" ? d.message : `${at}: ${d.message}`;
  });
  throw new ConfigError(lines.join("; "), path);
}

/** An inclusive integer range `[min, max]` in [lo, hi]; a single integer n means [n, n]. */
export function intRange(lo: number, hi: number) {
  const int = z.number().int().min(lo).max(hi);
  return z
    .preprocess((v) => (typeof v === "number" ? [v, v] : v), z.tuple([int, int]))
    .refine((r) => r[0] <= r[1], { message: "range [min, max] needs min ≤ max" });
}

export const evalFractionSchema = z
  .number()
  .min(0)
  .max(1)
  .default(0.1)
  .meta({ description: "Fraction of the problem space held out for evaluation (by hash), in [0, 1]." });

/** An environment's held-out fraction, strictly inside (0, 1) (both splits must have tasks); `what` names them. */
export function envEvalFraction(what: string) {
  return z
    .number()
    .gt(0)
    .lt(1)
    .default(0.2)
    .meta({ description: `Fraction of ${what} held out for evaluation (by hash).` });
}

export const tagSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, { message: 'expected a plain tag name such as "answer"' })
  .default("answer")
  .meta({ description: "Answer tag name: completions answer as <tag>…</tag>." });
