/**
 * Supervised pre-training on scripted episodes (`cohort pretrain --env maze`): an environment's expert policy
 * (noisy, so only partly optimal) plays train tasks, and a small char-level model learns to imitate its
 * actions. Each example is one whole episode in the `text` template, exactly as the episode roller builds it;
 * the loss is the mean next-token cross-entropy over the action tokens only (observations are holes in the
 * mask). Seeded and deterministic; checked every `evalEvery` steps by the greedy success rate on held-out tasks,
 * and stopped at `maxSteps` or once it reaches `targetAccuracy`.
 * @module
 */
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { ConfigError } from "../errors.js";
import { writeFileAtomic } from "../io/atomic.js";
import { writeModelDir } from "../io/hf.js";
import { packBatch } from "../model/batch.js";
import { configToHF } from "../model/config.js";
import type { CausalLM } from "../model/llama.js";
import { LocalSampler } from "../model/sampler.js";
import { type SftRunOptions, sftOptimizer, tinyCharModel } from "../model/tiny.js";
import { Rng } from "../task/rng.js";
import { defaultNumThreads, learningRate, manualSeed, setNumThreads, tensor, tidy } from "../tensor/index.js";
import { CharTokenizer } from "../tokenizer/char.js";
import type { Tokenizer } from "../tokenizer/types.js";
import { createEnv } from "./registry.js";
import { EpisodeRoller } from "./roller.js";
import type { EnvFactory, ScriptedPolicy } from "./types.js";

/** One scripted episode as an SFT example: prompt ids, completion ids and its loss mask (1 = action token). */
export interface SftExample {
  prompt: number[];
  completion: number[];
  mask: number[];
  success: boolean;
}

/**
 * Plays `task` with `policy` and writes the episode as the `text` template would: action text + newline
 * (mask 1), then the next observation (mask 0), until done or `maxTurns`.
 */
export function scriptedEpisode(
  roller: EpisodeRoller,
  tok: Tokenizer,
  task: unknown,
  policy: ScriptedPolicy,
  rng: Rng,
  seed = 0,
): SftExample {
  const env = roller.factory.make();
  const tmpl = roller.template();
  const prompt = tmpl.start(env.reset(seed, task));
  const completion: number[] = [];
  const mask: number[] = [];
  let success = false;
  for (let turn = 0; turn < roller.limits.maxTurns; turn++) {
    const action = policy(env, rng);
    const ids = tok.encode(`${action}\n`);
    completion.push(...ids);
    for (let j = 0; j < ids.length; j++) mask.push(1);
    const r = env.step(action);
    if (r.info.success === true) success = true;
    if (r.done || turn === roller.limits.maxTurns - 1) break;
    const obs = tmpl.next(ids, r.observation);
    completion.push(...obs);
    for (let j = 0; j < obs.length; j++) mask.push(0);
  }
  return { prompt, completion, mask, success };
}

export interface EnvPretrainOptions extends SftRunOptions {
  /** Environment name (maze, calculator) and its options. */
  env: string;
  envOptions?: Record<string, unknown>;
  /** How often the expert acts at random, in [0, 1]. Default 0.3. */
  noise?: number;
  /** Context length of the model. Default 128. */
  maxPositions?: number;
}

export interface EnvPretrainResult {
  steps: number;
  /** Greedy held-out success rate at the end. */
  evalAccuracy: number;
  /** Success rate of the expert's own (noisy) episodes in the training data. */
  expertSuccess: number;
  history: { step: number; loss: number; evalAccuracy?: number }[];
}

/** Greedy success rate of `model` on `tasks`. */
export function successRate(
  model: CausalLM,
  roller: EpisodeRoller,
  tok: Tokenizer,
  tasks: readonly unknown[],
  temperature = 0,
): number {
  const sampler = new LocalSampler(model, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
  const eps = roller.roll(
    sampler,
    tasks,
    tasks.map((_, i) => i),
    { temperature, stopTokenIds: [tok.eosId] },
  );
  return eps.filter((e) => e.success).length / Math.max(1, eps.length);
}

export function pretrainEnv(o: EnvPretrainOptions): EnvPretrainResult {
  const log = o.log ?? console.log;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const seed = o.seed ?? 0;
  const noise = o.noise ?? 0.3;
  if (!(noise >= 0 && noise <= 1)) throw new ConfigError(`--noise ${noise}: expected a value in [0, 1]`, "--noise");
  setNumThreads(defaultNumThreads());
  manualSeed(seed);
  const tok = new CharTokenizer();
  const factory: EnvFactory = createEnv(o.env, o.envOptions ?? {}, "--options");
  if (factory.expert === undefined) {
    throw new ConfigError(
      `environment "${o.env}" has no scripted expert to imitate; pre-train on a task instead`,
      "--env",
    );
  }
  const policy = factory.expert(noise);
  const roller = new EpisodeRoller(factory, tok, { template: "text" });
  const { cfg, model } = tinyCharModel(o, tok, o.maxPositions ?? 128, seed);
  const maxSteps = o.maxSteps ?? 1000;
  const batch = o.batchSize ?? 32;
  const evalEvery = o.evalEvery ?? 100;
  const target = o.targetAccuracy ?? 1;
  const { opt, schedule } = sftOptimizer(model, o, maxSteps, 50);
  const rng = Rng.fromSeed(BigInt(seed));
  const evalRng = Rng.fromSeed(BigInt(seed) ^ 0xe7a1n);
  const evalTasks = Array.from({ length: o.evalProblems ?? 200 }, () => factory.sampleTask(evalRng, "eval").task);
  const history: EnvPretrainResult["history"] = [];
  let acc = 0;
  let step = 0;
  let expertWins = 0;
  let expertEpisodes = 0;
  while (step < maxSteps) {
    step++;
    const ex = Array.from({ length: batch }, () =>
      scriptedEpisode(roller, tok, factory.sampleTask(rng, "train").task, policy, rng),
    );
    for (const e of ex) {
      expertEpisodes++;
      if (e.success) expertWins++;
      if (e.prompt.length + e.completion.length > cfg.maxPositionEmbeddings) {
        throw new ConfigError(
          `a scripted episode is ${e.prompt.length + e.completion.length} tokens, more than the model's ` +
            `${cfg.maxPositionEmbeddings} positions; raise --max-positions or shorten the episodes`,
          "--options",
        );
      }
    }
    const loss = tidy(() => {
      opt.zeroGrad();
      const packed = packBatch(
        ex.map((e) => e.prompt),
        ex.map((e) => e.completion),
        { padId: tok.padId },
      );
      const P = packed.promptLength;
      const C = (packed.inputIds.shape[1] as number) - P;
      const holes = new Float32Array(ex.length * C);
      ex.forEach((e, i) => {
        holes.set(e.mask, i * C);
      });
      const { lp } = model.logprobs(packed);
      const m = tensor(holes, { shape: [ex.length, C], dtype: "f32" }); // [B, C] action tokens
      const l = lp.slice(1, P).mul(m).sum().div(m.sum()).neg();
      l.backward();
      opt.step(learningRate(schedule, step - 1));
      return l.item();
    });
    const rec: EnvPretrainResult["history"][number] = { step, loss };
    if (step % evalEvery === 0 || step === maxSteps) {
      acc = successRate(model, roller, tok, evalTasks);
      rec.evalAccuracy = acc;
      log(`step ${step}  loss ${loss.toFixed(4)}  held-out success ${(100 * acc).toFixed(1)}%`);
    }
    history.push(rec);
    if (rec.evalAccuracy !== undefined && acc >= target) break;
  }
  const expertSuccess = expertWins / Math.max(1, expertEpisodes);
  const wallMin = (performance.now() - t0) / 60_000;
  const cpu = process.cpuUsage(cpu0);
  const cpuMin = (cpu.user + cpu.system) / 60e6;
  const st = model.state();
  writeModelDir(o.out, { config: configToHF(cfg), tensors: st.tensors, tokenizerFiles: tok.toFiles() });
  writeFileAtomic(
    join(o.out, "PRETRAIN.md"),
    [
      "# How this checkpoint was made",
      "",
      "```sh",
      o.command ?? "(programmatic pretrainEnv() call)",
      "```",
      "",
      `Environment: ${o.env} ${JSON.stringify(o.envOptions ?? {})}; expert noise ${noise}; seed ${seed}; ` +
        `${step} steps of batch ${batch} scripted episodes (text template, loss on action tokens only); ` +
        `${wallMin.toFixed(1)} min wall-clock, ${cpuMin.toFixed(1)} min CPU time on ${availableParallelism()} cores.`,
      `The expert's own episodes reached the goal ${(100 * expertSuccess).toFixed(1)}% of the time.`,
      `Greedy held-out success rate at the end: ${(100 * acc).toFixed(1)}% (${evalTasks.length} held-out tasks).`,
      "",
    ].join("\n"),
  );
  opt.dispose();
  model.dispose();
  return { steps: step, evalAccuracy: acc, expertSuccess, history };
}
