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
 * - weight sync: `sync(path, version)` asks every worker to load the snapshot at `path`, in its own API
 *   (`workerApi`): `cohort serve` takes a safetensors file or a model directory (`POST /v1/reload {path,
 *   sha256}`, read from its own disk) or, with `weightSync: "push"`, the file's bytes as the request body (no
 *   shared disk); SGLang a Hugging Face model directory (`POST /update_weights_from_disk {model_path}`); with
 *   `auto` each worker's API is detected once, before its first load (SGLang answers `GET /get_model_info`,
 *   other servers are taken for `cohort serve`). `cohort serve` checks the snapshot's SHA-256 before it swaps;
 *   weight loads carry the admin key when the client has one (`client.adminKey`), else the API key;
 * - staleness: a worker whose weights are more than `maxStaleness` policy versions behind is not used until
 *   it is reloaded;
 * - per-sample policy version: a response's `system_fingerprint` `cohort-wN` maps server weights version N
 *   to the policy version the pool pushed with it; without one (SGLang, vLLM), the version last pushed to
 *   that worker;
 * - `whenSent()`: resolves once every request the pool has started is on the wire, so that the workers
 *   generate while the caller runs a long synchronous computation (the trainer's optimizer update).
 * @module
 */

import { readFileSync, statSync } from "node:fs";
import { CohortError } from "../errors.js";
import { type CompletionResponse, OpenAIClient, type OpenAIClientOptions, OpenAIError } from "./client.js";
import { sha256Bytes, sha256File, snapshotFile } from "./snapshot.js";

/** The weight-loading API of a rollout worker. */
export type WorkerApi = "cohort" | "sglang";

/**
 * How `cohort serve` workers get the weights (`sampler.weightSync`): `disk`, by a path they read from their own
 * disk (the same machine or a shared one), or `push`, as the bytes of the request body.
 */
export type WeightSync = "disk" | "push";

/** A snapshot ready to send: the safetensors file's bytes (push) or its SHA-256 (disk; null when sharded). */
export interface PreparedSnapshot {
  bytes?: Uint8Array;
  sha256: string | null;
}

/** Reads (push) or hashes (disk) the snapshot at `path` once, for every worker it goes to. */
export function prepareSnapshot(path: string, weightSync: WeightSync): PreparedSnapshot {
  const file = snapshotFile(path);
  if (weightSync === "push") {
    if (file === null)
      throw new CohortError(
        `weight sync: ${path} is a sharded model directory; sampler.weightSync push sends one safetensors file`,
      );
    const bytes = readFileSync(file);
    return { bytes, sha256: sha256Bytes(bytes) };
  }
  return { sha256: file === null ? null : sha256File(file) };
}

/** What to do about a failed weight load, for the error the trainer shows. */
export function weightSyncHint(e: unknown, path: string, weightSync: WeightSync): string {
  if (e instanceof OpenAIError && e.status === 401)
    return "the worker wants a key: put its API key in the variable named by sampler.apiKeyEnv, and its admin key (if it has one) in COHORT_ADMIN_KEY, in the trainer's environment";
  if (e instanceof OpenAIError && e.status === 403)
    return `the worker reads snapshots only inside its --weights-dir: start it with --weights-dir covering ${path}, or send the weights in the request with sampler.weightSync: push`;
  if (weightSync === "push")
    return "with sampler.weightSync push the worker must be a cohort serve whose --max-push-mb fits the snapshot (SGLang workers need weightSync: disk), or turn sampler.syncWeights off";
  return `the worker must be a cohort serve (or SGLang: sampler.workerApi) that can read ${path} (same disk), or turn sampler.syncWeights off`;
}

/**
 * Which API a worker speaks: SGLang answers `GET /get_model_info` with its model path; a server without the
 * route (404/405 from `cohort serve` and vLLM) or whose answer has no `model_path` is `cohort`. Any other
 * failure (connection error, timeout, 5xx) is thrown: the worker cannot be classified now.
 */
export async function detectWorkerApi(client: OpenAIClient): Promise<WorkerApi> {
  try {
    const info = await client.modelInfo();
    return typeof info === "object" && info !== null && "model_path" in info ? "sglang" : "cohort";
  } catch (e) {
    if (e instanceof OpenAIError && (e.status === 404 || e.status === 405)) return "cohort";
    throw e;
  }
}

/**
 * Asks one worker to load the weights at `path`: `cohort serve` reloads a safetensors file or model directory
 * from its own disk (`disk`, with the snapshot's SHA-256) or takes the file's bytes (`push`), and returns its
 * weights version; SGLang loads a Hugging Face model directory (`update_weights_from_disk`) from its disk and
 * reports no version (null). `prepare`: gives the snapshot read or hashed once for all workers (`prepareSnapshot`).
 */
export async function loadWorkerWeights(
  client: OpenAIClient,
  api: WorkerApi,
  path: string,
  opts: { weightSync?: WeightSync; prepare?: () => PreparedSnapshot } = {},
): Promise<number | null> {
  const weightSync = opts.weightSync ?? "disk";
  if (api === "cohort") {
    const snap = opts.prepare?.() ?? prepareSnapshot(path, weightSync);
    if (weightSync === "push")
      return (await client.pushWeights(snap.bytes as Uint8Array, snap.sha256 as string)).weights_version;
    return (await client.reload(path, snap.sha256 ?? undefined)).weights_version;
  }
  if (weightSync === "push")
    throw new CohortError(
      `SGLang worker ${client.origin} loads weights from its own disk, and sampler.weightSync push sends them in the request body, which only cohort serve accepts`,
    );
  let dir = false;
  try {
    dir = statSync(path).isDirectory();
  } catch {
    // not on this machine's disk: the worker judges
    dir = true;
  }
  if (!dir)
    throw new CohortError(
      `weight sync: SGLang worker ${client.origin} loads a Hugging Face model directory (config.json + *.safetensors), not the file ${path}`,
    );
  await client.updateWeightsFromDisk(path);
  return null;
}

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
  /** The workers' weight-loading API; `auto` (default) detects each worker's (see `detectWorkerApi`). */
  workerApi?: WorkerApi | "auto";
  /** Most policy versions a worker's weights may lag before it is left out. Default: no bound. */
  maxStaleness?: number;
  /** How `cohort serve` workers get the weights: `disk` (default) or `push` (see `WeightSync`). */
  weightSync?: WeightSync;
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
  /** Its weight-loading API (null: not detected yet). */
  api: WorkerApi | null;
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
  readonly #o: Required<
    Omit<RolloutPoolOptions, "client" | "log" | "maxStaleness" | "baseUrls" | "workerApi" | "weightSync">
  > &
    Pick<RolloutPoolOptions, "log" | "maxStaleness"> & { weightSync: WeightSync };
  /** Latest policy version (optimizer steps taken). */
  #version = 0;
  /** The snapshot last pushed and its version: re-admitted workers load it. */
  #snapshot: { file: string; version: number } | null = null;
  #timer: ReturnType<typeof setInterval> | null = null;
  #probing = false;
  /** Counters since the last `takeMetrics()`; sample versions, not lags: the lag is taken against the version trained. */
  #step = RolloutPool.#emptyStep();

  static #emptyStep() {
    return { requests: 0, retried: 0, downEvents: 0, samples: 0, versionSum: 0, versionMin: Number.POSITIVE_INFINITY };
  }

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
      api: opts.workerApi === undefined || opts.workerApi === "auto" ? null : opts.workerApi,
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
      weightSync: opts.weightSync ?? "disk",
      log: opts.log,
    };
  }

  /** A snapshot of every worker's state. */
  workers(): WorkerState[] {
    return this.#w.map(({ baseUrl, up, inFlight, served, version, lastError, api }) => ({
      baseUrl,
      up,
      inFlight,
      served,
      version,
      lastError,
      api,
    }));
  }

  /**
   * Whether a snapshot must be a Hugging Face model directory: some worker is (or, not detected yet, may be)
   * SGLang. Detects the API of the workers that are up; one that cannot be reached is marked down.
   */
  async needsModelDir(): Promise<boolean> {
    await Promise.all(this.#w.filter((w) => w.up && w.api === null).map((w) => this.#detect(w)));
    return this.#w.some((w) => w.api !== "cohort");
  }

  /** Detects `w`'s API; a worker that cannot answer now (connection, timeout, 429/5xx) is marked down. */
  async #detect(w: Worker): Promise<WorkerApi | null> {
    try {
      w.api = await detectWorkerApi(w.client);
      return w.api;
    } catch (e) {
      if (!(e instanceof OpenAIError && (e.status === null || e.retryable))) throw e;
      this.#markDown(w, `weight API detection: ${e.message}`);
      return null;
    }
  }

  /** Resolves once every request the pool has started is on the wire (see `OpenAIClient.whenSent`). */
  async whenSent(): Promise<void> {
    await Promise.all(this.#w.map((w) => w.client.whenSent()));
  }

  /** Requests sent to the workers and not answered yet. */
  get inFlight(): number {
    return this.#w.reduce((a, w) => a + w.inFlight, 0);
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

  async #reload(w: Worker, path: string, version: number, prepare?: () => PreparedSnapshot): Promise<void> {
    const api = w.api ?? (await this.#detect(w));
    // marked down: it loads the snapshot when re-admitted
    if (api === null) throw new OpenAIError(`${w.baseUrl}: ${w.lastError ?? "its weight API is unknown"}`, null);
    const served = await loadWorkerWeights(w.client, api, path, {
      weightSync: this.#o.weightSync,
      ...(prepare !== undefined ? { prepare } : {}),
    });
    if (served !== null) w.serverToPolicy.set(served, version);
    w.version = version;
  }

  /**
   * Asks every worker that is up to load the snapshot at `path` (policy `version`): a safetensors file or a
   * Hugging Face model directory (needed by SGLang workers, see `needsModelDir`), by path or pushed
   * (`weightSync`). A worker that cannot be reached is marked down (it loads the snapshot when re-admitted);
   * any other failure (a missing or wrong key, the server cannot read the path, refuses the weights or their
   * checksum, has no reload endpoint) is an error naming the worker.
   */
  async sync(path: string, version: number): Promise<void> {
    this.setVersion(version);
    this.#snapshot = { file: path, version };
    // read or hashed once, when the first cohort serve worker needs it
    let prepared: PreparedSnapshot | undefined;
    const prepare = () => {
      prepared ??= prepareSnapshot(path, this.#o.weightSync);
      return prepared;
    };
    await Promise.all(
      this.#w
        .filter((w) => w.up)
        .map(async (w) => {
          try {
            await this.#reload(w, path, version, prepare);
          } catch (e) {
            if (e instanceof OpenAIError && e.status === null) {
              this.#markDown(w, e.message);
              return;
            }
            const sglangDisk =
              w.api === "sglang" && this.#o.weightSync === "disk" && !(e instanceof OpenAIError && e.status === 401);
            throw new CohortError(
              `weight sync: ${(e as Error).message}; ${
                sglangDisk
                  ? `the SGLang worker must read ${path} on its own disk (shared or same machine) and serve the same architecture, or turn sampler.syncWeights off`
                  : weightSyncHint(e, path, this.#o.weightSync)
              }`,
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
        this.#step.samples += n;
        this.#step.versionSum += policyVersion * n;
        if (n > 0) this.#step.versionMin = Math.min(this.#step.versionMin, policyVersion);
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
   * the samples and `trainVersion`, the policy they are trained at; default the latest) and `pool/served/<i>`
   * (requests each worker has answered so far).
   */
  takeMetrics(trainVersion = this.#version): Record<string, number> {
    const s = this.#step;
    const m: Record<string, number> = {
      "pool/workers": this.#w.length,
      "pool/workers_up": this.#w.filter((w) => w.up).length,
      "pool/requests": s.requests,
      "pool/requests_retried": s.retried,
      "pool/workers_down_events": s.downEvents,
      "pool/policy_lag_mean": s.samples > 0 ? Math.max(0, trainVersion - s.versionSum / s.samples) : 0,
      "pool/policy_lag_max": s.samples > 0 ? Math.max(0, trainVersion - s.versionMin) : 0,
    };
    this.#w.forEach((w, i) => {
      m[`pool/served/${i}`] = w.served;
    });
    this.#step = RolloutPool.#emptyStep();
    return m;
  }

  /** Stops the health probes and closes the workers' connections. */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    for (const w of this.#w) w.client.close();
  }
}
