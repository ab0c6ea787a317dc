/**
 * DaGRPO off-policy data augmentation (B.38): a prompt whose whole group failed (no row a success under
 * `algo.rollout.success`: the step's hard prompts) and that has a reference answer gets ONE anchor response
 * in place of the group's last sampled row, so the group size, and the step's budget, are unchanged and the
 * group holds a positive example. The anchor is off-policy: it is not sampled but written from the dataset's
 * reference answer (`Problem.answer`) with `template`; the trainer computes its log-probs with the training
 * model (they are its ℓ_old) and leaves it out of the sampler/trainer log-prob mismatch metric. It is scored
 * by the unchanged reward functions and trained on the original prompt.
 *
 * Design choices: anchors come from the reference answer, formatted the way the task's verifier expects (the
 * default `<answer>{answer}</answer>` is the built-in tasks' format; an anchor the task's verifier does not
 * accept as correct and well-formed fails with a message naming the template), where the paper uses
 * high-quality expert responses; one anchor per all-fail group; a group of one row gets none. DaGRPO's
 * second mechanism, low-distinctiveness pair masking, is the sample filter `dagrpo_pairs`
 * (src/algo/pair-mask.ts); the `dagrpo` preset combines the two.
 *
 * Metrics: `dagrpo/anchor_rate` (groups given an anchor / groups), `dagrpo/anchors`, `rollout/sampled`.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../../errors.js";
import type { Problem, Task } from "../../task/types.js";
import { parseComponentOptions } from "../config.js";
import {
  assemble,
  fillTemplate,
  groupRows,
  type RolloutWrapper,
  type RowPart,
  rolloutWrappers,
  type WrapperHost,
} from "./registry.js";

const dagrpoOptions = z.strictObject({
  /** Anchor completion; `{answer}` is the problem's reference answer. */
  template: z
    .string()
    .refine((t) => t.includes("{answer}"), {
      message: 'the template must contain "{answer}"; e.g. "<answer>{answer}</answer>"',
    })
    .default("<answer>{answer}</answer>"),
});
export type DagrpoOptions = z.output<typeof dagrpoOptions>;

// arXiv 2512.06337 [ABSTRACT]
export class DagrpoWrapper implements RolloutWrapper {
  readonly opts: DagrpoOptions;
  readonly #path: string;
  constructor(options: Record<string, unknown>, path: string) {
    this.opts = parseComponentOptions(dagrpoOptions, options, path);
    this.#path = path;
  }

  /** The anchor text of `p`; fails unless the task's verifier accepts it as correct and well-formed. */
  anchorText(task: Task, p: Problem): string {
    const text = fillTemplate(this.opts.template, { answer: p.answer as string });
    const v = task.verify(p, text);
    if (!v.correct || !v.format) {
      throw new ConfigError(
        `the anchor ${JSON.stringify(text)} of problem ${p.id} is not a correct, well-formed answer for task ` +
          `"${task.name}" (${v.reason ?? (v.correct ? "bad format" : "rejected")}); set template to the answer ` +
          `format the task expects, e.g. "<answer>{answer}</answer>" with the task's answer tag`,
        `${this.#path}.template`,
      );
    }
    return text;
  }

  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    const first = await host.sample(problems, counts);
    const groups: RowPart<C>[][] = groupRows(first).map((rows) => [{ batch: first, rows }]);
    // group g ↔ problem index (problems with a zero count have no group)
    const problemOf: number[] = [];
    counts.forEach((n, b) => {
      if (n > 0) problemOf.push(b);
    });
    const hard = groups
      .map((_, g) => g)
      .filter((g) => {
        const own = (groups[g] as RowPart<C>[])[0] as RowPart<C>;
        return (
          own.rows.length >= 2 &&
          !own.rows.some((i) => host.success(first, i)) &&
          problems[problemOf[g] as number]?.answer !== undefined
        );
      });
    if (hard.length > 0) {
      const ps = hard.map((g) => problems[problemOf[g] as number] as Problem);
      const anchors = await host.offPolicy(
        ps,
        ps.map((p) => this.anchorText(host.task, p)),
      );
      const rows = groupRows(anchors); // one row per hard group, in order
      hard.forEach((g, j) => {
        const own = (groups[g] as RowPart<C>[])[0] as RowPart<C>;
        groups[g] = [
          { batch: first, rows: own.rows.slice(0, -1) },
          { batch: anchors, rows: rows[j] as number[] },
        ];
      });
    }
    return {
      batch: assemble(groups),
      metrics: {
        "dagrpo/anchor_rate": groups.length > 0 ? hard.length / groups.length : 0,
        "dagrpo/anchors": hard.length,
        "rollout/sampled": first.completions.length,
      },
    };
  }
}

rolloutWrappers.register("dagrpo", (options, path) => new DagrpoWrapper(options, path));
