/**
 * The local sampler: batched incremental decoding with a KV cache (DESIGN.md §4 `Sampler`).
 *
 * Prompts of different lengths are left-padded into one batch, prefilled once, then decoded one token per
 * step for all rows together: the loop of src/model/decode.ts, which the serving engine runs too. Each
 * request draws from its own seeded generator, so a request's completion depends only on its seed, prompt
 * and the weights.
 *
 * Log-probs: every completion reports, for each sampled token, log softmax(logits / temperature)[token]
 * over the FULL vocabulary, i.e. BEFORE top-k / top-p / min-p truncation. That is the quantity the
 * training side recomputes (`CausalLM.logprobs` at the same temperature), so importance ratios compare like
 * with like; a truncated distribution would be a different policy from the one being trained. With
 * temperature 0 (greedy) the log-prob is the one at temperature 1.
 * @module
 */
import { CohortError } from "../errors.js";
import { eosIds } from "./config.js";
import { decodeBatch, type FinishReason } from "./decode.js";
import type { CausalLM, DecodePlan, RolloutPrecision } from "./llama.js";

export type { FinishReason } from "./decode.js";

export type TokenIds = number[];

export interface SamplingParams {
  /** Maximum completion tokens per request (finish reason "length" when reached). */
  maxTokens: number;
  /** Softmax temperature; 0 = greedy. Default 1. */
  temperature?: number;
  /** Keep the k most likely tokens; 0 (default) disables. */
  topK?: number;
  /** Keep the smallest set of most likely tokens with mass ≥ p; 1 (default) disables. */
  topP?: number;
  /** Drop tokens with probability < minP · (max probability); 0 (default) disables. */
  minP?: number;
  /** Token ids that end a completion (included in it). Default: the config's eos ids. */
  stopTokenIds?: number[];
  /** Strings that end a completion once the decoded completion contains one (needs `decode`). */
  stop?: string[];
  /** Seed per request, or one base seed (request i uses base + i). Default: the sampler's own counter. */
  seed?: number | number[];
}

export interface Completion {
  /** Sampled token ids (a stop token, when one ended the completion, is the last one). */
  tokens: number[];
  /** log softmax(logits / T)[token] of each sampled token, before truncation (see the module doc). */
  logprobs: number[];
  finishReason: FinishReason;
}

/** DESIGN.md §4. */
export interface Sampler {
  generate(prompts: TokenIds[], p: SamplingParams): Promise<Completion[]>;
}

export interface LocalSamplerOptions {
  /** Requests decoded together (rows of one KV cache). Default 64. */
  maxBatch?: number;
  /** Token ids → text, for stop strings. */
  decode?: (ids: number[]) => string;
  /** Id written into left-padding columns (masked out). Default: the config's pad id, else 0. */
  padId?: number;
  /** Base of the default per-request seeds; each generate() call advances it. Default 0. */
  seed?: number;
  /**
   * Run each decoding step as one native call over rearranged weights (f32 CPU; default true). false
   * decodes op by op through the same code path as training (slower; for checking).
   */
  fusedDecode?: boolean;
  /**
   * Weights the rollouts decode with: `fp32` (default) or `int8` (weight-only, per output channel; see
   * `RolloutPrecision`). int8 needs the fused step on an fp32 CPU model; it is quantized from the current
   * weights (adapters folded in) and rebuilt whenever they change (see `cachePlan`), so it follows training.
   */
  precision?: RolloutPrecision;
  /**
   * Keep the fused decoding plan (the rearranged, and with int8 quantized, weights) between `generate` calls
   * and rebuild it only when the weights change: `model.weightsVersion()` moves (optimizer steps, loads, LoRA
   * merges) or the adapter is switched on or off. Default: true for int8 (quantizing a 0.5B model takes
   * seconds), false for fp32 (its plan holds a second copy of the fused projections, ~60% of the weights,
   * and costs only a copy to rebuild). `dispose()` frees a kept plan.
   */
  cachePlan?: boolean;
}

/** Samples from a `CausalLM` in-process. */
export class LocalSampler implements Sampler {
  readonly #opts: LocalSamplerOptions;
  #nextSeed: number;
  /** The kept plan, the weights it was built from and the positions it covers. */
  #cached: { plan: DecodePlan; key: string; positions: number } | null = null;
  #planBuilds = 0;

  constructor(
    readonly model: CausalLM,
    opts: LocalSamplerOptions = {},
  ) {
    this.#opts = opts;
    this.#nextSeed = opts.seed ?? 0;
  }

  async generate(prompts: TokenIds[], p: SamplingParams): Promise<Completion[]> {
    return this.generateSync(prompts, p);
  }

  /** The synchronous core of `generate` (decoding is CPU-bound native work). */
  generateSync(prompts: TokenIds[], p: SamplingParams): Completion[] {
    if (prompts.length === 0) return [];
    validate(p, this.model, this.#opts, prompts);
    const seeds = this.#seeds(prompts.length, p.seed);
    const maxBatch = this.#opts.maxBatch ?? 64;
    const out: Completion[] = [];
    const maxPositions = Math.max(...prompts.map((x) => x.length)) + p.maxTokens; // every batch's cacheLength at most
    const precision = this.#opts.precision ?? "fp32";
    if (precision === "int8" && this.#opts.fusedDecode === false)
      throw new CohortError(
        "LocalSampler: precision int8 runs only through the fused decoding step; drop fusedDecode: false",
      );
    const cache = this.#opts.cachePlan ?? precision === "int8";
    const plan = this.#opts.fusedDecode === false ? null : this.#plan(maxPositions, precision, cache);
    try {
      for (let i = 0; i < prompts.length; i += maxBatch) {
        out.push(...this.#batch(prompts.slice(i, i + maxBatch), seeds.slice(i, i + maxBatch), p, plan));
      }
    } finally {
      if (!cache) plan?.dispose();
    }
    return out;
  }

  /** Decoding plans built so far (a kept plan that is reused does not count). */
  get planBuilds(): number {
    return this.#planBuilds;
  }

  /** Frees the kept decoding plan, if any (the sampler stays usable: the next call builds a new one). */
  dispose(): void {
    this.#cached?.plan.dispose();
    this.#cached = null;
  }

  #plan(maxPositions: number, precision: RolloutPrecision, cache: boolean): DecodePlan | null {
    if (!cache) {
      const plan = this.model.decodePlan(maxPositions, { precision });
      if (plan !== null) this.#planBuilds++;
      return plan;
    }
    const m = this.model;
    const key = `${precision}|${m.weightsVersion()}|${m.adapter === null ? "-" : m.adapter.active !== false}`;
    const c = this.#cached;
    if (c !== null && c.key === key && c.positions >= maxPositions) return c.plan;
    this.dispose();
    // room for longer prompts than this call's, so a new prompt length does not re-quantize
    const positions = Math.min(m.config.maxPositionEmbeddings, Math.max(2 * maxPositions, 512));
    const plan = m.decodePlan(positions, { precision });
    if (plan === null) return null;
    this.#planBuilds++;
    this.#cached = { plan, key, positions };
    return plan;
  }

  #seeds(n: number, s: SamplingParams["seed"]): number[] {
    if (Array.isArray(s)) {
      if (s.length !== n)
        throw new CohortError(
          `generate: ${s.length} seeds for ${n} prompts; pass one per prompt or a single base seed`,
        );
      return s;
    }
    const base = s ?? this.#nextSeed;
    if (s === undefined) this.#nextSeed += n;
    return Array.from({ length: n }, (_, i) => base + i);
  }

  #batch(prompts: TokenIds[], seeds: number[], p: SamplingParams, plan: DecodePlan | null): Completion[] {
    const stopIds = new Set(p.stopTokenIds ?? eosIds(this.model.config));
    const rows = prompts.map((prompt, b) => ({
      prompt,
      seed: seeds[b] as number,
      maxTokens: p.maxTokens,
      stopIds,
      stop: p.stop ?? [],
    }));
    return decodeBatch(this.model, rows, {
      temperature: p.temperature ?? 1,
      topK: p.topK ?? 0,
      topP: p.topP ?? 1,
      minP: p.minP ?? 0,
      padId: this.#opts.padId ?? this.model.config.padTokenId ?? 0,
      plan,
      ...(this.#opts.decode ? { decode: this.#opts.decode } : {}),
    }).map((r) => ({
      tokens: r.tokens,
      logprobs: r.logprobs,
      finishReason: r.finishReason === "stop" ? "stop" : "length",
    }));
  }
}

function validate(p: SamplingParams, model: CausalLM, o: LocalSamplerOptions, prompts: TokenIds[]): void {
  const bad = (field: string, msg: string) => new CohortError(`SamplingParams.${field}: ${msg}`);
  if (!Number.isInteger(p.maxTokens) || p.maxTokens < 1)
    throw bad("maxTokens", `must be an integer ≥ 1, got ${p.maxTokens}`);
  const T = p.temperature ?? 1;
  if (!(T >= 0) || !Number.isFinite(T)) throw bad("temperature", `must be ≥ 0 (0 = greedy), got ${T}`);
  if (p.topK !== undefined && (!Number.isInteger(p.topK) || p.topK < 0))
    throw bad("topK", `must be an integer ≥ 0 (0 = off), got ${p.topK}`);
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1))
    throw bad("topP", `must be in (0, 1] (1 = off), got ${p.topP}`);
  if (p.minP !== undefined && !(p.minP >= 0 && p.minP <= 1))
    throw bad("minP", `must be in [0, 1] (0 = off), got ${p.minP}`);
  if (p.stop && p.stop.length > 0 && !o.decode) {
    throw bad(
      "stop",
      "stop strings need a decode function: new LocalSampler(model, { decode: (ids) => tokenizer.decode(ids) })",
    );
  }
  const longest = Math.max(...prompts.map((x) => x.length));
  if (longest + p.maxTokens > model.config.maxPositionEmbeddings) {
    throw bad(
      "maxTokens",
      `the longest prompt (${longest} tokens) plus maxTokens (${p.maxTokens}) exceeds the model's max_position_embeddings (${model.config.maxPositionEmbeddings}); lower maxTokens or shorten the prompt`,
    );
  }
  const V = model.config.vocabSize;
  for (const [i, pr] of prompts.entries()) {
    if (pr.length === 0)
      throw new CohortError(`generate: prompt ${i} is empty; a prompt needs at least one token (e.g. BOS)`);
    for (const t of pr) {
      if (!Number.isInteger(t) || t < 0 || t >= V)
        throw new CohortError(`generate: prompt ${i} holds token ${t}, outside [0, ${V})`);
    }
  }
}
