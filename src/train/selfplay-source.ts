/**
 * Dr. Zero's self-evolution loop as a rollout source (arXiv 2601.07055, ALGORITHMS.md §G.6; the environment side
 * is src/env/wordnet-selfplay.ts). `env: {name: wordnet, options: {selfPlay: {…}}}` in a train config selects it.
 *
 * ```
 * step k:  B proposer tasks (hop count h asked for, seed document)            the source's data RNG; the
 *                                                                            seed's own h-hop question is a train one
 *          B proposals, one per task (the authors' proposer: rollout.n = 1)    request seeds (seed, k, i), i < B
 *          valid proposals → n solver episodes each (n = train.groupSize)      request seeds (seed, k, B + j)
 *          proposer reward R_p = 0.5·fmt + diff(solver hits) (0 when invalid); solver reward = its episode return
 *          rows: proposer rows, then solver rows; one update (or alternating roles, `alternate`)
 * ```
 *
 * | rows     | baseline group (`fields.hops` and `groupIndex` carry it)                                          |
 * |----------|----------------------------------------------------------------------------------------------------|
 * | proposer | `proposerBaseline: hops` (default): every proposal asked for the same hop count — the authors' HRPO (their group key is the prompt's data_source, which encodes the hop count); `batch`: all proposals of the step |
 * | solver   | `solverBaseline: question` (default): the n attempts at one question — the authors' solver GRPO (G = 5); `hops`: every attempt at a question of the same hop count (design choice) |
 *
 * The run's estimator normalises within these groups: with the `drzero_hrpo` preset (hop_grouped over the field
 * `hops`, unbiased std, ε = 1e-6, a one-row group A = R/(1 + ε) as the authors' code) both roles get
 * A = (R − mean_group)/(std_group + ε); with `grpo` the groups are `groupIndex`, the same partition. Design
 * choice: both roles go into one update per step (`alternate: 0`); the authors train the proposer and the
 * solver in alternating iterations (iter1_challenger, then iter1_solver), which `alternate: k` approximates
 * with k steps per role (the solver still plays every step: the proposer's reward needs it).
 * @module
 */

import { advantageEstimators } from "../algo/advantage.js";
import type { AlgoConfig } from "../algo/config.js";
import type { Pipeline, RewardStage, StageInputs } from "../algo/pipeline.js";
import type { Episode, RollParams } from "../env/roller.js";
import type { SelfPlayOptions } from "../env/selfplay-options.js";
import { type EpisodeCompletion, type EpisodeSource, episodeMetrics, holeMask, meanAt } from "../env/source.js";
import type { WordnetTask } from "../env/wordnet.js";
import {
  checkProposal,
  drawProposerTask,
  isSelfPlayFactory,
  type ProposalCheck,
  type ProposerTask,
  proposerObservation,
  proposerReward,
  proposerTaskId,
  type SelfPlayFactory,
} from "../env/wordnet-selfplay.js";
import { CohortError, ConfigError } from "../errors.js";
import type { Sampler } from "../model/sampler.js";
import { Rng } from "../task/rng.js";
import type { Problem } from "../task/types.js";
import { type Collected, type RolloutSource, requestSeed } from "./sources.js";

/** Whether an `env:` section asks for self-play. */
export function isSelfPlayEnv(env: { name: string; options: Record<string, unknown> } | undefined): boolean {
  return env !== undefined && env.options.selfPlay !== undefined;
}

/**
 * Config-time checks of a self-play run (after the environment's own options are validated): the solver's n
 * attempts (train.groupSize) must be ≥ 2 for the difficulty term, and the estimator must read one row per
 * episode.
 */
export function checkSelfPlayConfig(
  c: { env?: { name: string; options: Record<string, unknown> }; train: { groupSize: number } },
  algo: AlgoConfig,
): void {
  if (!isSelfPlayEnv(c.env)) return;
  if (c.env?.name !== "wordnet")
    throw new ConfigError(
      `selfPlay is an option of the wordnet environment, not of "${c.env?.name}"`,
      "env.options.selfPlay",
    );
  if (c.train.groupSize < 2)
    throw new ConfigError(
      `with selfPlay, train.groupSize is the solver's attempts at each proposed question (n); the proposer's difficulty term needs n ≥ 2, got ${c.train.groupSize}`,
      "train.groupSize",
    );
  if (advantageEstimators.get(algo.advantage.estimator).rows === "step")
    throw new ConfigError(
      `estimator "${algo.advantage.estimator}" reads one row per agent step; self-play rows are whole proposals and episodes: use an episode-level estimator (drzero_hrpo's hop_grouped, grpo, …)`,
      "algo.advantage.estimator",
    );
}

export interface SelfPlaySourceOptions {
  /** The run's environment; its factory must be the wordnet self-play factory. */
  env: EpisodeSource;
  sampler: Sampler;
  /** The policy's context length (bounds episodes). */
  contextLength: number;
  params: RollParams;
  /** Proposals per step (B = train.promptsPerStep). */
  promptsPerStep: number;
  /** Solver attempts per valid proposal (n = train.groupSize). */
  groupSize: number;
  seed: number;
}

/** Which rows a step trains: both roles, or one in `alternate: k` mode. */
export function selfPlayPhase(step: number, alternate: number): "joint" | "proposer" | "solver" {
  if (alternate === 0) return "joint";
  return Math.floor((step - 1) / alternate) % 2 === 0 ? "proposer" : "solver";
}

/** One proposal and what came of it. */
export interface ProposalOutcome {
  task: ProposerTask;
  text: string;
  check: ProposalCheck;
  /** The solver's hits (valid proposals), else null. */
  hits: boolean[] | null;
  reward: number;
  difficulty: number;
}

/** The baseline-group label of each row (`fields.hops`): see the module table. */
export function proposerLabel(o: SelfPlayOptions, t: ProposerTask): string {
  return o.proposerBaseline === "hops" ? `proposer:${t.hops}` : "proposer";
}
export function solverLabel(o: SelfPlayOptions, q: number, t: WordnetTask): string {
  return o.solverBaseline === "question" ? `solver:q${q}` : `solver:${t.hops}`;
}

/** Dense group ids in order of first appearance of each label. */
function denseGroups(labels: readonly string[]): Int32Array {
  const ids = new Map<string, number>();
  return Int32Array.from(labels, (l) => {
    let g = ids.get(l);
    if (g === undefined) {
      g = ids.size;
      ids.set(l, g);
    }
    return g;
  });
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** The self-play source: proposals, their solver episodes, both scored; advantages over the row groups. */
export function selfPlaySource(o: SelfPlaySourceOptions): RolloutSource {
  const factory = o.env.factory;
  if (!isSelfPlayFactory(factory))
    throw new CohortError("selfPlaySource needs the wordnet environment with options.selfPlay");
  const f: SelfPlayFactory = factory;
  const sp = f.selfPlay;
  const maxHops = sp.hops[1];
  let rng = Rng.fromSeed(BigInt(o.seed) ^ 0x5e1f91a7n);
  const B = o.promptsPerStep;
  const n = o.groupSize;

  const collect = async (step: number): Promise<Collected> => {
    const t0 = performance.now();
    const tasks = Array.from({ length: B }, () => drawProposerTask(rng, sp.hops, f.trainSeeds));
    const proProblems: Problem[] = tasks.map((t) => ({
      id: proposerTaskId(t),
      prompt: proposerObservation(t),
      meta: { task: t },
    }));
    const pro = await o.env.rollout(
      o.sampler,
      o.contextLength,
      proProblems,
      tasks.map(() => 1),
      (i) => requestSeed(o.seed, step, i),
      o.params,
    );
    const outcomes: ProposalOutcome[] = tasks.map((t, i) => {
      const ep = (pro.completions[i] as EpisodeCompletion).episode;
      const text = ep.steps[0]?.action ?? "";
      return {
        task: t,
        text,
        check: checkProposal(text, t.hops, { maxHops, evalFraction: f.evalFraction }),
        hits: null,
        reward: 0,
        difficulty: 0,
      };
    });
    const valid = outcomes.flatMap((x, i) => (x.check.valid ? [i] : []));
    const solProblems: Problem[] = valid.map((i) => {
      const t = outcomes[i]?.check.task as WordnetTask;
      return { id: `q${i}-${t.hops}:${t.word}`, prompt: `kind${t.hops}(${t.word})=?`, meta: { task: t } };
    });
    const sol =
      valid.length > 0
        ? await o.env.rollout(
            o.sampler,
            o.contextLength,
            solProblems,
            valid.map(() => n),
            (j) => requestSeed(o.seed, step, B + j),
            o.params,
          )
        : null;
    const solEps: Episode[] = (sol?.completions ?? []).map((c) => c.episode);
    valid.forEach((i, q) => {
      const x = outcomes[i] as ProposalOutcome;
      x.hits = solEps.slice(q * n, (q + 1) * n).map((e) => e.success);
    });
    for (const x of outcomes) {
      const r = proposerReward(x.check, x.hits);
      x.reward = r.reward;
      x.difficulty = r.difficulty;
    }
    const samplingMs = performance.now() - t0;

    // ---- rows: proposer rows, then solver rows, each role's groups contiguous -----------------------------
    let phase = selfPlayPhase(step, sp.alternate);
    if (phase === "solver" && valid.length === 0) phase = "proposer"; // no question to train the solver on
    type Row = { prompt: number[]; c: EpisodeCompletion; text: string; problem: Problem; label: string; r: number };
    const proRows: Row[] = outcomes.map((x, i) => ({
      prompt: pro.prompts[i] as number[],
      c: pro.completions[i] as EpisodeCompletion,
      text: pro.texts[i] as string,
      problem: proProblems[i] as Problem,
      label: proposerLabel(sp, x.task),
      r: x.reward,
    }));
    const solRows: Row[] = solEps.map((e, k) => {
      const q = Math.floor(k / n);
      return {
        prompt: sol?.prompts[k] as number[],
        c: sol?.completions[k] as EpisodeCompletion,
        text: sol?.texts[k] as string,
        problem: solProblems[q] as Problem,
        label: solverLabel(sp, valid[q] as number, solProblems[q]?.meta.task as WordnetTask),
        r: e.totalReward,
      };
    });
    const byLabel = (a: Row, b: Row) => (a.label < b.label ? -1 : a.label > b.label ? 1 : 0);
    const rows = [
      ...(phase === "solver" ? [] : [...proRows].sort(byLabel)), // stable: ties keep their order
      ...(phase === "proposer" ? [] : sp.solverBaseline === "hops" ? [...solRows].sort(byLabel) : solRows),
    ];
    const labels = rows.map((r) => r.label);
    const vs = outcomes.filter((x) => x.check.valid);
    const reasons = ["syntax", "hops", "word", "chain", "held-out"] as const;
    const metrics: Record<string, number> = {
      "selfplay/proposer_valid_rate": vs.length / B,
      "selfplay/proposer_match_rate": mean(outcomes.map((x) => (x.check.valid && x.check.matches ? 1 : 0))),
      "selfplay/proposer_reward_mean": mean(outcomes.map((x) => x.reward)),
      "selfplay/hops_mean": vs.length ? mean(vs.map((x) => x.check.hops)) : Number.NaN,
      "selfplay/hops_asked_mean": mean(tasks.map((t) => t.hops)),
      "selfplay/difficulty_mean": vs.length ? mean(vs.map((x) => x.difficulty)) : Number.NaN,
      "selfplay/solvable_rate": vs.length ? mean(vs.map((x) => (x.difficulty > 0 ? 1 : 0))) : Number.NaN,
      "selfplay/solver_success": solEps.length ? mean(solEps.map((e) => (e.success ? 1 : 0))) : Number.NaN,
      "selfplay/questions": vs.length,
      "selfplay/proposer_rows": rows.filter((r) => r.label.startsWith("proposer")).length,
      "selfplay/solver_rows": rows.filter((r) => r.label.startsWith("solver")).length,
      ...Object.fromEntries(
        reasons.map((r) => [
          `selfplay/invalid_${r.replace("-", "_")}`,
          mean(outcomes.map((x) => (x.check.reason === r ? 1 : 0))),
        ]),
      ),
    };
    if (solEps.length > 0) Object.assign(metrics, episodeMetrics(solEps));
    const completions = rows.map((r) => r.c);
    return {
      ro: {
        prompts: rows.map((r) => r.prompt),
        completions,
        texts: rows.map((r) => r.text),
        problems: rows.map((r) => ({ ...r.problem, meta: { ...r.problem.meta, group: r.label } })),
        groupIndex: denseGroups(labels),
      },
      byFn: [Float64Array.from(rows, (r) => r.r)],
      failures: 0,
      sampledTokens: completions.reduce((a, c) => a + c.lossMask.reduce((s, m) => s + m, 0), 0),
      samplingMs,
      metrics,
    };
  };

  return {
    collect,
    state: () => ({ rng: rng.state() }),
    load(s) {
      rng = Rng.fromState(s.rng as ReturnType<Rng["state"]>);
    },
    stage: (pl, col, inputs) => selfPlayStage(pl, col, inputs),
  };
}

/**
 * The advantages of a self-play step: the run's pipeline over one row per proposal or episode, each row's
 * field `hops` = its baseline group label (hop_grouped reads it; group-index estimators read `groupIndex`,
 * the same partition), over the episodes' loss masks.
 */
export function selfPlayStage(pl: Pipeline, col: Collected, inputs: Omit<StageInputs, "mask"> = {}): RewardStage {
  const rows = col.ro.completions as EpisodeCompletion[];
  const mask = holeMask(rows);
  try {
    const labels = col.ro.problems.map((p) => String((p.meta as { group?: unknown }).group));
    return pl.advantages(
      col.byFn,
      {
        groupIndex: col.ro.groupIndex,
        fields: labels.map((l) => ({ hops: l, role: l.split(":")[0] })),
        lengths: Int32Array.from(rows, (c) => c.tokens.length),
        meanLogprobs: Float64Array.from(rows, (c) => meanAt(c.logprobs, c.lossMask)),
        truncated: Uint8Array.from(rows, (c) => (c.finishReason === "length" ? 1 : 0)),
      },
      { ...inputs, mask },
    );
  } finally {
    mask.dispose();
  }
}
