/**
 * The flow-matching generator as a control `Policy` (src/control/policy.ts) whose episode is the denoising
 * trajectory: the observation is [x_t (64 pixels), t = σ_j, t' = σ_{j+1}, class c] (67 values), the action is
 * the next latent x_{t'} (64 values), drawn from Flow-GRPO's SDE step (velocity.ts, ALGORITHMS.md §F.1):
 *
 *   x' ~ N(mean, std²·I),  mean = xCoef(t, t')·x + vCoef(t, t')·v_θ(x, t, c),  std = std_t·sqrt(t − t')
 *
 * so every step has a Gaussian log-prob that is differentiable in θ through v_θ only (std depends on the
 * schedule and the noise level a). `logprob: "mean"` reduces it over the 64 pixels by the mean, as Flow-GRPO's
 * code does (the ratio is then a per-pixel geometric mean, hence its clip range 1e-4); `"sum"` gives the exact
 * joint log-density. A greedy draw is the deterministic Euler (ODE) step x' = x + v·(t' − t), Flow-GRPO's
 * evaluation sampler (noise level 0).
 * @module
 */
// arXiv 2505.05470 [CODE]

import { type ActionSpace, gaussian, type Policy, type PolicySnapshot, type Sampled } from "../control/policy.js";
import { CohortError } from "../errors.js";
import type { Rng } from "../task/rng.js";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/index.js";
import { PIXELS } from "./digits.js";
import { coefficientColumns, LOG_2PI, sdeCoefficients, type VelocityNet } from "./velocity.js";

export const FLOW_OBS_DIM = PIXELS + 3;

export interface FlowSdeOptions {
  /** Flow-GRPO's noise level a (0.7 in its code); > 0. */
  noiseLevel?: number;
  /** Reduction of the per-pixel log-densities: `mean` (Flow-GRPO's code) or `sum`. */
  logprob?: "mean" | "sum";
}

export class FlowSdePolicy implements Policy {
  readonly kind = "flow_sde" as const;
  readonly obsDim = FLOW_OBS_DIM;
  readonly action: ActionSpace = { kind: "continuous", dim: PIXELS };
  readonly net: VelocityNet;
  readonly noiseLevel: number;
  readonly reduce: "mean" | "sum";
  /** With `projectAhead`, every sample call also projects its draws (one batched forward) for `projectAction`. */
  projectAhead = false;
  #ahead: { buffer: ArrayBufferLike; values: Float64Array } | null = null;

  constructor(net: VelocityNet, o: FlowSdeOptions = {}) {
    this.net = net;
    this.noiseLevel = o.noiseLevel ?? 0.7;
    if (!(this.noiseLevel > 0))
      throw new CohortError(`policy.sde.noiseLevel must be > 0 for a log-prob, got ${this.noiseLevel}`);
    this.reduce = o.logprob ?? "mean";
  }

  /** Splits obs [n, 67] into x [n, 64], t [n], t' [n] (host copies) and c [n] (i64 tensor). */
  #split(obs: Tensor): { x: Tensor; t: Float64Array; next: Float64Array; tt: Tensor; c: Tensor } {
    const n = obs.shape[0] as number;
    const sched = tidy(() => obs.narrow(1, PIXELS, 2).to("f64").data() as Float64Array);
    const t = Float64Array.from({ length: n }, (_, i) => sched[2 * i] as number);
    const next = Float64Array.from({ length: n }, (_, i) => sched[2 * i + 1] as number);
    return {
      x: obs.narrow(1, 0, PIXELS).to(this.net.dtype),
      t,
      next,
      tt: obs.select(1, PIXELS).to(this.net.dtype),
      c: obs
        .select(1, PIXELS + 2)
        .round()
        .to("i64"),
    };
  }

  /** mean [n, 64] (with gradient through v_θ) and log std [n, 1] of each row's SDE step. */
  dist(obs: Tensor): { mean: Tensor; logStd: Tensor } {
    return tidy(() => {
      const { x, t, next, tt, c } = this.#split(obs);
      const v = this.net.forward(x, tt, c); // [n, 64]
      const k = coefficientColumns(t, next, this.noiseLevel, this.net.dtype); // [n, 1] each
      return { mean: x.mul(k.xCoef).add(v.mul(k.vCoef)), logStd: k.logStd };
    });
  }

  sample(obs: Float64Array, rng: Rng, opts: { greedy?: boolean } = {}): Sampled {
    const n = obs.length / FLOW_OBS_DIM;
    const v = noGrad(() =>
      tidy(() => {
        const o = tensor(obs, { shape: [n, FLOW_OBS_DIM], dtype: "f64" });
        const { x, tt, c } = this.#split(o);
        return this.net.forward(x, tt, c).to("f64").data() as Float64Array;
      }),
    );
    const raw = new Float64Array(n * PIXELS);
    const logprobs = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const base = i * FLOW_OBS_DIM;
      const t = obs[base + PIXELS] as number;
      const next = obs[base + PIXELS + 1] as number;
      const k = sdeCoefficients(t, next, this.noiseLevel);
      let lp = 0;
      for (let j = 0; j < PIXELS; j++) {
        const x = obs[base + j] as number;
        const vj = v[i * PIXELS + j] as number;
        const mean = k.xCoef * x + k.vCoef * vj;
        const a = opts.greedy ? x + vj * (next - t) : mean + k.std * gaussian(rng);
        raw[i * PIXELS + j] = a;
        const z = (a - mean) / k.std;
        lp += -0.5 * z * z - Math.log(k.std) - 0.5 * LOG_2PI;
      }
      logprobs[i] = this.reduce === "mean" ? lp / PIXELS : lp;
    }
    const actions = Float64Array.from(raw);
    if (this.projectAhead) {
      const next = Float64Array.from({ length: n }, (_, i) => obs[i * FLOW_OBS_DIM + PIXELS + 1] as number);
      const c = Int32Array.from({ length: n }, (_, i) => Math.round(obs[i * FLOW_OBS_DIM + PIXELS + 2] as number));
      this.#ahead = { buffer: actions.buffer, values: this.project(actions, next, c) };
    } else this.#ahead = null;
    return { actions, raw, logprobs };
  }

  logProb(obs: Tensor, raw: Tensor, opts: { entropy?: boolean } = {}): { lp: Tensor; entropy?: Tensor } {
    return tidy(() => {
      const { mean, logStd } = this.dist(obs);
      const a = raw.to(this.net.dtype).reshape(...mean.shape);
      const z = a.sub(mean).div(logStd.exp()); // [n, 64]
      const dims = z
        .square()
        .mul(-0.5)
        .sub(logStd)
        .sub(0.5 * LOG_2PI); // [n, 64]
      const lp = this.reduce === "mean" ? dims.mean(1) : dims.sum(1); // [n]
      if (!opts.entropy) return { lp };
      // the Gaussian's entropy per pixel, log std + ½(1 + log 2π): a function of the schedule only
      const perPixel = logStd.reshape(-1).add(0.5 * (1 + LOG_2PI)); // [n]
      return { lp, entropy: this.reduce === "mean" ? perPixel : perPixel.mul(PIXELS) };
    });
  }

  snapshot(obs: Tensor): PolicySnapshot {
    return noGrad(() =>
      tidy(() => {
        const d = this.dist(obs);
        return { mean: d.mean.detach(), logStd: d.logStd.expand(...d.mean.shape).contiguous() };
      }),
    );
  }

  /** KL(π_θ ‖ π_old) per row: Σ or mean over pixels of (Δmean)²/(2·std²) (the std is shared). */
  klTo(obs: Tensor, old: PolicySnapshot): Tensor {
    if (!("mean" in old)) throw new CohortError("klTo: the snapshot is not of a Gaussian policy");
    return tidy(() => {
      const { mean, logStd } = this.dist(obs);
      const kl = mean.sub(old.mean).square().div(logStd.mul(2).exp().mul(2)); // [n, 64]
      return this.reduce === "mean" ? kl.mean(1) : kl.sum(1);
    });
  }

  /** x̂_0 = x − t·v_θ(x, t, c) of n latents [n·64] at flow times t [n] (no gradient): one Euler step to t = 0. */
  project(x: Float64Array, t: Float64Array, c: Int32Array): Float64Array {
    const n = t.length;
    return noGrad(() =>
      tidy(() => {
        const xt = tensor(x, { shape: [n, PIXELS], dtype: this.net.dtype });
        const tt = tensor(t, { shape: [n], dtype: this.net.dtype });
        const v = this.net.forward(xt, tt, tensor(c, { shape: [n], dtype: "i64" }));
        return Float64Array.from(
          xt
            .sub(v.mul(tt.reshape(-1, 1)))
            .to("f64")
            .data() as Float64Array,
        );
      }),
    );
  }

  /**
   * x̂_0 of one action (a row of the latest `sample` call's actions, as the environment received it) at flow
   * time t: read from the batched projection of that call when `projectAhead` is on, else computed.
   */
  projectAction(action: Float64Array, t: number, c: number): Float64Array {
    const a = this.#ahead;
    if (a !== null && action.buffer === a.buffer && action.length === PIXELS) {
      const row = action.byteOffset / Float64Array.BYTES_PER_ELEMENT;
      return a.values.subarray(row, row + PIXELS);
    }
    return this.project(Float64Array.from(action), Float64Array.of(t), Int32Array.of(c));
  }

  namedParameters(): [string, Tensor][] {
    return [...this.net.params];
  }
  parameters(): Tensor[] {
    return this.net.params.map(([, p]) => p);
  }
  state(): Record<string, Tensor> {
    return this.net.state();
  }
  load(state: Record<string, Tensor>): void {
    this.net.load(state);
  }
  dispose(): void {
    this.net.dispose();
  }
}
