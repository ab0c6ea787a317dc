/**
 * Stochastic policies that are not language models, behind one contract the training loop uses beside the
 * causal LM: sample actions for a batch of observations (with their log-probs), differentiable log-probs and
 * entropy of given actions, the trainable parameters, and named state for checkpoints.
 *
 * - `TabularSoftmax`: π(a|s) = softmax(θ[s]) over a table θ [S, A]; the observation is the state index.
 * - `CategoricalMLP`: logits = MLP(s) (tanh hidden layers).
 * - `GaussianMLP`: u ~ N(μ(s), σ²) with σ state-dependent (a second head), a learned state-independent
 *   vector, or fixed; optionally squashed a = c + h·tanh(u) into the action box [low, high] with the
 *   change-of-variables correction log π(a|s) = log N(u; μ, σ) − Σ_j log(h_j·(1 − tanh²u_j)).
 *
 * Actions cross as flat Float64Arrays: a discrete action is its index; a continuous one its `dim` values.
 * `sample` also returns the *raw* action the log-prob is a function of (the index, or the pre-squash u), which
 * is what a learner stores and passes back to `logProb`: no atanh of a saturated tanh is ever needed.
 *
 * Sampling draws from the distribution's parameters (computed without gradient) with a seeded `Rng`, so a
 * rollout is a function of the weights and the seed.
 * @module
 */
import { CohortError } from "../errors.js";
import type { Rng } from "../task/rng.js";
import { type DType, noGrad, randn, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";

export type PolicyKind = "tabular" | "categorical_mlp" | "gaussian_mlp" | "gorl" | "hyper_mlp" | "flow_sde";

export type ActionSpace = { kind: "discrete"; n: number } | { kind: "continuous"; dim: number };

export interface Sampled {
  /** What the environment receives: n actions (index, or `dim` values each), flat. */
  actions: Float64Array;
  /** What `logProb` takes: the index, or the pre-squash Gaussian sample u. Same layout as `actions`. */
  raw: Float64Array;
  /** log π(a|s) of each sampled action (length n), in float64. */
  logprobs: Float64Array;
}

export interface Policy {
  readonly kind: PolicyKind;
  /** Observation width (1 for a tabular policy: the state index). */
  readonly obsDim: number;
  readonly action: ActionSpace;
  /** One action per observation row; `obs` is n × obsDim, flat. */
  sample(obs: Float64Array, rng: Rng, opts?: { greedy?: boolean }): Sampled;
  /**
   * log π(raw|obs) [n] with gradient, and the entropy [n] (exact for categorical and unsquashed Gaussian
   * policies; for a squashed one the single-sample estimate −log π(a|s) at the given action).
   * `obs` [n, obsDim], `raw` [n] (indices) or [n, dim].
   */
  logProb(obs: Tensor, raw: Tensor, opts?: { entropy?: boolean }): { lp: Tensor; entropy?: Tensor };
  /**
   * KL(π_θ(·|s) ‖ π_old(·|s)) [n] in closed form where one exists (categorical; Gaussian before squashing,
   * which the tanh bijection leaves unchanged), π_old given by `old` (a snapshot from `snapshot()`).
   */
  klTo(obs: Tensor, old: PolicySnapshot): Tensor;
  /** The distribution parameters at `obs` without gradient (for `klTo`). */
  snapshot(obs: Tensor): PolicySnapshot;
  namedParameters(): [string, Tensor][];
  parameters(): Tensor[];
  /** Copies of the named parameters (owned by the caller). */
  state(): Record<string, Tensor>;
  load(state: Record<string, Tensor>): void;
  dispose(): void;
}

/** Distribution parameters of a batch of observations (logits, or mean and log-std). */
export type PolicySnapshot = { logits: Tensor } | { mean: Tensor; logStd: Tensor };

export function disposeSnapshot(s: PolicySnapshot): void {
  if ("logits" in s) s.logits.dispose();
  else {
    s.mean.dispose();
    s.logStd.dispose();
  }
}

const LOG_2PI = Math.log(2 * Math.PI);

/** A standard normal draw (Box–Muller on the run's own generator). */
export function gaussian(rng: Rng): number {
  let u = rng.float();
  while (u <= 0) u = rng.float();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.float());
}

/** Categorical draw from float64 log-probs. */
function drawIndex(logp: Float64Array, off: number, n: number, rng: Rng, greedy: boolean): number {
  if (greedy) {
    let best = 0;
    for (let a = 1; a < n; a++) if ((logp[off + a] as number) > (logp[off + best] as number)) best = a;
    return best;
  }
  let u = rng.float();
  for (let a = 0; a < n; a++) {
    u -= Math.exp(logp[off + a] as number);
    if (u < 0) return a;
  }
  return n - 1;
}

export abstract class Base {
  readonly dtype: DType;
  protected readonly params: [string, Tensor][] = [];

  constructor(dtype: DType) {
    this.dtype = dtype;
  }

  /** Registers a trainable tensor under `name`. */
  param(name: string, t: Tensor): Tensor {
    const p = t.requireGrad(true);
    this.params.push([name, p]);
    return p;
  }

  namedParameters(): [string, Tensor][] {
    return [...this.params];
  }
  parameters(): Tensor[] {
    return this.params.map(([, p]) => p);
  }
  state(): Record<string, Tensor> {
    return copyNamed(this.params);
  }
  load(state: Record<string, Tensor>): void {
    loadNamed(this.params, state, "policy");
  }
  dispose(): void {
    for (const [, p] of this.params) p.dispose();
  }
}

/** A policy over discrete actions defined by its logits: sampling, log-probs, snapshots and KL all read `logits`. */
export abstract class CategoricalBase extends Base {
  abstract readonly obsDim: number;
  abstract readonly action: ActionSpace;
  /** logits [n, A] of the observations obs [n, obsDim]. */
  abstract logits(obs: Tensor): Tensor;

  sample(obs: Float64Array, rng: Rng, opts: { greedy?: boolean } = {}): Sampled {
    const n = obs.length / this.obsDim;
    return sampleCategorical(
      () => this.logits(tensor(obs, { shape: [n, this.obsDim], dtype: this.dtype })),
      n,
      (this.action as { n: number }).n,
      rng,
      opts.greedy === true,
    );
  }
  logProb(obs: Tensor, raw: Tensor, opts: { entropy?: boolean } = {}) {
    return tidy(() => categoricalLogProb(this.logits(obs), raw, opts.entropy === true));
  }
  snapshot(obs: Tensor): PolicySnapshot {
    return noGrad(() => ({ logits: tidy(() => this.logits(obs).detach()) }));
  }
  klTo(obs: Tensor, old: PolicySnapshot): Tensor {
    return tidy(() => categoricalKl(this.logits(obs), old));
  }
}

/** Copies of named parameters (owned by the caller): a network's `state()`. */
export function copyNamed(params: readonly [string, Tensor][]): Record<string, Tensor> {
  return Object.fromEntries(params.map(([n, p]) => [n, noGrad(() => p.detach().clone())]));
}

/** Copies `state` into the named parameters (every name present, shapes equal; cast to the parameter's dtype). */
export function loadNamed(params: readonly [string, Tensor][], state: Record<string, Tensor>, what: string): void {
  noGrad(() => {
    for (const [n, p] of params) {
      const src = state[n];
      if (src === undefined) throw new CohortError(`${what} state lacks "${n}"`);
      if (src.shape.join(",") !== p.shape.join(","))
        throw new CohortError(`${what} state "${n}" has shape [${src.shape}], the ${what} [${p.shape}]`);
      tidy(() => p.copy_(src.dtype === p.dtype ? src : src.to(p.dtype)));
    }
  });
}

/** Log-softmax rows → categorical sampling (shared by the tabular and MLP policies). */
export function sampleCategorical(logits: () => Tensor, n: number, A: number, rng: Rng, greedy: boolean): Sampled {
  const logp = noGrad(() => tidy(() => logits().logSoftmax(-1).to("f64").data() as Float64Array));
  const actions = new Float64Array(n);
  const logprobs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const a = drawIndex(logp, i * A, A, rng, greedy);
    actions[i] = a;
    logprobs[i] = logp[i * A + a] as number;
  }
  return { actions, raw: Float64Array.from(actions), logprobs };
}

export function categoricalLogProb(logits: Tensor, raw: Tensor, entropy: boolean): { lp: Tensor; entropy?: Tensor } {
  const logp = logits.logSoftmax(-1);
  const idx = raw.reshape(-1, 1).to("i64");
  const lp = logp.gather(1, idx).squeeze(1);
  if (!entropy) return { lp };
  return { lp, entropy: logp.exp().mul(logp).sum(1).neg() };
}

export function categoricalKl(logits: Tensor, old: PolicySnapshot): Tensor {
  if (!("logits" in old)) throw new CohortError("klTo: the snapshot is not of a categorical policy");
  const lp = logits.logSoftmax(-1);
  const lq = old.logits.logSoftmax(-1);
  return lp.exp().mul(lp.sub(lq)).sum(1);
}

/** π(a|s) = softmax(θ[s]): a table of logits, zero-initialised (the uniform policy). */
export class TabularSoftmax extends CategoricalBase implements Policy {
  readonly kind = "tabular" as const;
  readonly obsDim = 1;
  readonly action: ActionSpace;
  readonly theta: Tensor;
  readonly states: number;

  constructor(states: number, actions: number, opts: { dtype?: DType } = {}) {
    super(opts.dtype ?? "f32");
    this.states = states;
    this.action = { kind: "discrete", n: actions };
    this.theta = this.param("theta", zeros([states, actions], { dtype: this.dtype }));
  }

  logits(obs: Tensor): Tensor {
    return this.theta.indexSelect(0, obs.reshape(-1).to("i64"));
  }

  override sample(obs: Float64Array, rng: Rng, opts: { greedy?: boolean } = {}): Sampled {
    const n = obs.length;
    for (const s of obs)
      if (!Number.isInteger(s) || s < 0 || s >= this.states)
        throw new CohortError(`tabular policy: state ${s} is outside 0..${this.states - 1}`);
    const A = (this.action as { n: number }).n;
    return sampleCategorical(
      () => this.logits(tensor(obs, { shape: [n], dtype: "i64" })),
      n,
      A,
      rng,
      opts.greedy === true,
    );
  }
}

/** Layers of a tanh MLP: W [in, out] scaled 1/√in, b = 0; the last layer scaled by `outScale`. */
export function mlpLayers(
  self: { param(n: string, t: Tensor): Tensor },
  prefix: string,
  sizes: number[],
  dtype: DType,
  outScale: number,
): { w: Tensor; b: Tensor }[] {
  const out: { w: Tensor; b: Tensor }[] = [];
  for (let l = 0; l + 1 < sizes.length; l++) {
    const fanIn = sizes[l] as number;
    const scale = (l + 2 === sizes.length ? outScale : 1) / Math.sqrt(fanIn);
    const w = self.param(
      `${prefix}.${l}.weight`,
      noGrad(() => tidy(() => randn([fanIn, sizes[l + 1] as number], { dtype }).mul(scale))),
    );
    const b = self.param(`${prefix}.${l}.bias`, zeros([sizes[l + 1] as number], { dtype }));
    out.push({ w, b });
  }
  return out;
}

export function mlpForward(layers: { w: Tensor; b: Tensor }[], x: Tensor): Tensor {
  let h = x;
  layers.forEach(({ w, b }, l) => {
    h = h.matmul(w).add(b);
    if (l + 1 < layers.length) h = h.tanh();
  });
  return h;
}

export interface MlpOptions {
  /** Hidden layer widths (tanh). Default [64, 64]. */
  hidden?: number[];
  dtype?: DType;
}

/** logits = MLP(s). */
export class CategoricalMLP extends CategoricalBase implements Policy {
  readonly kind = "categorical_mlp" as const;
  readonly obsDim: number;
  readonly action: ActionSpace;
  readonly #net: { w: Tensor; b: Tensor }[];

  constructor(obsDim: number, actions: number, opts: MlpOptions = {}) {
    super(opts.dtype ?? "f32");
    this.obsDim = obsDim;
    this.action = { kind: "discrete", n: actions };
    this.#net = mlpLayers(this, "pi", [obsDim, ...(opts.hidden ?? [64, 64]), actions], this.dtype, 0.01);
  }
  logits(obs: Tensor): Tensor {
    return mlpForward(this.#net, obs.to(this.dtype));
  }
}

export interface GaussianOptions extends MlpOptions {
  /**
   * σ: `state` (a second head, log σ = MLP(s) clamped to [−20, 2]), `learned` (a state-independent log σ
   * vector, PPO's), `fixed` (the constant `initStd`).
   */
  std?: "state" | "learned" | "fixed";
  /** σ at initialisation (and always, with `fixed`). Default 1 (0.6 with squashing). */
  initStd?: number;
  /** The action box: squash with tanh into [low, high] (per dimension); absent: an unbounded Gaussian. */
  bounds?: { low: number[]; high: number[] };
}

const LOG_STD_MIN = -20;
const LOG_STD_MAX = 2;

/** u ~ N(μ(s), σ²), optionally a = c + h·tanh(u). */
export class GaussianMLP extends Base implements Policy {
  readonly kind = "gaussian_mlp" as const;
  readonly obsDim: number;
  readonly action: ActionSpace;
  readonly stdMode: "state" | "learned" | "fixed";
  readonly #net: { w: Tensor; b: Tensor }[];
  readonly #stdNet: { w: Tensor; b: Tensor }[] | null = null;
  readonly #logStd: Tensor | null = null;
  readonly #fixedLogStd: number;
  /** Squash centre c and half-width h per dimension, or null. */
  readonly squash: { c: Float64Array; h: Float64Array } | null;

  constructor(obsDim: number, dim: number, opts: GaussianOptions = {}) {
    super(opts.dtype ?? "f32");
    this.obsDim = obsDim;
    this.action = { kind: "continuous", dim };
    this.stdMode = opts.std ?? "learned";
    const hidden = opts.hidden ?? [64, 64];
    const initStd = opts.initStd ?? (opts.bounds ? 0.6 : 1);
    if (!(initStd > 0)) throw new CohortError(`policy.initStd must be > 0, got ${initStd}`);
    this.#fixedLogStd = Math.log(initStd);
    this.#net = mlpLayers(this, "mu", [obsDim, ...hidden, dim], this.dtype, 0.01);
    if (this.stdMode === "state") {
      this.#stdNet = mlpLayers(this, "log_std", [obsDim, ...hidden, dim], this.dtype, 0.01);
      // the head's bias starts at log initStd
      noGrad(() =>
        (this.#stdNet?.at(-1) as { b: Tensor }).b.copy_(
          tidy(() => zeros([dim], { dtype: this.dtype }).add(this.#fixedLogStd)),
        ),
      );
    } else if (this.stdMode === "learned") {
      this.#logStd = this.param("log_std", zeros([dim], { dtype: this.dtype }).add(this.#fixedLogStd));
    }
    if (opts.bounds) {
      const { low, high } = opts.bounds;
      if (low.length !== dim || high.length !== dim || low.some((l, j) => !(l < (high[j] as number))))
        throw new CohortError(`policy bounds: need ${dim} pairs with low < high, got low ${low}, high ${high}`);
      this.squash = {
        c: Float64Array.from(low, (l, j) => (l + (high[j] as number)) / 2),
        h: Float64Array.from(low, (l, j) => ((high[j] as number) - l) / 2),
      };
    } else this.squash = null;
  }

  /** μ [n, dim] and log σ [n, dim] (broadcast) at `obs`. */
  dist(obs: Tensor): { mean: Tensor; logStd: Tensor } {
    const x = obs.to(this.dtype);
    const mean = mlpForward(this.#net, x);
    let logStd: Tensor;
    if (this.#stdNet) logStd = mlpForward(this.#stdNet, x).clamp(LOG_STD_MIN, LOG_STD_MAX);
    else if (this.#logStd) logStd = this.#logStd.reshape(1, -1).expand(...mean.shape);
    else logStd = zeros(mean.shape, { dtype: this.dtype }).add(this.#fixedLogStd);
    return { mean, logStd };
  }

  sample(obs: Float64Array, rng: Rng, opts: { greedy?: boolean } = {}): Sampled {
    const n = obs.length / this.obsDim;
    const D = (this.action as { dim: number }).dim;
    const { mu, ls } = noGrad(() =>
      tidy(() => {
        const d = this.dist(tensor(obs, { shape: [n, this.obsDim], dtype: this.dtype }));
        return { mu: d.mean.to("f64").data() as Float64Array, ls: d.logStd.to("f64").data() as Float64Array };
      }),
    );
    const raw = new Float64Array(n * D);
    const actions = new Float64Array(n * D);
    const logprobs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let lp = 0;
      for (let j = 0; j < D; j++) {
        const k = i * D + j;
        const eps = opts.greedy ? 0 : gaussian(rng);
        const u = (mu[k] as number) + Math.exp(ls[k] as number) * eps;
        raw[k] = u;
        lp += -0.5 * eps * eps - (ls[k] as number) - 0.5 * LOG_2PI;
        if (this.squash) {
          const t = Math.tanh(u);
          actions[k] = (this.squash.c[j] as number) + (this.squash.h[j] as number) * t;
          lp -= Math.log(this.squash.h[j] as number) + logOneMinusTanh2(u);
        } else actions[k] = u;
      }
      logprobs[i] = lp;
    }
    return { actions, raw, logprobs };
  }

  logProb(obs: Tensor, raw: Tensor, opts: { entropy?: boolean } = {}) {
    return tidy(() => {
      const { mean, logStd } = this.dist(obs);
      const u = raw.to(this.dtype).reshape(...mean.shape);
      const z = u.sub(mean).div(logStd.exp());
      let lpDims = z
        .square()
        .mul(-0.5)
        .sub(logStd)
        .sub(0.5 * LOG_2PI);
      if (this.squash) {
        // log(h·(1 − tanh² u)) = log h + 2·(log 2 − u − softplus(−2u)), stable for large |u|
        lpDims = lpDims.sub(this.#squashLogDet(u));
      }
      const lp = lpDims.sum(1);
      if (!opts.entropy) return { lp };
      const entropy = this.squash ? lp.neg() : logStd.add(0.5 * (1 + LOG_2PI)).sum(1);
      return { lp, entropy };
    });
  }

  #squashLogDet(u: Tensor): Tensor {
    const sq = this.squash as { c: Float64Array; h: Float64Array };
    const logH = tensor(
      Float64Array.from(sq.h, (h) => Math.log(h)),
      { shape: [1, sq.h.length], dtype: this.dtype },
    );
    return logH.add(u.neg().add(Math.LN2).sub(u.mul(-2).softplus()).mul(2));
  }

  snapshot(obs: Tensor): PolicySnapshot {
    return noGrad(() =>
      tidy(() => {
        const d = this.dist(obs);
        return { mean: d.mean.detach(), logStd: d.logStd.detach() };
      }),
    );
  }

  /** KL(N(μ, σ²) ‖ N(μ_o, σ_o²)) summed over dimensions (the tanh bijection leaves KL unchanged). */
  klTo(obs: Tensor, old: PolicySnapshot): Tensor {
    if (!("mean" in old)) throw new CohortError("klTo: the snapshot is not of a Gaussian policy");
    return tidy(() => {
      const { mean, logStd } = this.dist(obs);
      const varRatio = logStd.sub(old.logStd).mul(2).exp();
      const d = mean.sub(old.mean).div(old.logStd.exp());
      return old.logStd.sub(logStd).add(varRatio.add(d.square()).sub(1).mul(0.5)).sum(1);
    });
  }
}

/** log(1 − tanh² u) = 2·(log 2 − u − softplus(−2u)), stable for large |u|. */
export function logOneMinusTanh2(u: number): number {
  const x = -2 * u;
  const softplus = x > 30 ? x : Math.log1p(Math.exp(x));
  return 2 * (Math.LN2 - u - softplus);
}
