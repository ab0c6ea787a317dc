/**
 * Turning a zod validation failure into a message that names the key path, the problem and the value given:
 * shared by the train config, the Training-Free GRPO config, task options and the server's request checks.
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "./errors.js";

/** The value at `path` inside `obj` (undefined where the path leaves the object). */
export function valueAt(obj: unknown, path: readonly PropertyKey[]): unknown {
  let cur = obj;
  for (const k of path)
    cur = cur !== null && typeof cur === "object" ? (cur as Record<PropertyKey, unknown>)[k] : undefined;
  return cur;
}

/** A value as short JSON for an error message, cut to `max` characters. */
export function describeValue(v: unknown, max = 60): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > max ? `${s.slice(0, max - 3)}...` : s;
}

/**
 * The ConfigError for the first issue of a failed parse of `raw`: an unknown key is named in the path and
 * `unknownKeyHint` is appended; any other issue shows the value that was given.
 */
export function configErrorFromIssues(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  unknownKeyHint = "check the spelling",
): ConfigError {
  const issue = issues[0] as z.core.$ZodIssue;
  let path = issue.path.map(String);
  let message = issue.message;
  if (issue.code === "unrecognized_keys") {
    if (issue.keys.length === 1) path = [...path, issue.keys[0] as string];
    message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}; ${unknownKeyHint}`;
  } else {
    const got = valueAt(raw, issue.path);
    if (got !== undefined) message = `${message} (got ${describeValue(got)})`;
  }
  return new ConfigError(message, path.join("."));
}
