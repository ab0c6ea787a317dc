/**
 * `cohort serve`: an OpenAI-compatible HTTP server (node:http) over a local `CausalLM`.
 *
 * ```
 * GET  /v1/models             the served model
 * POST /v1/completions        prompt (text, texts, token ids) → completions; logprobs = OpenAI's legacy shape
 * POST /v1/chat/completions   messages → the tokenizer's chat template → completions
 * POST /v1/reload             {"path": …, "sha256"?: …} or the snapshot's bytes (application/octet-stream, SHA-256
 *                             in X-Cohort-Sha256) swaps the weights between batches (see engine.ts); in-flight
 *                             requests finish on the old ones. A LoRA adapter snapshot is folded into the base
 *                             weights (adapters.ts). Paths must lie inside the weights directory (load.ts)
 * GET  /health                queue, batches, weights version, counters (the one route that needs no key)
 * POST /episodes              {"id"?: …} opens an episode to record (recorder.ts); answers {id, base_url}
 * GET  /episodes/<id>         its record: every turn's prompt and completion token ids, log-probs, policy version
 * DELETE /episodes/<id>       closes it and answers its record
 * ANY  /episodes/<id>/v1/…    the /v1 routes, recorded under the episode (or the header X-Cohort-Episode: <id>)
 * ```
 * Chat requests take OpenAI's `tools` and answer with `tool_calls` (tool-calls.ts), streamed as tool-call deltas.
 * With an API key (auth.ts) every other route needs `Authorization: Bearer <key>`, and /v1/reload the admin key
 * when one is set. Streaming is server-sent events ending with `data: [DONE]`. Errors are OpenAI's JSON error
 * body with a 4xx/5xx status: 400 names the parameter, 401 missing or wrong key, 403 a reload path outside the
 * weights directory, 404 unknown model or route, 413 oversized body, 429 full queue, 503 shutting down. `close()` stops accepting connections, lets queued and running requests finish (up to
 * `drainTimeoutMs`, then ends them cleanly) and resolves when every response is closed.
 * @module
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { CohortError } from "../errors.js";
import type { RolloutPrecision } from "../model/llama.js";
import type { FinishReason } from "../model/sampler.js";
import type { ChatMessage } from "../tokenizer/types.js";
import { Auth, checkBind } from "./auth.js";
import { type ChoiceResult, Engine, type Job, type JobSpec, type TokenEvent } from "./engine.js";
import { Handler, StreamText } from "./handler.js";
import {
  ChecksumError,
  confineReloadPath,
  ForbiddenPathError,
  type ReloadWeights,
  readPushedWeights,
  readReloadWeights,
  type ServedModel,
} from "./load.js";
import {
  ApiError,
  type ChatRequest,
  type CompletionRequest,
  chatRequestSchema,
  completionRequestSchema,
  messageText,
  parseRequest,
  promptList,
  stopList,
  type Usage,
} from "./protocol.js";
import { EPISODE_HEADER, type RecordedTurn, Recorder } from "./recorder.js";
import { SHA256_HEADER, SHA256_HEX } from "./snapshot.js";
import {
  checkToolChoice,
  type ParsedCall,
  parseToolCalls,
  renderToolMessages,
  type ToolCallDelta,
  ToolCallStream,
  templateHandlesTools,
} from "./tool-calls.js";

export interface ServeOptions {
  /** Interface to listen on. Default 127.0.0.1 (loopback only). */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8000. */
  port?: number;
  /** Requests decoded together at most (one batch). Default 16. */
  maxConcurrency?: number;
  /** Requests waiting for a batch at most; more get 429. Default 64. */
  maxQueue?: number;
  /** Completions (rows) in one batch at most; also the limit of prompts × n per request. Default 128. */
  maxBatchRows?: number;
  /** The model id clients send and /v1/models lists. Default: the model directory's name. */
  modelName?: string;
  /** Largest request body. Default 1 MiB. */
  maxBodyBytes?: number;
  /** How long `close()` lets running requests finish before ending them. Default 30 s. */
  drainTimeoutMs?: number;
  /** Base seed of requests without one. Default 0. */
  seed?: number;
  /** Stop strings per request at most. Default 16. */
  maxStop?: number;
  /** How long an idle engine waits for as many requests as shared its last batch. Default 20 ms. */
  batchWaitMs?: number;
  /** `int8`: decode with weight-only int8 projections and lm_head (engine.ts `EngineOptions.precision`). */
  decodePrecision?: RolloutPrecision;
  /** Every route but /health needs `Authorization: Bearer <apiKey>` (auth.ts). Default: none (open). */
  apiKey?: string;
  /** The only key that may load weights (/v1/reload) when set; without it the API key guards reloads. */
  adminKey?: string;
  /** Listen beyond loopback without an API key (refused otherwise). Default false. */
  insecureNoAuth?: boolean;
  /**
   * Reloads by path read only inside this directory (symlinks followed). Default: the served model's
   * `weightsDir` (load.ts), else the parent of its model directory.
   */
  weightsDir?: string;
  /** Largest pushed snapshot (a request body of safetensors bytes). Default: `defaultMaxPushBytes(model)`. */
  maxPushBytes?: number;
  /** Where episode requests are recorded (recorder.ts). Default: a recorder of the server's own. */
  recorder?: Recorder;
  /**
   * Answer requests for any model name with the served model (an agent's code names its production model).
   * Default false: another name is a 404.
   */
  acceptAnyModel?: boolean;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  modelName: string;
  engine: Engine;
  /** Where reloads by path may read from (absolute). */
  weightsDir: string;
  /** Largest pushed snapshot, in bytes. */
  maxPushBytes: number;
  /** The episode recorder (open episodes in process with `recorder.open()`). */
  recorder: Recorder;
  /** Graceful shutdown (see the module doc); resolves once the listener and every response are closed. */
  close(opts?: { drainTimeoutMs?: number }): Promise<void>;
}

const reloadSchema = z.object({
  path: z.string().min(1),
  sha256: z.string().regex(SHA256_HEX).optional(),
});

const RELOAD_SHAPE =
  'expected {"path": "<safetensors file or model directory inside the weights directory>", "sha256"?: "<64 hex digits>"}, or the snapshot\'s safetensors bytes as the body with Content-Type: application/octet-stream';

/**
 * The default push limit: the model's weights in fp32 (what the trainer writes), plus 1/16 and 1 MiB for the
 * header and slack.
 */
export function defaultMaxPushBytes(model: { namedParameters(): [string, { size: number }][] }): number {
  const bytes = model.namedParameters().reduce((a, [, t]) => a + t.size * 4, 0);
  return Math.ceil((bytes * 17) / 16) + (1 << 20);
}

/** A choice's text split into content and the calls already parsed from it (the same ids in record and response). */
function parseToolCallsOf(text: string, calls: ParsedCall[]): { content: string | null; calls: ParsedCall[] } {
  if (calls.length === 0) return { content: text, calls };
  let content = text;
  for (const c of calls) content = content.replace(c.raw, "");
  const t = content.trim();
  return { content: t === "" ? null : t, calls };
}

const newId = (prefix: string) => `${prefix}-${randomBytes(12).toString("hex")}`;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, e: ApiError, headers: Record<string, string> = {}): void {
  const extra: Record<string, string> = e.status === 429 ? { "retry-after": "1", ...headers } : headers;
  sendJson(res, e.status, e.body(), extra);
}

/** Reads the body, at most `max` bytes (`limit` names the setting in the 413's message). */
function readBody(req: IncomingMessage, max: number, limit: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? Number.NaN);
    if (declared > max) {
      reject(new ApiError(413, `the request body is ${declared} bytes; the limit is ${max} (${limit})`));
      return;
    }
    // a declared length is filled in place (a pushed snapshot is not held twice); a chunked body is collected
    const whole = Number.isSafeInteger(declared) && declared > 0 ? Buffer.allocUnsafe(declared) : null;
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on("data", (c: Buffer) => {
      if (failed) return;
      if (size + c.length > max || (whole !== null && size + c.length > whole.length)) {
        failed = true;
        reject(new ApiError(413, `the request body exceeds ${max} bytes (${limit})`));
        return;
      }
      if (whole !== null) c.copy(whole, size);
      else chunks.push(c);
      size += c.length;
    });
    req.on("end", () => {
      if (!failed) resolve(whole !== null ? whole.subarray(0, size) : Buffer.concat(chunks));
    });
    req.on("error", reject);
  });
}

/** Reads the body (at most `max` bytes) and parses it as JSON. */
async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const text = (await readBody(req, max, "--max-body-bytes")).toString("utf8");
  if (text.trim() === "") throw new ApiError(400, "the request body is empty; send a JSON object");
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`);
  }
}

interface Endpoint {
  kind: "completion" | "chat";
  req: CompletionRequest | ChatRequest;
  spec: JobSpec;
  /** Per-prompt token ids. */
  prompts: number[][];
  /** Parse tool calls out of the completions (chat with tools, tool_choice not "none"). */
  parseTools: boolean;
  /** The episode the request is recorded under, or null. */
  episode: string | null;
}

export async function startServer(served: ServedModel, opts: ServeOptions = {}): Promise<RunningServer> {
  const auth = new Auth({ apiKey: opts.apiKey, adminKey: opts.adminKey });
  checkBind(opts.host ?? "127.0.0.1", auth.required, opts.insecureNoAuth ?? false);
  const weightsDir = resolve(opts.weightsDir ?? served.weightsDir ?? dirname(resolve(served.modelDir)));
  const maxPush = opts.maxPushBytes ?? defaultMaxPushBytes(served.model);
  const modelName = opts.modelName ?? (served.modelDir.split(/[\\/]/).filter(Boolean).at(-1) as string);
  const tok = served.tokenizer;
  const engine = new Engine(served.model, {
    decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
    padId: tok.padId,
    maxBatchRows: opts.maxBatchRows ?? 128,
    maxConcurrency: opts.maxConcurrency ?? 16,
    maxQueue: opts.maxQueue ?? 64,
    seed: opts.seed ?? 0,
    ...(opts.batchWaitMs !== undefined ? { batchWaitMs: opts.batchWaitMs } : {}),
    ...(opts.decodePrecision !== undefined ? { precision: opts.decodePrecision } : {}),
  });
  const h = new Handler(engine, tok, modelName, opts);
  const recorder = opts.recorder ?? new Recorder();
  const nativeTools = templateHandlesTools((tok as { chatTemplate?: string }).chatTemplate ?? null);
  const maxBody = opts.maxBodyBytes ?? 1 << 20;
  const created = Math.floor(Date.now() / 1000);
  const open = new Set<ServerResponse>();
  let closing = false;

  const completionEndpoint = (body: unknown, episode: string | null): Endpoint => {
    const req = parseRequest(completionRequestSchema, body, h.limits);
    if (!opts.acceptAnyModel) h.checkModel(req.model);
    const prompts = promptList(req.prompt).map((p, i) =>
      typeof p === "string" ? h.encodeText(p, promptList(req.prompt).length > 1 ? `prompt.${i}` : "prompt") : p,
    );
    const spec = h.spec(req, prompts, "max_tokens", req.max_tokens, req.logprobs ?? 0);
    if (episode !== null && spec.prompts.length * req.n > 1)
      throw new ApiError(400, "n: a request under an episode records one completion (one prompt, n = 1)", "n");
    return { kind: "completion", req, spec, prompts, parseTools: false, episode };
  };

  const chatEndpoint = (body: unknown, episode: string | null): Endpoint => {
    const req = parseRequest(chatRequestSchema, body, h.limits);
    if (!opts.acceptAnyModel) h.checkModel(req.model);
    checkToolChoice(req.tool_choice, req.tools);
    const plain: ChatMessage[] = req.messages.map((m) => ({ ...m, content: messageText(m.content) }));
    const messages = renderToolMessages(plain, nativeTools, (id) =>
      episode !== null ? recorder.rawCall(episode, id) : undefined,
    );
    const tools = req.tools && req.tools.length > 0 ? req.tools : null;
    let text: string;
    try {
      text = tok.applyChatTemplate(messages, {
        addGenerationPrompt: req.add_generation_prompt,
        ...(req.chat_template_kwargs || tools
          ? { vars: { ...(tools ? { tools } : {}), ...(req.chat_template_kwargs ?? {}) } }
          : {}),
      });
    } catch (e) {
      throw new ApiError(400, `messages: ${(e as Error).message}`, "messages");
    }
    const prompt = h.encodeText(text, "messages");
    if (req.top_logprobs && !req.logprobs)
      throw new ApiError(400, "top_logprobs: needs logprobs: true", "top_logprobs");
    const maxTokens = req.max_completion_tokens ?? req.max_tokens;
    const param = req.max_completion_tokens ? "max_completion_tokens" : "max_tokens";
    const spec = h.spec(req, [prompt], param, maxTokens, req.logprobs ? (req.top_logprobs ?? 0) : 0);
    if (episode !== null && req.n > 1)
      throw new ApiError(400, "n: a request under an episode records one completion (n = 1)", "n");
    return {
      kind: "chat",
      req,
      spec,
      prompts: [prompt],
      parseTools: tools !== null && req.tool_choice !== "none",
      episode,
    };
  };

  /** Reserves the episode turn of an accepted request (null outside episodes). */
  const beginTurn = (ep: Endpoint): RecordedTurn | null =>
    ep.episode === null
      ? null
      : recorder.begin(ep.episode, {
          endpoint: ep.kind,
          promptIds: ep.prompts[0] as number[],
          temperature: ep.req.temperature,
          policyVersion: engine.weightsVersion,
        });
  const endTurn = (
    ep: Endpoint,
    turn: RecordedTurn | null,
    r: {
      status: "complete" | "cancelled" | "failed";
      tokens: readonly number[];
      logprobs: readonly number[];
      finishReason: FinishReason | null;
      text: string;
      calls?: ParsedCall[];
      policyVersion?: number;
    },
  ): void => {
    if (ep.episode === null || turn === null) return;
    recorder.end(ep.episode, turn, {
      status: r.status,
      tokens: r.tokens,
      logprobs: r.logprobs,
      finishReason: r.finishReason,
      text: r.text,
      toolCalls: (r.calls ?? []).map((c) => ({
        id: c.call.id,
        name: c.call.function.name,
        arguments: c.call.function.arguments,
        raw: c.raw,
      })),
      ...(r.policyVersion !== undefined ? { policyVersion: r.policyVersion } : {}),
    });
  };

  const usageOf = (prompts: number[][], n: number, choices: { tokens: readonly number[] }[]): Usage => {
    const prompt = prompts.reduce((a, p) => a + p.length, 0) * n;
    const completion = choices.reduce((a, c) => a + c.tokens.length, 0);
    return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  };

  const respond = (ep: Endpoint, choices: ChoiceResult[], version: number, calls: (ParsedCall[] | null)[]) => {
    const { req, prompts } = ep;
    const stops = stopList(req.stop);
    const asIds = req.return_tokens_as_token_ids;
    const usage = usageOf(prompts, req.n, choices);
    const base = { created: Math.floor(Date.now() / 1000), model: modelName, system_fingerprint: `cohort-w${version}` };
    if (ep.kind === "completion") {
      const k = (req as CompletionRequest).logprobs;
      return {
        id: newId("cmpl"),
        object: "text_completion",
        ...base,
        choices: choices.map((c) => ({
          index: c.index,
          text: h.finalText(c, stops),
          logprobs:
            k === null || k === undefined ? null : h.completionLogprobs(c.tokens, c.logprobs, c.top, k, asIds, 0),
          finish_reason: c.finishReason,
          stop_reason: null,
          ...(req.return_token_ids
            ? { prompt_token_ids: prompts[Math.floor(c.index / req.n)], token_ids: c.tokens }
            : {}),
        })),
        usage,
      };
    }
    const chat = req as ChatRequest;
    return {
      id: newId("chatcmpl"),
      object: "chat.completion",
      ...base,
      choices: choices.map((c, i) => {
        const text = h.finalText(c, stops);
        const mine = calls[i];
        const parsed = mine && mine.length > 0 ? parseToolCallsOf(text, mine) : null;
        return {
          index: c.index,
          message: parsed
            ? { role: "assistant", content: parsed.content, tool_calls: parsed.calls.map((x) => x.call) }
            : { role: "assistant", content: text },
          logprobs: chat.logprobs ? { content: h.chatLogprobs(c.tokens, c.logprobs, c.top, asIds) } : null,
          finish_reason: parsed && c.finishReason === "stop" ? "tool_calls" : c.finishReason,
          stop_reason: null,
          ...(req.return_token_ids ? { token_ids: c.tokens } : {}),
        };
      }),
      usage,
      ...(req.return_token_ids ? { prompt_token_ids: prompts[0] } : {}),
    };
  };

  /** Runs a generation request, streamed or not. */
  const generate = async (res: ServerResponse, ep: Endpoint): Promise<void> => {
    const { req, spec, prompts } = ep;
    const stops = stopList(req.stop);
    /** Tool calls of each choice's final text (null: no tool parsing). */
    const callsOf = (choices: ChoiceResult[]) =>
      choices.map((c) => (ep.parseTools ? parseToolCalls(h.finalText(c, stops)).calls : null));
    if (!req.stream) {
      const job = engine.submit(spec);
      const turn = beginTurn(ep);
      res.on("close", () => {
        if (!res.writableFinished) job.cancel();
      });
      let r: Awaited<typeof job.result>;
      try {
        r = await job.result;
      } catch (e) {
        endTurn(ep, turn, { status: "failed", tokens: [], logprobs: [], finishReason: null, text: "" });
        throw e;
      }
      if (r.cancelled) {
        endTurn(ep, turn, { status: "cancelled", tokens: [], logprobs: [], finishReason: null, text: "" });
        if (!res.destroyed) sendError(res, new ApiError(503, "the request was cancelled: the server is shutting down"));
        return;
      }
      const calls = callsOf(r.choices);
      const c0 = r.choices[0] as ChoiceResult;
      endTurn(ep, turn, {
        status: "complete",
        tokens: c0.tokens,
        logprobs: c0.logprobs,
        finishReason: c0.finishReason,
        text: h.finalText(c0, stops),
        calls: calls[0] ?? [],
        policyVersion: r.weightsVersion,
      });
      sendJson(res, 200, respond(ep, r.choices, r.weightsVersion, calls));
      return;
    }
    // ---- streaming: one SSE chunk per sampled token and choice -------------------------------------
    const id = newId(ep.kind === "chat" ? "chatcmpl" : "cmpl");
    const rows = prompts.length * req.n;
    const streams = Array.from({ length: rows }, () => new StreamText(h, stops));
    const toolStreams = ep.parseTools ? Array.from({ length: rows }, () => new ToolCallStream()) : null;
    /** Log-probs of each choice's sampled tokens so far (what a cut-short episode turn records). */
    const sampledLps = Array.from({ length: rows }, () => [] as number[]);
    const finishes = new Array<FinishReason | null>(rows).fill(null);
    const asIds = req.return_tokens_as_token_ids;
    const k = ep.kind === "completion" ? (req as CompletionRequest).logprobs : undefined;
    const chatLp = ep.kind === "chat" && (req as ChatRequest).logprobs;
    const firstSent = new Array<boolean>(rows).fill(false);
    const offsets = new Array<number>(rows).fill(0);
    const write = (obj: unknown) => {
      if (!res.destroyed && !res.writableEnded) res.write(`data: ${JSON.stringify(obj)}\n\n`);
    };
    const chunk = (
      index: number,
      delta: string,
      ev: TokenEvent | null,
      finish: FinishReason | "tool_calls" | null,
      toolCalls: ToolCallDelta[] = [],
    ) => {
      const base = {
        id,
        created: Math.floor(Date.now() / 1000),
        model: modelName,
        system_fingerprint: `cohort-w${engine.weightsVersion}`,
      };
      const ids = req.return_token_ids ? { token_ids: ev ? [ev.token] : [] } : {};
      const first = !firstSent[index];
      firstSent[index] = true;
      if (ep.kind === "completion") {
        const lp =
          k === null || k === undefined || ev === null
            ? null
            : h.completionLogprobs([ev.token], [ev.logprob], [ev.top], k, asIds, offsets[index] as number);
        offsets[index] = (offsets[index] as number) + delta.length;
        write({
          ...base,
          object: "text_completion",
          choices: [
            {
              index,
              text: delta,
              logprobs: lp,
              finish_reason: finish,
              ...ids,
              ...(first && req.return_token_ids ? { prompt_token_ids: prompts[Math.floor(index / req.n)] } : {}),
            },
          ],
        });
        return;
      }
      write({
        ...base,
        object: "chat.completion.chunk",
        choices: [
          {
            index,
            delta: {
              ...(first ? { role: "assistant" } : {}),
              ...(delta !== "" || (first && toolCalls.length === 0) ? { content: delta } : {}),
              ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
            },
            logprobs:
              chatLp && ev !== null ? { content: h.chatLogprobs([ev.token], [ev.logprob], [ev.top], asIds) } : null,
            finish_reason: finish,
            ...ids,
          },
        ],
        ...(first && index === 0 && req.return_token_ids ? { prompt_token_ids: prompts[0] } : {}),
      });
    };
    spec.onToken = (index, ev) => {
      (sampledLps[index] as number[]).push(ev.logprob);
      const text = (streams[index] as StreamText).push(ev.token);
      if (toolStreams === null) return chunk(index, text, ev, null);
      const t = (toolStreams[index] as ToolCallStream).push(text);
      chunk(index, t.content, ev, null, t.calls);
    };
    spec.onFinish = (index, finish) => {
      finishes[index] = finish;
      const text = (streams[index] as StreamText).flush(finish, stops);
      if (toolStreams === null) return chunk(index, text, null, finish);
      const ts = toolStreams[index] as ToolCallStream;
      const t = ts.push(text);
      const rest = t.content + ts.flush();
      const why = ts.calls.length > 0 && finish === "stop" ? "tool_calls" : finish;
      if (t.calls.length > 0 && rest !== "") {
        chunk(index, rest, null, null);
        chunk(index, "", null, why, t.calls);
      } else chunk(index, rest, null, why, t.calls);
    };
    const job: Job = engine.submit(spec); // may throw 429/503 before any byte is sent
    const turn = beginTurn(ep);
    /** The episode turn of a streamed request, from what was sampled (all of it, or up to a cut). */
    const endStreamTurn = (status: "complete" | "cancelled" | "failed") => {
      const st = streams[0] as StreamText;
      const calls = toolStreams ? (toolStreams[0] as ToolCallStream).calls : [];
      endTurn(ep, turn, {
        status,
        tokens: st.tokens,
        logprobs: sampledLps[0] as number[],
        finishReason: finishes[0] ?? null,
        text: h.text(st.tokens),
        calls: status === "complete" ? calls : [],
      });
    };
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      connection: closing ? "close" : "keep-alive",
    });
    res.flushHeaders();
    res.on("close", () => {
      if (!res.writableFinished) job.cancel();
    });
    let r: Awaited<typeof job.result>;
    try {
      r = await job.result;
    } catch (e) {
      endStreamTurn("failed");
      write({ error: new ApiError(500, (e as Error).message, null, "server_error").body().error });
      if (!res.writableEnded) res.end("data: [DONE]\n\n");
      return;
    }
    endStreamTurn(r.cancelled ? "cancelled" : "complete");
    if (res.destroyed) return;
    if (r.cancelled) {
      write({ error: new ApiError(503, "the server is shutting down; the completion was cut short").body().error });
    } else if (req.stream_options?.include_usage) {
      write({
        id,
        object: ep.kind === "chat" ? "chat.completion.chunk" : "text_completion",
        created: Math.floor(Date.now() / 1000),
        model: modelName,
        choices: [],
        usage: usageOf(prompts, req.n, r.choices),
      });
    }
    res.end("data: [DONE]\n\n");
  };

  /** `POST /v1/reload` by path (JSON) or by push (the snapshot's bytes); see the module doc. */
  const reload = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const type = (req.headers["content-type"] ?? "").split(";")[0]?.trim().toLowerCase();
    if (type === "application/octet-stream") {
      const header = req.headers[SHA256_HEADER];
      if (header !== undefined && (typeof header !== "string" || !SHA256_HEX.test(header)))
        throw new ApiError(400, "X-Cohort-Sha256: expected the snapshot's SHA-256 as 64 hex digits", "X-Cohort-Sha256");
      const bytes = await readBody(req, maxPush, `--max-push-mb ${(maxPush / (1 << 20)).toFixed(1)}`);
      if (bytes.length === 0)
        throw new ApiError(400, "the pushed snapshot is empty; send the safetensors bytes as the body");
      let w: ReloadWeights;
      try {
        w = readPushedWeights(bytes, { sha256: header });
      } catch (e) {
        if (e instanceof ChecksumError) throw new ApiError(400, `X-Cohort-Sha256: ${e.message}`, "X-Cohort-Sha256");
        throw e;
      }
      const version = await engine.reload(w.tensors, w.adapterScale, "the pushed snapshot");
      sendJson(res, 200, { weights_version: version, bytes: bytes.length, sha256: w.sha256 });
      return;
    }
    const r = reloadSchema.safeParse(await readJson(req, maxBody));
    if (!r.success) {
      const param = r.error.issues[0]?.path[0] === "sha256" ? "sha256" : "path";
      throw new ApiError(400, `${param}: ${RELOAD_SHAPE}`, param);
    }
    let real: string;
    try {
      real = confineReloadPath(r.data.path, weightsDir);
    } catch (e) {
      if (e instanceof ForbiddenPathError) throw new ApiError(403, e.message, "path");
      throw e;
    }
    let w: ReloadWeights;
    try {
      w = readReloadWeights(real, { sha256: r.data.sha256 });
    } catch (e) {
      if (e instanceof ChecksumError) throw new ApiError(400, `sha256: ${e.message}`, "sha256");
      throw new ApiError(400, `path: ${(e as Error).message}`, "path");
    }
    const version = await engine.reload(w.tensors, w.adapterScale, r.data.path);
    sendJson(res, 200, { weights_version: version, path: r.data.path, sha256: w.sha256 });
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost");
    let path = url.pathname.replace(/\/+$/, "") || "/";
    const method = req.method ?? "GET";
    // an episode's routes: /episodes/<id>/v1/... is /v1/... recorded under <id>; the header does the same
    let episode: string | null = null;
    const m = /^\/episodes\/([^/]+)(\/v1\/.*)?$/.exec(path);
    if (m !== null) {
      episode = decodeURIComponent(m[1] as string);
      if (m[2] !== undefined) path = m[2];
    } else {
      const hdr = req.headers[EPISODE_HEADER];
      if (typeof hdr === "string" && hdr !== "") episode = hdr;
    }
    // keys first, before any body is read or any route is told apart
    if (path === "/v1/reload") auth.checkAdmin(req);
    else if (path !== "/health") auth.checkUse(req);
    const allow = (m: string) => {
      if (method !== m) throw new ApiError(405, `${path} takes ${m} requests, not ${method}`);
    };
    if (closing && method === "POST")
      throw new ApiError(503, "the server is shutting down; send the request elsewhere or retry later");
    if (path === "/episodes") {
      allow("POST");
      const body = (await readBody(req, maxBody, "--max-body-bytes")).toString("utf8").trim();
      let id: unknown;
      if (body !== "") {
        try {
          id = (JSON.parse(body) as { id?: unknown })?.id;
        } catch (e) {
          throw new ApiError(400, `the request body is not valid JSON: ${(e as Error).message}`);
        }
        if (id !== undefined && typeof id !== "string") throw new ApiError(400, "id: expected a string", "id");
      }
      const eid = recorder.open(id as string | undefined);
      const base = `http://${req.headers.host ?? "localhost"}`;
      sendJson(res, 201, { id: eid, base_url: `${base}/episodes/${eid}/v1` });
      return;
    }
    if (episode !== null && m !== null && m[2] === undefined) {
      if (method === "GET") sendJson(res, 200, recorder.get(episode));
      else if (method === "DELETE") sendJson(res, 200, recorder.close(episode));
      else throw new ApiError(405, `${path} takes GET or DELETE requests, not ${method}`);
      return;
    }
    if (episode !== null) {
      if (path !== "/v1/chat/completions" && path !== "/v1/completions" && path !== "/v1/models")
        throw new ApiError(
          404,
          `no route ${method} ${path} under an episode; episodes record /v1/chat/completions and /v1/completions`,
        );
      recorder.check(episode);
    }
    switch (path) {
      case "/v1/models":
        allow("GET");
        sendJson(res, 200, {
          object: "list",
          data: [
            {
              id: modelName,
              object: "model",
              created,
              owned_by: "cohort",
              root: served.source,
              max_model_len: h.maxPositions,
            },
          ],
        });
        return;
      case "/health":
        allow("GET");
        sendJson(res, 200, { status: closing ? "draining" : "ok", ...engine.stats() });
        return;
      case "/v1/completions":
        allow("POST");
        await generate(res, completionEndpoint(await readJson(req, maxBody), episode));
        return;
      case "/v1/chat/completions":
        allow("POST");
        await generate(res, chatEndpoint(await readJson(req, maxBody), episode));
        return;
      case "/v1/reload":
        allow("POST");
        await reload(req, res);
        return;
      default:
        throw new ApiError(404, `no route ${method} ${path}; see /v1/models, /v1/completions, /v1/chat/completions`);
    }
  };

  const server: Server = createServer((req, res) => {
    open.add(res);
    res.on("close", () => open.delete(res));
    route(req, res).catch((e: unknown) => {
      const err =
        e instanceof ApiError
          ? e
          : e instanceof CohortError
            ? new ApiError(400, e.message)
            : new ApiError(500, `internal error: ${(e as Error).message ?? String(e)}`, null, "server_error");
      if (res.headersSent) {
        if (!res.writableEnded) res.end();
        return;
      }
      const headers: Record<string, string> = err.status === 413 || closing ? { connection: "close" } : {};
      if (err.status === 401) {
        headers["www-authenticate"] = "Bearer";
        headers.connection = "close"; // its body, if any, is not read
      }
      sendError(res, err, headers);
      if (err.status === 413) req.destroy();
    });
  });
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException) => {
      const where = `${opts.host ?? "127.0.0.1"}:${opts.port ?? 8000}`;
      const why =
        e.code === "EADDRINUSE"
          ? `port ${opts.port ?? 8000} is already in use on ${opts.host ?? "127.0.0.1"}; stop the process that holds it or pick another --port (0 = any free port)`
          : e.code === "EACCES"
            ? `no permission to listen on ${where} (ports below 1024 need privileges); pick another --port`
            : e.code === "EADDRNOTAVAIL"
              ? `${opts.host} is not an address of this machine; use --host 127.0.0.1, 0.0.0.0 or one of its addresses`
              : `cannot listen on ${where}: ${e.message}`;
      reject(new CohortError(why));
    };
    server.once("error", fail);
    server.listen(opts.port ?? 8000, opts.host ?? "127.0.0.1", () => {
      server.off("error", fail);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = opts.host ?? "127.0.0.1";
  const hostInUrl = host.includes(":") ? `[${host}]` : host;
  let closed: Promise<void> | null = null;

  return {
    url: `http://${hostInUrl}:${addr.port}`,
    host,
    port: addr.port,
    modelName,
    engine,
    weightsDir,
    maxPushBytes: maxPush,
    recorder,
    close(o = {}) {
      if (closed) return closed;
      closing = true;
      engine.close();
      const listenerClosed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      closed = (async () => {
        const timeoutMs = o.drainTimeoutMs ?? opts.drainTimeoutMs ?? 30_000;
        let timer: NodeJS.Timeout | undefined;
        const drained = await Promise.race([
          engine.idle().then(() => true),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(false), timeoutMs);
          }),
        ]);
        clearTimeout(timer);
        if (!drained) {
          engine.abortAll();
          await engine.idle();
        }
        // let finished responses flush, then drop whatever connection is left (idle keep-alives)
        const deadline = Date.now() + 2_000;
        while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        server.closeAllConnections();
        await listenerClosed;
      })();
      return closed;
    },
  };
}
