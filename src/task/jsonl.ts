/**
 * User datasets as JSONL: one JSON object per line. A configurable field holds the prompt, another the
 * answer (or none); every field of the line is passed through to reward functions as `fields`.
 *
 * ```jsonl
 * {"prompt": "What is 2+3?", "answer": "5", "source": "hand-written"}
 * ```
 * Blank lines are skipped. Problem ids are `<file name>:<line>` unless `idField` names a field; `meta` is
 * the whole parsed line.
 * Split: a line is held out for evaluation when the hash of its prompt falls under `evalFraction`
 * (split.ts), so a prompt that appears twice is always on one side, whatever the file order.
 * @module
 */
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { checkTag, DEFAULT_ANSWER_TAG, extractAnswer } from "./format.js";
import { evalFractionSchema, parseOptions } from "./options.js";
import type { Rng } from "./rng.js";
import { splitOf } from "./split.js";
import type { Problem, Split, Task, Verdict } from "./types.js";

/** A malformed dataset line; `file`, `line` (1-based) and `field` locate it. */
export class DatasetError extends CohortError {
  override name = "DatasetError";
  readonly file: string;
  readonly line: number;
  readonly field: string | undefined;
  constructor(message: string, file: string, line: number, field?: string) {
    super(message);
    this.file = file;
    this.line = line;
    this.field = field;
  }
}

export const jsonlOptions = z.strictObject({
  promptField: z.string().min(1).default("prompt").meta({ description: "Field that holds the prompt text." }),
  answerField: z
    .string()
    .min(1)
    .nullable()
    .default("answer")
    .meta({ description: "Field that holds the expected answer; null for datasets scored by reward functions only." }),
  idField: z
    .string()
    .min(1)
    .optional()
    .meta({ description: "Field that holds a unique problem id; default <file name>:<line>." }),
  evalFraction: evalFractionSchema,
  splitSalt: z.string().default("").meta({ description: "Changes which lines are held out, for a different split." }),
});

export type JsonlOptions = z.input<typeof jsonlOptions>;

/** Problem metadata of a dataset line: all its fields, as parsed (prompt and answer included). */
export type JsonlMeta = Record<string, unknown>;

export interface JsonlDataset {
  file: string;
  /** All lines in file order. */
  problems: Problem<JsonlMeta>[];
  /** The 1-based line of each problem in the file (`lines[i]` for `problems[i]`). */
  lines: number[];
  train: Problem<JsonlMeta>[];
  eval: Problem<JsonlMeta>[];
}

/** At most this many line errors are listed in one DatasetError. */
const MAX_REPORTED_ERRORS = 5;

function scalarText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  return undefined;
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** Parse JSONL text; `file` is used in ids and error messages. Throws a DatasetError on bad lines. */
export function parseJsonl(text: string, file: string, options: JsonlOptions = {}): JsonlDataset {
  const o = parseOptions(jsonlOptions, options, "dataset");
  const errors: DatasetError[] = [];
  const problems: Problem<JsonlMeta>[] = [];
  const ids = new Map<string, number>();
  const name = basename(file);
  const problemLines: number[] = [];
  // a UTF-8 byte order mark (written by some editors) is not part of the first line
  const lines = (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split("\n");
  lines.forEach((raw, i) => {
    const line = i + 1;
    const fail = (msg: string, field?: string) =>
      errors.push(new DatasetError(`${file}:${line}: ${msg}`, file, line, field));
    const src = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
    if (src.trim() === "") return;
    let rec: unknown;
    try {
      rec = JSON.parse(src);
    } catch (e) {
      fail(`invalid JSON (${(e as Error).message}); each line must be one JSON object`);
      return;
    }
    if (rec === null || typeof rec !== "object" || Array.isArray(rec)) {
      fail(`expected a JSON object, found ${typeName(rec)}`);
      return;
    }
    const fields = rec as Record<string, unknown>;
    const present = Object.keys(fields);
    const have = present.length > 0 ? present.join(", ") : "none";
    if (!(o.promptField in fields)) {
      fail(
        `missing field "${o.promptField}" (the prompt field); fields present: ${have}. Set promptField to the field that holds the prompt`,
        o.promptField,
      );
      return;
    }
    const prompt = fields[o.promptField];
    if (typeof prompt !== "string") {
      fail(`field "${o.promptField}" (the prompt) must be a string, found ${typeName(prompt)}`, o.promptField);
      return;
    }
    let answer: string | undefined;
    if (o.answerField !== null) {
      if (!(o.answerField in fields)) {
        fail(
          `missing field "${o.answerField}" (the answer field); fields present: ${have}. Set answerField to the field that holds the answer, or to null if rewards need no answer`,
          o.answerField,
        );
        return;
      }
      answer = scalarText(fields[o.answerField]);
      if (answer === undefined) {
        fail(
          `field "${o.answerField}" (the answer) must be a string, number or boolean, found ${typeName(fields[o.answerField])}`,
          o.answerField,
        );
        return;
      }
    }
    let id = `${name}:${line}`;
    if (o.idField !== undefined) {
      const v = scalarText(fields[o.idField]);
      if (v === undefined) {
        fail(
          `field "${o.idField}" (the id field) must be a string or number, found ${typeName(fields[o.idField])}`,
          o.idField,
        );
        return;
      }
      const first = ids.get(v);
      if (first !== undefined) {
        fail(
          `id ${JSON.stringify(v)} (field "${o.idField}") already used on line ${first}; ids must be unique`,
          o.idField,
        );
        return;
      }
      ids.set(v, line);
      id = v;
    }
    const p: Problem<JsonlMeta> = { id, prompt, meta: fields };
    if (answer !== undefined) p.answer = answer;
    problems.push(p);
    problemLines.push(line);
  });
  if (errors.length > 0) {
    const first = errors[0] as DatasetError;
    const shown = errors.slice(0, MAX_REPORTED_ERRORS).map((e) => e.message);
    const more = errors.length > MAX_REPORTED_ERRORS ? `\n(${errors.length - MAX_REPORTED_ERRORS} more bad lines)` : "";
    const head = errors.length === 1 ? "" : `${errors.length} bad lines in ${file}:\n`;
    throw new DatasetError(`${head}${shown.join("\n")}${more}`, first.file, first.line, first.field);
  }
  if (problems.length === 0) {
    throw new DatasetError(`${file}: no records; a JSONL dataset needs at least one line with a JSON object`, file, 0);
  }
  const train: Problem<JsonlMeta>[] = [];
  const evalSet: Problem<JsonlMeta>[] = [];
  for (const p of problems) {
    (splitOf(p.prompt, o.evalFraction, o.splitSalt) === "eval" ? evalSet : train).push(p);
  }
  return { file, problems, lines: problemLines, train, eval: evalSet };
}

/** The dataset without the problems in `drop` (both splits keep their order). */
export function withoutProblems(ds: JsonlDataset, drop: ReadonlySet<Problem<JsonlMeta>>): JsonlDataset {
  const keep = ds.problems.map((p) => !drop.has(p));
  return {
    file: ds.file,
    problems: ds.problems.filter((_, i) => keep[i]),
    lines: ds.lines.filter((_, i) => keep[i]),
    train: ds.train.filter((p) => !drop.has(p)),
    eval: ds.eval.filter((p) => !drop.has(p)),
  };
}

/** Read and parse a JSONL file; see parseJsonl. A missing file throws a DatasetError naming the path. */
export async function loadJsonl(path: string, options: JsonlOptions = {}): Promise<JsonlDataset> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new DatasetError(`cannot read dataset ${path}: ${(e as Error).message}`, path, 0);
  }
  return parseJsonl(text, path, options);
}

/** The problems of one split in an order shuffled by `rng` (the dataset is not modified). */
export function shuffledSplit(ds: JsonlDataset, split: Split, rng: Rng): Problem<JsonlMeta>[] {
  return rng.shuffled(split === "train" ? ds.train : ds.eval);
}

export interface JsonlTaskOptions {
  /** Task name in logs; default the file name. */
  name?: string;
  /** Answer tag; default "answer". */
  tag?: string;
  /** "exact": trimmed strings equal (default); "numeric": both parse as finite numbers and are equal. */
  compare?: "exact" | "numeric";
}

/**
 * A Task over a dataset: `sample` draws uniformly (with replacement) from the split; `verify` extracts the
 * tagged answer and compares it with the line's answer. For epoch order without replacement use
 * EpochSampler over `ds.train`.
 */
export function jsonlTask(ds: JsonlDataset, options: JsonlTaskOptions = {}): Task<JsonlMeta> {
  const tag = checkTag(options.tag ?? DEFAULT_ANSWER_TAG, "task.options.tag");
  const compare = options.compare ?? "exact";
  const name = options.name ?? basename(ds.file);
  return {
    name,
    sample(rng, split) {
      const pool = split === "train" ? ds.train : ds.eval;
      if (pool.length === 0) {
        throw new CohortError(
          `${ds.file}: the ${split} split is empty (${ds.problems.length} lines); change evalFraction or add lines`,
        );
      }
      return rng.pick(pool);
    },
    verify(problem, completion): Verdict {
      const { format, parsed } = extractAnswer(completion, tag);
      if (parsed === undefined) return { correct: false, format, reason: `no <${tag}>…</${tag}> span` };
      if (problem.answer === undefined) return { correct: false, format, parsed, reason: "the problem has no answer" };
      const expected = problem.answer.trim();
      let correct: boolean;
      if (compare === "numeric") {
        const a = Number(parsed);
        const b = Number(expected);
        correct = parsed !== "" && expected !== "" && Number.isFinite(a) && a === b;
      } else {
        correct = parsed === expected;
      }
      return correct ? { correct, format, parsed } : { correct, format, parsed, reason: "wrong answer" };
    },
  };
}
