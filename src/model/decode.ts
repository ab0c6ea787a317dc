/**
 * The decoding loop: batched incremental decoding with a KV cache, shared by `LocalSampler` (in-process
 * sampling) and the serving engine (src/serve/engine.ts), so a request decodes to the same tokens and
 * log-probs through either.
 *
 * ```
 *   prompts (left-padded to P) ─ prefill ─▶ logits [B, V]
 *   each step:  drop cancelled rows → sample one token per row (each row's own seeded generator)
 *               → report it (onToken) → stop checks (stop id, stop string, maxTokens; onFinish)
 *               → every row done? end : compact the cache → one decoding step → logits [rows, V] → yield
 * ```
 *
 * Log-probs: each sampled token gets log softmax(logits / T)[token] over the FULL vocabulary, i.e. before
 * top-k / top-p / min-p truncation: what training recomputes (`CausalLM.logprobs` at the same temperature),
 * so importance ratios compare like with like. Greedy (T = 0) reports the log-prob at T = 1.
 *
 * Rows finish independently; a finished row's cache row is dropped once finished rows are a quarter of the
 * cache (long tails of a few unfinished rows then decode at small batch cost). A row's draws depend only on
 * its seed, prompt and the weights, not on the other rows of its batch.
 *
 * Legend: B rows, P longest prompt, V vocab.
 * @module
 */
import { keep, noGrad, Generator as SeededGenerator, Tensor, tensor, tidy } from "../tensor/index.js";
import { native } from "../tensor/native.js";
import type { CausalLM, DecodePlan, KVCache } from "./llama.js";

export type FinishReason = "stop" | "length";

/** One sequence to continue. */
export interface DecodeRow {
  /** Token ids (non-empty). */
  prompt: readonly number[];
  /** Seed of the row's own generator. */
  seed: number;
  /** Completion tokens at most (finish reason "length"). */
  maxTokens: number;
  /** Token ids that end the completion (included in it). */
  stopIds: ReadonlySet<number>;
  /** Strings that end the completion once its decoded text contains one (needs `DecodeOptions.decode`). */
  stop?: readonly string[];
  /** Most likely alternatives to report with each token (0 or absent: none). */
  topLogprobs?: number;
}

export interface TopLogprob {
  token: number;
  logprob: number;
}

/** One sampled token, as streamed. */
export interface TokenEvent {
  token: number;
  /** log softmax(logits / T)[token] over the full vocabulary (T = 1 when greedy). */
  logprob: number;
  /** The row's `topLogprobs` most likely tokens under the same distribution, or null when it asked for none. */
  top: TopLogprob[] | null;
}

export interface DecodeOptions {
  /** Softmax temperature; 0 = greedy. */
  temperature: number;
  /** Keep the k most likely tokens; 0 disables. */
  topK: number;
  /** Keep the smallest set of most likely tokens with mass ≥ p; 1 disables. */
  topP: number;
  /** Drop tokens with probability < minP · (max probability); 0 disables. */
  minP: number;
  /** Id written into left padding (masked out). */
  padId: number;
  /** The fused decoding step (`CausalLM.decodePlan` for `cacheLength(rows)` positions), or null: op by op. */
  plan: DecodePlan | null;
  /** Token ids → text, for stop strings. */
  decode?: (ids: number[]) => string;
  /** Called with every sampled token of row `row`, before its stop checks (streaming). */
  onToken?: (row: number, ev: TokenEvent) => void;
  /** Called once when row `row` ends with "stop" or "length" (not when it is cancelled). */
  onFinish?: (row: number, reason: FinishReason) => void;
  /** Asked before each step: a cancelled row leaves the batch (its result says "abort"). */
  cancelled?: (row: number) => boolean;
}

export interface RowResult {
  tokens: number[];
  logprobs: number[];
  /** Per token, the row's top alternatives; null when the row asked for none. */
  top: TopLogprob[][] | null;
  finishReason: FinishReason | "abort";
}

/** KV-cache columns the rows need: the longest prompt plus the largest `maxTokens`. */
export function cacheLength(rows: readonly DecodeRow[]): number {
  return Math.max(...rows.map((r) => r.prompt.length)) + Math.max(...rows.map((r) => r.maxTokens));
}

/**
 * Decodes `rows` as one batch, one token per row per step, yielding after each decoding step (the serving
 * engine hands the event loop back there; `decodeBatch` just goes on). Returns each row's result, in row
 * order. The KV cache lives inside: it is freed when the generator ends, throws or is closed.
 */
export function* decodeSteps(
  model: CausalLM,
  rows: readonly DecodeRow[],
  o: DecodeOptions,
): Generator<void, RowResult[], void> {
  if (rows.length === 0) return [];
  const B = rows.length;
  const P = Math.max(...rows.map((r) => r.prompt.length));
  const ids = new Array<number>(B * P).fill(o.padId);
  const mask = new Array<number>(B * P).fill(0);
  rows.forEach((r, b) => {
    r.prompt.forEach((t, i) => {
      ids[b * P + P - r.prompt.length + i] = t;
      mask[b * P + P - r.prompt.length + i] = 1;
    });
  });
  const out: RowResult[] = rows.map((r) => ({
    tokens: [],
    logprobs: [],
    top: (r.topLogprobs ?? 0) > 0 ? [] : null,
    finishReason: "length",
  }));
  const done: (FinishReason | "abort" | null)[] = new Array(B).fill(null);
  const topN = Math.max(0, ...rows.map((r) => r.topLogprobs ?? 0));
  const k = topN > 0 ? Math.min(topN, model.config.vocabSize) : 0;
  // order[i] = the row held in cache row i
  let order = rows.map((_, b) => b);
  let gens = rows.map((r) => new SeededGenerator(r.seed).h);
  let cache: KVCache | null = null;
  let logits: Tensor | null = null;
  const finish = (b: number, why: FinishReason) => {
    done[b] = why;
    o.onFinish?.(b, why);
  };
  try {
    cache = model.newCache(B, cacheLength(rows));
    const c = cache;
    logits = noGrad(() =>
      keep(
        tidy(() =>
          model.prefill(
            c,
            tensor(ids, { shape: [B, P], dtype: "i64" }),
            tensor(mask, { shape: [B, P], dtype: "i64" }),
            o.plan,
          ),
        ),
      ),
    ); // [B, V]
    for (;;) {
      if (o.cancelled) for (let b = 0; b < B; b++) if (done[b] === null && o.cancelled(b)) done[b] = "abort";
      if (!done.includes(null)) break;
      const lg = logits as Tensor;
      // logits on a device are filtered and drawn from there (each row's own CPU generator gives the
      // uniform); only the tokens, their log-probs and the top alternatives come back
      const { drawn, drawnLp, topV, topI } = noGrad(() =>
        tidy(() => {
          const [tokT, lpT] = native
            .sampleTokens(lg.h, gens, o.temperature, o.topK, o.topP, o.minP)
            .map((x) => new Tensor(x)) as [Tensor, Tensor];
          let tv: Float64Array | null = null;
          let ti: BigInt64Array | null = null;
          if (k > 0) {
            const [v, i] = lg
              .to("f64")
              .div(o.temperature > 0 ? o.temperature : 1)
              .logSoftmax(-1)
              .topk(k); // [rows, k]
            tv = v.data() as Float64Array;
            ti = i.data() as BigInt64Array;
          }
          return { drawn: tokT.data() as BigInt64Array, drawnLp: lpT.data() as Float32Array, topV: tv, topI: ti };
        }),
      );
      lg.dispose();
      logits = null;
      let live = 0;
      for (const [i, b] of order.entries()) {
        if (done[b] !== null) continue;
        const r = rows[b] as DecodeRow;
        const res = out[b] as RowResult;
        const t = Number(drawn[i]);
        const lp = drawnLp[i] as number;
        res.tokens.push(t);
        res.logprobs.push(lp);
        let top: TopLogprob[] | null = null;
        if (res.top !== null && topV !== null && topI !== null) {
          top = Array.from({ length: Math.min(r.topLogprobs ?? 0, k) }, (_, j) => ({
            token: Number(topI[i * k + j]),
            logprob: topV[i * k + j] as number,
          }));
          res.top.push(top);
        }
        o.onToken?.(b, { token: t, logprob: lp, top });
        const stops = r.stop ?? [];
        const decode = o.decode;
        if (r.stopIds.has(t)) finish(b, "stop");
        else if (stops.length > 0 && decode && stops.some((s) => decode(res.tokens).includes(s))) finish(b, "stop");
        else if (res.tokens.length >= r.maxTokens) finish(b, "length");
        if (done[b] === null) live++;
      }
      if (live === 0) break;
      if (live <= (order.length * 3) / 4) {
        const keepIdx = order.flatMap((b, i) => (done[b] === null ? [i] : []));
        c.keepRows(keepIdx);
        gens = keepIdx.map((i) => gens[i]);
        order = keepIdx.map((i) => order[i] as number);
      }
      // rows cancelled before their first token feed the pad id (their output is dropped)
      const next = order.map((b) => (out[b] as RowResult).tokens.at(-1) ?? o.padId);
      logits = noGrad(() =>
        keep(tidy(() => model.decodeStep(c, tensor(next, { shape: [order.length, 1], dtype: "i64" }), o.plan))),
      ); // [rows, V]
      yield;
    }
  } finally {
    logits?.dispose();
    (cache as KVCache | null)?.dispose();
  }
  out.forEach((r, b) => {
    r.finishReason = done[b] ?? "length";
  });
  return out;
}

/** `decodeSteps` run to the end without yielding to anything. */
export function decodeBatch(model: CausalLM, rows: readonly DecodeRow[], o: DecodeOptions): RowResult[] {
  const steps = decodeSteps(model, rows, o);
  for (;;) {
    const s = steps.next();
    if (s.done) return s.value;
  }
}
