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
 *
 * `remoteRollouts` builds the trainer's side of it (weight pushes, the pool) and `RolloutFeed` the order in
 * which the trainer generates, pushes and trains (`sampler.overlap`).
 * @module
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { ImportanceSamplingMode } from "../algo/importance.js";
import { CohortError } from "../errors.js";
import { writeModelDir } from "../io/hf.js";
import { writeSafetensors } from "../io/safetensors.js";
import type { CausalLM } from "../model/llama.js";
import type { LoraAdapter } from "../model/lora.js";
import type { Completion, Sampler, SamplingParams, TokenIds } from "../model/sampler.js";
import { writeAdapterSnapshot } from "./adapters.js";
import { ADMIN_KEY_ENV } from "./auth.js";
import { type CompletionChoice, type CompletionResponse, OpenAIClient, OpenAIError } from "./client.js";
import {
  detectWorkerApi,
  loadWorkerWeights,
  RolloutPool,
  type WeightSync,
  type WorkerApi,
  weightSyncHint,
} from "./pool.js";

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
 * Writes a snapshot `cohort serve` loads with `POST /v1/reload` to `<run>/sync/`: the full weights, or with
 * LoRA only the adapters (src/serve/adapters.ts). Returns the file written.
 */
function writeServeSnapshot(syncDir: string, model: CausalLM, lora: LoraAdapter | null): string {
  if (lora !== null) {
    const file = join(syncDir, "adapters.safetensors");
    writeAdapterSnapshot(file, lora);
    return file;
  }
  const file = join(syncDir, "model.safetensors");
  writeSafetensors(file, Object.fromEntries(model.namedParameters()), { format: "pt" });
  return file;
}

/**
 * Writes the policy's current weights (LoRA merged in) as a Hugging Face model directory (config.json +
 * model.safetensors, each file replaced atomically), the form SGLang's `update_weights_from_disk` loads.
 */
export function writeModelSnapshot(dir: string, model: CausalLM, lora: LoraAdapter | null): void {
  if (lora) lora.merge();
  try {
    const st = model.state();
    writeModelDir(dir, { config: st.meta.config as Record<string, unknown>, tensors: st.tensors });
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
  /** Steps ahead whose rollouts are generated during the update (`RolloutFeed`). Default 0. */
  overlap?: number | undefined;
  /** The workers' weight-loading API (`cohort`, `sglang`); `auto` (default) detects it. */
  workerApi?: WorkerApi | "auto" | undefined;
  /** How `cohort serve` workers get the weights: `disk` (default, by path) or `push` (in the request body). */
  weightSync?: WeightSync | undefined;
}

/** What the trainer holds for remote rollouts. */
export interface RemoteRollouts {
  sampler: RemoteSampler;
  importanceSampling: { mode: ImportanceSamplingMode; cap: number } | null;
  /** With `baseUrls`: the worker pool. */
  pool: RolloutPool | null;
  /**
   * Before optimizer step `step` (1-based; policy version `step - 1`): pushes the policy's weights to the
   * server(s) when `syncWeights` is on and the push is due (the first call, then every `syncEvery` steps;
   * a version already pushed is not pushed again).
   */
  sync(model: CausalLM, lora: LoraAdapter | null, step?: number): Promise<void>;
  /** The pool's metrics since the last call (`pool/…`; lags against `trainVersion`); empty without a pool. */
  takeMetrics(trainVersion?: number): Record<string, number>;
  /** Resolves once every request started so far is on the wire; with the requests then in flight. */
  whenSent(): Promise<number>;
  /** Stops the pool's health probes and closes the connections. */
  close(): void;
}

/**
 * Builds the trainer's remote sampler from its config; `runDir` holds the weight snapshots it pushes. Requests
 * carry the API key from `apiKeyEnv`; weight loads carry `COHORT_ADMIN_KEY` from the environment when it is set
 * (the worker's `--admin-key`), else the API key.
 */
export function remoteRollouts(cfg: RemoteSamplerConfig, runDir: string, log: (line: string) => void): RemoteRollouts {
  let apiKey: string | undefined;
  if (cfg.apiKeyEnv !== undefined) {
    apiKey = process.env[cfg.apiKeyEnv];
    if (!apiKey)
      throw new CohortError(
        `sampler.apiKeyEnv: the environment variable ${cfg.apiKeyEnv} is not set; export the API key in it`,
      );
  }
  const adminKey = process.env[ADMIN_KEY_ENV] || undefined;
  const weightSync = cfg.weightSync ?? "disk";
  if (weightSync === "push" && !cfg.syncWeights)
    throw new CohortError(
      "sampler.weightSync push says how pushed weights travel, but sampler.syncWeights is off, so none are pushed; turn syncWeights on or remove weightSync",
    );
  if (weightSync === "push" && cfg.workerApi === "sglang")
    throw new CohortError(
      "sampler.weightSync push sends the weights in the request body, which only cohort serve accepts; SGLang workers (sampler.workerApi sglang) load from their disk: use weightSync: disk",
    );
  const urls = cfg.baseUrls ?? (cfg.baseUrl !== undefined ? [cfg.baseUrl] : []);
  if (urls.length === 0 || (cfg.baseUrl !== undefined && cfg.baseUrls !== undefined))
    throw new CohortError("sampler: set exactly one of baseUrl (one endpoint) and baseUrls (a pool of workers)");
  const clientOptions = {
    ...(apiKey ? { apiKey } : {}),
    ...(adminKey ? { adminKey } : {}),
    timeoutMs: cfg.timeoutMs,
    maxConcurrency: cfg.maxConcurrency,
  };
  const overlap = cfg.overlap ?? 0;
  const pool =
    cfg.baseUrls !== undefined
      ? new RolloutPool({
          baseUrls: cfg.baseUrls,
          client: clientOptions,
          maxRetries: cfg.maxRetries,
          backoffMs: cfg.backoffMs,
          // samples are trained `overlap` versions after they are requested (RolloutFeed): the bound applies then
          ...(cfg.maxStaleness !== undefined ? { maxStaleness: Math.max(0, cfg.maxStaleness - overlap) } : {}),
          ...(cfg.healthIntervalMs !== undefined ? { healthIntervalMs: cfg.healthIntervalMs } : {}),
          workerApi: cfg.workerApi ?? "auto",
          weightSync,
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
  // cohort serve loads a safetensors file (with LoRA: the adapters only, folded in by the server); SGLang
  // (and a pool that may hold one) a model directory with the adapters merged
  const syncDir = join(runDir, "sync");
  const dir = join(syncDir, "model");
  const every = cfg.syncEvery ?? 1;
  let pushedVersion: number | null = null;
  let api: WorkerApi | null = cfg.workerApi === undefined || cfg.workerApi === "auto" ? null : cfg.workerApi;
  return {
    sampler: new RemoteSampler({ client: pool ?? (client as OpenAIClient), model: cfg.model }),
    importanceSampling: cfg.importanceSampling ?? null,
    pool,
    async sync(model, lora, step = 1) {
      const version = step - 1;
      pool?.setVersion(version);
      if (!cfg.syncWeights || pushedVersion === version || (pushedVersion !== null && version % every !== 0)) return;
      if (pool) {
        mkdirSync(syncDir, { recursive: true });
        let path = dir;
        // a push goes to cohort serve workers only (the pool refuses SGLang ones): the file snapshot serves
        if (weightSync === "disk" && (await pool.needsModelDir())) writeModelSnapshot(dir, model, lora);
        else path = writeServeSnapshot(syncDir, model, lora);
        await pool.sync(path, version);
      } else {
        const c = client as OpenAIClient;
        api ??= await detectWorkerApi(c);
        mkdirSync(syncDir, { recursive: true });
        let path = dir;
        if (api === "sglang" && weightSync === "disk") writeModelSnapshot(dir, model, lora);
        else path = writeServeSnapshot(syncDir, model, lora);
        try {
          await loadWorkerWeights(c, api, path, { weightSync });
        } catch (e) {
          const hint =
            (e instanceof OpenAIError && (e.status === 401 || e.status === 403)) || weightSync === "push"
              ? weightSyncHint(e, path, weightSync)
              : `the server must be a cohort serve or SGLang (sampler.workerApi) that reads ${path} on its own disk, or turn sampler.syncWeights off`;
          throw new CohortError(`weight sync: ${(e as Error).message}; ${hint}`);
        }
      }
      pushedVersion = version;
    },
    takeMetrics: (trainVersion) => pool?.takeMetrics(trainVersion) ?? {},
    async whenSent() {
      if (pool) {
        await pool.whenSent();
        return pool.inFlight;
      }
      const c = client as OpenAIClient;
      await c.whenSent();
      return c.inFlight;
    },
    close: () => {
      pool?.close();
      client?.close();
    },
  };
}

/** How `RolloutFeed` makes the trainer's batches (see its doc). */
export interface RolloutFeedOptions<T, S> {
  /** `sampler.overlap`: steps ahead whose batches are generated while the current step trains. 0 = in turn. */
  overlap: number;
  /** The last step this run trains: no batch is started past it. */
  lastStep: number;
  /** The trainer's remote rollouts; null with the local sampler (overlap must be 0). */
  remote: RemoteRollouts | null;
  /** Pushes the policy's weights (when due) before a batch starts; `step`: the next optimizer step. */
  sync(step: number): Promise<void>;
  /** Generates and scores the batch of optimizer step `step` (draws its prompts from the trainer's RNG). */
  collect(step: number): Promise<T>;
  /** The trainer's resume state (RNG, rollout plan) as a batch is about to start: see `resumeState`. */
  snapshot(): S;
}

interface FeedBatch<T, S> {
  done: Promise<{ batch: T; pool: Record<string, number> }>;
  /** The resume state right before the batch started (null until it starts). */
  state: S | null;
}

/**
 * The order of rollouts, weight pushes and updates in the trainer (`sampler.overlap`):
 *
 * - overlap 0: `take(k)` pushes policy version k−1 (when due), generates step k's batch and returns it;
 *   generation and the optimizer update take turns.
 * - overlap K ≥ 1: `take(k)` waits for step k's batch (started during step k−1), pushes policy version k−1,
 *   starts the batches of steps k+1…k+K that are not under way, and returns once their requests are on the
 *   wire. The caller's update of step k is synchronous native work that blocks this process; the rollout
 *   workers, other processes, generate step k+1's batch meanwhile. That batch is sampled from policy version
 *   k−1 (or older when pushes are `syncEvery` apart) and trained at version k: a lag of K, which the
 *   per-sample policy version, `pool/policy_lag_*` and the importance-sampling correction account for; the
 *   trainer recomputes ℓ_old at update time as without overlap.
 *
 * Batch k+1 starts only once batch k is complete (with several ahead, each waits for the one before), so
 * prompts are drawn from the trainer's RNG in the same order as with overlap 0: a seed gives the same prompts
 * per step either way. A checkpoint written while batches are ahead holds `resumeState()`, the state before
 * the earliest of them started: those batches are dropped at a stop and generated again on resume.
 * (design choice: pipelining of our own, no paper's algorithm; the off-policy lag it adds is bounded by K.)
 */
export class RolloutFeed<T, S> {
  readonly #o: RolloutFeedOptions<T, S>;
  readonly #ahead = new Map<number, FeedBatch<T, S>>();
  #metrics: Record<string, number> = {};

  constructor(opts: RolloutFeedOptions<T, S>) {
    if (opts.overlap > 0 && opts.remote === null)
      throw new CohortError("sampler.overlap needs sampler.kind openai: local rollouts run in this process");
    this.#o = opts;
  }

  #start(step: number): FeedBatch<T, S> {
    const prev = this.#ahead.get(step - 1);
    let state: S | null = null;
    const run = async () => {
      state = this.#o.snapshot();
      const batch = await this.#o.collect(step);
      // the pool's counters now cover exactly this batch's requests (batches never run at the same time)
      return { batch, pool: this.#o.remote?.takeMetrics(step - 1) ?? {} };
    };
    const done = prev ? prev.done.then(run) : run();
    done.catch(() => {}); // awaited by take() or drain(); not an unhandled rejection meanwhile
    const entry: FeedBatch<T, S> = {
      done,
      get state() {
        return state;
      },
    };
    this.#ahead.set(step, entry);
    return entry;
  }

  /** Step `step`'s batch; see the class doc for what starts before it returns. */
  async take(step: number): Promise<T> {
    const { overlap } = this.#o;
    let entry = this.#ahead.get(step);
    const prefetched = entry !== undefined;
    if (entry === undefined) {
      await this.#o.sync(step);
      entry = this.#start(step);
    }
    const tWait = performance.now();
    let got: Awaited<FeedBatch<T, S>["done"]>;
    try {
      got = await entry.done;
    } finally {
      this.#ahead.delete(step);
    }
    const waitS = (performance.now() - tWait) / 1000; // generation and scoring not hidden behind an update
    this.#metrics = { ...got.pool, "time/rollout_wait_s": waitS };
    if (overlap > 0) {
      const upTo = Math.min(step + overlap, this.#o.lastStep);
      if (upTo > step && !this.#ahead.has(upTo)) {
        await this.#o.sync(step); // policy version step−1, for the batches started now
        for (let s = step + 1; s <= upTo; s++) if (!this.#ahead.has(s)) this.#start(s);
      }
      // let the requests be created, then wait until they are written: the update blocks this process
      await new Promise((r) => setImmediate(r));
      const inFlight = (await this.#o.remote?.whenSent()) ?? 0;
      this.#metrics["rollout/prefetched"] = prefetched ? 1 : 0;
      this.#metrics["rollout/ahead_in_flight"] = inFlight;
    }
    return got.batch;
  }

  /** The metrics of the last `take` (`pool/…`, `time/rollout_wait_s`, with overlap `rollout/prefetched|ahead_in_flight`). */
  get metrics(): Record<string, number> {
    return this.#metrics;
  }

  /** The resume state to checkpoint: before the earliest batch under way, or null when none is (use the live one). */
  resumeState(): S | null {
    if (this.#ahead.size === 0) return null;
    const first = this.#ahead.get(Math.min(...this.#ahead.keys())) as FeedBatch<T, S>;
    return first.state;
  }

  /** Waits for the batches under way to settle (their results are dropped), so nothing runs after the run ends. */
  async drain(): Promise<void> {
    const pending = [...this.#ahead.values()];
    this.#ahead.clear();
    await Promise.allSettled(pending.map((e) => e.done));
  }
}
