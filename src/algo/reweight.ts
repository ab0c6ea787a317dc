/**
 * Advantage reweighters (ALGORITHMS.md §C.1 `AdvantageReweighter`): functions `(A, batch, opts) → A'` that
 * run after the estimator, registered by name in `advantageReweighters`. They accept sequence advantages
 * (Float64Array) and, where it makes sense, token advantages ([N, T] tensors).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { type Tensor, tensor, tidy } from "../tensor/index.js";
import type { TokenAdvantages } from "./advantage.js";
import { type ComponentDef, ComponentRegistry, parseParams, type StateDef } from "./component.js";
import { devOf, groupMembers, validStats } from "./groups.js";
import type { Advantages, RewardBatch } from "./types.js";

/** Run inputs a reweighter may read (supplied by need, see component.ts `NEEDS`). */
export interface ReweightInputs {
  /** Mean token entropy of each completion under the current policy (need `meanEntropy`). */
  meanEntropy?: () => Float64Array;
  /** ρ^T [N, T] for a target temperature T (need `targetRatio`). */
  targetRatio?: (temperature: number) => Tensor;
}

/** An advantage reweighter `(A, batch) → A'`, optionally with per-run state. */
export interface ReweighterDef<
  P extends z.ZodType = z.ZodType,
  S extends Record<string, number> = Record<string, number>,
> extends ComponentDef<P> {
  state?: StateDef<z.output<P>, S>;
  reweight(adv: Advantages, batch: RewardBatch, params: z.output<P>, inputs: ReweightInputs, state: S): Advantages;
}
// biome-ignore lint/suspicious/noExplicitAny: each definition keeps its own params type
export const advantageReweighters = new ComponentRegistry<ReweighterDef<any, any>>("advantage reweighter");

/** Registers a stateless reweighter and returns it as a function of raw options (validated by its params). */
function defineReweighter<P extends z.ZodType>(
  def: ReweighterDef<P>,
): ((adv: Advantages, batch: RewardBatch, opts?: z.input<P>, inputs?: ReweightInputs) => Advantages) & {
  def: ReweighterDef<P>;
} {
  advantageReweighters.define(def);
  return Object.assign(
    (adv: Advantages, batch: RewardBatch, opts?: z.input<P>, inputs: ReweightInputs = {}) =>
      def.reweight(adv, batch, parseParams(def, opts), inputs, {}),
    { def },
  );
}

/** Multiplies the advantages of sequence i by `w[i]` (both kinds; a token tensor is scaled row-wise). */
export function scaleSequences(adv: Advantages, w: Float64Array): Advantages {
  if (adv.kind === "sequence") {
    if (adv.values.length !== w.length) {
      throw new CohortError(`advantages have ${adv.values.length} sequences but ${w.length} weights`);
    }
    return { kind: "sequence", values: adv.values.map((a, i) => a * w[i]!) };
  }
  const t = adv.values;
  if (t.shape[0] !== w.length) throw new CohortError(`advantages have ${t.shape[0]} rows but ${w.length} weights`);
  const values = tidy(() => t.mul(tensor(w, { shape: [w.length, 1], device: devOf(t) }).to(t.dtype)));
  return { kind: "token", values };
}

// ---- DGPO question weighting ----------------------------------------------------------------------

const dqwParams = z.strictObject({
  /** Softmax temperature T (`dgpo_dqw_temp`). */
  temperature: z.number().positive().default(2),
  /** Accuracy source: index into `batch.rewardsByFn` (the main/correctness reward). Default: row 0 when
   * `rewardsByFn` is present, else the combined rewards. */
  mainReward: z.number().int().min(0).optional(),
  /** Token-dilution rescale (B.10.3): multiply by (all tokens)/(tokens of non-zero-std groups); needs lengths. */
  rescaleTokens: z.boolean().default(false),
});
export type DqwOptions = z.input<typeof dqwParams>;

/**
 * DGPO difficulty-aware question weights per completion (B.10): over the V groups whose rewards have
 * non-zero std, `w_q = V · softmax_q(−acc_q / T)`; acc_q = mean main reward of the group, with acc_q := 1
 * for a group whose accuracy is 0 but whose std is non-zero (e.g. through a format reward). Zero-std
 * groups keep w = 1 (their A is 0 anyway).
 */
export function dgpoQuestionWeights(batch: RewardBatch, opts: DqwOptions = {}): Float64Array {
  const { temperature } = parseParams(DQW, opts, "options");
  let acc = batch.rewards;
  const k = opts.mainReward ?? (batch.rewardsByFn?.length ? 0 : undefined);
  if (k !== undefined) {
    const row = batch.rewardsByFn?.[k];
    if (row === undefined) {
      throw new CohortError(`mainReward = ${k} but batch.rewardsByFn has ${batch.rewardsByFn?.length ?? 0} rows`);
    }
    acc = row;
  }
  const w = new Float64Array(batch.rewards.length).fill(1);
  const active: { idx: number[]; acc: number }[] = [];
  for (const idx of groupMembers(batch.groupIndex)) {
    const st = validStats(batch.rewards, idx);
    if (st.n < 2 || st.std === 0) continue;
    const a = validStats(acc, idx).mean;
    active.push({ idx, acc: a === 0 || Number.isNaN(a) ? 1 : a });
  }
  if (active.length === 0) return w;
  const logits = active.map((g) => -g.acc / temperature);
  const max = Math.max(...logits);
  const ex = logits.map((l) => Math.exp(l - max));
  const z = ex.reduce((a, b) => a + b, 0);
  active.forEach((g, j) => {
    for (const i of g.idx) w[i] = (active.length * ex[j]!) / z;
  });
  return w;
}

/**
 * DGPO difficulty-aware question weighting (DQW): `A_i ← w_q · A_i` with the weights of
 * `dgpoQuestionWeights`; optional token-dilution rescale by (all completion tokens)/(tokens in non-zero-std
 * groups), for token-count aggregators.
 */
// arXiv 2601.20614 [CODE]
export const dgpoDqw = defineReweighter({
  name: "dgpo_dqw",
  paper: "2601.20614",
  confidence: "CODE",
  doc: "question weights V·softmax(−acc_q/T) over the groups with reward variance",
  params: dqwParams,
  reweight: (adv, batch, p) => dqwApply(adv, batch, p),
});
const DQW = dgpoDqw.def;

function dqwApply(adv: Advantages, batch: RewardBatch, opts: z.output<typeof dqwParams>): Advantages {
  const w = dgpoQuestionWeights(batch, opts);
  if (opts.rescaleTokens) {
    const len = batch.lengths;
    if (len === undefined) throw new CohortError("dgpo_dqw rescaleTokens needs batch.lengths; set it");
    let all = 0;
    let active = 0;
    for (const idx of groupMembers(batch.groupIndex)) {
      const st = validStats(batch.rewards, idx);
      for (const i of idx) {
        all += len[i]!;
        if (st.n >= 2 && st.std > 0) active += len[i]!;
      }
    }
    if (active > 0) for (let i = 0; i < w.length; i++) w[i] = w[i]! * (all / active);
  }
  return scaleSequences(adv, w);
}

// ---- ARM / ProGRPO confidence reweighting ---------------------------------------------------------

const armParams = z.strictObject({
  /** Strength α of the reweighting. */
  alpha: z.number().min(0).default(0.5),
  /** "multiplicative": `A_i · (c_i/c̄_q)^(−α)`; "additive": `A_i + α (c̄_q − c_i)`. */
  form: z.enum(["multiplicative", "additive"]).default("multiplicative"),
  /** Clamp of the multiplicative factor. */
  minWeight: z.number().min(0).default(0.5),
  maxWeight: z.number().positive().default(2),
});
export type ArmOptions = z.input<typeof armParams>;

/**
 * ARM / ProGRPO confidence reweighting (B.19). **Design choice**: only the mechanism is published in the
 * abstract (down-weight over-confident correct paths, up-weight under-explored correct ones, using prompt
 * perplexity and answer confidence); this formula is Cohort's. For every completion with `A_i > 0`:
 * answer confidence `c_i = exp(u_i)` with u_i the mean token log-prob under π_old (`batch.meanLogprobs`),
 * reference `c̄_q` = mean confidence of the group's positive completions (standing in for the prompt
 * perplexity normaliser); multiplicative `A_i ← A_i · clamp((c_i/c̄_q)^(−α), minWeight, maxWeight)` or
 * additive `A_i ← A_i + α (c̄_q − c_i)`. Advantages ≤ 0 are unchanged. Sequence advantages only.
 */
// arXiv 2602.05281 [ABSTRACT] (design choice)
export const armConfidence = defineReweighter({
  name: "arm",
  paper: "2602.05281",
  confidence: "ABSTRACT",
  doc: "confidence reweighting of positive advantages (design choice)",
  params: armParams,
  needs: ["meanLogprobs"],
  reweight: (adv, batch, p) => armApply(adv, batch, p),
});

function armApply(adv: Advantages, batch: RewardBatch, opts: z.output<typeof armParams>): Advantages {
  if (adv.kind !== "sequence") throw new CohortError("arm reweights sequence advantages; use a sequence estimator");
  const u = batch.meanLogprobs;
  if (u === undefined) throw new CohortError("arm needs batch.meanLogprobs (mean token log-prob under π_old); set it");
  const { alpha, minWeight: lo, maxWeight: hi } = opts;
  const out = Float64Array.from(adv.values);
  for (const idx of groupMembers(batch.groupIndex)) {
    const pos = idx.filter((i) => adv.values[i]! > 0);
    if (pos.length === 0) continue;
    const cbar = pos.reduce((a, i) => a + Math.exp(u[i]!), 0) / pos.length;
    for (const i of pos) {
      const c = Math.exp(u[i]!);
      out[i] =
        opts.form === "additive"
          ? adv.values[i]! + alpha * (cbar - c)
          : adv.values[i]! * Math.min(Math.max((c / cbar) ** -alpha, lo), hi);
    }
  }
  return { kind: "sequence", values: out };
}

// ---- GTPO entropy shift ---------------------------------------------------------------------------

const gtpoEntropyParams = z.strictObject({
  /** Completions with H_i > threshold are dropped (A ← 0). Code value 0.7. */
  threshold: z.number().default(0.7),
  /** λ_H of the shift `A_i ← A_i − λ_H H_i`. Code value 0.1. */
  scale: z.number().default(0.1),
});
export type GtpoEntropyOptions = z.input<typeof gtpoEntropyParams>;

/**
 * GTPO entropy filter and shift (B.9.2): `A_i ← 0` if `H_i > H_thr`, else `A_i ← A_i − λ_H H_i`, with H_i the
 * mean full-vocabulary entropy of completion i under the policy (need `meanEntropy`). The conflict-token
 * weights (filters.ts) are built from the estimator's advantages, before this shift (B.9 step 1 before 2).
 */
// arXiv 2508.03772 [CODE]
export const gtpoEntropyShift = defineReweighter({
  name: "gtpo_entropy",
  paper: "2508.03772",
  confidence: "CODE",
  doc: "drop completions with mean entropy above a threshold, shift the rest by −λ_H·H",
  params: gtpoEntropyParams,
  needs: ["meanEntropy"],
  reweight(adv, batch, p, inputs) {
    const n = batch.rewards.length;
    const h = inputs.meanEntropy?.();
    if (h === undefined || h.length !== n) {
      throw new CohortError(`gtpo_entropy needs inputs.meanEntropy with one mean entropy per completion (${n})`);
    }
    const thr = p.threshold;
    const lam = p.scale;
    if (adv.kind === "sequence") {
      return { kind: "sequence", values: adv.values.map((a, i) => (h[i]! > thr ? 0 : a - lam * h[i]!)) };
    }
    const keep = Float64Array.from(h, (x) => (x > thr ? 0 : 1));
    const shift = Float64Array.from(h, (x) => (x > thr ? 0 : lam * x));
    const t = adv.values;
    const values = tidy(() =>
      t
        .sub(tensor(shift, { shape: [n, 1], device: devOf(t) }).to(t.dtype))
        .mul(tensor(keep, { shape: [n, 1], device: devOf(t) }).to(t.dtype))
        .to(t.dtype),
    );
    return { kind: "token", values };
  },
});

// ---- DCPO advantage mixing ------------------------------------------------------------------------

/** DCPO target temperature: T = 1.2 when the entropy H is at or below H_base (raise it), else 0.8. */
export function dcpoTemperature(entropy: number, entropyBase = 0.5): number {
  return entropy <= entropyBase ? 1.2 : 0.8;
}

/** DCPO mixing weight: `α = min(|H_base − H|, maxShift)/p`, then `α/(1 + α)`; p = 0 gives 0 (design choice). */
export function dcpoAlpha(entropy: number, correctFraction: number, entropyBase = 0.5, maxShift = 0.1): number {
  if (!(correctFraction > 0)) return 0;
  const a = Math.min(Math.abs(entropyBase - entropy), maxShift) / correctFraction;
  return a / (1 + a);
}

/**
 * DCPO target-distribution ratio `ρ^T = exp(ℓ^{old,T} − ℓ^old)`: ℓ^{old,T} = log-softmax(logits_old / T) at the
 * sampled token, ℓ^old the same at temperature 1. `oldLogits` [N, T, V], `tokens` [N, T] integer. No grad.
 */
export function targetDistributionRatio(oldLogits: Tensor, tokens: Tensor, temperature: number): Tensor {
  return tidy(() => {
    const idx = tokens.to("i64").unsqueeze(-1);
    const l1 = oldLogits.detach().logSoftmax(-1).gather(-1, idx).squeeze(-1);
    const lt = oldLogits.detach().div(temperature).logSoftmax(-1).gather(-1, idx).squeeze(-1);
    return lt.sub(l1).exp();
  });
}

const dcpoParams = z.strictObject({
  /** H_base (`entropy_base`). */
  entropyBase: z.number().min(0).default(0.5),
  /** Cap on |H_base − H|. */
  maxShift: z.number().min(0).default(0.1),
  /** b_i = 1[r_i > correctThreshold]. */
  correctThreshold: z.number().default(0.05),
});
export type DcpoOptions = z.input<typeof dcpoParams>;

/**
 * DCPO advantage mixing (B.31): `A'_{i,t} = (1 − α) A_i + α · b_i · ρ^T_{i,t}` with `b_i = 1[r_i > 0.05]`,
 * `p` = fraction of correct completions in the batch, `α = min(|H_base − H|, 0.1)/p`, `α ← α/(1 + α)`
 * (p = 0 → α = 0). `rho` is ρ^T [N, T] at T = `dcpoTemperature(H)`. Returns token advantages [N, T]
 * (dtype of `rho`); use them with the usual clipped surrogate.
 */
export function dcpoMix(
  adv: Advantages,
  batch: RewardBatch,
  rho: Tensor,
  entropy: number,
  opts: DcpoOptions = {},
): TokenAdvantages {
  const p = parseParams(dcpo.def, opts, "options");
  const n = batch.rewards.length;
  if (rho.ndim !== 2 || rho.shape[0] !== n) {
    throw new CohortError(`dcpo needs the target ratio ρ^T of shape [${n}, T], got [${rho.shape}]`);
  }
  const b = Float64Array.from(batch.rewards, (r) => (r > p.correctThreshold ? 1 : 0));
  const frac = b.reduce((a, x) => a + x, 0) / n;
  const alpha = dcpoAlpha(entropy, frac, p.entropyBase, p.maxShift);
  const values = tidy(() => {
    const base =
      adv.kind === "sequence"
        ? tensor(adv.values, { shape: [n, 1], device: devOf(rho) }).to(rho.dtype)
        : adv.values.to(rho.dtype);
    const bonus = rho.mul(tensor(b, { shape: [n, 1], device: devOf(rho) }).to(rho.dtype)).mul(alpha);
    return base.mul(1 - alpha).add(bonus);
  });
  return { kind: "token", values };
}

/**
 * DCPO as a stateful reweighter: H (state `entropy`) is `−(masked token-mean of ℓ)` of the previous update,
 * gathered from the loss pass (`observe`) and fixed at `endStep` (0 before the first update); each step picks
 * T = 1.2 when H ≤ H_base else 0.8, asks the run for ρ^T (need `targetRatio`) and mixes (B.31).
 */
// arXiv 2601.12730 [CODE]
export const dcpo = defineStatefulReweighter({
  name: "dcpo",
  paper: "2601.12730",
  confidence: "CODE",
  doc: "(1 − α)A + α·b·ρ^T toward π_old at a target temperature T chosen from the last update's entropy",
  params: dcpoParams,
  needs: ["targetRatio"],
  state: {
    init: () => ({ entropy: 0, sum: 0, weight: 0 }),
    reduce: ["sum", "weight"],
    observe(s, batch) {
      tidy(() => {
        const m = batch.mask.detach().to("f64");
        s.sum += -batch.logprobs.detach().to("f64").mul(m).sum().item();
        s.weight += m.sum().item();
      });
    },
    endStep(s, _p, applied) {
      if (applied && s.weight > 0) s.entropy = s.sum / s.weight;
      s.sum = 0;
      s.weight = 0;
    },
  },
  reweight(adv, batch, p, inputs, s) {
    if (inputs.targetRatio === undefined) {
      throw new CohortError("dcpo needs inputs.targetRatio (ρ^T of π_old at a target temperature); supply it");
    }
    const rho = inputs.targetRatio(dcpoTemperature(s.entropy, p.entropyBase));
    try {
      return dcpoMix(adv, batch, rho, s.entropy, p);
    } finally {
      rho.dispose();
    }
  },
});

function defineStatefulReweighter<P extends z.ZodType, S extends Record<string, number>>(
  def: ReweighterDef<P, S> & { state: StateDef<z.output<P>, S> },
): { def: ReweighterDef<P, S> } {
  advantageReweighters.define(def);
  return { def };
}

// ---- FAKER-Air rank + EMA advantages ------------------------------------------------------------------

const fakerAirParams = z.strictObject({
  /** Weight of the centred rank advantage; 1 − rankWeight goes to the EMA-normalised reward. */
  rankWeight: z.number().min(0).max(1).default(0.9),
  /** EMA rate α of the group-mean reward's running mean and variance. */
  emaRate: z.number().gt(0).max(1).default(0.05),
  eps: z.number().positive().default(1e-6),
});
export type FakerAirOptions = z.input<typeof fakerAirParams>;

/**
 * FAKER-Air's advantages (ALGORITHMS.md §F.3), replacing the estimator's: groups in order of their index, each
 * first moves the running statistics of the group-mean reward μ_g, m ← (1 − α)m + αμ_g, v ← (1 − α)v + α(μ_g − m)²,
 * then A_i = w·A_rank + (1 − w)·(R_i − m)/(√v + eps) with the centred rank A_rank = 2(rank_i/(G − 1) − ½)
 * (G valid rewards; a group of one gets A_rank 0). Design choices: tied rewards share their average rank (the
 * code's argsort breaks ties by position); NaN rewards get 0 and stay out of μ_g. Returns the advantages and the
 * statistics after the batch.
 */
export function fakerAirAdvantages(
  rewards: Float64Array,
  groupIndex: Int32Array,
  opts: FakerAirOptions,
  stats: { m: number; v: number },
): { values: Float64Array; m: number; v: number } {
  const p = parseParams(FAKER_AIR, opts, "options");
  const values = new Float64Array(rewards.length);
  let { m, v } = stats;
  const groups = groupMembers(groupIndex).sort((a, b) => groupIndex[a[0]!]! - groupIndex[b[0]!]!);
  for (const members of groups) {
    const idx = members.filter((i) => !Number.isNaN(rewards[i]!));
    if (idx.length === 0) continue;
    const mu = validStats(rewards, idx).mean;
    m = (1 - p.emaRate) * m + p.emaRate * mu;
    v = (1 - p.emaRate) * v + p.emaRate * (mu - m) ** 2;
    const G = idx.length;
    for (const i of idx) {
      const r = rewards[i]!;
      let below = 0;
      let ties = 0;
      for (const j of idx) {
        if (rewards[j]! < r) below++;
        else if (rewards[j] === r) ties++;
      }
      const rank = below + (ties - 1) / 2; // 0-based average rank
      const aRank = G > 1 ? 2 * (rank / (G - 1) - 0.5) : 0;
      values[i] = p.rankWeight * aRank + (1 - p.rankWeight) * ((r - m) / (Math.sqrt(v) + p.eps));
    }
  }
  return { values, m, v };
}

/**
 * FAKER-Air's advantage as a stateful reweighter: the running (m, v) start at (0, 1e-6) and advance with every
 * applied step (the code resets them every epoch; a run here has no epochs, so they are never reset — design
 * choice). The statistics of a step are computed when its advantages are and kept at `endStep` if it applied.
 */
// arXiv 2511.22169 [CODE]
const FAKER_AIR = defineStatefulReweighter({
  name: "faker_air",
  paper: "2511.22169",
  confidence: "CODE",
  doc: "w·centred rank + (1 − w)·(R − m)/(√v + eps) with EMAs m, v of the group-mean reward (replaces A)",
  params: fakerAirParams,
  state: {
    init: () => ({ m: 0, v: 1e-6, nextM: 0, nextV: 1e-6 }),
    endStep(s, _p, applied) {
      if (applied) {
        s.m = s.nextM;
        s.v = s.nextV;
      } else {
        s.nextM = s.m;
        s.nextV = s.v;
      }
    },
  },
  reweight(adv, batch, p, _inputs, s) {
    if (adv.kind !== "sequence")
      throw new CohortError("faker_air replaces sequence advantages; use a sequence-level estimator (grpo)");
    const r = fakerAirAdvantages(batch.rewards, batch.groupIndex, p, { m: s.m, v: s.v });
    s.nextM = r.m;
    s.nextV = r.v;
    return { kind: "sequence", values: r.values };
  },
}).def;
export const fakerAir = FAKER_AIR;
