/**
 * The shipped digits data (count, class sizes, pixel range against the UCI description), the reward classifier
 * (held-out accuracy, its float64 forward against a PyTorch oracle) and the aesthetic scores on hand-made images.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import {
  contrast,
  digitReward,
  digitRewardSchema,
  smoothness,
  trainClassifier,
} from "../../src/generators/classifier.js";
import { pretrainFlowCommand } from "../../src/generators/command.js";
import { digitsSplit, loadDigits, PIXELS } from "../../src/generators/digits.js";
import { loadGenerator } from "../../src/generators/pretrain.js";
import { sampleQuality } from "../../src/generators/quality.js";
import { PYTHON, runOracle } from "../helpers/oracle.js";

test("data/digits holds the 1,797 UCI test-set images with sklearn's class sizes", () => {
  const d = loadDigits();
  assert.equal(d.n, 1797);
  const counts = new Array(10).fill(0);
  for (const l of d.labels) counts[l]++;
  assert.deepEqual(counts, [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]);
  assert.ok(d.images.every((v) => v >= -1 && v <= 1));
  // the first image is a 0 (sklearn's digits.images[0]): row 0 = 0 0 5 13 9 1 0 0
  assert.deepEqual(
    Array.from(d.images.subarray(0, 8), (v) => Math.round((v + 1) * 8)),
    [0, 0, 5, 13, 9, 1, 0, 0],
  );
  assert.equal(digitsSplit("heldout").n + digitsSplit("train").n, 1797);
  assert.equal(digitsSplit("heldout").n, 360);
});

test("the reward classifier reads held-out digits, and its JS forward matches PyTorch", () => {
  const { classifier, heldoutAccuracy } = trainClassifier({ seed: 0, steps: 200 });
  assert.ok(heldoutAccuracy > 0.9, `held-out accuracy ${heldoutAccuracy}`);
  const held = digitsSplit("heldout");
  const x = held.images.subarray(0, 5 * PIXELS);
  const ours = Array.from({ length: 5 }, (_, i) => Array.from(classifier.logProbs(x, i * PIXELS)));
  if (existsSync(PYTHON)) {
    const { w1, b1, w2, b2 } = classifier.w;
    const t = (v: Float64Array, shape: number[]) => ({ shape, dtype: "f64", values: v });
    const res = runOracle([
      {
        id: "c",
        expr: "torch.log_softmax(torch.tanh(x.clamp(-1, 1) @ w1 + b1) @ w2 + b2, -1)",
        inputs: {
          x: t(Float64Array.from(x), [5, 64]),
          w1: t(w1, [64, 64]),
          b1: t(b1, [64]),
          w2: t(w2, [64, 10]),
          b2: t(b2, [10]),
        },
      },
    ]).get("c");
    const want = (res?.outs[0] as { values: Float64Array }).values;
    ours.flat().forEach((v, k) => assert.ok(Math.abs(v - (want[k] as number)) < 1e-12, `log p ${k}`));
  }
  // rewards: p(c|x) sums to 1 over c; `correct` is 1 exactly for the argmax
  const prob = digitRewardSchema.parse({});
  const correct = digitRewardSchema.parse({ classScore: "correct" });
  const img = held.images.subarray(0, PIXELS);
  let s = 0;
  for (let c = 0; c < 10; c++) s += digitReward(classifier, prob, img, c);
  assert.ok(Math.abs(s - 1) < 1e-12);
  const pred = classifier.predict(Float64Array.from(img))[0] as number;
  for (let c = 0; c < 10; c++) assert.equal(digitReward(classifier, correct, img, c), c === pred ? 1 : 0);
  // the aesthetic term adds its weighted score
  const both = digitRewardSchema.parse({ aestheticWeight: 0.5 });
  assert.ok(
    Math.abs(digitReward(classifier, both, img, 3) - digitReward(classifier, prob, img, 3) - 0.5 * contrast(img)) <
      1e-12,
  );
});

test("contrast and smoothness on hand-made images", () => {
  const flat = new Float64Array(PIXELS); // grey
  const black = new Float64Array(PIXELS).fill(-1);
  const checker = Float64Array.from({ length: PIXELS }, (_, k) => ((Math.floor(k / 8) + (k % 8)) % 2 ? 1 : -1));
  assert.equal(contrast(flat), 0);
  assert.equal(contrast(black), 1);
  assert.equal(contrast(Float64Array.from(black, () => -3)), 1, "clamped");
  assert.equal(smoothness(black), 1);
  assert.equal(smoothness(checker), 0);
  // one bright pixel in a corner of a black image: 2 of 112 pairs differ by 2
  const dot = Float64Array.from(black);
  dot[0] = 1;
  assert.ok(Math.abs(smoothness(dot) - (1 - 2 / 112)) < 1e-12);
});

test("sample quality: real digits are their own nearest neighbours; identical images have no diversity", () => {
  const { classifier } = trainClassifier({ seed: 1, steps: 150 });
  const train = digitsSplit("train");
  const n = 40;
  const imgs = train.images.slice(0, n * PIXELS);
  const cls = train.labels.slice(0, n);
  const q = sampleQuality(imgs, cls, classifier);
  assert.equal(q.nn_distance, 0);
  assert.ok(q.accuracy > 0.9 && q.diversity > 1, JSON.stringify(q));
  const same = new Float64Array(4 * PIXELS);
  for (let i = 0; i < 4; i++) same.set(train.images.subarray(0, PIXELS), i * PIXELS);
  assert.equal(sampleQuality(same, new Int32Array(4).fill(train.labels[0] as number), classifier).diversity, 0);
});

test("cohort pretrain-flow writes the generator and the classifier; bad flags fail before any work", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "cohort-pretrain-flow-")), "gen");
  await assert.rejects(
    () => pretrainFlowCommand.run(["--out", out, "--steps", "0"]) as Promise<number>,
    /--steps: expected an integer ≥ 1/,
  );
  await assert.rejects(() => pretrainFlowCommand.run(["--steps", "3"]) as Promise<number>, /need --out/);
  assert.ok(!existsSync(out));
  const code = await pretrainFlowCommand.run([
    "--out",
    out,
    "--steps",
    "3",
    "--hidden",
    "8",
    "--classifier-steps",
    "2",
  ]);
  assert.equal(code, 0);
  const meta = JSON.parse(readFileSync(join(out, "generator.json"), "utf8"));
  assert.deepEqual(meta.shape, { hidden: 8, layers: 3 });
  assert.match(meta.command, /^npx cohort pretrain-flow --out .* --steps 3 --hidden 8/);
  for (const f of ["generator.safetensors", "classifier.safetensors", "classifier.json"])
    assert.ok(existsSync(join(out, f)));
  assert.throws(() => loadGenerator(join(out, "missing")), /no generator in .*cohort pretrain-flow --out/);
});

// the Debian file: installed, or unpacked with `dpkg -x` (DIGITS_CSV names it)
const CSV = [process.env.DIGITS_CSV, "/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz"].find(
  (p): p is string => p !== undefined && existsSync(p),
);
test(
  "scripts/data/digits.ts reproduces the shipped file byte for byte",
  { skip: CSV === undefined ? "no python3-sklearn digits.csv.gz (set DIGITS_CSV)" : false },
  () => {
    const out = join(mkdtempSync(join(tmpdir(), "cohort-digits-")), "digits.txt");
    const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/data/digits.ts", CSV as string, out], {
      encoding: "utf8",
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(readFileSync(out).equals(readFileSync("data/digits/digits.txt")));
  },
);
