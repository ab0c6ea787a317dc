/**
 * Shared-prefix forward (Prefix Grouper, ALGORITHMS.md B.24): the G completions of a group share one
 * prompt, so the prompt is encoded once and every completion attends to that single prefix K/V plus its
 * own causal suffix. Efficiency only: log-probs, entropy and gradients equal `CausalLM.logprobs` on the
 * packed batch (up to float rounding), because prefix states never depend on a completion and the
 * backward of the per-row gather sums each member's gradient into the one shared prefix.
 *
 * ```
 *   prefix pass   [K groups, Pmax]    left-padded prompts → per-layer K/V [K, Hkv, Pmax, hd] (after RoPE)
 *   suffix pass   [N rows, C]         right-padded completions, positions promptLength + j,
 *                                     keys = [prefix K/V of the row's group ; own causal K/V]
 *   lm_head       [N, C]              position j−1 predicts token j; the prefix's last state predicts token 0
 * ```
 * @module
 */
// Prefix Grouper (shared-prefix forward) — [ABSTRACT + README]
import { CohortError } from "../errors.js";
import { arange, cat, embedding as embed, Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import { native } from "../tensor/native.js";
import { CausalLM, type LogprobOptions } from "./llama.js";

/** One prompt and the completions sampled from it. */
export interface PrefixGroup {
  prompt: number[];
  completions: number[][];
}

export interface SharedPrefixResult {
  /** [N, C] log-probs of the completion tokens (rows = groups flattened, C = longest completion). */
  lp: Tensor;
  /** [N, C] entropy of softmax(logits / T) at each completion column (when asked). */
  entropy?: Tensor;
}

/**
 * Log-probs (and entropy) of each group's completions with the prompt computed once per group.
 * Aligned like the trainer's completion columns: row n is the n-th completion of the flattened groups,
 * column j is its j-th token; columns past a completion's end hold finite values that callers mask.
 * Gradients flow into every weight (and LoRA adapter) when grad is on.
 */
export function logprobsSharedPrefix(
  model: CausalLM,
  groups: PrefixGroup[],
  opts: LogprobOptions = {},
): SharedPrefixResult {
  const temp = opts.temperature ?? 1;
  if (!(temp > 0)) throw new CohortError(`logprobsSharedPrefix: temperature must be > 0, got ${temp}`);
  if (groups.length === 0) throw new CohortError("logprobsSharedPrefix: no groups; pass at least one prompt group");
  groups.forEach((g, i) => {
    if (g.prompt.length === 0)
      throw new CohortError(`logprobsSharedPrefix: group ${i} has an empty prompt; a prompt needs at least one token`);
    if (g.completions.length === 0)
      throw new CohortError(`logprobsSharedPrefix: group ${i} has no completions; drop it or give it at least one`);
  });
  const c = model.config;
  const D = c.hiddenSize;
  const V = c.vocabSize;
  const K = groups.length;
  const P = Math.max(...groups.map((g) => g.prompt.length));
  const rowGroup: number[] = [];
  const comps: number[][] = [];
  groups.forEach((g, i) => {
    for (const x of g.completions) {
      rowGroup.push(i);
      comps.push(x);
    }
  });
  const N = comps.length;
  const C = Math.max(...comps.map((x) => x.length));
  const withEnt = opts.entropy ?? false;
  if (C === 0) {
    const on = { device: model.device };
    return tidy(() => (withEnt ? { lp: zeros([N, 0], on), entropy: zeros([N, 0], on) } : { lp: zeros([N, 0], on) }));
  }
  const chunkRows = opts.chunkSize !== undefined ? opts.chunkSize * N : Math.max(1, Math.floor((1 << 24) / V));

  // host-side layout: left-padded prompts, right-padded completions
  const pIds = new Array<number>(K * P).fill(0);
  const pMask = new Array<number>(K * P).fill(0);
  groups.forEach((g, k) => {
    for (let i = 0; i < g.prompt.length; i++) {
      pIds[k * P + P - g.prompt.length + i] = g.prompt[i] as number;
      pMask[k * P + P - g.prompt.length + i] = 1;
    }
  });
  const cIds = new Array<number>(N * C).fill(0);
  const cMask = new Array<number>(N * C).fill(0);
  const cPos = new Array<number>(N * C).fill(0);
  comps.forEach((x, n) => {
    const plen = (groups[rowGroup[n] as number] as PrefixGroup).prompt.length;
    for (let j = 0; j < C; j++) {
      cPos[n * C + j] = plen + j;
      if (j < x.length) {
        cIds[n * C + j] = x[j] as number;
        cMask[n * C + j] = 1;
      }
    }
  });
  const maxPos = Math.max(P, ...cPos) + 1;

  return tidy(() => {
    const device = model.device;
    const gIdx = tensor(rowGroup, { dtype: "i64", device }); // [N]

    // ---- prefix: K groups × P columns, the full forward's layers, keeping each layer's K/V
    const promptIds = tensor(pIds, { shape: [K, P], dtype: "i64", device });
    const promptMask = tensor(pMask, { shape: [K, P], dtype: "i64", device });
    const [pCos, pSin] = model.ropeAt(CausalLM.positionIds(promptMask), maxPos); // [K, 1, P, hd]
    const pAttn = CausalLM.attentionMask(promptMask, K, P); // [K, 1, P, P]
    const prefixK: Tensor[] = []; // per layer [K, Hkv, P, hd]
    const prefixV: Tensor[] = [];
    let x = embed(model.embedTokens, promptIds); // [K, P, D]
    for (const L of model.layers) {
      x = model.block(L, x, pCos, pSin, (q, k, v) => {
        prefixK.push(k);
        prefixV.push(v);
        return model.attend(q, k, v, pAttn); // [K, H, P, hd]
      });
    }
    // the last prompt position (column P−1 for every left-padded prompt) predicts completion token 0
    const prefixLast = model.norm(x.narrow(1, P - 1, 1), model.finalNorm); // [K, 1, D]

    // ---- suffix: N rows × C columns attending to [prefix of their group ; own causal keys]
    const compIds = tensor(cIds, { shape: [N, C], dtype: "i64", device });
    const compValid = tensor(cMask, { shape: [N, C], dtype: "i64", device }).ne(0); // [N, C]
    const [cCos, cSin] = model.ropeAt(tensor(cPos, { shape: [N, C], dtype: "i64", device }), maxPos); // [N, 1, C, hd]
    const idx = arange(0, C, 1, { device });
    const causal = idx.unsqueeze(0).le(idx.unsqueeze(1)); // [C, C]: key ≤ query
    const diag = idx.unsqueeze(0).eq(idx.unsqueeze(1)); // [C, C]
    const ownMask = causal.logicalAnd(compValid.reshape(N, 1, 1, C)).logicalOr(diag); // [N, 1, C, C]
    const prefMask = promptMask.ne(0).indexSelect(0, gIdx).reshape(N, 1, 1, P).expand(N, 1, C, P); // [N, 1, C, P]
    const mask = cat([prefMask, ownMask], 3); // [N, 1, C, P + C]
    let y = embed(model.embedTokens, compIds); // [N, C, D]
    for (const [i, L] of model.layers.entries()) {
      y = model.block(L, y, cCos, cSin, (q, k, v) => {
        const keys = cat([(prefixK[i] as Tensor).indexSelect(0, gIdx), k], 2); // [N, Hkv, P + C, hd]
        const vals = cat([(prefixV[i] as Tensor).indexSelect(0, gIdx), v], 2); // [N, Hkv, P + C, hd]
        return model.attend(q, keys, vals, mask); // [N, H, C, hd]
      });
    }
    const compHidden = model.norm(y, model.finalNorm); // [N, C, D]
    const predictors =
      C > 1
        ? cat([prefixLast.indexSelect(0, gIdx), compHidden.narrow(1, 0, C - 1)], 1)
        : prefixLast.indexSelect(0, gIdx); // [N, C, D]
    const r = native
      .linearTokenLogprobs(
        predictors.reshape(N * C, D).h,
        model.outputWeight.h,
        compIds.reshape(N * C).h,
        temp,
        withEnt,
        chunkRows,
      )
      .map((t) => new Tensor(t));
    const lp = (r[0] as Tensor).reshape(N, C);
    return withEnt ? { lp, entropy: (r[1] as Tensor).reshape(N, C) } : { lp };
  });
}

/**
 * Row-aligned variant for callers that hold one prompt per row (the trainer's micro-batches): rows with
 * identical prompt ids form a group, in any order; the result's row n is row n of the input.
 */
export function logprobsSharedPrefixRows(
  model: CausalLM,
  prompts: number[][],
  completions: number[][],
  opts: LogprobOptions = {},
): SharedPrefixResult {
  if (prompts.length !== completions.length || prompts.length === 0) {
    throw new CohortError(
      `logprobsSharedPrefixRows: need one completion per prompt and at least one row (got ${prompts.length} prompts, ${completions.length} completions)`,
    );
  }
  const byPrompt = new Map<string, number[]>();
  prompts.forEach((p, n) => {
    const key = p.join(",");
    const rows = byPrompt.get(key);
    if (rows) rows.push(n);
    else byPrompt.set(key, [n]);
  });
  const order = [...byPrompt.values()].flat(); // flattened position → input row
  const groups = [...byPrompt.values()].map((rows) => ({
    prompt: prompts[rows[0] as number] as number[],
    completions: rows.map((n) => completions[n] as number[]),
  }));
  if (order.every((n, i) => n === i)) return logprobsSharedPrefix(model, groups, opts);
  const inverse = new Array<number>(order.length);
  order.forEach((n, i) => {
    inverse[n] = i;
  });
  return tidy(() => {
    const r = logprobsSharedPrefix(model, groups, opts);
    const back = tensor(inverse, { dtype: "i64", device: model.device });
    const lp = r.lp.indexSelect(0, back);
    return r.entropy ? { lp, entropy: r.entropy.indexSelect(0, back) } : { lp };
  });
}
