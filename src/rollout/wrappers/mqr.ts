/**
 * MQR (MathForge's Multi-Aspect Question Reformulation, beside DGPO): each drawn training question is
 * replaced by one of its reformulations, which make it harder to read while keeping the gold answer. The
 * policy samples from and is trained on the reformulated prompt; the reward functions score every row against
 * the ORIGINAL problem (same answer), as for every rollout wrapper.
 *
 * The paper's three aspects and ours (rule-based, so they work offline with any model and keep the answer
 * exactly; the paper has an LLM rewrite each question offline, keeping its gold answer):
 *
 * | aspect       | paper (instruction to the rewriting model)                        | here: arithmetic "a+b="                        | here: text question (first integer N)        |
 * |--------------|-------------------------------------------------------------------|------------------------------------------------|----------------------------------------------|
 * | `background` | add an unrelated story background that seems related              | "<story> a+b="                                 | "<story> <question>"                         |
 * | `term`       | invent an abstract term for a central concept, restate with it    | "The <w> of x and y is x+y. The <w> of a and b=" | "Call the number N the <w>." + N → "the <w>" |
 * | `subproblem` | turn a key numerical condition into an independent sub-problem    | "Let n be c+d. n+b=" (c + d = a, or for b)     | "Let n be c+d." + N → n (c + d = N)          |
 *
 * The choice per drawn question is uniform over `aspects` plus the original question when `keepOriginal`
 * (the released data set is the original training set and its three reformulations, 4× as large: training on
 * it draws each with probability 1/4). The choice, the story, the term and the split c + d are a hash of (step,
 * position in the draw, problem id), so a resumed run draws the same. A text question without an integer
 * literal gets the background aspect instead of `term`/`subproblem` (counted in `mqr/fallback`). In a prompt
 * made by a chat template, only the question (`meta.prompt` of a JSONL line, when the prompt contains it) is
 * rewritten. Design choices: the rule-based rewrites, their wording, the story list and the invented words.
 * @module
 */
import { z } from "zod";
import { mix32, Rng } from "../../task/rng.js";
import type { Problem } from "../../task/types.js";
import { parseComponentOptions } from "../config.js";
import { type RolloutWrapper, rolloutWrappers, type WrapperHost } from "./registry.js";

export const MQR_ASPECTS = ["background", "term", "subproblem"] as const;
export type MqrAspect = (typeof MQR_ASPECTS)[number];

const mqrOptions = z.strictObject({
  /** Reformulation aspects drawn from (MathForge: all three). */
  aspects: z
    .array(z.enum(MQR_ASPECTS))
    .min(1)
    .refine((a) => new Set(a).size === a.length, { message: "aspects must not repeat" })
    .default([...MQR_ASPECTS]),
  /** Whether the original question is drawn too, as one more choice (MathForge trains on original + 3). */
  keepOriginal: z.boolean().default(true),
});
export type MqrOptions = z.output<typeof mqrOptions>;

/** Story openings that look related to a question but change nothing in it (printable ASCII). */
export const MQR_STORIES = [
  "A baker counts trays at dawn.",
  "Mia sorts shells on a beach.",
  "A train leaves the old depot.",
  "Two owls guard a quiet barn.",
  "Leo paints fences in spring.",
  "A ship logs its cargo crates.",
  "Nora plants rows of tulips.",
  "A clock tower rings at noon.",
] as const;
/** Invented words for the term aspect. */
export const MQR_TERMS = ["zent", "glorp", "quib", "mardle", "toven", "skarn"] as const;
const NAMES = ["n", "k", "m", "t", "u"] as const;
const SYMBOL = { add: "+", sub: "-", mul: "*" } as const;

/** FNV-1a of a string, 32 bits. */
function hash32(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h;
}

/** A split c + d = v with c uniform in [0, v]. */
function split(rng: Rng, v: bigint): [bigint, bigint] {
  const c = rng.bigintBelow(v + 1n);
  return [c, v - c];
}

/** The built-in arithmetic operands of `p`, when its prompt is exactly "a<op>b=". */
function arithmeticOf(p: Problem): { op: keyof typeof SYMBOL; a: string; b: string } | null {
  const { op, a, b } = p.meta as Record<string, unknown>;
  if (op !== "add" && op !== "sub" && op !== "mul") return null;
  if (typeof a !== "string" || typeof b !== "string" || !/^\d+$/.test(a) || !/^\d+$/.test(b)) return null;
  return p.prompt === `${a}${SYMBOL[op]}${b}=` ? { op, a, b } : null;
}

/** First integer literal of a text (not part of a word, a decimal or a longer number). */
const INTEGER = /(?<![\w.])\d+(?![\w]|\.\d)/;

/**
 * Reformulation `aspect` of `p`'s question, drawn from `rng`: the new prompt text and the aspect actually
 * applied (`background` when a text question has no integer literal for `term` / `subproblem`).
 */
export function reformulate(p: Problem, aspect: MqrAspect, rng: Rng): { text: string; applied: MqrAspect } {
  const story = MQR_STORIES[rng.int(0, MQR_STORIES.length - 1)] as string;
  const word = MQR_TERMS[rng.int(0, MQR_TERMS.length - 1)] as string;
  const ar = arithmeticOf(p);
  if (ar !== null) {
    const s = SYMBOL[ar.op];
    if (aspect === "background") return { text: `${story} ${p.prompt}`, applied: aspect };
    if (aspect === "term")
      return { text: `The ${word} of x and y is x${s}y. The ${word} of ${ar.a} and ${ar.b}=`, applied: aspect };
    const left = rng.bool();
    const [c, d] = split(rng, BigInt(left ? ar.a : ar.b));
    const body = left ? `n${s}${ar.b}=` : `${ar.a}${s}n=`;
    return { text: `Let n be ${c}+${d}. ${body}`, applied: aspect };
  }
  const raw = p.meta.prompt;
  const q = typeof raw === "string" && raw.length > 0 && p.prompt.includes(raw) ? raw : p.prompt;
  const put = (nq: string) => (q === p.prompt ? nq : p.prompt.replace(q, () => nq));
  const m = INTEGER.exec(q);
  if (aspect === "background" || m === null) return { text: put(`${story} ${q}`), applied: "background" };
  const n = m[0];
  const at = m.index;
  const swap = (by: string) => `${q.slice(0, at)}${by}${q.slice(at + n.length)}`;
  if (aspect === "term")
    return { text: put(`Call the number ${n} the ${word}. ${swap(`the ${word}`)}`), applied: aspect };
  const name = NAMES.find((x) => !new RegExp(`\\b${x}\\b`).test(q)) ?? "n_0";
  const [c, d] = split(rng, BigInt(n));
  return { text: put(`Let ${name} be ${c}+${d}. ${swap(name)}`), applied: aspect };
}

// arXiv 2601.20614 [PAPER]
export class MqrWrapper implements RolloutWrapper {
  readonly opts: MqrOptions;
  constructor(options: Record<string, unknown>, path: string) {
    this.opts = parseComponentOptions(mqrOptions, options, path);
  }

  /** The prompt text sampled for the `b`-th problem of step `step`'s draw (undefined: the original). */
  promptFor(
    p: Problem,
    step: number,
    b: number,
  ): { text: string | undefined; picked: MqrAspect | "original"; applied: MqrAspect | "original" } {
    const rng = Rng.fromSeed(BigInt(mix32(hash32(p.id) ^ mix32(step * 0x9e3779b1 + b * 0x85ebca6b))));
    const choices: (MqrAspect | "original")[] = [
      ...(this.opts.keepOriginal ? ["original" as const] : []),
      ...this.opts.aspects,
    ];
    const pick = choices[rng.int(0, choices.length - 1)] as MqrAspect | "original";
    if (pick === "original") return { text: undefined, picked: pick, applied: pick };
    return { picked: pick, ...reformulate(p, pick, rng) };
  }

  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    const picks = problems.map((p, b) => this.promptFor(p, host.step, b));
    const texts = picks.map((x) => x.text);
    const batch = await host.sample(problems, counts, texts);
    const drawn = problems.filter((_, b) => (counts[b] as number) > 0).length;
    const used = picks.filter((_, b) => (counts[b] as number) > 0);
    const metrics: Record<string, number> = {
      "mqr/reformulated_rate": drawn > 0 ? used.filter((x) => x.text !== undefined).length / drawn : 0,
      "mqr/fallback": used.filter((x) => x.picked !== x.applied).length,
      "rollout/sampled": batch.completions.length,
    };
    for (const a of MQR_ASPECTS) metrics[`mqr/${a}`] = used.filter((x) => x.applied === a).length;
    return { batch, metrics };
  }
}

rolloutWrappers.register("mqr", (options, path) => new MqrWrapper(options, path));
