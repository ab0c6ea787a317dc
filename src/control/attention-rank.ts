/**
 * `attention_rank`: DR-RL's rank choice as a control environment (arXiv 2512.15973 [CODE] components; the
 * episode, features and scaling are design choices, ALGORITHMS.md §F.4).
 *
 * An episode is one input through a shipped causal LM, its layers in order. `reset(seed)` draws the input from
 * the task with that seed (the G episodes of a group share it: a group is G rank choices for the same input);
 * step l chooses the rank of layer l's queries and keys (src/model/lowrank.ts `RankedForward`) from a rank set
 * {rankMin, rankMin + rankStep, …, rankMax} (a rank ≥ head_dim is full rank).
 *
 * | piece        | definition                                                                                       |
 * |--------------|--------------------------------------------------------------------------------------------------|
 * | observation  | [layer one-hot · log T / log T_max · NER of Q and of K at every rank of the set (mean over heads) ·|
 * |              |  (mean, std, RMS) of W_q, W_k, W_v · (mean, std) of the normed layer input · previous action one-hot (+ none)] |
 * | reward (l)   | α·cos(O_full, O_r) − β·F(r)/F(full) − γ·‖ΔA‖_rel                                                   |
 * | F            | score FLOPs of the layer (`flops`: factored | prototype count, lowrank.ts `scoreFlops`)          |
 * | ‖ΔA‖_rel     | Eq. 8 for the change from the previous layer's rank to r on this layer's spectra (Q and K heads    |
 * |              | pooled), ÷ their total Frobenius norm; the first layer changes from full rank                    |
 * | guard        | with `epsilon`: the rank is raised through the set, one incremental update at a time, until the   |
 * |              | attention-output bound ÷ ‖V‖_F of every head is ≤ ε (the reward and FLOPs use the rank applied)   |
 *
 * Design choices against the prototype: fixed input statistics replace its learned Conv1d features, and the
 * spectra of the layer (which the truncation computes anyway) are observed; FLOPs enter relative to full rank
 * (the prototype's FLOPs/1e9 is ~1e-4 at this model size, which would make β inert); ‖ΔA‖ is relative for the
 * same reason. α, β, γ default to the prototype's 1, 0.05, 0.1.
 *
 * The shipped model is loaded when the first episode of a batch starts and freed when the last one ends.
 * @module
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { readModelDir } from "../io/hf.js";
import { CausalLM } from "../model/llama.js";
import { energyRatio, type FlopCount, RankedForward, rankChangeNorm, scoreFlops } from "../model/lowrank.js";
import { createTask } from "../task/registry.js";
import { Rng } from "../task/rng.js";
import type { Problem, Task } from "../task/types.js";
import { dispose, noGrad, tidy } from "../tensor/index.js";
import { loadTokenizer } from "../tokenizer/index.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { ControlEnv, ControlEnvSpec, StepResult } from "./env.js";
import type { ActionSpace } from "./policy.js";

/** The shipped checkpoint with the longest inputs (reasoning traces of up to 3-digit sums and differences). */
export const SHIPPED_MODEL = fileURLToPath(new URL("../../models/arithmetic-think", import.meta.url));

export const attentionRankOptions = z
  .strictObject({
    /** A Hugging Face model directory (Cohort's Llama family) with its tokenizer. */
    model: z.string().default(SHIPPED_MODEL),
    /** Options of the arithmetic task the inputs are drawn from. */
    task: z.record(z.string(), z.unknown()).default({ ops: { add: 1, sub: 1 }, digits: [3, 3] }),
    /** Which split's problems become inputs. */
    split: z.enum(["train", "eval"]).default("train"),
    /** Inputs carry the task's reasoning trace (`<think>…</think>`, the longest sequences); false: answer only. */
    think: z.boolean().default(true),
    rankMin: z.number().int().min(1).default(4),
    rankStep: z.number().int().min(1).default(4),
    rankMax: z.number().int().min(1).default(32),
    alpha: z.number().min(0).default(1),
    beta: z.number().min(0).default(0.05),
    gamma: z.number().min(0).default(0.1),
    /** How score FLOPs are counted (lowrank.ts `scoreFlops`). */
    flops: z.enum(["factored", "prototype"]).default("factored"),
    /** Safety guard: the largest allowed attention-output bound ÷ ‖V‖_F per head; absent: no guard (the prototype's all-true mask). */
    epsilon: z.number().positive().optional(),
  })
  .refine((o) => o.rankMin <= o.rankMax, { message: "rankMin must be ≤ rankMax", path: ["rankMin"] });
export type AttentionRankOptions = z.output<typeof attentionRankOptions>;

/** The rank set {rankMin, rankMin + rankStep, …, ≤ rankMax} (rankMax itself always last). */
export function rankSet(o: Pick<AttentionRankOptions, "rankMin" | "rankStep" | "rankMax">): number[] {
  const out: number[] = [];
  for (let r = o.rankMin; r < o.rankMax; r += o.rankStep) out.push(r);
  out.push(o.rankMax);
  return out;
}

interface Loaded {
  model: CausalLM;
  tok: Tokenizer;
  task: Task;
  /** (mean, std, RMS) of W_q, W_k, W_v per layer. */
  weightStats: Float64Array[];
}

function load(o: AttentionRankOptions): Loaded {
  const dir = readModelDir(o.model);
  let model: CausalLM;
  try {
    model = CausalLM.fromHF(dir.config, dir.tensors);
  } finally {
    dispose(dir.tensors);
  }
  const weightStats = model.layers.map((L) =>
    Float64Array.from(
      [L.q, L.k, L.v].flatMap((w) =>
        noGrad(() =>
          tidy(() => {
            const d = w.to("f64");
            return [d.mean().item(), d.std().item(), d.square().mean().sqrt().item()];
          }),
        ),
      ),
    ),
  );
  return {
    model,
    tok: loadTokenizer(o.model),
    task: createTask("arithmetic", o.task, "env.options.task"),
    weightStats,
  };
}

/** The token ids of one input and where its completion starts. */
export function inputIds(
  l: Pick<Loaded, "tok" | "task">,
  p: Problem,
  think: boolean,
): { ids: number[]; start: number } {
  const traceOf = (l.task as Partial<{ trace(p: Problem): string }>).trace;
  // the SFT target the shipped models were pre-trained on (src/train/pretrain.ts sftTarget)
  const answer = `<answer>${p.answer ?? ""}</answer>`;
  const target = think && traceOf ? `<think>${traceOf.call(l.task, p)}</think>${answer}` : answer;
  const prompt = [l.tok.bosId as number, ...l.tok.encode(p.prompt)];
  return { ids: [...prompt, ...l.tok.encode(target), l.tok.eosId], start: prompt.length };
}

/** One episode's totals, for evaluation and benchmarks. */
export interface RankEpisode {
  ranks: number[];
  cos: number[];
  /** Score FLOPs of every layer at the ranks applied, and at full rank. */
  scoreFlops: number[];
  fullScoreFlops: number;
  /** Next-token accuracy over the completion tokens (teacher forcing). */
  accuracy: number;
  /** Completion tokens scored, and the whole sequence's length. */
  tokens: number;
  length: number;
}

export class AttentionRankEnv implements ControlEnv {
  readonly obsDim: number;
  readonly action: ActionSpace;
  readonly horizon: number;
  readonly ranks: number[];
  #fwd: RankedForward | null = null;
  #ids: number[] = [];
  #start = 0;
  #prev = -1;
  #prevRank: number;
  #episode: RankEpisode | null = null;
  #released = false;

  constructor(
    readonly o: AttentionRankOptions,
    readonly res: Loaded,
    readonly release: () => void,
  ) {
    this.ranks = rankSet(o);
    this.action = { kind: "discrete", n: this.ranks.length };
    const c = res.model.config;
    this.horizon = c.numHiddenLayers;
    const A = this.ranks.length;
    this.obsDim = c.numHiddenLayers + 1 + 2 * A + 9 + 2 + A + 1;
    this.#prevRank = c.headDim;
  }

  get model(): CausalLM {
    return this.res.model;
  }

  reset(seed: number): Float64Array {
    const p = this.res.task.sample(Rng.fromSeed(seed), this.o.split);
    const { ids, start } = inputIds(this.res, p, this.o.think);
    return this.resetWith(ids, start);
  }

  /** Starts an episode on given token ids; the completion (scored by `accuracy`) starts at `start`. */
  resetWith(ids: number[], start: number): Float64Array {
    this.#fwd?.dispose();
    this.#fwd = new RankedForward(this.model, ids);
    this.#ids = ids;
    this.#start = start;
    this.#prev = -1;
    this.#prevRank = this.model.config.headDim;
    this.#episode = {
      ranks: [],
      cos: [],
      scoreFlops: [],
      fullScoreFlops: 0,
      accuracy: Number.NaN,
      tokens: 0,
      length: ids.length,
    };
    return this.#observe();
  }

  #flops(rank: number): number {
    const c = this.model.config;
    return scoreFlops(
      { B: 1, H: c.numAttentionHeads, L: this.#ids.length, headDim: c.headDim, rank },
      this.o.flops as FlopCount,
    );
  }

  #observe(): Float64Array {
    const f = this.#fwd as RankedForward;
    const c = this.model.config;
    const A = this.ranks.length;
    const obs = new Float64Array(this.obsDim);
    let at = 0;
    obs[at + f.layer] = 1;
    at += c.numHiddenLayers;
    obs[at++] = Math.log(f.T) / Math.log(c.maxPositionEmbeddings);
    const s = f.spectra();
    for (const group of [s.sq, s.sk]) {
      for (const r of this.ranks) obs[at++] = group.reduce((a, sig) => a + energyRatio(sig, r), 0) / group.length;
    }
    obs.set(this.res.weightStats[f.layer] as Float64Array, at);
    at += 9;
    const [mean, std] = noGrad(() =>
      tidy(() => {
        const h = f.layerInput().to("f64");
        return [h.mean().item(), h.std().item()];
      }),
    );
    obs[at++] = mean as number;
    obs[at++] = std as number;
    obs[at + (this.#prev < 0 ? A : this.#prev)] = 1;
    return obs;
  }

  step(action: Float64Array): StepResult {
    const f = this.#fwd;
    const ep = this.#episode;
    if (!f || !ep) throw new ConfigError("attention_rank: step before reset", "env");
    const a = action[0] as number;
    if (!Number.isInteger(a) || a < 0 || a >= this.ranks.length)
      throw new ConfigError(`attention_rank: action ${a} is outside 0..${this.ranks.length - 1}`, "env");
    const s = f.spectra();
    const guard = this.o.epsilon !== undefined ? { epsilon: this.o.epsilon, ranks: this.ranks } : undefined;
    const out = f.step(this.ranks[a] as number, guard);
    // Eq. 8 from the previous layer's rank to this one, on this layer's spectra, relative
    let change = 0;
    let all = 0;
    const hd = this.model.config.headDim;
    for (const sig of [...s.sq, ...s.sk]) {
      change += rankChangeNorm(sig, this.#prevRank, out.rank) ** 2;
      all += rankChangeNorm(sig, 0, hd) ** 2;
    }
    const deltaA = all > 0 ? Math.sqrt(change / all) : 0;
    const flops = this.#flops(out.rank);
    const full = this.#flops(hd);
    const reward = this.o.alpha * out.cos - (this.o.beta * flops) / full - this.o.gamma * deltaA;
    ep.ranks.push(out.rank);
    ep.cos.push(out.cos);
    ep.scoreFlops.push(flops);
    ep.fullScoreFlops = full;
    this.#prev = this.ranks.indexOf(out.rank) >= 0 ? this.ranks.indexOf(out.rank) : a;
    this.#prevRank = out.rank;
    if (f.layer < f.layers) return { obs: this.#observe(), reward, done: false };
    const pred = f.argmax();
    let right = 0;
    for (let t = this.#start; t < this.#ids.length; t++) if (pred[t - 1] === this.#ids[t]) right++;
    ep.tokens = this.#ids.length - this.#start;
    ep.accuracy = right / Math.max(1, ep.tokens);
    return { obs: new Float64Array(this.obsDim), reward, done: false };
  }

  /** The finished (or running) episode's ranks, fidelities, FLOPs and next-token accuracy. */
  get episode(): RankEpisode | null {
    return this.#episode;
  }

  dispose(): void {
    this.#fwd?.dispose();
    this.#fwd = null;
    if (!this.#released) {
      this.#released = true;
      this.release();
    }
  }
}

/** Instances share one loaded model; it is freed when the last live instance is disposed. */
export function attentionRankFactory(o: AttentionRankOptions): () => AttentionRankEnv {
  if (!existsSync(o.model)) throw new ConfigError(`no model directory at ${o.model}`, "env.options.model");
  let res: Loaded | null = null;
  let live = 0;
  const check = load(o); // validates the model, tokenizer and task options before any episode
  const hd = check.model.config.headDim;
  check.model.dispose();
  if (o.rankMin > hd)
    throw new ConfigError(
      `rankMin ${o.rankMin} is above the model's head_dim ${hd}: every action would be full rank`,
      "env.options.rankMin",
    );
  return () => {
    if (res === null) res = load(o);
    live++;
    const held = res;
    return new AttentionRankEnv(o, held, () => {
      live--;
      if (live === 0 && res === held) {
        held.model.dispose();
        res = null;
      }
    });
  };
}

export const attentionRankSpec: ControlEnvSpec<typeof attentionRankOptions> = {
  name: "attention_rank",
  doc: "DR-RL: the rank of each attention layer's truncated-SVD queries and keys for one input of a shipped LM; reward fidelity − FLOPs − rank-change perturbation",
  options: attentionRankOptions,
  create: async (o) => attentionRankFactory(o),
};
