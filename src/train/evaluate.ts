/**
 * Held-out evaluation, one function for the training loop and `cohort eval`: completions of held-out problems
 * by the local sampler, verified by the task.
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CohortError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { eosIds } from "../model/config.js";
import { CausalLM } from "../model/llama.js";
import { LocalSampler, type SamplingParams } from "../model/sampler.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";

export interface EvalResult {
  accuracy: number;
  format: number;
  /** The first problems' prompts, completions and verdicts, for samples.jsonl. */
  samples: Record<string, unknown>[];
}

/** Accuracy and format rate of `sampler` on `problems` (prompts with BOS first), and the first `logSamples`. */
export function evaluateProblems(
  sampler: LocalSampler,
  tok: Tokenizer,
  task: Task,
  problems: readonly Problem[],
  params: SamplingParams,
  logSamples = 0,
  step = 0,
): EvalResult {
  const prompts = problems.map((p) =>
    tok.bosId !== null ? [tok.bosId, ...tok.encode(p.prompt)] : tok.encode(p.prompt),
  );
  const comps = sampler.generateSync(prompts, params);
  let correct = 0;
  let format = 0;
  const samples: Record<string, unknown>[] = [];
  comps.forEach((c, i) => {
    const p = problems[i] as Problem;
    const text = tok.decode(c.tokens, { skipSpecialTokens: true });
    const v = task.verify(p, text);
    if (v.correct) correct++;
    if (v.format) format++;
    if (i < logSamples)
      samples.push({ step, prompt: p.prompt, completion: text, answer: p.answer ?? null, correct: v.correct });
  });
  return { accuracy: correct / comps.length, format: format / comps.length, samples };
}

export interface EvalOptions {
  task: string;
  taskOptions?: Record<string, unknown>;
  problems?: number;
  seed?: number;
  maxNewTokens?: number;
}

/** A model dir, or a run dir (its `final/` model). */
export function resolveModelDir(p: string): string {
  if (existsSync(join(p, "config.json"))) return p;
  if (existsSync(join(p, "final", "config.json"))) return join(p, "final");
  throw new CohortError(`${p} is neither a model directory (config.json) nor a finished run (final/config.json)`);
}

export function evaluateModelDir(path: string, o: EvalOptions): { accuracy: number; format: number; problems: number } {
  const dir = readModelDir(resolveModelDir(path));
  if (dir.tokenizer === undefined) throw new CohortError(`${path} has no tokenizer.json`);
  const tok = tokenizerFromFiles(dir.tokenizer.json, dir.tokenizer.config);
  const model = CausalLM.fromHF(dir.config, dir.tensors);
  for (const t of Object.values(dir.tensors)) t.dispose();
  try {
    const task = createTask(o.task, o.taskOptions ?? {}, "task");
    const rng = Rng.fromSeed(BigInt(o.seed ?? 0) ^ 0x5eed5eedn);
    const problems = Array.from({ length: o.problems ?? 200 }, () => task.sample(rng, "eval"));
    const sampler = new LocalSampler(model, { padId: tok.padId, maxBatch: 128 });
    const r = evaluateProblems(sampler, tok, task, problems, {
      maxTokens: o.maxNewTokens ?? 32,
      temperature: 0,
      stopTokenIds: [...new Set([...eosIds(model.config), tok.eosId])],
    });
    return { accuracy: r.accuracy, format: r.format, problems: problems.length };
  } finally {
    model.dispose();
  }
}

export interface EndpointEvalOptions extends EvalOptions {
  /** An OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  /** The served model id. */
  model: string;
  /** Environment variable holding the API key. */
  apiKeyEnv?: string;
  /** A Training-Free GRPO experience library (experiences.json) injected into every prompt. */
  experiences?: string;
  /** Default 0 (greedy). */
  temperature?: number;
  /** The answer tag named in the prompt. Default "answer". */
  answerTag?: string;
}

/**
 * Accuracy of a model behind an OpenAI-compatible chat endpoint on a task's held-out split (the same problems as
 * `evaluateModelDir` for the same seed), prompted as Training-Free GRPO prompts its policy, optionally with an
 * experience library injected.
 */
export async function evaluateEndpoint(
  o: EndpointEvalOptions,
): Promise<{ accuracy: number; format: number; problems: number; experiences: number; failures: number }> {
  const { OpenAIClient } = await import("../serve/client.js");
  const { evaluateWithLibrary } = await import("../tfgrpo/run.js");
  const { ExperienceLibrary, loadLibrary } = await import("../tfgrpo/library.js");
  let apiKey: string | undefined;
  if (o.apiKeyEnv !== undefined) {
    apiKey = process.env[o.apiKeyEnv];
    if (!apiKey) throw new CohortError(`the environment variable ${o.apiKeyEnv} is not set; export the API key in it`);
  }
  const client = new OpenAIClient({ baseUrl: o.baseUrl, ...(apiKey ? { apiKey } : {}) });
  const task = createTask(o.task, o.taskOptions ?? {}, "task");
  const rng = Rng.fromSeed(BigInt(o.seed ?? 0) ^ 0x5eed5eedn);
  const problems = Array.from({ length: o.problems ?? 200 }, () => task.sample(rng, "eval"));
  const lib = o.experiences !== undefined ? loadLibrary(o.experiences) : new ExperienceLibrary();
  const ep = { client, model: o.model, temperature: o.temperature ?? 0, maxTokens: o.maxNewTokens ?? 1024 };
  const r = await evaluateWithLibrary(ep, task, problems, lib, o.answerTag ?? "answer", ep.temperature);
  return { ...r, experiences: lib.size };
}
