/**
 * `cohort pretrain`: supervised fine-tuning of a small char-level model on generated task data, so that
 * GRPO starts from partial competence. Each example is `BOS prompt` → `<answer>…</answer> EOS`; the loss is
 * the mean next-token cross-entropy of the completion tokens. Seeded and deterministic; training stops at
 * `maxSteps` or, checked every `evalEvery` steps, once greedy held-out accuracy reaches `targetAccuracy`.
 *
 * With `think`, each target starts with the task's reasoning trace, `<think>trace</think><answer>…</answer>`
 * (the task must write traces: `ThinkingTask`, e.g. arithmetic). TON thought dropout (`thoughtDropout` = p)
 * then replaces the trace of each target, with probability p, by the empty thought `<think>\n\n</think>`,
 * from a generator of its own seeded by `seed`, so the same seed drops the same targets and the problem
 * stream does not depend on p.
 * @module
 */
import { join } from "node:path";
import { CohortError, ConfigError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeModelDir } from "../io/hf.js";
import { packBatch } from "../model/batch.js";
import { configToHF } from "../model/config.js";
import type { CausalLM } from "../model/llama.js";
import { LocalSampler } from "../model/sampler.js";
import { type SftRunOptions, sftOptimizer, tinyCharModel } from "../model/tiny.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import { defaultNumThreads, learningRate, manualSeed, setNumThreads, tidy } from "../tensor/index.js";
import { CharTokenizer } from "../tokenizer/char.js";

export { type SftRunOptions, sftOptimizer, tinyCharModel } from "../model/tiny.js";

/** A task that writes a reasoning trace for its problems (the text of a `<think>…</think>` part). */
export interface ThinkingTask extends Task {
  trace(problem: Problem): string;
}

/** TON's empty thought: what a dropped reasoning trace becomes. */
export const EMPTY_THOUGHT = "<think>\n\n</think>";
const THOUGHT_RE = /<think>[\s\S]*?<\/think>/;

/** The SFT target of `p`: `<answer>…</answer>`, after `<think>trace</think>` when a trace is given. */
export function sftTarget(p: Problem, trace?: string): string {
  const answer = `<answer>${p.answer}</answer>`;
  return trace === undefined ? answer : `<think>${trace}</think>${answer}`;
}

/**
 * TON thought dropout (B.35): each target that holds a `<think>…</think>` trace has it replaced by the empty
 * thought with probability `p`, one `rng.float()` draw per such target, in order. p = 0 never drops. A target
 * without a trace is left as it is; when p > 0 and no target has one there is nothing to drop, which fails.
 */
// arXiv 2505.16854 [ABSTRACT + README]
export function thoughtDropout(
  targets: readonly string[],
  p: number,
  rng: Rng,
): { targets: string[]; dropped: number } {
  if (!(p >= 0 && p <= 1)) {
    throw new ConfigError(`thought dropout ${p}: expected a probability in [0, 1] (TON uses 0.5)`, "thoughtDropout");
  }
  let dropped = 0;
  let traces = 0;
  const out = targets.map((t) => {
    if (!THOUGHT_RE.test(t)) return t;
    traces++;
    if (!(rng.float() < p)) return t;
    dropped++;
    return t.replace(THOUGHT_RE, EMPTY_THOUGHT);
  });
  if (p > 0 && traces === 0 && targets.length > 0) {
    throw new CohortError(
      `thought dropout ${p}: no SFT target holds a <think>…</think> reasoning trace, so there is nothing to drop ` +
        `(e.g. ${JSON.stringify(targets[0])}); write traces into the targets (cohort pretrain --think) or set it to 0`,
    );
  }
  return { targets: out, dropped };
}

/** What every supervised pre-training run takes: output, schedule, stopping rule and the tiny model's shape. */
export interface PretrainOptions extends SftRunOptions {
  task: string;
  taskOptions?: Record<string, unknown>;
  maxNewTokens?: number;
  /** Targets carry the task's reasoning trace: `<think>trace</think><answer>…</answer>` (task must write traces). */
  think?: boolean;
  /** TON: probability of replacing a target's trace with the empty thought (needs `think`). Default 0. */
  thoughtDropout?: number;
}

export interface PretrainResult {
  steps: number;
  evalAccuracy: number;
  /** Targets trained on with a reasoning trace, and how many of those thought dropout emptied. */
  thoughts: { total: number; dropped: number };
  history: { step: number; loss: number; evalAccuracy?: number }[];
}

function accuracy(model: CausalLM, tok: CharTokenizer, task: Task, problems: Problem[], maxNewTokens: number): number {
  const sampler = new LocalSampler(model, { padId: tok.padId, maxBatch: 128 });
  const comps = sampler.generateSync(
    problems.map((p) => [tok.bosId as number, ...tok.encode(p.prompt)]),
    { maxTokens: maxNewTokens, temperature: 0, stopTokenIds: [tok.eosId] },
  );
  let ok = 0;
  comps.forEach((c, i) => {
    if (task.verify(problems[i] as Problem, tok.decode(c.tokens, { skipSpecialTokens: true })).correct) ok++;
  });
  return ok / problems.length;
}

export function pretrain(o: PretrainOptions): PretrainResult {
  const log = o.log ?? console.log;
  const seed = o.seed ?? 0;
  setNumThreads(defaultNumThreads());
  manualSeed(seed);
  const tok = new CharTokenizer();
  const task = createTask(o.task, o.taskOptions ?? {}, "task");
  const pDrop = o.thoughtDropout ?? 0;
  if (!(pDrop >= 0 && pDrop <= 1)) {
    throw new ConfigError(`${pDrop}: expected a probability in [0, 1] (TON uses 0.5)`, "--thought-dropout");
  }
  if (pDrop > 0 && o.think !== true) {
    throw new ConfigError(
      `thought dropout ${pDrop} replaces <think>…</think> reasoning traces with an empty thought, but the SFT ` +
        `targets have none (they are <answer>…</answer> only), so there is nothing to drop; add --think so the ` +
        `task writes a trace into each target`,
      "--thought-dropout",
    );
  }
  const traceOf = (task as Partial<ThinkingTask>).trace;
  if (o.think === true && typeof traceOf !== "function") {
    throw new ConfigError(
      `task "${task.name}" writes no reasoning traces; --think needs one that does (arithmetic)`,
      "--think",
    );
  }
  const { cfg, model } = tinyCharModel(o, tok, 128, seed);
  const maxSteps = o.maxSteps ?? 3000;
  const batch = o.batchSize ?? 64;
  const evalEvery = o.evalEvery ?? 250;
  const target = o.targetAccuracy ?? 1;
  const maxNew = o.maxNewTokens ?? (o.think === true ? 96 : 24);
  const { opt, schedule } = sftOptimizer(model, o, maxSteps, 100);
  const rng = Rng.fromSeed(BigInt(seed));
  const dropRng = Rng.fromSeed(BigInt(seed) ^ 0x7090n);
  const thoughts = { total: 0, dropped: 0 };
  const evalRng = Rng.fromSeed(BigInt(seed) ^ 0xe7a1n);
  const evalSet = Array.from({ length: o.evalProblems ?? 200 }, () => task.sample(evalRng, "eval"));
  const history: PretrainResult["history"] = [];
  let acc = 0;
  let step = 0;
  while (step < maxSteps) {
    step++;
    const problems = Array.from({ length: batch }, () => task.sample(rng, "train"));
    let targets = problems.map((p) => sftTarget(p, o.think === true ? traceOf?.call(task, p) : undefined));
    if (o.think === true) {
      const d = thoughtDropout(targets, pDrop, dropRng);
      targets = d.targets;
      thoughts.total += targets.length;
      thoughts.dropped += d.dropped;
    }
    const prompts = problems.map((p) => [tok.bosId as number, ...tok.encode(p.prompt)]);
    const completions = targets.map((t) => [...tok.encode(t), tok.eosId]);
    const longest = Math.max(...prompts.map((q, i) => q.length + (completions[i] as number[]).length));
    if (longest > cfg.maxPositionEmbeddings) {
      throw new CohortError(
        `an SFT example is ${longest} tokens, more than the model's ${cfg.maxPositionEmbeddings} positions; ` +
          `use fewer digits${o.think === true ? " or drop --think" : ""}`,
      );
    }
    const loss = tidy(() => {
      opt.zeroGrad();
      const packed = packBatch(prompts, completions, { padId: tok.padId });
      const { lp } = model.logprobs(packed);
      const l = lp.mul(packed.completionMask).sum().div(packed.completionMask.sum()).neg();
      l.backward();
      opt.step(learningRate(schedule, step - 1));
      return l.item();
    });
    const rec: PretrainResult["history"][number] = { step, loss };
    if (step % evalEvery === 0 || step === maxSteps) {
      acc = accuracy(model, tok, task, evalSet, maxNew);
      rec.evalAccuracy = acc;
      log(`step ${step}  loss ${loss.toFixed(4)}  eval accuracy ${(100 * acc).toFixed(1)}%`);
    }
    history.push(rec);
    if (rec.evalAccuracy !== undefined && acc >= target) break;
  }
  const st = model.state();
  writeModelDir(o.out, { config: configToHF(cfg), tensors: st.tensors, tokenizerFiles: tok.toFiles() });
  writeFileAtomic(
    join(o.out, "PRETRAIN.md"),
    [
      "# How this checkpoint was made",
      "",
      "```sh",
      o.command ?? "(programmatic pretrain() call)",
      "```",
      "",
      `Task: ${o.task} ${JSON.stringify(o.taskOptions ?? {})}; seed ${seed}; ${step} steps of batch ${batch}.`,
      ...(o.think === true
        ? [`Targets with reasoning traces; thought dropout ${pDrop}: ${thoughts.dropped} of ${thoughts.total} emptied.`]
        : []),
      `Greedy held-out accuracy at the end: ${(100 * acc).toFixed(1)}% (${evalSet.length} problems).`,
      "",
    ].join("\n"),
  );
  opt.dispose();
  model.dispose();
  return { steps: step, evalAccuracy: acc, thoughts, history };
}
