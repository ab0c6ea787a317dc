/**
 * An LLM judge as a preference: `P(a ≻ b)` read off a chat model behind any OpenAI-compatible endpoint
 * (`cohort serve`, vLLM, SGLang, a hosted API).
 *
 * The judge is asked once per order with a prompt that shows the question and the two answers labelled A and
 * B and asks for one letter. With the first generated token's top log-probs available (`logprobs`), the
 * preference of that order is the probability mass on "A" against "B",
 *
 *   p(A first) = π(A) / (π(A) + π(B))          (tokens compared after trimming spaces; no A/B in the top: failure)
 *
 * and without log-probs (`mode: "text"`) it is 1, 0 or ½ from the letter the reply starts with. Position bias
 * is removed by asking both orders and averaging, `P(a ≻ b) = ½·(p(a, b) + 1 − p(b, a))` (`bothOrders`,
 * default on), so that P(b ≻ a) = 1 − P(a ≻ b) holds exactly. Every failure (HTTP error, no letter, no A/B
 * among the top log-probs) throws: the run records it and scores the pair as a tie.
 * @module
 */
import { z } from "zod";
import { CohortError, ConfigError } from "../errors.js";
import { type ChatResponse, OpenAIClient } from "../serve/client.js";
import type { PreferenceFn, PreferenceSample } from "./preference.js";

export const judgeOptionsSchema = z.strictObject({
  /** The endpoint, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: z.string().url(),
  model: z.string().min(1),
  /** Name of the environment variable that holds the API key (the key itself never sits in a config). */
  apiKeyEnv: z.string().min(1).optional(),
  /** `logprobs`: π(A)/(π(A)+π(B)) of the first token; `text`: 1, 0 or ½ from the reply's first letter. */
  mode: z.enum(["logprobs", "text"]).default("logprobs"),
  /** Ask both orders and average (removes position bias; P(b ≻ a) = 1 − P(a ≻ b) exactly). */
  bothOrders: z.boolean().default(true),
  /** The judge's user message; {prompt}, {a} and {b} are replaced. */
  template: z
    .string()
    .default(
      "Question:\n{prompt}\n\nAnswer A:\n{a}\n\nAnswer B:\n{b}\n\nWhich answer is better? Reply with one letter, A or B.",
    ),
  system: z.string().optional(),
  topLogprobs: z.number().int().min(2).max(20).default(10),
  timeoutMs: z.number().int().positive().default(60_000),
});
export type JudgeOptions = z.input<typeof judgeOptionsSchema>;

/** The judge's message for one order (`{prompt}`, `{a}`, `{b}` replaced once each, left to right). */
export function judgeMessage(template: string, prompt: string, a: string, b: string): string {
  return template.replace(/\{(prompt|a|b)\}/g, (_, k: string) => (k === "prompt" ? prompt : k === "a" ? a : b));
}

/** p(A) of one reply: the A-vs-B mass of the first token's top log-probs, or the reply's first letter. */
export function letterProbability(res: ChatResponse, mode: "logprobs" | "text"): number {
  const choice = res.choices[0];
  if (choice === undefined) throw new CohortError("judge: the reply has no choices");
  if (mode === "text") {
    const m = /^\s*\**\s*([AB])\b/i.exec(choice.message.content ?? "");
    if (m === null)
      throw new CohortError(`judge: the reply does not start with A or B: ${JSON.stringify(choice.message.content)}`);
    return (m[1] as string).toUpperCase() === "A" ? 1 : 0;
  }
  const first = (choice.logprobs?.content ?? [])[0] as
    | { token: string; logprob: number; top_logprobs?: { token: string; logprob: number }[] }
    | undefined;
  if (first === undefined)
    throw new CohortError(
      "judge: the reply carries no log-probs; the endpoint must support logprobs (or use mode: text)",
    );
  const top = first.top_logprobs ?? [{ token: first.token, logprob: first.logprob }];
  let pa = 0;
  let pb = 0;
  for (const t of top) {
    const k = t.token.trim().toUpperCase();
    if (k === "A") pa += Math.exp(t.logprob);
    else if (k === "B") pb += Math.exp(t.logprob);
  }
  if (pa + pb === 0)
    throw new CohortError(
      `judge: neither A nor B among the first token's top log-probs (${top.map((t) => JSON.stringify(t.token)).join(", ")})`,
    );
  return pa / (pa + pb);
}

/** A preference backed by an LLM judge (options validated; bad ones are a ConfigError at `path`). */
export function llmJudgePreference(options: JudgeOptions, path = "preference.judge"): PreferenceFn {
  const r = judgeOptionsSchema.safeParse(options);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new ConfigError(
      `${i?.message ?? "invalid"} (judge takes ${Object.keys(judgeOptionsSchema.shape).join(", ")})`,
      `${path}${i?.path.length ? `.${i.path.join(".")}` : ""}`,
    );
  }
  const o = r.data;
  let apiKey: string | undefined;
  if (o.apiKeyEnv !== undefined) {
    apiKey = process.env[o.apiKeyEnv];
    if (!apiKey)
      throw new ConfigError(
        `environment variable ${o.apiKeyEnv} is not set (it should hold the judge's API key)`,
        `${path}.apiKeyEnv`,
      );
  }
  const client = new OpenAIClient({ baseUrl: o.baseUrl, timeoutMs: o.timeoutMs, ...(apiKey ? { apiKey } : {}) });
  const ask = async (s: PreferenceSample, a: string, b: string): Promise<number> => {
    const messages = [
      ...(o.system !== undefined ? [{ role: "system", content: o.system }] : []),
      { role: "user", content: judgeMessage(o.template, s.prompt, a, b) },
    ];
    const res = await client.chat({
      model: o.model,
      messages,
      max_tokens: 1,
      temperature: 0,
      ...(o.mode === "logprobs" ? { logprobs: true, top_logprobs: o.topLogprobs } : {}),
    });
    return letterProbability(res, o.mode);
  };
  return async (s) => {
    const ab = await ask(s, s.a, s.b);
    if (!o.bothOrders) return ab;
    const ba = await ask(s, s.b, s.a);
    return 0.5 * (ab + 1 - ba);
  };
}
