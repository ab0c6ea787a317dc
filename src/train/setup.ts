/**
 * Builds a training run's parts from its config (context.ts `Run`): threads and seeds, the policy on its
 * device (with its reference or LoRA adapters) and optimizer, the task or environment and its rewards, the
 * pipeline, the rollout source, the forward backend and, with data parallelism, this rank's gradient sync.
 * @module
 */
import { dirname, isAbsolute, join, resolve } from "node:path";
import { Pipeline } from "../algo/pipeline.js";
import { EpisodeSource } from "../env/source.js";
import { CohortError, ConfigError } from "../errors.js";
import { readModelDir, writeModelDir } from "../io/hf.js";
import { eosIds } from "../model/config.js";
import { CausalLM } from "../model/llama.js";
import { applyLora, type LoraAdapter } from "../model/lora.js";
import { LocalSampler, type Sampler } from "../model/sampler.js";
import { DataParallel, type ProcessGroup, rankSeed, threadsPerRank } from "../parallel/index.js";
import { resolveRewards } from "../reward/load.js";
import { resolvePreference } from "../reward/preference.js";
import { RolloutPlan } from "../rollout/index.js";
import { remoteRollouts } from "../serve/remote-sampler.js";
import { jsonlTask, loadJsonl } from "../task/jsonl.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import { templatedDataset } from "../task/template.js";
import type { Problem, Task } from "../task/types.js";
import { AdamW, defaultNumThreads, deviceUnavailable, isDevice, manualSeed, setNumThreads } from "../tensor/index.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { AgentSource, loadAgent } from "./agent-source.js";
import type { TrainConfig } from "./config.js";
import { type LoopRun, type PolicyParts, type Run, trainableState } from "./context.js";
import { Diagnostics } from "./diagnostics.js";
import { describeMetric, type EvalMetric, type EvalResult, evaluateProblems, verifierWarning } from "./evaluate.js";
import { dataParallelSync, forwardBackend, noSync } from "./parts.js";
import { preferenceEval, styleMetrics } from "./preference-eval.js";
import { checkDatasetRows, checkFiniteWeights, checkTaskPrompts } from "./preflight.js";
import { appendLines } from "./rundir.js";
import { isSelfPlayEnv, selfPlaySource } from "./selfplay-source.js";
import {
  episodeGenerate,
  episodeScore,
  feedSource,
  offPolicyRollout,
  planSource,
  preferenceScore,
  type RolloutSource,
  requestSeed,
  rewardScore,
  textGenerate,
  withEpisodeStage,
} from "./sources.js";
import { update } from "./update.js";

export function resolvePath(cfg: TrainConfig, p: string): string {
  if (isAbsolute(p)) return p;
  return cfg.configFile ? resolve(dirname(cfg.configFile), p) : resolve(p);
}

/**
 * What `eval_accuracy` counts: `eval.metric` (its reward, else the success reward, at its pass mark); else a
 * declared success reward (algo.rollout.success.reward) ≥ 1; else the task's verifier when there is a task or
 * the built-in `correctness` reward; else (a dataset scored by your own rewards) the success reward ≥ 1.
 */
export function evalMetricOf(
  cfg: TrainConfig,
  rewards: readonly { name: string }[],
  plan: { successIndex: number; cfg: { success: { reward?: string | undefined } } },
): EvalMetric {
  const m = cfg.eval.metric;
  const success = rewards[plan.successIndex]?.name;
  if (m !== undefined) return { kind: "reward", name: m.reward ?? (success as string), pass: m.pass };
  const declared = plan.cfg.success.reward;
  if (declared !== undefined) return { kind: "reward", name: declared, pass: 1 };
  if (cfg.task !== undefined || rewards.some((r) => r.name === "correctness") || success === undefined)
    return { kind: "verifier" };
  return { kind: "reward", name: success, pass: 1 };
}

/** The policy on its device: the model, LoRA adapters or a frozen reference when a component needs π_ref. */
function loadPolicy(
  cfg: TrainConfig,
  pipeline: Pipeline,
  group?: ProcessGroup,
): PolicyParts & { dir: ReturnType<typeof readModelDir> } {
  const mc = modelSection(cfg);
  const modelDir = resolvePath(cfg, mc.path);
  // data parallel on GPUs: `cuda` means this rank's own GPU, cuda:LOCAL_RANK (as torchrun's convention)
  const name = mc.device === "cuda" && group ? `cuda:${Number(process.env.LOCAL_RANK ?? group.rank)}` : mc.device;
  if (!isDevice(name)) throw new CohortError(`model.device "${name}" is not a device name (cpu, cuda or cuda:N)`);
  const place = { device: name, precision: mc.precision };
  const unavailable = deviceUnavailable(place.device);
  if (unavailable !== null)
    throw new CohortError(`model.device is "${place.device}" but ${unavailable}, or set model.device: cpu`);
  const dir = readModelDir(modelDir);
  if (dir.tokenizer === undefined) {
    throw new CohortError(`${modelDir} has no tokenizer.json; a model directory for training needs its tokenizer`);
  }
  const model = CausalLM.fromHF(dir.config, dir.tensors, place);
  model.activationCheckpointing = cfg.train.activationCheckpointing;
  let ref: CausalLM | null = null;
  let lora: LoraAdapter | null = null;
  if (mc.lora) {
    lora = applyLora(model, { ...mc.lora, seed: cfg.seed });
  } else if (pipeline.has("refLogprobs")) {
    ref = CausalLM.fromHF(dir.config, dir.tensors, place);
    for (const p of ref.parameters()) p.requireGrad(false);
  }
  for (const t of Object.values(dir.tensors)) t.dispose();
  return { model, lora, ref, params: model.parameters(), dir };
}

/**
 * The run of a config: a control-policy run (src/control/run.ts) when the config has `policy`, else a
 * language-model run.
 */
export async function setupLoop(
  cfg: TrainConfig,
  log: (l: string) => void,
  group?: ProcessGroup,
  // biome-ignore lint/suspicious/noExplicitAny: each kind of run trains on its own batches
): Promise<LoopRun<any>> {
  if (cfg.policy !== undefined) {
    const { setupControlRun } = await import("../control/run.js");
    return setupControlRun(cfg, log, group);
  }
  return setupRun(cfg, log, group);
}

/** A language-model run's parts, ready for its first step (with `group`: this process is one rank of it). */
export async function setupRun(cfg: TrainConfig, log: (l: string) => void, group?: ProcessGroup): Promise<Run> {
  if (group) DataParallel.checkPrompts(cfg.train.promptsPerStep, group.worldSize);
  setNumThreads(cfg.threads ?? (group ? threadsPerRank() : defaultNumThreads()));
  manualSeed(group ? rankSeed(cfg.seed, group.rank) : cfg.seed);
  const runDir = resolvePath(cfg, join(cfg.outputDir, cfg.name));
  const algo = cfg.resolvedAlgo;
  const pipeline = new Pipeline(algo);
  const { dir, ...policy } = loadPolicy(cfg, pipeline, group);
  const { model } = policy;
  const tok = tokenizerFromFiles(
    (dir.tokenizer as NonNullable<typeof dir.tokenizer>).json,
    (dir.tokenizer as NonNullable<typeof dir.tokenizer>).config,
  );
  const opt = new AdamW(policy.params, {
    lr: cfg.train.lr,
    betas: cfg.train.betas,
    weightDecay: cfg.train.weightDecay,
  });
  const env = cfg.env ? new EpisodeSource(cfg.env, tok) : null;
  let task: Task;
  let answerFormat: "tagged" | "plain" | undefined;
  let heldOut: Problem[] | undefined; // a dataset's held-out lines, in file order
  if (env) task = env.task;
  else if (cfg.task) task = createTask(cfg.task.name, cfg.task.options, "task");
  else {
    const ds = cfg.dataset as NonNullable<TrainConfig["dataset"]>;
    // prompts through the template (src/task/template.ts); every row is checked against the tokenizer and the
    // context here, before the run directory is touched
    const limits = { tok, maxPositions: model.config.maxPositionEmbeddings, maxNewTokens: cfg.sampling.maxNewTokens };
    const lines = await loadJsonl(resolvePath(cfg, ds.path), ds.options, resolvePath(cfg, "."));
    const format = { template: ds.template, ...(ds.system !== undefined ? { system: ds.system } : {}) };
    const rows = checkDatasetRows(templatedDataset(lines, tok, format), limits, ds.onBadRow, log);
    task = jsonlTask(rows);
    heldOut = rows.eval.slice(0, cfg.eval.problems);
    if (heldOut.length === 0 && cfg.eval.everySteps > 0)
      throw new CohortError(
        `${rows.file}: no held-out lines to evaluate on (${rows.problems.length} lines); set dataset.options.evalPath ` +
          "or evalFraction, or eval.everySteps: 0",
      );
    answerFormat = rows.options.answerFormat;
  }
  const fileOpts = cfg.configFile ? { configFile: cfg.configFile } : {};
  // with `preference`, the one reward is the win rate against the group (scored by preferenceScore below)
  const preference = cfg.preference ? await resolvePreference(cfg.preference, { task, ...fileOpts }) : null;
  const rewards = env
    ? env.rewards
    : cfg.agent
      ? [{ name: "agent", fn: () => null }]
      : preference
        ? [{ name: "win_rate", fn: () => null }]
        : await resolveRewards(cfg.rewards, { task, ...fileOpts });
  const evalRng = Rng.fromSeed(BigInt(cfg.seed) ^ 0x5eed5eedn);
  const evalProblems = heldOut ?? Array.from({ length: cfg.eval.problems }, () => task.sample(evalRng, "eval"));
  const stopIds = [...new Set([...eosIds(model.config), tok.eosId])];
  const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
  const plan = new RolloutPlan(
    algo.rollout,
    task,
    rewards.map((r) => r.name),
  );
  // data parallel: split mode for the plain rollout plan (the ranks share one data stream and take their share
  // of each draw), local mode otherwise (src/parallel/data-parallel.ts); rank 0's weights everywhere
  const dp = group
    ? new DataParallel(group, plan.isDefault ? "split" : "local", { overlap: cfg.train.overlapAllreduce })
    : null;
  dp?.broadcastParameters(policy.params);
  const diagnostics = new Diagnostics(group && group.rank > 0 ? () => {} : log);
  const remote = cfg.sampler.kind === "openai" ? remoteRollouts(cfg.sampler, runDir, log) : null;
  const { temperature, topK, topP, minP } = cfg.sampling;
  // int8 rollouts (sampling.precision): a sampler of their own; evaluation keeps decoding at model precision
  const localRollouts =
    cfg.sampling.precision === "int8"
      ? new LocalSampler(model, {
          decode: (ids) => tok.decode(ids),
          padId: tok.padId,
          maxBatch: 128,
          precision: "int8",
        })
      : sampler;
  const rolloutSampler = remote?.sampler ?? localRollouts;
  const scoreOpts = { timeoutMs: cfg.rewardTimeoutMs, concurrency: cfg.rewardConcurrency };
  const onRewardFailures = (
    step: number,
    fs: { reward: string; kind: string; message: string; sample: unknown }[],
  ): void => {
    appendLines(
      join(runDir, "reward_failures.jsonl"),
      fs.map((f) => JSON.stringify({ step, reward: f.reward, kind: f.kind, message: f.message, sample: f.sample })),
    );
    diagnostics.rewardFailures(step, fs.length, fs[0] as { reward: string; kind: string; message: string });
  };
  // the sampling settings of a text completion (rollouts and the preference evaluation)
  const textParams = {
    maxTokens: cfg.sampling.maxNewTokens,
    temperature,
    topK,
    topP,
    minP,
    stopTokenIds: stopIds,
    ...(cfg.sampling.stop.length > 0 ? { stop: cfg.sampling.stop } : {}),
  };
  const plain = planSource({
    plan,
    algo,
    task,
    rewardCount: rewards.length,
    generate: env
      ? episodeGenerate(env, rolloutSampler, model.config.maxPositionEmbeddings, {
          temperature,
          topK,
          topP,
          minP,
          stopTokenIds: stopIds,
        })
      : textGenerate(rolloutSampler, tok, textParams),
    score: env
      ? episodeScore(env)
      : preference
        ? preferenceScore(
            preference,
            scoreOpts,
            onRewardFailures,
            preference.name === "rps_style" ? (texts) => styleMetrics("pref", texts) : undefined,
          )
        : rewardScore(rewards, scoreOpts, onRewardFailures),
    offPolicy: (ps, texts, promptTexts) => offPolicyRollout(model, tok, temperature, ps, texts, promptTexts),
    promptsPerStep: cfg.train.promptsPerStep,
    groupSize: cfg.train.groupSize,
    seed: cfg.seed,
    dist: dp,
  });
  // `agent:` runs: the user's agent plays episodes against a recording endpoint over this policy
  const agent = cfg.agent ? await agentSource(cfg, { model, tok, task, runDir, log, plan, group }) : null;
  // Dr. Zero's proposer/solver loop (`env.options.selfPlay`, selfplay-source.ts)
  const selfPlay =
    env && isSelfPlayEnv(cfg.env)
      ? selfPlayRolloutSource(cfg, env, plan, group, {
          sampler: rolloutSampler,
          contextLength: model.config.maxPositionEmbeddings,
          stopTokenIds: stopIds,
        })
      : null;
  const source: RolloutSource =
    agent ??
    feedSource(selfPlay ?? (env ? withEpisodeStage(plain, env) : plain), {
      overlap: cfg.sampler.kind === "openai" ? cfg.sampler.overlap : 0,
      remote,
      sync: async (step) => remote?.sync(model, policy.lora, step), // sampler.syncWeights
    });
  // what eval_accuracy counts (the verifier, or a reward function at a pass mark), said once at the start
  // (a win rate against the group has no held-out value: preference runs evaluate by the task's verifier)
  const metric: EvalMetric = env || preference || agent ? { kind: "verifier" } : evalMetricOf(cfg, rewards, plan);
  if (metric.kind === "reward")
    log(`eval_accuracy: the share of held-out completions with ${describeMetric(metric)} (eval.metric)`);
  // preference runs: win rates against the reference and the previous evaluation (src/train/preference-eval.ts)
  const prefEval = preference
    ? preferenceEval({
        pref: preference,
        sampler,
        tok,
        problems: evalProblems,
        params: textParams,
        seed: cfg.seed + 2,
        file: join(runDir, "preference_eval.jsonl"),
      })
    : null;
  const evaluate = async (step: number): Promise<EvalResult> => {
    const seed = evalProblems.map((_, i) => requestSeed(cfg.seed + 1, step, i));
    if (agent) return agent.evaluate(evalProblems, cfg.eval.logSamples, step);
    if (env) {
      const params = { temperature: cfg.eval.temperature, stopTokenIds: stopIds };
      return env.evaluate(sampler, evalProblems, seed, params, cfg.eval.logSamples, step);
    }
    const params = {
      maxTokens: cfg.sampling.maxNewTokens,
      temperature: cfg.eval.temperature,
      stopTokenIds: stopIds,
      ...(cfg.sampling.stop.length > 0 ? { stop: cfg.sampling.stop } : {}),
      seed,
    };
    const r = await evaluateProblems(sampler, tok, task, evalProblems, params, {
      logSamples: cfg.eval.logSamples,
      step,
      rewards: preference ? [] : rewards,
      metric,
      score: { timeoutMs: cfg.rewardTimeoutMs, concurrency: cfg.rewardConcurrency },
    });
    const first = r.samples[0]?.completion;
    const warning = verifierWarning(r, {
      ...(typeof first === "string" ? { example: first } : {}),
      dataset: cfg.dataset !== undefined,
      ...(answerFormat !== undefined ? { answerFormat } : {}),
    });
    if (warning !== null) diagnostics.verifierNeverMatches(step, warning);
    if (prefEval) r.metrics = { ...r.metrics, ...(await prefEval.evaluate(step)) };
    return r;
  };
  let lastRollouts: () => Record<string, unknown>[] = () => [];
  const run: Run = {
    cfg,
    algo,
    runDir,
    log,
    policy,
    opt,
    tok,
    task,
    rewards,
    pipeline,
    source,
    backend: forwardBackend(cfg.train.forward),
    sync: dp ? dataParallelSync(dp) : noSync,
    sampler,
    evalProblems,
    stopIds,
    diagnostics,
    importanceSampling:
      remote?.importanceSampling ?? (cfg.sampler.kind === "local" ? (cfg.sampler.importanceSampling ?? null) : null),
    isSuccess: (byFn, i) => plan.isSuccess(byFn, i),
    metric,
    evaluate,
    trainable: () => Object.entries(trainableState(policy)),
    check() {
      const limits = { tok, maxPositions: model.config.maxPositionEmbeddings, maxNewTokens: cfg.sampling.maxNewTokens };
      if (cfg.task) checkTaskPrompts(task, evalProblems, limits, cfg.seed); // dataset rows: checked above
      checkFiniteWeights(model.namedParameters(), `the model ${resolvePath(cfg, modelSection(cfg).path)}`);
    },
    update(step, col, t0) {
      const u = update(run, step, col, t0);
      lastRollouts = u.rollouts;
      return u.metrics;
    },
    rollouts: () => lastRollouts(),
    exportTo: (dir) => exportModel(run, dir),
    dispose: () => disposeRun(run),
  };
  return run;
}

/** The self-play source of a `selfPlay` run, after the checks that need the built parts. */
function selfPlayRolloutSource(
  cfg: TrainConfig,
  env: EpisodeSource,
  plan: RolloutPlan,
  group: ProcessGroup | undefined,
  o: { sampler: Sampler; contextLength: number; stopTokenIds: number[] },
): RolloutSource {
  if (group) throw new ConfigError("self-play runs in one process; remove --nproc", "env.options.selfPlay");
  if (!plan.isDefault)
    throw new ConfigError(
      "self-play draws its own proposer tasks and gives each valid question train.groupSize solver episodes; prompt samplers, budget allocators and dynamic sampling do not apply: remove algo.rollout",
      "algo.rollout",
    );
  const { temperature, topK, topP, minP } = cfg.sampling;
  return selfPlaySource({
    env,
    sampler: o.sampler,
    contextLength: o.contextLength,
    params: { temperature, topK, topP, minP, stopTokenIds: o.stopTokenIds },
    promptsPerStep: cfg.train.promptsPerStep,
    groupSize: cfg.train.groupSize,
    seed: cfg.seed,
  });
}

/** The rollout source of an `agent:` run (agent-source.ts), after the checks that need the built parts. */
async function agentSource(
  cfg: TrainConfig,
  o: {
    model: CausalLM;
    tok: Tokenizer;
    task: Task;
    runDir: string;
    log: (l: string) => void;
    plan: RolloutPlan;
    group: ProcessGroup | undefined;
  },
): Promise<AgentSource> {
  const a = cfg.agent as NonNullable<TrainConfig["agent"]>;
  if (o.group) throw new ConfigError("`agent` runs in one process; remove --nproc", "agent");
  if (!o.plan.isDefault)
    throw new ConfigError(
      "`agent` plays G episodes of B tasks per step; prompt samplers, budget allocators, rollout wrappers and dynamic sampling do not apply to it: remove algo.rollout",
      "algo.rollout",
    );
  if (modelSection(cfg).lora !== undefined)
    throw new ConfigError(
      "`agent` serves the full model; LoRA adapters are not served yet: remove model.lora",
      "model.lora",
    );
  const path = resolvePath(cfg, modelSection(cfg).path);
  return new AgentSource({
    cfg: a,
    run: await loadAgent(a.run, cfg.configFile),
    served: { model: o.model, tokenizer: o.tok, source: path, modelDir: path },
    task: o.task,
    promptsPerStep: cfg.train.promptsPerStep,
    groupSize: cfg.train.groupSize,
    seed: cfg.seed,
    temperature: cfg.sampling.temperature,
    runDir: o.runDir,
    log: o.log,
  });
}

/** The `model` section of a language-model run (absent only with `policy`, which config.ts checks). */
function modelSection(cfg: TrainConfig): NonNullable<TrainConfig["model"]> {
  if (cfg.model === undefined) throw new CohortError("a language-model run needs `model: {path: …}`");
  return cfg.model;
}

/** Saves the trained policy as a Hugging Face model directory (LoRA merged into the weights). */
export function exportModel(run: Run, dir: string): void {
  const { model, lora } = run.policy;
  if (lora) lora.merge();
  try {
    const st = model.state();
    writeModelDir(dir, {
      config: st.meta.config as Record<string, unknown>,
      tensors: st.tensors,
      tokenizerFiles: run.tok.toFiles(),
    });
  } finally {
    if (lora) lora.unmerge();
  }
}

export async function disposeRun(run: Run): Promise<void> {
  await run.source.close?.(); // batches still generating ahead finish before the model is freed
  run.opt.dispose();
  run.policy.ref?.dispose();
  if (run.policy.lora) run.policy.lora.detach();
  run.policy.model.dispose();
}
