/**
 * Advantage estimators for hierarchical and multi-agent episodes (ALGORITHMS.md B.22, B.37).
 *
 * Rows are agent steps (one LLM turn each) when an estimator declares `rows` (AdvantageDef): the rollout of
 * a multi-turn environment (src/env) then hands the estimator a `RewardBatch` whose rows are steps, with
 * `trajectoryIndex` (episode of the row), `stepIndex`, `observationKey` (anchor state), `agentId` and
 * `episodeRewards`; the advantage of a step row is broadcast to that turn's action tokens. For a
 * single-turn task every completion is a one-step episode (`oneStepEpisodes` in src/env).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import {
  advantageEstimators,
  compositeKeys,
  defineAdvantage,
  discountedStepReturns,
  type GroupNormOptions,
  groupMembers,
  groupNormalize,
  groupNormParams,
  runEstimator,
  type SequenceAdvantages,
} from "./advantage.js";
import type { RewardBatch } from "./types.js";

/** A step batch with the execution feedback of each step (Hi-Agent foresight). */
export interface AgentRewardBatch extends RewardBatch {
  /** 1 when the low-level execution of the step succeeded / advanced the task, else 0 (Hi-Agent). */
  executed?: Uint8Array;
}

function requireLength(what: string, got: ArrayLike<unknown> | undefined, n: number, who: string): void {
  if (got !== undefined && got.length !== n) {
    throw new CohortError(`${who}: ${what} has length ${got.length} but the batch has ${n} rows; give one per row`);
  }
}

// ---- M-GRPO ---------------------------------------------------------------------------------------

export type MGrpoOptions = GroupNormOptions & { subAgentSteps?: number };

/**
 * Trajectory alignment of M-GRPO (B.22, design choice): how many times each row counts. Main-agent rows
 * (agentId 0) count once. The sub-agent rows (agentId ≠ 0) of each trajectory, in step order, are cut or
 * repeated to exactly K: with c ≥ K invocations the first K count once and the rest 0 (dropped); with
 * 0 < c < K they are repeated cyclically, row j counting ⌊K/c⌋ + [j < K mod c] times.
 */
export function alignSubAgentSteps(batch: RewardBatch, k: number): Int32Array {
  if (!Number.isInteger(k) || k < 1) {
    throw new CohortError(`m_grpo: subAgentSteps must be an integer ≥ 1, got ${k}`);
  }
  const agent = batch.agentId as Int32Array;
  const n = batch.rewards.length;
  const traj = batch.trajectoryIndex ?? Int32Array.from({ length: n }, (_, i) => i);
  const out = new Int32Array(n);
  for (const rows of groupMembers(traj)) {
    const step = batch.stepIndex;
    const ordered = step === undefined ? rows : [...rows].sort((a, b) => step[a]! - step[b]!);
    const subs = ordered.filter((i) => agent[i] !== 0);
    for (const i of ordered) if (agent[i] === 0) out[i] = 1;
    const c = subs.length;
    if (c === 0) continue;
    subs.forEach((i, j) => {
      out[i] = c >= k ? (j < k ? 1 : 0) : Math.floor(k / c) + (j < k % c ? 1 : 0);
    });
  }
  return out;
}

/**
 * M-GRPO: group-relative advantages computed separately for the main agent (agentId 0) and the sub-agents
 * (agentId ≠ 0) of a prompt group, all with the trajectory's outcome reward (B.22). Sub-agent rows are first
 * aligned to K_sub per trajectory (`alignSubAgentSteps`); the sub-agent statistics run over the aligned
 * multiset (a repeated row counts as many times as it is repeated), and a row's advantage is multiplied by
 * its count: a dropped invocation gets 0, a repeated one the gradient of its copies. Options as GRPO.
 */
// arXiv 2511.13288 [ABSTRACT] (alignment rule: design choice)
export const mGrpo = defineAdvantage({
  name: "m_grpo",
  paper: "2511.13288",
  confidence: "ABSTRACT",
  doc: "separate group normalisation of main-agent and (aligned) sub-agent rows",
  params: groupNormParams.extend({ subAgentSteps: z.number().int().min(1).default(2) }),
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "episode",
  estimate: (batch, p) => mGrpoAdvantages(batch, p),
});

function mGrpoAdvantages(batch: RewardBatch, opts: GroupNormOptions & { subAgentSteps: number }): SequenceAdvantages {
  const n = batch.rewards.length;
  if (batch.agentId === undefined) {
    throw new CohortError("m_grpo needs batch.agentId (0 = main agent, other ids = sub-agents); set it");
  }
  requireLength("agentId", batch.agentId, n, "m_grpo");
  requireLength("trajectoryIndex", batch.trajectoryIndex, n, "m_grpo");
  requireLength("groupIndex", batch.groupIndex, n, "m_grpo");
  const { subAgentSteps, ...norm } = opts;
  const count = alignSubAgentSteps(batch, subAgentSteps);
  // expand the aligned multiset: row i appears count[i] times under key (group, role)
  const values: number[] = [];
  const keys: string[] = [];
  const first = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    const role = batch.agentId[i] === 0 ? "main" : "sub";
    for (let c = 0; c < count[i]!; c++) {
      if (c === 0) first[i] = values.length;
      values.push(batch.rewards[i]!);
      keys.push(`${batch.groupIndex[i]}\u0000${role}`);
    }
  }
  const a = groupNormalize(Float64Array.from(values), groupMembers(keys), norm);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) if (first[i]! >= 0) out[i] = a[first[i]!]! * count[i]!;
  return { kind: "sequence", values: out };
}

// ---- Hi-Agent -------------------------------------------------------------------------------------

const hiAgentParams = groupNormParams.extend({
  /** λ: weight of the execution-feedback (foresight) term (design choice). */
  lambda: z.number().min(0).default(0.5),
  /** Discount of the step return used as the environment term; 0 = the step reward itself. */
  gamma: z.number().min(0).max(1).default(0),
});
export type HiAgentOptions = z.input<typeof hiAgentParams>;

/**
 * Hi-Agent foresight advantage (B.37, design choice): each step's high-level reward is
 * `r_high = R^S_γ + λ·1[execution succeeded]`, where R^S_γ is the discounted return-to-go of the step rewards
 * (γ = 0: the step reward r_env_step of ALGORITHMS.md) and the execution flag is `batch.executed` (absent:
 * no feedback, 0). `r_high` is group-normalised over the steps taken from the same state of the same prompt
 * group (`observationKey`; absent: the prompt group), i.e. over the candidates sampled for that state.
 * A state reached by one step only gets 0. Options as GRPO.
 */
// arXiv 2510.14388 [ABSTRACT] (foresight combination: design choice)
export const hiAgent = defineAdvantage({
  name: "hi_agent",
  paper: "2510.14388",
  confidence: "ABSTRACT",
  doc: "step reward + λ·1[executed], group-normalised over the steps taken from the same state",
  params: hiAgentParams,
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "step",
  estimate: (batch, p) => hiAgentAdvantages(batch, p),
});

function hiAgentAdvantages(batch: AgentRewardBatch, opts: z.output<typeof hiAgentParams>): SequenceAdvantages {
  const n = batch.rewards.length;
  requireLength("executed", batch.executed, n, "hi_agent");
  requireLength("trajectoryIndex", batch.trajectoryIndex, n, "hi_agent");
  requireLength("observationKey", batch.observationKey, n, "hi_agent");
  const { lambda, gamma, ...norm } = opts;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(batch.rewards[i]!)) {
      throw new CohortError(`hi_agent: step reward ${i} is missing (NaN); every step needs a reward (use 0)`);
    }
  }
  const env =
    batch.trajectoryIndex === undefined
      ? batch.rewards
      : discountedStepReturns(batch.rewards, batch.trajectoryIndex, gamma, batch.stepIndex);
  const high = Float64Array.from(env, (r, i) => r + lambda * (batch.executed?.[i] ?? 0));
  const groups =
    batch.observationKey === undefined
      ? groupMembers(batch.groupIndex)
      : groupMembers(compositeKeys(batch.groupIndex, batch.observationKey, "observationKey"));
  return { kind: "sequence", values: groupNormalize(high, groups, norm) };
}

// ---- SALT: step advantages over the trajectory graph of a prompt ----------------------------------

const saltParams = z.strictObject({
  /** The per-row advantage averaged over each node: GRPO or RLOO of the episode reward (one value per
   * trajectory), or GiGPO's episode + step advantage of each step row. */
  base: z.enum(["grpo", "rloo", "gigpo"]).default("grpo"),
  /** Options of the base estimator (its own schema checks them). */
  baseOptions: z.record(z.string(), z.unknown()).default({}),
  /** "prefix": a node is the path (observations and actions) up to and including the step — a tree of the
   * group's trajectories; "state": a node is (state, action), merging revisits of one state wherever they occur. */
  node: z.enum(["prefix", "state"]).default("prefix"),
});
export type SaltOptions = z.input<typeof saltParams>;

/**
 * The node of every step row: rows of one group whose trajectories share the same path of (observation,
 * action) up to and including the step ("prefix"), or the same (observation, action) ("state"), share a node.
 * Actions are `actionKey` (else the completion text, else the trajectory itself: no merging).
 */
export function saltNodes(batch: RewardBatch, node: "prefix" | "state" = "prefix"): number[] {
  const n = batch.rewards.length;
  const traj = batch.trajectoryIndex ?? Int32Array.from({ length: n }, (_, i) => i);
  const act = (i: number) => batch.actionKey?.[i] ?? batch.texts?.[i] ?? `#${traj[i]}`;
  const obs = (i: number) => batch.observationKey?.[i] ?? "";
  const ids = new Map<string, number>();
  const out = new Array<number>(n).fill(0);
  for (const rows of groupMembers(traj)) {
    const ordered = batch.stepIndex ? [...rows].sort((a, b) => batch.stepIndex![a]! - batch.stepIndex![b]!) : rows;
    let path = "";
    for (const i of ordered) {
      const step = JSON.stringify([obs(i), act(i)]);
      path = node === "prefix" ? `${path}\u0000${step}` : step;
      const key = `${batch.groupIndex[i]}\u0001${path}`;
      let id = ids.get(key);
      if (id === undefined) {
        id = ids.size;
        ids.set(key, id);
      }
      out[i] = id;
    }
  }
  return out;
}

/**
 * SALT (ALGORITHMS.md §G.4, design choice): the trajectories of one prompt form a graph whose nodes merge
 * identical steps (`saltNodes`); each step row gets the mean of the base advantages of the rows at its node.
 * A step shared by successful and failed trajectories gets a near-neutral advantage, a decisive one keeps its
 * trajectory's sign. Base GRPO/RLOO: the trajectory advantage of the episode reward R^E (outcome rewards only).
 */
// arXiv 2510.20022 [ABSTRACT]
export const salt = defineAdvantage({
  name: "salt",
  paper: "2510.20022",
  confidence: "ABSTRACT",
  doc: "step advantage = mean base advantage over the trajectories through the step's node of the prompt's graph",
  params: saltParams.superRefine((p, ctx) => {
    const r = advantageEstimators.get(p.base).params.safeParse(p.baseOptions);
    if (!r.success)
      ctx.addIssue({ code: "custom", message: `baseOptions for ${p.base}: ${r.error.issues[0]?.message}` });
  }),
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "step",
  estimate: (batch, p) => ({ kind: "sequence", values: saltAdvantages(batch, p) }),
});

export function saltAdvantages(batch: RewardBatch, opts: z.output<typeof saltParams>): Float64Array {
  const n = batch.rewards.length;
  const traj = batch.trajectoryIndex ?? Int32Array.from({ length: n }, (_, i) => i);
  let base: Float64Array;
  if (opts.base === "gigpo") {
    const a = runEstimator(advantageEstimators.get("gigpo"), { ...batch, trajectoryIndex: traj }, opts.baseOptions);
    base = a.values as Float64Array;
  } else {
    // one value per trajectory: its episode reward (else the sum of its step rewards)
    const trajRows = groupMembers(traj);
    const first = trajRows.map((rows) => rows[0] as number);
    const values = Float64Array.from(trajRows, (rows) => {
      const e = batch.episodeRewards?.[rows[0] as number];
      return e ?? rows.reduce((s, i) => s + (batch.rewards[i] as number), 0);
    });
    const perTraj = runEstimator(
      advantageEstimators.get(opts.base),
      { rewards: values, groupIndex: Int32Array.from(first, (i) => batch.groupIndex[i] as number) },
      opts.baseOptions,
    ).values as Float64Array;
    base = new Float64Array(n);
    trajRows.forEach((rows, j) => {
      for (const i of rows) base[i] = perTraj[j] as number;
    });
  }
  const nodes = saltNodes(batch, opts.node);
  const sum = new Map<number, number>();
  const count = new Map<number, number>();
  nodes.forEach((k, i) => {
    sum.set(k, (sum.get(k) ?? 0) + (base[i] as number));
    count.set(k, (count.get(k) ?? 0) + 1);
  });
  return Float64Array.from(nodes, (k) => (sum.get(k) as number) / (count.get(k) as number));
}
