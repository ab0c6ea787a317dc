/**
 * DAPO dynamic sampling (B.2, A.6): generate rounds of prompts until the batch holds B groups whose rewards
 * are not all equal, capped by `maxRounds` (verl `max_num_gen_batches`). At the cap, `onCap: "error"` fails
 * (verl's behaviour) and `"train-partial"` trains on the groups kept so far. The batch is cut to exactly B
 * groups, and advantages are computed on it AFTER this filtering (as verl does), so estimators with batch
 * statistics see only the kept groups.
 * @module
 */
import type { AlgoConfig } from "../algo/config.js";
import { applySampleFilters, combineAndShape } from "../algo/stage.js";
import type { RewardBatch } from "../algo/types.js";
import { CohortError } from "../errors.js";
import type { Problem } from "../task/types.js";

export interface DynamicSamplingOptions {
  maxRounds: number;
  onCap: "error" | "train-partial";
}

/** A scored generation round: rows grouped by `groupIndex` (0..groups−1), with per-function rewards [K][N]. */
export interface ScoredRollout<C> {
  prompts: number[][];
  completions: C[];
  texts: string[];
  /** Problem of each row. */
  problems: Problem[];
  groupIndex: Int32Array;
  byFn: Float64Array[];
}

/** Groups of one round to keep (in order). */
export interface RoundPick<C> {
  batch: ScoredRollout<C>;
  groups: number[];
}

export interface DynamicResult<C> {
  picks: RoundPick<C>[];
  /** The last round (trained as is under train-partial when no group was kept). */
  last: ScoredRollout<C>;
  rounds: number;
  promptsSampled: number;
  groupsKept: number;
  capped: boolean;
}

// arXiv 2503.14476 [CODE-FW] (refill loop: [PAPER-KNOWN])
export async function dynamicSampling<C>(
  B: number,
  opts: DynamicSamplingOptions,
  runRound: (round: number) => Promise<{ batch: ScoredRollout<C>; keptGroups: number[] }>,
): Promise<DynamicResult<C>> {
  const picks: RoundPick<C>[] = [];
  let kept = 0;
  let promptsSampled = 0;
  let last: ScoredRollout<C> | undefined;
  let round = 0;
  while (round < opts.maxRounds && kept < B) {
    const r = await runRound(round);
    round++;
    last = r.batch;
    promptsSampled += groupCount(r.batch.groupIndex);
    const take = r.keptGroups.slice(0, B - kept);
    if (take.length > 0) picks.push({ batch: r.batch, groups: take });
    kept += take.length;
  }
  const capped = kept < B;
  if (capped && opts.onCap === "error") {
    throw new CohortError(
      `dynamic sampling kept ${kept} of ${B} groups with non-zero reward variance after ${round} rounds; raise ` +
        `algo.rollout.dynamicSampling.maxRounds, or set onCap: train-partial to train on the groups kept`,
    );
  }
  return { picks, last: last as ScoredRollout<C>, rounds: round, promptsSampled, groupsKept: kept, capped };
}

export function groupCount(groupIndex: Int32Array): number {
  let m = -1;
  for (const g of groupIndex) if (g > m) m = g;
  return m + 1;
}

/** Rows of one batch that go into a group of an assembled batch. */
export interface RowPart<C> {
  batch: ScoredRollout<C>;
  rows: readonly number[];
}

/** A new batch: entry `g` of `groups` (parts from one or more batches, in order) becomes group `g`. */
export function assemble<C>(groups: readonly (readonly RowPart<C>[])[]): ScoredRollout<C> {
  const K = groups.find((g) => g.length > 0)?.[0]?.batch.byFn.length ?? 0;
  const prompts: number[][] = [];
  const completions: C[] = [];
  const texts: string[] = [];
  const problems: Problem[] = [];
  const gi: number[] = [];
  const byFn: number[][] = Array.from({ length: K }, () => []);
  groups.forEach((parts, g) => {
    for (const { batch, rows } of parts) {
      for (const i of rows) {
        prompts.push(batch.prompts[i] as number[]);
        completions.push(batch.completions[i] as C);
        texts.push(batch.texts[i] as string);
        problems.push(batch.problems[i] as Problem);
        gi.push(g);
        for (let k = 0; k < K; k++) byFn[k]?.push((batch.byFn[k] as Float64Array)[i] as number);
      }
    }
  });
  return {
    prompts,
    completions,
    texts,
    problems,
    groupIndex: Int32Array.from(gi),
    byFn: byFn.map((r) => Float64Array.from(r)),
  };
}

/** The picked groups of several rounds as one batch, groups renumbered 0..K−1 in pick order. */
export function concatGroups<C>(picks: readonly RoundPick<C>[]): ScoredRollout<C> {
  const groups: RowPart<C>[][] = [];
  for (const { batch, groups: picked } of picks) {
    for (const g of picked) {
      const rows: number[] = [];
      batch.groupIndex.forEach((x, i) => {
        if (x === g) rows.push(i);
      });
      groups.push([{ batch, rows }]);
    }
  }
  return assemble(groups);
}

/**
 * Groups of a round that the configured sample filters keep (zero_std with default options when none is
 * configured), judged on the combined and shaped rewards exactly as the training pipeline computes them.
 */
export function groupsWithVariance(
  algo: AlgoConfig,
  byFn: Float64Array[],
  base: Omit<RewardBatch, "rewards" | "rewardsByFn">,
): number[] {
  const batch = combineAndShape(algo, byFn, base);
  const filters = algo.sampleFilters.length > 0 ? algo.sampleFilters : [{ name: "zero_std", options: {} }];
  const { keep } = applySampleFilters(algo, batch, filters);
  const out: number[] = [];
  const n = groupCount(base.groupIndex);
  for (let g = 0; g < n; g++) {
    let all = true;
    let any = false;
    base.groupIndex.forEach((x, i) => {
      if (x !== g) return;
      any = true;
      if (keep[i] !== 1) all = false;
    });
    if (any && all) out.push(g);
  }
  return out;
}
