/**
 * Rank-r attention for DR-RL (arXiv 2512.15973 [CODE] components, ALGORITHMS.md §F.4): the queries and keys of
 * each head, after RoPE, are replaced by their rank-r truncated SVD, `M ≈ U_r diag(σ_1..σ_r) V_rᵀ`, computed by
 * one batched SVD per layer (native `svd`, torch::linalg_svd over the [B·H, T, hd] stack).
 *
 * | quantity                  | formula                                                                        | source        |
 * |---------------------------|--------------------------------------------------------------------------------|---------------|
 * | truncation                | M_r = U[:, :r] diag(σ_:r) Vh[:r, :]; r ≥ min(T, hd) is M itself                 | Eq. 13        |
 * | incremental rank update   | M_r′ = M_r ± Σ_{k ∈ (min(r,r′), max(r,r′)]} σ_k u_k v_kᵀ (no new decomposition)  | §F.4          |
 * | rank-change perturbation  | ‖M_r′ − M_r‖_F = sqrt(Σ_{k=min+1}^{max} σ_k²)  (exact: the triplets are orthogonal) | Eq. 8         |
 * | output sensitivity        | ‖ΔA·V‖_F ≤ ‖ΔA‖_F·‖V‖_F                                                          | Eq. 9         |
 * | energy ratio (NER)        | Σ_{k≤r} σ_k² / Σ_k σ_k²                                                          | §F.4          |
 * | attention-output bound    | ‖O(Q_r, K_r) − O(Q, K)‖_F ≤ ½·(‖ΔQ‖_F·σ₁(K) + σ₁(Q)·‖ΔK‖_F)/√hd · ‖V‖_F          | design choice |
 * | fidelity                  | cos = mean over tokens of cos(O_full[t], O_low[t])                               | Eq. 12        |
 * | reward                    | R = α·cos − β·FLOPs/unit − γ·‖ΔA‖                                                | Eq. 12        |
 * | score FLOPs, prototype    | low 2·B·H·L·r·hd, full 2·B·H·L²·hd                                               | prototype     |
 * | score FLOPs, factored     | min(2·B·H·(L²r + Lr² + r²hd), 2·B·H·L²·hd): U_q·(Σ_q V_qᵀV_k Σ_k)·U_kᵀ            | design choice |
 *
 * The attention-output bound chains ‖ΔS‖_F ≤ ‖ΔQ‖_F‖K_r‖₂ + ‖Q‖₂‖ΔK‖_F for the scores S = QKᵀ/√hd, the
 * softmax's Lipschitz constant ½ per row (its Jacobian diag(p) − ppᵀ has eigenvalues ≤ max 2p_i(1 − p_i) ≤ ½;
 * masked columns do not move) and ‖ΔP·V‖_F ≤ ‖ΔP‖_F‖V‖_F; it holds for any rank, mask and input
 * (test/model/lowrank.test.ts checks it on random matrices; it is loose, within a factor ~75 of the truth at
 * best there). Eq. 9 bounds A·V for a perturbed A; with ΔA taken from the spectra of the truncated Q and K it says
 * nothing about the attention output, so the guard uses this bound instead (design choice).
 *
 * `RankedForward` runs a `CausalLM` one layer at a time with a rank per layer: it exposes each layer's spectra
 * before the rank is chosen (the decomposition is needed for the truncation anyway, so features read from it
 * cost nothing extra), then applies the rank, measures the fidelity against the full-rank output of the same
 * layer input, and carries the low-rank stream on. The truncated matrices are reconstructed and attended
 * densely: the numbers are those of the factored evaluation, the FLOPs are counted for it (wall time is not
 * what is measured).
 * @module
 */
import { CohortError } from "../errors.js";
import { arange, embedding, keep, linear, noGrad, type Svd, svd, type Tensor, tensor, tidy } from "../tensor/index.js";
import { CausalLM } from "./llama.js";

// ---- pure components (ALGORITHMS.md §F.4 test vectors in test/model/lowrank.test.ts) ------------------

/** M_r = U[..., :r] diag(S[..., :r]) Vh[..., :r, :] for every matrix of the batch; r ≥ k gives M back. */
export function truncate(f: Svd, r: number): Tensor {
  const k = f.S.shape[f.S.ndim - 1] as number;
  if (!Number.isInteger(r) || r < 1) throw new CohortError(`truncate: rank must be an integer ≥ 1, got ${r}`);
  const rr = Math.min(r, k);
  return tidy(() =>
    f.U.narrow(-1, 0, rr)
      .mul(f.S.narrow(-1, 0, rr).unsqueeze(-2))
      .matmul(f.Vh.narrow(-2, 0, rr)),
  );
}

/**
 * The incremental rank update: from M_r (the rank-r truncation of the matrices `f` factorises) to M_r′ by adding
 * (r′ > r) or removing (r′ < r) the triplets σ_k u_k v_kᵀ, k ∈ (min, max] — O(m·n·|r′ − r|) per matrix, no
 * decomposition.
 */
export function rankUpdate(Mr: Tensor, f: Svd, r: number, r2: number): Tensor {
  const k = f.S.shape[f.S.ndim - 1] as number;
  const lo = Math.min(Math.min(r, r2), k);
  const hi = Math.min(Math.max(r, r2), k);
  if (hi === lo) return tidy(() => Mr.clone());
  return tidy(() => {
    const d = f.U.narrow(-1, lo, hi - lo)
      .mul(f.S.narrow(-1, lo, hi - lo).unsqueeze(-2))
      .matmul(f.Vh.narrow(-2, lo, hi - lo)); // [..., m, n]
    return r2 > r ? Mr.add(d) : Mr.sub(d);
  });
}

/** Eq. 8: ‖M_r′ − M_r‖_F = sqrt(Σ_{k=min(r,r′)+1}^{max(r,r′)} σ_k²) of one spectrum σ (descending). */
export function rankChangeNorm(sigma: ArrayLike<number>, r: number, r2: number): number {
  const lo = Math.min(r, r2, sigma.length);
  const hi = Math.min(Math.max(r, r2), sigma.length);
  let s = 0;
  for (let k = lo; k < hi; k++) s += (sigma[k] as number) ** 2;
  return Math.sqrt(s);
}

/** Normalised energy ratio Σ_{k≤r} σ_k² / Σ_k σ_k² (1 for an all-zero spectrum). */
export function energyRatio(sigma: ArrayLike<number>, r: number): number {
  let top = 0;
  let all = 0;
  for (let k = 0; k < sigma.length; k++) {
    const e = (sigma[k] as number) ** 2;
    all += e;
    if (k < r) top += e;
  }
  return all > 0 ? top / all : 1;
}

/** Eq. 9: the output sensitivity ‖ΔA‖·‖V‖_F. */
export function outputSensitivity(deltaA: number, vFrobenius: number): number {
  return deltaA * vFrobenius;
}

/**
 * Bound on ‖softmax(Q_r K_rᵀ/√hd + mask)·V − softmax(QKᵀ/√hd + mask)·V‖_F for one head (see the module table):
 * `dQ`, `dK` the truncation norms ‖Q − Q_r‖_F, ‖K − K_r‖_F, `q1`, `k1` the largest singular values of Q and K.
 */
export function attentionOutputBound(
  p: { dQ: number; dK: number; q1: number; k1: number; vFrobenius: number },
  headDim: number,
): number {
  return (0.5 * (p.dQ * p.k1 + p.q1 * p.dK) * p.vFrobenius) / Math.sqrt(headDim);
}

/** Mean over rows of the cosine similarity of a [T, D] and b [T, D] (a zero row pair counts as 1). */
export function meanTokenCosine(a: Tensor, b: Tensor): number {
  return noGrad(() =>
    tidy(() => {
      const dot = a.mul(b).sum(-1); // [T]
      const na = a.square().sum(-1).sqrt(); // [T]
      const nb = b.square().sum(-1).sqrt(); // [T]
      const den = na.mul(nb);
      const zero = den.le(0);
      const c = dot.div(den.clamp(1e-30, null)).maskedFill(zero, 1); // [T]
      return c.mean().to("f64").item();
    }),
  );
}

export interface RewardWeights {
  alpha: number;
  beta: number;
  gamma: number;
}

/** Eq. 12: R = α·cos − β·flops/flopUnit − γ·‖ΔA‖ (the prototype's unit is 1e9). */
export function drrlReward(
  x: { cos: number; flops: number; deltaA: number },
  w: RewardWeights,
  flopUnit = 1e9,
): number {
  return w.alpha * x.cos - (w.beta * x.flops) / flopUnit - w.gamma * x.deltaA;
}

export type FlopCount = "factored" | "prototype";

/**
 * FLOPs of the attention scores of B·H heads over L tokens at rank r (r ≥ hd: full rank). `prototype`: the
 * author's count (2·B·H·L·r·hd, full 2·B·H·L²·hd); `factored`: U_q·(Σ_q V_qᵀ V_k Σ_k)·U_kᵀ, never more than
 * the dense product of the reconstructed matrices.
 */
export function scoreFlops(o: { B: number; H: number; L: number; headDim: number; rank: number }, count: FlopCount) {
  const { B, H, L, headDim: hd } = o;
  const full = 2 * B * H * L * L * hd;
  const r = Math.min(o.rank, hd, L);
  if (r >= Math.min(hd, L) && o.rank >= hd) return full;
  if (count === "prototype") return 2 * B * H * L * r * hd;
  return Math.min(full, 2 * B * H * (L * L * r + L * r * r + r * r * hd));
}

/**
 * FLOPs of one forward of the whole model over L tokens with the given score FLOPs per layer: projections
 * (q, k, v, o), the MLP, attention-weighted values (2·H·L²·hd per layer) and lm_head; norms and softmax left
 * out. For reporting the share of the model's work the ranks change.
 */
export function modelFlops(c: CausalLM["config"], L: number, scorePerLayer: number[]): number {
  const D = c.hiddenSize;
  const hd = c.headDim;
  const H = c.numAttentionHeads;
  const Hkv = c.numKeyValueHeads;
  const proj = 2 * L * D * (H * hd + 2 * Hkv * hd) + 2 * L * H * hd * D;
  const mlp = 2 * L * D * c.intermediateSize * 3;
  const pv = 2 * H * L * L * hd;
  const head = 2 * L * D * c.vocabSize;
  return scorePerLayer.reduce((a, s) => a + s + proj + mlp + pv, 0) + head;
}

// ---- the layer-by-layer forward ---------------------------------------------------------------------

/** A layer's queries and keys (after RoPE), their factorisations and spectra, before a rank is chosen. */
export interface LayerSpectra {
  /** σ of every query head [H][k] and key head [Hkv][k], k = min(T, hd), descending. */
  sq: Float64Array[];
  sk: Float64Array[];
  /** ‖V‖_F of each key/value head. */
  vNorm: Float64Array;
}

export interface LayerOutcome {
  /** The rank applied (the chosen one, or raised by the guard). */
  rank: number;
  /** Mean token cosine of the layer's attention output (after o_proj) against full rank on the same input. */
  cos: number;
  /** Relative truncation error sqrt(Σ_heads ‖Q − Q_r‖² + ‖K − K_r‖²) / sqrt(Σ ‖Q‖² + ‖K‖²). */
  truncation: number;
  /** The largest attention-output bound over the heads, divided by that head's ‖V‖_F. */
  bound: number;
}

interface Current {
  q: Tensor;
  k: Tensor;
  v: Tensor;
  fq: Svd;
  fk: Svd;
  spectra: LayerSpectra;
}

/**
 * One sequence through a `CausalLM`, one layer per `step(rank)`. After `spectra()` of layer l the caller picks
 * a rank; `step` applies it and moves to layer l + 1. Owns its tensors: `dispose()` when done.
 */
export class RankedForward {
  readonly T: number;
  layer = 0;
  #x: Tensor; // [1, T, D] the residual stream entering `layer`
  readonly #cos: Tensor; // [1, 1, T, hd]
  readonly #sin: Tensor;
  readonly #mask: Tensor; // [1, 1, T, T]
  #cur: Current | null = null;

  constructor(
    readonly model: CausalLM,
    ids: readonly number[],
  ) {
    const T = ids.length;
    if (T < 2) throw new CohortError("RankedForward: a sequence needs at least 2 tokens");
    if (T > model.config.maxPositionEmbeddings)
      throw new CohortError(
        `RankedForward: ${T} tokens, more than the model's ${model.config.maxPositionEmbeddings} positions`,
      );
    this.T = T;
    const [x, cos, sin, mask] = noGrad(() =>
      tidy(() => {
        const idT = tensor(Int32Array.from(ids), { shape: [1, T], dtype: "i64" });
        const pos = arange(0, T, 1).unsqueeze(0); // [1, T]
        const [c, s] = model.ropeAt(pos, T); // [1, 1, T, hd]
        const m = CausalLM.attentionMask(null, 1, T); // [1, 1, T, T]
        return [embedding(model.embedTokens, idT), c.clone(), s.clone(), m.contiguous()]; // [1, T, D] …
      }),
    );
    this.#x = keep(x as Tensor);
    this.#cos = keep(cos as Tensor);
    this.#sin = keep(sin as Tensor);
    this.#mask = keep(mask as Tensor);
  }

  get layers(): number {
    return this.model.layers.length;
  }

  /** The normed input of the current layer [1, T, D] (owned by the enclosing scope). */
  layerInput(): Tensor {
    return this.model.norm(this.#x, (this.model.layers[this.layer] as (typeof this.model.layers)[number]).inputNorm);
  }

  /** The current layer's spectra (computed once per layer: one batched SVD of Q and one of K). */
  spectra(): LayerSpectra {
    if (this.#cur) return this.#cur.spectra;
    if (this.layer >= this.layers) throw new CohortError("RankedForward: every layer has run");
    const m = this.model;
    const c = m.config;
    const L = m.layers[this.layer] as (typeof m.layers)[number];
    const T = this.T;
    const cur = noGrad(() =>
      tidy(() => {
        const h = this.layerInput(); // [1, T, D]
        const q = CausalLM.rope(
          m.proj(L.names.q, h, L.q, L.qBias).view(1, T, c.numAttentionHeads, c.headDim).transpose(1, 2),
          this.#cos,
          this.#sin,
        ).contiguous(); // [1, H, T, hd]
        const k = CausalLM.rope(
          m.proj(L.names.k, h, L.k, L.kBias).view(1, T, c.numKeyValueHeads, c.headDim).transpose(1, 2),
          this.#cos,
          this.#sin,
        ).contiguous(); // [1, Hkv, T, hd]
        const v = m.proj(L.names.v, h, L.v, L.vBias).view(1, T, c.numKeyValueHeads, c.headDim).transpose(1, 2); // [1, Hkv, T, hd]
        const fq = svd(q); // U [1, H, T, k], S [1, H, k], Vh [1, H, k, hd]
        const fk = svd(k); // U [1, Hkv, T, k], S [1, Hkv, k], Vh [1, Hkv, k, hd]
        const vn = v.square().sum([2, 3]).sqrt().reshape(-1); // [Hkv]
        const keepAll = (f: Svd): Svd => ({ U: keep(f.U), S: keep(f.S), Vh: keep(f.Vh) });
        return {
          q: keep(q),
          k: keep(k),
          v: keep(v.contiguous()),
          fq: keepAll(fq),
          fk: keepAll(fk),
          sq: fq.S.to("f64").data() as Float64Array,
          sk: fk.S.to("f64").data() as Float64Array,
          vn: Float64Array.from(vn.to("f64").data() as Float64Array),
        };
      }),
    );
    const kq = Math.min(T, c.headDim);
    const rows = (s: Float64Array, n: number) => Array.from({ length: n }, (_, i) => s.slice(i * kq, (i + 1) * kq));
    const spectra: LayerSpectra = {
      sq: rows(cur.sq, c.numAttentionHeads),
      sk: rows(cur.sk, c.numKeyValueHeads),
      vNorm: cur.vn,
    };
    this.#cur = { q: cur.q, k: cur.k, v: cur.v, fq: cur.fq, fk: cur.fk, spectra };
    return spectra;
  }

  /** Attention-output bound (÷ ‖V‖_F, the worst head) and relative truncation error of rank r at this layer. */
  boundAt(r: number): { bound: number; truncation: number } {
    const s = this.spectra();
    const c = this.model.config;
    const group = c.numAttentionHeads / c.numKeyValueHeads;
    const full = c.headDim;
    let bound = 0;
    let err = 0;
    let all = 0;
    s.sq.forEach((sq, h) => {
      const sk = s.sk[Math.floor(h / group)] as Float64Array;
      const dQ = rankChangeNorm(sq, r, full);
      const dK = rankChangeNorm(sk, r, full);
      bound = Math.max(
        bound,
        attentionOutputBound({ dQ, dK, q1: sq[0] ?? 0, k1: sk[0] ?? 0, vFrobenius: 1 }, c.headDim),
      );
      err += dQ * dQ;
      all += rankChangeNorm(sq, 0, full) ** 2;
    });
    for (const sk of s.sk) {
      err += rankChangeNorm(sk, r, full) ** 2;
      all += rankChangeNorm(sk, 0, full) ** 2;
    }
    return { bound, truncation: all > 0 ? Math.sqrt(err / all) : 0 };
  }

  /**
   * Applies rank `rank` to this layer's queries and keys (raised through `guard.ranks`, one incremental update
   * at a time, while the output bound exceeds `guard.epsilon`), runs the layer on the low-rank stream and
   * returns the fidelity against full rank on the same input.
   */
  step(rank: number, guard?: { epsilon: number; ranks: readonly number[] }): LayerOutcome {
    this.spectra();
    const cur = this.#cur as Current;
    const m = this.model;
    const L = m.layers[this.layer] as (typeof m.layers)[number];
    const T = this.T;
    let r = rank;
    let b = this.boundAt(r);
    const out = noGrad(() =>
      tidy(() => {
        let qr = truncate(cur.fq, r); // [1, H, T, hd]
        let kr = truncate(cur.fk, r); // [1, Hkv, T, hd]
        if (guard) {
          for (const next of guard.ranks) {
            if (next <= r || b.bound <= guard.epsilon) continue;
            qr = rankUpdate(qr, cur.fq, r, next); // incremental: add the triplets r+1..next
            kr = rankUpdate(kr, cur.fk, r, next);
            r = next;
            b = this.boundAt(r);
          }
        }
        const oProj = (a: Tensor) => m.proj(L.names.o, a.transpose(1, 2).reshape(1, T, -1), L.o); // [1, T, D]
        const full = oProj(m.attend(cur.q, cur.k, cur.v, this.#mask)); // [1, T, D]
        const low = oProj(m.attend(qr, kr, cur.v, this.#mask)); // [1, T, D]
        const fidelity = meanTokenCosine(full.reshape(T, -1), low.reshape(T, -1));
        let x = this.#x.add(low); // [1, T, D]
        x = x.add(m.mlp(L, m.norm(x, L.postNorm))); // [1, T, D]
        return { x: keep(x), fidelity };
      }),
    );
    this.#x.dispose();
    this.#x = out.x;
    this.#release();
    this.layer++;
    return { rank: r, cos: out.fidelity, truncation: b.truncation, bound: b.bound };
  }

  /** Next-token predictions after the last layer: argmax ids [T] (position t predicts token t + 1). */
  argmax(): Int32Array {
    if (this.layer < this.layers) throw new CohortError("RankedForward: run every layer first");
    return noGrad(() =>
      tidy(() => {
        const h = this.model.norm(this.#x, this.model.finalNorm); // [1, T, D]
        const logits = linear(h, this.model.outputWeight); // [1, T, V]
        return Int32Array.from(logits.argmax(-1).reshape(-1).to("i64").toArray());
      }),
    );
  }

  #release(): void {
    const cur = this.#cur;
    if (!cur) return;
    for (const t of [cur.q, cur.k, cur.v, cur.fq.U, cur.fq.S, cur.fq.Vh, cur.fk.U, cur.fk.S, cur.fk.Vh]) t.dispose();
    this.#cur = null;
  }

  dispose(): void {
    this.#release();
    for (const t of [this.#x, this.#cos, this.#sin, this.#mask]) t.dispose();
  }
}
