/**
 * The GRPO training loop (ALGORITHMS.md §A.1), with every slot chosen by the run config:
 *
 * ```
 * for step in steps:
 *   problems  = B train problems (seeded task RNG)
 *   groups    = G completions each (local KV-cache sampler, per-request seeds derived from (seed, step))
 *   rewards   = reward functions → combiner → shapers          (failures logged, never fatal)
 *   adv       = estimator → reweighters → sample filters        (pipeline.ts)
 *   ℓ_old     = stored when μ > 1 or several minibatches; ℓ_ref when a KL term needs it
 *   for μ passes, for each minibatch: Σ over micro-batches of PolicyLoss(ℓ, ℓ_old, ℓ_ref, A) with global
 *     counts → backward; clip grad norm; AdamW step at the scheduled learning rate
 *   metrics → metrics.jsonl; evaluation every N steps; checkpoint every M steps
 * ```
 * @module
 */
import { availableParallelism } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { AlgoConfig } from "../algo/config.js";
import { Pipeline, type RewardStage, type StageInputs, type TokenStage } from "../algo/pipeline.js";
import { addGlobals, broadcastAdvantages, groupPassRate } from "../algo/policy-loss.js";
import { toRewardMatrix } from "../algo/rewards.js";
import { microBatchRows, rowsPerPart, stepCounts } from "../algo/step.js";
import type { GlobalCounts, LossBatch } from "../algo/types.js";
import { checkResumeWorldSize, DataParallel, type ProcessGroup, rankSeed, threadsPerRank } from "../dist/index.js";
import { EpisodeSource, oneStepEpisodes } from "../env/source.js";
import { CohortError } from "../errors.js";
import { readModelDir, writeModelDir } from "../io/hf.js";
import { packBatch } from "../model/batch.js";
import { eosIds } from "../model/config.js";
import { CausalLM } from "../model/llama.js";
import { applyLora, type LoraAdapter } from "../model/lora.js";
import { type Completion, LocalSampler } from "../model/sampler.js";
import { toRewardSample } from "../reward/builtin.js";
import { resolveRewards } from "../reward/load.js";
import { scoreAll } from "../reward/score.js";
import type { NamedReward, RewardSample } from "../reward/types.js";
import {
  allocationMetrics,
  concatGroups,
  dynamicSampling,
  groupsWithVariance,
  RolloutPlan,
  type ScoredRollout,
  type WrapperHost,
} from "../rollout/index.js";
import { emptyIsStats, isMetrics, mergeIsStats, samplerImportanceWeights } from "../serve/importance.js";
import { type RemoteRollouts, RolloutFeed, remoteRollouts } from "../serve/remote-sampler.js";
import { jsonlTask, loadJsonl } from "../task/jsonl.js";
import { createTask } from "../task/registry.js";
import { mix32, Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import {
  AdamW,
  clipGradNorm,
  type Device,
  deviceUnavailable,
  getRngState,
  keep,
  learningRate,
  manualSeed,
  noGrad,
  setNumThreads,
  setRngState,
  type Tensor,
  tensor,
  tidy,
} from "../tensor/index.js";
import { tokenizerFromFiles } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import {
  type BatchSource,
  buildMicro,
  disposeMicro,
  disposeWhole,
  forward,
  type Micro,
  targetRatioOf,
  wholeBatch,
} from "./batch.js";
import { fallbackHint, fromBase64, loadCheckpoint, saveCheckpoint, toBase64 } from "./checkpoint.js";
import type { TrainConfig } from "./config.js";
import { Diagnostics } from "./diagnostics.js";
import { advantagesOverRanks } from "./dist-stage.js";
import { type MetricRecord, MetricsLog, stats } from "./metrics.js";
import { checkDatasetRows, checkFiniteWeights, checkTaskPrompts } from "./preflight.js";
import { appendLines, openRun, planRun } from "./rundir.js";

export interface TrainOptions {
  /**
   * Continue the run in the run directory from its latest checkpoint (only a checkpoint of the same run id,
   * and only with the same config apart from `RESUME_CHANGEABLE` keys and `allowConfigChange`; src/train/rundir.ts).
   */
  resume?: boolean;
  /** A fresh start in a directory that holds a run moves that run into `<run>/.previous-<time>/` instead of refusing. */
  overwrite?: boolean;
  /** With `resume`: config keys (or prefixes) allowed to differ from the saved run; recorded in history.jsonl. */
  allowConfigChange?: readonly string[];
  /** Called after each step with its metrics (progress bars, tests). */
  onStep?: (m: MetricRecord) => void;
  /** Plain log lines (diagnostics, checkpoints). Default: stderr. */
  log?: (line: string) => void;
  /** Stop after this step even if the config asks for more (tests of interruption). */
  stopAfterStep?: number;
  /** Set to true (e.g. on SIGINT) to save a checkpoint and stop after the current step. */
  stopSignal?: { stop: boolean };
  /** Data parallel: this process is one rank of `dist` (src/dist); rank 0 writes logs and checkpoints. */
  dist?: ProcessGroup;
}

export interface TrainResult {
  runDir: string;
  steps: number;
  stoppedEarly: boolean;
  metrics: MetricRecord[];
}

/** Everything a training step works with. */
interface Ctx {
  cfg: TrainConfig;
  algo: AlgoConfig;
  runDir: string;
  model: CausalLM;
  lora: LoraAdapter | null;
  ref: CausalLM | null;
  tok: Tokenizer;
  task: Task;
  rewards: NamedReward[];
  params: Tensor[];
  opt: AdamW;
  /** Advantages, token filters, the policy loss and the state of stateful components (src/algo/pipeline.ts). */
  pipeline: Pipeline;
  sampler: LocalSampler;
  rng: Rng;
  evalProblems: Problem[];
  stopIds: number[];
  log: (line: string) => void;
  diagnostics: Diagnostics;
  /** Set when the run is one rank of a data-parallel group. */
  dist: DataParallel | null;
  /** With `env:` in the config: the environment whose episodes are the rows. */
  env: EpisodeSource | null;
  /** With `sampler: {kind: openai}`: rollouts come from an OpenAI-compatible server (src/serve/). */
  remote: RemoteRollouts | null;
}

function resolvePath(cfg: TrainConfig, p: string): string {
  if (isAbsolute(p)) return p;
  return cfg.configFile ? resolve(dirname(cfg.configFile), p) : resolve(p);
}

/** Seed of request `i` of a step: a hash of (run seed, step, i), so sampling does not depend on history. */
export function requestSeed(seed: number, step: number, i: number): number {
  return mix32(seed * 0x9e3779b1 + step * 0x85ebca6b + i * 0xc2b2ae35);
}

/** Base of the request seeds: the run's seed, or with data parallelism the rank's stream seed. */
function streamSeed(ctx: Ctx): number {
  return ctx.dist ? ctx.dist.streamSeed(ctx.cfg.seed) : ctx.cfg.seed;
}

/** Whether this process writes the run's files (always, unless it is a rank other than 0). */
function isMain(ctx: Ctx): boolean {
  return ctx.dist === null || ctx.dist.isMain;
}

/**
 * Makes `ctx` one rank of `group`: split mode for the plain rollout plan (the ranks share one data stream
 * and take their share of each draw), local mode otherwise (src/dist/data-parallel.ts), and rank 0's
 * weights everywhere.
 */
function joinGroup(ctx: Ctx, group: ProcessGroup): void {
  ctx.dist = new DataParallel(group, planOf(ctx).isDefault ? "split" : "local", {
    overlap: ctx.cfg.train.overlapAllreduce,
  });
  ctx.rng = Rng.fromSeed(BigInt(ctx.dist.streamSeed(ctx.cfg.seed)));
  ctx.dist.broadcastParameters(ctx.params);
}

async function setup(cfg: TrainConfig, log: (l: string) => void, group?: ProcessGroup): Promise<Ctx> {
  if (group) DataParallel.checkPrompts(cfg.train.promptsPerStep, group.worldSize);
  setNumThreads(cfg.threads ?? (group ? threadsPerRank() : availableParallelism()));
  manualSeed(group ? rankSeed(cfg.seed, group.rank) : cfg.seed);
  const runDir = resolvePath(cfg, join(cfg.outputDir, cfg.name));
  const modelDir = resolvePath(cfg, cfg.model.path);
  // data parallel on GPUs: `cuda` means this rank's own GPU, cuda:LOCAL_RANK (as torchrun's convention)
  const device = (
    cfg.model.device === "cuda" && group ? `cuda:${Number(process.env.LOCAL_RANK ?? group.rank)}` : cfg.model.device
  ) as Device;
  const place = { device, precision: cfg.model.precision };
  const unavailable = deviceUnavailable(place.device);
  if (unavailable !== null)
    throw new CohortError(`model.device is "${place.device}" but ${unavailable}, or set model.device: cpu`);
  const dir = readModelDir(modelDir);
  if (dir.tokenizer === undefined) {
    throw new CohortError(`${modelDir} has no tokenizer.json; a model directory for training needs its tokenizer`);
  }
  const tok = tokenizerFromFiles(dir.tokenizer.json, dir.tokenizer.config);
  const model = CausalLM.fromHF(dir.config, dir.tensors, place);
  const algo = cfg.resolvedAlgo;
  let ref: CausalLM | null = null;
  let lora: LoraAdapter | null = null;
  if (cfg.model.lora) {
    lora = applyLora(model, { ...cfg.model.lora, seed: cfg.seed });
  } else if (new Pipeline(algo).has("refLogprobs")) {
    ref = CausalLM.fromHF(dir.config, dir.tensors, place);
    for (const p of ref.parameters()) p.requireGrad(false);
  }
  for (const t of Object.values(dir.tensors)) t.dispose();
  const params = model.parameters();
  const opt = new AdamW(params, { lr: cfg.train.lr, betas: cfg.train.betas, weightDecay: cfg.train.weightDecay });
  const env = cfg.env ? new EpisodeSource(cfg.env, tok) : null;
  let task: Task;
  if (env) task = env.task;
  else if (cfg.task) task = createTask(cfg.task.name, cfg.task.options, "task");
  else {
    const ds = cfg.dataset as NonNullable<TrainConfig["dataset"]>;
    // every row is checked against the tokenizer and the context here, before the run directory is touched
    const limits = { tok, maxPositions: model.config.maxPositionEmbeddings, maxNewTokens: cfg.sampling.maxNewTokens };
    const rows = checkDatasetRows(await loadJsonl(resolvePath(cfg, ds.path), ds.options), limits, ds.onBadRow, log);
    task = jsonlTask(rows);
  }
  const rewards = env
    ? env.rewards
    : await resolveRewards(cfg.rewards, {
        task,
        ...(cfg.configFile ? { configFile: cfg.configFile } : {}),
      });
  const evalRng = Rng.fromSeed(BigInt(cfg.seed) ^ 0x5eed5eedn);
  const evalProblems = Array.from({ length: cfg.eval.problems }, () => task.sample(evalRng, "eval"));
  const stopIds = [...new Set([...eosIds(model.config), tok.eosId])];
  const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
  return {
    cfg,
    algo,
    runDir,
    model,
    lora,
    ref,
    tok,
    task,
    rewards,
    params,
    opt,
    pipeline: new Pipeline(algo),
    sampler,
    rng: Rng.fromSeed(BigInt(cfg.seed)),
    evalProblems,
    stopIds,
    log,
    diagnostics: new Diagnostics(group && group.rank > 0 ? () => {} : log),
    dist: null,
    env,
    remote: cfg.sampler.kind === "openai" ? remoteRollouts(cfg.sampler, runDir, log) : null,
  };
}

/** Prompt text → token ids (BOS first when the tokenizer has one). */
function encodePrompt(tok: Tokenizer, text: string): number[] {
  const ids = tok.encode(text);
  return tok.bosId !== null ? [tok.bosId, ...ids] : ids;
}

function completionText(tok: Tokenizer, c: Completion): string {
  return tok.decode(c.tokens, { skipSpecialTokens: true });
}

/** Greedy (or sampled) accuracy on the fixed held-out problems. */
export function evaluate(
  ctx: Ctx,
  step: number,
): { accuracy: number; format: number; samples: Record<string, unknown>[] } {
  const { cfg, tok, task } = ctx;
  if (ctx.env) {
    const seeds = ctx.evalProblems.map((_, i) => requestSeed(cfg.seed + 1, step, i));
    const params = { temperature: cfg.eval.temperature, stopTokenIds: ctx.stopIds };
    return ctx.env.evaluate(ctx.sampler, ctx.evalProblems, seeds, params, cfg.eval.logSamples, step);
  }
  const prompts = ctx.evalProblems.map((p) => encodePrompt(tok, p.prompt));
  const comps = ctx.sampler.generateSync(prompts, {
    maxTokens: cfg.sampling.maxNewTokens,
    temperature: cfg.eval.temperature,
    stopTokenIds: ctx.stopIds,
    ...(cfg.sampling.stop.length > 0 ? { stop: cfg.sampling.stop } : {}),
    seed: ctx.evalProblems.map((_, i) => requestSeed(cfg.seed + 1, step, i)),
  });
  let correct = 0;
  let format = 0;
  const samples: Record<string, unknown>[] = [];
  comps.forEach((c, i) => {
    const p = ctx.evalProblems[i] as Problem;
    const text = completionText(tok, c);
    const v = task.verify(p, text);
    if (v.correct) correct++;
    if (v.format) format++;
    if (i < cfg.eval.logSamples)
      samples.push({ step, prompt: p.prompt, completion: text, answer: p.answer ?? null, correct: v.correct });
  });
  return { accuracy: correct / comps.length, format: format / comps.length, samples };
}

interface Rollout {
  prompts: number[][];
  completions: Completion[];
  texts: string[];
  problems: Problem[];
  groupIndex: Int32Array;
}

/** Rollout-level components of a run (prompt sampler, budget allocator, dynamic sampling), made on first use. */
const plans = new WeakMap<Ctx, RolloutPlan>();
function planOf(ctx: Ctx): RolloutPlan {
  let plan = plans.get(ctx);
  if (plan === undefined) {
    plan = new RolloutPlan(
      ctx.algo.rollout,
      ctx.task,
      ctx.rewards.map((r) => r.name),
    );
    plans.set(ctx, plan);
  }
  return plan;
}

/**
 * `counts[b]` completions of `problems[b]` (0 = skipped); request seeds start at `seedOffset`. `promptTexts[b]`,
 * when given, is sampled from instead of `problems[b].prompt` (rollout wrappers); rows keep `problems[b]`.
 */
async function rollout(
  ctx: Ctx,
  step: number,
  problems: readonly Problem[],
  counts: readonly number[],
  seedOffset: number,
  promptTexts?: readonly (string | undefined)[],
): Promise<Rollout> {
  const { cfg, tok } = ctx;
  if (ctx.env) {
    const { temperature, topK, topP, minP } = cfg.sampling;
    const params = { temperature, topK, topP, minP, stopTokenIds: ctx.stopIds };
    // episodes play on the rollout workers when there are some (their turns batched per request)
    return ctx.env.rollout(
      ctx.remote?.sampler ?? ctx.sampler,
      ctx.model.config.maxPositionEmbeddings,
      problems,
      counts,
      (i) => requestSeed(streamSeed(ctx), step, seedOffset + i),
      params,
    );
  }
  const prompts: number[][] = [];
  const groupIndex: number[] = [];
  const perRow: Problem[] = [];
  let group = 0;
  problems.forEach((p, b) => {
    const n = counts[b] as number;
    if (n <= 0) return;
    const ids = encodePrompt(tok, promptTexts?.[b] ?? p.prompt);
    for (let g = 0; g < n; g++) {
      groupIndex.push(group);
      prompts.push(ids);
      perRow.push(p);
    }
    group++;
  });
  const params = {
    maxTokens: cfg.sampling.maxNewTokens,
    temperature: cfg.sampling.temperature,
    topK: cfg.sampling.topK,
    topP: cfg.sampling.topP,
    minP: cfg.sampling.minP,
    stopTokenIds: ctx.stopIds,
    ...(cfg.sampling.stop.length > 0 ? { stop: cfg.sampling.stop } : {}),
    seed: prompts.map((_, i) => requestSeed(streamSeed(ctx), step, seedOffset + i)),
  };
  const completions = ctx.remote
    ? await ctx.remote.sampler.generate(prompts, params)
    : ctx.sampler.generateSync(prompts, params);
  return {
    prompts,
    completions,
    texts: completions.map((c) => completionText(tok, c)),
    problems: perRow,
    groupIndex: Int32Array.from(groupIndex),
  };
}

/** A completion that was not sampled from the policy (a DaGRPO anchor). */
type OffPolicyCompletion = Completion & { offPolicy: true };

function isOffPolicy(c: Completion): boolean {
  return (c as Partial<OffPolicyCompletion>).offPolicy === true;
}

/**
 * `WrapperHost.offPolicy`: one row (its own group) per problem whose completion is `texts[b]` + EOS, prompted
 * by `promptTexts[b]` ?? the problem's prompt. No sampler log-prob exists for these rows: their `logprobs`
 * are the training model's at the sampling temperature, computed here without grad (= ℓ_old of the step).
 */
function offPolicyRollout(
  ctx: Ctx,
  problems: readonly Problem[],
  texts: readonly string[],
  promptTexts?: readonly (string | undefined)[],
): Rollout {
  const { tok } = ctx;
  const prompts = problems.map((p, b) => encodePrompt(tok, promptTexts?.[b] ?? p.prompt));
  const tokens = texts.map((t) => [...tok.encode(t), tok.eosId]);
  const { lp, C } = noGrad(() =>
    tidy(() => {
      const packed = packBatch(prompts, tokens, { padId: tok.padId });
      const P = packed.promptLength;
      const r = ctx.model.logprobs(packed, { temperature: ctx.cfg.sampling.temperature });
      // [n, C] completion columns
      return { lp: r.lp.slice(1, P).to("f64").data() as Float64Array, C: (packed.inputIds.shape[1] as number) - P };
    }),
  );
  const completions: OffPolicyCompletion[] = tokens.map((ids, b) => ({
    tokens: ids,
    logprobs: Array.from(lp.subarray(b * C, b * C + ids.length)),
    finishReason: "stop",
    offPolicy: true,
  }));
  return {
    prompts,
    completions,
    texts: completions.map((c) => completionText(tok, c)),
    problems: [...problems],
    groupIndex: Int32Array.from(problems, (_, b) => b),
  };
}

/** Scores a round with every reward function; failures go to reward_failures.jsonl. */
async function scoreRollout(ctx: Ctx, step: number, ro: Rollout): Promise<{ byFn: Float64Array[]; failures: number }> {
  const { cfg } = ctx;
  if (ctx.env) return { byFn: ctx.env.scores(ro.completions), failures: 0 };
  const samples: RewardSample[] = ro.problems.map((p, i) => toRewardSample(p, ro.texts[i] as string));
  const scored = await scoreAll(ctx.rewards, samples, {
    timeoutMs: cfg.rewardTimeoutMs,
    concurrency: cfg.rewardConcurrency,
  });
  if (scored.failures.length > 0) {
    const lines = scored.failures.map((f) =>
      JSON.stringify({ step, reward: f.reward, kind: f.kind, message: f.message, sample: f.sample }),
    );
    appendLines(join(ctx.runDir, "reward_failures.jsonl"), lines);
    ctx.diagnostics.rewardFailures(
      step,
      scored.failures.length,
      scored.failures[0] as { reward: string; kind: string; message: string },
    );
  }
  return { byFn: toRewardMatrix(scored.rewards), failures: scored.failures.length };
}

interface Collected {
  ro: Rollout;
  byFn: Float64Array[];
  failures: number;
  sampledTokens: number;
  samplingMs: number;
  metrics: Record<string, number>;
}

/**
 * The step's scored rollouts: prompts from the prompt sampler, completions per prompt from the budget
 * allocator (total B·G), and with dynamic sampling further rounds until B groups have reward variance.
 * Every round's outcomes update the sampler and the pass-rate history.
 */
async function collect(ctx: Ctx, step: number): Promise<Collected> {
  const plan = planOf(ctx);
  const { promptsPerStep, groupSize } = ctx.cfg.train;
  // with data parallelism: this rank's B/N prompts; request seeds continue from its first global row
  const B = ctx.dist ? ctx.dist.localPrompts(promptsPerStep) : promptsPerStep;
  const total = B * groupSize;
  let offset = ctx.dist ? ctx.dist.firstRow(promptsPerStep, groupSize) : 0;
  let failures = 0;
  let sampledTokens = 0;
  let samplingMs = 0;
  const counts: number[] = [];
  const wrapperMetrics: Record<string, number>[] = [];
  const runRound = async (): Promise<ScoredRollout<Completion>> => {
    const problems =
      ctx.dist?.mode === "split"
        ? ctx.dist.share(plan.sampler.next(promptsPerStep, ctx.rng))
        : plan.sampler.next(B, ctx.rng);
    const alloc = plan.allocator.allocate(problems, plan.history, total);
    counts.push(...alloc);
    if (plan.wrapper !== undefined) {
      const res = await plan.wrapper.rollout(wrapperHost(), problems, alloc);
      wrapperMetrics.push(res.metrics);
      const b = res.batch;
      plan.record(plan.outcomes(b.problems, b.groupIndex, b.byFn, b.texts));
      return b;
    }
    const t = performance.now();
    const ro = await rollout(ctx, step, problems, alloc, offset);
    samplingMs += performance.now() - t;
    offset += ro.completions.length;
    for (const c of ro.completions) sampledTokens += c.tokens.length;
    const sc = await scoreRollout(ctx, step, ro);
    failures += sc.failures;
    // plain GRPO sampling reads no outcome, so its checkpoints carry no pass-rate history
    if (!plan.isDefault) plan.record(plan.outcomes(ro.problems, ro.groupIndex, sc.byFn, ro.texts));
    return { ...ro, byFn: sc.byFn };
  };
  /** The sampling and scoring a rollout wrapper calls (seeds continue the step's request offsets). */
  const wrapperHost = (): WrapperHost<Completion> => ({
    step,
    groupSize: ctx.cfg.train.groupSize,
    sample: async (ps, cs, texts) => {
      if (!cs.some((n) => n > 0)) {
        const none = { prompts: [], completions: [], texts: [], problems: [], groupIndex: new Int32Array(0) };
        return { ...none, byFn: ctx.rewards.map(() => new Float64Array(0)) };
      }
      const t = performance.now();
      const r = await rollout(ctx, step, ps, cs, offset, texts);
      samplingMs += performance.now() - t;
      offset += r.completions.length;
      for (const c of r.completions) sampledTokens += c.tokens.length;
      const sc = await scoreRollout(ctx, step, r);
      failures += sc.failures;
      return { ...r, byFn: sc.byFn };
    },
    success: (batch, i) => plan.isSuccess(batch.byFn, i),
    reward: (batch, i) => plan.successReward(batch.byFn, i),
    successIndex: plan.successIndex,
    task: ctx.task,
    offPolicy: async (ps, texts, promptTexts) => {
      const r = offPolicyRollout(ctx, ps, texts, promptTexts);
      const sc = await scoreRollout(ctx, step, r);
      failures += sc.failures;
      return { ...r, byFn: sc.byFn };
    },
  });
  const ds = plan.cfg.dynamicSampling;
  const metrics: Record<string, number> = {};
  let scored: ScoredRollout<Completion>;
  if (ds === undefined) {
    scored = await runRound();
  } else {
    const res = await dynamicSampling(B, ds, async () => {
      const r = await runRound();
      const keptGroups = groupsWithVariance(ctx.algo, r.byFn, {
        groupIndex: r.groupIndex,
        lengths: Int32Array.from(r.completions, (c) => c.tokens.length),
        meanLogprobs: Float64Array.from(r.completions, (c) =>
          c.logprobs.length ? c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length : 0,
        ),
        truncated: Uint8Array.from(r.completions, (c) => (c.finishReason === "length" ? 1 : 0)),
        texts: r.texts,
      });
      return { batch: r, keptGroups };
    });
    // under train-partial with no group kept, the last round is trained as is (its groups carry A = 0)
    scored = res.groupsKept > 0 ? concatGroups(res.picks) : res.last;
    metrics["rollout/rounds"] = res.rounds;
    metrics["rollout/prompts_sampled"] = res.promptsSampled;
    metrics["rollout/groups_kept"] = res.groupsKept;
    metrics["rollout/capped"] = res.capped ? 1 : 0;
  }
  if (!plan.isDefault) Object.assign(metrics, allocationMetrics(counts), plan.sampler.metrics());
  // a wrapper's metrics, averaged over the step's rounds
  for (const k of new Set(wrapperMetrics.flatMap((m) => Object.keys(m)))) {
    const vs = wrapperMetrics.map((m) => m[k]).filter((v): v is number => v !== undefined);
    metrics[k] = vs.reduce((a, v) => a + v, 0) / vs.length;
  }
  const { byFn, ...ro } = scored;
  return { ro, byFn, failures, sampledTokens, samplingMs, metrics };
}

/** What the batch builders (batch.ts) read of the run. */
function batchSource(ctx: Ctx): BatchSource {
  return {
    model: ctx.model,
    ref: ctx.ref,
    lora: ctx.lora,
    padId: ctx.tok.padId,
    temperature: ctx.cfg.sampling.temperature,
    microBatchSize: ctx.cfg.train.microBatchSize,
    sharedPrefix: ctx.cfg.train.forward === "shared-prefix",
  };
}

function maskedMean(x: Tensor, mask: Tensor): number {
  return tidy(() => {
    const d = mask.sum().item();
    return d > 0 ? x.mul(mask).sum().item() / d : 0;
  });
}

function split<T>(xs: T[], parts: number): T[][] {
  const out: T[][] = [];
  const size = Math.ceil(xs.length / parts);
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Mean of `x` over each row's valid tokens → length N. */
function rowMeans(x: Tensor, mask: Tensor): Float64Array {
  return tidy(() => {
    const m = mask.to("f64");
    return x.to("f64").mul(m).sum(1).div(m.sum(1).clamp(1, null)).data() as Float64Array;
  });
}

/** The loss inputs of a micro-batch from its forward pass (pass rates over whole groups, for ETR). */
function lossBatchOf(m: Micro, f: { lp: Tensor; entropy?: Tensor }, ro: Rollout, rewards: Float64Array): LossBatch {
  const passRate = groupPassRate(rewards, ro.groupIndex);
  return {
    logprobs: f.lp,
    oldLogprobs: m.oldLp ?? f.lp.detach(),
    ...(m.refLp ? { refLogprobs: m.refLp } : {}),
    ...(f.entropy ? { entropy: f.entropy } : {}), // with grad: entropy bonuses differentiate it
    advantages: m.adv,
    mask: m.mask,
    groupIndex: Int32Array.from(m.rows, (r) => ro.groupIndex[r] as number),
    rewards: Float64Array.from(m.rows, (r) => rewards[r] as number),
    passRate: Float64Array.from(m.rows, (r) => passRate[r] as number),
  };
}

/**
 * The step-wide prepass sums of a minibatch (components that need the whole step, e.g. DisCO's KL_old, R²VPO's
 * mean ratio): a forward pass without gradient per micro-batch, summed, and with data parallelism over ranks.
 */
function prepassOf(ctx: Ctx, mb: Micro[], ro: Rollout, rewards: Float64Array, counts: GlobalCounts, step: number) {
  const loss = ctx.pipeline.loss;
  const global = loss.emptyGlobals();
  noGrad(() => {
    for (const m of mb) {
      tidy(() => {
        const f = forward(ctx.model, m, ctx.cfg.sampling.temperature, false);
        addGlobals(global, loss.prepass(lossBatchOf(m, f, ro, rewards), counts, { step }));
      });
    }
  });
  if (ctx.dist) {
    const recs: Record<string, number>[] = Object.values(global);
    const summed = ctx.dist.group.sum(recs.flatMap((rec) => Object.values(rec)));
    let k = 0;
    for (const rec of recs) for (const f of Object.keys(rec)) rec[f] = summed[k++] as number;
  }
  return global;
}

async function trainStep(ctx: Ctx, step: number, feed: Feed): Promise<MetricRecord> {
  const { cfg, algo } = ctx;
  const pl = ctx.pipeline;
  const t0 = performance.now();
  // ---- prompts → budgets → rollouts (dynamic sampling: several rounds) → rewards ---------------------
  // (`collect`, through the feed: with sampler.overlap the next steps' rollouts are under way when it returns)
  const col = await feed.take(step);
  const { ro, byFn, sampledTokens } = col;
  const tSample = t0 + col.samplingMs;
  const N = ro.completions.length;
  const lengths = Int32Array.from(ro.completions, (c) => c.tokens.length);
  const src = batchSource(ctx);

  // ---- whole-batch inputs by need, then rewards → advantages (after the dynamic-sampling filter, A.6) ------
  const meanLogprobs = Float64Array.from(ro.completions, (c) =>
    c.logprobs.length ? c.logprobs.reduce((a, b) => a + b, 0) / c.logprobs.length : 0,
  );
  const truncated = Uint8Array.from(ro.completions, (c) => (c.finishReason === "length" ? 1 : 0));
  // π_old is cached when the weights move before the last update of this batch (μ > 1, several minibatches)
  const storeOld = cfg.train.innerIterations > 1 || Math.min(cfg.train.miniBatches, N) > 1;
  const whole = wholeBatch(src, ro, { pipeline: pl });
  const T = cfg.sampling.temperature;
  let stage: RewardStage;
  let tok: TokenStage;
  const rewardKl =
    whole.old && whole.ref ? keep(tidy(() => (whole.old as Tensor).sub(whole.ref as Tensor).mul(whole.mask))) : null;
  try {
    const entropy = whole.entropy;
    const inputs: StageInputs = {
      ...(entropy ? { meanEntropy: () => rowMeans(entropy, whole.mask) } : {}),
      ...(pl.has("targetRatio") ? { targetRatio: targetRatioOf(src, ro, whole.C, whole.mask) } : {}),
      ...(rewardKl ? { rewardKl } : {}),
    };
    const base = {
      groupIndex: ro.groupIndex,
      lengths,
      meanLogprobs,
      truncated,
      texts: ro.texts,
      ...oneStepEpisodes(ro.problems),
    };
    // with data parallelism the stage sees every rank's rows (batch statistics), and each rank keeps its own
    stage = ctx.env
      ? ctx.env.advantages(pl, byFn, ro.completions, ro.groupIndex, inputs)
      : ctx.dist
        ? advantagesOverRanks(ctx.dist.group, pl, byFn, base, { ...inputs, mask: whole.mask })
        : pl.advantages(byFn, base, { ...inputs, mask: whole.mask });
    tok = pl.tokenStage(stage, {
      mask: whole.mask,
      tokenIds: whole.tokenIds,
      truncated,
      groupIndex: ro.groupIndex,
      ...(entropy ? { entropy } : {}),
      ...(whole.curvature ? { curvature: whole.curvature } : {}),
    });
  } finally {
    rewardKl?.dispose();
  }
  const rewards = stage.batch.rewards;

  const metrics: MetricRecord = { step };
  const finite = Array.from(rewards).filter((r) => !Number.isNaN(r));
  const rs = stats(finite);
  metrics.reward_mean = rs.mean;
  metrics.reward_std = rs.std;
  ctx.rewards.forEach((r, k) => {
    const s = stats(Array.from(byFn[k] as Float64Array).filter((x) => !Number.isNaN(x)));
    metrics[`reward/${r.name}/mean`] = s.mean;
    metrics[`reward/${r.name}/std`] = s.std;
  });
  metrics.reward_failures = col.failures;
  let zeroStd = 0;
  // groups of the trained batch (B, unless a budget allocator skipped prompts or dynamic sampling fell short)
  let B = 0;
  for (const g of ro.groupIndex) B = Math.max(B, g + 1);
  for (let b = 0; b < B; b++) {
    const g = Array.from(rewards).filter((_, i) => ro.groupIndex[i] === b && !Number.isNaN(rewards[i] as number));
    if (g.length < 2 || stats(g).std === 0) zeroStd++;
  }
  metrics.frac_reward_zero_std = B > 0 ? zeroStd / B : 0;
  const ls = stats(lengths);
  metrics["completions/mean_length"] = ls.mean;
  metrics["completions/min_length"] = ls.min;
  metrics["completions/max_length"] = ls.max;
  metrics["completions/clipped_ratio"] = truncated.reduce((a, b) => a + b, 0) / N;
  Object.assign(metrics, stage.metrics, tok.metrics, col.metrics);

  // ---- minibatches and micro-batches of the kept rows (cut at group boundaries for per-question losses) ----
  const kept = Array.from({ length: N }, (_, i) => i).filter((i) => stage.keep[i] === 1);
  const whole_groups = pl.has("wholeGroups");
  const miniBatches = ctx.dist
    ? ctx.dist.miniBatches(kept, cfg.train.miniBatches)
    : kept.length > 0
      ? whole_groups
        ? microBatchRows(kept, ro.groupIndex, rowsPerPart(kept.length, cfg.train.miniBatches), true)
        : split(kept, Math.min(cfg.train.miniBatches, kept.length))
      : [];
  const micros: Micro[][] = miniBatches.map((mb) =>
    // ⌈n / microBatchSize⌉ micro-batches of equal size (at group boundaries when a component needs whole groups)
    microBatchRows(
      mb,
      ro.groupIndex,
      rowsPerPart(mb.length, Math.ceil(mb.length / cfg.train.microBatchSize)),
      whole_groups,
    ).map((rows) =>
      buildMicro(src, ro, rows, stage, tok, whole, { storeOld, ref: pl.has("refLogprobs") }, isOffPolicy),
    ),
  );
  disposeWhole(whole);
  tok.mask.dispose();
  tok.advantageWeights?.dispose();
  for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") a.values.dispose();

  // ---- μ passes of optimisation ------------------------------------------------------------------
  const tTrain0 = performance.now();
  let gradNormLast = 0;
  let lossSum = 0;
  let entSum = 0;
  let entTok = 0;
  let klSum = 0;
  let mismatchSum = 0;
  let mismatchTok = 0;
  let isStats = emptyIsStats();
  let skipped = 0;
  let optSteps = 0;
  const lossMetrics: Record<string, number[]> = {};
  const lr = learningRate(
    {
      kind: cfg.train.schedule,
      lr: cfg.train.lr,
      warmupSteps: cfg.train.warmupSteps,
      totalSteps: cfg.train.steps,
      minLrRatio: cfg.train.minLrRatio,
    },
    step - 1,
  );
  const needsEntropy = pl.has("tokenEntropy") || true; // the trainer's own `entropy` metric reads it too
  for (let it = 0; it < cfg.train.innerIterations; it++) {
    for (const mb of micros) {
      ctx.opt.zeroGrad();
      const local = stepCounts(
        algo,
        mb.map((m) => m.mask),
        mb.map((m) => m.rows),
        ro.groupIndex,
      );
      const counts = ctx.dist ? ctx.dist.reduceCounts(local) : local;
      // step-wide sums (one forward without gradient per micro-batch; from the same forward when there is one)
      const onePass = mb.length === 1 && ctx.dist === null;
      let global = pl.loss.needsPrepass && !onePass ? prepassOf(ctx, mb, ro, rewards, counts, step) : {};
      let finiteLoss = true;
      for (const m of mb) {
        tidy(() => {
          const f = forward(ctx.model, m, T, needsEntropy);
          const lb = lossBatchOf(m, f, ro, rewards);
          if (pl.loss.needsPrepass && onePass)
            global = pl.loss.prepass({ ...lb, logprobs: f.lp.detach() }, counts, { step });
          // train/sampler mismatch correction (algo/importance.ts): w scales each token's advantage
          const is = ctx.remote?.importanceSampling;
          const isw = is
            ? samplerImportanceWeights(lb.oldLogprobs, m.samplerLp, m.mask, is.mode, is.cap, m.offPolicy)
            : null;
          if (isw && it === 0) isStats = mergeIsStats(isStats, isw.stats);
          if (isw) lb.advantages = broadcastAdvantages(m.adv, f.lp).mul(isw.weights);
          const res = pl.loss.compute(lb, counts, { step, global });
          const lv = res.loss.item();
          if (!Number.isFinite(lv)) finiteLoss = false;
          else {
            // data parallel: buckets are all-reduced during the step's last backward pass
            if (ctx.dist && m === mb[mb.length - 1]) ctx.dist.beforeLastBackward(ctx.params);
            res.loss.backward();
          }
          pl.observe(lb);
          lossSum += lv;
          for (const [k, v] of Object.entries(res.metrics)) {
            lossMetrics[k] ??= [];
            lossMetrics[k].push(v);
          }
          if (it === 0) {
            const tokens = m.mask.gt(0).to("f32");
            const nTok = tokens.sum().item();
            if (f.entropy) {
              entSum += maskedMean(f.entropy, tokens) * nTok;
              entTok += nTok;
            }
            const before = m.oldLp ?? f.lp.detach();
            // off-policy rows carry the training model's log-probs, not a sampler's: not a mismatch sample
            const onPolicyTokens = m.offPolicy.includes(1)
              ? tokens.mul(
                  tensor(
                    Float32Array.from(m.offPolicy, (o) => 1 - o),
                    { shape: [m.rows.length, 1], device: tokens.device as Device },
                  ),
                )
              : tokens;
            const nSampled = onPolicyTokens.sum().item();
            mismatchSum += maskedMean(before.sub(m.samplerLp).abs(), onPolicyTokens) * nSampled;
            mismatchTok += nSampled;
            const refOrOld = m.refLp ?? m.oldLp;
            if (refOrOld) {
              const d = refOrOld.sub(f.lp.detach()).clamp(-20, 20);
              klSum += maskedMean(d.exp().sub(d).sub(1), tokens) * nTok;
            }
          }
        });
      }
      if (ctx.dist) finiteLoss = ctx.dist.reduceGradients(ctx.params, finiteLoss);
      const gn =
        cfg.train.maxGradNorm > 0
          ? clipGradNorm(ctx.params, cfg.train.maxGradNorm)
          : clipGradNorm(ctx.params, Number.POSITIVE_INFINITY);
      gradNormLast = gn;
      // stateful components move once per optimizer step, with the same sums on every rank
      if (ctx.dist) pl.setStepSums(ctx.dist.group.sum(pl.stepSums()));
      if (!finiteLoss || !Number.isFinite(gn)) {
        skipped++;
        ctx.opt.zeroGrad();
        pl.endStep(false);
        ctx.diagnostics.nonFinite(step, finiteLoss ? "gradient norm" : "loss");
        continue;
      }
      ctx.opt.step(lr);
      pl.endStep(true);
      optSteps++;
      ctx.diagnostics.gradNorm(step, gn);
    }
  }
  ctx.opt.zeroGrad();
  for (const m of micros.flat()) disposeMicro(m);
  const tEnd = performance.now();

  const trainedTokens = kept.reduce((a, r) => a + (lengths[r] as number), 0) * cfg.train.innerIterations;
  metrics.loss = optSteps + skipped > 0 ? lossSum / Math.max(1, optSteps + skipped) : 0;
  // null (not 0) when every sample was filtered out and nothing was trained on
  metrics.kl = entTok > 0 ? klSum / entTok : null;
  metrics.entropy = entTok > 0 ? entSum / entTok : null;
  metrics.grad_norm = gradNormLast;
  metrics.learning_rate = lr;
  metrics.skipped_updates = skipped;
  if (ctx.dist) Object.assign(metrics, ctx.dist.gradientMetrics());
  for (const [k, vs] of Object.entries(lossMetrics)) metrics[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
  metrics["sampler/logprob_abs_diff_mean"] = mismatchTok > 0 ? mismatchSum / mismatchTok : 0;
  Object.assign(metrics, isMetrics(isStats));
  metrics["tokens_per_s/sampling"] = sampledTokens / ((tSample - t0) / 1000);
  metrics["tokens_per_s/training"] = trainedTokens / Math.max(1e-9, (tEnd - tTrain0) / 1000);
  metrics["time/sampling_s"] = (tSample - t0) / 1000;
  metrics["time/training_s"] = (tEnd - tTrain0) / 1000;
  metrics["time/step_s"] = (tEnd - t0) / 1000;
  if (ctx.dist) {
    // the whole batch's metrics, from every rank's (src/dist/metrics.ts)
    const rewardsByFn = Object.fromEntries(
      ctx.rewards.map((r, k) => [r.name, Array.from(byFn[k] as Float64Array).filter((x) => !Number.isNaN(x))]),
    );
    const facts = {
      rewards: finite,
      rewardsByFn,
      lengths: Array.from(lengths),
      truncated: truncated.reduce((a, b) => a + b, 0),
      groups: B,
      zeroStdGroups: zeroStd,
      entropyTokens: entTok,
      mismatchTokens: mismatchTok,
      sampledTokens,
      trainedTokens,
      microBatchValues: Object.fromEntries(Object.entries(lossMetrics).map(([k, vs]) => [k, vs.length])),
    };
    Object.assign(metrics, ctx.dist.reduceMetrics(metrics, facts));
  }

  // diagnostics that explain themselves
  ctx.diagnostics.zeroStd(step, metrics.frac_reward_zero_std as number);
  if (typeof metrics.entropy === "number") ctx.diagnostics.entropy(step, metrics.entropy);
  // likelihood of the successful completions (the task's success reward, as rollout wrappers judge it)
  const plan = planOf(ctx);
  const lp = Array.from(meanLogprobs).filter((_, i) => plan.isSuccess(byFn, i));
  if (lp.length > 0) ctx.diagnostics.correctLikelihood(step, stats(lp).mean);
  return metrics;
}

function trainableState(ctx: Ctx): Record<string, Tensor> {
  return Object.fromEntries(ctx.lora ? ctx.lora.namedParameters() : ctx.model.namedParameters());
}

/** The part of the resume state that rollouts advance: a batch generated ahead is not part of a checkpoint. */
interface RolloutResumeState {
  rng: ReturnType<Rng["state"]>;
  rollout: Record<string, unknown>;
}

/** The trainer's source of batches (sampler.overlap, src/serve/remote-sampler.ts). */
type Feed = RolloutFeed<Collected, RolloutResumeState>;

function newFeed(ctx: Ctx, lastStep: number): Feed {
  return new RolloutFeed({
    overlap: ctx.cfg.sampler.kind === "openai" ? ctx.cfg.sampler.overlap : 0,
    lastStep,
    remote: ctx.remote,
    sync: async (step) => ctx.remote?.sync(ctx.model, ctx.lora, step), // sampler.syncWeights
    collect: (step) => collect(ctx, step),
    snapshot: () => JSON.parse(JSON.stringify({ rng: ctx.rng.state(), rollout: planOf(ctx).state() })),
  });
}

/**
 * Saves a checkpoint (with data parallelism: rank 0 writes every rank's state; others return ""). `ahead`: the
 * RNG and rollout state from before the batches generated ahead (sampler.overlap), which resume regenerates.
 */
function save(ctx: Ctx, step: number, ahead: RolloutResumeState | null = null, runId?: string): string {
  let state: Record<string, unknown> = {
    rng: ahead?.rng ?? ctx.rng.state(),
    torchRng: toBase64(getRngState()),
    components: ctx.pipeline.state(),
    diagnostics: ctx.diagnostics.state(),
    rollout: ahead?.rollout ?? planOf(ctx).state(),
  };
  if (ctx.dist) {
    const all = ctx.dist.gatherStates(state);
    if (!ctx.dist.isMain) return "";
    state = ctx.dist.checkpointState(all);
  }
  if (runId !== undefined) state.runId = runId; // --resume refuses a checkpoint of another run (rundir.ts)
  const dir = saveCheckpoint(
    ctx.runDir,
    { step, weights: trainableState(ctx), optimizer: ctx.opt.state(), state },
    ctx.cfg.checkpoint.keep,
  );
  return dir;
}

function restore(ctx: Ctx, dir: string): number {
  const ck = loadCheckpoint(dir);
  checkResumeWorldSize(ck.state, ctx.dist?.worldSize ?? 1, dir);
  const named = new Map(ctx.lora ? ctx.lora.namedParameters() : ctx.model.namedParameters());
  tidy(() => {
    for (const [name, p] of named) {
      const src = ck.weights[name];
      if (src === undefined)
        throw new CohortError(`checkpoint ${dir} lacks "${name}"; was it written by a different config?`);
      p.copy_(src);
    }
  });
  ctx.opt.load(ck.optimizer);
  for (const t of [...Object.values(ck.weights), ...Object.values(ck.optimizer.tensors)]) t.dispose();
  const s = (ctx.dist ? ctx.dist.rankState(ck.state, dir) : ck.state) as {
    rng: ReturnType<Rng["state"]>;
    torchRng: string;
    components?: Record<string, unknown>;
    diagnostics: Record<string, unknown>;
    rollout?: Record<string, unknown>;
  };
  ctx.rng = Rng.fromState(s.rng);
  setRngState(fromBase64(s.torchRng));
  ctx.pipeline.load(s.components ?? {});
  ctx.diagnostics.load(s.diagnostics ?? {});
  if (s.rollout !== undefined) planOf(ctx).load(s.rollout);
  return ck.step;
}

/** Saves the trained policy as a Hugging Face model directory (LoRA merged into the weights). */
export function exportModel(ctx: Ctx, dir: string): void {
  if (ctx.lora) ctx.lora.merge();
  try {
    const st = ctx.model.state();
    writeModelDir(dir, {
      config: st.meta.config as Record<string, unknown>,
      tensors: st.tensors,
      tokenizerFiles: ctx.tok.toFiles(),
    });
  } finally {
    if (ctx.lora) ctx.lora.unmerge();
  }
}

function dispose(ctx: Ctx): void {
  ctx.opt.dispose();
  ctx.ref?.dispose();
  if (ctx.lora) ctx.lora.detach();
  ctx.model.dispose();
}

/** Runs (or resumes) a training run; returns when it finishes or is stopped. */
export async function train(cfg: TrainConfig, opts: TrainOptions = {}): Promise<TrainResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const ctx = await setup(cfg, log, opts.dist);
  let feed: Feed | null = null;
  try {
    if (opts.dist) joinGroup(ctx, opts.dist);
    const rankMetrics: MetricRecord[] = []; // ranks other than 0 keep their records in memory
    // ---- every check, the model-dependent ones included, before the run directory is touched ------------
    const limits = {
      tok: ctx.tok,
      maxPositions: ctx.model.config.maxPositionEmbeddings,
      maxNewTokens: cfg.sampling.maxNewTokens,
    };
    if (cfg.task) checkTaskPrompts(ctx.task, ctx.evalProblems, limits, cfg.seed); // dataset rows: in setup
    checkFiniteWeights(ctx.model.namedParameters(), `the model ${resolvePath(cfg, cfg.model.path)}`);
    const plan = planRun(ctx.runDir, cfg, opts, log);
    let start = 0;
    if (plan.kind === "resume" && plan.checkpoint !== null) {
      const ck = plan.checkpoint;
      try {
        start = restore(ctx, ck);
      } catch (e) {
        if (e instanceof CohortError && !/older checkpoint|No older checkpoint/.test(e.message))
          throw new CohortError(`${e.message}.${fallbackHint(ck, ctx.runDir)}`);
        throw e;
      }
      checkFiniteWeights(Object.entries(trainableState(ctx)), `checkpoint ${ck}`);
    }
    // every rank has read the run directory before rank 0 changes it
    if (ctx.dist) ctx.dist.group.barrier();
    // ---- from here on the run directory is written --------------------------------------------------------
    if (isMain(ctx)) openRun(ctx.runDir, plan, cfg, start);
    const metricsLog = new MetricsLog(join(ctx.runDir, "metrics.jsonl"));
    const samplesPath = join(ctx.runDir, "samples.jsonl");
    const writeSamples = (rows: Record<string, unknown>[]) =>
      appendLines(
        samplesPath,
        rows.map((r) => JSON.stringify(r)),
      );
    if (plan.kind === "resume") {
      const changed = plan.changed.map((c) => c.key).join(", ");
      log(
        plan.checkpoint !== null
          ? `resumed from ${plan.checkpoint} (step ${start}), run ${plan.runId}${changed ? `; changed: ${changed}` : ""}`
          : `restarted run ${plan.runId} from step 0`,
      );
    }
    const evalEvery = cfg.eval.everySteps;
    if (start === 0 && evalEvery > 0 && isMain(ctx)) {
      const ev = evaluate(ctx, 0);
      metricsLog.append({ step: 0, eval_accuracy: ev.accuracy, eval_format: ev.format });
      writeSamples(ev.samples);
      opts.onStep?.({ step: 0, eval_accuracy: ev.accuracy });
    }
    let step = start;
    let stoppedEarly = false;
    const last = Math.min(cfg.train.steps, opts.stopAfterStep ?? Number.POSITIVE_INFINITY);
    feed = newFeed(ctx, last);
    while (step < last) {
      // let signal handlers (Ctrl-C) and timers run between steps: a step is mostly synchronous native work
      await new Promise((r) => setImmediate(r));
      step++;
      const m = await trainStep(ctx, step, feed); // pushes the weights (sampler.syncWeights) before rollouts
      if (ctx.remote) Object.assign(m, feed.metrics); // pool/… metrics, time/rollout_wait_s
      if (evalEvery > 0 && isMain(ctx) && (step % evalEvery === 0 || step === cfg.train.steps)) {
        const ev = evaluate(ctx, step);
        m.eval_accuracy = ev.accuracy;
        m.eval_format = ev.format;
        writeSamples(ev.samples);
      }
      if (isMain(ctx)) metricsLog.append(m);
      else rankMetrics.push(m);
      opts.onStep?.(m);
      // every rank stops after the same step (a stop request reaches them at different moments)
      const stopRequested = opts.stopSignal?.stop === true;
      const stopping = ctx.dist ? ctx.dist.group.any(stopRequested) : stopRequested;
      const every = cfg.checkpoint.everySteps;
      if ((every > 0 && step % every === 0) || step === cfg.train.steps || stopping) {
        const d = save(ctx, step, feed.resumeState(), plan.runId); // batches generated ahead are regenerated on resume
        if (stopping && d !== "") log(`saved ${d}`);
      }
      if (stopping) {
        stoppedEarly = true;
        break;
      }
    }
    if (step === cfg.train.steps && isMain(ctx)) exportModel(ctx, join(ctx.runDir, "final"));
    return {
      runDir: ctx.runDir,
      steps: step,
      stoppedEarly: stoppedEarly || step < cfg.train.steps,
      metrics: isMain(ctx) ? metricsLog.read() : rankMetrics,
    };
  } finally {
    await feed?.drain(); // batches still generating ahead (a stop, an error) finish before the model is freed
    ctx.remote?.close();
    dispose(ctx);
  }
}
