/**
 * A small OpenAI-compatible HTTP client (fetch) for vLLM, SGLang, llama.cpp, `cohort serve` or any
 * endpoint that speaks `/v1/completions` and `/v1/chat/completions`:
 *
 * - retries with exponential backoff and jitter on network errors, timeouts, 408/409/425/429/5xx
 *   (a `Retry-After` header is honoured, up to `maxBackoffMs`); other 4xx fail at once with the server's message;
 * - a timeout per attempt; a limit on requests in flight (the rest wait their turn);
 * - typed responses, including vLLM's `prompt_token_ids` / `token_ids` when the server returns them.
 * @module
 */
import { CohortError } from "../errors.js";
import type { CompletionLogprobs, Usage } from "./protocol.js";

export interface OpenAIClientOptions {
  /** e.g. `http://127.0.0.1:8000/v1`; a URL without a path gets `/v1`. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer …` when set. */
  apiKey?: string;
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

export class OpenAIClient {
  readonly baseUrl: string;
  readonly #o: Required<Omit<OpenAIClientOptions, "apiKey" | "log" | "headers">> &
    Pick<OpenAIClientOptions, "apiKey" | "log" | "headers">;
  #inFlight = 0;
  readonly #waiting: (() => void)[] = [];
  /** Counters: requests sent (attempts), retries, failures (after the last retry). */
  readonly stats = { attempts: 0, retries: 0, failures: 0 };

  constructor(opts: OpenAIClientOptions) {
    this.baseUrl = normalizeBaseUrl(opts.baseUrl);
    this.#o = {
      ...opts,
      timeoutMs: opts.timeoutMs ?? 120_000,
      maxRetries: opts.maxRetries ?? 4,
      backoffMs: opts.backoffMs ?? 250,
      maxBackoffMs: opts.maxBackoffMs ?? 8_000,
      maxConcurrency: opts.maxConcurrency ?? 8,
    };
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

  /** `cohort serve` only: swaps the served weights for the file or directory at `path` (server-side path). */
  reload(path: string): Promise<{ weights_version: number }> {
    return this.request("POST", "/reload", { path });
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

  /** One JSON request with retries, under the concurrency limit. */
  async request<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    await this.#acquire();
    try {
      for (let attempt = 0; ; attempt++) {
        let err: OpenAIError;
        let retryAfterMs: number | null = null;
        try {
          return await this.#once<T>(method, path, body);
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

  async #once<T>(method: string, path: string, body: unknown): Promise<T> {
    this.stats.attempts++;
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: "application/json", ...this.#o.headers };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#o.apiKey) headers.authorization = `Bearer ${this.#o.apiKey}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        signal: AbortSignal.timeout(this.#o.timeoutMs),
      });
    } catch (e) {
      const name = (e as Error).name;
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why =
        name === "TimeoutError" || name === "AbortError"
          ? `no response within ${this.#o.timeoutMs} ms (timeoutMs)`
          : `${cause?.code ?? cause?.message ?? (e as Error).message}`;
      throw new OpenAIError(`${method} ${url}: ${why}`, null, null, true);
    }
    let text: string;
    try {
      text = await res.text();
    } catch (e) {
      throw new OpenAIError(
        `${method} ${url}: the response broke off (${(e as Error).message})`,
        res.status,
        null,
        true,
      );
    }
    if (!res.ok) {
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
        `${method} ${url}: HTTP ${res.status}: ${message}`,
        res.status,
        param,
        RETRY_STATUS.has(res.status),
      );
      const header = res.headers.get("retry-after");
      const ra = header === null || header.trim() === "" ? Number.NaN : Number(header);
      if (Number.isFinite(ra) && ra >= 0) (err as OpenAIError & { retryAfterMs?: number }).retryAfterMs = ra * 1000;
      throw err;
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new OpenAIError(`${method} ${url}: the response is not JSON: ${text.slice(0, 200)}`, res.status);
    }
  }
}
