/**
 * Robust reading of the operations an LLM writes for Training-Free GRPO. Model output is never trusted:
 * the JSON is looked for in fenced blocks, then in the whole text, then between the first bracket and the
 * last; trailing commas and typographic quotes are repaired; each operation is validated on its own, so
 * one bad item is skipped (and counted) without losing the others. Nothing here throws on model output.
 *
 * Accepted spellings: the operation under `op`, `option`, `operation` or `action`; the text under `text`,
 * `experience`, `content` or `lesson`; the target under `id`, `modified_from` or `target`; merge sources
 * under `ids` or `merged_from`. Ids may be written `G3`, `[G3]` or `3` (→ `G3` when `G3` is meant).
 * @module
 */

export type CritiqueOp =
  | { op: "add"; text: string }
  | { op: "modify"; id: string; text: string }
  | { op: "delete"; id: string }
  | { op: "keep" };

export type RevisionOp =
  | { op: "modify"; id: string; text: string }
  | { op: "merge"; ids: string[]; text: string }
  | { op: "delete"; id: string }
  | { op: "keep" };

export interface Parsed<T> {
  /** The operations that validated. */
  ops: T[];
  /** Items that were not valid operations. */
  malformed: number;
  /** Set when no JSON could be read at all (the whole output is unusable). */
  error?: string;
}

function candidates(text: string): string[] {
  const out: string[] = [];
  const fence = /```(?:json|JSON)?\s*\n?([\s\S]*?)```/g;
  const fenced = [...text.matchAll(fence)].map((m) => (m[1] as string).trim());
  out.push(...fenced.reverse());
  out.push(text.trim());
  for (const [open, close] of [
    ["[", "]"],
    ["{", "}"],
  ] as const) {
    const a = text.indexOf(open);
    const b = text.lastIndexOf(close);
    if (a >= 0 && b > a) out.push(text.slice(a, b + 1));
  }
  return out;
}

function repair(s: string): string {
  return s
    .replace(/[\u201c\u201d]/g, '"')
    .replace(/[\u2018\u2019]/g, "'")
    .replace(/,\s*([\]}])/g, "$1");
}

/** The first JSON value found in `text` (see the module doc), or why there is none. */
export function extractJson(text: string): { ok: true; value: unknown } | { ok: false; error: string } {
  if (typeof text !== "string" || text.trim() === "") return { ok: false, error: "the output is empty" };
  let lastError = "no JSON found";
  for (const c of candidates(text)) {
    for (const attempt of [c, repair(c)]) {
      try {
        return { ok: true, value: JSON.parse(attempt) };
      } catch (e) {
        lastError = (e as Error).message;
      }
    }
  }
  return { ok: false, error: `no parseable JSON (${lastError})` };
}

const field = (o: Record<string, unknown>, names: string[]): unknown => {
  for (const n of names) if (o[n] !== undefined && o[n] !== null) return o[n];
  return undefined;
};

const text = (o: Record<string, unknown>): string | null => {
  const t = field(o, ["text", "experience", "content", "lesson"]);
  return typeof t === "string" && t.trim() !== "" ? t.trim() : null;
};

/** An id as the library spells it: `[G3]` → `G3`, `3` → `G3` (numbers mean library entries). */
export function normalizeId(v: unknown): string | null {
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) return `G${v}`;
  if (typeof v !== "string") return null;
  const s = v
    .trim()
    .replace(/^\[(.*)\]\.?$/, "$1")
    .trim();
  if (/^\d+$/.test(s)) return `G${s}`;
  return /^[A-Za-z]\d+$/.test(s) ? s.toUpperCase() : null;
}

const opName = (o: Record<string, unknown>): string | null => {
  const v = field(o, ["op", "option", "operation", "action"]);
  return typeof v === "string" ? v.trim().toLowerCase() : null;
};

/** The list of raw items: an array, `{operations: [...]}`-like wrappers, or one object. */
function items(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (value !== null && typeof value === "object") {
    const o = value as Record<string, unknown>;
    for (const k of ["operations", "ops", "plan", "revision_plan", "updates"])
      if (Array.isArray(o[k])) return o[k] as unknown[];
    return [value];
  }
  return [value];
}

function critiqueItem(raw: unknown): CritiqueOp | null {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const o = raw as Record<string, unknown>;
  const op = opName(o);
  const t = text(o);
  const id = normalizeId(field(o, ["id", "modified_from", "target"]));
  if (op === "add" && t) return { op, text: t };
  if ((op === "modify" || op === "update") && t && id) return { op: "modify", id, text: t };
  if ((op === "delete" || op === "remove") && id) return { op: "delete", id };
  if (op === "keep" || op === "none") return { op: "keep" };
  return null;
}

function revisionItem(raw: unknown): RevisionOp | null {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return null;
  const o = raw as Record<string, unknown>;
  const op = opName(o);
  const t = text(o);
  if ((op === "modify" || op === "update") && t) {
    const id = normalizeId(field(o, ["id", "modified_from", "target"]));
    return id ? { op: "modify", id, text: t } : null;
  }
  if (op === "merge" && t) {
    const src = field(o, ["ids", "merged_from", "sources"]);
    if (!Array.isArray(src)) return null;
    const ids = src.map(normalizeId);
    if (ids.length < 1 || ids.some((x) => x === null)) return null;
    return { op: "merge", ids: [...new Set(ids as string[])], text: t };
  }
  if (op === "delete" || op === "remove") {
    const id = normalizeId(field(o, ["id", "target"]));
    return id ? { op: "delete", id } : null;
  }
  if (op === "keep" || op === "none") return { op: "keep" };
  return null;
}

function parseWith<T>(output: string, item: (raw: unknown) => T | null): Parsed<T> {
  const j = extractJson(output);
  if (!j.ok) return { ops: [], malformed: 0, error: j.error };
  const ops: T[] = [];
  let malformed = 0;
  for (const raw of items(j.value)) {
    const op = item(raw);
    if (op === null) malformed++;
    else ops.push(op);
  }
  return { ops, malformed };
}

/** The operations of a group critique. */
export function parseCritique(output: string): Parsed<CritiqueOp> {
  return parseWith(output, critiqueItem);
}

/** The operations of a batch revision plan. */
export function parseRevision(output: string): Parsed<RevisionOp> {
  return parseWith(output, revisionItem);
}
