/**
 * The rows of one step as tensors for the loss: whole-batch per-token inputs computed without gradient where
 * a component needs them (entropy, π_old and π_ref log-probs, CAPO curvature, DCPO's target ratio), and
 * micro-batches packed for a forward pass with their loss mask, advantages and cached log-probs.
 *
 * Whole-batch tensors are [N, C] with C the longest completion of the step; a micro-batch takes its rows and
 * its own first columns (its completions are padded to its longest one).
 * @module
 */

import { curvatureScore } from "../algo/filters.js";
import type { Pipeline, RewardStage, TokenStage } from "../algo/pipeline.js";
import { rowAdvantages } from "../algo/step.js";
import type { Advantages } from "../algo/types.js";
import { holeMask, isEpisodeCompletion } from "../env/source.js";
import { CohortError } from "../errors.js";
import { packBatch } from "../model/batch.js";
import type { CausalLM } from "../model/llama.js";
import type { LoraAdapter } from "../model/lora.js";
import type { Completion } from "../model/sampler.js";
import { cat, keep, noGrad, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import type { ForwardBackend } from "./parts.js";

/** What the batch builders read of the run. */
export interface BatchSource {
  model: CausalLM;
  ref: CausalLM | null;
  lora: LoraAdapter | null;
  padId: number;
  /** Sampling temperature (log-probs are computed at it). */
  temperature: number;
  microBatchSize: number;
  /** How log-probs are computed (plain or shared-prefix). */
  backend: ForwardBackend;
}

/** Prompts and completions of the step's rows. */
export interface Rows {
  prompts: number[][];
  completions: Completion[];
}

/** Rows packed for a forward pass. */
export interface Packed {
  rows: number[];
  inputIds: Tensor;
  attentionMask: Tensor;
  completionMask: Tensor;
  /** First completion column. */
  P: number;
  /** Completion columns of this pack. */
  C: number;
  /** The rows' token ids (the shared-prefix forward groups rows by prompt). */
  seqs: { prompts: number[][]; completions: number[][] };
}

/** A micro-batch: packed rows with their loss mask, advantages and cached log-probs ([n, C]). */
export interface Micro extends Packed {
  mask: Tensor;
  samplerLp: Tensor;
  adv: Tensor;
  oldLp: Tensor | null;
  refLp: Tensor | null;
  /** 1 = an off-policy row (DaGRPO anchor): no sampler log-prob, left out of the mismatch metric. */
  offPolicy: Uint8Array;
  /** Item (rank position) of each token, −1 = none (Rank-GRPO on a ranking task). */
  itemIndex?: Tensor;
}

/** Packs rows on the host and moves them to the model's device. */
export function pack(src: BatchSource, ro: Rows, rows: number[]): Packed {
  const prompts = rows.map((r) => ro.prompts[r] as number[]);
  const comps = rows.map((r) => (ro.completions[r] as Completion).tokens);
  const packed = packBatch(prompts, comps, { padId: src.padId });
  const P = packed.promptLength;
  const dev = src.model.device;
  const put = (t: Tensor): Tensor => {
    if (t.device === dev) return keep(t);
    const moved = keep(t.to(dev));
    t.dispose();
    return moved;
  };
  return {
    rows,
    inputIds: put(packed.inputIds),
    attentionMask: put(packed.attentionMask),
    completionMask: put(packed.completionMask),
    P,
    C: (packed.inputIds.shape[1] as number) - P,
    seqs: { prompts, completions: comps },
  };
}

export function disposePacked(p: Packed): void {
  for (const t of [p.inputIds, p.attentionMask, p.completionMask]) t.dispose();
}

export function disposeMicro(m: Micro): void {
  disposePacked(m);
  for (const t of [m.mask, m.samplerLp, m.adv, m.oldLp, m.refLp, m.itemIndex]) t?.dispose();
}

/** The [N, C] loss mask of every row: completion tokens, with holes at tool observations for episodes. */
export function rowMask(ro: Rows, C: number): Tensor {
  const comps = ro.completions;
  if (comps.length > 0 && comps.every(isEpisodeCompletion)) return holeMask(comps, C);
  const lengths = comps.map((c) => c.tokens.length);
  return tensor(
    Array.from({ length: comps.length * C }, (_, k) => (k % C < (lengths[Math.floor(k / C)] as number) ? 1 : 0)),
    { shape: [comps.length, C], dtype: "f32" },
  );
}

/** Per-token tensors of the whole step [N, C], each computed only when a component needs it. */
export interface WholeBatch {
  C: number;
  mask: Tensor;
  tokenIds: Tensor;
  entropy?: Tensor;
  old?: Tensor;
  ref?: Tensor;
  curvature?: Tensor;
}

function padColumns(t: Tensor, C: number): Tensor {
  const [n, c] = t.shape as [number, number];
  if (c >= C) return t.narrow(1, 0, C);
  return cat([t, zeros([n, C - c], { dtype: t.dtype, device: t.device })], 1);
}

/** Rows in chunks of the micro-batch size, packed one chunk at a time; `fn` returns [n, c] tensors to stack. */
function overChunks(
  src: BatchSource,
  ro: Rows,
  C: number,
  fn: (p: Packed) => Record<string, Tensor>,
): Record<string, Tensor> {
  const n = ro.completions.length;
  const parts: Record<string, Tensor[]> = {};
  for (let lo = 0; lo < n; lo += src.microBatchSize) {
    const rows = Array.from({ length: Math.min(src.microBatchSize, n - lo) }, (_, i) => lo + i);
    const p = pack(src, ro, rows);
    try {
      const padded = tidy(() => Object.fromEntries(Object.entries(fn(p)).map(([k, t]) => [k, padColumns(t, C)])));
      for (const [k, t] of Object.entries(padded)) {
        parts[k] ??= [];
        parts[k].push(keep(t));
      }
    } finally {
      disposePacked(p);
    }
  }
  const out: Record<string, Tensor> = {};
  for (const [k, ts] of Object.entries(parts)) {
    out[k] = keep(tidy(() => cat(ts, 0)));
    for (const t of ts) t.dispose();
  }
  return out;
}

/**
 * The whole-batch inputs the advantage and token stages need: per-token entropy (`tokenEntropy`,
 * `meanEntropy`), the CAPO curvature (`curvature`), and π_old / π_ref log-probs when KL sits in the reward; all
 * without gradient at the sampling temperature. (The loss's own π_old / π_ref log-probs are computed per
 * micro-batch, `buildMicro`.)
 */
export function wholeBatch(src: BatchSource, ro: Rows, want: { pipeline: Pipeline }): WholeBatch {
  const pl = want.pipeline;
  const C = Math.max(1, ...ro.completions.map((c) => c.tokens.length));
  const ids = new Float64Array(ro.completions.length * C);
  ro.completions.forEach((c, i) => {
    ids.set(c.tokens, i * C);
  });
  const out: WholeBatch = {
    C,
    mask: keep(rowMask(ro, C)),
    tokenIds: keep(tensor(ids, { shape: [ro.completions.length, C], dtype: "i64" })),
  };
  const entropy = pl.has("tokenEntropy") || pl.has("meanEntropy");
  const old = pl.algo.rewardKl !== undefined && pl.algo.rewardKl.beta > 0;
  const ref = old;
  const curvature = pl.has("curvature");
  if (!(entropy || old || ref || curvature)) return out;
  const T = src.temperature;
  const got = noGrad(() =>
    overChunks(src, ro, C, (p) => {
      const r: Record<string, Tensor> = {};
      if (entropy || old) {
        const f = src.backend.logprobs(src.model, p, T, entropy);
        if (old) r.old = f.lp;
        if (f.entropy) r.entropy = f.entropy;
      }
      if (ref) r.ref = referenceLogprobs(src, p);
      if (curvature) {
        const logits = src.model.forward(p.inputIds, p.attentionMask).narrow(1, p.P - 1, p.C);
        r.curvature = curvatureScore(logits, p.inputIds.narrow(1, p.P, p.C), T);
      }
      return r;
    }),
  );
  return { ...out, ...got };
}

/** Log-probs of packed rows under π_ref: the frozen copy, or the model with its LoRA adapters off. */
function referenceLogprobs(src: BatchSource, p: Packed): Tensor {
  if (src.ref) return src.backend.logprobs(src.ref, p, src.temperature, false).lp;
  if (src.lora) {
    const lora = src.lora;
    return lora.disabled(() => src.backend.logprobs(src.model, p, src.temperature, false).lp);
  }
  throw new CohortError("internal: reference log-probs need a reference model or LoRA adapters");
}

/** ρ^T of DCPO for every row [N, C]: π_old at temperature `t` over π_old at temperature 1 (no gradient). */
export function targetRatioOf(src: BatchSource, ro: Rows, C: number, mask: Tensor): (t: number) => Tensor {
  return (t) =>
    noGrad(() => {
      const r = overChunks(src, ro, C, (p) => ({
        lt: src.backend.logprobs(src.model, p, t, false).lp,
        l1: src.backend.logprobs(src.model, p, 1, false).lp,
      }));
      const rho = tidy(() =>
        (r.lt as Tensor)
          .sub(r.l1 as Tensor)
          .exp()
          .mul(mask.to((r.lt as Tensor).dtype)),
      );
      r.lt?.dispose();
      r.l1?.dispose();
      return rho;
    });
}

export function disposeWhole(w: WholeBatch): void {
  for (const t of [w.mask, w.tokenIds, w.entropy, w.old, w.ref, w.curvature]) t?.dispose();
}

/** Rows `rows` and the first `C` columns of a whole-batch tensor, on `dev` (kept). */
export function pickRows(t: Tensor, rows: readonly number[], C: number, dev: Tensor["device"]): Tensor {
  return keep(
    tidy(() =>
      t
        .indexSelect(0, tensor([...rows], { dtype: "i64" }).to(t.device))
        .narrow(1, 0, C)
        .to(dev),
    ),
  );
}

/**
 * The micro-batch of `rows`: packed, with the token stage's mask, the advantages and the log-probs cached
 * without gradient: π_old when `storeOld` (the weights move before the batch's last update), π_ref when a
 * component needs it (from the whole batch when KL in the reward computed them already).
 */
export function buildMicro(
  src: BatchSource,
  ro: Rows,
  rows: number[],
  stage: RewardStage,
  tok: TokenStage,
  whole: WholeBatch,
  cache: { storeOld: boolean; ref: boolean },
  offPolicy: (c: Completion) => boolean,
): Micro {
  const p = pack(src, ro, rows);
  const dev = src.model.device;
  const pick = (t: Tensor) =>
    keep(
      tidy(() =>
        t
          .indexSelect(0, tensor(rows, { dtype: "i64" }).to(t.device))
          .narrow(1, 0, p.C)
          .to(dev),
      ),
    );
  const lpRows = rows.map((r) => {
    const lp = (ro.completions[r] as Completion).logprobs;
    return [...lp, ...new Array<number>(p.C - lp.length).fill(0)];
  });
  return {
    ...p,
    mask: pick(tok.mask),
    samplerLp: keep(tidy(() => tensor(lpRows.flat(), { shape: [rows.length, p.C], dtype: "f32" }).to(dev))),
    adv: keep(rowAdvantages(stage.advantages as Advantages, tok.advantageWeights, rows, p.C, "f32", dev)),
    oldLp: whole.old
      ? pick(whole.old)
      : cache.storeOld
        ? keep(noGrad(() => src.backend.logprobs(src.model, p, src.temperature, false).lp))
        : null,
    refLp: whole.ref ? pick(whole.ref) : cache.ref ? keep(noGrad(() => referenceLogprobs(src, p))) : null,
    offPolicy: Uint8Array.from(rows, (r) => (offPolicy(ro.completions[r] as Completion) ? 1 : 0)),
  };
}
