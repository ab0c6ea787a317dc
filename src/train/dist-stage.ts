/**
 * The advantage stage of a data-parallel step over every rank's rows. Groups never span ranks, but estimators,
 * reweighters and filters with batch-level statistics (GDPO's batch normalisation, REINFORCE++'s token
 * whitening, BNPO's Beta fit, scale "batch", DGPO's question weights, …) must see the whole step to give what
 * one process gives: each rank gathers the rows' host data and per-token inputs of all ranks, runs the same
 * stage on the union (deterministically, so every rank gets the same result) and keeps its own rows.
 * @module
 */
import type { Pipeline, RewardStage, StageInputs } from "../algo/pipeline.js";
import type { Advantages, RewardBatch } from "../algo/types.js";
import type { ProcessGroup } from "../parallel/group.js";
import { type Tensor, tensor, tidy } from "../tensor/index.js";

type Base = Omit<RewardBatch, "rewards" | "rewardsByFn" | "mask" | "tokenRewards">;

/** One rank's share of a step, as plain data. */
interface Share {
  byFn: number[][];
  groupIndex: number[];
  lengths?: number[];
  meanLogprobs?: number[];
  truncated?: number[];
  texts?: string[];
  fields?: Record<string, unknown>[];
  trajectoryIndex?: number[];
  stepIndex?: number[];
  observationKey?: string[];
  agentId?: number[];
  executed?: number[];
  /** Rank-GRPO: [n][k] rank rewards and [n][C] item of each token. */
  rankRewards?: number[][];
  itemIndex?: number[][];
  /** [n][C] rows of the mask and of the per-token inputs. */
  mask: number[][];
  rewardKl?: number[][];
  meanEntropy?: number[];
}

function rows2d(t: Tensor): number[][] {
  const [n, c] = t.shape as [number, number];
  const d = tidy(() => t.to("f64").data() as Float64Array);
  return Array.from({ length: n }, (_, i) => Array.from(d.subarray(i * c, (i + 1) * c)));
}

function fromRows(rows: number[][], C: number): Tensor {
  const flat = new Float64Array(rows.length * C);
  rows.forEach((r, i) => {
    flat.set(r.slice(0, C), i * C);
  });
  return tensor(flat, { shape: [rows.length, C], dtype: "f32" });
}

const arr = <T>(x: ArrayLike<T> | undefined): T[] | undefined => (x === undefined ? undefined : Array.from(x));

/**
 * `pl.advantages` over the rows of every rank of `group`; returns this rank's rows of the result. Per-token
 * advantages come back with this rank's own columns.
 */
export function advantagesOverRanks(
  group: ProcessGroup,
  pl: Pipeline,
  byFn: Float64Array[],
  base: Base,
  inputs: StageInputs & { mask: Tensor },
): RewardStage {
  const mine: Share = {
    byFn: byFn.map((f) => Array.from(f)),
    groupIndex: Array.from(base.groupIndex),
    ...(base.lengths ? { lengths: arr(base.lengths) } : {}),
    ...(base.meanLogprobs ? { meanLogprobs: arr(base.meanLogprobs) } : {}),
    ...(base.truncated ? { truncated: arr(base.truncated) } : {}),
    ...(base.texts ? { texts: [...base.texts] } : {}),
    ...(base.fields ? { fields: [...base.fields] } : {}),
    ...(base.trajectoryIndex ? { trajectoryIndex: arr(base.trajectoryIndex) } : {}),
    ...(base.stepIndex ? { stepIndex: arr(base.stepIndex) } : {}),
    ...(base.observationKey ? { observationKey: [...base.observationKey] } : {}),
    ...(base.agentId ? { agentId: arr(base.agentId) } : {}),
    ...(base.executed ? { executed: arr(base.executed) } : {}),
    ...(base.rankRewards ? { rankRewards: base.rankRewards.map((r) => Array.from(r)) } : {}),
    ...(base.itemIndex ? { itemIndex: rows2d(base.itemIndex) } : {}),
    mask: rows2d(inputs.mask),
    ...(inputs.rewardKl ? { rewardKl: rows2d(inputs.rewardKl) } : {}),
    ...(inputs.meanEntropy ? { meanEntropy: Array.from(inputs.meanEntropy()) } : {}),
  };
  const all = group.allgatherJson(mine);
  // rows of rank r start at offset[r]; group ids and trajectories are made distinct across ranks
  const offset: number[] = [];
  let rowsSoFar = 0;
  let groupsSoFar = 0;
  let trajSoFar = 0;
  const cat = <T>(pick: (s: Share, r: number) => T[] | undefined): T[] | undefined => {
    const parts = all.map(pick);
    return parts.every((p) => p !== undefined) ? (parts as T[][]).flat() : undefined;
  };
  const groupShift: number[] = [];
  const trajShift: number[] = [];
  for (const s of all) {
    offset.push(rowsSoFar);
    groupShift.push(groupsSoFar);
    trajShift.push(trajSoFar);
    rowsSoFar += s.groupIndex.length;
    groupsSoFar += s.groupIndex.length ? Math.max(...s.groupIndex) + 1 : 0;
    trajSoFar += s.trajectoryIndex?.length ? Math.max(...s.trajectoryIndex) + 1 : 0;
  }
  const C = Math.max(1, ...all.flatMap((s) => s.mask.map((r) => r.length)));
  const K = byFn.length;
  const gByFn = Array.from({ length: K }, (_, k) => Float64Array.from(all.flatMap((s) => s.byFn[k] as number[])));
  const num = (xs: number[] | undefined) => xs;
  const gBase: Base = {
    groupIndex: Int32Array.from(cat((s, r) => s.groupIndex.map((g) => g + (groupShift[r] as number))) as number[]),
  };
  const lengths = num(cat((s) => s.lengths));
  if (lengths) gBase.lengths = Int32Array.from(lengths);
  const meanLogprobs = cat((s) => s.meanLogprobs);
  if (meanLogprobs) gBase.meanLogprobs = Float64Array.from(meanLogprobs);
  const truncated = cat((s) => s.truncated);
  if (truncated) gBase.truncated = Uint8Array.from(truncated);
  const texts = cat((s) => s.texts);
  if (texts) gBase.texts = texts;
  const fields = cat((s) => s.fields);
  if (fields) gBase.fields = fields;
  const traj = cat((s, r) => s.trajectoryIndex?.map((t) => t + (trajShift[r] as number)));
  if (traj) gBase.trajectoryIndex = Int32Array.from(traj);
  const stepIndex = cat((s) => s.stepIndex);
  if (stepIndex) gBase.stepIndex = Int32Array.from(stepIndex);
  const keys = cat((s) => s.observationKey);
  if (keys) gBase.observationKey = keys;
  const agentId = cat((s) => s.agentId);
  if (agentId) gBase.agentId = Int32Array.from(agentId);
  const executed = cat((s) => s.executed);
  if (executed) gBase.executed = Uint8Array.from(executed);
  const rankRows = cat((s) => s.rankRewards);
  if (rankRows) gBase.rankRewards = rankRows.map((r) => Float64Array.from(r));
  const itemRows = cat((s) => s.itemIndex);
  if (itemRows) {
    // pad with −1 (no item) to the step's longest completion
    const padded = itemRows.map((r) => [...r, ...new Array<number>(Math.max(0, C - r.length)).fill(-1)]);
    gBase.itemIndex = tensor(Int32Array.from(padded.flat()), { shape: [padded.length, C], dtype: "i32" });
  }
  const mask = fromRows(
    all.flatMap((s) => s.mask),
    C,
  );
  const rewardKl = all.every((s) => s.rewardKl)
    ? fromRows(
        all.flatMap((s) => s.rewardKl as number[][]),
        C,
      )
    : null;
  const meanEntropy = cat((s) => s.meanEntropy);
  const me = group.rank;
  const first = offset[me] as number;
  const n = base.groupIndex.length;
  const localC = inputs.mask.shape[1] as number;
  const targetRatio = inputs.targetRatio;
  try {
    const stage = pl.advantages(gByFn, gBase, {
      mask,
      ...(rewardKl ? { rewardKl } : {}),
      ...(meanEntropy ? { meanEntropy: () => Float64Array.from(meanEntropy) } : {}),
      ...(targetRatio
        ? {
            // every rank asks for the same temperature at the same point of the stage: gather its rows
            targetRatio: (t: number) => {
              const local = targetRatio(t);
              const gathered = group.allgatherJson(rows2d(local));
              local.dispose();
              return fromRows(gathered.flat(), C);
            },
          }
        : {}),
    });
    const rows = (a: Advantages): Advantages => {
      if (a.kind === "sequence") return { kind: "sequence", values: a.values.slice(first, first + n) };
      const values = tidy(() =>
        a.values.narrow(0, first, n).narrow(1, 0, Math.min(localC, a.values.shape[1] as number)),
      );
      return { kind: "token", values };
    };
    const advantages = rows(stage.advantages);
    const estimated = stage.estimated === stage.advantages ? advantages : rows(stage.estimated);
    for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") a.values.dispose();
    const sliceBatch: RewardBatch = {
      ...base,
      rewards: stage.batch.rewards.slice(first, first + n),
      ...(stage.batch.rewardsByFn
        ? { rewardsByFn: stage.batch.rewardsByFn.map((f) => f.slice(first, first + n)) }
        : {}),
      ...(stage.batch.rewardWeights ? { rewardWeights: stage.batch.rewardWeights } : {}),
    };
    return {
      batch: sliceBatch,
      advantages,
      estimated,
      keep: stage.keep.slice(first, first + n),
      metrics: stage.metrics,
    };
  } finally {
    mask.dispose();
    rewardKl?.dispose();
    gBase.itemIndex?.dispose();
  }
}
