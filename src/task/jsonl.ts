/**
 * User datasets as JSONL: one JSON object per line. A configurable field holds the prompt, another the
 * answer (or none); every field of the line is passed through to reward functions as `fields`.
 *
 * ```jsonl
 * {"prompt": "What is 2+3?", "answer": "5", "source": "hand-written"}
 * ```
 * A conversational line holds `messages` (`[{role, content}, …]`, as TRL's conversational format) instead of a
 * prompt: the conversation up to its last assistant message is the prompt, and that final assistant message is
 * the answer (unless the line has an answer field). The prompt text is then made by the chat template
 * (template.ts, applied where the tokenizer is known); until then `prompt` is the last user message.
 *
 * ```jsonl
 * {"messages": [{"role": "system", "content": "Sort digits."}, {"role": "user", "content": "9481"}, {"role": "assistant", "content": "1489"}]}
 * ```
 * Blank lines are skipped. Problem ids are `<file name>:<line>` unless `idField` names a field; `meta` is
 * the whole parsed line.
 * Split: a line is held out for evaluation when the hash of its prompt falls under `evalFraction`
 * (split.ts), so a prompt that appears twice is always on one side, whatever the file order; or, with
 * `evalPath`, every line of the training file trains and the held-out lines come from that file.
 * The built-in verifier (`correctness`, `format`, evaluation without a reward metric) reads the answer between
 * `<answer>` tags (`answerFormat: tagged`) or takes the whole completion (`plain`).
 * @module
 */
import { readFile } from "node:fs/promises";
import { basename, isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
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
  evalPath: z.string().min(1).optional().meta({
    description:
      "A separate JSONL file of held-out lines (same fields), relative to the config file; every line of the training file then trains (no evalFraction).",
  }),
  messagesField: z.string().min(1).default("messages").meta({
    description: "Field of a conversational line: [{role, content}, …], used when the prompt field is absent.",
  }),
  answerFormat: z.enum(["tagged", "plain"]).default("tagged").meta({
    description:
      "How the built-in verifier reads a completion: tagged = the text between <answer> tags, plain = the whole completion (trimmed).",
  }),
  targetField: z.string().min(1).optional().meta({
    description:
      "Field that holds a whole completion to imitate (reasoning and answer) for `cohort pretrain --dataset`; default the answer as answerFormat writes it. Training and evaluation do not read it.",
  }),
  compare: z.enum(["exact", "numeric"]).default("exact").meta({
    description: "How the built-in verifier compares: exact = equal trimmed strings, numeric = equal finite numbers.",
  }),
});

export type JsonlOptions = z.input<typeof jsonlOptions>;
export type ParsedJsonlOptions = z.output<typeof jsonlOptions>;

/** One turn of a conversational line. */
export interface Message {
  role: string;
  content: string;
  /** Other fields of the turn (tool calls, names) are passed to the chat template. */
  [field: string]: unknown;
}

/** Problem metadata of a dataset line: all its fields, as parsed (prompt and answer included). */
export type JsonlMeta = Record<string, unknown>;

export interface JsonlDataset {
  file: string;
  /** The options it was read with (defaults filled). */
  options: ParsedJsonlOptions;
  /** All lines in file order (with `evalPath`: the training file's, then the eval file's). */
  problems: Problem<JsonlMeta>[];
  /** The 1-based line of each problem in its file (`lines[i]` for `problems[i]`). */
  lines: number[];
  /** The file of each problem, when not every problem comes from `file` (`evalPath`). */
  files?: string[];
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

/** The conversation of a line (its prompt turns), or why it is not one. */
function conversationOf(v: unknown, field: string): { messages: Message[]; final?: string } | string {
  if (!Array.isArray(v) || v.length === 0)
    return `field "${field}" (a conversation) must be a non-empty array of {role, content}, found ${typeName(v)}`;
  const messages: Message[] = [];
  for (const [i, m] of v.entries()) {
    const role = (m as { role?: unknown } | null)?.role;
    const content = (m as { content?: unknown } | null)?.content;
    if (typeof role !== "string" || typeof content !== "string")
      return `${field}[${i}] must be {"role": string, "content": string}, found ${JSON.stringify(m)}`;
    messages.push({ ...(m as object), role, content });
  }
  const last = messages.at(-1) as Message;
  const prompt = last.role === "assistant" ? messages.slice(0, -1) : messages;
  if (!prompt.some((m) => m.role === "user"))
    return `${field} has no user message before the answer; a conversation needs at least one user turn`;
  if (prompt.at(-1)?.role === "assistant")
    return `${field} ends with two assistant messages; the prompt must end with a user (or tool) turn`;
  return last.role === "assistant" ? { messages: prompt, final: last.content } : { messages: prompt };
}

/**
 * The prompt turns of a conversational problem of a dataset read with `messagesField` (its line's messages
 * without the final answer), or null for a prompt line.
 */
export function promptMessages(p: Problem, messagesField = "messages", promptField = "prompt"): Message[] | null {
  if (promptField in p.meta || !(messagesField in p.meta)) return null;
  const c = conversationOf(p.meta[messagesField], messagesField);
  return typeof c === "string" ? null : c.messages;
}

/** Parse JSONL text; `file` is used in ids and error messages. Throws a DatasetError on bad lines. */
export function parseJsonl(text: string, file: string, options: JsonlOptions = {}): JsonlDataset {
  const o = parseOptions(jsonlOptions, options, "dataset.options");
  const ds = parseLines(text, file, o);
  const train: Problem<JsonlMeta>[] = [];
  const evalSet: Problem<JsonlMeta>[] = [];
  for (const p of ds.problems) {
    (splitOf(p.prompt, o.evalFraction, o.splitSalt) === "eval" ? evalSet : train).push(p);
  }
  return { file, options: o, problems: ds.problems, lines: ds.lines, train, eval: evalSet };
}

/** The lines of one file as problems; throws a DatasetError listing the bad lines. */
function parseLines(
  text: string,
  file: string,
  o: ParsedJsonlOptions,
): { problems: Problem<JsonlMeta>[]; lines: number[] } {
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
    let prompt: unknown;
    let conversation: { messages: Message[]; final?: string } | undefined;
    if (o.promptField in fields) prompt = fields[o.promptField];
    else if (o.messagesField in fields) {
      const c = conversationOf(fields[o.messagesField], o.messagesField);
      if (typeof c === "string") {
        fail(c, o.messagesField);
        return;
      }
      conversation = c;
      prompt = [...c.messages].reverse().find((m) => m.role === "user")?.content ?? "";
    } else {
      fail(
        `missing field "${o.promptField}" (the prompt field) or "${o.messagesField}" (a conversation); fields present: ${have}. Set promptField (or messagesField) to the field that holds the prompt`,
        o.promptField,
      );
      return;
    }
    if (typeof prompt !== "string") {
      fail(`field "${o.promptField}" (the prompt) must be a string, found ${typeName(prompt)}`, o.promptField);
      return;
    }
    let answer: string | undefined;
    if (o.answerField !== null && conversation !== undefined && !(o.answerField in fields)) {
      if (conversation.final === undefined) {
        fail(
          `the conversation in "${o.messagesField}" does not end with an assistant message (the answer) and there is no field "${o.answerField}"; add the answer, or set answerField to null if rewards need no answer`,
          o.messagesField,
        );
        return;
      }
      answer = conversation.final;
    } else if (o.answerField !== null) {
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
  return { problems, lines: problemLines };
}

/** The dataset without the problems in `drop` (both splits keep their order). */
export function withoutProblems(ds: JsonlDataset, drop: ReadonlySet<Problem<JsonlMeta>>): JsonlDataset {
  const keep = ds.problems.map((p) => !drop.has(p));
  return {
    file: ds.file,
    options: ds.options,
    problems: ds.problems.filter((_, i) => keep[i]),
    lines: ds.lines.filter((_, i) => keep[i]),
    ...(ds.files ? { files: ds.files.filter((_, i) => keep[i]) } : {}),
    train: ds.train.filter((p) => !drop.has(p)),
    eval: ds.eval.filter((p) => !drop.has(p)),
  };
}

/** The file a problem of `ds` comes from. */
export function fileOf(ds: JsonlDataset, i: number): string {
  return ds.files?.[i] ?? ds.file;
}

/** The dataset with each problem's prompt replaced by `f(problem)` (a chat template); splits keep their problems. */
export function mapPrompts(ds: JsonlDataset, f: (p: Problem<JsonlMeta>, i: number) => string): JsonlDataset {
  const moved = new Map<Problem<JsonlMeta>, Problem<JsonlMeta>>();
  const problems = ds.problems.map((p, i) => {
    const q = { ...p, prompt: f(p, i) };
    moved.set(p, q);
    return q;
  });
  const map = (xs: Problem<JsonlMeta>[]) => xs.map((p) => moved.get(p) ?? p);
  return { ...ds, problems, train: map(ds.train), eval: map(ds.eval) };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    throw new DatasetError(`cannot read ${what} ${path}: ${(e as Error).message}`, path, 0);
  }
}

/**
 * Read and parse a JSONL file; see parseJsonl. A missing file throws a DatasetError naming the path. With
 * `evalPath` (relative to `baseDir`, default the working directory) the held-out lines are that file's.
 */
export async function loadJsonl(path: string, options: JsonlOptions = {}, baseDir?: string): Promise<JsonlDataset> {
  const o = parseOptions(jsonlOptions, options, "dataset.options");
  const text = await readText(path, "dataset");
  if (o.evalPath === undefined) return parseJsonl(text, path, options);
  if ((options as { evalFraction?: unknown }).evalFraction !== undefined)
    throw new ConfigError(
      "with evalPath the held-out lines come from that file and every training line trains; remove evalFraction (or evalPath)",
      "dataset.options.evalFraction",
    );
  const evalFile = isAbsolute(o.evalPath) ? o.evalPath : resolve(baseDir ?? process.cwd(), o.evalPath);
  const tr = parseLines(text, path, o);
  const ev = parseLines(await readText(evalFile, "eval file (dataset.options.evalPath)"), evalFile, o);
  return {
    file: path,
    options: o,
    problems: [...tr.problems, ...ev.problems],
    lines: [...tr.lines, ...ev.lines],
    files: [...tr.problems.map(() => path), ...ev.problems.map(() => evalFile)],
    train: tr.problems,
    eval: ev.problems,
  };
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
  /** "exact": trimmed strings equal (default: the dataset's `compare`); "numeric": equal finite numbers. */
  compare?: "exact" | "numeric";
  /** "tagged": the answer between the tags (default: the dataset's `answerFormat`); "plain": the whole completion. */
  answerFormat?: "tagged" | "plain";
}

/**
 * A Task over a dataset: `sample` draws uniformly (with replacement) from the split; `verify` extracts the
 * answer (tagged, or the whole completion with `answerFormat: plain`) and compares it with the line's answer.
 * For epoch order without replacement use EpochSampler over `ds.train`.
 */
export function jsonlTask(ds: JsonlDataset, options: JsonlTaskOptions = {}): Task<JsonlMeta> {
  const tag = checkTag(options.tag ?? DEFAULT_ANSWER_TAG, "task.options.tag");
  const compare = options.compare ?? ds.options?.compare ?? "exact";
  const answerFormat = options.answerFormat ?? ds.options?.answerFormat ?? "tagged";
  const name = options.name ?? basename(ds.file);
  return {
    name,
    sample(rng, split) {
      const pool = split === "train" ? ds.train : ds.eval;
      if (pool.length === 0) {
        const fix =
          ds.options?.evalPath !== undefined
            ? "add lines to the eval file"
            : "change evalFraction, set evalPath or add lines";
        throw new CohortError(`${ds.file}: the ${split} split is empty (${ds.problems.length} lines); ${fix}`);
      }
      return rng.pick(pool);
    },
    verify(problem, completion): Verdict {
      let format: boolean;
      let parsed: string | undefined;
      if (answerFormat === "plain") {
        parsed = completion.trim();
        format = parsed !== "";
        if (!format) return { correct: false, format, reason: "empty completion" };
      } else {
        ({ format, parsed } = extractAnswer(completion, tag));
        if (parsed === undefined) return { correct: false, format, reason: `no <${tag}>…</${tag}> span` };
      }
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
