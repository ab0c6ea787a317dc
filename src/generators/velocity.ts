/**
 * A small conditional velocity network for flow matching on 8×8 digits, and the sampling schedule with
 * Flow-GRPO's SDE step (ALGORITHMS.md §F.1).
 *
 * Flow time t ∈ [0, 1], t = 1 pure noise: x_t = (1 − t)·x_0 + t·ε, and the network learns v_θ(x_t, t, c) ≈ ε − x_0
 * (the rectified-flow target) by the mean squared error. Sampling walks a schedule σ_0 = 1 > σ_1 > … > σ_K = 0.
 *
 * | piece          | formula                                                                                   |
 * |----------------|-------------------------------------------------------------------------------------------|
 * | input          | [x (64), t, sin(2^k π t), cos(2^k π t) for k < 4, class embedding (16)] → 89 features   |
 * | network        | SiLU MLP 89 → H → H → H → 64 (H = 128 by default)                                         |
 * | schedule       | u_j = 1 − j/K, σ_j = shift·u_j / (1 + (shift − 1)·u_j)  (SD3's shifted sigmas)            |
 * | ODE step       | x' = x + v·Δt,  Δt = σ_{j+1} − σ_j < 0                                                    |
 * | SDE step       | std_t = a·sqrt(s / (1 − (s = 1 ? s' : s))),  s = σ_j, s' = σ_{j+1}                        |
 * |                | mean = x·(1 + std_t²·Δt/(2s)) + v·(1 + std_t²·(1 − s)/(2s))·Δt                           |
 * |                | x' = mean + std_t·sqrt(−Δt)·z,  z ~ N(0, I)                                               |
 * | log-prob       | mean (Flow-GRPO's code) or sum over the 64 pixels of log N(x'; mean, std_t²·(−Δt))        |
 * | projection     | x̂_0 = x − t·v(x, t, c)  (one Euler step to t = 0)                                         |
 * @module
 */
// arXiv 2505.05470 [CODE] (the SDE step with its log-prob)
import { copyNamed, loadNamed } from "../control/policy.js";
import { CohortError } from "../errors.js";
import { cat, type DType, noGrad, randn, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import { CLASSES, PIXELS } from "./digits.js";

export const TIME_FREQS = 4;
export const CLASS_DIM = 16;
const IN_DIM = PIXELS + 1 + 2 * TIME_FREQS + CLASS_DIM;
export const LOG_2PI = Math.log(2 * Math.PI);

export interface VelocityShape {
  hidden: number;
  layers: number;
}

/** v_θ(x, t, c): a SiLU MLP over the pixels, Fourier features of t and a learned class embedding. */
export class VelocityNet {
  readonly shape: VelocityShape;
  readonly dtype: DType;
  readonly params: [string, Tensor][] = [];
  readonly #layers: { w: Tensor; b: Tensor }[] = [];
  readonly #classEmb: Tensor;
  readonly #freqs: Tensor;

  constructor(shape: Partial<VelocityShape> = {}, dtype: DType = "f32") {
    this.shape = { hidden: shape.hidden ?? 128, layers: shape.layers ?? 3 };
    if (!(Number.isInteger(this.shape.hidden) && this.shape.hidden > 0 && this.shape.layers >= 1))
      throw new CohortError(
        `velocity network: hidden ${this.shape.hidden} and layers ${this.shape.layers} must be ≥ 1`,
      );
    this.dtype = dtype;
    this.#classEmb = this.#param(
      "class_emb",
      noGrad(() => randn([CLASSES, CLASS_DIM], { dtype })),
    );
    const sizes = [IN_DIM, ...Array.from({ length: this.shape.layers }, () => this.shape.hidden), PIXELS];
    for (let l = 0; l + 1 < sizes.length; l++) {
      const fanIn = sizes[l] as number;
      const w = this.#param(
        `net.${l}.weight`,
        noGrad(() => tidy(() => randn([fanIn, sizes[l + 1] as number], { dtype }).mul(1 / Math.sqrt(fanIn)))),
      );
      const b = this.#param(`net.${l}.bias`, zeros([sizes[l + 1] as number], { dtype }));
      this.#layers.push({ w, b });
    }
    this.#freqs = tensor(
      Float64Array.from({ length: TIME_FREQS }, (_, k) => 2 ** k * Math.PI),
      { shape: [1, TIME_FREQS], dtype },
    );
  }

  #param(name: string, t: Tensor): Tensor {
    const p = t.requireGrad(true);
    this.params.push([name, p]);
    return p;
  }

  /** v [n, 64] at x [n, 64], t [n] (flow time), c [n] (class indices, i64). */
  forward(x: Tensor, t: Tensor, c: Tensor): Tensor {
    const tc = t.to(this.dtype).reshape(-1, 1); // [n, 1]
    const ang = tc.mul(this.#freqs); // [n, F]
    const emb = this.#classEmb.indexSelect(0, c.reshape(-1).to("i64")); // [n, 16]
    let h = cat([x.to(this.dtype), tc, ang.sin(), ang.cos(), emb], 1); // [n, 89]
    this.#layers.forEach(({ w, b }, l) => {
      h = h.matmul(w).add(b); // [n, H] … [n, 64]
      if (l + 1 < this.#layers.length) h = h.silu();
    });
    return h;
  }

  /** Copies of the weights (owned by the caller). */
  state(): Record<string, Tensor> {
    return copyNamed(this.params);
  }

  load(state: Record<string, Tensor>): void {
    loadNamed(this.params, state, "generator");
  }

  dispose(): void {
    for (const [, p] of this.params) p.dispose();
    this.#freqs.dispose();
  }
}

/** σ_0 = 1 > … > σ_K = 0, linear in j then shifted (shift 1: linear). */
export function sigmaSchedule(steps: number, shift = 1): Float64Array {
  if (!(Number.isInteger(steps) && steps >= 1)) throw new CohortError(`denoising steps must be ≥ 1, got ${steps}`);
  if (!(shift > 0)) throw new CohortError(`schedule shift must be > 0, got ${shift}`);
  return Float64Array.from({ length: steps + 1 }, (_, j) => {
    const u = 1 - j / steps;
    return (shift * u) / (1 + (shift - 1) * u);
  });
}

/** The SDE step's affine mean coefficients and transition std: mean = xCoef·x + vCoef·v, x' ~ N(mean, std²). */
export function sdeCoefficients(
  s: number,
  next: number,
  noiseLevel: number,
): { xCoef: number; vCoef: number; std: number } {
  if (!(s > 0 && s <= 1 && next >= 0 && next < s))
    throw new CohortError(`SDE step from t = ${s} to ${next}: need 0 ≤ t' < t ≤ 1`);
  const dt = next - s;
  const denom = 1 - (s === 1 ? next : s);
  const stdT = noiseLevel * Math.sqrt(s / denom);
  const v2 = stdT * stdT;
  return {
    xCoef: 1 + (v2 * dt) / (2 * s),
    vCoef: (1 + (v2 * (1 - s)) / (2 * s)) * dt,
    std: stdT * Math.sqrt(-dt),
  };
}

/**
 * Per-row coefficient columns [n, 1] as tensors of `dtype`. Rows with t = 0 (padding after an episode's end)
 * get the identity step (xCoef 1, vCoef 0, log std 0): finite values that the loss mask leaves out.
 */
export function coefficientColumns(
  s: Float64Array,
  next: Float64Array,
  noiseLevel: number,
  dtype: DType,
): { xCoef: Tensor; vCoef: Tensor; logStd: Tensor } {
  const n = s.length;
  const xc = new Float64Array(n);
  const vc = new Float64Array(n);
  const ls = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    if (s[i] === 0 && next[i] === 0) {
      xc[i] = 1;
      continue;
    }
    const k = sdeCoefficients(s[i] as number, next[i] as number, noiseLevel);
    xc[i] = k.xCoef;
    vc[i] = k.vCoef;
    ls[i] = Math.log(k.std);
  }
  const col = (a: Float64Array) => tensor(a, { shape: [n, 1], dtype });
  return { xCoef: col(xc), vCoef: col(vc), logStd: col(ls) };
}
