/**
 * State-value functions of a control run and their losses: the contract the run trains a critic by, and the
 * categorical value loss HL-Gauss that Hyper++ trains its critic with instead of regression.
 *
 * | loss      | output              | V(s)                        | loss per step (masked mean over the steps)        |
 * |-----------|---------------------|-----------------------------|---------------------------------------------------|
 * | mse       | one value           | the output                  | (V(s) − y)²                                       |
 * | hl_gauss  | B bin logits ℓ      | Σ_i softmax(ℓ)_i · centre_i | −Σ_i p_i(y) log softmax(ℓ)_i                      |
 *
 * HL-Gauss (arXiv 2403.03950, as Hyper++ uses it, arXiv 2512.14202 [CODE]): B bins of equal width w on
 * [min, max] with edges e_0 < … < e_B, σ = smoothing · w, the target y clamped to [min, max], and
 * p_i(y) = (Φ((e_{i+1} − y)/σ) − Φ((e_i − y)/σ)) / (Φ((e_B − y)/σ) − Φ((e_0 − y)/σ)), Φ the normal CDF
 * (computed as erf((e − y)/(√2 σ)); the halves cancel in the ratio). Defaults 51 bins on [−10, 10], smoothing
 * 0.75 (σ = 0.2941176), the authors' ProcGen settings.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { type Tensor, tensor, tidy } from "../tensor/index.js";

// arXiv 2512.14202 [CODE] (HL-Gauss: arXiv 2403.03950)
export const hlGaussSchema = z
  .strictObject({
    bins: z.number().int().min(2).default(51),
    min: z.number().default(-10),
    max: z.number().default(10),
    /** σ as a multiple of the bin width. */
    smoothing: z.number().positive().default(0.75),
  })
  .refine((o) => o.min < o.max, { message: "categorical value support needs min < max" });
export type HlGaussOptions = z.output<typeof hlGaussSchema>;

/** A learned V(s) the run trains beside the policy. */
export interface ValueFunction {
  /** Its own trainable tensors (a critic sharing the policy's encoder lists only its head). */
  readonly params: [string, Tensor][];
  /** V [n] at obs [n, obsDim]. */
  value(obs: Tensor): Tensor;
  /** The masked mean loss against value targets: obs [r·T, obsDim], targets and mask [r, T]. */
  loss(obs: Tensor, targets: Tensor, mask: Tensor): Tensor;
  dispose(): void;
}

/** The HL-Gauss support: edges [B + 1], bin centres [B], σ. */
export class HlGauss {
  readonly o: HlGaussOptions;
  readonly edges: Float64Array;
  readonly centres: Float64Array;
  readonly sigma: number;

  constructor(o: HlGaussOptions) {
    if (!(o.min < o.max)) throw new CohortError(`HL-Gauss support needs min < max, got [${o.min}, ${o.max}]`);
    this.o = o;
    const w = (o.max - o.min) / o.bins;
    this.edges = Float64Array.from({ length: o.bins + 1 }, (_, i) => o.min + i * w);
    this.edges[o.bins] = o.max;
    this.centres = Float64Array.from({ length: o.bins }, (_, i) => o.min + (i + 0.5) * w);
    this.sigma = o.smoothing * w;
  }

  /** Target histograms p(y) [n, B] (float64, no gradient) of scalar targets y [n]. */
  probs(y: Tensor): Tensor {
    return tidy(() => {
      const { bins, min, max } = this.o;
      const e = tensor(this.edges, { shape: [1, bins + 1], dtype: "f64" });
      const yc = y.detach().to("f64").clamp(min, max).reshape(-1, 1);
      const cdf = e
        .sub(yc)
        .div(Math.SQRT2 * this.sigma)
        .erf(); // [n, B + 1]
      const z = cdf.narrow(1, bins, 1).sub(cdf.narrow(1, 0, 1));
      return cdf
        .narrow(1, 1, bins)
        .sub(cdf.narrow(1, 0, bins))
        .div(z);
    });
  }

  /** E[V] = Σ softmax(logits) · centres [n] from bin logits [n, B]. */
  value(logits: Tensor): Tensor {
    return tidy(() => {
      const c = tensor(this.centres, { shape: [this.o.bins, 1], dtype: logits.dtype });
      return logits.softmax(-1).matmul(c).squeeze(1);
    });
  }

  /** Cross-entropy −Σ p(y) log softmax(logits) per row [n] (logits [n, B], y [n]). */
  crossEntropy(logits: Tensor, y: Tensor): Tensor {
    return tidy(() => this.probs(y).to(logits.dtype).mul(logits.logSoftmax(-1)).sum(1).neg());
  }
}

/** Masked mean over the steps of a per-step loss [r·T] → scalar (mask [r, T]). */
export function maskedStepMean(perStep: Tensor, mask: Tensor): Tensor {
  return tidy(() => {
    const m = mask.to(perStep.dtype);
    return perStep
      .reshape(...m.shape)
      .mul(m)
      .sum()
      .div(m.sum().clamp(1, null));
  });
}
