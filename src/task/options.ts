/**
 * Validation of task options with zod: an invalid option becomes a ConfigError that names the option
 * path, the received value and what is allowed.
 * @module
 */
import { z } from "zod";
import { valueAt } from "../config-issue.js";
import { ConfigError } from "../errors.js";

/** Parse `input` with `schema`; on failure throw a ConfigError at `path` listing every issue (paths relative to it). */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, path: string): z.output<S> {
  const result = schema.safeParse(input ?? {});
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    if (issue.path.length === 0) return issue.message;
    const received = valueAt(input, issue.path);
    const shown = received === undefined ? "" : ` (received ${JSON.stringify(received)})`;
    return `${issue.path.map(String).join(".")}: ${issue.message}${shown}`;
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

export const tagSchema = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9_-]*$/, { message: 'expected a plain tag name such as "answer"' })
  .default("answer")
  .meta({ description: "Answer tag name: completions answer as <tag>…</tag>." });
