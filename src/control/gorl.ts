/**
 * GoRL — generative online RL (arXiv 2512.02581) [CODE]: a latent Gaussian policy optimised by the loop's
 * policy-gradient machinery (PPO / group-relative, on latent actions with tractable log-probs) and a
 * conditional flow-matching decoder that maps the latent to the action, trained without action likelihoods.
 *
 * | quantity              | formula (ALGORITHMS.md §E.3)                                                            |
 * |-----------------------|-----------------------------------------------------------------------------------------|
 * | latent policy         | z ~ N(μ_θ(s), σ_θ²) (dim z = dim a), log π(z|s) exact (GaussianMLP, unsquashed)           |
 * | time embedding        | e(t) = [cos(t·2^j)]_{j=0..3} ‖ [sin(t·2^j)]_{j=0..3}                                     |
 * | velocity              | v_φ(ŝ, x, e(t)): SiLU MLP on [ŝ ‖ x ‖ e(t)], ŝ = (s − mean)/std of the decoder's data     |
 * | decode                | x ← z at t = 1; N Euler steps t_i = 1 − i/N: x ← x − (1/N)·v_φ(ŝ, x, e(t_i)); a_pre = x   |
 * | env action            | a = c + h·tanh(a_pre) in the action box [c − h, c + h]                                   |
 * | identity decoder      | before the first fit a_pre = z (the run is a tanh-Gaussian policy)                       |
 * | decoder loss          | x_t = t·ε + (1 − t)·a_pre, L = mean (v_φ(ŝ, x_t, e(t)) − (ε − a_pre))², ε ~ N(0, I),     |
 * |                       | t ~ U(0, 1), `draws` pairs (ε, t) per (s, a_pre); ε is fresh noise, not the z that acted |
 * | two timescales        | latent policy: every step (the loop's update); decoder: refit every K = `decoderEvery`   |
 * |                       | steps on the (s, a_pre) of the last `collect` steps' rollouts, then (resetLatent) a fresh |
 * |                       | latent policy whose z ≈ N(0, σ₀²) reproduces the fitted action distribution             |
 *
 * Design choices (ours, where the authors' code differs or is larger): the decoder's data are the *elite*
 * episodes of each group (the top ⌈elite·G⌉ by return; the code uses every rollout, elite = 1) — "high-return
 * data" without any likelihood; stages are K steps of the loop instead of tens of millions of environment steps;
 * each refit trains a fresh decoder for `steps` Adam steps on minibatches of `batch` pairs (the code: 50 epochs
 * with a validation split, best checkpoint kept); the decoder is not frozen into the critic's view (the critic is
 * kept across refits, the code restarts it with the encoder); the latent regulariser c_z(μ² + σ²) is not applied;
 * on a latent restart the run's AdamW moments of the latent parameters are zeroed but its step count goes on (so
 * the bias correction is ≈ 1 and the first updates after a restart are up to ~3× lr per coordinate).
 *
 * Checkpoints: the decoder (weights, its data's obs statistics, the active flag) and the collection buffer are
 * named tensors of the run (`gorl.decoder.*`, `gorl.buffer.*`), so a resume inside a stage is exact; every
 * random draw of a refit comes from a generator seeded by (run seed, step).
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import { AdamW, cat, type DType, noGrad, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import { requestSeed } from "../train/sources.js";
import { type ActionSpace, GaussianMLP, gaussian, type Policy, type PolicySnapshot, type Sampled } from "./policy.js";

/** The `policy.decoder` section (kind gorl). */
export const gorlDecoderSchema = z.strictObject({
  /** K: steps between decoder refits (the slow timescale). */
  decoderEvery: z.number().int().min(1).default(10),
  /** The last `collect` steps of each stage give the decoder's data (≤ decoderEvery). */
  collect: z.number().int().min(1).default(2),
  /** Fraction of each group's episodes (by return) kept as decoder data. */
  elite: z.number().gt(0).max(1).default(0.5),
  /** Hidden widths of the velocity MLP (SiLU). */
  hidden: z.array(z.number().int().positive()).default([64, 64]),
  /** Adam steps per refit. */
  steps: z.number().int().min(1).default(300),
  /** (s, a_pre) pairs per Adam step (each with `draws` draws of ε and t). */
  batch: z.number().int().min(1).default(128),
  draws: z.number().int().min(1).default(8),
  lr: z.number().positive().default(1e-3),
  /** Euler steps of the decoding ODE. */
  euler: z.number().int().min(1).default(10),
  /** A fresh latent policy after each refit (the code's stage restart). */
  resetLatent: z.boolean().default(true),
});
export type GorlDecoderConfig = z.output<typeof gorlDecoderSchema>;

const EMB = 8;

/** e(t) [m, 8] for t [m, 1]: cos(t·2^j) for j = 0..3, then sin(t·2^j). */
export function timeEmbedding(t: Tensor): Tensor {
  return tidy(() => {
    const f = tensor([1, 2, 4, 8], { shape: [1, 4], dtype: t.dtype });
    const tf = t.mul(f); // [m, 4]
    return cat([tf.cos(), tf.sin()], 1); // [m, 8]
  });
}

/** The velocity network v_φ(ŝ, x, e(t)) and its decoding ODE. */
export class FlowDecoder {
  readonly obsDim: number;
  readonly dim: number;
  readonly dtype: DType;
  readonly euler: number;
  readonly layers: { w: Tensor; b: Tensor }[] = [];
  readonly obsMean: Tensor;
  readonly obsStd: Tensor;
  /** [1]: 0 = identity decoder (a_pre = z), 1 = fitted. */
  readonly active: Tensor;

  constructor(obsDim: number, dim: number, hidden: number[], opts: { dtype?: DType; euler?: number } = {}) {
    this.obsDim = obsDim;
    this.dim = dim;
    this.dtype = opts.dtype ?? "f32";
    this.euler = opts.euler ?? 10;
    const sizes = [obsDim + dim + EMB, ...hidden, dim];
    for (let l = 0; l + 1 < sizes.length; l++)
      this.layers.push({
        w: zeros([sizes[l] as number, sizes[l + 1] as number], { dtype: this.dtype }).requireGrad(true),
        b: zeros([sizes[l + 1] as number], { dtype: this.dtype }).requireGrad(true),
      });
    this.obsMean = zeros([obsDim], { dtype: this.dtype });
    this.obsStd = zeros([obsDim], { dtype: this.dtype }).add(1);
    this.active = zeros([1], { dtype: this.dtype });
  }

  parameters(): Tensor[] {
    return this.layers.flatMap(({ w, b }) => [w, b]);
  }
  named(): [string, Tensor][] {
    return [
      ...this.layers.flatMap(({ w, b }, l): [string, Tensor][] => [
        [`v.${l}.weight`, w],
        [`v.${l}.bias`, b],
      ]),
      ["obs_mean", this.obsMean],
      ["obs_std", this.obsStd],
      ["active", this.active],
    ];
  }
  isActive(): boolean {
    return noGrad(() => this.active.item()) === 1;
  }

  /** Fresh weights W ~ N(0, 1/fan_in), b = 0, from `rng`; the obs statistics of the data to fit. */
  init(rng: Rng, mean: Float64Array, std: Float64Array): void {
    noGrad(() =>
      tidy(() => {
        for (const { w, b } of this.layers) {
          const [fanIn, out] = w.shape as [number, number];
          const v = Float64Array.from({ length: fanIn * out }, () => gaussian(rng) / Math.sqrt(fanIn));
          w.copy_(tensor(v, { shape: [fanIn, out], dtype: this.dtype }));
          b.copy_(zeros([out], { dtype: this.dtype }));
        }
        this.obsMean.copy_(tensor(mean, { shape: [this.obsDim], dtype: this.dtype }));
        this.obsStd.copy_(tensor(std, { shape: [this.obsDim], dtype: this.dtype }));
      }),
    );
  }

  /** v_φ(ŝ, x, e(t)) [m, dim] for s [m, obsDim], x [m, dim], t [m, 1]. */
  velocity(s: Tensor, x: Tensor, t: Tensor): Tensor {
    const sn = s.to(this.dtype).sub(this.obsMean).div(this.obsStd); // [m, obsDim]
    let h = cat([sn, x.to(this.dtype), timeEmbedding(t.to(this.dtype))], 1); // [m, obsDim + dim + 8]
    this.layers.forEach(({ w, b }, l) => {
      h = h.matmul(w).add(b); // [m, width_l]
      if (l + 1 < this.layers.length) h = h.silu();
    });
    return h; // [m, dim]
  }

  /** a_pre [n, dim] from z [n, dim] at s [n, obsDim] (Euler from t = 1 to 0; z itself while inactive). */
  decode(s: Tensor, z: Tensor): Tensor {
    if (!this.isActive()) return z.to(this.dtype).clone();
    return tidy(() => {
      const n = z.shape[0] as number;
      let x = z.to(this.dtype); // [n, dim]
      const dt = 1 / this.euler;
      for (let i = 0; i < this.euler; i++) {
        const t = zeros([n, 1], { dtype: this.dtype }).add(1 - i * dt); // [n, 1]
        x = x.sub(this.velocity(s, x, t).mul(dt)); // [n, dim]
      }
      return x;
    });
  }

  /** L = mean over pairs and dims of (v_φ(ŝ, x_t, e(t)) − (ε − a))², x_t = t·ε + (1 − t)·a. */
  fmLoss(s: Tensor, a: Tensor, eps: Tensor, t: Tensor): Tensor {
    return tidy(() => {
      const aa = a.to(this.dtype); // [m, dim]
      const e = eps.to(this.dtype); // [m, dim]
      const tt = t.to(this.dtype); // [m, 1]
      const xt = tt.mul(e).add(tt.rsub(1).mul(aa)); // [m, dim]
      return this.velocity(s, xt, tt).sub(e.sub(aa)).square().mean(); // []
    });
  }

  dispose(): void {
    for (const p of [...this.parameters(), this.obsMean, this.obsStd, this.active]) p.dispose();
  }
}

/** What a GoRL refit needs of one step's episodes (run.ts EpisodeBatch). */
export interface GorlEpisodes {
  n: number;
  T: number;
  obs: Float64Array; // [n, T, obsDim]
  raw: Float64Array; // [n, T, dim] (the latents z)
  lengths: Int32Array;
  returns: Float64Array;
  groupIndex: Int32Array;
}

export interface GorlOptions {
  hidden?: number[];
  std?: "state" | "learned" | "fixed";
  /** σ₀ of the latent policy (the code's fresh encoder: softplus(0) = ln 2). */
  initStd?: number;
  bounds: { low: number[]; high: number[] };
  decoder: GorlDecoderConfig;
  /** Rows a step's rollouts can hold (episodes × horizon): the size of one block of the collection buffer. */
  rowsPerStep: number;
  dtype?: DType;
}

/** A latent Gaussian policy with a flow-matching decoder; log-probs and KL are those of the latent z. */
export class GorlPolicy implements Policy {
  readonly kind = "gorl" as const;
  readonly obsDim: number;
  readonly action: ActionSpace;
  readonly latent: GaussianMLP;
  readonly decoder: FlowDecoder;
  readonly cfg: GorlDecoderConfig;
  readonly squash: { c: Float64Array; h: Float64Array };
  readonly dtype: DType;
  readonly #latentOpts: ConstructorParameters<typeof GaussianMLP>[2];
  readonly rowsPerStep: number;
  /** The collection buffer: `collect` blocks of rowsPerStep rows. */
  readonly buffer: { obs: Tensor; act: Tensor; keep: Tensor };

  constructor(obsDim: number, dim: number, o: GorlOptions) {
    this.obsDim = obsDim;
    this.action = { kind: "continuous", dim };
    this.dtype = o.dtype ?? "f32";
    this.cfg = o.decoder;
    if (this.cfg.collect > this.cfg.decoderEvery)
      throw new CohortError(
        `policy.decoder.collect (${this.cfg.collect}) must be ≤ decoderEvery (${this.cfg.decoderEvery})`,
      );
    const { low, high } = o.bounds;
    if (low.length !== dim || high.length !== dim || low.some((l, j) => !(l < (high[j] as number))))
      throw new CohortError(`gorl policy bounds: need ${dim} pairs with low < high, got low ${low}, high ${high}`);
    this.squash = {
      c: Float64Array.from(low, (l, j) => (l + (high[j] as number)) / 2),
      h: Float64Array.from(low, (l, j) => ((high[j] as number) - l) / 2),
    };
    this.#latentOpts = {
      hidden: o.hidden ?? [64, 64],
      std: o.std ?? "learned",
      initStd: o.initStd ?? Math.LN2,
      dtype: this.dtype,
    };
    this.latent = new GaussianMLP(obsDim, dim, this.#latentOpts);
    this.decoder = new FlowDecoder(obsDim, dim, this.cfg.hidden, { dtype: this.dtype, euler: this.cfg.euler });
    this.rowsPerStep = o.rowsPerStep;
    const rows = this.cfg.collect * o.rowsPerStep;
    this.buffer = {
      obs: zeros([rows, obsDim], { dtype: "f32" }),
      act: zeros([rows, dim], { dtype: "f32" }),
      keep: zeros([rows], { dtype: "f32" }),
    };
  }

  sample(obs: Float64Array, rng: Rng, opts: { greedy?: boolean } = {}): Sampled {
    const s = this.latent.sample(obs, rng, opts); // raw = z, logprobs = log π(z|s)
    const n = obs.length / this.obsDim;
    const D = (this.action as { dim: number }).dim;
    const pre = this.decoder.isActive()
      ? noGrad(() =>
          tidy(
            () =>
              this.decoder
                .decode(
                  tensor(obs, { shape: [n, this.obsDim], dtype: this.dtype }),
                  tensor(s.raw, { shape: [n, D], dtype: this.dtype }),
                )
                .to("f64")
                .data() as Float64Array,
          ),
        )
      : s.raw;
    const actions = new Float64Array(n * D);
    for (let k = 0; k < n * D; k++) {
      const j = k % D;
      actions[k] = (this.squash.c[j] as number) + (this.squash.h[j] as number) * Math.tanh(pre[k] as number);
    }
    return { actions, raw: s.raw, logprobs: s.logprobs };
  }
  logProb(obs: Tensor, raw: Tensor, opts: { entropy?: boolean } = {}) {
    return this.latent.logProb(obs, raw, opts);
  }
  klTo(obs: Tensor, old: PolicySnapshot): Tensor {
    return this.latent.klTo(obs, old);
  }
  snapshot(obs: Tensor): PolicySnapshot {
    return this.latent.snapshot(obs);
  }
  namedParameters(): [string, Tensor][] {
    return this.latent.namedParameters().map(([n, t]): [string, Tensor] => [`latent.${n}`, t]);
  }
  parameters(): Tensor[] {
    return this.latent.parameters();
  }
  state(): Record<string, Tensor> {
    return Object.fromEntries(Object.entries(this.latent.state()).map(([n, t]) => [`latent.${n}`, t]));
  }
  load(state: Record<string, Tensor>): void {
    const own: Record<string, Tensor> = {};
    for (const [n, t] of Object.entries(state)) if (n.startsWith("latent.")) own[n.slice(7)] = t;
    this.latent.load(own);
  }
  /** The decoder's named tensors (exported with the policy). */
  decoderState(): [string, Tensor][] {
    return this.decoder.named().map(([n, t]): [string, Tensor] => [`decoder.${n}`, t]);
  }
  /** Everything a checkpoint holds besides the latent parameters: the decoder and the collection buffer. */
  slowState(): [string, Tensor][] {
    return [
      ...this.decoderState(),
      ["buffer.obs", this.buffer.obs],
      ["buffer.act", this.buffer.act],
      ["buffer.keep", this.buffer.keep],
    ];
  }

  /**
   * The slow timescale, after the loop's update of step `step` on `batch` (the rollouts of this step, sampled by
   * the decoder in use now): store the step's elite (s, a_pre) when it is one of the stage's last `collect` steps;
   * refit the decoder at the stage's end. `reset` = the latent policy was re-initialised (its optimizer moments
   * are stale).
   */
  afterUpdate(step: number, batch: GorlEpisodes, seed: number): { metrics: Record<string, number>; reset: boolean } {
    const K = this.cfg.decoderEvery;
    const C = this.cfg.collect;
    const pos = (step - 1) % K;
    const metrics: Record<string, number> = {};
    if (pos >= K - C) metrics["gorl/stored_pairs"] = this.#store(pos - (K - C), batch);
    if (pos !== K - 1) return { metrics, reset: false };
    Object.assign(metrics, this.refit(Rng.fromSeed(requestSeed(seed ^ 0x60e1, step, 1))));
    if (this.cfg.resetLatent) this.#resetLatent();
    return { metrics, reset: this.cfg.resetLatent };
  }

  /** Writes block `block` of the buffer: the elite episodes' (s, a_pre); returns the pairs kept. */
  #store(block: number, b: GorlEpisodes): number {
    const D = (this.action as { dim: number }).dim;
    const O = this.obsDim;
    // elite: the top ⌈elite·G⌉ episodes of each group by return (ties: the earlier episode)
    const groups = new Map<number, number[]>();
    for (let i = 0; i < b.n; i++) {
      const g = b.groupIndex[i] as number;
      if (!groups.has(g)) groups.set(g, []);
      groups.get(g)?.push(i);
    }
    const elite: number[] = [];
    for (const members of groups.values()) {
      const sorted = [...members].sort((x, y) => (b.returns[y] as number) - (b.returns[x] as number) || x - y);
      elite.push(...sorted.slice(0, Math.ceil(this.cfg.elite * members.length)));
    }
    elite.sort((x, y) => x - y);
    const rows: number[] = [];
    for (const i of elite) for (let t = 0; t < (b.lengths[i] as number); t++) rows.push(i * b.T + t);
    const m = Math.min(rows.length, this.rowsPerStep);
    const obs = new Float64Array(this.rowsPerStep * O);
    const z = new Float64Array(m * D);
    const keep = new Float64Array(this.rowsPerStep);
    for (let k = 0; k < m; k++) {
      const r = rows[k] as number;
      obs.set(b.obs.subarray(r * O, (r + 1) * O), k * O);
      z.set(b.raw.subarray(r * D, (r + 1) * D), k * D);
      keep[k] = 1;
    }
    // a_pre = decoder(z, s): the decoder has not changed since these actions were taken
    const pre =
      m === 0
        ? new Float64Array(0)
        : noGrad(() =>
            tidy(
              () =>
                this.decoder
                  .decode(
                    tensor(obs.subarray(0, m * O), { shape: [m, O], dtype: this.dtype }),
                    tensor(z, { shape: [m, D], dtype: this.dtype }),
                  )
                  .to("f64")
                  .data() as Float64Array,
            ),
          );
    const act = new Float64Array(this.rowsPerStep * D);
    act.set(pre);
    const off = block * this.rowsPerStep;
    noGrad(() =>
      tidy(() => {
        const put = (dst: Tensor, src: Float64Array, w: number) =>
          dst.sliceAssign_(
            0,
            off,
            tensor(src, { shape: w === 0 ? [this.rowsPerStep] : [this.rowsPerStep, w], dtype: "f32" }),
          );
        put(this.buffer.obs, obs, O);
        put(this.buffer.act, act, D);
        put(this.buffer.keep, keep, 0);
      }),
    );
    return m;
  }

  /** Fits a fresh decoder to the buffer's pairs by flow matching; its first and last losses. */
  refit(rng: Rng): Record<string, number> {
    const D = (this.action as { dim: number }).dim;
    const O = this.obsDim;
    const { obsAll, actAll, keep } = noGrad(() =>
      tidy(() => ({
        obsAll: this.buffer.obs.to("f64").data() as Float64Array,
        actAll: this.buffer.act.to("f64").data() as Float64Array,
        keep: this.buffer.keep.to("f64").data() as Float64Array,
      })),
    );
    const idx: number[] = [];
    keep.forEach((k, i) => {
      if (k === 1) idx.push(i);
    });
    const N = idx.length;
    if (N === 0) return { "gorl/decoder_pairs": 0 };
    const mean = new Float64Array(O);
    const sq = new Float64Array(O);
    for (const i of idx)
      for (let j = 0; j < O; j++) {
        const x = obsAll[i * O + j] as number;
        mean[j] = (mean[j] as number) + x / N;
        sq[j] = (sq[j] as number) + (x * x) / N;
      }
    const std = Float64Array.from(mean, (m, j) => {
      const v = (sq[j] as number) - m * m;
      return v > 1e-8 ? Math.sqrt(v) : 1;
    });
    this.decoder.init(rng, mean, std);
    const opt = new AdamW(this.decoder.parameters(), { lr: this.cfg.lr, weightDecay: 0 });
    const B = Math.min(this.cfg.batch, N);
    const M = B * this.cfg.draws;
    const losses: number[] = [];
    try {
      for (let it = 0; it < this.cfg.steps; it++) {
        const s = new Float64Array(M * O);
        const a = new Float64Array(M * D);
        const eps = new Float64Array(M * D);
        const t = new Float64Array(M);
        for (let p = 0; p < B; p++) {
          const i = idx[Math.floor(rng.float() * N)] as number;
          for (let d = 0; d < this.cfg.draws; d++) {
            const r = p * this.cfg.draws + d;
            s.set(obsAll.subarray(i * O, (i + 1) * O), r * O);
            a.set(actAll.subarray(i * D, (i + 1) * D), r * D);
            for (let j = 0; j < D; j++) eps[r * D + j] = gaussian(rng);
            t[r] = rng.float();
          }
        }
        opt.zeroGrad();
        tidy(() => {
          const loss = this.decoder.fmLoss(
            tensor(s, { shape: [M, O], dtype: this.dtype }),
            tensor(a, { shape: [M, D], dtype: this.dtype }),
            tensor(eps, { shape: [M, D], dtype: this.dtype }),
            tensor(t, { shape: [M, 1], dtype: this.dtype }),
          );
          losses.push(loss.item());
          loss.backward();
        });
        opt.step();
      }
    } finally {
      opt.zeroGrad();
      opt.dispose();
    }
    noGrad(() => tidy(() => this.decoder.active.copy_(zeros([1], { dtype: this.dtype }).add(1))));
    const tail = losses.slice(-Math.max(1, Math.floor(losses.length / 10)));
    return {
      "gorl/decoder_pairs": N,
      "gorl/decoder_loss_start": losses[0] as number,
      "gorl/decoder_loss": tail.reduce((x, y) => x + y, 0) / tail.length,
    };
  }

  /** A fresh latent policy (drawn from the torch generator, which checkpoints hold). */
  #resetLatent(): void {
    const fresh = new GaussianMLP(this.obsDim, (this.action as { dim: number }).dim, this.#latentOpts);
    const st = fresh.state();
    try {
      this.latent.load(st);
    } finally {
      for (const t of Object.values(st)) t.dispose();
      fresh.dispose();
    }
  }

  dispose(): void {
    this.latent.dispose();
    this.decoder.dispose();
    for (const t of Object.values(this.buffer)) t.dispose();
  }
}
