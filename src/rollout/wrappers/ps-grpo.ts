/**
 * PS-GRPO, Paraphrased-Set GRPO (B.34): a group is a paraphrase set. Each prompt allocated n completions is
 * sampled as m paraphrases of the same query (the prompt itself and m − 1 paraphrases, n split as evenly as
 * possible, the first ones getting the remainder), and the n rows form ONE group, so the advantage is
 * normalised over the whole set. The reward of rollout i of paraphrase k is its mean similarity to the
 * rollouts of the OTHER paraphrases of the set, optionally plus the success reward:
 * ```
 * r_i = (1/|O_i|) Σ_{j ∈ O_i} sim(a_i, a_j) + correctnessWeight · r_i^success,   O_i = rows of paraphrases ≠ k
 * ```
 * where a_i is the answer the task's verifier extracts from completion i. This is the one wrapper that
 * rewrites a reward: r_i replaces the success reward's row (`algo.rollout.success.reward`) of the batch;
 * the other reward functions (format, …) are kept and combined as configured, and the step's
 * `reward/<name>/*` metrics and pass-rate history (VAS, GDRO) see r_i in that row.
 *
 * Design choices (the similarity metric is unspecified): `similarity: "exact"` is 1 when both answers were
 * extracted and agree after trimming, collapsing spaces and lower-casing, else 0; `"token-f1"` is the
 * SQuAD-style F1 of the answers' whitespace tokens. A completion without an extracted answer has similarity 0
 * to everything; a set with a single paraphrase (n < 2 or no paraphrase) gives similarity 0. `maxCompare` is
 * the scalable approximation: each rollout is compared with at most that many rollouts of the other
 * paraphrases, drawn without replacement by a generator seeded with (step, group).
 *
 * Paraphrases come from the problem's `paraphrases` field (JSONL datasets: an array of prompts with the same
 * answer) or, without one, from the task (`ParaphrasingTask`, e.g. arithmetic).
 *
 * Metrics: `ps_grpo/similarity_mean`, `ps_grpo/success_rate` (the original success reward),
 * `ps_grpo/set_size_mean` (paraphrases per set), `ps_grpo/consistent_sets` (share of sets whose rollouts all
 * extracted one same answer), `rollout/sampled`.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../../errors.js";
import { Rng } from "../../task/rng.js";
import type { Problem, Task } from "../../task/types.js";
import { parseComponentOptions } from "../config.js";
import {
  assemble,
  groupRows,
  mean,
  type RolloutWrapper,
  type RowPart,
  rolloutWrappers,
  type WrapperHost,
} from "./registry.js";

const psOptions = z.strictObject({
  /** m: paraphrases per set, the original prompt included. */
  setSize: z.number().int().min(2).default(2),
  /** How two extracted answers are compared. */
  similarity: z.enum(["exact", "token-f1"]).default("exact"),
  /** Weight of the success reward added to the similarity (0: consistency only, as in Con-RAG). */
  correctnessWeight: z.number().min(0).default(0),
  /** Compare each rollout with at most this many rollouts of the other paraphrases (default: all). */
  maxCompare: z.number().int().positive().optional(),
});
export type PsGrpoOptions = z.output<typeof psOptions>;

/** A task that writes other wordings of a problem's prompt, with the same answer. */
export interface ParaphrasingTask extends Task {
  paraphrases(problem: Problem): string[];
}

/** Paraphrases of `p`: its `paraphrases` field, else the task's; fails when there is neither. */
export function paraphrasesOf(task: Task, p: Problem, path = "algo.rollout.wrapper"): string[] {
  const field = p.meta.paraphrases;
  if (field !== undefined) {
    if (!Array.isArray(field) || !field.every((s) => typeof s === "string" && s.length > 0)) {
      throw new ConfigError(
        `problem ${p.id}: the "paraphrases" field must be an array of non-empty prompt strings, got ` +
          `${JSON.stringify(field).slice(0, 60)}`,
        path,
      );
    }
    return field as string[];
  }
  const fn = (task as Partial<ParaphrasingTask>).paraphrases;
  if (typeof fn === "function") return fn.call(task, p);
  throw new ConfigError(
    `problem ${p.id} has no paraphrases, and PS-GRPO samples each query as a set of paraphrases; give each ` +
      `JSONL line a "paraphrases" field (an array of prompts with the same answer), or use a task that writes ` +
      `them (arithmetic)`,
    path,
  );
}

function normalise(a: string): string {
  return a.trim().replace(/\s+/g, " ").toLowerCase();
}

/** Similarity of two extracted answers (undefined = none extracted: 0). */
export function answerSimilarity(
  a: string | undefined,
  b: string | undefined,
  kind: PsGrpoOptions["similarity"],
): number {
  if (a === undefined || b === undefined) return 0;
  if (kind === "exact") return normalise(a) === normalise(b) ? 1 : 0;
  const ta = normalise(a).split(" ").filter(Boolean);
  const tb = normalise(b).split(" ").filter(Boolean);
  if (ta.length === 0 || tb.length === 0) return ta.length === tb.length ? 1 : 0;
  const counts = new Map<string, number>();
  for (const t of tb) counts.set(t, (counts.get(t) ?? 0) + 1);
  let common = 0;
  for (const t of ta) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      common++;
      counts.set(t, c - 1);
    }
  }
  if (common === 0) return 0;
  const precision = common / ta.length;
  const recall = common / tb.length;
  return (2 * precision * recall) / (precision + recall);
}

// arXiv 2510.04392 [ABSTRACT]
export class PsGrpoWrapper implements RolloutWrapper {
  readonly opts: PsGrpoOptions;
  readonly #path: string;
  constructor(options: Record<string, unknown>, path: string) {
    this.opts = parseComponentOptions(psOptions, options, path);
    this.#path = path;
  }

  /** The prompts of `p`'s set: the prompt, then distinct paraphrases, at most `setSize`. */
  promptSet(task: Task, p: Problem): string[] {
    const out = [p.prompt];
    for (const q of paraphrasesOf(task, p, this.#path)) {
      if (out.length >= this.opts.setSize) break;
      if (!out.includes(q)) out.push(q);
    }
    return out;
  }

  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    // one sampling entry per (problem, paraphrase) with at least one rollout
    const ps: Problem[] = [];
    const texts: string[] = [];
    const per: number[] = [];
    const entriesOf: number[] = []; // entries of each set (problems with n > 0, in order)
    const setSizes: number[] = [];
    problems.forEach((p, b) => {
      const n = counts[b] as number;
      if (n <= 0) return;
      const prompts = this.promptSet(host.task, p);
      const m = Math.min(prompts.length, n);
      setSizes.push(m);
      entriesOf.push(m);
      for (let k = 0; k < m; k++) {
        ps.push(p);
        texts.push(prompts[k] as string);
        per.push(Math.floor(n / m) + (k < n % m ? 1 : 0));
      }
    });
    const sampled = await host.sample(ps, per, texts);
    const entryRows = groupRows(sampled); // one per entry, in order
    const sets: RowPart<C>[][] = [];
    const paraOf: number[] = []; // paraphrase index of each row of the assembled batch
    let e = 0;
    for (const m of entriesOf) {
      const parts: RowPart<C>[] = [];
      for (let k = 0; k < m; k++) {
        const rows = entryRows[e++] as number[];
        parts.push({ batch: sampled, rows });
        for (const _ of rows) paraOf.push(k);
      }
      sets.push(parts);
    }
    const batch = assemble(sets);
    const N = batch.completions.length;
    const answers = batch.problems.map((p, i) => host.task.verify(p, batch.texts[i] as string).parsed);
    const success = Array.from({ length: N }, (_, i) => (host.success(batch, i) ? 1 : 0));
    const sim = new Float64Array(N);
    let consistent = 0;
    groupRows(batch).forEach((rows, g) => {
      const first = answers[rows[0] as number];
      if (
        first !== undefined &&
        rows.every((i) => answers[i] !== undefined && normalise(answers[i]) === normalise(first))
      )
        consistent++;
      const rng = Rng.fromSeed(BigInt(host.step) * 1_000_003n + BigInt(g));
      for (const i of rows) {
        let others = rows.filter((j) => paraOf[j] !== paraOf[i]);
        const k = this.opts.maxCompare;
        if (k !== undefined && others.length > k) {
          for (let x = 0; x < k; x++) {
            const y = rng.int(x, others.length - 1);
            [others[x], others[y]] = [others[y] as number, others[x] as number];
          }
          others = others.slice(0, k);
        }
        sim[i] = mean(others.map((j) => answerSimilarity(answers[i], answers[j], this.opts.similarity)));
      }
    });
    const w = this.opts.correctnessWeight;
    const own = batch.byFn[host.successIndex] as Float64Array;
    batch.byFn[host.successIndex] = Float64Array.from(sim, (s, i) => (w > 0 ? s + w * (own[i] as number) : s));
    return {
      batch,
      metrics: {
        "ps_grpo/similarity_mean": mean(Array.from(sim)),
        "ps_grpo/success_rate": mean(success),
        "ps_grpo/set_size_mean": mean(setSizes),
        "ps_grpo/consistent_sets": sets.length > 0 ? consistent / sets.length : 0,
        "rollout/sampled": N,
      },
    };
  }
}

rolloutWrappers.register("ps_grpo", (options, path) => new PsGrpoWrapper(options, path));
