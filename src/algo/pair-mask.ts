/**
 * DaGRPO sequence-level gradient rectification (ALGORITHMS.md B.38) as a SampleFilter: pairs of completions
 * of one group that are hardly distinguishable but pull the policy in opposite directions are masked out of
 * the loss.
 *
 * The paper scores distinctiveness with a fine-grained scorer it does not specify; here (design choice):
 * ```
 * sim(i, j)      = 1 − lev(o_i, o_j) / max(|o_i|, |o_j|)        character edit distance of the texts (1 if both empty)
 * conflict(i, j) = (r_i − μ_g)(r_j − μ_g) < 0                    opposite-sign advantages, μ_g = mean valid reward of the group
 * masked(i, j)   = sim(i, j) ≥ minSimilarity ∧ conflict(i, j)    both rows leave the loss
 * ```
 * A near-identical pair with opposite advantages pushes the tokens it shares up and down at once (the
 * "gradient conflict"); a near-identical pair on the same side of the mean pushes the same way and is kept.
 * The filter runs after the advantage estimator (pipeline.ts), so group statistics still count the masked
 * rows; rows with a NaN reward never pair. Needs `batch.texts` (the trainer sets it).
 *
 * Metrics: `dagrpo/masked_pairs` (pairs masked), `dagrpo/masked_pair_rate` (masked / within-group pairs of
 * valid rows), plus the pipeline's `filter/dagrpo_pairs/removed_sequences`.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { defineSampleFilter, type SampleFilterResult } from "./filters.js";
import { groupMembers } from "./groups.js";
import type { RewardBatch } from "./types.js";

const pairParams = z.strictObject({
  /** Pairs at least this similar (0–1, normalised edit similarity; 0.95: at most 5% of characters differ)
   * are low-distinctiveness. */
  minSimilarity: z.number().min(0).max(1).default(0.95),
});
export type DagrpoPairsOptions = z.input<typeof pairParams>;

/**
 * Levenshtein distance of `a` and `b` when it is ≤ `k`, else `k + 1`; O(|a|·k) time (only the diagonal band
 * |i − j| ≤ k of the table is filled).
 */
export function editDistanceWithin(a: string, b: string, k: number): number {
  const n = a.length;
  const m = b.length;
  const INF = k + 1;
  if (Math.abs(n - m) > k) return INF;
  let prev = new Int32Array(m + 2).fill(INF);
  let cur = new Int32Array(m + 2).fill(INF);
  for (let j = 0; j <= Math.min(m, k); j++) prev[j] = j;
  for (let i = 1; i <= n; i++) {
    const lo = Math.max(1, i - k);
    const hi = Math.min(m, i + k);
    cur[lo - 1] = lo - 1 === 0 ? Math.min(i, INF) : INF;
    let rowMin = cur[lo - 1] as number;
    const ca = a.charCodeAt(i - 1);
    for (let j = lo; j <= hi; j++) {
      const sub = (prev[j - 1] as number) + (ca === b.charCodeAt(j - 1) ? 0 : 1);
      const v = Math.min(sub, (prev[j] as number) + 1, (cur[j - 1] as number) + 1, INF);
      cur[j] = v;
      if (v < rowMin) rowMin = v;
    }
    cur[hi + 1] = INF; // the next row reads one column past this band
    if (rowMin > k) return INF;
    [prev, cur] = [cur, prev];
  }
  return Math.min(prev[m] as number, INF);
}

/** 1 − lev(a, b) / max(|a|, |b|) when it is ≥ `min`, else 0 (two empty texts: 1). */
export function textSimilarityAtLeast(a: string, b: string, min: number): number {
  const L = Math.max(a.length, b.length);
  if (L === 0) return 1;
  const k = Math.floor((1 - min) * L + 1e-9);
  const d = editDistanceWithin(a, b, k);
  return d > k ? 0 : 1 - d / L;
}

// arXiv 2512.06337 [ABSTRACT] (similarity and conflict rule: design choice)
export const dagrpoPairsFilter = defineSampleFilter({
  name: "dagrpo_pairs",
  paper: "2512.06337",
  confidence: "ABSTRACT",
  doc: "masks near-identical pairs on opposite sides of the group mean (design choice)",
  params: pairParams,
  needs: ["texts"],
  filter: (batch, p) => pairsFilter(batch, p.minSimilarity),
});

function pairsFilter(batch: RewardBatch, minSim: number): SampleFilterResult {
  const texts = batch.texts;
  const N = batch.rewards.length;
  if (texts === undefined || texts.length !== N) {
    throw new CohortError(
      `dagrpo_pairs compares completion texts and needs batch.texts (${N} rows), got ${texts?.length ?? "none"}; ` +
        "set RewardBatch.texts",
    );
  }
  const r = batch.rewards;
  const keep = new Uint8Array(N).fill(1);
  let pairs = 0;
  let masked = 0;
  let keptGroups = 0;
  let removedGroups = 0;
  for (const idx of groupMembers(batch.groupIndex)) {
    const valid = idx.filter((i) => !Number.isNaN(r[i] as number));
    const mu = valid.reduce((s, i) => s + (r[i] as number), 0) / Math.max(1, valid.length);
    for (let x = 0; x < valid.length; x++) {
      for (let y = x + 1; y < valid.length; y++) {
        const i = valid[x] as number;
        const j = valid[y] as number;
        pairs++;
        if (((r[i] as number) - mu) * ((r[j] as number) - mu) >= 0) continue;
        if (textSimilarityAtLeast(texts[i] as string, texts[j] as string, minSim) < minSim) continue;
        masked++;
        keep[i] = 0;
        keep[j] = 0;
      }
    }
    if (idx.every((i) => keep[i] === 0)) removedGroups++;
    else keptGroups++;
  }
  let removedSequences = 0;
  let removedTokens = 0;
  for (let i = 0; i < N; i++) {
    if (keep[i] === 1) continue;
    removedSequences++;
    removedTokens += batch.lengths?.[i] ?? 0;
  }
  return {
    keep,
    keptGroups,
    removedGroups,
    removedSequences,
    removedTokens,
    metrics: { "dagrpo/masked_pairs": masked, "dagrpo/masked_pair_rate": pairs > 0 ? masked / pairs : 0 },
  };
}
