/**
 * The decoding engine behind `cohort serve`: a queue of generation jobs decoded in batches over one
 * `CausalLM`, step by step, yielding to the event loop between steps so HTTP I/O, streaming, client
 * disconnects and signals are handled while a batch decodes.
 *
 * - A job is one request: P prompts × n completions. Its rows always decode in the same batch.
 * - Batching: when a batch ends, every waiting job with the same sampling settings (temperature, top-k,
 *   top-p, min-p: the native sampler takes them per batch) joins the next one, up to `maxConcurrency` jobs
 *   and `maxBatchRows` rows; so concurrent requests share one prefill and one decode loop. Before a batch
 *   starts, the engine waits up to `batchWaitMs` while fewer jobs are queued than shared a recent batch, so
 *   closed-loop clients regroup instead of alternating in two half-full batches. Jobs do not join a batch
 *   that is already decoding (no continuous batching: the KV cache advances all rows together).
 * - Decoding is `LocalSampler`'s: both run the loop of src/model/decode.ts (`decodeSteps`), the engine
 *   yielding between its steps. Row r of a job with seed s draws from generator s + r, so a request with a
 *   seed gives the same completions as `LocalSampler.generate` with the same seeds, and its log-probs are
 *   log softmax(logits / T)[token] over the full vocabulary (T = 1 when greedy), what training recomputes.
 *   Streaming is the loop's `onToken`/`onFinish` hooks; cancellation its `cancelled` check.
 * - Weight reloads are barriers in the queue: jobs submitted before a reload decode with the old weights,
 *   jobs after it with the new ones; a batch never sees two versions.
 * - A cancelled job (client gone) drops out of its batch at the next step.
 * @module
 */
import { CohortError } from "../errors.js";
import { eosIds } from "../model/config.js";
import {
  cacheLength,
  type DecodeRow,
  decodeSteps,
  type FinishReason,
  type RowResult,
  type TokenEvent,
  type TopLogprob,
} from "../model/decode.js";
import type { CausalLM, DecodePlan, RolloutPrecision } from "../model/llama.js";
import { dispose, type Tensor } from "../tensor/index.js";
import { clearAdapterBase, foldAdapters } from "./adapters.js";
import { ApiError } from "./protocol.js";

export type { TokenEvent, TopLogprob } from "../model/decode.js";

export interface EngineOptions {
  /** Rows (completions) decoded together at most. Default 128. */
  maxBatchRows?: number;
  /** Jobs (requests) in one batch at most. Default 16. */
  maxConcurrency?: number;
  /** Jobs waiting for a batch at most; beyond it `submit` fails with 429. Default 64. */
  maxQueue?: number;
  /** Token ids → text without special tokens (stop strings are matched on it). */
  decode: (ids: number[]) => string;
  /** Id written into left padding (masked out). Default: the config's pad id, else 0. */
  padId?: number;
  /** Base of the seeds of jobs without one. Default 0. */
  seed?: number;
  /** Fused native decode step (f32 CPU). Default true. */
  fusedDecode?: boolean;
  /**
   * `int8`: decode with weight-only int8 projections and lm_head (`RolloutPrecision`; fp32 CPU models, fused
   * step). Quantized once, at the first batch, and again after every reload. Default `fp32`.
   */
  precision?: RolloutPrecision;
  /**
   * Before a batch starts, wait up to this long while fewer jobs are queued than shared one of the last four
   * batches (clients that send their next request when the last one returns arrive some ms apart). Default 20 ms.
   */
  batchWaitMs?: number;
}

export interface JobSpec {
  /** Token ids of each prompt (non-empty). */
  prompts: number[][];
  /** Completions per prompt. */
  n: number;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  /** Token ids that end a completion (included in it). */
  stopTokenIds: number[];
  /** Strings that end a completion once its text contains one. */
  stop: string[];
  /** Row r (= prompt · n + choice) draws from generator seed + r. Default: the engine's counter. */
  seed?: number;
  /** Alternatives per token to report (0 = none). */
  topLogprobs: number;
  /** Called for every sampled token of choice `index` (streaming). */
  onToken?: (index: number, ev: TokenEvent) => void;
  /** Called once when choice `index` ends. */
  onFinish?: (index: number, finish: FinishReason) => void;
}

export interface ChoiceResult {
  /** prompt · n + choice. */
  index: number;
  tokens: number[];
  logprobs: number[];
  top: TopLogprob[][] | null;
  finishReason: FinishReason;
}

export interface JobResult {
  /** false: every choice finished; true: the job was cancelled or aborted, `choices` is empty. */
  cancelled: boolean;
  choices: ChoiceResult[];
  /** The weights version the job decoded with (0 = as loaded; +1 per reload). */
  weightsVersion: number;
}

export interface EngineStats {
  queued: number;
  active: number;
  batches: number;
  /** Most jobs that shared one batch so far. */
  maxJobsPerBatch: number;
  completed: number;
  cancelled: number;
  generatedTokens: number;
  weightsVersion: number;
}

/** A submitted request. `result` settles when it finishes or is cancelled (it never rejects on cancel). */
export class Job {
  cancelled = false;
  readonly result: Promise<JobResult>;
  #resolve!: (r: JobResult) => void;
  #reject!: (e: unknown) => void;
  settled = false;

  constructor(readonly spec: JobSpec) {
    this.result = new Promise((res, rej) => {
      this.#resolve = res;
      this.#reject = rej;
    });
  }

  get rows(): number {
    return this.spec.prompts.length * this.spec.n;
  }

  /** Stops decoding this job at the next step (e.g. the client disconnected). */
  cancel(): void {
    this.cancelled = true;
  }

  /** @internal */
  settle(r: JobResult | Error): void {
    if (this.settled) return;
    this.settled = true;
    if (r instanceof Error) this.#reject(r);
    else this.#resolve(r);
  }
}

type QueueItem =
  | { kind: "job"; job: Job }
  | {
      kind: "reload";
      tensors: Record<string, Tensor>;
      /** Set: `tensors` are LoRA adapters to fold into the base weights with this scale. */
      adapterScale: number | null;
      path: string;
      resolve: (v: number) => void;
      reject: (e: unknown) => void;
    };

const sameSampling = (a: JobSpec, b: JobSpec) =>
  a.temperature === b.temperature && a.topK === b.topK && a.topP === b.topP && a.minP === b.minP;

const nextTick = () => new Promise<void>((r) => setImmediate(r));

export class Engine {
  readonly #opts: Required<Omit<EngineOptions, "padId">> & { padId: number };
  readonly #queue: QueueItem[] = [];
  #active: Job[] = [];
  #running = false;
  #closed = false;
  #nextSeed: number;
  #idle: (() => void)[] = [];
  #wake: (() => void) | null = null;
  /** Jobs in each of the last four batches. */
  #recentBatchJobs: number[] = [];
  #stats = { batches: 0, maxJobsPerBatch: 0, completed: 0, cancelled: 0, generatedTokens: 0 };
  weightsVersion = 0;
  /** Base weights of the projections adapter reloads have adapted (src/serve/adapters.ts). */
  readonly #adapterBase = new Map<string, Tensor>();
  /** The int8 plan of the current weights (precision int8), built at the first batch after a load. */
  #int8Plan: DecodePlan | null = null;

  constructor(
    readonly model: CausalLM,
    opts: EngineOptions,
  ) {
    this.#opts = {
      maxBatchRows: opts.maxBatchRows ?? 128,
      maxConcurrency: opts.maxConcurrency ?? 16,
      maxQueue: opts.maxQueue ?? 64,
      decode: opts.decode,
      padId: opts.padId ?? model.config.padTokenId ?? 0,
      seed: opts.seed ?? 0,
      fusedDecode: opts.fusedDecode ?? true,
      precision: opts.precision ?? "fp32",
      batchWaitMs: opts.batchWaitMs ?? 20,
    };
    this.#nextSeed = this.#opts.seed;
  }

  /** The model's default stop ids (its eos ids). */
  get eosIds(): number[] {
    return eosIds(this.model.config);
  }

  get maxBatchRows(): number {
    return this.#opts.maxBatchRows;
  }

  stats(): EngineStats {
    return {
      queued: this.#queue.filter((q) => q.kind === "job").length,
      active: this.#active.length,
      weightsVersion: this.weightsVersion,
      ...this.#stats,
    };
  }

  /** Queues a job. Throws ApiError 429 when the queue is full and 503 once the engine is closed. */
  submit(spec: JobSpec): Job {
    if (this.#closed) throw new ApiError(503, "the server is shutting down; send the request elsewhere or retry later");
    const waiting = this.#queue.filter((q) => q.kind === "job").length;
    if (waiting >= this.#opts.maxQueue) {
      throw new ApiError(
        429,
        `the request queue is full (${waiting} requests waiting, --max-queue ${this.#opts.maxQueue}); retry with backoff`,
      );
    }
    if (spec.prompts.length === 0 || spec.prompts.some((p) => p.length === 0))
      throw new ApiError(400, "every prompt needs at least one token", "prompt");
    const job = new Job(spec);
    this.#queue.push({ kind: "job", job });
    this.#kick();
    return job;
  }

  /**
   * Copies `tensors` (Hugging Face names) into the model once every job submitted before this call has
   * finished; later jobs see the new weights. Resolves with the new weights version. The tensors are
   * disposed either way; on a mismatch (missing name, wrong shape) the weights stay as they were.
   */
  reload(tensors: Record<string, Tensor>, adapterScale: number | null = null, path = "the reload"): Promise<number> {
    if (this.#closed) {
      dispose(tensors);
      return Promise.reject(new ApiError(503, "the server is shutting down"));
    }
    const p = new Promise<number>((resolve, reject) =>
      this.#queue.push({ kind: "reload", tensors, adapterScale, path, resolve, reject }),
    );
    this.#kick();
    return p;
  }

  /** Refuses new jobs (503); queued and running ones continue. */
  close(): void {
    this.#closed = true;
  }

  /** Resolves when nothing is queued or decoding. */
  idle(): Promise<void> {
    if (!this.#running && this.#queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.#idle.push(r));
  }

  /** Cancels every queued and running job (their results settle as cancelled). */
  abortAll(): void {
    for (const q of this.#queue) if (q.kind === "job") q.job.cancel();
    for (const j of this.#active) j.cancel();
  }

  #kick(): void {
    if (this.#running) {
      if (this.#wake !== null && this.#queuedJobs() >= this.#target()) this.#wake();
      return;
    }
    this.#running = true;
    // start on a later turn of the event loop: the caller finishes its synchronous work first (e.g. writes
    // response headers)
    setImmediate(() => void this.#loop());
  }

  /** Jobs a batch waits for (up to batchWaitMs): the most that shared one of the last few batches. */
  #target(): number {
    return Math.min(this.#opts.maxConcurrency, Math.max(1, ...this.#recentBatchJobs));
  }

  /**
   * Closed-loop clients (each sends its next request when the last returns) otherwise split into groups
   * that alternate batches forever: wait briefly until as many jobs are queued as recently shared a batch.
   */
  async #gather(): Promise<void> {
    const wait = this.#opts.batchWaitMs;
    if (wait <= 0 || this.#queuedJobs() >= this.#target()) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, wait);
      this.#wake = done;
    });
  }

  #queuedJobs(): number {
    let n = 0;
    for (const q of this.#queue) if (q.kind === "job") n++;
    return n;
  }

  async #loop(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const head = this.#queue[0] as QueueItem;
        if (head.kind === "reload") {
          this.#queue.shift();
          this.#applyReload(head);
          continue;
        }
        await this.#gather();
        const batch = this.#takeBatch();
        if (batch.length === 0) continue;
        this.#active = batch;
        this.#recentBatchJobs = [...this.#recentBatchJobs.slice(-3), batch.length];
        try {
          await this.#decode(batch);
        } catch (e) {
          // a failure inside decoding is the server's fault, not the request's
          const msg = e instanceof Error ? e.message : String(e);
          const err = new ApiError(500, `decoding failed: ${msg}`, null, "server_error");
          for (const j of batch) j.settle(err);
        } finally {
          this.#active = [];
        }
      }
    } finally {
      this.#running = false;
      for (const r of this.#idle.splice(0)) r();
    }
  }

  #applyReload(item: Extract<QueueItem, { kind: "reload" }>): void {
    this.#int8Plan?.dispose(); // quantized from the old weights
    this.#int8Plan = null;
    try {
      if (item.adapterScale !== null)
        foldAdapters(this.model, this.#adapterBase, item.tensors, item.adapterScale, item.path);
      else {
        this.model.load({ tensors: item.tensors, meta: {} });
        clearAdapterBase(this.#adapterBase); // adapters loaded later apply to these weights
      }
      this.weightsVersion++;
      item.resolve(this.weightsVersion);
    } catch (e) {
      item.reject(e instanceof CohortError ? new ApiError(400, e.message, "path") : e);
    } finally {
      dispose(item.tensors);
    }
  }

  /** Jobs for the next batch: the first waiting job and every later one it can share a batch with. */
  #takeBatch(): Job[] {
    const batch: Job[] = [];
    let rows = 0;
    for (let i = 0; i < this.#queue.length && batch.length < this.#opts.maxConcurrency; ) {
      const it = this.#queue[i] as QueueItem;
      if (it.kind === "reload") break;
      const job = it.job;
      if (job.cancelled) {
        this.#queue.splice(i, 1);
        this.#stats.cancelled++;
        job.settle({ cancelled: true, choices: [], weightsVersion: this.weightsVersion });
        continue;
      }
      const first = batch[0];
      if (first === undefined || (sameSampling(first.spec, job.spec) && rows + job.rows <= this.#opts.maxBatchRows)) {
        batch.push(job);
        rows += job.rows;
        this.#queue.splice(i, 1);
      } else i++;
    }
    return batch;
  }

  async #decode(batch: Job[]): Promise<void> {
    const model = this.model;
    this.#stats.batches++;
    this.#stats.maxJobsPerBatch = Math.max(this.#stats.maxJobsPerBatch, batch.length);
    // one decoding row per completion: row r of a job with seed s draws from generator s + r
    const owners: { job: Job; index: number }[] = [];
    const rows: DecodeRow[] = [];
    for (const job of batch) {
      const s = job.spec;
      const base = s.seed ?? this.#nextSeed;
      if (s.seed === undefined) this.#nextSeed += job.rows;
      const stopIds = new Set(s.stopTokenIds);
      s.prompts.forEach((prompt, p) => {
        for (let c = 0; c < s.n; c++) {
          const index = p * s.n + c;
          owners.push({ job, index });
          rows.push({
            prompt,
            seed: base + index,
            maxTokens: s.maxTokens,
            stopIds,
            stop: s.stop,
            topLogprobs: s.topLogprobs,
          });
        }
      });
    }
    const { temperature, topK, topP, minP } = (batch[0] as Job).spec;
    let plan: DecodePlan | null = null;
    if (this.#opts.precision === "int8") {
      this.#int8Plan ??= model.decodePlan(model.config.maxPositionEmbeddings, { precision: "int8" });
      plan = this.#int8Plan;
    } else if (this.#opts.fusedDecode) plan = model.decodePlan(cacheLength(rows));
    const owner = (r: number) => owners[r] as { job: Job; index: number };
    let results: RowResult[];
    try {
      const steps = decodeSteps(model, rows, {
        temperature,
        topK,
        topP,
        minP,
        padId: this.#opts.padId,
        plan,
        decode: this.#opts.decode,
        onToken: (r, ev) => {
          this.#stats.generatedTokens++;
          const { job, index } = owner(r);
          job.spec.onToken?.(index, ev);
        },
        onFinish: (r, why) => {
          const { job, index } = owner(r);
          job.spec.onFinish?.(index, why);
        },
        cancelled: (r) => owner(r).job.cancelled,
      });
      // the event loop runs between decoding steps (HTTP I/O, streaming, disconnects, signals)
      for (let s = steps.next(); ; s = steps.next()) {
        if (s.done) {
          results = s.value;
          break;
        }
        await nextTick();
      }
    } finally {
      if (plan !== this.#int8Plan) plan?.dispose();
    }
    for (const job of batch) {
      if (job.cancelled) {
        this.#stats.cancelled++;
        job.settle({ cancelled: true, choices: [], weightsVersion: this.weightsVersion });
        continue;
      }
      const mine = results
        .map((r, i) => ({ r, index: owner(i).index, job: owner(i).job }))
        .filter((x) => x.job === job)
        .sort((a, b) => a.index - b.index);
      this.#stats.completed++;
      job.settle({
        cancelled: false,
        weightsVersion: this.weightsVersion,
        choices: mine.map(({ r, index }) => ({
          index,
          tokens: r.tokens,
          logprobs: r.logprobs,
          top: r.top,
          finishReason: r.finishReason === "stop" ? "stop" : "length",
        })),
      });
    }
  }
}
