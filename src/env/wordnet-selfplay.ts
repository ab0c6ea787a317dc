/**
 * Dr. Zero's self-evolution loop on the wordnet environment (arXiv 2601.07055, ALGORITHMS.md §G.6): the same
 * policy is a **proposer** that writes a question and a **solver** that answers it with the search tool.
 *
 * ```
 * proposer prompt   "propose2:cat isa feline"   a seed document and the hop count asked for
 * proposal          "kind2(cat)=?"              a question in the environment's own syntax
 * valid             it parses, 1 ≤ hops ≤ selfPlay.hops max, the word is in the graph, the chain of that many
 *                   parents exists (the answer is read off the graph: proposals are verifiable) and the
 *                   question is not one of the environment's held-out questions
 * solver            n episodes of each valid question through the wordnet environment (search calls included)
 * ```
 *
 * | term (authors' proposer reward) | here                                                                    |
 * |---------------------------------|-------------------------------------------------------------------------|
 * | integrity                       | the proposal is valid (above)                                           |
 * | think (format of the turns)     | design choice: 1 when the proposal has the hop count asked for, else 0  |
 * | tool (searches ≈ hops)          | 1: the answer comes from the graph, the proposer needs no retrieval     |
 * | answer (grounded, ≤ 5 words)    | 1: the graph's answer is one grounded word                              |
 * | diff                            | drZeroDifficulty of the solver's n hits: 0 if all or none, else (n − k)/(n − 1) |
 * | R                               | drZeroProposerReward: 0.5·fmt + diff, fmt = (1 + think + tool + answer)/4; an invalid proposal: 0 (the lowest) |
 *
 * So a valid proposal earns 0.375 or 0.5 plus its difficulty (at most 1.5): hard yet solvable questions win.
 * The self-play rows, their baselines and the update are built by src/train/selfplay-source.ts. For
 * `cohort pretrain --env wordnet --options '{"selfPlay":{}}'` the factory mixes proposer tasks (a scripted
 * proposer) into the scripted solver episodes; its held-out tasks are the environment's own questions.
 * @module
 */
import { createHash } from "node:crypto";
import { CohortError } from "../errors.js";
import { drZeroDifficulty, drZeroProposerReward } from "../reward/process.js";
import type { Rng } from "../task/rng.js";
import { splitOf } from "../task/split.js";
import type { SelfPlayOptions } from "./selfplay-options.js";
import type { EnvFactory, Environment, ScriptedPolicy, StepResult } from "./types.js";
import { chainOf, type IsaGraph, isaGraph, type WordnetEnv, type WordnetTask } from "./wordnet.js";

/** A proposer turn: write a question of `hops` hops from the seed document "<seed> isa <parent>". */
export interface ProposerTask {
  role: "proposer";
  hops: number;
  seed: string;
  doc: string;
}

export type SelfPlayTask = WordnetTask | ProposerTask;

export function isProposerTask(t: unknown): t is ProposerTask {
  return typeof t === "object" && t !== null && (t as { role?: unknown }).role === "proposer";
}

/** The proposer's prompt (first observation). */
export function proposerObservation(t: ProposerTask): string {
  return `propose${t.hops}:${t.doc}`;
}

/** A proposal's syntax: `kind<h>(<word>)=?` (surrounding spaces ignored). */
export function parseProposal(text: string): { word: string; hops: number } | null {
  const m = /^kind([0-9])\(([a-z]+)\)=\?$/.exec(text.trim());
  return m ? { hops: Number(m[1]), word: m[2] as string } : null;
}

export type ProposalReason = "ok" | "syntax" | "hops" | "word" | "chain" | "held-out";

/** What a proposal is worth before the solver plays it. */
export interface ProposalCheck {
  valid: boolean;
  /** Why it is invalid ("ok" when valid). */
  reason: ProposalReason;
  /** The question to solve (valid proposals only). */
  task: WordnetTask | null;
  /** The proposal has the hop count asked for. */
  matches: boolean;
  /** Its hop count when it parsed (NaN otherwise). */
  hops: number;
}

/**
 * Validates a proposal against the graph: syntax, hop range [1, `maxHops`], the word in the graph, the chain
 * of that many parents, and not a held-out question of the environment (hash split with `evalFraction`).
 */
export function checkProposal(
  text: string,
  requested: number,
  o: { maxHops: number; evalFraction: number; graph?: IsaGraph },
): ProposalCheck {
  const bad = (reason: ProposalReason, hops = Number.NaN): ProposalCheck => ({
    valid: false,
    reason,
    task: null,
    matches: hops === requested,
    hops,
  });
  const p = parseProposal(text);
  if (p === null) return bad("syntax");
  if (p.hops < 1 || p.hops > o.maxHops) return bad("hops", p.hops);
  const g = o.graph ?? isaGraph();
  if (!g.parent.has(p.word)) return bad("word", p.hops);
  const chain = chainOf(g, p.word, p.hops);
  if (chain === null) return bad("chain", p.hops);
  // the same canonical text as the environment's split (wordnet.ts sampleTask)
  if (splitOf(`${p.hops}:${p.word}`, o.evalFraction) === "eval") return bad("held-out", p.hops);
  return {
    valid: true,
    reason: "ok",
    task: { word: p.word, hops: p.hops, chain },
    matches: p.hops === requested,
    hops: p.hops,
  };
}

/**
 * The proposer's reward from its check and the solver's n outcomes (`hits`, one per attempt; unused when the
 * proposal is invalid): Dr. Zero's R = 0.5·fmt + diff with the terms mapped as in the module table.
 */
// arXiv 2601.07055 [CODE] (the term mapping: design choice)
export function proposerReward(
  check: Pick<ProposalCheck, "valid" | "matches">,
  hits: readonly boolean[] | null,
): { format: number; difficulty: number; reward: number } {
  if (!check.valid) return { format: 0, difficulty: 0, reward: 0 };
  if (hits === null) throw new CohortError("proposerReward: a valid proposal needs the solver's outcomes");
  const difficulty = drZeroDifficulty(hits);
  const r = drZeroProposerReward({
    integrity: true,
    think: check.matches ? 1 : 0,
    tool: 1,
    answer: 1,
    difficulty,
  });
  return { format: r.format, difficulty, reward: r.reward };
}

/**
 * Seed words by hop count: the words with at least h parents above them; with `evalFraction`, only those whose
 * h-hop question is in the train split (copying the seed is then a valid proposal).
 */
export function seedWords(g: IsaGraph, maxHops: number, evalFraction?: number): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (let h = 1; h <= maxHops; h++)
    out.set(
      h,
      g.names.filter(
        (w) =>
          chainOf(g, w, h) !== null && (evalFraction === undefined || splitOf(`${h}:${w}`, evalFraction) === "train"),
      ),
    );
  return out;
}

/** A proposer task: a hop count uniform in `hops`, a seed word that has that many parents. */
export function drawProposerTask(
  rng: Rng,
  hops: readonly [number, number],
  seeds: Map<number, string[]>,
  g: IsaGraph = isaGraph(),
): ProposerTask {
  const h = rng.int(hops[0], hops[1]);
  const seed = rng.pick(seeds.get(h) as string[]);
  return { role: "proposer", hops: h, seed, doc: `${seed} isa ${g.parent.get(seed) as string}` };
}

/** The id of a proposer task (for rows and logs). */
export function proposerTaskId(t: ProposerTask): string {
  return `propose-${createHash("sha256").update(`${t.hops}:${t.seed}`).digest("hex").slice(0, 12)}`;
}

/** One proposer turn: the proposal ends the episode; its reward here is the format part (0.5·fmt) only. */
export class ProposerEnv implements Environment<ProposerTask> {
  #task: ProposerTask | null = null;
  last: ProposalCheck | null = null;

  constructor(readonly o: { maxHops: number; evalFraction: number }) {}

  get task(): ProposerTask {
    if (this.#task === null) throw new CohortError("wordnet self-play: step() before reset(); reset it first");
    return this.#task;
  }

  reset(_seed: number, task: ProposerTask): string {
    if (!isProposerTask(task) || !Number.isInteger(task.hops) || typeof task.doc !== "string")
      throw new CohortError(
        `wordnet self-play: invalid proposer task ${JSON.stringify(task)}; expected {role, hops, seed, doc}`,
      );
    this.#task = task;
    this.last = null;
    return proposerObservation(task);
  }

  step(action: string): StepResult {
    const t = this.task;
    const c = checkProposal(action, t.hops, this.o);
    this.last = c;
    const format = c.valid ? (3 + (c.matches ? 1 : 0)) / 4 : 0;
    return {
      observation: "",
      reward: 0.5 * format,
      done: true,
      info: {
        valid: c.valid,
        success: c.valid && c.matches,
        hops: t.hops,
        role: "proposer",
        reason: c.reason,
      },
    };
  }
}

/**
 * A scripted proposer (pretraining data): asks `kind<h>(<seed>)=?` for the hop count asked for; with
 * probability `noise` it varies the question instead (another hop count, the seed's parent, or a random word),
 * which may make it invalid.
 */
export function proposerExpert(noise: number, maxHops: number): ScriptedPolicy<ProposerTask> {
  return (env, rng) => {
    const t = (env as ProposerEnv).task;
    if (rng.float() >= noise) return `kind${t.hops}(${t.seed})=?`;
    const g = isaGraph();
    const k = rng.int(0, 2);
    if (k === 0) return `kind${rng.int(1, maxHops)}(${t.seed})=?`;
    if (k === 1) return `kind${t.hops}(${g.parent.get(t.seed) as string})=?`;
    return `kind${t.hops}(${rng.pick(g.names)})=?`;
  };
}

/** An environment that plays a proposer turn or a solver episode, by its task. */
export class SelfPlayEnv implements Environment<SelfPlayTask> {
  inner: Environment<WordnetTask> | ProposerEnv;

  constructor(
    readonly solver: Environment<WordnetTask>,
    readonly proposer: ProposerEnv,
  ) {
    this.inner = solver;
  }

  reset(seed: number, task: SelfPlayTask): string {
    if (isProposerTask(task)) {
      this.inner = this.proposer;
      return this.proposer.reset(seed, task);
    }
    this.inner = this.solver;
    return this.solver.reset(seed, task);
  }

  step(action: string): StepResult {
    return this.inner.step(action);
  }
}

/** What the self-play source reads of the factory. */
export interface SelfPlayFactory extends EnvFactory<SelfPlayTask> {
  readonly selfPlay: SelfPlayOptions;
  /** The environment's held-out fraction (proposals of held-out questions are invalid). */
  readonly evalFraction: number;
  /** Seed words by hop count (the proposer tasks of `cohort pretrain`). */
  readonly seeds: Map<number, string[]>;
  /** Seed words whose own question is not held out (the proposer tasks of self-play). */
  readonly trainSeeds: Map<number, string[]>;
}

export function isSelfPlayFactory(f: EnvFactory): f is SelfPlayFactory {
  return (f as Partial<SelfPlayFactory>).selfPlay !== undefined;
}

/**
 * The wordnet factory with self-play: train draws are proposer tasks with probability `pretrainShare` (else the
 * environment's questions), held-out draws are the environment's questions; environments play either role.
 */
export function selfPlayFactory(
  base: EnvFactory<WordnetTask>,
  sp: SelfPlayOptions,
  evalFraction: number,
): SelfPlayFactory {
  const g = isaGraph();
  const maxHops = sp.hops[1];
  const seeds = seedWords(g, maxHops);
  const longest = Math.max(...g.names.map((n) => n.length));
  return {
    name: base.name,
    selfPlay: sp,
    evalFraction,
    seeds,
    trainSeeds: seedWords(g, maxHops, evalFraction),
    limits: {
      maxTurns: Math.max(base.limits.maxTurns, maxHops + 2),
      // "kind3(" + word + ")=?" and the terminator
      maxActionTokens: Math.max(base.limits.maxActionTokens, longest + 10),
    },
    tools: base.tools,
    sampleTask(rng: Rng, split) {
      if (split === "train" && sp.pretrainShare > 0 && rng.float() < sp.pretrainShare) {
        const task = drawProposerTask(rng, sp.hops, seeds, g);
        return { id: proposerTaskId(task), task };
      }
      return base.sampleTask(rng, split);
    },
    make: () => new SelfPlayEnv(base.make(), new ProposerEnv({ maxHops, evalFraction })),
    expert(noise) {
      const solve = (base.expert as NonNullable<typeof base.expert>)(noise);
      const propose = proposerExpert(noise, maxHops);
      return (env, rng) => {
        const e = env as SelfPlayEnv;
        return e.inner === e.proposer ? propose(e.proposer, rng) : solve(e.inner as WordnetEnv, rng);
      };
    },
  };
}
