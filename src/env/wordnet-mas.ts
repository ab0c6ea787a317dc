/**
 * MasHost's setting on the WordNet questions of wordnet.ts (arXiv 2506.08507, ALGORITHMS.md §G.5): the policy
 * does not answer the question itself, it builds a multi-agent system for it, one node per action — MasHost's
 * autoregressive graph construction. Each action picks a role from a small library and the earlier node whose
 * output the new node reads (its incoming edge); the roles are deterministic programs, so a tiny model can
 * host them, and the system's final answer is scored.
 *
 * ```
 * first observation   "kind2(cst)=?"          the kind of the kind of "cst" (node 0 = the query word as shown)
 * action              "search(0)"             node 1: BM25 (fuzzy) lookup of node 0's word → the best entity
 * observation         "#1=cat"
 * action              "hop(1)"                node 2: the hypernym of node 1's word ("none" if it has none)
 * observation         "#2=feline"
 * action              "hop(2)"
 * observation         "#3=carnivore"
 * action              "answer(3)"             the exit node: the system answers node 3's word; the episode ends
 * ```
 *
 * The role library (`info.agent`: 1 for a node-adding decision, 0 for the exit decision and unparsable text — the
 * two kinds of decision of MasHost's construction, for mashost_hrpo's `actionStats: agent` and Dr. MAS / M-GRPO;
 * `info.tool` names the role):
 *
 * | role        | agent | reads node k's word w and outputs                                                     |
 * |-------------|-------|----------------------------------------------------------------------------------------|
 * | `answer(k)` | 0     | nothing: ends the episode, the system's answer is w                                    |
 * | `search(k)` | 1     | the name of the top BM25 document for w (minisearch, fuzzy: one edit), or "none"      |
 * | `hop(k)`    | 1     | the parent of w in the "is a kind of" graph, or "none" (w is not an entity, or a root) |
 *
 * With probability `misspell` the question shows the word with one letter changed (drawn so that `search`
 * resolves it back to the word); `hop` on a misspelt word gives "none", so such a system needs a search node
 * first, and on a clean word a search node is redundant (it outputs its input).
 *
 * Rewards (design choice; the paper's definition of component rationality is not public beyond the abstract):
 *
 * | step                    | action-wise reward r_k                                                               |
 * |-------------------------|---------------------------------------------------------------------------------------|
 * | `answer(k)`             | the global outcome: 1 if w is the answer, else 0                                     |
 * | `search(k)`, `hop(k)`   | component rationality: +w if the node is *effective* (its output is not "none" and equals no earlier node's output: it changed the state, not redundant) and *used* (it is an ancestor of the answer node through the read edges: its output reached the answer); −w otherwise |
 * | unparsable / bad node   | −w (no node is added; the observation says what is allowed)                          |
 *
 * w = `rationality` (default 0.1). Whether a node is used is known only when the episode ends, so the env
 * returns the provisional "effective ? +w : −w" from `step` and the final rewards from `hindsightRewards()`,
 * which the roller reads when the episode ends (an unanswered system: no node is used). The episode return is
 * outcome + Σ_k r_k; `mashost_hrpo` reads r_k per step (rows: step) and the return as the system's reward.
 * @module
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { envEvalFraction, intRange, parseOptions } from "../task/options.js";
import type { Rng } from "../task/rng.js";
import { drawInSplit } from "../task/split.js";
import type { EnvFactory, Environment, EnvSpec, ScriptedPolicy, StepResult } from "./types.js";
import { chainOf, type IsaGraph, isaGraph, isaIndex } from "./wordnet.js";

export const wordnetMasOptions = z
  .strictObject({
    hops: intRange(1, 3)
      .default([1, 2])
      .meta({ description: "Hops of a question (kind of the kind of …), [min, max] or one integer." }),
    misspell: z
      .number()
      .min(0)
      .max(1)
      .default(0.3)
      .meta({ description: "Probability that the question shows its word with one letter changed (search fixes it)." }),
    rationality: z
      .number()
      .min(0)
      .default(0.1)
      .meta({ description: "Weight w of the component-rationality reward of each role node (+w rational, −w not)." }),
    evalFraction: envEvalFraction("questions"),
  })
  .meta({
    description:
      "MasHost-style system construction for WordNet questions: each action adds a role node (search, hop, answer) and its input node.",
  });

export type WordnetMasOptions = z.input<typeof wordnetMasOptions>;
type Parsed = z.output<typeof wordnetMasOptions>;

export const MAS_ROLES = ["answer", "search", "hop"] as const;
export type MasRole = (typeof MAS_ROLES)[number];

export interface WordnetMasTask {
  word: string;
  hops: number;
  /** The chain word → parent → … (hops + 1 names); the answer is the last. */
  chain: string[];
  /** The word as the question shows it (the word itself, or a misspelling that `search` resolves to it). */
  shown: string;
}

/** A node of the system: node 0 is the query (role "query", input −1). */
export interface MasNode {
  role: MasRole | "query";
  /** The node whose output this node reads (−1 for the query). */
  input: number;
  output: string;
}

/** One action of the episode: the node it added (−1: malformed, no node) and its role. */
export interface MasAction {
  node: number;
  role: MasRole | null;
}

/** The parsed action, or the reason it is not one. */
export type ParsedMasAction = { ok: true; role: MasRole; input: number } | { ok: false; error: string };

const ACTION = /^(answer|search|hop)\((\d{1,3})\)$/;

/** Parses "role(k)" against a system of `nodes` nodes (never throws). */
export function parseMasAction(text: string, nodes: number): ParsedMasAction {
  const m = ACTION.exec(text.trim());
  if (m === null) return { ok: false, error: `expected role(k), role ${MAS_ROLES.join("|")}` };
  const k = Number(m[2]);
  if (k >= nodes) return { ok: false, error: `no node ${k} (nodes 0-${nodes - 1})` };
  return { ok: true, role: m[1] as MasRole, input: k };
}

// arXiv 2506.08507 [ABSTRACT] (component rationality: design choice, module table)
/**
 * The component-rationality rewards of a finished (or cut-off) system, one per action (module table):
 * answer → outcome, role node → +w if effective and used else −w, malformed → −w.
 */
export function rationalityRewards(
  nodes: readonly MasNode[],
  actions: readonly MasAction[],
  answer: { node: number; correct: boolean } | null,
  w: number,
): number[] {
  // ancestors of the answer node's input, through the read edges
  const used = new Set<number>();
  for (let k = answer?.node ?? -1; k > 0; k = (nodes[k] as MasNode).input) used.add(k);
  return actions.map((a) => {
    if (a.role === "answer") return answer?.correct ? 1 : 0;
    if (a.node < 0) return -w;
    return effective(nodes, a.node) && used.has(a.node) ? w : -w;
  });
}

/** The node changed the state: its output is not "none" and equals no earlier node's output. */
export function effective(nodes: readonly MasNode[], j: number): boolean {
  const out = (nodes[j] as MasNode).output;
  if (out === "none") return false;
  for (let i = 0; i < j; i++) if ((nodes[i] as MasNode).output === out) return false;
  return true;
}

/** The deterministic role programs over the graph and its BM25 index. */
export class MasRoles {
  readonly #index: ReturnType<typeof isaIndex>;
  constructor(readonly graph: IsaGraph) {
    this.#index = isaIndex(graph);
  }
  /** The best entity for a word (BM25 over "<name> isa <parent>", one edit of fuzziness), or "none". */
  search(word: string): string {
    if (word === "none" || !/^[a-z]{1,40}$/.test(word)) return "none";
    const hit = this.#index.search(word, { fuzzy: 1, prefix: false, boost: { name: 3 } })[0];
    return hit === undefined ? "none" : (hit.name as string);
  }
  hop(word: string): string {
    return this.graph.parent.get(word) ?? "none";
  }
}

// arXiv 2506.08507 [ABSTRACT] (the role library and the one-edge-per-node graph: design choice)
/** One episode: the system under construction. */
export class WordnetMasEnv implements Environment<WordnetMasTask> {
  #task: WordnetMasTask | null = null;
  #nodes: MasNode[] = [];
  #actions: MasAction[] = [];
  #answer: { node: number; correct: boolean } | null = null;

  constructor(
    readonly roles: MasRoles,
    readonly opts: Parsed,
  ) {}

  get task(): WordnetMasTask {
    if (this.#task === null) throw new CohortError("wordnet_mas: step() before reset(); reset the environment first");
    return this.#task;
  }
  get nodes(): readonly MasNode[] {
    return this.#nodes;
  }
  get actions(): readonly MasAction[] {
    return this.#actions;
  }

  reset(_seed: number, task: WordnetMasTask): string {
    if (task.chain?.length !== task.hops + 1 || task.chain[0] !== task.word || typeof task.shown !== "string")
      throw new CohortError(
        `wordnet_mas: invalid task ${JSON.stringify(task)}; expected {word, hops, chain of hops + 1, shown}`,
      );
    this.#task = task;
    this.#nodes = [{ role: "query", input: -1, output: task.shown }];
    this.#actions = [];
    this.#answer = null;
    return `kind${task.hops}(${task.shown})=?`;
  }

  step(action: string): StepResult {
    const t = this.task;
    if (this.#answer !== null) throw new CohortError("wordnet_mas: step() after the answer; reset the environment");
    const w = this.opts.rationality;
    const p = parseMasAction(action, this.#nodes.length);
    if (!p.ok) {
      this.#actions.push({ node: -1, role: null });
      return {
        observation: `error: ${p.error}`,
        reward: -w,
        done: false,
        info: { hops: t.hops, agent: 0, valid: false },
      };
    }
    const input = (this.#nodes[p.input] as MasNode).output;
    if (p.role === "answer") {
      const correct = input === t.chain[t.hops];
      this.#answer = { node: p.input, correct };
      this.#actions.push({ node: -1, role: "answer" });
      return {
        observation: "",
        reward: correct ? 1 : 0,
        done: true,
        info: { hops: t.hops, agent: 0, valid: true, success: correct, nodes: this.#nodes.length },
      };
    }
    const output = p.role === "search" ? this.roles.search(input) : this.roles.hop(input);
    const j = this.#nodes.length;
    this.#nodes.push({ role: p.role, input: p.input, output });
    this.#actions.push({ node: j, role: p.role });
    const eff = effective(this.#nodes, j);
    return {
      observation: `#${j}=${output}`,
      reward: eff ? w : -w,
      done: false,
      info: { hops: t.hops, agent: 1, valid: true, executed: eff, tool: p.role },
    };
  }

  /** The final rewards of every action (module table): the used/unused part is known only now. */
  hindsightRewards(): number[] {
    return rationalityRewards(this.#nodes, this.#actions, this.#answer, this.opts.rationality);
  }
}

/**
 * A scripted system builder, for SFT data: a search node first when the word is misspelt, then hops from the
 * deepest node on the chain, then the answer. With probability `noise` per step it adds a random role reading a
 * random node instead (a redundant node, a wrong hop or an early answer); it recovers from the deepest chain node.
 */
export function wordnetMasExpert(noise: number): ScriptedPolicy<WordnetMasTask> {
  return (env, rng) => {
    const e = env as WordnetMasEnv;
    const t = e.task;
    const nodes = e.nodes;
    if (rng.float() < noise) return `${rng.pick(MAS_ROLES)}(${rng.int(0, nodes.length - 1)})`;
    let best = -1;
    let depth = -1;
    nodes.forEach((n, k) => {
      const d = t.chain.indexOf(n.output);
      if (d >= depth && d >= 0) {
        best = k;
        depth = d;
      }
    });
    if (best < 0) return "search(0)";
    return depth === t.hops ? `answer(${best})` : `hop(${best})`;
  };
}

const LETTERS = "abcdefghijklmnopqrstuvwxyz";

/** A one-letter substitution of `word` that `search` resolves back to it and that is no entity, or null. */
export function misspelling(roles: MasRoles, word: string, rng: Rng): string | null {
  for (let tries = 0; tries < 12; tries++) {
    const i = rng.int(0, word.length - 1);
    const c = LETTERS[rng.int(0, 25)] as string;
    if (c === word[i]) continue;
    const shown = word.slice(0, i) + c + word.slice(i + 1);
    if (roles.graph.parent.has(shown) || roles.search(shown) !== word) continue;
    return shown;
  }
  return null;
}

export function wordnetMasFactory(options: WordnetMasOptions = {}, path = "env.options"): EnvFactory<WordnetMasTask> {
  const o = parseOptions(wordnetMasOptions, options, path) as Parsed;
  const g = isaGraph();
  const roles = new MasRoles(g);
  const byHops = new Map<number, string[]>();
  for (let h = o.hops[0]; h <= o.hops[1]; h++)
    byHops.set(
      h,
      g.names.filter((w) => chainOf(g, w, h) !== null),
    );
  return {
    name: "wordnet_mas",
    // the longest expert system: search, hops, answer; plus two spare nodes
    limits: { maxTurns: o.hops[1] + 4, maxActionTokens: 12 },
    tools: [],
    sampleTask(rng: Rng, split) {
      const task = drawInSplit("wordnet_mas", split, o.evalFraction, () => {
        const hops = rng.int(o.hops[0], o.hops[1]);
        const word = rng.pick(byHops.get(hops) as string[]);
        return { canonical: `${hops}:${word}`, value: { word, hops, chain: chainOf(g, word, hops) as string[] } };
      });
      const shown = rng.float() < o.misspell ? (misspelling(roles, task.word, rng) ?? task.word) : task.word;
      const h = createHash("sha256").update(`${task.hops}:${task.word}:${shown}`).digest("hex").slice(0, 12);
      return { id: `wordnet_mas-${h}`, task: { ...task, shown } };
    },
    make: () => new WordnetMasEnv(roles, o),
    expert: (noise) => wordnetMasExpert(noise),
  };
}

export const wordnetMasSpec: EnvSpec<WordnetMasOptions> = {
  name: "wordnet_mas",
  description:
    "MasHost-style: build a multi-agent system for a WordNet question node by node — role(k) adds search, hop or answer reading node k; component-rationality step rewards.",
  options: wordnetMasOptions,
  create: (o, path) => wordnetMasFactory(o, path),
};
