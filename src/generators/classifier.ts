/**
 * The reward models of the digits generator, in TypeScript:
 *
 * | score      | of an image x (64 pixels, clamped to [−1, 1] first: the "decoding")                          |
 * |------------|-----------------------------------------------------------------------------------------------|
 * | `prob`     | p(c | x) of the asked class c under a small classifier trained on the same digits          |
 * | `correct`  | 1 when the classifier's most likely class is c, else 0                                      |
 * | `contrast` | mean |x| over pixels: 1 when every pixel is pure background or full stroke, 0 for flat grey |
 * | `smooth`   | 1 − mean |x_a − x_b|/2 over horizontally and vertically adjacent pixels (speckle lowers it)  |
 *
 * The classifier is a tanh MLP 64 → 64 → 10 trained by cross-entropy with Gaussian input noise (σ = 0.2, so that
 * slightly noisy samples are still read) on the training split of data/digits (digits.ts); its forward pass runs
 * in plain float64 JavaScript, so scoring an image touches no native memory.
 * @module
 */
import { z } from "zod";
import { CohortError } from "../errors.js";
import { AdamW, manualSeed, noGrad, randn, type Tensor, tensor, tidy, zeros } from "../tensor/index.js";
import { CLASSES, type Digits, digitsSplit, PIXELS, SIDE } from "./digits.js";

const HIDDEN = 64;

/** The classifier's weights as float64 arrays: W1 [64, 64], b1 [64], W2 [64, 10], b2 [10]. */
export interface ClassifierWeights {
  w1: Float64Array;
  b1: Float64Array;
  w2: Float64Array;
  b2: Float64Array;
}

export class DigitClassifier {
  readonly w: ClassifierWeights;
  constructor(w: ClassifierWeights) {
    const want = { w1: PIXELS * HIDDEN, b1: HIDDEN, w2: HIDDEN * CLASSES, b2: CLASSES };
    for (const [k, n] of Object.entries(want))
      if (w[k as keyof ClassifierWeights]?.length !== n)
        throw new CohortError(
          `classifier weight ${k} has ${w[k as keyof ClassifierWeights]?.length} values, expected ${n}`,
        );
    this.w = w;
  }

  /** log p(·|x) [10] of one image (64 pixels, clamped to [−1, 1]). */
  logProbs(x: ArrayLike<number>, off = 0): Float64Array {
    const { w1, b1, w2, b2 } = this.w;
    const h = Float64Array.from(b1);
    for (let k = 0; k < PIXELS; k++) {
      const xk = Math.max(-1, Math.min(1, x[off + k] as number));
      if (xk === 0) continue;
      for (let j = 0; j < HIDDEN; j++) h[j] = (h[j] as number) + xk * (w1[k * HIDDEN + j] as number);
    }
    for (let j = 0; j < HIDDEN; j++) h[j] = Math.tanh(h[j] as number);
    const z = Float64Array.from(b2);
    for (let j = 0; j < HIDDEN; j++)
      for (let c = 0; c < CLASSES; c++) z[c] = (z[c] as number) + (h[j] as number) * (w2[j * CLASSES + c] as number);
    let m = Number.NEGATIVE_INFINITY;
    for (const v of z) m = Math.max(m, v);
    let s = 0;
    for (const v of z) s += Math.exp(v - m);
    const lse = m + Math.log(s);
    return z.map((v) => v - lse);
  }

  /** Most likely class of each of n images. */
  predict(images: Float64Array): Int32Array {
    const n = images.length / PIXELS;
    return Int32Array.from({ length: n }, (_, i) => {
      const lp = this.logProbs(images, i * PIXELS);
      let best = 0;
      for (let c = 1; c < CLASSES; c++) if ((lp[c] as number) > (lp[best] as number)) best = c;
      return best;
    });
  }

  /** Fraction of `d` classified correctly. */
  accuracy(d: Digits): number {
    const p = this.predict(d.images);
    let ok = 0;
    for (let i = 0; i < d.n; i++) if (p[i] === d.labels[i]) ok++;
    return ok / d.n;
  }

  toTensors(): Record<string, Tensor> {
    const { w1, b1, w2, b2 } = this.w;
    return {
      "fc1.weight": tensor(w1, { shape: [PIXELS, HIDDEN], dtype: "f32" }),
      "fc1.bias": tensor(b1, { shape: [HIDDEN], dtype: "f32" }),
      "fc2.weight": tensor(w2, { shape: [HIDDEN, CLASSES], dtype: "f32" }),
      "fc2.bias": tensor(b2, { shape: [CLASSES], dtype: "f32" }),
    };
  }

  static fromTensors(t: Record<string, Tensor>): DigitClassifier {
    const get = (k: string) => {
      const x = t[k];
      if (x === undefined) throw new CohortError(`classifier weights lack "${k}"`);
      return tidy(() => Float64Array.from(x.to("f64").data() as Float64Array));
    };
    return new DigitClassifier({
      w1: get("fc1.weight"),
      b1: get("fc1.bias"),
      w2: get("fc2.weight"),
      b2: get("fc2.bias"),
    });
  }
}

/** Trains the classifier on the training split (full batch, AdamW, input noise σ = 0.2), seeded. */
export function trainClassifier(o: { seed?: number; steps?: number; lr?: number } = {}): {
  classifier: DigitClassifier;
  heldoutAccuracy: number;
} {
  const seed = o.seed ?? 0;
  const steps = o.steps ?? 400;
  manualSeed(seed);
  const train = digitsSplit("train");
  const x = tensor(train.images, { shape: [train.n, PIXELS], dtype: "f32" });
  const y = tensor(train.labels, { shape: [train.n, 1], dtype: "i64" });
  const init = (fanIn: number, out: number) =>
    noGrad(() => tidy(() => randn([fanIn, out], { dtype: "f32" }).mul(1 / Math.sqrt(fanIn)))).requireGrad(true);
  const w1 = init(PIXELS, HIDDEN);
  const b1 = zeros([HIDDEN], { dtype: "f32" }).requireGrad(true);
  const w2 = init(HIDDEN, CLASSES);
  const b2 = zeros([CLASSES], { dtype: "f32" }).requireGrad(true);
  const params = [w1, b1, w2, b2];
  const opt = new AdamW(params, { lr: o.lr ?? 1e-2, weightDecay: 1e-3 });
  try {
    for (let s = 0; s < steps; s++) {
      opt.zeroGrad();
      tidy(() => {
        const noisy = x.add(randn([train.n, PIXELS], { dtype: "f32" }).mul(0.2)).clamp(-1, 1);
        const logits = noisy.matmul(w1).add(b1).tanh().matmul(w2).add(b2);
        logits.logSoftmax(-1).gather(1, y).mean().neg().backward();
      });
      opt.step(o.lr ?? 1e-2);
    }
    const get = (t: Tensor) => noGrad(() => tidy(() => Float64Array.from(t.detach().to("f64").data() as Float64Array)));
    const classifier = new DigitClassifier({ w1: get(w1), b1: get(b1), w2: get(w2), b2: get(b2) });
    return { classifier, heldoutAccuracy: classifier.accuracy(digitsSplit("heldout")) };
  } finally {
    opt.dispose();
    for (const t of [...params, x, y]) t.dispose();
  }
}

/** Mean |x| of one image (clamped): 1 for pure black/white pixels, 0 for flat grey. */
export function contrast(x: ArrayLike<number>, off = 0): number {
  let s = 0;
  for (let k = 0; k < PIXELS; k++) s += Math.abs(Math.max(-1, Math.min(1, x[off + k] as number)));
  return s / PIXELS;
}

/** 1 − mean |x_a − x_b|/2 over the 112 horizontally and vertically adjacent pixel pairs (clamped). */
export function smoothness(x: ArrayLike<number>, off = 0): number {
  const px = (r: number, c: number) => Math.max(-1, Math.min(1, x[off + r * SIDE + c] as number));
  let s = 0;
  let n = 0;
  for (let r = 0; r < SIDE; r++)
    for (let c = 0; c < SIDE; c++) {
      if (c + 1 < SIDE) {
        s += Math.abs(px(r, c) - px(r, c + 1)) / 2;
        n++;
      }
      if (r + 1 < SIDE) {
        s += Math.abs(px(r, c) - px(r + 1, c)) / 2;
        n++;
      }
    }
  return 1 - s / n;
}

/** The reward of a generated digit: classWeight·(class score) + aestheticWeight·(aesthetic score). */
export const digitRewardSchema = z.strictObject({
  /** `prob`: p(c|x) under the classifier; `correct`: 1 when its argmax is c. */
  classScore: z.enum(["prob", "correct"]).default("prob"),
  classWeight: z.number().min(0).default(1),
  aesthetic: z.enum(["contrast", "smooth"]).default("contrast"),
  aestheticWeight: z.number().min(0).default(0),
});
export type DigitRewardConfig = z.output<typeof digitRewardSchema>;

export function digitReward(
  cls: DigitClassifier,
  cfg: DigitRewardConfig,
  x: ArrayLike<number>,
  c: number,
  off = 0,
): number {
  let r = 0;
  if (cfg.classWeight > 0) {
    const lp = cls.logProbs(x, off);
    let score: number;
    if (cfg.classScore === "prob") score = Math.exp(lp[c] as number);
    else {
      let best = 0;
      for (let k = 1; k < CLASSES; k++) if ((lp[k] as number) > (lp[best] as number)) best = k;
      score = best === c ? 1 : 0;
    }
    r += cfg.classWeight * score;
  }
  if (cfg.aestheticWeight > 0)
    r += cfg.aestheticWeight * (cfg.aesthetic === "contrast" ? contrast(x, off) : smoothness(x, off));
  return r;
}
