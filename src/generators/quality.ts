/**
 * Sample quality of the digits generator, beside its reward: images drawn by the deterministic Euler (ODE)
 * sampler from fixed start noise, and scored against the real digits of data/digits.
 *
 * | metric       | of n generated images x_i asked for class c_i (pixels clamped to [−1, 1])                     |
 * |--------------|--------------------------------------------------------------------------------------------------|
 * | accuracy     | fraction the reward classifier reads as c_i                                                      |
 * | prob         | mean p(c_i | x_i)                                                                                |
 * | contrast     | mean contrast (classifier.ts)                                                                    |
 * | diversity    | mean L2 distance between two images of the same class (all pairs, averaged over the classes)    |
 * | nn_distance  | mean L2 distance from x_i to the nearest real training image of class c_i (realism; lower better)|
 *
 * For reference, real held-out digits have diversity ≈ the spread of the data; a generator that collapses onto
 * a few images per class (reward hacking by sharpening) shows a falling diversity.
 * @module
 */
import { noGrad, tensor, tidy } from "../tensor/index.js";
import { contrast, type DigitClassifier } from "./classifier.js";
import { digitsSplit, PIXELS } from "./digits.js";
import { sigmaSchedule, type VelocityNet } from "./velocity.js";

/** n images by the Euler ODE over `steps` (schedule shift `shift`) from the given start noise [n·64]. */
export function sampleOde(
  net: VelocityNet,
  classes: Int32Array,
  start: Float64Array,
  steps = 10,
  shift = 1,
): Float64Array {
  const n = classes.length;
  const sig = sigmaSchedule(steps, shift);
  let x = Float64Array.from(start);
  for (let j = 0; j < steps; j++) {
    const t = sig[j] as number;
    const dt = (sig[j + 1] as number) - t;
    const v = noGrad(() =>
      tidy(
        () =>
          net
            .forward(
              tensor(x, { shape: [n, PIXELS], dtype: net.dtype }),
              tensor(new Float64Array(n).fill(t), { shape: [n], dtype: net.dtype }),
              tensor(classes, { shape: [n], dtype: "i64" }),
            )
            .to("f64")
            .data() as Float64Array,
      ),
    );
    x = x.map((xi, k) => xi + (v[k] as number) * dt);
  }
  return x;
}

const clampPx = (v: number) => Math.max(-1, Math.min(1, v));

function dist(a: Float64Array, ai: number, b: Float64Array, bi: number): number {
  let s = 0;
  for (let k = 0; k < PIXELS; k++) {
    const d = clampPx(a[ai * PIXELS + k] as number) - clampPx(b[bi * PIXELS + k] as number);
    s += d * d;
  }
  return Math.sqrt(s);
}

export interface SampleQuality {
  accuracy: number;
  prob: number;
  contrast: number;
  diversity: number;
  nn_distance: number;
}

export function sampleQuality(images: Float64Array, classes: Int32Array, classifier: DigitClassifier): SampleQuality {
  const n = classes.length;
  const train = digitsSplit("train");
  let ok = 0;
  let prob = 0;
  let con = 0;
  let nn = 0;
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const c = classes[i] as number;
    const lp = classifier.logProbs(images, i * PIXELS);
    let best = 0;
    for (let k = 1; k < lp.length; k++) if ((lp[k] as number) > (lp[best] as number)) best = k;
    if (best === c) ok++;
    prob += Math.exp(lp[c] as number);
    con += contrast(images, i * PIXELS);
    let m = Number.POSITIVE_INFINITY;
    for (let j = 0; j < train.n; j++) if (train.labels[j] === c) m = Math.min(m, dist(images, i, train.images, j));
    nn += m;
    byClass.set(c, [...(byClass.get(c) ?? []), i]);
  }
  let div = 0;
  let classes2 = 0;
  for (const idx of byClass.values()) {
    if (idx.length < 2) continue;
    let s = 0;
    let pairs = 0;
    for (let a = 0; a < idx.length; a++)
      for (let b = a + 1; b < idx.length; b++) {
        s += dist(images, idx[a] as number, images, idx[b] as number);
        pairs++;
      }
    div += s / pairs;
    classes2++;
  }
  return {
    accuracy: ok / n,
    prob: prob / n,
    contrast: con / n,
    diversity: classes2 > 0 ? div / classes2 : 0,
    nn_distance: nn / n,
  };
}
