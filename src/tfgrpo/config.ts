/**
 * The run configuration of `cohort tfgrpo` (Training-Free GRPO, arXiv 2510.08191, ALGORITHMS.md §B.28
 * [CODE]): a YAML file validated by zod. Defaults follow the reference code (`train.py`): 2 epochs, 64
 * questions per step, G = 5 rollouts, rollout temperature 0.7, at most one operation per group critique.
 * @module
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { configErrorFromIssues } from "../config-issue.js";
import { ConfigError } from "../errors.js";

const endpoint = {
  /** e.g. http://127.0.0.1:8000/v1 (vLLM, SGLang, llama.cpp, `cohort serve`, a hosted API). */
  baseUrl: z.string().url(),
  /** The model id the endpoint serves. */
  model: z.string().min(1),
  /** Name of the environment variable holding the API key (never the key itself). */
  apiKeyEnv: z.string().min(1).optional(),
  timeoutMs: z.number().int().positive().default(300_000),
  maxRetries: z.number().int().min(0).default(4),
  /** Requests in flight at most. */
  maxConcurrency: z.number().int().positive().default(16),
};

export const tfgrpoConfigSchema = z.strictObject({
  /** Run name; the run directory is `<outputDir>/<name>`. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "use letters, digits, '.', '_' and '-' only")
    .default("tfgrpo"),
  outputDir: z.string().default("runs"),
  /** Seeds the problem draw and the order within each epoch. */
  seed: z.number().int().min(0).default(0),
  /** A built-in task (arithmetic, countdown) with its options… */
  task: z.strictObject({ name: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).optional(),
  /** …or a JSONL dataset (prompt/answer fields). */
  dataset: z
    .strictObject({ path: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) })
    .optional(),
  /** The frozen LLM that solves the problems (rollouts). */
  policy: z.strictObject({
    ...endpoint,
    /** Rollout temperature; the reference uses 0.7. */
    temperature: z.number().min(0).default(0.7),
    maxTokens: z.number().int().positive().default(4096),
  }),
  /**
   * The LLM that summarises rollouts, critiques groups and revises the library. Default: the policy's
   * endpoint and model (the reference uses one model for everything).
   */
  judge: z
    .strictObject({
      baseUrl: z.string().url().optional(),
      model: z.string().min(1).optional(),
      apiKeyEnv: z.string().min(1).optional(),
      temperature: z.number().min(0).default(0.3),
      maxTokens: z.number().int().positive().default(4096),
    })
    .default({ temperature: 0.3, maxTokens: 4096 }),
  train: z
    .strictObject({
      /** Passes over the training problems. */
      epochs: z.number().int().positive().default(2),
      /** Questions per library update. */
      batchSize: z.number().int().positive().default(64),
      /** G: rollouts per question; groups whose rewards differ get a semantic advantage. */
      groupSize: z.number().int().min(2).default(5),
      /** Training problems (drawn once from the train split; a dataset uses up to this many lines). */
      problems: z.number().int().positive().default(100),
      /** Operations kept per group critique (the reference keeps 1). */
      maxOpsPerGroup: z.number().int().positive().default(1),
      /** Attempts at a parseable batch revision plan before the requests are applied as they are. */
      revisionAttempts: z.number().int().positive().default(3),
    })
    .default({ epochs: 2, batchSize: 64, groupSize: 5, problems: 100, maxOpsPerGroup: 1, revisionAttempts: 3 }),
  eval: z
    .strictObject({
      /** Held-out problems scored after every epoch with the library (and once without it); 0 = none. */
      problems: z.number().int().min(0).default(0),
      /** Temperature of evaluation rollouts. */
      temperature: z.number().min(0).default(0),
    })
    .default({ problems: 0, temperature: 0 }),
  /** The answer tag the task's verifier reads (`<answer>…</answer>`), named in the rollout prompt. */
  answerTag: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_-]*$/)
    .default("answer"),
});

export type TfgrpoConfig = z.output<typeof tfgrpoConfigSchema> & { configFile?: string };

/** Validates a parsed config object (defaults filled). */
export function parseTfgrpoConfig(raw: unknown, configFile?: string): TfgrpoConfig {
  const r = tfgrpoConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    throw configErrorFromIssues(r.error.issues, raw, "check the spelling", tfgrpoConfigSchema);
  }
  const c = r.data;
  if ((c.task === undefined) === (c.dataset === undefined)) {
    throw new ConfigError(
      c.task === undefined
        ? "no data: set `task` (a built-in task such as arithmetic) or `dataset` (a JSONL file with prompt and answer)"
        : "both `task` and `dataset` are set; keep one",
      c.task === undefined ? "task" : "dataset",
    );
  }
  return configFile === undefined ? c : { ...c, configFile };
}

/** Reads and validates a YAML config file. */
export function loadTfgrpoConfig(file: string): TfgrpoConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new ConfigError(`cannot read config file ${file}; check the path`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (e) {
    throw new ConfigError(`${file} is not valid YAML: ${(e as Error).message.split("\n")[0]}`);
  }
  if (typeof raw !== "object" || Array.isArray(raw))
    throw new ConfigError(`${file}: the top level must be a mapping of keys`);
  return parseTfgrpoConfig(raw, file);
}
