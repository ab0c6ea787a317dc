/**
 * Nearest: rank given numbers by closeness to a target — a ranked-list task (ranking.ts) for Rank-GRPO.
 *
 * Prompt and completion (plain ASCII, within the char tokenizer's alphabet):
 * ```
 * prompt      "3 near 47: 12 50 33 81 45 60="
 * completion  "<answer>45 50 33</answer>"      (the k = 3 candidates nearest to 47, nearest first)
 * ```
 * Candidates are distinct and lie at distinct distances from the target, so the true ranking (by |x − target|)
 * is unique. The item at rank j (1-based) is a candidate of true rank t (0-based, t = 0 the nearest); its
 * relevance is
 *
 * | relevance | rel(t)                         |
 * |-----------|--------------------------------|
 * | graded    | (k − t) / k for t < k, else 0  |
 * | binary    | 1 for t < k, else 0            |
 *
 * A rank gets 0 when it is missing (fewer than k items), its text is not a plain non-negative integer, the
 * number is not a candidate, or it repeats an earlier item (graded relevance is our own design choice: it
 * makes the order inside the top k count; Rank-GRPO's paper uses binary relevance). The best list is the
 * true top k in order: its DCG normalises NDCG. The verifier calls a completion correct when it is exactly
 * that list, and well formatted when its answer span holds exactly k integers.
 *
 * Split: the canonical problem is the target and the sorted candidates.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { extractAnswer } from "./format.js";
import { evalFractionSchema, intRange, parseOptions, tagSchema } from "./options.js";
import { dcg, parseRankedList, type RankedList, type RankingTask } from "./ranking.js";
import type { Rng } from "./rng.js";
import { drawInSplit } from "./split.js";
import type { Problem, Split, Verdict } from "./types.js";

export const nearestOptions = z
  .strictObject({
    k: z.number().int().min(1).max(8).default(3).meta({ description: "Length of the ranked list (rank positions)." }),
    candidates: intRange(2, 12)
      .default([5, 6])
      .meta({ description: "How many numbers a problem gives, [min, max] or one integer (at least k)." }),
    numbers: intRange(0, 9999)
      .default([0, 99])
      .meta({ description: "Range of the target and of the candidates, [min, max]." }),
    relevance: z
      .enum(["graded", "binary"])
      .default("graded")
      .meta({ description: "Relevance of a true top-k item of true rank t: (k − t)/k (graded) or 1 (binary)." }),
    rankReward: z.enum(["log-decay", "exp-inf"]).default("log-decay").meta({
      description:
        "Reward of each rank for Rank-GRPO: suffix DCG Σ_{j≥k} rel_j/log2(j+1) (log-decay) or rel_k (exp-inf).",
    }),
    evalFraction: evalFractionSchema,
    tag: tagSchema,
  })
  .superRefine((o, ctx) => {
    if (o.candidates[0] < o.k)
      ctx.addIssue({
        code: "custom",
        path: ["candidates"],
        message: `a problem needs at least k = ${o.k} candidates, got min ${o.candidates[0]}`,
      });
    const span = o.numbers[1] - o.numbers[0] + 1;
    if (span < 2 * o.candidates[1])
      ctx.addIssue({
        code: "custom",
        path: ["numbers"],
        message: `range ${JSON.stringify(o.numbers)} holds ${span} numbers; ${o.candidates[1]} candidates at distinct distances need at least ${2 * o.candidates[1]}`,
      });
  })
  .meta({ description: "Rank the given numbers by closeness to a target; a ranked list of k of them." });

export type NearestOptions = z.input<typeof nearestOptions>;

/** Problem metadata: the target, the candidates in prompt order and all of them nearest first. */
export type NearestMeta = { target: number; candidates: number[]; ranking: number[] };

const INT_RE = /^[0-9]+$/;
const MAX_TRIES = 10_000;

/** Build the task; invalid options throw a ConfigError at `path`. */
export function nearestTask(options: NearestOptions = {}, path = "task.options"): RankingTask<NearestMeta> {
  const o = parseOptions(nearestOptions, options, path);
  const name = "nearest";
  const { k } = o;
  const gain = (t: number) => (t >= k ? 0 : o.relevance === "binary" ? 1 : (k - t) / k);
  const idealDcg = dcg(Array.from({ length: k }, (_, t) => gain(t)));

  function draw(rng: Rng): { canonical: string; value: Problem<NearestMeta> } {
    const [lo, hi] = o.numbers;
    const target = rng.int(lo, hi);
    const n = rng.int(o.candidates[0], o.candidates[1]);
    const candidates: number[] = [];
    const dists = new Set<number>();
    for (let tries = 0; candidates.length < n; tries++) {
      if (tries > MAX_TRIES)
        throw new CohortError(
          `nearest: could not place ${n} candidates around ${target} in ${JSON.stringify(o.numbers)}`,
        );
      const x = rng.int(lo, hi);
      const d = Math.abs(x - target);
      if (dists.has(d)) continue;
      dists.add(d);
      candidates.push(x);
    }
    const ranking = [...candidates].sort((a, b) => Math.abs(a - target) - Math.abs(b - target));
    const canonical = `${target}:${[...candidates].sort((a, b) => a - b).join(" ")}`;
    return {
      canonical,
      value: {
        id: `${name}/${canonical}`,
        prompt: `${k} near ${target}: ${candidates.join(" ")}=`,
        answer: ranking.slice(0, k).join(" "),
        meta: { target, candidates, ranking },
      },
    };
  }

  function metaOf(problem: Problem<NearestMeta>): NearestMeta {
    const { target, candidates, ranking } = problem.meta ?? {};
    const ints = (xs: unknown) => Array.isArray(xs) && xs.every(Number.isSafeInteger);
    if (!Number.isSafeInteger(target) || !ints(candidates) || !ints(ranking))
      throw new CohortError(
        `nearest problem ${problem.id} lacks meta.target, meta.candidates and meta.ranking (integers); build problems with sample()`,
      );
    return problem.meta;
  }

  function rank(problem: Problem<NearestMeta>, completion: string): RankedList {
    const { ranking } = metaOf(problem);
    const { items } = parseRankedList(completion, k, o.tag);
    const relevance = new Array<number>(k).fill(0);
    const spans: ([number, number] | null)[] = new Array(k).fill(null);
    const seen = new Set<number>();
    items.forEach((it, j) => {
      spans[j] = [it.start, it.end];
      if (!INT_RE.test(it.text)) return;
      const x = Number(it.text);
      if (seen.has(x)) return;
      seen.add(x);
      const t = ranking.indexOf(x);
      if (t >= 0) relevance[j] = gain(t);
    });
    return { relevance, spans, idealDcg };
  }

  return {
    name,
    k,
    rankReward: o.rankReward,
    rank,
    sample(rng: Rng, split: Split) {
      return drawInSplit(name, split, o.evalFraction, () => draw(rng), name);
    },
    verify(problem, completion): Verdict {
      const { ranking } = metaOf(problem);
      const { format: spanOk, parsed } = extractAnswer(completion, o.tag);
      if (parsed === undefined) return { correct: false, format: false, reason: `no <${o.tag}>…</${o.tag}> span` };
      const { items, more } = parseRankedList(completion, k, o.tag);
      const format = spanOk && !more && items.length === k && items.every((it) => INT_RE.test(it.text));
      if (!format) return { correct: false, format, parsed, reason: `expected ${k} integers in the answer` };
      const correct = items.every((it, j) => Number(it.text) === ranking[j]);
      return correct
        ? { correct, format, parsed }
        : { correct, format, parsed, reason: `the ${k} nearest are ${ranking.slice(0, k).join(" ")}` };
    },
  };
}
