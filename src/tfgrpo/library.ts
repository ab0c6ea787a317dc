/**
 * The experience library of Training-Free GRPO (arXiv 2510.08191, ALGORITHMS.md §B.28 [CODE]): numbered
 * text items `E = {G0: text, G1: text, …}`, the "weights" the method learns. One update (step 4 of §B.28):
 *
 * ```
 * candidates = E + every "add" of the group critiques as C0, C1, …
 * requests   = the critiques' "modify" / "delete" operations whose target exists
 * plan       = the LLM's revision of (candidates, requests): modify id → text, merge ids → text, delete id
 * E'         = plan applied to candidates (merge deletes its sources), renumbered G0, G1, …
 * ```
 * Deletion: the reference code deletes only through merges; the paper's operation set also has Delete, so a
 * plan may delete too (design choice). When no parseable plan comes back after the configured attempts, the
 * requests are applied as written (design choice; the reference keeps only the additions then). Entries
 * nobody mentions are kept. The file format is `{"format": "cohort-experiences", "version": 1, …}`.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { CohortError } from "../errors.js";
import { writeJsonAtomic } from "../io/atomic.js";
import type { CritiqueOp, RevisionOp } from "./parse.js";

export const LIBRARY_FORMAT = "cohort-experiences";

export class ExperienceLibrary {
  readonly #items: Map<string, string>;

  constructor(items: Iterable<[string, string]> = []) {
    this.#items = new Map(items);
  }

  get size(): number {
    return this.#items.size;
  }

  has(id: string): boolean {
    return this.#items.has(id);
  }

  get(id: string): string | undefined {
    return this.#items.get(id);
  }

  entries(): [string, string][] {
    return [...this.#items.entries()];
  }

  toJSON(): Record<string, string> {
    return Object.fromEntries(this.#items);
  }

  /** `[G0]. text` lines, the form injected into prompts; "" when empty. */
  render(): string {
    return this.entries()
      .map(([id, t]) => `[${id}]. ${t}`)
      .join("\n");
  }
}

/** What an update did, for the run log. */
export interface UpdateCounts {
  added: number;
  modifyRequests: number;
  deleteRequests: number;
  keeps: number;
  /** Critique operations that targeted an id not in the library. */
  unknownTargets: number;
  planModified: number;
  planMerged: number;
  planDeleted: number;
  /** Plan operations that named unknown ids (skipped). */
  planSkipped: number;
  /** true when no parseable plan came back and the requests were applied directly. */
  planFallback: boolean;
}

export type ModifyOrDelete = Extract<CritiqueOp, { op: "modify" | "delete" }>;

/** Step 4a: the candidate library (adds as C0, C1, …) and the modify/delete requests on existing entries. */
export function candidatesFrom(
  lib: ExperienceLibrary,
  ops: readonly CritiqueOp[],
): { candidates: Map<string, string>; requests: ModifyOrDelete[]; counts: UpdateCounts } {
  const candidates = new Map(lib.entries());
  const requests: ModifyOrDelete[] = [];
  const counts: UpdateCounts = {
    added: 0,
    modifyRequests: 0,
    deleteRequests: 0,
    keeps: 0,
    unknownTargets: 0,
    planModified: 0,
    planMerged: 0,
    planDeleted: 0,
    planSkipped: 0,
    planFallback: false,
  };
  for (const op of ops) {
    if (op.op === "add") {
      candidates.set(`C${counts.added}`, op.text);
      counts.added++;
    } else if (op.op === "keep") counts.keeps++;
    else if (!lib.has(op.id)) counts.unknownTargets++;
    else {
      requests.push(op);
      if (op.op === "modify") counts.modifyRequests++;
      else counts.deleteRequests++;
    }
  }
  return { candidates, requests, counts };
}

/** Step 4b: applies a revision plan to the candidates (unknown ids are skipped and counted). */
export function applyPlan(
  candidates: Map<string, string>,
  plan: readonly RevisionOp[],
  counts: UpdateCounts,
): Map<string, string> {
  const out = new Map(candidates);
  let next = 0;
  while (out.has(`C${next}`)) next++;
  for (const op of plan) {
    if (op.op === "keep") continue;
    if (op.op === "modify") {
      if (!out.has(op.id)) counts.planSkipped++;
      else {
        out.set(op.id, op.text);
        counts.planModified++;
      }
    } else if (op.op === "delete") {
      if (!out.delete(op.id)) counts.planSkipped++;
      else counts.planDeleted++;
    } else {
      const present = op.ids.filter((id) => out.has(id));
      if (present.length === 0) {
        counts.planSkipped++;
        continue;
      }
      for (const id of present) out.delete(id);
      while (out.has(`C${next}`)) next++;
      out.set(`C${next}`, op.text);
      counts.planMerged++;
    }
  }
  return out;
}

/** The fallback of step 4b: the critiques' requests applied as written. */
export function applyRequests(
  candidates: Map<string, string>,
  requests: readonly ModifyOrDelete[],
): Map<string, string> {
  const out = new Map(candidates);
  for (const r of requests) {
    if (r.op === "modify") {
      if (out.has(r.id)) out.set(r.id, r.text);
    } else out.delete(r.id);
  }
  return out;
}

/** Step 4c: ids G0, G1, … in order. */
export function renumber(items: Map<string, string>): ExperienceLibrary {
  return new ExperienceLibrary([...items.values()].map((t, i) => [`G${i}`, t] as [string, string]));
}

/** Saves the library atomically (temp file + fsync + rename). */
export function saveLibrary(path: string, lib: ExperienceLibrary, meta: { epoch: number; step: number }): void {
  writeJsonAtomic(path, { format: LIBRARY_FORMAT, version: 1, ...meta, experiences: lib.toJSON() });
}

/** Reads a library saved by `saveLibrary` (or a plain `{id: text}` object). */
export function loadLibrary(path: string): ExperienceLibrary {
  return readLibraryFile(path).library;
}

/** `loadLibrary`, plus the step it was saved after (null for a file `saveLibrary` did not write). */
export function readLibraryFile(path: string): { library: ExperienceLibrary; step: number | null } {
  if (!existsSync(path))
    throw new CohortError(`experience library ${path} does not exist; run \`cohort tfgrpo\` first`);
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new CohortError(
      `${path} is not valid JSON (${(e as Error).message}); pass the experiences.json of a tfgrpo run`,
    );
  }
  const o = j as { format?: unknown; experiences?: unknown; step?: unknown };
  const items = o !== null && typeof o === "object" && o.format === LIBRARY_FORMAT ? o.experiences : j;
  if (items === null || typeof items !== "object" || Array.isArray(items))
    throw new CohortError(`${path}: expected {"experiences": {"G0": "…"}} or an object of id → text`);
  const entries = Object.entries(items as Record<string, unknown>);
  const bad = entries.find(([, v]) => typeof v !== "string");
  if (bad) throw new CohortError(`${path}: experience "${bad[0]}" is not a string`);
  const step = typeof o?.step === "number" && Number.isInteger(o.step) && o.step >= 0 ? o.step : null;
  return { library: new ExperienceLibrary(entries as [string, string][]), step };
}
