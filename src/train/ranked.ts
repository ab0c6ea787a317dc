/**
 * Rank-GRPO inputs of a step on a ranking task (src/task/ranking.ts): the reward of every rank position
 * (`rankRewards`, [N][k]) and the item of every completion token (`itemIndex`, [N, C]; −1 = no item).
 *
 * A token covers the characters its prefix decode adds: token t of a completion spans
 * `[len(decode(tokens[:t])), len(decode(tokens[:t+1])))` (special tokens add nothing). It belongs to the item
 * whose span holds its last character; tokens with no character (EOS) or outside every item get −1.
 * arXiv 2510.20150 [CODE] (rank rewards); the token-to-item map is our own design.
 * @module
 */
import { rankRewards } from "../algo/rewards.js";
import type { Completion } from "../model/sampler.js";
import type { RankingTask } from "../task/ranking.js";
import type { Problem } from "../task/types.js";
import { type Tensor, tensor } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";

/** Item (rank position, 0-based) of each token of `tokens` given the items' character spans; −1 = none. */
export function tokenItems(tok: Tokenizer, tokens: readonly number[], spans: readonly ([number, number] | null)[]) {
  const out = new Int32Array(tokens.length).fill(-1);
  let prev = 0;
  for (let t = 0; t < tokens.length; t++) {
    const end = tok.decode(tokens.slice(0, t + 1), { skipSpecialTokens: true }).length;
    if (end > prev) {
      const last = end - 1;
      const j = spans.findIndex((s) => s !== null && s[0] <= last && last < s[1]);
      out[t] = j;
    }
    prev = Math.max(prev, end);
  }
  return out;
}

/** The rank rewards and the [N, C] item index of a step's rows (C: the step's completion columns). */
export function rankInputs(
  task: RankingTask,
  tok: Tokenizer,
  rows: { problems: readonly Problem[]; completions: readonly Completion[]; texts: readonly string[] },
  C: number,
): { rankRewards: Float64Array[]; itemIndex: Tensor } {
  const n = rows.completions.length;
  const items = new Int32Array(n * C).fill(-1);
  const relevance = rows.problems.map((p, i) => {
    const list = task.rank(p, rows.texts[i] as string);
    const own = tokenItems(tok, (rows.completions[i] as Completion).tokens, list.spans);
    items.set(own.subarray(0, C), i * C);
    return list.relevance;
  });
  return {
    rankRewards: rankRewards(relevance, task.rankReward),
    itemIndex: tensor(items, { shape: [n, C], dtype: "i32" }),
  };
}
