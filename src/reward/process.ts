/**
 * Process rewards of three agent papers, as plain functions for your own reward modules (and, where they need
 * nothing but the completion, as built-in rewards):
 *
 * | function                | paper (ALGORITHMS.md)            | value                                                           |
 * |-------------------------|----------------------------------|-----------------------------------------------------------------|
 * | `progressiveRetrieval`  | GraphRAG-R1 PRA (§G.7, 2507.23581) | R_PRA(n) = Σ_{k=1}^{n} α^{k−1}, optionally capped (design choice) |
 * | `costAwareF1`           | GraphRAG-R1 CAF (§G.7)            | F1 · exp(−λ·n_retrieve − μ·n_tokens) (design choice)             |
 * | `distinctN`             | MultiRole-R1 lexical (§G.8, 2507.20187) | unique n-grams / n-grams of the whitespace tokens        |
 * | `perspectiveDiversity`  | MultiRole-R1 perspective (§G.8)   | min(#distinct role tags, K)/K (design choice: tags `<role>name</role>`) |
 * | `multiRoleReward`       | MultiRole-R1 (§G.8)               | R_acc + w_p·R_persp + w_l·distinct-2 (design choice: w = 0.5, 0.5) |
 * | `drZero*`               | Dr. Zero proposer (§G.6, 2601.07055) | diff, tool, format and R = 0.5·fmt + diff (the authors' code)  |
 * @module
 */
import { CohortError } from "../errors.js";

function check(cond: boolean, msg: string): void {
  if (!cond) throw new CohortError(msg);
}

// ---- GraphRAG-R1 --------------------------------------------------------------------------------------

/** Progressive Retrieval Attenuation: the k-th retrieval adds α^{k−1}; `cap` bounds the total. */
// arXiv 2507.23581 [ABSTRACT] (formula: design choice)
export function progressiveRetrieval(calls: number, opts: { alpha?: number; cap?: number } = {}): number {
  const alpha = opts.alpha ?? 0.5;
  check(Number.isInteger(calls) && calls >= 0, `progressiveRetrieval: calls must be an integer ≥ 0, got ${calls}`);
  check(alpha > 0 && alpha < 1, `progressiveRetrieval: alpha must be in (0, 1), got ${alpha}`);
  const r = (1 - alpha ** calls) / (1 - alpha);
  return opts.cap === undefined ? r : Math.min(r, opts.cap);
}

/** Cost-Aware F1: the answer's F1 discounted by the retrievals and the tokens it took. */
// arXiv 2507.23581 [ABSTRACT] (formula: design choice)
export function costAwareF1(
  f1: number,
  retrievals: number,
  tokens: number,
  opts: { lambda?: number; mu?: number } = {},
): number {
  check(f1 >= 0 && f1 <= 1, `costAwareF1: f1 must be in [0, 1], got ${f1}`);
  check(retrievals >= 0 && tokens >= 0, "costAwareF1: retrievals and tokens must be ≥ 0");
  return f1 * Math.exp(-(opts.lambda ?? 0.1) * retrievals - (opts.mu ?? 1e-4) * tokens);
}

/** Token-level F1 of a predicted answer against a gold one (lower-cased whitespace tokens, multiset overlap). */
export function tokenF1(pred: string, gold: string): number {
  const p = pred.toLowerCase().split(/\s+/).filter(Boolean);
  const g = gold.toLowerCase().split(/\s+/).filter(Boolean);
  if (p.length === 0 || g.length === 0) return p.length === g.length ? 1 : 0;
  const left = new Map<string, number>();
  for (const t of g) left.set(t, (left.get(t) ?? 0) + 1);
  let hit = 0;
  for (const t of p) {
    const c = left.get(t) ?? 0;
    if (c > 0) {
      hit++;
      left.set(t, c - 1);
    }
  }
  if (hit === 0) return 0;
  const prec = hit / p.length;
  const rec = hit / g.length;
  return (2 * prec * rec) / (prec + rec);
}

// ---- MultiRole-R1 -------------------------------------------------------------------------------------

/** distinct-n: unique n-grams over all n-grams of the whitespace tokens (0 when the text has none). */
// arXiv 2507.20187 [ABSTRACT]
export function distinctN(text: string, n: number): number {
  check(Number.isInteger(n) && n >= 1, `distinctN: n must be an integer ≥ 1, got ${n}`);
  const toks = text.split(/\s+/).filter(Boolean);
  const total = toks.length - n + 1;
  if (total <= 0) return 0;
  const seen = new Set<string>();
  for (let i = 0; i < total; i++) seen.add(toks.slice(i, i + n).join("\u0000"));
  return seen.size / total;
}

/** The role tags of a reasoning chain: `<role>name</role>` (case-insensitive, trimmed), in order. */
export function roleTags(text: string): string[] {
  return [...text.matchAll(/<role>\s*([^<]+?)\s*<\/role>/gi)].map((m) => (m[1] as string).toLowerCase());
}

/** Perspective diversity: min(#distinct roles, K)/K. */
// arXiv 2507.20187 [ABSTRACT] (formula: design choice)
export function perspectiveDiversity(roles: readonly string[], k = 3): number {
  check(Number.isInteger(k) && k >= 1, `perspectiveDiversity: K must be an integer ≥ 1, got ${k}`);
  return Math.min(new Set(roles).size, k) / k;
}

/** MultiRole-R1's reward: the verifiable one plus weighted perspective and lexical (distinct-2) diversity. */
// arXiv 2507.20187 [ABSTRACT] (weights: design choice)
export function multiRoleReward(
  accuracy: number,
  completion: string,
  opts: { k?: number; perspectiveWeight?: number; lexicalWeight?: number } = {},
): number {
  return (
    accuracy +
    (opts.perspectiveWeight ?? 0.5) * perspectiveDiversity(roleTags(completion), opts.k ?? 3) +
    (opts.lexicalWeight ?? 0.5) * distinctN(completion, 2)
  );
}

// ---- Dr. Zero proposer ------------------------------------------------------------------------------------

/** Difficulty from the solver's n attempts: 0 when all or none are right, else (n − k)/(n − 1). */
// arXiv 2601.07055 [CODE]
export function drZeroDifficulty(hits: readonly boolean[]): number {
  const n = hits.length;
  check(n >= 2, `drZeroDifficulty: needs at least 2 solver attempts, got ${n}`);
  const k = hits.filter(Boolean).length;
  return k === 0 || k === n ? 0 : (n - k) / (n - 1);
}

/** The tool term: 1 for a 1-hop question; with valid search calls answered one for one, min((1 + calls)/hop, 1). */
// arXiv 2601.07055 [CODE]
export function drZeroTool(hop: number, calls: number, responses: number): number {
  check(Number.isInteger(hop) && hop >= 1, `drZeroTool: hop must be an integer ≥ 1, got ${hop}`);
  let tool = hop === 1 ? 1 : 0;
  if (calls === responses && calls > 0) tool = Math.min((1 + calls) / hop, 1);
  return tool;
}

/** The answer term: a grounded answer of ≤ 5 words 1, ≤ 10 words 0.5, else 0 (yes/no always grounded). */
// arXiv 2601.07055 [CODE]
export function drZeroAnswer(answer: string, context: string): number {
  const a = answer.trim().toLowerCase();
  if (a === "") return 0;
  const grounded = a === "yes" || a === "no" || context.toLowerCase().includes(a);
  if (!grounded) return 0;
  const words = a.split(/\s+/).length;
  return words <= 5 ? 1 : words <= 10 ? 0.5 : 0;
}

/** The proposer's reward R = 0.5·fmt + diff, fmt = integrity ? (1 + think + tool + ans)/4 : 0. */
// arXiv 2601.07055 [CODE]
export function drZeroProposerReward(p: {
  integrity: boolean;
  think: number;
  tool: number;
  answer: number;
  difficulty: number;
}): { format: number; reward: number } {
  const format = p.integrity ? (1 + p.think + p.tool + p.answer) / 4 : 0;
  return { format, reward: 0.5 * format + (format > 0 ? p.difficulty : 0) };
}
