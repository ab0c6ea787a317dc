/**
 * A small OpenAI-compatible HTTP client (fetch) for vLLM, SGLang, llama.cpp, `cohort serve` or any
 * endpoint that speaks `/v1/completions` and `/v1/chat/completions`:
 *
 * - retries with exponential backoff and jitter on network errors, timeouts, 408/409/425/429/5xx
 *   (a `Retry-After` header is honoured, up to `maxBackoffMs`); other 4xx fail at once with the server's message;
 * - a timeout per attempt; a limit on requests in flight (the rest wait their turn);
 * - typed responses, including vLLM's `prompt_token_ids` / `token_ids` when the server returns them;
 * - `whenSent()`: resolves once every request that holds a slot has been handed to the operating system, so a
 *   caller can start a long synchronous computation (an optimizer update) while the server works on them;
 * - `cohort serve`'s weight loads (`POST /v1/reload` by path, or a push of the snapshot's bytes), sent with the
 *   admin key when one is set (`adminKey`), else the API key;
 * - SGLang's weight update (`POST /update_weights_from_disk`) and model info (`GET /get_model_info`).
 * @module
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { CohortError } from "../errors.js";
import type { CompletionLogprobs, Usage } from "./protocol.js";
import { SHA256_HEADER } from "./snapshot.js";

export interface OpenAIClientOptions {
  /** e.g. `http://127.0.0.1:8000/v1`; a URL without a path gets `/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
  /** Sent instead of `apiKey` with weight loads (`reload`, `pushWeights`): `cohort serve --admin-key`. */
  adminKey?: string;
  /** Per attempt. Default 120 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 4. */
  maxRetries?: number;
  /** Delay before the first retry; doubles per retry (with ±50 % jitter). Default 250 ms. */
  backoffMs?: number;
  /** Longest delay between attempts. Default 8 000 ms. */
  maxBackoffMs?: number;
  /** Requests in flight at most. Default 8. */
  maxConcurrency?: number;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** Notes about retries. Default: none. */
  log?: (line: string) => void;
}

/** A failed request: `status` is null for network errors and timeouts. */
export class OpenAIError extends CohortError {
  override name = "OpenAIError";
  constructor(
    message: string,
    readonly status: number | null,
    readonly param: string | null = null,
    readonly retryable = false,
  ) {
    super(message);
  }
}

export interface CompletionChoice {
  index: number;
  text: string;
  logprobs: CompletionLogprobs | null;
  finish_reason: string | null;
  /** vLLM `return_token_ids` (and `cohort serve`). */
  token_ids?: number[] | null;
  prompt_token_ids?: number[] | null;
}

export interface CompletionResponse {
  id: string;
  object: string;
  model: string;
  choices: CompletionChoice[];
  usage?: Usage;
  system_fingerprint?: string;
}

export interface ChatChoice {
  index: number;
  message: { role: string; content: string | null };
  logprobs: { content: { token: string; logprob: number }[] | null } | null;
  finish_reason: string | null;
  token_ids?: number[] | null;
}

export interface ChatResponse {
  id: string;
  object: string;
  model: string;
  choices: ChatChoice[];
  usage?: Usage;
  prompt_token_ids?: number[] | null;
}

export interface ChatMessageIn {
  role: string;
  content: string;
}

/** A request body sent as it is (not as JSON), e.g. a weight snapshot's bytes. */
export class RawBody {
  constructor(
    readonly bytes: Uint8Array,
    readonly contentType: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

const RETRY_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

/** `http://h:p` → `http://h:p/v1`; a URL with a path is kept (trailing slashes dropped). */
export function normalizeBaseUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new CohortError(`baseUrl ${JSON.stringify(url)} is not a URL; expected e.g. http://127.0.0.1:8000/v1`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    throw new CohortError(`baseUrl ${url}: only http:// and https:// are supported`);
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.origin}${path === "" ? "/v1" : path}`;
}

/** SGLang's answer to `POST /update_weights_from_disk`. */
export interface SglangUpdateResult {
  success: boolean;
  message: string;
}

export class OpenAIClient {
  readonly baseUrl: string;
  /** Scheme, host and port of `baseUrl` (server-native routes such as SGLang's live here, not under /v1). */
  readonly origin: string;
  readonly #o: Required<Omit<OpenAIClientOptions, "apiKey" | "adminKey" | "log" | "headers">> &
    Pick<OpenAIClientOptions, "apiKey" | "adminKey" | "log" | "headers">;
  readonly #agent: HttpAgent;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  /** Attempts whose request is not yet fully handed to the operating system, and who waits for none to be. */
  #sending = 0;
  #sentWaiters: (() => void)[] = [];
  /** Counters: requests sent (attempts), retries, failures (after the last retry). */
  readonly stats = { attempts: 0, retries: 0, failures: 0 };

  constructor(opts: OpenAIClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.origin = new URL(this.baseUrl).origin;
    this.#o = {
      ...opts,
      timeoutMs: opts.timeoutMs ?? 120_000,
      maxRetries: opts.maxRetries ?? 4,
      backoffMs: opts.backoffMs ?? 250,
      maxBackoffMs: opts.maxBackoffMs ?? 8_000,
      maxConcurrency: opts.maxConcurrency ?? 8,
    };
    const Agent = this.origin.startsWith("https:") ? HttpsAgent : HttpAgent;
    // idle connections are closed after 4 s, before common servers' 5 s keep-alive timeout closes them under us
    this.#agent = new Agent({ keepAlive: true, timeout: 4_000 });
  }

  /** Requests holding a slot (sent or being sent, not yet answered). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Closes its connections (requests still in flight fail); later requests open new ones. */
  close(): void {
    this.#agent.destroy();
  }

  /**
   * Resolves once no request of this client is part-way through being written: every request holding a slot
   * has been handed to the operating system (the server receives it even if this process then blocks).
   * Requests waiting for a slot (`maxConcurrency`) or for a retry's backoff are not waited for.
   */
  whenSent(): Promise<void> {
    if (this.#sending === 0) return Promise.resolve();
    return new Promise((r) => this.#sentWaiters.push(r));
  }

  completions(body: Record<string, unknown>): Promise<CompletionResponse> {
    return this.request<CompletionResponse>("POST", "/completions", body);
  }

  chat(body: Record<string, unknown>): Promise<ChatResponse> {
    return this.request<ChatResponse>("POST", "/chat/completions", body);
  }

  models(): Promise<{ data: { id: string }[] }> {
    return this.request("GET", "/models");
  }

  /**
   * `cohort serve` only: swaps the served weights for the file or directory at `path` (server-side path, inside
   * the server's `--weights-dir`); with `sha256`, the server loads the snapshot only if its bytes hash to it.
   */
  reload(path: string, sha256?: string): Promise<{ weights_version: number; sha256: string | null }> {
    return this.request("POST", "/reload", { path, ...(sha256 !== undefined ? { sha256 } : {}) }, { admin: true });
  }

  /**
   * `cohort serve` only: sends a snapshot's safetensors bytes as the request body (no shared disk needed); the
   * server loads it only if the bytes hash to `sha256`.
   */
  pushWeights(bytes: Uint8Array, sha256: string): Promise<{ weights_version: number; sha256: string }> {
    return this.request(
      "POST",
      "/reload",
      new RawBody(bytes, "application/octet-stream", { [SHA256_HEADER]: sha256 }),
      { admin: true },
    );
  }

  /** SGLang only: `GET /get_model_info` (`model_path`, …). */
  modelInfo(): Promise<Record<string, unknown>> {
    return this.request("GET", "/get_model_info", undefined, { root: true });
  }

  /**
   * SGLang only: `POST /update_weights_from_disk {"model_path"}` loads the weights of the Hugging Face model
   * directory at `modelPath` (server-side path). A refusal (`success: false`, HTTP 200 or 400) is an
   * `OpenAIError` naming the server and its message.
   */
  async updateWeightsFromDisk(modelPath: string): Promise<SglangUpdateResult> {
    const what = `SGLang worker ${this.origin} could not load the weights at ${modelPath}`;
    let r: Partial<SglangUpdateResult>;
    try {
      r = await this.request<Partial<SglangUpdateResult>>(
        "POST",
        "/update_weights_from_disk",
        { model_path: modelPath },
        { root: true },
      );
    } catch (e) {
      if (e instanceof OpenAIError && e.status === 400) {
        const message = e.message.replace(/^POST \S+: HTTP 400: /, "");
        throw new OpenAIError(`${what}: ${message}`, 400, e.param);
      }
      throw e;
    }
    if (r.success !== true)
      throw new OpenAIError(`${what}: ${typeof r.message === "string" ? r.message : JSON.stringify(r)}`, 200);
    return { success: true, message: typeof r.message === "string" ? r.message : "" };
  }

  async #acquire(): Promise<void> {
    if (this.#inFlight < this.#o.maxConcurrency) {
      this.#inFlight++;
      return;
    }
    await new Promise<void>((r) => this.#waiting.push(r));
  }

  #release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#inFlight--;
  }

  /**
   * One JSON request with retries, under the concurrency limit. `path` is relative to `baseUrl`, or with
   * `root` to the server's origin.
   */
  async request<T>(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    opts: { root?: boolean; admin?: boolean } = {},
  ): Promise<T> {
    const url = `${opts.root ? this.origin : this.baseUrl}${path}`;
    const key = (opts.admin ? this.#o.adminKey : undefined) ?? this.#o.apiKey;
    await this.#acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        let err: OpenAIError;
        let retryAfterMs: number | null = null;
        try {
          return await this.#once<T>(method, url, body, key);
        } catch (e) {
          if (!(e instanceof OpenAIError)) throw e;
          err = e;
          retryAfterMs = (e as OpenAIError & { retryAfterMs?: number }).retryAfterMs ?? null;
        }
        if (!err.retryable || attempt >= this.#o.maxRetries) {
          this.stats.failures++;
          if (err.retryable && attempt > 0)
            throw new OpenAIError(`${err.message} (gave up after ${attempt + 1} attempts)`, err.status, err.param);
          throw err;
        }
        const backoff = Math.min(this.#o.maxBackoffMs, this.#o.backoffMs * 2 ** attempt) * (0.5 + Math.random());
        const delay = Math.min(this.#o.maxBackoffMs, retryAfterMs ?? backoff);
        this.stats.retries++;
        this.#o.log?.(
          `${method} ${path}: ${err.message}; retry ${attempt + 1}/${this.#o.maxRetries} in ${Math.round(delay)} ms`,
        );
        await new Promise((r) => setTimeout(r, delay));
      }
    } finally {
      this.#release();
    }
  }

  #sent(): void {
    this.#sending--;
    if (this.#sending > 0) return;
    const ws = this.#sentWaiters;
    this.#sentWaiters = [];
    for (const w of ws) w();
  }

  /**
   * One attempt over node:http(s): the request's `finish` event (its last byte handed to the operating system)
   * is what `whenSent()` waits for.
   */
  async #once<T>(method: string, url: string, body: unknown, key: string | undefined): Promise<T> {
    this.stats.attempts++;
    const headers: Record<string, string> = { accept: "application/json", ...this.#o.headers };
    let data: Uint8Array | undefined;
    if (body instanceof RawBody) {
      data = body.bytes;
      Object.assign(headers, body.headers, { "content-type": body.contentType });
    } else if (body !== undefined) {
      data = Buffer.from(JSON.stringify(body));
      headers["content-type"] = "application/json";
    }
    if (data !== undefined) headers["content-length"] = String(data.length);
    if (key) headers.authorization = `Bearer ${key}`;
    const timeoutMs = this.#o.timeoutMs;
    const res = await new Promise<{ status: number; text: string; retryAfter: string | undefined }>(
      (resolve, reject) => {
        const send = url.startsWith("https:") ? httpsRequest : httpRequest;
        let settled = false;
        let sending = true;
        let responded = false;
        this.#sending++;
        const sent = () => {
          if (!sending) return;
          sending = false;
          this.#sent();
        };
        const fail = (e: OpenAIError) => {
          sent();
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(e);
        };
        let req: ReturnType<typeof httpRequest>;
        try {
          req = send(url, { method, headers, agent: this.#agent });
        } catch (e) {
          fail(new OpenAIError(`${method} ${url}: ${(e as Error).message}`, null));
          return;
        }
        const timer = setTimeout(() => {
          const why = `no response within ${timeoutMs} ms (timeoutMs)`;
          fail(
            responded
              ? new OpenAIError(`${method} ${url}: the response broke off (${why})`, null, null, true)
              : new OpenAIError(`${method} ${url}: ${why}`, null, null, true),
          );
          req.destroy();
        }, timeoutMs);
        req.on("finish", sent);
        req.on("error", (e: Error & { code?: string }) => {
          if (responded) return; // the response's own handlers report it
          fail(new OpenAIError(`${method} ${url}: ${e.code ?? e.message}`, null, null, true));
        });
        req.on("response", (r) => {
          responded = true;
          sent();
          const chunks: Buffer[] = [];
          const status = r.statusCode ?? 0;
          const brokeOff = (why: string) =>
            fail(new OpenAIError(`${method} ${url}: the response broke off (${why})`, status, null, true));
          r.on("data", (c: Buffer) => chunks.push(c));
          r.on("aborted", () => brokeOff("the connection closed early"));
          r.on("error", (e) => brokeOff(e.message));
          r.on("end", () => {
            if (settled) return;
            if (r.readableAborted || !r.complete) return brokeOff("the connection closed early");
            settled = true;
            clearTimeout(timer);
            const ra = r.headers["retry-after"];
            resolve({ status, text: Buffer.concat(chunks).toString("utf8"), retryAfter: ra });
          });
        });
        req.end(data);
      },
    );
    const { status, text } = res;
    if (status < 200 || status > 299) {
      let message = text.slice(0, 500);
      let param: string | null = null;
      try {
        const j = JSON.parse(text) as {
          error?: { message?: string; param?: string | null } | string;
          message?: string;
        };
        if (typeof j.error === "object" && j.error !== null) {
          message = j.error.message ?? message;
          param = j.error.param ?? null;
        } else if (typeof j.error === "string") message = j.error;
        else if (typeof j.message === "string") message = j.message;
      } catch {
        // not JSON: keep the raw text
      }
      const err = new OpenAIError(
        `${method} ${url}: HTTP ${status}: ${message}`,
        status,
        param,
        RETRY_STATUS.has(status),
      );
      const header = res.retryAfter;
      const ra = header === undefined || header.trim() === "" ? Number.NaN : Number(header);
      if (Number.isFinite(ra) && ra >= 0) (err as OpenAIError & { retryAfterMs?: number }).retryAfterMs = ra * 1000;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new OpenAIError(`${method} ${url}: the response is not JSON: ${text.slice(0, 200)}`, status);
    }
  }
}
