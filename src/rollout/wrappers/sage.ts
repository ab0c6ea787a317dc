/**
 * SAGE (B.17, on-policy self-hinting): a prompt whose whole group failed (no row a success under
 * `algo.rollout.success`) and that has a reference is re-sampled with hints of escalating level k = 1, 2, 3:
 * each level re-samples ALL of the group's completions from the hinted prompt and replaces the group (prompt,
 * completions, rewards); escalation stops at the first level with a success, and a group still failing after
 * the last level keeps its last rows (zero advantage). The rewards are those of the unchanged reward functions
 * on the ORIGINAL problem; the policy is trained on the hinted prompt it sampled from.
 *
 * Where the hint comes from (`hints`):
 *
 * | `hints`         | hint of level k for problem q with reference y*                                        |
 * |-----------------|----------------------------------------------------------------------------------------|
 * | `policy`        | h_k = trim(π(hintPrompt(q, y*, instruction_k))): the policy itself, same sampler and    |
 * |                 | sampling parameters, one completion per (q, k), written only when q is still open at k  |
 * | `answer_prefix` | h_k = partialAnswerHint(answer, k, levels): length, then growing prefixes (never whole) |
 *
 * The reference y* is `meta[solutionField]` when it is a string (a worked solution), else `Problem.answer`.
 * The hint-writing rows are neither scored nor trained (as in the released code, which generates hints in a
 * separate validation-mode call and trains only on the solving rows).
 *
 * Design choices (the paper's core, policy-written hints, is kept): the released code asks once for a JSON
 * object with all three levels and retries unparseable outputs; here each level is its own short generation
 * with a level-specific instruction (no JSON, so small models can write hints), generated only for groups
 * still open at that level; an empty hint (after trimming) skips that level for the group, as the released
 * code skips an empty level. The default templates are short ASCII continuations (the released chat prompts
 * are "Question:\n{q}\n\nHere is a hint to help you:\n{h}" and a tutoring system prompt with the three level
 * descriptions that our `instructions` paraphrase); the hinted template puts the hint before the prompt so a
 * continuation prompt still ends where the answer starts.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../../errors.js";
import type { Problem } from "../../task/types.js";
import { parseComponentOptions } from "../config.js";
import type { ScoredRollout } from "../dynamic.js";
import { hintTemplate, partialAnswerHint } from "./hints.js";
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

/** The paper's three hint levels (minimal, medium, detailed), as short instructions. */
export const SAGE_INSTRUCTIONS = ["Key idea only.", "Method or a step.", "Detailed, no answer."] as const;

const sageOptions = z
  .strictObject({
    /** Hint levels tried in order (SAGE: 3). */
    levels: z.number().int().positive().default(3),
    /** Who writes the hints: the policy from the reference (SAGE), or prefixes of the answer. */
    hints: z.enum(["policy", "answer_prefix"]).default("policy"),
    /** Hinted prompt; `{prompt}` is the original prompt text, `{hint}` the hint. */
    template: hintTemplate,
    /**
     * Hint-writing prompt (`hints: policy`): `{prompt}` the problem, `{reference}` its reference solution or
     * answer, `{instruction}` the level's instruction, `{level}` the level number.
     */
    hintPrompt: z
      .string()
      .refine((t) => t.includes("{prompt}") && t.includes("{reference}"), {
        message:
          'the hint prompt must contain "{prompt}" and "{reference}"; e.g. "Q: {prompt}\\nA: {reference}\\nHint:"',
      })
      .default("Q: {prompt}\nA: {reference}\n{instruction}\nHint:"),
    /** One instruction per level, minimal → detailed (the paper's level descriptions, shortened). */
    instructions: z
      .array(z.string())
      .min(1)
      .default([...SAGE_INSTRUCTIONS]),
    /** Meta field holding a worked reference solution; the answer is the reference when it is absent. */
    solutionField: z.string().min(1).default("solution"),
  })
  .superRefine((o, ctx) => {
    if (o.hints === "policy" && o.instructions.length !== o.levels) {
      ctx.addIssue({
        code: "custom",
        path: ["instructions"],
        message: `needs one instruction per level: ${o.levels} levels, ${o.instructions.length} instructions`,
      });
    }
  });
export type SageOptions = z.output<typeof sageOptions>;

// arXiv 2602.03143 [CODE]
export class SageWrapper implements RolloutWrapper {
  readonly opts: SageOptions;
  constructor(options: Record<string, unknown>, path: string) {
    this.opts = parseComponentOptions(sageOptions, options, path);
  }

  /** The reference the hint is written from: `meta[solutionField]` (a string), else the answer. */
  reference(p: Problem): string | undefined {
    const s = p.meta[this.opts.solutionField];
    return typeof s === "string" && s.length > 0 ? s : p.answer;
  }

  /** The prompt the policy completes to write the level-`level` hint of `p`. */
  hintRequest(p: Problem, level: number): string {
    const instruction = this.opts.instructions[level - 1] ?? "";
    const reference = this.reference(p);
    if (reference === undefined) throw new ConfigError(`problem ${p.id} has no reference to write a hint from`);
    return fillTemplate(this.opts.hintPrompt, { prompt: p.prompt, reference, instruction, level: String(level) });
  }

  hintedPrompt(p: Problem, hint: string): string {
    return fillTemplate(this.opts.template, { prompt: p.prompt, hint });
  }

  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    const first = await host.sample(problems, counts);
    const groups: RowPart<C>[] = groupRows(first).map((rows) => ({ batch: first, rows }));
    // group g ↔ problem index (problems with a zero count have no group)
    const problemOf: number[] = [];
    counts.forEach((n, b) => {
      if (n > 0) problemOf.push(b);
    });
    const problemAt = (g: number) => problems[problemOf[g] as number] as Problem;
    const failed = (part: RowPart<C>) => !part.rows.some((i) => host.success(part.batch, i));
    const level = new Array<number>(groups.length).fill(0);
    let open = groups
      .map((_, g) => g)
      .filter((g) => failed(groups[g] as RowPart<C>) && this.reference(problemAt(g)) !== undefined);
    const unresolved = open.length;
    let sampled = first.completions.length;
    let written = 0;
    let empty = 0;
    for (let k = 1; k <= this.opts.levels && open.length > 0; k++) {
      let hints: string[];
      if (this.opts.hints === "policy") {
        hints = (await host.generate(open.map((g) => this.hintRequest(problemAt(g), k)))).map((h) => h.trim());
        written += hints.length;
      } else {
        hints = open.map((g) => partialAnswerHint(problemAt(g).answer as string, k, this.opts.levels));
      }
      const use = open.filter((_, j) => (hints[j] as string).length > 0);
      empty += open.length - use.length;
      const useHints = hints.filter((h) => h.length > 0);
      if (use.length > 0) {
        const hinted = await host.sample(
          use.map(problemAt),
          use.map((g) => (groups[g] as RowPart<C>).rows.length),
          use.map((g, j) => this.hintedPrompt(problemAt(g), useHints[j] as string)),
        );
        sampled += hinted.completions.length;
        const rows = groupRows(hinted);
        use.forEach((g, j) => {
          groups[g] = { batch: hinted, rows: rows[j] as number[] };
          level[g] = k;
        });
      }
      open = open.filter((g) => failed(groups[g] as RowPart<C>));
    }
    const hintedLevels = level.filter((l) => l > 0);
    const batch: ScoredRollout<C> = assemble(groups.map((part) => [part]));
    return {
      batch,
      metrics: {
        "rollout/hint_rate": groups.length > 0 ? hintedLevels.length / groups.length : 0,
        "rollout/hint_level_mean": mean(hintedLevels),
        "rollout/sampled": sampled,
        "sage/unresolved": unresolved,
        "sage/resolved_by_hint": unresolved - open.length,
        ...(this.opts.hints === "policy" ? { "sage/hints_written": written, "sage/hints_empty": empty } : {}),
      },
    };
  }
}

rolloutWrappers.register("sage", (options, path) => new SageWrapper(options, path));
