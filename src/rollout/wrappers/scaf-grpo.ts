/**
 * Scaf-GRPO (B.17): once the model's independent learning has plateaued, every group whose rollouts all
 * failed (no success under `algo.rollout.success`) and whose problem has a reference answer is scaffolded:
 * ONE completion is sampled from the hinted prompt of every level of the problem's hint ladder (all levels of
 * all failed groups in one generation call), and the correct hinted completion of the LOWEST level replaces
 * exactly one of the group's G failed completions (the last one; `replace_num = 1`). If no level succeeds the
 * group stays all-fail. The rewards are those of the unchanged reward functions on the ORIGINAL problem; the
 * replacing row is trained conditioned on the hinted prompt it was sampled from (`replace_hint_prompt =
 * false`, the released default).
 *
 * The ladder (`hints: tiers`) is the paper's three tiers in order, concept → step → answer (the paper's
 * Knowledge → Planning → Solution), each tier's parts revealed cumulatively (at most `maxPartsPerTier`):
 *
 * | source                                       | concept tier            | step tier                            | answer tier        |
 * |----------------------------------------------|-------------------------|--------------------------------------|--------------------|
 * | `meta[hintsField] = {concept, step, answer}` | string or string[]      | string or string[]                   | string or string[] |
 * | built-in arithmetic (design choice)          | the column method of op | the digit trace's steps but the last | "the answer is a"  |
 * | anything else with an answer                 | `answerPrefixHint` ladder of `levels` levels (no tiers known)                      |
 *
 * Level (tier, k) is the hint "{Tier}: part_1 ... part_k" (Tier = Concept, Step, Answer), placed in the
 * template. `hints: answer_prefix` uses the answer-prefix ladder for every problem.
 *
 * When scaffolding starts (`trigger`):
 *
 * | `trigger`  | scaffolded at step t when                                                                    |
 * |------------|----------------------------------------------------------------------------------------------|
 * | `warmup`   | t > warmupSteps (the released code: a fixed 50-step "independent learning" warm-up)          |
 * | `plateau`  | t > warmupSteps and the trigger has fired: after step s with s ≥ 2W finished steps,          |
 * |            | mean(r_{s−W+1..s}) − mean(r_{s−2W+1..s−W}) ≤ δ, where r is the step's success rate on its    |
 * |            | unhinted rows; once fired it stays on (the exemption period ends once)                       |
 *
 * Design choices: the plateau rule, its window W (`plateauWindow`, 10) and δ (`plateauDelta`, 0.01) are ours
 * (the abstract says guidance starts once independent learning has plateaued, with no rule or values in the
 * sources read; the released code uses the fixed warm-up, kept here as the minimum);
 * the tier texts of built-in arithmetic; the default template `"Hint: {hint}\n{prompt}"` (released:
 * "Question: {q}\n{Tier label}: ..."). The trigger's state (recent rates, the current step's counts, the
 * step it fired) is saved in checkpoints with the rollout plan.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../../errors.js";
import { type ArithmeticMeta, arithmeticTrace } from "../../task/arithmetic.js";
import type { Problem, Task } from "../../task/types.js";
import { parseComponentOptions } from "../config.js";
import { answerPrefixHint, hintTemplate } from "./hints.js";
import {
  assemble,
  fillTemplate,
  groupRows,
  mean,
  type RolloutWrapper,
  type RowPart,
  rolloutWrappers,
  type WrapperHost,
} from "./registry.js";

const scafOptions = z.strictObject({
  /** When scaffolding starts: a fixed warm-up (released code) or a plateau of the success rate (paper). */
  trigger: z.enum(["plateau", "warmup"]).default("plateau"),
  /** Steps without hints at the start of training (released: 50); with `plateau`, the minimum. */
  warmupSteps: z.number().int().nonnegative().default(50),
  /** W: steps per window of the plateau test (two windows are compared). Design choice. */
  plateauWindow: z.number().int().positive().default(10),
  /** δ: the success rate must rise by more than this between windows to count as progress. Design choice. */
  plateauDelta: z.number().min(0).max(1).default(0.01),
  /** The hint ladder: concept → step → answer tiers where known, or the answer-prefix ladder for all. */
  hints: z.enum(["tiers", "answer_prefix"]).default("tiers"),
  /** Meta field holding `{concept, step, answer}` tiers (each a string or a list of parts). */
  hintsField: z.string().min(1).default("hints"),
  /** Parts per tier revealed at most (released code: up to 4). */
  maxPartsPerTier: z.number().int().positive().default(4),
  /** Levels of the answer-prefix ladder, one completion each per failed group. */
  levels: z.number().int().positive().default(4),
  /** Hinted prompt; `{prompt}` is the original prompt text, `{hint}` the hint. */
  template: hintTemplate,
});
export type ScafOptions = z.output<typeof scafOptions>;

export const SCAF_TIERS = ["concept", "step", "answer"] as const;
const TIER_LABEL = { concept: "Concept", step: "Step", answer: "Answer" } as const;

/** What each arithmetic operation's column method is, the concept tier of built-in arithmetic. */
const ARITHMETIC_CONCEPT: Record<ArithmeticMeta["op"], string> = {
  add: "add digits right to left, carry tens",
  sub: "subtract right to left, borrow tens",
  mul: "multiply digit by digit, add the parts",
};

/** The concept/step/answer parts of a built-in arithmetic problem, or null for any other problem. */
export function arithmeticTiers(task: Task, p: Problem): Record<(typeof SCAF_TIERS)[number], string[]> | null {
  const m = p.meta as Partial<ArithmeticMeta>;
  if (task.name !== "arithmetic" || p.answer === undefined) return null;
  if (!(m.op === "add" || m.op === "sub" || m.op === "mul") || typeof m.a !== "string" || typeof m.b !== "string")
    return null;
  const steps = arithmeticTrace(m as ArithmeticMeta).split(",");
  return { concept: [ARITHMETIC_CONCEPT[m.op]], step: steps.slice(0, -1), answer: [`the answer is ${p.answer}`] };
}

/** The tiers of `meta[field]`, or null when the field is absent; a malformed field is an error. */
function metaTiers(p: Problem, field: string): Record<(typeof SCAF_TIERS)[number], string[]> | null {
  const v = p.meta[field];
  if (v === undefined) return null;
  const bad = () =>
    new CohortError(
      `problem ${p.id}: meta.${field} must be {concept?, step?, answer?}, each a string or a list of strings (Scaf-GRPO hint tiers)`,
    );
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw bad();
  const o = v as Record<string, unknown>;
  const out = { concept: [] as string[], step: [] as string[], answer: [] as string[] };
  for (const t of SCAF_TIERS) {
    const x = o[t];
    if (x === undefined) continue;
    if (typeof x === "string") out[t] = [x];
    else if (Array.isArray(x) && x.every((s) => typeof s === "string")) out[t] = x as string[];
    else throw bad();
  }
  return out;
}

interface TriggerState {
  /** Success rates of the last ≤ 2W finished steps, oldest first. */
  rates: number[];
  /** The step being observed and its unhinted successes / rows so far. */
  step: number;
  successes: number;
  rows: number;
  /** The step at which scaffolding switched on (null: not yet). */
  firedAt: number | null;
}

// arXiv 2510.19807 [CODE]
export class ScafGrpoWrapper implements RolloutWrapper {
  readonly opts: ScafOptions;
  private trig: TriggerState = { rates: [], step: 0, successes: 0, rows: 0, firedAt: null };

  constructor(options: Record<string, unknown>, path: string) {
    this.opts = parseComponentOptions(scafOptions, options, path);
  }

  /** The hint ladder of `p`: one hint text per level, lowest first. */
  ladder(task: Task, p: Problem): string[] {
    const answerPrefix = () =>
      Array.from({ length: this.opts.levels }, (_, k) => answerPrefixHint(p.answer as string, k + 1, this.opts.levels));
    if (this.opts.hints === "answer_prefix") return answerPrefix();
    const tiers = metaTiers(p, this.opts.hintsField) ?? arithmeticTiers(task, p);
    const out: string[] = [];
    if (tiers !== null) {
      for (const t of SCAF_TIERS) {
        const parts = tiers[t].filter((s) => s.length > 0).slice(0, this.opts.maxPartsPerTier);
        for (let k = 1; k <= parts.length; k++) out.push(`${TIER_LABEL[t]}: ${parts.slice(0, k).join(" ")}`);
      }
    }
    return out.length > 0 ? out : answerPrefix();
  }

  hintedPrompt(p: Problem, hint: string): string {
    return fillTemplate(this.opts.template, { prompt: p.prompt, hint });
  }

  /** Closes the observed step when `step` is a new one and tests the plateau; whether step `step` scaffolds. */
  private advance(step: number): boolean {
    const s = this.trig;
    const W = this.opts.plateauWindow;
    if (step !== s.step) {
      if (s.rows > 0) {
        s.rates.push(s.successes / s.rows);
        if (s.rates.length > 2 * W) s.rates.splice(0, s.rates.length - 2 * W);
        if (s.firedAt === null && s.rates.length === 2 * W) {
          const gain = mean(s.rates.slice(W)) - mean(s.rates.slice(0, W));
          if (gain <= this.opts.plateauDelta && step > this.opts.warmupSteps) s.firedAt = step;
        }
      }
      s.step = step;
      s.successes = 0;
      s.rows = 0;
    }
    if (step <= this.opts.warmupSteps) return false;
    return this.opts.trigger === "warmup" || s.firedAt !== null;
  }

  state(): Record<string, unknown> {
    return { ...this.trig, rates: [...this.trig.rates] };
  }

  load(state: Record<string, unknown>): void {
    const { rates, step, successes, rows, firedAt } = state as Partial<TriggerState>;
    const int = (x: unknown) => typeof x === "number" && Number.isInteger(x) && x >= 0;
    if (
      !Array.isArray(rates) ||
      !rates.every((r) => typeof r === "number") ||
      !int(step) ||
      !int(successes) ||
      !int(rows) ||
      !(firedAt === null || int(firedAt))
    ) {
      throw new CohortError(
        "checkpoint: the scaf_grpo trigger state is malformed (expected rates, step, successes, rows, firedAt)",
      );
    }
    this.trig = {
      rates: [...rates],
      step: step as number,
      successes: successes as number,
      rows: rows as number,
      firedAt: firedAt ?? null,
    };
  }

  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    const scaffold = this.advance(host.step);
    const first = await host.sample(problems, counts);
    for (let i = 0; i < first.completions.length; i++) if (host.success(first, i)) this.trig.successes++;
    this.trig.rows += first.completions.length;
    const groups: RowPart<C>[][] = groupRows(first).map((rows) => [{ batch: first, rows }]);
    const problemOf: number[] = [];
    counts.forEach((n, b) => {
      if (n > 0) problemOf.push(b);
    });
    let failedGroups: number[] = [];
    const chosen: number[] = [];
    let sampled = first.completions.length;
    if (scaffold) {
      failedGroups = groups
        .map((_, g) => g)
        .filter((g) => {
          const part = (groups[g] as RowPart<C>[])[0] as RowPart<C>;
          return (
            !part.rows.some((i) => host.success(first, i)) && problems[problemOf[g] as number]?.answer !== undefined
          );
        });
      if (failedGroups.length > 0) {
        const ps: Problem[] = [];
        const texts: string[] = [];
        const sizes: number[] = [];
        for (const g of failedGroups) {
          const p = problems[problemOf[g] as number] as Problem;
          const hints = this.ladder(host.task, p);
          sizes.push(hints.length);
          for (const h of hints) {
            ps.push(p);
            texts.push(this.hintedPrompt(p, h));
          }
        }
        const hinted = await host.sample(
          ps,
          ps.map(() => 1),
          texts,
        );
        sampled += hinted.completions.length;
        const rows = groupRows(hinted); // one row per (failed group, level), in order
        let at = 0;
        failedGroups.forEach((g, j) => {
          const L = sizes[j] as number;
          for (let k = 1; k <= L; k++) {
            const row = (rows[at + k - 1] as number[])[0] as number;
            if (!host.success(hinted, row)) continue;
            const own = (groups[g] as RowPart<C>[])[0] as RowPart<C>;
            groups[g] = [
              { batch: first, rows: own.rows.slice(0, -1) },
              { batch: hinted, rows: [row] },
            ];
            chosen.push(k);
            break;
          }
          at += L;
        });
      }
    }
    return {
      batch: assemble(groups),
      metrics: {
        "rollout/hint_rate": groups.length > 0 ? chosen.length / groups.length : 0,
        "rollout/hint_level_mean": mean(chosen),
        "rollout/sampled": sampled,
        "scaf/failed_groups": failedGroups.length,
        "scaf/active": scaffold ? 1 : 0,
      },
    };
  }
}

rolloutWrappers.register("scaf_grpo", (options, path) => new ScafGrpoWrapper(options, path));
