/**
 * A multi-hop search environment over a real knowledge source: WordNet's "is a kind of" relation among
 * animals, foods and plants (data/wordnet/isa.tsv, made from Debian's `wordnet-base` by
 * scripts/data/wordnet.ts), retrieved with BM25 through the `minisearch` full-text library. It is the
 * Search-R1-style setting of LLDS and the process-constrained one of GraphRAG-R1 (PRA, CAF rewards).
 *
 * ```
 * first observation   "kind2(cat)=?"          the kind of the kind of a cat (2 hops)
 * action              "search(cat)"           BM25 over the documents "<name> isa <parent>"
 * observation         "cat isa feline"        the top `topK` documents, ";"-separated (masked out of the loss)
 * action              "search(feline)"
 * observation         "feline isa carnivore"
 * action              "carnivore"             any action that is not a tool call is the final answer
 * ```
 *
 * | reward.kind | final reward (tool steps earn 0)                                                          |
 * |-------------|-------------------------------------------------------------------------------------------|
 * | `em`        | 1 for the right answer, else 0                                                            |
 * | `pra`       | em + w·R_PRA(n): R_PRA(n) = Σ_{k=1}^{n} α^{k−1} over the n search calls (capped at `cap`) — GraphRAG-R1's Progressive Retrieval Attenuation, design choice (process.ts) |
 * | `caf`       | F1 · exp(−λ·n − μ·c): c = characters of all actions (the token count of a character model) — GraphRAG-R1's Cost-Aware F1, design choice (process.ts) |
 *
 * `info.hops` carries the question's hop count, `info.retrievals` the search calls so far.
 * @module
 */
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import MiniSearch from "minisearch";
import { z } from "zod";
import { CohortError } from "../errors.js";
import { costAwareF1, progressiveRetrieval, tokenF1 } from "../reward/process.js";
import { envEvalFraction, intRange, parseOptions } from "../task/options.js";
import type { Rng } from "../task/rng.js";
import { drawInSplit } from "../task/split.js";
import { selfPlayOptions } from "./selfplay-options.js";
import { defineTool, parseToolCall } from "./tools.js";
import type { EnvFactory, Environment, EnvSpec, ScriptedPolicy, StepResult, Tool } from "./types.js";
import { selfPlayFactory } from "./wordnet-selfplay.js";

export const wordnetOptions = z
  .strictObject({
    hops: intRange(1, 3)
      .default([1, 2])
      .meta({ description: "Hops of a question (kind of the kind of …), [min, max] or one integer." }),
    topK: z.number().int().min(1).max(5).default(1).meta({ description: "Documents a search returns." }),
    reward: z
      .strictObject({
        kind: z.enum(["em", "pra", "caf"]).default("em"),
        /** PRA: attenuation α of successive retrievals, weight w, optional cap of R_PRA. */
        alpha: z.number().gt(0).lt(1).default(0.5),
        weight: z.number().min(0).default(0.5),
        cap: z.number().positive().optional(),
        /** CAF: cost per retrieval λ and per action character μ. */
        lambda: z.number().min(0).default(0.1),
        mu: z.number().min(0).default(1e-4),
      })
      .default({ kind: "em", alpha: 0.5, weight: 0.5, lambda: 0.1, mu: 1e-4 })
      .meta({ description: "Final reward: em, pra (em + weight·PRA) or caf (F1 discounted by cost)." }),
    evalFraction: envEvalFraction("questions"),
    selfPlay: selfPlayOptions.optional(),
  })
  .meta({ description: "Multi-hop 'is a kind of' questions over WordNet, answered with a BM25 search tool." });

export type WordnetOptions = z.input<typeof wordnetOptions>;
type Parsed = z.output<typeof wordnetOptions>;

export interface WordnetTask {
  word: string;
  hops: number;
  /** The chain word → parent → … (hops + 1 names); the answer is the last. */
  chain: string[];
}

/** The knowledge graph: name → parent name. */
export interface IsaGraph {
  parent: Map<string, string>;
  names: string[];
}

let graphCache: IsaGraph | null = null;

/** data/wordnet/isa.tsv, read once. */
export function isaGraph(): IsaGraph {
  if (graphCache !== null) return graphCache;
  const url = new URL("../../data/wordnet/isa.tsv", import.meta.url);
  let text: string;
  try {
    text = readFileSync(url, "utf8");
  } catch (e) {
    throw new CohortError(
      `wordnet: cannot read ${url.pathname} (${(e as Error).message}); it ships with the package (made by scripts/data/wordnet.ts)`,
    );
  }
  const parent = new Map<string, string>();
  for (const line of text.split("\n")) {
    const [name, p] = line.split("\t");
    if (name && p) parent.set(name, p);
  }
  graphCache = { parent, names: [...parent.keys()] };
  return graphCache;
}

/** The chain of `hops` parents above `word`, or null when the graph ends first. */
export function chainOf(g: IsaGraph, word: string, hops: number): string[] | null {
  const chain = [word];
  for (let h = 0; h < hops; h++) {
    const p = g.parent.get(chain[h] as string);
    if (p === undefined) return null;
    chain.push(p);
  }
  return chain;
}

/** A BM25 index of the documents "<name> isa <parent>" (the name field boosted, so a name finds its own document first). */
export function isaIndex(g: IsaGraph): MiniSearch<{ id: string; name: string; parent: string }> {
  const ms = new MiniSearch<{ id: string; name: string; parent: string }>({
    fields: ["name", "parent"],
    storeFields: ["name", "parent"],
    searchOptions: { boost: { name: 3 }, prefix: false, fuzzy: false },
  });
  ms.addAll(g.names.map((name) => ({ id: name, name, parent: g.parent.get(name) as string })));
  return ms;
}

/** The `search` tool over an index: the top `k` documents, ";"-separated, or "no results". */
export function searchTool(index: ReturnType<typeof isaIndex>, k: number): Tool<{ query: string }> {
  return defineTool({
    name: "search",
    description: "look up a word",
    args: z.strictObject({ query: z.string().min(1).max(40).meta({ description: "a word, e.g. cat" }) }),
    run({ query }) {
      const hits = index.search(query.toLowerCase()).slice(0, k);
      return hits.length === 0 ? "no results" : hits.map((h) => `${h.name} isa ${h.parent}`).join(";");
    },
  });
}

/** One episode of a question. */
export class WordnetEnv implements Environment<WordnetTask> {
  #task: WordnetTask | null = null;
  #calls = 0;
  #chars = 0;
  lastObservation = "";
  readonly #tool: Tool<{ query: string }>;
  readonly #opts: Parsed;

  constructor(tool: Tool<{ query: string }>, opts: Parsed) {
    this.#tool = tool;
    this.#opts = opts;
  }

  get task(): WordnetTask {
    if (this.#task === null) throw new CohortError("wordnet: step() before reset(); reset the environment first");
    return this.#task;
  }
  get retrievals(): number {
    return this.#calls;
  }

  reset(_seed: number, task: WordnetTask): string {
    if (task.chain?.length !== task.hops + 1 || task.chain[0] !== task.word)
      throw new CohortError(`wordnet: invalid task ${JSON.stringify(task)}; expected {word, hops, chain of hops + 1}`);
    this.#task = task;
    this.#calls = 0;
    this.#chars = 0;
    this.lastObservation = `kind${task.hops}(${task.word})=?`;
    return this.lastObservation;
  }

  step(action: string): StepResult {
    const t = this.task;
    const text = action.trim();
    this.#chars += text.length;
    const call = parseToolCall(text, [this.#tool as Tool]);
    const info = { hops: t.hops, agent: 0 };
    if (call !== null) {
      if (!call.ok) {
        this.lastObservation = `error: ${call.error}`;
        return { observation: this.lastObservation, reward: 0, done: false, info: { ...info, valid: false } };
      }
      this.#calls++;
      this.lastObservation = call.tool.run(call.args);
      return {
        observation: this.lastObservation,
        reward: 0,
        done: false,
        info: { ...info, valid: true, executed: true, tool: "search", retrievals: this.#calls },
      };
    }
    const answer = t.chain[t.hops] as string;
    const valid = /^[a-z]+$/.test(text);
    const em = text === answer ? 1 : 0;
    const r = this.#opts.reward;
    const reward =
      r.kind === "em"
        ? em
        : r.kind === "pra"
          ? em + r.weight * progressiveRetrieval(this.#calls, { alpha: r.alpha, ...(r.cap ? { cap: r.cap } : {}) })
          : costAwareF1(tokenF1(text, answer), this.#calls, this.#chars, { lambda: r.lambda, mu: r.mu });
    this.lastObservation = "";
    return {
      observation: "",
      reward,
      done: true,
      info: { ...info, valid, success: em === 1, retrievals: this.#calls },
    };
  }
}

/**
 * A scripted searcher, for SFT data: searches each node of the chain in turn and answers with the last
 * parent it read. With probability `noise` per step it answers at once with a random name instead.
 */
export function wordnetExpert(noise: number): ScriptedPolicy<WordnetTask> {
  return (env, rng) => {
    const e = env as WordnetEnv;
    const t = e.task;
    const g = isaGraph();
    if (rng.float() < noise) return rng.pick(g.names);
    const n = e.retrievals;
    if (n < t.hops) return `search(${t.chain[n]})`;
    // read the answer off the last document whose name is the node searched last
    const m = /(?:^|;)([a-z]+) isa ([a-z]+)/.exec(e.lastObservation);
    return m && m[1] === t.chain[t.hops - 1] ? (m[2] as string) : (t.chain[t.hops] as string);
  };
}

export function wordnetFactory(options: WordnetOptions = {}, path = "env.options"): EnvFactory<WordnetTask> {
  const o = parseOptions(wordnetOptions, options, path) as Parsed;
  const g = isaGraph();
  const tool = searchTool(isaIndex(g), o.topK);
  const byHops = new Map<number, string[]>();
  for (let h = o.hops[0]; h <= o.hops[1]; h++)
    byHops.set(
      h,
      g.names.filter((w) => chainOf(g, w, h) !== null),
    );
  return {
    name: "wordnet",
    limits: { maxTurns: o.hops[1] + 2, maxActionTokens: 20 },
    tools: [tool as Tool],
    sampleTask(rng: Rng, split) {
      const task = drawInSplit("wordnet", split, o.evalFraction, () => {
        const hops = rng.int(o.hops[0], o.hops[1]);
        const word = rng.pick(byHops.get(hops) as string[]);
        return { canonical: `${hops}:${word}`, value: { word, hops, chain: chainOf(g, word, hops) as string[] } };
      });
      const h = createHash("sha256").update(`${task.hops}:${task.word}`).digest("hex").slice(0, 12);
      return { id: `wordnet-${h}`, task };
    },
    make: () => new WordnetEnv(tool, o),
    expert: (noise) => wordnetExpert(noise),
  };
}

export const wordnetSpec: EnvSpec<WordnetOptions> = {
  name: "wordnet",
  description: "Multi-hop 'kind of' questions over WordNet; the model calls search(word) (BM25) and answers a word.",
  options: wordnetOptions,
  create(o, path) {
    const f = wordnetFactory(o, path);
    // Dr. Zero's proposer/solver loop (wordnet-selfplay.ts)
    const p = parseOptions(wordnetOptions, o, path) as Parsed;
    return p.selfPlay ? selfPlayFactory(f, p.selfPlay, p.evalFraction) : f;
  },
};
