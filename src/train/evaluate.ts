/**
 * Held-out evaluation, one function for the training loop and `cohort eval`: completions of held-out problems
 * by the local sampler, checked by the task's verifier and scored by every reward function. What counts as
 * correct (`eval_accuracy`) is the metric: the verifier, or a reward function at a pass mark (`eval.metric`,
 * `cohort eval --reward … --pass …`), so that accuracy never silently means "has <answer> tags".
 * @module
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { CohortError, ConfigError } from "../errors.js";
import { eosIds } from "../model/config.js";
import type { CausalLM } from "../model/llama.js";
import { LocalSampler, type SamplingParams } from "../model/sampler.js";
import { toRewardSample } from "../reward/builtin.js";
import { type ScoreOptions, scoreAll } from "../reward/score.js";
import type { NamedReward } from "../reward/types.js";
import { type JsonlDataset, jsonlTask, loadJsonl } from "../task/jsonl.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import { type PromptFormat, templatedDataset } from "../task/template.js";
import type { Problem, Task } from "../task/types.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { latestCheckpoint } from "./checkpoint.js";

/** What `eval_accuracy` counts: the task's verifier, or reward `name` ≥ `pass`. */
export type EvalMetric = { kind: "verifier" } | { kind: "reward"; name: string; pass: number };

/** The metric in words, for logs and `--json`. */
export function describeMetric(m: EvalMetric): string {
  return m.kind === "verifier" ? "the task's verifier" : `reward "${m.name}" ≥ ${m.pass}`;
}

export interface EvalResult {
  /** Fraction of the held-out completions the metric counts as correct. */
  accuracy: number;
  /** Fraction whose answer the verifier could read (tagged: one <answer> span; plain: non-empty). */
  format: number;
  /** The first problems' prompts, completions, verdicts and reward scores, for samples.jsonl. */
  samples: Record<string, unknown>[];
  /** Further keys logged with eval_accuracy (`eval_reward/<fn>`: each reward's held-out mean). */
  metrics?: Record<string, number>;
  /** Held-out problems evaluated. */
  n?: number;
  /** The metric's reward, mean over the rows it scored (null when none); absent for the verifier metric. */
  rewardMean?: number | null;
  /** The verifier's own accuracy and format rate, whatever the metric. */
  verifier?: { accuracy: number; format: number };
  /** Every reward's held-out mean (null when it scored no row). */
  rewardMeans?: Record<string, number | null>;
}

export interface HeldOutOptions {
  /** Rows written to `samples` (default 0). */
  logSamples?: number;
  /** The training step the rows are logged under. */
  step?: number;
  /** Reward functions scored on every completion (their means are logged; the metric may read one). */
  rewards?: readonly NamedReward[];
  /** Default: the verifier. */
  metric?: EvalMetric;
  score?: ScoreOptions;
}

/** Mean of the finite values, or null when there are none. */
function meanOf(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return v.length > 0 ? v.reduce((a, b) => a + b, 0) / v.length : null;
}

/**
 * Accuracy (by the metric) and format rate of `sampler` on `problems` (prompts with BOS first), each reward's
 * held-out mean, and the first `logSamples` rows.
 */
export async function evaluateProblems(
  sampler: LocalSampler,
  tok: Tokenizer,
  task: Task,
  problems: readonly Problem[],
  params: SamplingParams,
  o: HeldOutOptions = {},
): Promise<EvalResult> {
  const metric = o.metric ?? { kind: "verifier" };
  const rewards = o.rewards ?? [];
  const k = metric.kind === "reward" ? rewards.findIndex((r) => r.name === metric.name) : -1;
  if (metric.kind === "reward" && k < 0)
    throw new ConfigError(
      `no reward function named "${metric.name}"; configured: ${rewards.map((r) => r.name).join(", ") || "none"}`,
      "eval.metric.reward",
    );
  const prompts = problems.map((p) =>
    tok.bosId !== null ? [tok.bosId, ...tok.encode(p.prompt)] : tok.encode(p.prompt),
  );
  const comps = sampler.generateSync(prompts, params);
  const texts = comps.map((c) => tok.decode(c.tokens, { skipSpecialTokens: true }));
  const verdicts = problems.map((p, i) => task.verify(p, texts[i] as string));
  const scored =
    rewards.length > 0
      ? (
          await scoreAll(
            rewards,
            problems.map((p, i) => toRewardSample(p, texts[i] as string)),
            o.score ?? {},
          )
        ).rewards
      : [];
  const n = Math.max(1, comps.length);
  const correct = verdicts.map((v, i) =>
    k < 0 ? v.correct : ((scored[k]?.[i] ?? Number.NaN) as number) >= (metric as { pass: number }).pass,
  );
  const verifier = {
    accuracy: verdicts.filter((v) => v.correct).length / n,
    format: verdicts.filter((v) => v.format).length / n,
  };
  const rewardMeans = Object.fromEntries(rewards.map((r, j) => [r.name, meanOf(scored[j] ?? [])]));
  const metrics: Record<string, number> = {};
  for (const [name, m] of Object.entries(rewardMeans)) if (m !== null) metrics[`eval_reward/${name}`] = m;
  const samples = problems.slice(0, o.logSamples ?? 0).map((p, i) => ({
    step: o.step ?? 0,
    kind: "eval",
    prompt: p.prompt,
    completion: texts[i],
    answer: p.answer ?? null,
    correct: correct[i],
    ...(rewards.length > 0
      ? { rewards: Object.fromEntries(rewards.map((r, j) => [r.name, scored[j]?.[i] ?? null])) }
      : {}),
  }));
  const r: EvalResult = {
    accuracy: correct.filter(Boolean).length / n,
    format: verifier.format,
    samples,
    metrics,
    n: comps.length,
    verifier,
    rewardMeans,
  };
  if (k >= 0) r.rewardMean = rewardMeans[(rewards[k] as NamedReward).name] ?? null;
  return r;
}

/**
 * The warning for completions the built-in verifier never reads while a reward function scores them (a
 * dataset of bare answers under the tagged format): null when it does not apply.
 */
export function verifierWarning(
  r: EvalResult,
  texts: { example?: string; tag?: string; dataset: boolean; answerFormat?: "tagged" | "plain" },
): string | null {
  if (r.verifier === undefined || r.verifier.format > 0 || r.verifier.accuracy > 0) return null;
  if (texts.answerFormat === "plain") return null;
  const scoring = Object.entries(r.rewardMeans ?? {}).find(
    ([name, m]) => m !== null && m > 0 && name !== "correctness" && name !== "format",
  );
  if (scoring === undefined) return null;
  const tag = texts.tag ?? "answer";
  const eg = texts.example !== undefined ? ` (e.g. ${JSON.stringify(texts.example.slice(0, 40))})` : "";
  return (
    `your completions never contain <${tag}>…</${tag}>${eg}, so the built-in verifier (and the correctness and ` +
    `format rewards) read 0 on every held-out row, while reward "${scoring[0]}" averages ${(scoring[1] as number).toFixed(3)}. ` +
    (texts.dataset
      ? "If the answers are bare, set dataset.options.answerFormat: plain; "
      : "If the answers are bare, score them with your own reward; ") +
    "eval.metric: {reward: NAME, pass: 1} makes eval_accuracy count by a reward function"
  );
}

export interface EvalOptions {
  task: string;
  taskOptions?: Record<string, unknown>;
  problems?: number;
  seed?: number;
  maxNewTokens?: number;
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** Whether `p` is a training run directory (its config.json is a run's, not a model's). */
export function isRunDirectory(p: string): boolean {
  return (
    isDir(p) &&
    !existsSync(join(p, "tokenizer.json")) &&
    (isDir(join(p, "checkpoints")) || existsSync(join(p, "history.jsonl")) || isDir(join(p, "final")))
  );
}

/**
 * What to load for a model, run or checkpoint path: a model directory as is; a run directory's `final/` model,
 * or with `checkpoint` (`latest` or a step) one of its checkpoints; a checkpoint directory as is.
 */
export function resolveModelPath(p: string, checkpoint?: "latest" | number): string {
  if (!existsSync(p))
    throw new CohortError(`${p} does not exist; pass a model directory, a run directory or a checkpoint`);
  if (isRunDirectory(p)) {
    if (checkpoint === undefined) {
      if (existsSync(join(p, "final", "config.json"))) return join(p, "final");
      const ck = latestCheckpoint(p);
      throw new CohortError(
        `${p} is a run without a final/ model (it has not finished)${ck !== null ? `; evaluate its latest checkpoint with --checkpoint latest (${ck})` : " and no checkpoint yet"}`,
      );
    }
    if (checkpoint === "latest") {
      const ck = latestCheckpoint(p);
      if (ck === null) throw new CohortError(`${p} has no checkpoint yet (checkpoints/ is empty)`);
      return ck;
    }
    const dir = join(p, "checkpoints", `step-${String(checkpoint).padStart(6, "0")}`);
    if (!isDir(dir)) {
      const ck = latestCheckpoint(p);
      throw new CohortError(
        `${p} has no checkpoint of step ${checkpoint}${ck !== null ? `; the latest is ${ck} (--checkpoint latest)` : ""}`,
      );
    }
    return dir;
  }
  if (checkpoint !== undefined)
    throw new CohortError(`--checkpoint ${checkpoint} needs a run directory; ${p} is not one`);
  if (existsSync(join(p, "config.json")) || existsSync(join(p, "weights.safetensors"))) return p;
  throw new CohortError(
    `${p} is neither a model directory (config.json), a run directory (final/ or checkpoints/) nor a checkpoint`,
  );
}

/** A model dir, or a run dir (its `final/` model). */
export function resolveModelDir(p: string): string {
  return resolveModelPath(p);
}

/** Where `cohort eval` takes its held-out problems from. */
export type EvalData =
  | { kind: "task"; name: string; options?: Record<string, unknown> }
  | {
      kind: "dataset";
      path: string;
      options?: Record<string, unknown>;
      /** `all` (default): every line of the file; `eval`/`train`: one side of its hash split (or evalPath). */
      split?: "all" | "eval" | "train";
      format?: PromptFormat;
    }
  | { kind: "env"; name: string; options?: Record<string, unknown> };

export interface ModelEvalOptions {
  /** A model directory, a run directory or a checkpoint. */
  path: string;
  checkpoint?: "latest" | number;
  data: EvalData;
  /** Reward references (`./r.ts#score`, built-in names); the first is the metric unless `metricReward` names one. */
  rewards?: string[];
  /** The reward the accuracy counts (default the first of `rewards`). */
  metricReward?: string;
  /** Pass mark of the metric reward (default 1). */
  pass?: number;
  /** Problems of a task or environment (default 200); at most this many lines of a dataset (default all). */
  problems?: number;
  seed?: number;
  maxNewTokens?: number;
  /** 0 = greedy (default). */
  temperature?: number;
  /** Sample rows to return. */
  samples?: number;
  score?: ScoreOptions;
  /** The model's place (`cohort serve`'s loader: LoRA checkpoints merged). */
  device?: string;
}

export interface ModelEvalResult {
  accuracy: number;
  /** The metric reward's held-out mean (null without a reward metric or when it scored nothing). */
  reward_mean: number | null;
  n: number;
  format: number;
  metric: string;
  model: string;
  rewards: Record<string, number | null>;
  samples: Record<string, unknown>[];
  warning?: string;
}

/** Evaluates a saved model (or a run's final model or checkpoint) on a task, a dataset or an environment. */
export async function evaluateModel(o: ModelEvalOptions): Promise<ModelEvalResult> {
  const { resolveRewards } = await import("../reward/load.js");
  const { loadServedModel } = await import("../serve/load.js");
  const path = resolveModelPath(o.path, o.checkpoint);
  // bad input first (the data, the rewards, the metric), before the model is loaded
  let task: Task | undefined;
  let lines: JsonlDataset | undefined;
  if (o.data.kind === "task") task = createTask(o.data.name, o.data.options ?? {}, "--options");
  if (o.data.kind === "dataset") {
    lines = await loadJsonl(o.data.path, o.data.options ?? {});
    task = jsonlTask(lines);
  }
  if (o.data.kind === "env") {
    const { createEnv } = await import("../env/registry.js");
    createEnv(o.data.name, o.data.options ?? {}, "--options");
    if ((o.rewards ?? []).length > 0)
      throw new ConfigError("an environment scores its own episodes (the success rate); remove --reward", "--reward");
  }
  const rewards = await resolveRewards(o.rewards ?? [], { ...(task ? { task } : {}), path: "--reward" });
  const metricName = o.metricReward ?? rewards[0]?.name;
  if (metricName !== undefined && !rewards.some((r) => r.name === metricName))
    throw new ConfigError(
      `no reward function named "${metricName}"; the --reward functions are named: ${rewards.map((r) => r.name).join(", ")}`,
      "--metric",
    );
  const metric: EvalMetric =
    metricName === undefined ? { kind: "verifier" } : { kind: "reward", name: metricName, pass: o.pass ?? 1 };
  const served = loadServedModel(path, o.device === undefined ? {} : { device: o.device as never });
  const { model, tokenizer: tok } = served;
  try {
    if (o.data.kind === "env") return await evaluateEnv(model, tok, o, path);
    let problems: Problem[];
    if (lines !== undefined) {
      const d = o.data as Extract<EvalData, { kind: "dataset" }>;
      const ds = templatedDataset(lines, tok, d.format ?? {});
      const split = d.split ?? "all";
      const pool = split === "all" ? ds.problems : split === "eval" ? ds.eval : ds.train;
      if (pool.length === 0) throw new CohortError(`${d.path}: the ${split} split has no lines`);
      problems = o.problems === undefined ? pool : pool.slice(0, o.problems);
    } else {
      const rng = Rng.fromSeed(BigInt(o.seed ?? 0) ^ 0x5eed5eedn);
      const t = task as Task;
      problems = Array.from({ length: o.problems ?? 200 }, () => t.sample(rng, "eval"));
    }
    const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
    const seeds = problems.map((_, i) => (o.seed ?? 0) * 100_003 + i);
    const r = await evaluateProblems(
      sampler,
      tok,
      task as Task,
      problems,
      {
        maxTokens: o.maxNewTokens ?? 32,
        temperature: o.temperature ?? 0,
        stopTokenIds: [...new Set([...eosIds(model.config), tok.eosId])],
        seed: seeds,
      },
      { logSamples: o.samples ?? 0, rewards, metric, ...(o.score ? { score: o.score } : {}) },
    );
    const warning = verifierWarning(r, {
      ...(r.samples[0] ? { example: String(r.samples[0].completion) } : {}),
      dataset: lines !== undefined,
      ...(lines ? { answerFormat: lines.options.answerFormat } : {}),
    });
    return {
      accuracy: r.accuracy,
      reward_mean: r.rewardMean ?? null,
      n: r.n ?? problems.length,
      format: r.format,
      metric: describeMetric(metric),
      model: path,
      rewards: r.rewardMeans ?? {},
      samples: r.samples.map(({ step: _s, kind: _k, ...rest }) => rest),
      ...(warning !== null ? { warning } : {}),
    };
  } finally {
    model.dispose();
  }
}

/** An environment's held-out success rate (one episode per held-out task). */
async function evaluateEnv(
  model: CausalLM,
  tok: Tokenizer,
  o: ModelEvalOptions,
  path: string,
): Promise<ModelEvalResult> {
  const { envConfigSchema } = await import("../env/registry.js");
  const { EpisodeSource } = await import("../env/source.js");
  const d = o.data as Extract<EvalData, { kind: "env" }>;
  const source = new EpisodeSource(envConfigSchema.parse({ name: d.name, options: d.options ?? {} }), tok);
  const seed = o.seed ?? 0;
  const rng = Rng.fromSeed(BigInt(seed) ^ 0x5eed5eedn);
  const problems = Array.from({ length: o.problems ?? 200 }, () => source.task.sample(rng, "eval"));
  const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
  const r = source.evaluate(
    sampler,
    problems,
    problems.map((_, i) => seed * 100_003 + i),
    { temperature: o.temperature ?? 0, stopTokenIds: [...new Set([...eosIds(model.config), tok.eosId])] },
    o.samples ?? 0,
  );
  return {
    accuracy: r.accuracy,
    reward_mean: r.metrics["env/return_mean"] ?? null,
    n: problems.length,
    format: r.format,
    metric: "the environment's success rate",
    model: path,
    rewards: {},
    samples: r.samples.map(({ step: _s, ...rest }) => rest),
  };
}

/** Task accuracy of a model directory (or a run's final model) by the task's verifier. */
export async function evaluateModelDir(
  path: string,
  o: EvalOptions,
): Promise<{ accuracy: number; format: number; problems: number }> {
  const r = await evaluateModel({
    path,
    data: { kind: "task", name: o.task, ...(o.taskOptions ? { options: o.taskOptions } : {}) },
    ...(o.problems !== undefined ? { problems: o.problems } : {}),
    ...(o.seed !== undefined ? { seed: o.seed } : {}),
    ...(o.maxNewTokens !== undefined ? { maxNewTokens: o.maxNewTokens } : {}),
  });
  return { accuracy: r.accuracy, format: r.format, problems: r.n };
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
