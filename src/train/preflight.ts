/**
 * Start-up checks that need the model and its tokenizer, run before anything is written to the run directory:
 * every prompt encodes with the tokenizer and fits the model's positions together with `sampling.maxNewTokens`
 * (all rows of a JSONL dataset, with `file:line`; the held-out problems and a draw of training problems of a
 * built-in task), and the weights are finite.
 * @module
 */
import { CohortError } from "../errors.js";
import { fileOf, type JsonlDataset, type JsonlMeta, withoutProblems } from "../task/jsonl.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import { noGrad, type Tensor, tidy } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";

/** What a prompt needs from the model: its token count (BOS included) must leave room for the completion. */
export interface PromptLimits {
  tok: Tokenizer;
  /** The model's max_position_embeddings. */
  maxPositions: number;
  /** sampling.maxNewTokens. */
  maxNewTokens: number;
}

/** Why the model cannot take `prompt`, or null when it can. */
export function promptProblem(prompt: string, l: PromptLimits): string | null {
  let n: number;
  try {
    n = l.tok.encode(prompt).length + (l.tok.bosId !== null ? 1 : 0);
  } catch (e) {
    return (e as Error).message;
  }
  if (n + l.maxNewTokens > l.maxPositions)
    return (
      `the prompt is ${n} tokens, which with sampling.maxNewTokens ${l.maxNewTokens} needs ${n + l.maxNewTokens} ` +
      `positions; the model has ${l.maxPositions} (max_position_embeddings)`
    );
  return null;
}

const SHOWN = 5;

/**
 * Checks every row of a dataset against the tokenizer and the context. `onBadRow: "error"` throws a CohortError
 * listing the bad rows as `file:line: why`; `"skip"` returns the dataset without them and logs the count.
 */
export function checkDatasetRows(
  ds: JsonlDataset,
  l: PromptLimits,
  onBadRow: "error" | "skip",
  log: (line: string) => void,
): JsonlDataset {
  const bad: string[] = [];
  const drop = new Set<Problem<JsonlMeta>>();
  ds.problems.forEach((p, i) => {
    const why = promptProblem(p.prompt, l);
    if (why === null) return;
    bad.push(`${fileOf(ds, i)}:${ds.lines[i]}: ${why}`);
    drop.add(p);
  });
  if (bad.length === 0) return ds;
  const shown = bad.slice(0, SHOWN).join("\n");
  const more = bad.length > SHOWN ? `\n(${bad.length - SHOWN} more)` : "";
  if (onBadRow === "error") {
    throw new CohortError(
      `${bad.length} of ${ds.problems.length} dataset rows cannot be sampled by this model:\n${shown}${more}\n` +
        "Fix or remove these rows, lower sampling.maxNewTokens, or set dataset.onBadRow: skip to leave them out",
    );
  }
  const kept = withoutProblems(ds, drop);
  if (kept.problems.length === 0)
    throw new CohortError(
      `every row of ${ds.file} cannot be sampled by this model (dataset.onBadRow: skip):\n${shown}${more}`,
    );
  log(
    `dataset ${ds.file}: skipped ${bad.length} of ${ds.problems.length} rows (dataset.onBadRow: skip); first: ${bad[0]}`,
  );
  return kept;
}

/** Training problems of a built-in task drawn (with their own RNG) to check the prompts' lengths. */
const TASK_DRAWS = 64;

/**
 * Checks the held-out problems and a seeded draw of training problems of a generated task (whose rows cannot
 * all be listed) against the tokenizer and the context.
 */
export function checkTaskPrompts(task: Task, evalProblems: readonly Problem[], l: PromptLimits, seed: number): void {
  const rng = Rng.fromSeed(BigInt(seed) ^ 0x9f1a7c3dn);
  const drawn = Array.from({ length: TASK_DRAWS }, () => task.sample(rng, "train"));
  for (const [p, split] of [
    ...evalProblems.map((p) => [p, "eval"] as const),
    ...drawn.map((p) => [p, "train"] as const),
  ]) {
    const why = promptProblem(p.prompt, l);
    if (why !== null) {
      throw new CohortError(
        `task ${task.name}: a ${split === "eval" ? "held-out" : "training"} problem (${p.id}) cannot be sampled by this model: ${why}. Lower ` +
          "sampling.maxNewTokens or change the task's options",
      );
    }
  }
}

/** Refuses non-finite (NaN, ±Inf) weights, which would train with every update skipped. */
export function checkFiniteWeights(named: Iterable<[string, Tensor]>, where: string): void {
  const bad: string[] = [];
  noGrad(() => {
    for (const [name, t] of named) if (tidy(() => t.isfinite().all().item()) === 0) bad.push(name);
  });
  if (bad.length > 0) {
    throw new CohortError(
      `${where} has non-finite (NaN or infinite) values in ${bad.length} tensor(s): ${bad.slice(0, 5).join(", ")}` +
        `${bad.length > 5 ? ", …" : ""}; training would skip every update. Use intact weights`,
    );
  }
}
