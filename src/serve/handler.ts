/**
 * The request side and the response side of `cohort serve` for one served model: turning a validated request
 * into an engine job (limits, stop ids, sampling settings) and finished or streamed choices into OpenAI's
 * response shapes (text cut before stop strings, legacy and chat log-prob objects, vLLM token ids).
 * @module
 */
import type { FinishReason } from "../model/sampler.js";
import type { Tokenizer } from "../tokenizer/types.js";
import type { Engine, JobSpec, TopLogprob } from "./engine.js";
import {
  ApiError,
  type ChatRequest,
  type ChatTokenLogprob,
  type CompletionLogprobs,
  type CompletionRequest,
  type RequestLimits,
  stopList,
} from "./protocol.js";

export interface HandlerOptions {
  /** Stop strings per request at most. Default 16. */
  maxStop?: number;
}

/** The earliest occurrence of any stop string in `text`, or -1. */
export function stopIndex(text: string, stops: readonly string[]): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/** Builds job specs and response bodies for one served model. */
export class Handler {
  readonly maxPositions: number;
  readonly limits: RequestLimits;

  constructor(
    readonly engine: Engine,
    readonly tok: Tokenizer,
    readonly modelName: string,
    opts: HandlerOptions,
  ) {
    this.maxPositions = engine.model.config.maxPositionEmbeddings;
    this.limits = { maxRows: engine.maxBatchRows, maxStop: opts.maxStop ?? 16 };
  }

  text(tokens: readonly number[]): string {
    return this.tok.decode(tokens, { skipSpecialTokens: true });
  }

  tokenString(t: number, asIds: boolean): string {
    return asIds ? `token_id:${t}` : this.tok.decode([t]);
  }

  checkModel(model: string | null | undefined): void {
    if (model && model !== this.modelName)
      throw new ApiError(
        404,
        `model "${model}" is not served here; this server serves "${this.modelName}" (GET /v1/models)`,
        "model",
      );
  }

  encodeText(text: string, param: string): number[] {
    try {
      const ids = this.tok.encode(text);
      // BOS first when the tokenizer has one, unless the text already begins with it (a chat template that
      // writes its own bos_token): the same rule as the trainer's prompts (encodePrompt, env templates)
      return this.tok.bosId !== null && ids[0] !== this.tok.bosId ? [this.tok.bosId, ...ids] : ids;
    } catch (e) {
      throw new ApiError(400, `${param}: ${(e as Error).message}`, param);
    }
  }

  /** The shared part of a job spec: limits, stop ids, sampling settings. */
  spec(
    req: CompletionRequest | ChatRequest,
    prompts: number[][],
    maxTokensParam: string,
    maxTokens: number | null | undefined,
    topLogprobs: number,
  ): JobSpec {
    const V = this.engine.model.config.vocabSize;
    for (const p of prompts) {
      if (p.length === 0) throw new ApiError(400, "prompt: a prompt needs at least one token", "prompt");
      const bad = p.find((t) => t >= V);
      if (bad !== undefined)
        throw new ApiError(400, `prompt: token id ${bad} is outside the vocabulary [0, ${V})`, "prompt");
    }
    const rows = prompts.length * req.n;
    if (rows > this.limits.maxRows) {
      throw new ApiError(
        400,
        `n: ${prompts.length} prompt(s) × n ${req.n} = ${rows} completions exceeds this server's limit of ${this.limits.maxRows} per request (--max-batch)`,
        "n",
      );
    }
    const longest = Math.max(...prompts.map((p) => p.length));
    const room = this.maxPositions - longest;
    if (room < 1)
      throw new ApiError(
        400,
        `prompt: ${longest} tokens leave no room in the context of ${this.maxPositions}`,
        "prompt",
      );
    const mt = maxTokens ?? room;
    if (mt > room) {
      throw new ApiError(
        400,
        `${maxTokensParam}: ${mt} tokens plus the prompt (${longest} tokens) exceed the context length ${this.maxPositions}; use at most ${room}`,
        maxTokensParam,
      );
    }
    const stopIds = req.ignore_eos ? [] : [...new Set([...this.engine.eosIds, this.tok.eosId])];
    for (const t of req.stop_token_ids ?? []) {
      if (t >= V) throw new ApiError(400, `stop_token_ids: ${t} is outside the vocabulary [0, ${V})`, "stop_token_ids");
      stopIds.push(t);
    }
    return {
      prompts,
      n: req.n,
      maxTokens: mt,
      temperature: req.temperature,
      topK: req.top_k > 0 ? req.top_k : 0,
      topP: req.top_p,
      minP: req.min_p,
      stopTokenIds: stopIds,
      stop: stopList(req.stop),
      ...(req.seed !== undefined && req.seed !== null ? { seed: req.seed } : {}),
      topLogprobs,
    };
  }

  /** Final text of a choice: special tokens dropped, cut before the first stop string. */
  finalText(c: { tokens: readonly number[]; finishReason: FinishReason }, stops: readonly string[]): string {
    const t = this.text(c.tokens);
    const i = c.finishReason === "stop" ? stopIndex(t, stops) : -1;
    return i >= 0 ? t.slice(0, i) : t;
  }

  completionLogprobs(
    tokens: readonly number[],
    lps: readonly number[],
    top: readonly (TopLogprob[] | null)[] | null,
    k: number,
    asIds: boolean,
    offset0: number,
  ): CompletionLogprobs {
    const strs = tokens.map((t) => this.tokenString(t, asIds));
    const offsets: number[] = [];
    let off = offset0;
    for (const s of strs) {
      offsets.push(off);
      off += s.length;
    }
    return {
      tokens: strs,
      token_logprobs: [...lps],
      top_logprobs:
        k > 0 && top
          ? top.map((alts) =>
              alts === null ? null : Object.fromEntries(alts.map((a) => [this.tokenString(a.token, asIds), a.logprob])),
            )
          : null,
      text_offset: offsets,
    };
  }

  chatLogprobs(
    tokens: readonly number[],
    lps: readonly number[],
    top: readonly (TopLogprob[] | null)[] | null,
    asIds: boolean,
  ): ChatTokenLogprob[] {
    const entry = (t: number) => {
      const s = this.tokenString(t, asIds);
      return { token: s, bytes: [...Buffer.from(s, "utf8")] };
    };
    return tokens.map((t, i) => ({
      ...entry(t),
      logprob: lps[i] as number,
      top_logprobs: (top?.[i] ?? []).map((a) => ({ ...entry(a.token), logprob: a.logprob })),
    }));
  }
}

/** Per-choice state of a stream: text emitted so far (held back near stop strings and partial characters). */
export class StreamText {
  tokens: number[] = [];
  emitted = 0;
  readonly holdback: number;
  constructor(
    readonly h: Handler,
    readonly stops: readonly string[],
  ) {
    this.holdback = stops.length > 0 ? Math.max(...stops.map((x) => x.length)) - 1 : 0;
  }

  /** The text delta after `t` (never a character of a stop string: the completion ends before it). */
  push(t: number): string {
    this.tokens.push(t);
    let text = this.h.text(this.tokens);
    while (text.endsWith("\uFFFD")) text = text.slice(0, -1);
    const stop = stopIndex(text, this.stops);
    if (stop >= 0) text = text.slice(0, stop);
    const upTo = Math.max(this.emitted, text.length - (stop >= 0 ? 0 : this.holdback));
    const delta = text.slice(this.emitted, upTo);
    this.emitted = upTo;
    return delta;
  }

  /** The rest of the text once the choice ended. */
  flush(finish: FinishReason, stops: readonly string[]): string {
    const text = this.h.finalText({ tokens: this.tokens, finishReason: finish }, stops);
    const delta = text.slice(this.emitted);
    this.emitted = Math.max(this.emitted, text.length);
    return delta;
  }
}
