/**
 * Supervised fine-tuning on your own JSONL data (`cohort pretrain --dataset data.jsonl`): the starting model for
 * GRPO on a task the shipped models do not know. Each line is one example, `prompt → target + EOS`, with the
 * prompt made exactly as training makes it (the same `dataset.options`, `template` and `system`), and the loss
 * is the mean next-token cross-entropy of the target tokens:
 *
 * - a prompt line's target is its answer (`<answer>…</answer>` under `answerFormat: tagged`, the bare answer under
 *   `plain`);
 * - a conversational line's target is its final assistant message, as written;
 * - with `targetField`, a line's target is that field, as written (a whole completion: reasoning and answer).
 *
 * It starts from a model directory (`from`: a shipped model, a Hugging Face directory, a run's `final/` or a
 * checkpoint) or from a fresh tiny char-level model whose alphabet covers every character of the data. Seeded
 * and deterministic: epochs in a seeded order. Every `evalEvery` steps it measures the held-out split (the
 * dataset's hash split, or `evalPath`): the mean target loss, and the greedy accuracy by the dataset's verifier;
 * it stops at `maxSteps` or, optionally, once that accuracy reaches `targetAccuracy`.
 * @module
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { CohortError, ConfigError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeModelDir } from "../io/hf.js";
import { packBatch } from "../model/batch.js";
import { configToHF, eosIds } from "../model/config.js";
import type { CausalLM } from "../model/llama.js";
import { LocalSampler } from "../model/sampler.js";
import { type SftRunOptions, sftOptimizer, tinyCharModel } from "../model/tiny.js";
import { fileOf, type JsonlDataset, type JsonlOptions, jsonlTask, loadJsonl, promptMessages } from "../task/jsonl.js";
import { Rng } from "../task/rng.js";
import { type DatasetTemplate, formatPrompt, type PromptFormat } from "../task/template.js";
import type { Problem } from "../task/types.js";
import { learningRate, manualSeed, noGrad, setNumThreads, tidy } from "../tensor/index.js";
import {
  CHAR_BOS_TOKEN,
  CHAR_EOS_TOKEN,
  CHAR_PAD_TOKEN,
  CharTokenizer,
  DEFAULT_CHAR_ALPHABET,
} from "../tokenizer/char.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { formatDuration, Progress } from "./clock.js";

export interface SftOptions extends SftRunOptions {
  /** The JSONL file (prompt/answer lines, or `messages` lines). */
  dataset: string;
  /** As `dataset.options` of a training config (fields, evalFraction or evalPath, answerFormat, …). */
  datasetOptions?: JsonlOptions;
  /** As `dataset.template` (default auto). */
  template?: DatasetTemplate;
  /** As `dataset.system`. */
  system?: string;
  /** Start from this model (a model directory, a run directory's final model or a checkpoint); default a fresh tiny char model. */
  from?: string;
  /** Completion limit of the held-out greedy evaluation (default: the longest target + 4 tokens). */
  maxNewTokens?: number;
  /**
   * Context length of a fresh model (default: the longest example rounded up to 64, at least 128). With `from`, a
   * longer context for the given model: its rotary position angles extend to any length (there is no position
   * table), and fine-tuning on the longer examples teaches it the new positions; a shorter one is refused.
   */
  maxPositions?: number;
}

export interface SftResult {
  steps: number;
  /** Greedy held-out accuracy by the dataset's verifier at the last evaluation (null without held-out lines). */
  evalAccuracy: number | null;
  /** Mean held-out target loss at the last evaluation (null without held-out lines). */
  evalLoss: number | null;
  trainLines: number;
  evalLines: number;
  history: { step: number; loss: number; evalAccuracy?: number; evalLoss?: number }[];
}

interface Example {
  problem: Problem;
  prompt: number[];
  target: number[];
}

/** The SFT target text of a line (see the module doc), or null when the line has none. */
export function sftTargetOf(p: Problem, ds: Pick<JsonlDataset, "options">): string | null {
  const o = ds.options;
  if (o.targetField !== undefined) {
    const t = p.meta[o.targetField];
    return typeof t === "string" && t !== "" ? t : null;
  }
  if (promptMessages(p, o.messagesField, o.promptField) !== null) {
    const m = p.meta[o.messagesField] as { role: string; content: string }[];
    const last = m.at(-1);
    if (last?.role === "assistant") return last.content;
  }
  if (p.answer === undefined) return null;
  return o.answerFormat === "plain" ? p.answer : `<answer>${p.answer}</answer>`;
}

/** A fresh char tokenizer over the default alphabet plus every other character of `texts`. */
function charTokenizerFor(texts: Iterable<string>): CharTokenizer {
  const known = new Set(Array.from(DEFAULT_CHAR_ALPHABET));
  const extra = new Set<string>();
  for (let t of texts) {
    for (const s of [CHAR_PAD_TOKEN, CHAR_BOS_TOKEN, CHAR_EOS_TOKEN]) t = t.split(s).join("");
    for (const c of t) if (!known.has(c)) extra.add(c);
  }
  return new CharTokenizer({ alphabet: DEFAULT_CHAR_ALPHABET + [...extra].sort().join("") });
}

/** Prompt and target ids of every line; a line that does not encode or has no target is listed by file:line. */
function examplesOf(ds: JsonlDataset, tok: Tokenizer, fmt: PromptFormat): { examples: Example[]; bad: string[] } {
  const examples: Example[] = [];
  const bad: string[] = [];
  ds.problems.forEach((p, i) => {
    const where = `${fileOf(ds, i)}:${ds.lines[i]}`;
    const target = sftTargetOf(p, ds);
    if (target === null) {
      bad.push(
        ds.options.targetField !== undefined
          ? `${where}: no target (field "${ds.options.targetField}" must hold a non-empty string)`
          : `${where}: no target (an answer field, or a conversation that ends with an assistant message)`,
      );
      return;
    }
    try {
      const text = formatPrompt(p, ds, tok, fmt, where);
      const ids = tok.encode(text);
      examples.push({
        problem: { ...p, prompt: text },
        prompt: tok.bosId !== null ? [tok.bosId, ...ids] : ids,
        target: [...tok.encode(target), tok.eosId],
      });
    } catch (e) {
      bad.push(
        e instanceof CohortError && e.message.startsWith(where) ? e.message : `${where}: ${(e as Error).message}`,
      );
    }
  });
  return { examples, bad };
}

function refuse(bad: string[], total: number, what: string): never {
  const shown = bad.slice(0, 5).join("\n");
  const more = bad.length > 5 ? `\n(${bad.length - 5} more)` : "";
  throw new CohortError(`${bad.length} of ${total} dataset lines ${what}:\n${shown}${more}`);
}

/** Mean target cross-entropy (nats per token) of `examples` under `model`, in batches. */
function meanLoss(model: CausalLM, examples: readonly Example[], padId: number, batch: number): number {
  let sum = 0;
  let tokens = 0;
  noGrad(() => {
    for (let i = 0; i < examples.length; i += batch) {
      const part = examples.slice(i, i + batch);
      tidy(() => {
        const packed = packBatch(
          part.map((e) => e.prompt),
          part.map((e) => e.target),
          { padId },
        );
        const { lp } = model.logprobs(packed);
        sum -= lp.mul(packed.completionMask).sum().item();
        tokens += packed.completionMask.sum().item();
      });
    }
  });
  return tokens > 0 ? sum / tokens : 0;
}

/** Supervised fine-tuning on a JSONL dataset; writes a model directory to `o.out` (see the module doc). */
export async function sft(o: SftOptions): Promise<SftResult> {
  const log = o.log ?? console.log;
  const seed = o.seed ?? 0;
  if (o.targetAccuracy !== undefined && !(o.targetAccuracy >= 0 && o.targetAccuracy <= 1))
    throw new ConfigError(`${o.targetAccuracy}: expected a number in [0, 1]`, "--target-accuracy");
  const ds = await loadJsonl(o.dataset, o.datasetOptions ?? {});
  const fmt: PromptFormat = {
    template: o.template ?? "auto",
    ...(o.system !== undefined ? { system: o.system } : {}),
  };
  // the starting model and its tokenizer: a given model, or a fresh char model over the data's characters
  let model: CausalLM;
  let tok: Tokenizer;
  let hfConfig: Record<string, unknown>;
  if (o.from !== undefined) {
    const { resolveModelPath } = await import("./evaluate.js");
    const { loadServedModel } = await import("../serve/load.js");
    const loaded = loadServedModel(resolveModelPath(o.from));
    model = loaded.model;
    tok = loaded.tokenizer;
    if (o.maxPositions !== undefined) {
      const had = model.config.maxPositionEmbeddings;
      if (o.maxPositions < had) {
        model.dispose();
        throw new ConfigError(
          `${o.maxPositions}: the starting model has ${had} positions; --max-positions with --from may only extend them`,
          "--max-positions",
        );
      }
      model.config.maxPositionEmbeddings = o.maxPositions;
    }
    hfConfig = model.state().meta.config as Record<string, unknown>;
  } else {
    const probe = new CharTokenizer();
    const texts: string[] = [];
    for (const p of ds.problems) {
      texts.push(formatPrompt(p, ds, probe, fmt));
      texts.push(sftTargetOf(p, ds) ?? "");
    }
    if (fmt.system !== undefined) texts.push(fmt.system);
    const charTok = charTokenizerFor(texts);
    tok = charTok;
    const longest = Math.max(...texts.map((t) => charTok.encode(t).length)) * 2 + 8;
    const maxPositions = o.maxPositions ?? Math.max(128, Math.ceil(longest / 64) * 64);
    setNumThreads(availableParallelism());
    manualSeed(seed);
    const made = tinyCharModel(o, charTok, maxPositions, seed);
    model = made.model;
    hfConfig = configToHF(made.cfg);
  }
  try {
    setNumThreads(availableParallelism());
    manualSeed(seed);
    const { examples, bad } = examplesOf(ds, tok, fmt);
    if (bad.length > 0) refuse(bad, ds.problems.length, "cannot be trained on");
    const positions = model.config.maxPositionEmbeddings;
    const tooLong = examples.flatMap((e, i) =>
      e.prompt.length + e.target.length > positions
        ? [
            `${fileOf(ds, i)}:${ds.lines[i]}: the example is ${e.prompt.length + e.target.length} tokens; the model has ${positions} positions`,
          ]
        : [],
    );
    if (tooLong.length > 0) refuse(tooLong, ds.problems.length, "do not fit the model's context");
    const byProblem = new Map(ds.problems.map((p, i) => [p, examples[i] as Example]));
    const train = ds.train.map((p) => byProblem.get(p) as Example);
    const held = ds.eval.map((p) => byProblem.get(p) as Example).slice(0, o.evalProblems ?? 200);
    if (train.length === 0) throw new CohortError(`${ds.file}: no training lines (the eval split takes them all)`);
    if (o.targetAccuracy !== undefined && held.length === 0)
      throw new ConfigError(
        "an early stop at a target accuracy needs held-out lines; set evalFraction or evalPath in --dataset-options",
        "--target-accuracy",
      );
    const task = jsonlTask(ds);
    const maxSteps = o.maxSteps ?? 1000;
    const batch = Math.min(o.batchSize ?? 32, train.length);
    const evalEvery = o.evalEvery ?? 100;
    const longestTarget = Math.max(...examples.map((e) => e.target.length));
    // the evaluations generate maxNew tokens after each held-out prompt: the default fits the longest one;
    // a given --max-new-tokens that cannot fit is refused before training (not at the first evaluation)
    const longestHeld = Math.max(0, ...held.map((e) => e.prompt.length));
    const maxNew = o.maxNewTokens ?? Math.max(1, Math.min(positions - longestHeld, longestTarget + 4));
    if (held.length > 0 && longestHeld + maxNew > positions)
      throw new ConfigError(
        `held-out prompts of up to ${longestHeld} tokens + ${maxNew} generated tokens exceed the model's ${positions} positions; ` +
          `set --max-new-tokens ≤ ${Math.max(0, positions - longestHeld)}` +
          (o.from === undefined ? ` or --max-positions ≥ ${longestHeld + maxNew}` : ""),
        o.maxNewTokens !== undefined ? "--max-new-tokens" : "--max-positions",
      );
    const { opt, schedule } = sftOptimizer(model, o, maxSteps, Math.min(100, Math.floor(maxSteps / 10)));
    const stopTokenIds = [...new Set([...eosIds(model.config), tok.eosId])];
    const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
    const accuracy = (): number => {
      const comps = sampler.generateSync(
        held.map((e) => e.prompt),
        { maxTokens: maxNew, temperature: 0, stopTokenIds },
      );
      let ok = 0;
      comps.forEach((c, i) => {
        const text = tok.decode(c.tokens, { skipSpecialTokens: true });
        if (task.verify((held[i] as Example).problem, text).correct) ok++;
      });
      return ok / held.length;
    };
    log(
      `sft: ${train.length} training lines, ${held.length} held-out lines of ${ds.file}; ` +
        `${o.from !== undefined ? `from ${o.from}` : `a fresh char model (vocabulary ${tok.vocabSize}, ${positions} positions)`}; ` +
        `${maxSteps} steps of batch ${batch}`,
    );
    const rng = Rng.fromSeed(BigInt(seed));
    let order: Example[] = [];
    const history: SftResult["history"] = [];
    let evalAccuracy: number | null = null;
    let evalLoss: number | null = null;
    let step = 0;
    const progress = new Progress(maxSteps);
    let tokens = 0;
    while (step < maxSteps) {
      step++;
      if (order.length < batch) order = [...order, ...rng.shuffled(train)];
      const part = order.splice(0, batch);
      const loss = tidy(() => {
        opt.zeroGrad();
        const packed = packBatch(
          part.map((e) => e.prompt),
          part.map((e) => e.target),
          { padId: tok.padId },
        );
        const { lp } = model.logprobs(packed);
        const l = lp.mul(packed.completionMask).sum().div(packed.completionMask.sum()).neg();
        l.backward();
        opt.step(learningRate(schedule, step - 1));
        return l.item();
      });
      for (const e of part) tokens += e.prompt.length + e.target.length;
      progress.update(step);
      const rec: SftResult["history"][number] = { step, loss };
      if (held.length > 0 && (step % evalEvery === 0 || step === maxSteps)) {
        evalLoss = meanLoss(model, held, tok.padId, 64);
        evalAccuracy = accuracy();
        rec.evalLoss = evalLoss;
        rec.evalAccuracy = evalAccuracy;
        const rate = tokens / Math.max(1e-9, progress.elapsedS);
        log(
          `step ${step}/${maxSteps}  loss ${loss.toFixed(4)}  held-out loss ${evalLoss.toFixed(4)}  held-out accuracy ` +
            `${(100 * evalAccuracy).toFixed(1)}%  ${Math.round(rate)} tok/s  ${progress.text()}`,
        );
      } else if (held.length === 0 && step % evalEvery === 0) {
        log(`step ${step}/${maxSteps}  loss ${loss.toFixed(4)}  ${progress.text()}`);
      }
      history.push(rec);
      if (o.targetAccuracy !== undefined && evalAccuracy !== null && rec.evalAccuracy !== undefined) {
        if (evalAccuracy >= o.targetAccuracy) {
          log(`sft: held-out accuracy reached ${(100 * o.targetAccuracy).toFixed(1)}% at step ${step}; stopping`);
          break;
        }
      }
    }
    opt.dispose();
    const st = model.state();
    writeModelDir(o.out, { config: hfConfig, tensors: st.tensors, tokenizerFiles: tok.toFiles() });
    const pct = (x: number | null) => (x === null ? "–" : `${(100 * x).toFixed(1)}%`);
    writeFileAtomic(
      join(o.out, "PRETRAIN.md"),
      [
        "# How this checkpoint was made",
        "",
        "```sh",
        o.command ?? "(programmatic sft() call)",
        "```",
        "",
        `Supervised fine-tuning on ${ds.file} (${train.length} training lines, ${held.length} held out), ` +
          `${o.from !== undefined ? `from ${o.from}` : "from a fresh char-level model"}; seed ${seed}; ${step} steps of ` +
          `batch ${batch} in ${formatDuration(progress.elapsedS)}.`,
        `Held-out accuracy (greedy, the dataset's ${ds.options.answerFormat} verifier) at the end: ${pct(evalAccuracy)}; ` +
          `held-out loss ${evalLoss === null ? "–" : evalLoss.toFixed(4)}.`,
        "",
      ].join("\n"),
    );
    return {
      steps: step,
      evalAccuracy,
      evalLoss,
      trainLines: train.length,
      evalLines: held.length,
      history,
    };
  } finally {
    model.dispose();
  }
}
