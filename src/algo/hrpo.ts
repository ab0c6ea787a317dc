/**
 * The two "HRPO"s of the seed list — same acronym, different estimators (ALGORITHMS.md §G.5, §G.6):
 *
 * | name          | paper                       | rows     | advantage                                                         |
 * |---------------|-----------------------------|----------|-------------------------------------------------------------------|
 * | `hop_grouped` | Dr. Zero (2601.07055)        | episode  | A_i = (R_i − mean_{h(i)} R)/(std_{h(i)} R + ε), groups = rows whose prompt field `h` (the hop count) is equal, across prompts; a singleton group: mean 0, std 1 |
 * | `mashost_hrpo`| MasHost (2506.08507)         | step     | A_{i,k} = (R_i − mean_G R)/(std_G R + ε) + λ·(r_{i,k} − mean_G r)/(std_G r + ε); R = the episode reward of system i, r_{i,k} = the action-wise reward of its k-th decision, statistics over the prompt group (all actions of the group for r; `actionStats: agent`: the group's actions of the same agent id) |
 *
 * std is unbiased (N − 1) by default, ε = 1e-6. `hop_grouped` reads each row's prompt fields (a JSONL column
 * or a task's meta: `RewardBatch.fields`), so one sample per prompt suffices: the baseline is shared by all
 * questions of the same structure (Dr. Zero's proposer, `rollout.n = 1`).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { compositeKeys, defineAdvantage, groupMembers, groupNormalize, type SequenceAdvantages } from "./advantage.js";
import { validStats } from "./groups.js";
import type { RewardBatch } from "./types.js";

const seq = (values: Float64Array): SequenceAdvantages => ({ kind: "sequence", values });

const hopParams = z.strictObject({
  /** The prompt field whose value forms the groups (Dr. Zero: the hop count of the question). */
  field: z.string().min(1).default("hops"),
  /** Group across prompts (Dr. Zero) or within each prompt group as well (key = prompt group × field). */
  acrossPrompts: z.boolean().default(true),
  std: z.enum(["unbiased", "population"]).default("unbiased"),
  eps: z.number().min(0).default(1e-6),
  /** A one-row group: "unit" = mean 0, std 1 (the authors' code: A = R/(1 + ε)); "zero" (TRL); "reward" (A = R). */
  singleton: z.enum(["unit", "zero", "reward"]).default("unit"),
});

/** The group label of every row: the value of `field` in its prompt's fields (missing → a CohortError naming the row). */
export function fieldLabels(batch: RewardBatch, field: string, who: string): string[] {
  const f = batch.fields;
  if (f === undefined)
    throw new CohortError(
      `${who} groups rows by the prompt field "${field}" but this batch carries no prompt fields (RewardBatch.fields; cohort train supplies them)`,
    );
  return f.map((row, i) => {
    const v = row?.[field];
    if (v === undefined || v === null || (typeof v !== "string" && typeof v !== "number" && typeof v !== "boolean"))
      throw new CohortError(
        `${who}: row ${i} has no scalar field "${field}" (fields: ${Object.keys(row ?? {}).join(", ") || "none"}); add it to every prompt, or set ${who}'s \`field\``,
      );
    return String(v);
  });
}

/**
 * Dr. Zero's hop-grouped relative advantage (HRPO, §G.6): rows are grouped by a prompt field (the hop count)
 * instead of by prompt, so each question needs one sample; a singleton group gets mean 0 and std 1.
 */
// arXiv 2601.07055 [CODE]
export const hopGrouped = defineAdvantage({
  name: "hop_grouped",
  paper: "2601.07055",
  confidence: "CODE",
  doc: "group normalisation over rows whose prompt field (the hop count) is equal, across prompts; singleton: A = R/(1+ε)",
  params: hopParams,
  needs: ["rowFields"],
  granularity: "sequence",
  rows: "episode",
  // groups cross prompts: one sample per prompt carries a signal
  minGroupSize: (p) => (p.acrossPrompts ? 1 : 2),
  estimate(batch, p) {
    const labels = fieldLabels(batch, p.field, "hop_grouped");
    const groups = groupMembers(p.acrossPrompts ? labels : compositeKeys(batch.groupIndex, labels, p.field));
    const out = groupNormalize(batch.rewards, groups, { std: p.std, eps: p.eps, singleton: p.singleton });
    return seq(out);
  },
});

const mashostParams = z.strictObject({
  /** Weight λ of the action-wise term (design choice: 0.5). */
  lambda: z.number().min(0).default(0.5),
  std: z.enum(["unbiased", "population"]).default("unbiased"),
  eps: z.number().min(0).default(1e-6),
  /**
   * Statistics of the action-wise rewards: over all decisions of the group ("group"), or over the decisions of
   * the group taken by the same agent id ("agent": e.g. node-adding decisions apart from exit decisions, whose
   * rewards live on another scale). Design choice.
   */
  actionStats: z.enum(["group", "agent"]).default("group"),
});

/**
 * MasHost's HRPO (§G.5, design choice): each row is one sampling decision (a role or an edge) of a sampled
 * multi-agent system; its advantage adds the group-relative advantage of the system's episode reward R and
 * λ times the standardised action-wise reward r (component rationality) over all decisions of the group.
 * Rows: `trajectoryIndex` = the system, `rewards` = r_{i,k}, `episodeRewards` = R_i (absent: the sum of the
 * system's action-wise rewards).
 */
// arXiv 2506.08507 [ABSTRACT]
export const mashostHrpo = defineAdvantage({
  name: "mashost_hrpo",
  paper: "2506.08507",
  confidence: "ABSTRACT",
  doc: "group-relative advantage of the system's reward + λ·standardised action-wise reward of each decision",
  params: mashostParams,
  needs: ["agentSteps"],
  granularity: "sequence",
  rows: "step",
  estimate(batch, p) {
    const n = batch.rewards.length;
    const traj = batch.trajectoryIndex;
    if (traj === undefined || traj.length !== n)
      throw new CohortError(
        `mashost_hrpo needs step rows with trajectoryIndex (the system of each decision, one per row; got ${traj?.length ?? "none"} for ${n} rows)`,
      );
    // R of each row's system: episodeRewards, else the sum of the system's action-wise rewards
    let R = batch.episodeRewards;
    if (R === undefined) {
      const total = new Map<number, number>();
      traj.forEach((t, i) => total.set(t, (total.get(t) ?? 0) + (batch.rewards[i] as number)));
      R = Float64Array.from(traj, (t) => total.get(t) as number);
    }
    const agents = p.actionStats === "agent" ? batch.agentId : undefined;
    if (p.actionStats === "agent" && (agents === undefined || agents.length !== n))
      throw new CohortError(
        `mashost_hrpo with actionStats "agent" needs agentId (the agent of each decision, one per row; got ${agents?.length ?? "none"} for ${n} rows); environment runs supply it (StepInfo.agent), or set actionStats: "group"`,
      );
    const out = new Float64Array(n);
    for (const rows of groupMembers(batch.groupIndex)) {
      // one R per system of the group
      const systems = groupMembers(Int32Array.from(rows, (i) => traj[i] as number)).map((m) => rows[m[0] as number]);
      const sys = validStats(R as Float64Array, systems as number[], p.std);
      const sysDen = sys.n > 1 ? sys.std + p.eps : 0;
      for (const i of rows) out[i] = sysDen === 0 ? 0 : (((R as Float64Array)[i] as number) - sys.mean) / sysDen;
      // the action-wise term: over the group's decisions, or over those of each agent id
      const pools = agents === undefined ? [rows] : groupMembers(Int32Array.from(rows, (i) => agents[i] as number));
      for (const pool of pools) {
        const members = agents === undefined ? pool : pool.map((m) => rows[m] as number);
        const act = validStats(batch.rewards, members, p.std);
        const actDen = act.n > 1 ? act.std + p.eps : 0;
        for (const i of members) {
          const b = actDen === 0 ? 0 : ((batch.rewards[i] as number) - act.mean) / actDen;
          out[i] = (out[i] as number) + p.lambda * b;
        }
      }
    }
    return seq(out);
  },
});
