/**
 * What a preference run measures beyond the task's verifier (runs with `preference:` in the config):
 *
 * | metric | when | what |
 * |---|---|---|
 * | `pref/style_digit`, `pref/style_letter`, `pref/style_other` | every step, `rps_style` | shares of the step's rollouts whose first non-space character is a digit / a letter / anything else |
 * | `eval_pref/win_rate_ref` | every eval | P(π_t ≻ π_ref): mean P(a ≻ b) over a = the current policy's samples, b = the step-0 policy's samples of the same prompt |
 * | `eval_pref/win_rate_prev` | every eval after the first | the same against the samples of the previous evaluation's policy |
 * | `eval_pref/style_*`, `eval_pref/style_kl_ref` | every eval, `rps_style` | the style shares of the eval samples and KL(style_t ‖ style_ref) |
 *
 * The eval samples: the first `PREF_EVAL_PROBLEMS` held-out problems, `PREF_EVAL_SAMPLES` completions each at
 * the training temperature (a design choice: a win rate of one greedy answer per prompt would hide the mix of
 * styles a policy plays). The step-0 policy is the reference (the model the run starts from; with LoRA the
 * adapters start at zero). Every evaluation's samples are appended to `preference_eval.jsonl` in the run
 * directory, so a resumed run reads the reference's and the previous iterate's samples back from it.
 *
 * KL(style_t ‖ style_ref) is a KL between the distributions of a function of the completion, so by the data
 * processing inequality it is a lower bound on the sequence-level KL(π_t ‖ π_ref); shares are smoothed by
 * adding ½ a count to each style (the KL stays finite when a style vanishes).
 * @module
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { LocalSampler, SamplingParams } from "../model/sampler.js";
import { answerStyle, type PreferenceFn, winRate } from "../reward/preference.js";
import type { Problem } from "../task/types.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { appendLines } from "./rundir.js";
import { encodePrompt, requestSeed } from "./sources.js";

/** Held-out problems sampled for the preference evaluation. */
export const PREF_EVAL_PROBLEMS = 32;
/** Completions per problem in the preference evaluation. */
export const PREF_EVAL_SAMPLES = 4;

export interface StyleShares {
  digit: number;
  letter: number;
  other: number;
}

/** Style shares (rps_style's rock = digit, paper = letter, scissors = other) of `texts`; zeros for none. */
export function styleShares(texts: readonly string[]): StyleShares {
  const c = { digit: 0, letter: 0, other: 0 };
  for (const t of texts) {
    const s = answerStyle(t);
    if (s === "rock") c.digit++;
    else if (s === "paper") c.letter++;
    else c.other++;
  }
  const n = Math.max(1, texts.length);
  return { digit: c.digit / n, letter: c.letter / n, other: c.other / n };
}

/** KL(p ‖ q) of the style distributions of two sets of texts, each count smoothed by +½. */
export function styleKl(p: readonly string[], q: readonly string[]): number {
  const sm = (texts: readonly string[]) => {
    const s = styleShares(texts);
    const n = texts.length;
    return [s.digit, s.letter, s.other].map((x) => (x * n + 0.5) / (n + 1.5));
  };
  const a = sm(p);
  const b = sm(q);
  return a.reduce((s, x, i) => s + x * Math.log(x / (b[i] as number)), 0);
}

/** `pref/style_*` of a step's rollouts (rps_style only). */
export function styleMetrics(prefix: string, texts: readonly string[]): Record<string, number> {
  const s = styleShares(texts);
  return {
    [`${prefix}/style_digit`]: s.digit,
    [`${prefix}/style_letter`]: s.letter,
    [`${prefix}/style_other`]: s.other,
  };
}

/** Win rate of sample sets `as[i]` over `bs[i]` (same problem i), averaged over problems. */
export async function meanWinRate(
  pref: PreferenceFn,
  problems: readonly Problem[],
  as: readonly (readonly string[])[],
  bs: readonly (readonly string[])[],
): Promise<number> {
  let s = 0;
  for (let i = 0; i < problems.length; i++)
    s += await winRate(pref, problems[i] as Problem, as[i] as string[], bs[i] as string[]);
  return s / Math.max(1, problems.length);
}

interface Record_ {
  step: number;
  texts: string[][];
}

/**
 * The preference evaluation of a run: `evaluate(step)` samples the current policy, logs its win rates against
 * the reference and the previous evaluation, and appends its samples to `file`.
 */
export function preferenceEval(o: {
  pref: { name: string; fn: PreferenceFn };
  sampler: LocalSampler;
  tok: Tokenizer;
  problems: readonly Problem[];
  params: Omit<SamplingParams, "seed">;
  seed: number;
  file: string;
}): { evaluate(step: number): Promise<Record<string, number>> } {
  const problems = o.problems.slice(0, PREF_EVAL_PROBLEMS);
  const read = (): Record_[] =>
    existsSync(o.file)
      ? readFileSync(o.file, "utf8")
          .split("\n")
          .filter((l) => l.trim() !== "")
          .map((l) => JSON.parse(l) as Record_)
      : [];
  return {
    async evaluate(step) {
      const prompts = problems.flatMap((p) =>
        Array.from({ length: PREF_EVAL_SAMPLES }, () => encodePrompt(o.tok, p.prompt)),
      );
      const seed = prompts.map((_, i) => requestSeed(o.seed, step, i));
      const comps = o.sampler.generateSync(prompts, { ...o.params, seed });
      const flat = comps.map((c) => o.tok.decode(c.tokens, { skipSpecialTokens: true }));
      const texts = problems.map((_, i) => flat.slice(i * PREF_EVAL_SAMPLES, (i + 1) * PREF_EVAL_SAMPLES));
      // step 0 starts the file afresh; a resumed run finds the reference's and earlier samples in it
      const earlier = step === 0 ? [] : read().filter((r) => r.step < step);
      if (step === 0) writeFileSync(o.file, "");
      appendLines(o.file, [JSON.stringify({ step, texts })]);
      const ref = step === 0 ? { step: 0, texts } : earlier.find((r) => r.step === 0);
      const prev = earlier.reduce<Record_ | undefined>(
        (b, r) => (b === undefined || r.step >= b.step ? r : b),
        undefined,
      );
      const m: Record<string, number> = {};
      if (ref !== undefined) m["eval_pref/win_rate_ref"] = await meanWinRate(o.pref.fn, problems, texts, ref.texts);
      if (prev !== undefined) m["eval_pref/win_rate_prev"] = await meanWinRate(o.pref.fn, problems, texts, prev.texts);
      if (o.pref.name === "rps_style") {
        Object.assign(m, styleMetrics("eval_pref", flat));
        if (ref !== undefined) m["eval_pref/style_kl_ref"] = styleKl(flat, ref.texts.flat());
      }
      return m;
    },
  };
}
