/**
 * The run configuration of `cohort train`: a YAML file validated by a zod schema. Every field has a
 * default except the model; unknown keys, wrong types and impossible combinations fail before any work
 * starts with a `ConfigError` that names the key path, the value and what is allowed.
 *
 * The algorithm section starts from a preset (`preset: grpo`) and `algo:` overrides any of its fields.
 * @module
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { advantageEstimators } from "../algo/advantage.js";
import { RANKING_SOURCES, TRAIN_SOURCES } from "../algo/component.js";
import { type AlgoConfig, checkNeeds, configNeeds, parseAlgoConfig } from "../algo/config.js";
import { gates } from "../algo/gates.js";
import { regularizers } from "../algo/regularizers.js";
import { configErrorFromIssues } from "../config-issue.js";
import { createEnv, envConfigSchema } from "../env/registry.js";
import { ConfigError } from "../errors.js";
import { getPreset, resolvePreset } from "../presets/index.js";
import { rewardName } from "../reward/load.js";
import { preferenceEntrySchema } from "../reward/preference.js";
import { jsonlOptions } from "../task/jsonl.js";
import { parseOptions } from "../task/options.js";
import { isRankingTask } from "../task/ranking.js";
import { createTask } from "../task/registry.js";
import { DEVICE_NAME } from "../tensor/index.js";
import { agentConfigSchema } from "./agent-config.js";
import { checkSelfPlayConfig } from "./selfplay-source.js";

const rewardEntry = z.union([
  z.string().min(1),
  z.strictObject({
    /** Built-in name (`correctness`, `format`) or `./module.ts#export`. */
    fn: z.string().min(1),
    name: z.string().min(1).optional(),
    /** Reward used when the function throws, times out or returns NaN; null = not applicable. */
    fallback: z.number().nullable().optional(),
    /** Weight in the weighted sum (default 1). */
    weight: z.number().optional(),
  }),
]);

import { CONTROL_SOURCES, checkControlConfig, policyConfigSchema } from "../control/config.js";
import { samplerSchema } from "./sampler-config.js";

export const trainConfigSchema = z.strictObject({
  /** Run name; the run directory is `<outputDir>/<name>`. */
  name: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, "use letters, digits, '.', '_' and '-' only")
    .default("run"),
  outputDir: z.string().default("runs"),
  /** Seeds data order, sampling and initialisation. The same seed gives the same run. */
  seed: z.number().int().min(0).default(0),
  /** CPU threads for libtorch (default: all cores, or OMP_NUM_THREADS when set). */
  threads: z.number().int().positive().optional(),
  /** The language model (absent with `policy`). */
  model: z
    .strictObject({
      /** A Hugging Face model directory (config.json, model.safetensors, tokenizer files). Relative to the config file. */
      path: z.string().min(1),
      /**
       * Where the policy (and the reference model) live and train: `cpu`, `cuda` or `cuda:N` (a CUDA build of
       * the addon; docs/GPU.md). Tokens are filtered and drawn on the device.
       */
      device: z.string().regex(DEVICE_NAME, 'use "cpu", "cuda" or "cuda:N"').default("cpu"),
      /**
       * `fp32`, or `bf16`: projections and attention in bf16 with fp32 master weights, residual stream, norms,
       * lm_head, log-probs and losses (src/model/llama.ts `Precision`).
       */
      precision: z.enum(["fp32", "bf16"]).default("fp32"),
      /** LoRA adapters instead of full fine-tuning; the reference policy is then the model with adapters off. */
      lora: z
        .strictObject({
          rank: z.number().int().positive().default(8),
          alpha: z.number().positive().default(16),
          targets: z.array(z.enum(["q", "k", "v", "o", "gate", "up", "down"])).default(["q", "v"]),
        })
        .optional(),
    })
    .optional(),
  /**
   * A policy that is not a language model (src/control): `{kind: tabular | categorical_mlp | gaussian_mlp, …}`,
   * trained on a control environment (`env: {name: garnet | pendulum | cartpole}`) instead of `model`.
   */
  policy: policyConfigSchema.optional(),
  /** A built-in task (arithmetic, countdown) with its options… */
  task: z.strictObject({ name: z.string().min(1), options: z.record(z.string(), z.unknown()).default({}) }).optional(),
  /** …or a JSONL dataset (prompt/answer fields; other fields are passed to reward functions). */
  dataset: z
    .strictObject({
      path: z.string().min(1),
      options: z.record(z.string(), z.unknown()).default({}),
      /**
       * A row the model cannot take (its prompt has a character the tokenizer lacks, or prompt + maxNewTokens
       * exceeds the model's positions): `error` refuses the dataset at start-up naming every such file:line;
       * `skip` leaves those rows out and logs how many.
       */
      onBadRow: z.enum(["error", "skip"]).default("error"),
      /**
       * How a line becomes prompt text (src/task/template.ts): `text` as written, `chat` through the model's chat
       * template, `auto` (default) chat for conversational (`messages`) lines and text for prompt lines.
       */
      template: z.enum(["auto", "text", "chat"]).default("auto"),
      /** A system prompt: the first chat turn, or a line before the prompt in `text`. */
      system: z.string().optional(),
    })
    .optional(),
  /**
   * …or a multi-turn environment (src/env: maze, calculator): episodes are the rows, the episode return is the
   * reward, and the held-out evaluation is the success rate.
   */
  env: envConfigSchema.optional(),
  /**
   * Your own agent (any SDK speaking OpenAI's chat completions) played against a recording endpoint over the
   * policy: the tasks of `task` or `dataset` are its tasks, `run`'s return value is the reward (agent-config.ts).
   */
  agent: agentConfigSchema.optional(),
  /** Reward functions: built-in names or `./module.ts#export`. */
  rewards: z.array(rewardEntry).min(1).default(["correctness", "format"]),
  /**
   * Preferences instead of rewards: a built-in ("verifier", "rps_style") or `./module.ts#export` returning
   * P(a ≻ b). Each group's completions are compared pairwise and each one's reward is its win rate against the
   * rest of its group (src/reward/preference.ts); `rewards` must then be left out.
   */
  preference: preferenceEntrySchema.optional(),
  rewardTimeoutMs: z.number().int().positive().default(10_000),
  rewardConcurrency: z.number().int().positive().default(8),
  /** The method: a preset name (`cohort presets` lists them). */
  preset: z.string().default("grpo"),
  /** Overrides of the preset's algorithm fields (advantage, gate, regularizers, aggregate, …). */
  algo: z.record(z.string(), z.unknown()).default({}),
  train: z
    .strictObject({
      /** Optimizer steps over generation batches (one generation batch per step). */
      steps: z.number().int().positive().default(100),
      /** B: prompts per step. */
      promptsPerStep: z.number().int().positive().default(16),
      /** G: completions per prompt. */
      groupSize: z.number().int().min(1).default(8),
      /** μ: optimisation passes over each generation batch (TRL num_iterations). */
      innerIterations: z.number().int().positive().default(1),
      /** Optimizer steps per pass: the generation batch is split into this many minibatches. */
      miniBatches: z.number().int().positive().default(1),
      /** Sequences per forward pass inside a minibatch (gradients accumulate; counts stay global). */
      microBatchSize: z.number().int().positive().default(64),
      lr: z.number().positive().default(1e-4),
      schedule: z.enum(["constant", "linear", "cosine"]).default("constant"),
      warmupSteps: z.number().int().min(0).default(0),
      minLrRatio: z.number().min(0).max(1).default(0),
      weightDecay: z.number().min(0).default(0),
      betas: z.tuple([z.number().min(0).max(1), z.number().min(0).max(1)]).default([0.9, 0.99]),
      /** Clip the global gradient norm to this value (0 = no clipping). */
      maxGradNorm: z.number().min(0).default(1),
      /**
       * How micro-batches are run: "plain" packs every row with its own prompt copy; "shared-prefix"
       * (Prefix Grouper, ALGORITHMS.md B.24) encodes each distinct prompt once and lets its completions
       * attend to that one prefix — same log-probs and gradients, less compute for long prompts.
       */
      forward: z.enum(["plain", "shared-prefix"]).default("plain"),
      /**
       * Data parallel: start each gradient bucket's all-reduce during the backward pass of an optimizer step's
       * last micro-batch, as soon as its gradients are in (as PyTorch's DDP does); false: all buckets after
       * the backward passes. The sums are the same either way (src/parallel/data-parallel.ts).
       */
      overlapAllreduce: z.boolean().default(true),
      /**
       * Activation checkpointing per transformer layer (arXiv:1604.06174): the loss passes keep only each
       * layer's input and recompute the layer in the backward pass — about one more forward of the layers
       * per backward, for activation memory of one layer instead of all of them. Same gradients. CPU only,
       * `forward: plain` only.
       */
      activationCheckpointing: z.boolean().default(false),
    })
    .default({
      steps: 100,
      promptsPerStep: 16,
      groupSize: 8,
      innerIterations: 1,
      miniBatches: 1,
      microBatchSize: 64,
      lr: 1e-4,
      schedule: "constant",
      warmupSteps: 0,
      minLrRatio: 0,
      weightDecay: 0,
      betas: [0.9, 0.99],
      maxGradNorm: 1,
      forward: "plain",
      overlapAllreduce: true,
      activationCheckpointing: false,
    }),
  sampling: z
    .strictObject({
      temperature: z.number().positive().default(1),
      topK: z.number().int().min(0).default(0),
      topP: z.number().gt(0).max(1).default(1),
      minP: z.number().min(0).max(1).default(0),
      /** Max completion tokens; also L_max of Dr. GRPO's normaliser and the overlong penalty. */
      maxNewTokens: z.number().int().positive().default(32),
      stop: z.array(z.string().min(1)).default([]),
      /**
       * Weights the local rollouts decode with: `fp32` (the policy's own) or `int8` (weight-only, per output
       * channel, quantized from the current weights at every rollout; src/model/llama.ts `RolloutPrecision`).
       * Training and held-out evaluation stay at `model.precision`. int8 needs the local sampler and an fp32
       * CPU model; pair it with `sampler.importanceSampling` to correct the sampler/trainer mismatch.
       */
      precision: z.enum(["fp32", "int8"]).default("fp32"),
    })
    .default({ temperature: 1, topK: 0, topP: 1, minP: 0, maxNewTokens: 32, stop: [], precision: "fp32" }),
  /** Rollout sampler: `{kind: local}` (default) or `{kind: openai, baseUrl, model, …}`. */
  sampler: samplerSchema.default({ kind: "local" }),
  eval: z
    .strictObject({
      /** Evaluate every N steps (and at step 0 and the end); 0 = never. */
      everySteps: z.number().int().min(0).default(10),
      /** Held-out problems per evaluation (fixed set, drawn once from the eval split). */
      problems: z.number().int().positive().default(200),
      /** Sampling temperature for evaluation; 0 = greedy. */
      temperature: z.number().min(0).default(0),
      /**
       * Rows written to samples.jsonl per evaluation: this many held-out completions (with every reward's score),
       * and whole groups of the step's sampled rollouts (with every reward's score and the advantage) until at
       * least this many rows.
       */
      logSamples: z.number().int().min(0).default(4),
      /**
       * What `eval_accuracy` counts: a held-out completion is correct when reward `reward` is ≥ `pass`. Default:
       * the task's verifier when the built-in `correctness` reward is configured (or there is no reward but the
       * environment's), else the success reward of algo.rollout.success (its `reward`, else the first one).
       */
      metric: z
        .strictObject({
          reward: z.string().min(1).optional(),
          pass: z.number().default(1),
        })
        .optional(),
    })
    .default({ everySteps: 10, problems: 200, temperature: 0, logSamples: 4 }),
  checkpoint: z
    .strictObject({
      /** Save every N steps (and at the end); 0 = only at the end. */
      everySteps: z.number().int().min(0).default(25),
      /** Checkpoints kept on disk (oldest removed first). */
      keep: z.number().int().positive().default(2),
    })
    .default({ everySteps: 25, keep: 2 }),
});

export type TrainConfigInput = z.input<typeof trainConfigSchema>;
export type TrainConfig = z.output<typeof trainConfigSchema> & {
  /** The resolved algorithm (preset + overrides), validated. */
  resolvedAlgo: AlgoConfig;
  /** The config file, for resolving relative paths. */
  configFile?: string;
};

/** Sets `a.b.c=value` overrides from the command line (`--set train.lr=3e-4`); values are parsed as YAML. */
export function applySets(raw: Record<string, unknown>, sets: string[]): Record<string, unknown> {
  for (const s of sets) {
    const eq = s.indexOf("=");
    if (eq <= 0) throw new ConfigError(`--set ${s}: expected key.path=value (e.g. --set train.lr=3e-4)`);
    const keys = s.slice(0, eq).split(".");
    let value: unknown;
    try {
      value = parseYaml(s.slice(eq + 1));
    } catch (e) {
      throw new ConfigError(
        `--set ${s}: the value is not valid YAML (${(e as Error).message.split("\n")[0]}); write a number, ` +
          `true/false, a string, a list [a, b] or a mapping {k: v}, and quote a string that contains [ ] { } : or #`,
      );
    }
    let cur: Record<string, unknown> = raw;
    for (const k of keys.slice(0, -1)) {
      const next = cur[k];
      if (next === undefined || next === null) cur[k] = {};
      else if (typeof next !== "object" || Array.isArray(next)) {
        throw new ConfigError(`--set ${s}: "${k}" is not a section`, keys.join("."));
      }
      cur = cur[k] as Record<string, unknown>;
    }
    cur[keys.at(-1) as string] = value;
  }
  return raw;
}

/** Validates a parsed config object (defaults filled, preset resolved, combinations checked). */
export function parseTrainConfig(raw: unknown, configFile?: string): TrainConfig {
  const r = trainConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    throw configErrorFromIssues(
      r.error.issues,
      raw,
      "check the spelling (see the config reference in the README)",
      trainConfigSchema,
    );
  }
  const c = r.data;
  if (c.policy === undefined && c.model === undefined)
    throw new ConfigError(
      "no policy: set `model: {path: …}` (a language model) or `policy: {kind: …}` (src/control)",
      "model",
    );
  if (c.policy !== undefined && c.model !== undefined)
    throw new ConfigError("`model` and `policy` are both set; a run trains one policy, keep one", "policy");
  const sources = [c.task && "task", c.dataset && "dataset", c.env && "env"].filter((x) => x !== undefined);
  if (sources.length !== 1) {
    throw new ConfigError(
      sources.length === 0
        ? "no data: set `task` (a built-in task such as arithmetic or countdown), `dataset` (a JSONL file) or `env` (a multi-turn environment such as maze)"
        : `${sources.length === 2 ? "both " : ""}${sources.map((k) => `\`${k}\``).join(" and ")} are set; keep one`,
      sources[1] ?? "task",
    );
  }
  // task, dataset and environment options are checked now, with their full key path, before any work
  const task = c.task !== undefined ? createTask(c.task.name, c.task.options, "task") : undefined;
  if (c.dataset !== undefined) parseOptions(jsonlOptions, c.dataset.options, "dataset.options");
  const metric = c.eval.metric;
  if (metric !== undefined && c.env !== undefined)
    throw new ConfigError(
      "with `env`, eval_accuracy is the environment's success rate; remove eval.metric",
      "eval.metric",
    );
  if (metric !== undefined && c.preference !== undefined)
    throw new ConfigError(
      "with `preference`, the reward is a win rate against the group, which a held-out completion alone does not " +
        "have; eval_accuracy is the task's verifier. Remove eval.metric",
      "eval.metric",
    );
  if (metric?.reward !== undefined) {
    const names = c.rewards.map((e) => (typeof e === "string" ? rewardName(e) : (e.name ?? rewardName(e.fn))));
    if (!names.includes(metric.reward))
      throw new ConfigError(
        `no reward function named "${metric.reward}"; the configured rewards are named: ${names.join(", ")}`,
        "eval.metric.reward",
      );
  }
  // with `env`, the one reward is the episode return
  if (c.preference !== undefined) checkPreferenceConfig(c, raw);
  if (c.agent !== undefined) checkAgentConfig(c, raw);
  const rewardFunctions =
    c.env !== undefined || c.preference !== undefined || c.agent !== undefined ? 1 : c.rewards.length;
  const algoOverrides = structuredClone(c.algo) as Record<string, unknown>;
  // Dr. GRPO's constant normaliser L_max defaults to the generation limit.
  const aggregate = (algoOverrides.aggregate ?? {}) as Record<string, unknown>;
  const presetAggregate = (getPreset(c.preset).config.aggregate ?? {}) as Record<string, unknown>;
  const mode = aggregate.mode ?? presetAggregate.mode;
  if (
    mode === "seq-mean-token-sum-norm" &&
    aggregate.maxLength === undefined &&
    presetAggregate.maxLength === undefined
  ) {
    algoOverrides.aggregate = { ...aggregate, maxLength: c.sampling.maxNewTokens };
  }
  const weights = c.rewards.map((e) => (typeof e === "string" ? 1 : (e.weight ?? 1)));
  const reward = (algoOverrides.reward ?? {}) as Record<string, unknown>;
  if (reward.weights === undefined && weights.some((w) => w !== 1)) algoOverrides.reward = { ...reward, weights };
  // a preset made for policies that are not language models only (a control environment's own rewards and
  // episodes) is refused for a language model; presets without `policies` run wherever their inputs exist
  const forPolicies = getPreset(c.preset).policies;
  if (c.policy === undefined && forPolicies !== undefined && !forPolicies.includes("language"))
    throw new ConfigError(
      `preset "${c.preset}" applies to ${forPolicies.join(" and ")} policies (set \`policy:\` and a control \`env:\`); this run trains a language model`,
      "preset",
    );
  const resolvedAlgo = resolvePreset(c.preset, algoOverrides, { rewardFunctions, root: "algo" });
  // schedules over the run (MDPO's t_k): the option a regularizer names as its run length defaults to train.steps
  for (const r of resolvedAlgo.regularizers as unknown as Record<string, unknown>[]) {
    const key = regularizers.get(r.type as string).runLength;
    if (key !== undefined && r[key] === undefined) r[key] = c.train.steps;
  }
  if (c.policy !== undefined) checkControlConfig(c, raw, resolvedAlgo);
  else if (c.env !== undefined) checkEnvConfig(c.env, raw, resolvedAlgo);
  checkSelfPlayConfig(c, resolvedAlgo); // Dr. Zero's self-play (env.options.selfPlay)
  if (c.policy === undefined && resolvedAlgo.control !== undefined)
    throw new ConfigError(
      `applies to control policies (\`policy:\`) only; a language-model run trains with AdamW${c.preset ? ` (preset "${c.preset}" is for control policies)` : ""}`,
      "algo.control",
    );
  const weightsLen = resolvedAlgo.reward.weights?.length;
  if (weightsLen !== undefined && weightsLen !== rewardFunctions) {
    throw new ConfigError(
      `${weightsLen} reward weights for ${rewardFunctions} reward functions`,
      "algo.reward.weights",
    );
  }
  if (c.sampler.kind === "openai" && (c.sampler.baseUrl === undefined) === (c.sampler.baseUrls === undefined)) {
    throw new ConfigError(
      "set exactly one of sampler.baseUrl (one endpoint) and sampler.baseUrls (a pool of rollout workers)",
      "sampler.baseUrl",
    );
  }
  if (c.sampler.kind === "openai" && c.sampler.maxStaleness !== undefined) {
    const s = c.sampler;
    if (!s.syncWeights)
      throw new ConfigError(
        "maxStaleness bounds how far workers' weights lag the policy, which only moves with syncWeights: true; turn it on or remove maxStaleness",
        "sampler.maxStaleness",
      );
    if (s.maxStaleness !== undefined && s.maxStaleness < s.syncEvery - 1)
      throw new ConfigError(
        `with syncEvery ${s.syncEvery} workers lag up to ${s.syncEvery - 1} versions between pushes, more than maxStaleness ${s.maxStaleness}; raise maxStaleness or lower syncEvery`,
        "sampler.maxStaleness",
      );
    const lag = s.overlap + s.syncEvery - 1;
    if (s.maxStaleness !== undefined && s.overlap > 0 && s.maxStaleness < lag)
      throw new ConfigError(
        `with overlap ${s.overlap} (and syncEvery ${s.syncEvery}) samples are trained up to ${lag} policy versions after the weights that drew them, more than maxStaleness ${s.maxStaleness}; raise maxStaleness to ${lag} or lower overlap`,
        "sampler.overlap",
      );
  }
  if (c.train.activationCheckpointing) {
    if (c.model === undefined)
      throw new ConfigError(
        "train.activationCheckpointing applies to language models; remove it",
        "train.activationCheckpointing",
      );
    if (c.model.device !== undefined && c.model.device !== "cpu")
      throw new ConfigError(
        `train.activationCheckpointing runs on the CPU only (its backward calls back into JavaScript); this run has model.device ${c.model.device}. Remove it or use model.device cpu`,
        "train.activationCheckpointing",
      );
    if (c.train.forward !== "plain")
      throw new ConfigError(
        `train.activationCheckpointing applies to train.forward plain; this run has ${c.train.forward}. Remove one of them`,
        "train.activationCheckpointing",
      );
  }
  if (c.sampling.precision === "int8") {
    if (c.sampler.kind !== "local")
      throw new ConfigError(
        "sampling.precision int8 applies to local rollouts; remote workers decode at their own precision (cohort serve --precision int8). Remove sampling.precision or use sampler.kind local",
        "sampling.precision",
      );
    if (c.model === undefined)
      throw new ConfigError("sampling.precision int8 applies to language models; remove it", "sampling.precision");
    const mc = c.model;
    if (mc.precision !== "fp32" || (mc.device !== undefined && mc.device !== "cpu"))
      throw new ConfigError(
        `sampling.precision int8 decodes on the CPU from fp32 weights; this run has model.device ${mc.device ?? "cpu"} and model.precision ${mc.precision}. Use sampling.precision fp32 there`,
        "sampling.precision",
      );
  }
  if (c.sampler.importanceSampling) {
    const linear = resolvedAlgo.loss.type === "surrogate" && gates.get(resolvedAlgo.gate.type).linearInAdvantage;
    if (!linear) {
      const what =
        resolvedAlgo.loss.type !== "surrogate"
          ? `algo.loss.type is "${resolvedAlgo.loss.type}"`
          : `algo.gate.type "${resolvedAlgo.gate.type}" is not linear in A`;
      throw new ConfigError(
        `the correction scales each token's advantage, which equals weighting the loss only for surrogates linear in A (${gates
          .list()
          .filter((g) => g.linearInAdvantage)
          .map((g) => g.name)
          .join(", ")}); ${what}. Remove sampler.importanceSampling or change the loss`,
        "sampler.importanceSampling",
      );
    }
  }
  // every input a component reads must have a source in this run (rank rewards, a custom token score, … do not)
  if (c.policy !== undefined) checkNeeds(resolvedAlgo, CONTROL_SOURCES(c.policy), "cohort train with a control policy");
  else {
    // a ranking task's lists give Rank-GRPO its rank rewards and the item of every token (ranked.ts)
    const ranks = task !== undefined && isRankingTask(task) && c.agent === undefined;
    const sources = ranks ? new Set([...TRAIN_SOURCES, ...RANKING_SOURCES]) : TRAIN_SOURCES;
    const where = ranks
      ? "cohort train"
      : c.agent !== undefined
        ? "cohort train with `agent`"
        : "cohort train on this data";
    checkNeeds(resolvedAlgo, sources, where);
  }
  const estimator = advantageEstimators.get(resolvedAlgo.advantage.estimator);
  const minGroup = estimator.minGroupSize?.(resolvedAlgo.advantage.options) ?? 2;
  if (c.train.groupSize < minGroup && estimator.groupRelative !== false && minGroup > 2) {
    throw new ConfigError(
      `groupSize ${c.train.groupSize}: estimator "${estimator.name}" needs groups of at least ${minGroup} under its options ` +
        "(smaller groups carry no signal); raise train.groupSize or change its options",
      "train.groupSize",
    );
  }
  // (an estimator whose groups cross prompts, hop_grouped, says so with a minimum group of 1)
  if (c.train.groupSize < 2 && estimator.groupRelative !== false && minGroup >= 2) {
    throw new ConfigError(
      `groupSize ${c.train.groupSize}: group-relative advantages need at least 2 completions per prompt`,
      "train.groupSize",
    );
  }
  return configFile === undefined ? { ...c, resolvedAlgo } : { ...c, resolvedAlgo, configFile };
}

/** `preference:` replaces the reward functions by the win rate against the group, on a task or dataset. */
function checkPreferenceConfig(c: { env?: unknown }, raw: unknown): void {
  if (c.env !== undefined) {
    throw new ConfigError("with `env`, the reward is the episode return; remove `preference`", "preference");
  }
  if ((raw as { rewards?: unknown }).rewards !== undefined) {
    throw new ConfigError(
      "with `preference`, each completion's reward is its win rate against its group; remove `rewards`",
      "rewards",
    );
  }
}

/** `agent:` checks: tasks from a task or dataset, the reward from the agent, plain sampling of whole groups. */
function checkAgentConfig(
  c: { env?: unknown; preference?: unknown; policy?: unknown; sampler: { kind: string }; eval: { metric?: unknown } },
  raw: unknown,
): void {
  const refuse = (msg: string, path: string) => {
    throw new ConfigError(msg, path);
  };
  if (c.env !== undefined) refuse("`agent` plays your agent on the tasks of `task` or `dataset`; remove `env`", "env");
  if (c.policy !== undefined) refuse("`agent` trains a language model; remove `policy`", "policy");
  if (c.preference !== undefined)
    refuse("with `agent`, the reward is what run() returns; remove `preference`", "preference");
  if ((raw as { rewards?: unknown }).rewards !== undefined)
    refuse("with `agent`, the reward is what run() returns ({reward} or a number); remove `rewards`", "rewards");
  if (c.eval.metric !== undefined)
    refuse(
      "with `agent`, eval_accuracy counts held-out episodes with reward ≥ agent.passReward; remove eval.metric",
      "eval.metric",
    );
  if (c.sampler.kind !== "local")
    refuse(
      "with `agent`, the recording endpoint runs in the trainer over the policy being trained; remove the sampler section",
      "sampler.kind",
    );
}

/** `env:` checks: the environment and its options exist, rewards come from it, and the algorithm fits episodes. */
function checkEnvConfig(
  env: NonNullable<z.output<typeof trainConfigSchema>["env"]>,
  raw: unknown,
  algo: AlgoConfig,
): void {
  createEnv(env.name, env.options, "env");
  if ((raw as { rewards?: unknown }).rewards !== undefined) {
    throw new ConfigError(
      "with `env`, the reward is the episode return given by the environment's steps; remove `rewards`",
      "rewards",
    );
  }
  if ((algo.rollout as { wrapper?: unknown }).wrapper !== undefined) {
    throw new ConfigError(
      "rollout wrappers rewrite prompt text, but an environment builds its own prompts from its observations; " +
        "remove algo.rollout.wrapper or train on a task",
      "algo.rollout.wrapper",
    );
  }
  const stepRows = advantageEstimators.get(algo.advantage.estimator).rows !== undefined;
  if (stepRows && algo.ratio.level === "sequence") {
    throw new ConfigError(
      `estimator "${algo.advantage.estimator}" gives each turn of an episode its own advantage, which a sequence-level ` +
        `ratio cannot use; set algo.ratio.level "token" or "sequence-token"`,
      "algo.ratio.level",
    );
  }
  const perCompletion = configNeeds(algo).get("meanEntropy");
  if (stepRows && perCompletion !== undefined) {
    throw new ConfigError(
      `"${perCompletion.name}" reads one mean entropy per completion, but estimator "${algo.advantage.estimator}" ` +
        "reads one row per agent step; use an episode-level estimator or remove it",
      `algo.${perCompletion.path}`,
    );
  }
}

/** Reads and validates a YAML config file, applying `--set` overrides first. */
export function loadTrainConfig(file: string, sets: string[] = []): TrainConfig {
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
  return parseTrainConfig(applySets(raw as Record<string, unknown>, sets), file);
}

export { parseAlgoConfig };
