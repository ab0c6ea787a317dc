/**
 * Turning a zod validation failure into a message that names the key path, the problem and the value given:
 * shared by the train config, the Training-Free GRPO config, task, dataset and environment options, the rollout
 * config and the server's request checks. An unknown key is named with its full path and the keys allowed there.
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

interface SchemaDef {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  out?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: readonly z.ZodType[];
  getter?: () => z.ZodType;
}

const defOf = (s: z.ZodType): SchemaDef => (s as unknown as { _zod: { def: SchemaDef } })._zod.def;

/** The object schemas `s` may be once wrappers (optional, default, pipe, lazy, …) are looked through. */
function objectsOf(s: z.ZodType, depth = 0): SchemaDef[] {
  if (depth > 16) return [];
  const d = defOf(s);
  if (d.type === "object") return [d];
  if (d.innerType !== undefined) return objectsOf(d.innerType, depth + 1);
  if (d.type === "pipe")
    return [...(d.out ? objectsOf(d.out, depth + 1) : []), ...(d.in ? objectsOf(d.in, depth + 1) : [])];
  if (d.type === "union" && d.options) return d.options.flatMap((o) => objectsOf(o, depth + 1));
  if (d.type === "lazy" && d.getter) return objectsOf(d.getter(), depth + 1);
  return [];
}

/** The schemas one step (`key`) below `s`: an object's field, an array's element, a record's value. */
function childrenOf(s: z.ZodType, key: PropertyKey, depth = 0): z.ZodType[] {
  if (depth > 16) return [];
  const d = defOf(s);
  if (d.type === "object") {
    const f = d.shape?.[String(key)];
    return f === undefined ? [] : [f];
  }
  if (d.type === "array" && d.element) return [d.element];
  if (d.type === "record" && d.valueType) return [d.valueType];
  if (d.innerType !== undefined) return childrenOf(d.innerType, key, depth + 1);
  if (d.type === "pipe")
    return [...(d.out ? childrenOf(d.out, key, depth + 1) : []), ...(d.in ? childrenOf(d.in, key, depth + 1) : [])];
  if (d.type === "union" && d.options) return d.options.flatMap((o) => childrenOf(o, key, depth + 1));
  if (d.type === "lazy" && d.getter) return childrenOf(d.getter(), key, depth + 1);
  return [];
}

/** The keys the object schema at `path` inside `schema` allows (empty when the path does not lead to one). */
export function allowedKeysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let cur: z.ZodType[] = [schema];
  for (const k of path) cur = cur.flatMap((s) => childrenOf(s, k));
  const keys = new Set<string>();
  for (const s of cur) for (const o of objectsOf(s)) for (const k of Object.keys(o.shape ?? {})) keys.add(k);
  return [...keys];
}

/** A key path as written in a config: `dataset.options.evalPath`, `rewards[1].fn`. */
export function joinKeyPath(parts: readonly PropertyKey[]): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else if (String(p) !== "") out += out === "" ? String(p) : `.${String(p)}`;
  }
  return out;
}

/** One issue as `{path, message}`: unknown keys listed with the keys allowed there, other issues with the value given. */
export function describeIssue(
  issue: z.core.$ZodIssue,
  raw: unknown,
  schema?: z.ZodType,
  unknownKeyHint = "check the spelling",
): { path: PropertyKey[]; message: string } {
  if (issue.code === "unrecognized_keys") {
    const allowed = schema === undefined ? [] : allowedKeysAt(schema, issue.path);
    const hint = allowed.length > 0 ? `allowed keys: ${allowed.join(", ")}` : unknownKeyHint;
    return {
      path: issue.keys.length === 1 ? [...issue.path, issue.keys[0] as string] : [...issue.path],
      message: `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}; ${hint}`,
    };
  }
  const got = valueAt(raw, issue.path);
  return {
    path: [...issue.path],
    message: got === undefined ? issue.message : `${issue.message} (got ${describeValue(got)})`,
  };
}

/**
 * The ConfigError for the first issue of a failed parse of `raw` against `schema`, its path under `root`: an
 * unknown key is named in the path with the keys allowed there (or `unknownKeyHint` when the schema is not
 * given); any other issue shows the value that was given.
 */
export function configErrorFromIssues(
  issues: readonly z.core.$ZodIssue[],
  raw: unknown,
  unknownKeyHint = "check the spelling",
  schema?: z.ZodType,
  root: readonly PropertyKey[] = [],
): ConfigError {
  const d = describeIssue(issues[0] as z.core.$ZodIssue, raw, schema, unknownKeyHint);
  return new ConfigError(d.message, joinKeyPath([...root, ...d.path]));
}
