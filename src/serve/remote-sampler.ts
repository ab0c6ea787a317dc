/**
 * `RemoteSampler`: the `Sampler` interface (DESIGN.md §4) over an OpenAI-compatible `/v1/completions`
 * endpoint, for the trainer and evaluators. Prompts go out as token ids and completions come back as token
 * ids with per-token log-probs, so the trainer packs exactly the tokens that were sampled:
 *
 * - consecutive identical prompts (a GRPO group) are one request with `n` = the group size;
 * - seeds: the server seeds choice j of a request with seed + j (vLLM and `cohort serve`); the request's
 *   seed is the base seed + the row of its first prompt (so a base seed reproduces `LocalSampler` with the
 *   same base), or the first entry of a per-row seed list;
 * - token ids come from `token_ids` (vLLM ≥ 0.10.2 `return_token_ids`, `cohort serve`) or from log-prob
 *   tokens spelled `token_id:<id>` (`return_tokens_as_token_ids`); a server that returns neither is an
 *   error (text cannot be re-tokenised faithfully);
 * - log-probs must be those of the sampling distribution at the sampling temperature: `cohort serve` reports
 *   log softmax(logits / T) over the full vocabulary, as the trainer recomputes; start vLLM with
 *   `--logprobs-mode processed_logprobs` (its default reports temperature-1 log-probs).
 * @module
 */
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { CohortError } from "../errors.js";
import { writeSafetensors } from "../io/safetensors.js";
import type { CausalLM } from "../model/llama.js";
import type { LoraAdapter } from "../model/lora.js";
import type { Completion, Sampler, SamplingParams, TokenIds } from "../model/sampler.js";
import { type CompletionChoice, type CompletionResponse, OpenAIClient, OpenAIError } from "./client.js";
import type { ImportanceSamplingMode } from "./importance.js";
import { RolloutPool } from "./pool.js";

/** What `RemoteSampler` sends requests to: one `OpenAIClient` or a `RolloutPool` of workers. */
export interface CompletionsBackend {
  readonly baseUrl: string;
  completions(body: Record<string, unknown>): Promise<CompletionResponse & { policyVersion?: number }>;
}

/** A sampled completion with the policy version of the weights that drew it (from a `RolloutPool`). */
export type VersionedCompletion = Completion & { policyVersion?: number };

export interface RemoteSamplerOptions {
  client: CompletionsBackend;
  /** The model id the server serves (`GET /v1/models`). */
  model: string;
}

/** The token ids of a completion choice (see the module doc), or null when the server sent none. */
export function choiceTokenIds(c: CompletionChoice): number[] | null {
  if (Array.isArray(c.token_ids)) return c.token_ids;
  const toks = c.logprobs?.tokens;
  if (Array.isArray(toks) && toks.every((t) => typeof t === "string" && t.startsWith("token_id:")))
    return toks.map((t) => Number(t.slice("token_id:".length)));
  return null;
}

export class RemoteSampler implements Sampler {
  readonly client: CompletionsBackend;
  readonly model: string;

  constructor(opts: RemoteSamplerOptions) {
    this.client = opts.client;
    this.model = opts.model;
  }

  async generate(prompts: TokenIds[], p: SamplingParams): Promise<Completion[]> {
    if (prompts.length === 0) return [];
    if (Array.isArray(p.seed) && p.seed.length !== prompts.length)
      throw new CohortError(
        `generate: ${p.seed.length} seeds for ${prompts.length} prompts; pass one per prompt or a base seed`,
      );
    // runs of identical prompts → one request each
    const runs: { start: number; count: number }[] = [];
    for (let i = 0; i < prompts.length; i++) {
      const last = runs.at(-1);
      if (last && sameIds(prompts[last.start] as number[], prompts[i] as number[])) last.count++;
      else runs.push({ start: i, count: 1 });
    }
    const out = new Array<Completion>(prompts.length);
    await Promise.all(
      runs.map(async ({ start, count }) => {
        const seed = Array.isArray(p.seed) ? p.seed[start] : p.seed === undefined ? undefined : p.seed + start;
        const body: Record<string, unknown> = {
          model: this.model,
          prompt: prompts[start],
          n: count,
          max_tokens: p.maxTokens,
          temperature: p.temperature ?? 1,
          top_p: p.topP ?? 1,
          logprobs: 0,
          return_token_ids: true,
          return_tokens_as_token_ids: true,
          ...(p.topK ? { top_k: p.topK } : {}),
          ...(p.minP ? { min_p: p.minP } : {}),
          ...(p.stop && p.stop.length > 0 ? { stop: p.stop } : {}),
          ...(p.stopTokenIds && p.stopTokenIds.length > 0 ? { stop_token_ids: p.stopTokenIds } : {}),
          ...(seed !== undefined ? { seed } : {}),
        };
        const res = await this.client.completions(body);
        const choices = [...(res.choices ?? [])].sort((a, b) => a.index - b.index);
        if (choices.length !== count)
          throw new OpenAIError(`${this.client.baseUrl}: asked for ${count} completions, got ${choices.length}`, 200);
        choices.forEach((c, j) => {
          const tokens = choiceTokenIds(c);
          if (tokens === null)
            throw new OpenAIError(
              `${this.client.baseUrl} returned no token ids; the trainer needs the sampled ids (vLLM ≥ 0.10.2 with return_token_ids, or cohort serve)`,
              200,
            );
          const lps = c.logprobs?.token_logprobs;
          if (!Array.isArray(lps) || lps.length !== tokens.length || lps.some((x) => typeof x !== "number"))
            throw new OpenAIError(
              `${this.client.baseUrl} returned ${Array.isArray(lps) ? lps.length : "no"} log-probs for ${tokens.length} tokens; request logprobs: 0 is not honoured`,
              200,
            );
          const comp: VersionedCompletion = {
            tokens,
            logprobs: lps as number[],
            finishReason: c.finish_reason === "length" ? "length" : "stop",
          };
          if (res.policyVersion !== undefined) comp.policyVersion = res.policyVersion;
          out[start + j] = comp;
        });
      }),
    );
    return out;
  }
}

function sameIds(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Writes the policy's current weights (LoRA merged in) to `file` as safetensors and asks a `cohort serve`
 * endpoint to load them (`POST /v1/reload`): rollouts after it sample from the trained weights. `file` must
 * be readable by the server (same machine or a shared disk). Returns the server's weights version.
 */
export async function pushWeights(
  client: OpenAIClient,
  file: string,
  model: CausalLM,
  lora: LoraAdapter | null,
): Promise<number> {
  writeWeightsSnapshot(file, model, lora);
  const r = await client.reload(file);
  return r.weights_version;
}

/** Writes the policy's current weights (LoRA merged in) to `file` as safetensors. */
export function writeWeightsSnapshot(file: string, model: CausalLM, lora: LoraAdapter | null): void {
  if (lora) lora.merge();
  try {
    writeSafetensors(file, Object.fromEntries(model.namedParameters()), { format: "pt" });
  } finally {
    if (lora) lora.unmerge();
  }
}

/** The `sampler: {kind: openai}` section of a train config (src/train/config.ts). */
export interface RemoteSamplerConfig {
  kind: "openai";
  /** One endpoint, or `baseUrls`: a `RolloutPool` of workers (exactly one of the two). */
  baseUrl?: string | undefined;
  baseUrls?: string[] | undefined;
  model: string;
  apiKeyEnv?: string | undefined;
  timeoutMs: number;
  maxRetries: number;
  backoffMs: number;
  maxConcurrency: number;
  syncWeights: boolean;
  /** Push the weights every K optimizer steps (and before the first step). Default 1. */
  syncEvery?: number | undefined;
  /** Pool: most policy versions a worker may lag before it is left out until reloaded. */
  maxStaleness?: number | undefined;
  /** Pool: how often down workers are probed. */
  healthIntervalMs?: number | undefined;
  importanceSampling?: { mode: ImportanceSamplingMode; cap: number } | undefined;
}

/** What the trainer holds for remote rollouts. */
export interface RemoteRollouts {
  sampler: RemoteSampler;
  importanceSampling: { mode: ImportanceSamplingMode; cap: number } | null;
  /** With `baseUrls`: the worker pool. */
  pool: RolloutPool | null;
  /**
   * Before optimizer step `step` (1-based; policy version `step - 1`): pushes the policy's weights to the
   * server(s) when `syncWeights` is on and the push is due (the first call, then every `syncEvery` steps).
   */
  sync(model: CausalLM, lora: LoraAdapter | null, step?: number): Promise<void>;
  /** The pool's metrics since the last call (`pool/…`); empty without a pool. */
  takeMetrics(): Record<string, number>;
  /** Stops the pool's health probes. */
  close(): void;
}

/** Builds the trainer's remote sampler from its config; `runDir` holds the weight snapshots it pushes. */
export function remoteRollouts(cfg: RemoteSamplerConfig, runDir: string, log: (line: string) => void): RemoteRollouts {
  let apiKey: string | undefined;
  if (cfg.apiKeyEnv !== undefined) {
    apiKey = process.env[cfg.apiKeyEnv];
    if (!apiKey)
      throw new CohortError(
        `sampler.apiKeyEnv: the environment variable ${cfg.apiKeyEnv} is not set; export the API key in it`,
      );
  }
  const urls = cfg.baseUrls ?? (cfg.baseUrl !== undefined ? [cfg.baseUrl] : []);
  if (urls.length === 0 || (cfg.baseUrl !== undefined && cfg.baseUrls !== undefined))
    throw new CohortError("sampler: set exactly one of baseUrl (one endpoint) and baseUrls (a pool of workers)");
  const clientOptions = {
    ...(apiKey ? { apiKey } : {}),
    timeoutMs: cfg.timeoutMs,
    maxConcurrency: cfg.maxConcurrency,
  };
  const pool =
    cfg.baseUrls !== undefined
      ? new RolloutPool({
          baseUrls: cfg.baseUrls,
          client: clientOptions,
          maxRetries: cfg.maxRetries,
          backoffMs: cfg.backoffMs,
          ...(cfg.maxStaleness !== undefined ? { maxStaleness: cfg.maxStaleness } : {}),
          ...(cfg.healthIntervalMs !== undefined ? { healthIntervalMs: cfg.healthIntervalMs } : {}),
          log: (l) => log(`sampler: ${l}`),
        })
      : null;
  const client =
    pool === null
      ? new OpenAIClient({
          ...clientOptions,
          baseUrl: urls[0] as string,
          maxRetries: cfg.maxRetries,
          backoffMs: cfg.backoffMs,
          log: (l) => log(`sampler: ${l}`),
        })
      : null;
  const file = join(runDir, "sync", "model.safetensors");
  const every = cfg.syncEvery ?? 1;
  let pushed = false;
  return {
    sampler: new RemoteSampler({ client: pool ?? (client as OpenAIClient), model: cfg.model }),
    importanceSampling: cfg.importanceSampling ?? null,
    pool,
    async sync(model, lora, step = 1) {
      const version = step - 1;
      pool?.setVersion(version);
      if (!cfg.syncWeights || (pushed && version % every !== 0)) return;
      mkdirSync(dirname(file), { recursive: true });
      if (pool) {
        writeWeightsSnapshot(file, model, lora);
        await pool.sync(file, version);
      } else await pushWeights(client as OpenAIClient, file, model, lora);
      pushed = true;
    },
    takeMetrics: () => pool?.takeMetrics() ?? {},
    close: () => pool?.close(),
  };
}
