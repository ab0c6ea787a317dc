/**
 * The OpenAI-compatible wire format of `cohort serve`: request schemas (zod), the error body and the
 * response shapes of `/v1/completions` and `/v1/chat/completions`.
 *
 * Besides OpenAI's fields, requests accept vLLM's extensions that RL rollouts need: `top_k`, `min_p`,
 * `stop_token_ids`, `ignore_eos`, `return_token_ids` (adds `prompt_token_ids` and `token_ids` to the
 * response, as vLLM does) and `return_tokens_as_token_ids` (log-prob tokens spelled `token_id:<id>`).
 * Parameters Cohort cannot honour (penalties, logit_bias, echo, suffix, best_of > n) are refused with a
 * 400 that names them instead of being silently ignored; unknown keys are ignored, as vLLM does.
 * @module
 */
import { z } from "zod";
import { describeValue, valueAt } from "../config-issue.js";
import { CohortError } from "../errors.js";

/**
 * An error with an HTTP status, sent as OpenAI's `{"error": {message, type, param, code}}`; `code` is the status
 * unless a named one is given (OpenAI's `"invalid_api_key"`).
 */
export class ApiError extends CohortError {
  override name = "ApiError";
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type: string = status === 429 || status === 503 ? "server_overloaded" : "invalid_request_error",
    readonly errorCode: number | string = status,
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: number | string } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.errorCode } };
  }
}

/** Hard limits of one request (a request beyond them gets a 400 naming the parameter). */
export interface RequestLimits {
  /** Completions per request (all prompts × n). */
  maxRows: number;
  /** Stop strings per request. */
  maxStop: number;
}

const int = z.number().int();
const tokenIds = z.array(int.min(0)).min(1);
const stopField = z.union([z.string().min(1), z.array(z.string().min(1))]).nullish();

/** Fields shared by both endpoints (sampling, streaming, vLLM extensions, refused OpenAI extras). */
const common = {
  model: z.string().nullish(),
  n: int.min(1).default(1),
  max_tokens: int.min(1).nullish(),
  temperature: z.number().min(0).max(100).default(1),
  top_p: z.number().gt(0).max(1).default(1),
  top_k: int.min(-1).default(-1),
  min_p: z.number().min(0).max(1).default(0),
  stop: stopField,
  stop_token_ids: z.array(int.min(0)).nullish(),
  seed: int.min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
  stream: z.boolean().default(false),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  ignore_eos: z.boolean().default(false),
  return_token_ids: z.boolean().default(false),
  return_tokens_as_token_ids: z.boolean().default(false),
  frequency_penalty: z.number().nullish(),
  presence_penalty: z.number().nullish(),
  repetition_penalty: z.number().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  best_of: int.nullish(),
  user: z.string().nullish(),
};

export const completionRequestSchema = z.object({
  ...common,
  /** Text, several texts, token ids, or several token-id lists (vLLM). */
  prompt: z.union([z.string(), z.array(z.string()).min(1), tokenIds, z.array(tokenIds).min(1)]),
  /** Top alternatives per sampled token (0–5); null = no log-probs. */
  logprobs: int.min(0).max(5).nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
});

/** One entry of a chat request's `tools` (OpenAI's function format; tool-calls.ts). */
export const toolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().min(1),
    description: z.string().nullish(),
    parameters: z.record(z.string(), z.unknown()).nullish(),
  }),
});

/** `tool_choice` (only "auto" and "none" are honoured: tool-calls.ts `checkToolChoice`). */
export const toolChoiceSchema = z.union([
  z.enum(["auto", "none", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.looseObject({ name: z.string() }) }),
]);

const textPart = z.object({ type: z.literal("text"), text: z.string() });
const message = z.looseObject({
  role: z.string().min(1),
  content: z.union([z.string(), z.array(textPart), z.null()]).optional(),
});

export const chatRequestSchema = z.object({
  ...common,
  messages: z.array(message).min(1),
  max_completion_tokens: int.min(1).nullish(),
  logprobs: z.boolean().default(false),
  top_logprobs: int.min(0).max(20).nullish(),
  /** Extra chat template variables (vLLM), e.g. `{"enable_thinking": false}`. */
  chat_template_kwargs: z.record(z.string(), z.unknown()).nullish(),
  add_generation_prompt: z.boolean().default(true),
  /** Functions the model may call (tool-calls.ts); calls come back as `tool_calls`. */
  tools: z.array(toolSchema).nullish(),
  tool_choice: toolChoiceSchema.nullish(),
  parallel_tool_calls: z.boolean().nullish(),
});

export type CompletionRequest = z.output<typeof completionRequestSchema>;
export type ChatRequest = z.output<typeof chatRequestSchema>;

/** Parses a request body with `schema`; the first problem becomes a 400 naming the parameter and the value. */
export function parseRequest<S extends z.ZodType>(schema: S, body: unknown, limits: RequestLimits): z.output<S> {
  if (body === null || typeof body !== "object" || Array.isArray(body))
    throw new ApiError(400, "the request body must be a JSON object");
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    const param = issue.path.map(String).join(".") || null;
    const got = valueAt(body, issue.path);
    let msg = issue.message;
    if (issue.code === "invalid_union") msg = "has an unsupported type or shape";
    const text = `${param ?? "body"}: ${msg}${got !== undefined ? ` (got ${describeValue(got)})` : ""}`;
    throw new ApiError(400, text, param);
  }
  const req = r.data as CompletionRequest | ChatRequest;
  refuseUnsupported(req);
  const stops = stopList(req.stop);
  if (stops.length > limits.maxStop)
    throw new ApiError(400, `stop: at most ${limits.maxStop} stop strings (got ${stops.length})`, "stop");
  return r.data;
}

function refuseUnsupported(req: CompletionRequest | ChatRequest): void {
  const refuse = (param: string, why: string) => {
    throw new ApiError(400, `${param}: ${why}`, param);
  };
  for (const p of ["frequency_penalty", "presence_penalty"] as const) {
    const v = req[p];
    if (v !== undefined && v !== null && v !== 0)
      refuse(p, `is not supported (got ${v}); sampled log-probs must match the policy's, so leave it at 0`);
  }
  if (req.repetition_penalty !== undefined && req.repetition_penalty !== null && req.repetition_penalty !== 1)
    refuse("repetition_penalty", `is not supported (got ${req.repetition_penalty}); leave it at 1`);
  if (req.logit_bias && Object.keys(req.logit_bias).length > 0)
    refuse("logit_bias", "is not supported; send an empty object or leave it out");
  if (req.best_of !== undefined && req.best_of !== null && req.best_of !== req.n)
    refuse("best_of", `is not supported (got ${req.best_of}); use n for several completions`);
  if ("echo" in req && req.echo === true) refuse("echo", "is not supported; the response never repeats the prompt");
  if ("suffix" in req && req.suffix) refuse("suffix", "is not supported (no fill-in-the-middle)");
}

/** `stop` as a list. */
export function stopList(stop: string | string[] | null | undefined): string[] {
  if (stop === undefined || stop === null) return [];
  return typeof stop === "string" ? [stop] : stop;
}

/** The completion prompts of a `/v1/completions` request: token-id lists or texts. */
export function promptList(prompt: CompletionRequest["prompt"]): (string | number[])[] {
  if (typeof prompt === "string") return [prompt];
  if (prompt.length > 0 && typeof prompt[0] === "number") return [prompt as number[]];
  return prompt as (string | number[])[];
}

/** The text of a chat message's content (text parts joined). */
export function messageText(content: string | { type: "text"; text: string }[] | null | undefined): string {
  if (content === undefined || content === null) return "";
  return typeof content === "string" ? content : content.map((p) => p.text).join("");
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** OpenAI's legacy completions `logprobs` object (vLLM's shape). */
export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: (Record<string, number> | null)[] | null;
  text_offset: number[];
}

/** One entry of a chat choice's `logprobs.content`. */
export interface ChatTokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: { token: string; logprob: number; bytes: number[] }[];
}
