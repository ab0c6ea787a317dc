/**
 * Derives data/digits/digits.txt from the handwritten digits that Debian's `python3-sklearn` package ships
 * (sklearn/datasets/data/digits.csv.gz: 1,797 images of 8×8 pixels, each pixel 0..16, then the digit 0..9).
 *
 * Source: E. Alpaydin, C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning Repository,
 * 1998, https://doi.org/10.24432/C50P49 (CC BY 4.0); the test set of the UCI data as scikit-learn copies it.
 *
 * Get the file without installing anything:
 *   cd /tmp && apt-get download python3-sklearn && dpkg -x python3-sklearn_*.deb sk
 *   node --import tsx scripts/data/digits.ts /tmp/sk/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz
 * (a second argument writes elsewhere than data/digits/digits.txt).
 * The output has one image per line, `label pixels`, the 64 pixels row-major as one base-17 character each
 * (0–9, then a–g for 10–16), after a header of `#` lines with the attribution and the source file's SHA-256.
 */
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";

const DEFAULT = "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz";
const src = process.argv[2] ?? DEFAULT;
const OUT = process.argv[3] ?? "data/digits/digits.txt";
const gz = readFileSync(src);
const sha = createHash("sha256").update(gz).digest("hex");
const rows = gunzipSync(gz).toString("utf8").trim().split("\n");
if (rows.length !== 1797) throw new Error(`${src}: expected 1797 images, found ${rows.length}`);
const lines = rows.map((row, i) => {
  const v = row.split(",").map(Number);
  if (v.length !== 65 || v.some((x) => !Number.isInteger(x)))
    throw new Error(`${src} line ${i + 1}: expected 65 integers, got ${v.length}`);
  const label = v[64] as number;
  const px = v.slice(0, 64);
  if (label < 0 || label > 9 || px.some((p) => p < 0 || p > 16))
    throw new Error(`${src} line ${i + 1}: pixel outside 0..16 or label outside 0..9`);
  return `${label} ${px.map((p) => p.toString(17)).join("")}`;
});
const header = [
  "# Optical Recognition of Handwritten Digits: 1,797 images of 8x8 pixels (0..16) and their digit.",
  "# E. Alpaydin, C. Kaynak (1998), UCI Machine Learning Repository, https://doi.org/10.24432/C50P49, CC BY 4.0.",
  "# Derived by scripts/data/digits.ts from sklearn/datasets/data/digits.csv.gz of Debian's python3-sklearn",
  `# (1.2.1+dfsg-1; source sha256 ${sha}). One image per line: label, then 64 row-major pixels in base 17.`,
];
writeFileSync(OUT, `${[...header, ...lines].join("\n")}\n`);
console.log(`wrote ${OUT}: ${lines.length} images (source sha256 ${sha})`);
