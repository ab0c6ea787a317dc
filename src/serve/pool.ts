/**
 * `RolloutPool`: N OpenAI-compatible rollout workers (`cohort serve`, vLLM, SGLang, …) behind one
 * `completions` call, for the trainer's `sampler: {kind: openai, baseUrls: […]}`:
 *
 * - load balancing: each request goes to the usable worker with the fewest requests in flight (ties: the one
 *   that has served fewest);
 * - faults: a request that fails with a connection error or a timeout marks its worker down and is sent again
 *   to another worker (429/5xx are retried with backoff without marking the worker down); down workers are
 *   probed (`GET /health`, else `GET /v1/models`) every `healthIntervalMs` and re-admitted when they answer,
 *   after the current weights are pushed to them when weight sync is on;
 * - weight sync: `sync(file, version)` asks every worker to load the snapshot at `file` (`POST /v1/reload`);
 * - staleness: a worker whose weights are more than `maxStaleness` policy versions behind is not used until
 *   it is reloaded;
 * - per-sample policy version: a response's `system_fingerprint` `cohort-wN` maps server weights version N
 *   to the policy version the pool pushed with it; without one, the version last pushed to that worker.
 * @module
 */
import { CohortError } from "../errors.js";
import { type CompletionResponse, OpenAIClient, type OpenAIClientOptions, OpenAIError } from "./client.js";

export interface RolloutPoolOptions {
  baseUrls: string[];
  /** Options of each worker's client (its own retries are off: the pool retries across workers). */
  client?: Omit<OpenAIClientOptions, "baseUrl" | "maxRetries" | "log">;
  /** Attempts after the first, over all workers. Default 4. */
  maxRetries?: number;
  /** Delay before a retry that follows a 429/5xx or finds no usable worker; doubles per retry. Default 250 ms. */
  backoffMs?: number;
  /** Longest delay between attempts. Default 8 000 ms. */
  maxBackoffMs?: number;
  /** How often down workers are probed. Default 1 000 ms. */
  healthIntervalMs?: number;
  /** Most policy versions a worker's weights may lag before it is left out. Default: no bound. */
  maxStaleness?: number;
  log?: (line: string) => void;
}

/** One worker's state, as `workers()` reports it. */
export interface WorkerState {
  baseUrl: string;
  up: boolean;
  inFlight: number;
  /** Requests it answered. */
  served: number;
  /** Policy version of the weights it holds (0: the weights it started with). */
  version: number;
  /** Why it was last marked down. */
  lastError: string | null;
}

/** A completion response with the policy version its samples were drawn from. */
export type PooledCompletion = CompletionResponse & { policyVersion: number };

interface Worker extends WorkerState {
  client: OpenAIClient;
  /** Server weights version (fingerprint `cohort-wN`) → policy version. */
  serverToPolicy: Map<number, number>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RolloutPool {
  readonly baseUrl: string;
  readonly #w: Worker[];
  readonly #o: Required<Omit<RolloutPoolOptions, "client" | "log" | "maxStaleness" | "baseUrls">> &
    Pick<RolloutPoolOptions, "log" | "maxStaleness">;
  /** Latest policy version (optimizer steps taken). */
  #version = 0;
  /** The snapshot last pushed and its version: re-admitted workers load it. */
  #snapshot: { file: string; version: number } | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #probing = false;
  /** Counters since the last `takeMetrics()`. */
  #step = { requests: 0, retried: 0, downEvents: 0, samples: 0, lagSum: 0, lagMax: 0 };

  constructor(opts: RolloutPoolOptions) {
    if (opts.baseUrls.length === 0)
      throw new CohortError("RolloutPool: no worker; pass at least one base URL (sampler.baseUrls)");
    this.#w = opts.baseUrls.map((u) => ({
      baseUrl: u,
      client: new OpenAIClient({ ...opts.client, baseUrl: u, maxRetries: 0 }),
      up: true,
      inFlight: 0,
      served: 0,
      version: 0,
      lastError: null,
      serverToPolicy: new Map(),
    }));
    for (const w of this.#w) w.baseUrl = w.client.baseUrl;
    const dup = this.#w.find((w, i) => this.#w.findIndex((x) => x.baseUrl === w.baseUrl) !== i);
    if (dup) throw new CohortError(`sampler.baseUrls lists ${dup.baseUrl} twice; list each worker once`);
    this.baseUrl = this.#w.map((w) => w.baseUrl).join(", ");
    this.#o = {
      maxRetries: opts.maxRetries ?? 4,
      backoffMs: opts.backoffMs ?? 250,
      maxBackoffMs: opts.maxBackoffMs ?? 8_000,
      healthIntervalMs: opts.healthIntervalMs ?? 1_000,
      maxStaleness: opts.maxStaleness,
      log: opts.log,
    };
  }

  /** A snapshot of every worker's state. */
  workers(): WorkerState[] {
    return this.#w.map(({ baseUrl, up, inFlight, served, version, lastError }) => ({
      baseUrl,
      up,
      inFlight,
      served,
      version,
      lastError,
    }));
  }

  /** The latest policy version (set by `sync` and `setVersion`). */
  get version(): number {
    return this.#version;
  }

  /** Records that the policy is now at `version` (without pushing it): workers' lag grows. */
  setVersion(version: number): void {
    this.#version = Math.max(this.#version, version);
  }

  #usable(w: Worker): boolean {
    return w.up && (this.#o.maxStaleness === undefined || this.#version - w.version <= this.#o.maxStaleness);
  }

  #pick(exclude: Worker | null): Worker | null {
    let best: Worker | null = null;
    for (const w of this.#w) {
      if (!this.#usable(w) || w === exclude) continue;
      if (best === null || w.inFlight < best.inFlight || (w.inFlight === best.inFlight && w.served < best.served))
        best = w;
    }
    // the worker that just failed with a 429/5xx is still better than none
    return best ?? (exclude && this.#usable(exclude) ? exclude : null);
  }

  #markDown(w: Worker, why: string): void {
    if (!w.up) return;
    w.up = false;
    w.lastError = why;
    this.#step.downEvents++;
    this.#o.log?.(`worker ${w.baseUrl} is down (${why}); its requests go to the others`);
    this.#ensureProbing();
  }

  #ensureProbing(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => void this.checkHealth(), this.#o.healthIntervalMs);
    this.#timer.unref();
  }

  /** `cohort serve` and vLLM answer `GET /health`; other servers `GET /v1/models`. */
  async #healthy(w: Worker): Promise<boolean> {
    const origin = new URL(w.baseUrl).origin;
    try {
      const res = await fetch(`${origin}/health`, { signal: AbortSignal.timeout(5_000) });
      await res.text();
      if (res.ok) return true;
      if (res.status !== 404) return false;
      await w.client.models();
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Probes the down workers; one that answers is re-admitted (after loading the latest snapshot when the
   * pool has pushed one). Runs on a timer while any worker is down; callable directly.
   */
  async checkHealth(): Promise<void> {
    if (this.#probing) return;
    this.#probing = true;
    try {
      await Promise.all(
        this.#w
          .filter((w) => !w.up)
          .map(async (w) => {
            if (!(await this.#healthy(w))) return;
            const snap = this.#snapshot;
            if (snap !== null && w.version < snap.version) {
              try {
                await this.#reload(w, snap.file, snap.version);
              } catch (e) {
                w.lastError = (e as Error).message;
                return;
              }
            }
            w.up = true;
            w.lastError = null;
            this.#o.log?.(`worker ${w.baseUrl} is back (policy version ${w.version})`);
          }),
      );
    } finally {
      this.#probing = false;
      if (this.#w.every((w) => w.up) && this.#timer !== null) {
        clearInterval(this.#timer);
        this.#timer = null;
      }
    }
  }

  async #reload(w: Worker, file: string, version: number): Promise<void> {
    const r = await w.client.reload(file);
    w.serverToPolicy.set(r.weights_version, version);
    w.version = version;
  }

  /**
   * Asks every worker that is up to load the snapshot at `file` (policy `version`). A worker that cannot be
   * reached is marked down (it loads the snapshot when re-admitted); any other failure (the server cannot
   * read the file, has no reload endpoint) is an error.
   */
  async sync(file: string, version: number): Promise<void> {
    this.setVersion(version);
    this.#snapshot = { file, version };
    await Promise.all(
      this.#w
        .filter((w) => w.up)
        .map(async (w) => {
          try {
            await this.#reload(w, file, version);
          } catch (e) {
            if (e instanceof OpenAIError && e.status === null) this.#markDown(w, e.message);
            else
              throw new CohortError(
                `weight sync: ${(e as Error).message}; the worker must be a cohort serve that can read ${file} (same disk), or turn sampler.syncWeights off`,
              );
          }
        }),
    );
  }

  /** `POST /v1/completions` on the least-loaded usable worker, retried on the others (see the module doc). */
  async completions(body: Record<string, unknown>): Promise<PooledCompletion> {
    let failed: Worker | null = null;
    let lastError = "";
    for (let attempt = 0; ; attempt++) {
      const w = this.#pick(failed);
      if (w === null) {
        if (attempt >= this.#o.maxRetries) throw new OpenAIError(this.#unavailable(lastError), null);
        await sleep(this.#backoff(attempt));
        await this.checkHealth();
        continue;
      }
      w.inFlight++;
      this.#step.requests++;
      try {
        const res = await w.client.completions(body);
        w.served++;
        const policyVersion = this.#sampleVersion(w, res.system_fingerprint);
        const n = res.choices?.length ?? 0;
        const lag = Math.max(0, this.#version - policyVersion);
        this.#step.samples += n;
        this.#step.lagSum += lag * n;
        this.#step.lagMax = Math.max(this.#step.lagMax, lag);
        return { ...res, policyVersion };
      } catch (e) {
        if (!(e instanceof OpenAIError) || !e.retryable) throw e;
        lastError = e.message;
        if (attempt >= this.#o.maxRetries)
          throw new OpenAIError(`${e.message} (gave up after ${attempt + 1} attempts over the pool)`, e.status);
        this.#step.retried++;
        if (e.status === null) this.#markDown(w, e.message);
        else {
          failed = w;
          await sleep(this.#backoff(attempt));
        }
        this.#o.log?.(`${e.message}; retry ${attempt + 1}/${this.#o.maxRetries} on another worker`);
      } finally {
        w.inFlight--;
      }
    }
  }

  #backoff(attempt: number): number {
    return Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** attempt) * (0.5 + Math.random());
  }

  #sampleVersion(w: Worker, fingerprint: string | undefined): number {
    const m = fingerprint === undefined ? null : /^cohort-w(\d+)$/.exec(fingerprint);
    if (m) {
      const v = w.serverToPolicy.get(Number(m[1]));
      if (v !== undefined) return v;
    }
    return w.version;
  }

  #unavailable(lastError: string): string {
    const states = this.#w
      .map((w) => {
        const why = !w.up
          ? `down: ${w.lastError ?? "unreachable"}`
          : `${this.#version - w.version} versions behind (maxStaleness ${this.#o.maxStaleness})`;
        return `${w.baseUrl} (${why})`;
      })
      .join("; ");
    return `no rollout worker is usable: ${states}${lastError ? `; last error: ${lastError}` : ""}. Start or fix a worker, or raise sampler.maxStaleness`;
  }

  /**
   * The pool's metrics since the last call: `pool/workers`, `pool/workers_up`, `pool/requests`,
   * `pool/requests_retried`, `pool/workers_down_events`, `pool/policy_lag_mean|max` (policy versions between
   * the samples and the latest policy) and `pool/served/<i>` (requests each worker has answered so far).
   */
  takeMetrics(): Record<string, number> {
    const s = this.#step;
    const m: Record<string, number> = {
      "pool/workers": this.#w.length,
      "pool/workers_up": this.#w.filter((w) => w.up).length,
      "pool/requests": s.requests,
      "pool/requests_retried": s.retried,
      "pool/workers_down_events": s.downEvents,
      "pool/policy_lag_mean": s.samples > 0 ? s.lagSum / s.samples : 0,
      "pool/policy_lag_max": s.lagMax,
    };
    this.#w.forEach((w, i) => {
      m[`pool/served/${i}`] = w.served;
    });
    this.#step = { requests: 0, retried: 0, downEvents: 0, samples: 0, lagSum: 0, lagMax: 0 };
    return m;
  }

  /** Stops the health probes. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
