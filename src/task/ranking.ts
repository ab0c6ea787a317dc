/**
 * Ranking tasks: the model answers with a ranked list of k items, and each rank position gets a relevance.
 * Rank-GRPO (arXiv 2510.20150, ALGORITHMS.md B.23) trains on the rank positions; the trainer reads a task's
 * lists through `rank` (src/train/ranked.ts turns them into rank rewards and the item of every token).
 *
 * | quantity            | formula (ranks j = 1..k)                                  |
 * |---------------------|-----------------------------------------------------------|
 * | DCG                 | Σ_j rel_j / log2(j + 1)                                   |
 * | NDCG                | DCG / DCG(best list)                                      |
 * | rank reward (B.23)  | r_k = Σ_{j≥k} rel_j / log2(j + 1)   (suffix DCG, log-decay) |
 *
 * List format (`parseRankedList`): the answer span `<answer>a b c</answer>`, items separated by spaces or
 * commas. Item j's span runs from its first character to the first character of item j + 1 (its separator
 * belongs to it: ending an item is part of writing it); the last listed item's span ends at the end of the
 * answer span, or at its own end when it is the k-th and more items follow. Items after the k-th are
 * ignored (their tokens belong to no rank). A missing answer span gives no items: every rank has
 * relevance 0 and no span (design choice).
 * @module
 */
import { extractAnswer } from "./format.js";
import type { Problem, ProblemMeta, Task } from "./types.js";

/**
 * A ranked list read from a completion: one relevance per rank position (length k; 0 where the rank is
 * missing, malformed, a repeat or irrelevant) and, for each rank, the character span `[start, end)` of its
 * item in the completion (null when the rank holds no item).
 */
export interface RankedList {
  relevance: number[];
  spans: ([number, number] | null)[];
  /** DCG of the best list (NDCG = DCG / idealDcg), > 0. */
  idealDcg: number;
}

/** A task whose completions are ranked lists; the trainer turns their relevance into rank rewards (Rank-GRPO). */
export interface RankingTask<M extends ProblemMeta = ProblemMeta> extends Task<M> {
  /** Positions of the list. */
  readonly k: number;
  /** How relevance becomes the reward of each rank (src/algo/rewards.ts `rankRewards`). */
  readonly rankReward: "log-decay" | "exp-inf";
  /** The ranked list of a completion. Never throws on model output. */
  rank(problem: Problem<M>, completion: string): RankedList;
}

/** Whether `task` ranks items (has `rank`). */
export function isRankingTask(task: Task): task is RankingTask {
  return typeof (task as Partial<RankingTask>).rank === "function" && Number.isInteger((task as RankingTask).k);
}

/** DCG of a relevance list, ranks counted from 1: Σ_j rel_j / log2(j + 1). */
export function dcg(relevance: readonly number[]): number {
  let s = 0;
  relevance.forEach((r, j) => {
    s += r / Math.log2(j + 2);
  });
  return s;
}

/** NDCG of a ranked list in [0, 1] (DCG over the best list's DCG). */
export function ndcg(list: RankedList): number {
  return dcg(list.relevance) / list.idealDcg;
}

/** An item of a parsed list: its text and its character span in the completion. */
export interface ListItem {
  text: string;
  start: number;
  end: number;
}

/** The answer span's items (see the module docs), at most `k`; null when there is no answer span. */
export function parseRankedList(completion: string, k: number, tag: string): { items: ListItem[]; more: boolean } {
  const open = `<${tag}>`;
  const close = `</${tag}>`;
  const { parsed } = extractAnswer(completion, tag);
  if (parsed === undefined) return { items: [], more: false };
  const from = completion.indexOf(open) + open.length;
  const to = completion.indexOf(close, from);
  const body = completion.slice(from, to);
  const found: { text: string; at: number }[] = [];
  for (const m of body.matchAll(/[^\s,]+/g)) found.push({ text: m[0], at: from + (m.index as number) });
  const items = found.slice(0, k).map((f, j) => {
    const next = found[j + 1];
    const end = next === undefined ? to : j === k - 1 ? f.at + f.text.length : next.at;
    return { text: f.text, start: f.at, end };
  });
  return { items, more: found.length > k };
}
