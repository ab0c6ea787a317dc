/**
 * The 8×8 handwritten digits (UCI "Optical Recognition of Handwritten Digits", Alpaydin & Kaynak 1998,
 * https://doi.org/10.24432/C50P49, CC BY 4.0) as shipped in data/digits/digits.txt, which
 * scripts/data/digits.ts derives from Debian's python3-sklearn. Nothing is downloaded at run time.
 *
 * Pixels 0..16 are scaled to [−1, 1] (x = p/8 − 1): background −1, full strokes +1. The split is fixed: every
 * fifth image (index % 5 == 0, 360 images) is held out, the other 1,437 train the generator and the classifier.
 * @module
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CohortError } from "../errors.js";

export const SIDE = 8;
export const PIXELS = SIDE * SIDE;
export const CLASSES = 10;

export interface Digits {
  /** [n, 64] row-major pixels in [−1, 1]. */
  images: Float64Array;
  labels: Int32Array;
  n: number;
}

/** data/digits/digits.txt of this package (beside src/ when run from the sources, two levels up from dist/src/). */
export const DIGITS_FILE =
  [
    fileURLToPath(new URL("../../data/digits/digits.txt", import.meta.url)),
    fileURLToPath(new URL("../../../data/digits/digits.txt", import.meta.url)),
  ].find((p) => existsSync(p)) ?? fileURLToPath(new URL("../../data/digits/digits.txt", import.meta.url));

let cache: Digits | null = null;

/** All 1,797 images (cached). */
export function loadDigits(path = DIGITS_FILE): Digits {
  if (cache !== null && path === DIGITS_FILE) return cache;
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new CohortError(
      `cannot read the digits data ${path} (${(e as Error).message}); scripts/data/digits.ts makes it`,
    );
  }
  const rows = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const images = new Float64Array(rows.length * PIXELS);
  const labels = new Int32Array(rows.length);
  rows.forEach((row, i) => {
    const [label, px] = row.split(" ");
    if (label === undefined || px === undefined || px.length !== PIXELS)
      throw new CohortError(`${path}: line ${i + 1} of the data is not "label 64-pixels"`);
    labels[i] = Number(label);
    for (let k = 0; k < PIXELS; k++) images[i * PIXELS + k] = Number.parseInt(px[k] as string, 17) / 8 - 1;
  });
  const d = { images, labels, n: rows.length };
  if (path === DIGITS_FILE) cache = d;
  return d;
}

/** The training or held-out part of the fixed split (every fifth image held out). */
export function digitsSplit(part: "train" | "heldout", d: Digits = loadDigits()): Digits {
  const idx = Array.from({ length: d.n }, (_, i) => i).filter((i) => (i % 5 === 0) === (part === "heldout"));
  const images = new Float64Array(idx.length * PIXELS);
  idx.forEach((i, k) => {
    images.set(d.images.subarray(i * PIXELS, (i + 1) * PIXELS), k * PIXELS);
  });
  return { images, labels: Int32Array.from(idx, (i) => d.labels[i] as number), n: idx.length };
}
