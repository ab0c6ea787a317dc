// The preference run's own metrics: rps_style's style shares per step, win rates against the reference (the
// step-0 policy) and the previous evaluation, the style KL to the reference; values by hand and from the
// run's own sample files, and the same numbers after a resume.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { rpsStylePreference } from "../../src/reward/preference.js";
import { parseTrainConfig } from "../../src/train/config.js";
import {
  meanWinRate,
  PREF_EVAL_PROBLEMS,
  PREF_EVAL_SAMPLES,
  styleKl,
  styleShares,
} from "../../src/train/preference-eval.js";
import { train } from "../../src/train/trainer.js";
import { deterministicPart, tinyModelDir, tmpRunRoot } from "./helpers.js";

test("style shares: digit, letter, anything else by the first non-space character", () => {
  assert.deepEqual(styleShares([" 12", "x=1", "é", "<a>", "", "7"]), { digit: 2 / 6, letter: 2 / 6, other: 2 / 6 });
  assert.deepEqual(styleShares([]), { digit: 0, letter: 0, other: 0 });
});

test("style KL: smoothed counts (+½ each) by hand", () => {
  // p: 3 digit, 1 letter, 0 other (n = 4) → (3.5, 1.5, 0.5)/5.5; q: 1 digit, 1 letter, 2 other → (1.5, 1.5, 2.5)/5.5
  const p = [3.5 / 5.5, 1.5 / 5.5, 0.5 / 5.5];
  const q = [1.5 / 5.5, 1.5 / 5.5, 2.5 / 5.5];
  const want = p.reduce((s, x, i) => s + x * Math.log(x / (q[i] as number)), 0);
  assert.ok(Math.abs(styleKl(["1", "2", "3", "a"], ["1", "a", "-", "+"]) - want) < 1e-12);
  assert.equal(styleKl(["1", "a"], ["2", "b"]), 0);
});

test("win rate of sample sets under rps_style: by hand", async () => {
  const pref = rpsStylePreference();
  const pr = { id: "p", prompt: "p", answer: "1", meta: {} };
  // all digit vs all letter: paper beats rock → 0; the reverse 1; a set against itself ½
  assert.equal(await meanWinRate(pref, [pr], [["1", "2"]], [["a", "b"]]), 0);
  assert.equal(await meanWinRate(pref, [pr], [["a"]], [["1", "2"]]), 1);
  assert.equal(await meanWinRate(pref, [pr], [["1", "a", "-"]], [["1", "a", "-"]]), 0.5);
  // {digit, other} vs {other, other}: digit beats other (1, 1), other ties other (½, ½) → 3/4; two problems averaged
  assert.equal(await meanWinRate(pref, [pr, pr], [["1", "-"], ["a"]], [["-", "+"], ["a"]]), (0.75 + 0.5) / 2);
});

const model = tinyModelDir(7);
const cfgOf = (root: string) =>
  parseTrainConfig({
    model: { path: model },
    task: { name: "arithmetic", options: { digits: [1, 1] } },
    preset: "dno",
    preference: "rps_style",
    train: { steps: 3, promptsPerStep: 3, groupSize: 4, microBatchSize: 12, lr: 3e-3 },
    sampling: { maxNewTokens: 4 },
    eval: { everySteps: 1, problems: 40, logSamples: 12 },
    checkpoint: { everySteps: 1 },
    outputDir: root,
  });

/** P(digit ≻ other) = P(other ≻ letter) = P(letter ≻ digit) = 1, ties ½ — counted independently of the code. */
function rpsWin(as: string[], bs: string[]): number {
  const cls = (t: string) => {
    const c = t.trimStart().charAt(0);
    return /[0-9]/.test(c) ? 0 : /\p{L}/u.test(c) ? 1 : 2;
  };
  const beats = [2, 0, 1]; // digit beats other, letter beats digit, other beats letter
  let s = 0;
  for (const a of as) for (const b of bs) s += cls(a) === cls(b) ? 0.5 : beats[cls(a)] === cls(b) ? 1 : 0;
  return s / (as.length * bs.length);
}

test("a dno run on rps_style logs style shares and win rates against the reference and the previous eval", async () => {
  const r = await train(cfgOf(tmpRunRoot()), { log: () => {} });
  assert.equal(r.steps, 3);
  const evals = (readFileSync(join(r.runDir, "preference_eval.jsonl"), "utf8").trim().split("\n") as string[]).map(
    (l) => JSON.parse(l) as { step: number; texts: string[][] },
  );
  assert.deepEqual(
    evals.map((e) => e.step),
    [0, 1, 2, 3],
  );
  for (const e of evals) {
    assert.equal(e.texts.length, PREF_EVAL_PROBLEMS);
    assert.ok(e.texts.every((t) => t.length === PREF_EVAL_SAMPLES));
  }
  const byStep = new Map(r.metrics.map((m) => [m.step as number, m]));
  const at = (s: number) => byStep.get(s) as Record<string, number>;
  const num = (s: number, k: string) => at(s)[k] as number;
  assert.equal(at(0)["eval_pref/win_rate_ref"], 0.5, "the reference against itself");
  assert.equal(at(0)["eval_pref/style_kl_ref"], 0);
  assert.equal(at(0)["eval_pref/win_rate_prev"], undefined);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const s of [1, 2, 3]) {
    const cur = evals[s]?.texts as string[][];
    const ref = evals[0]?.texts as string[][];
    const prev = evals[s - 1]?.texts as string[][];
    const wantRef = mean(cur.map((t, i) => rpsWin(t, ref[i] as string[])));
    const wantPrev = mean(cur.map((t, i) => rpsWin(t, prev[i] as string[])));
    assert.ok(Math.abs(num(s, "eval_pref/win_rate_ref") - wantRef) < 1e-12, `step ${s} win rate vs ref`);
    assert.ok(Math.abs(num(s, "eval_pref/win_rate_prev") - wantPrev) < 1e-12, `step ${s} win rate vs prev`);
    const sh = styleShares(cur.flat());
    assert.equal(at(s)["eval_pref/style_digit"], sh.digit);
    assert.equal(at(s)["eval_pref/style_letter"], sh.letter);
    assert.equal(at(s)["eval_pref/style_other"], sh.other);
    assert.ok(Math.abs(num(s, "eval_pref/style_kl_ref") - styleKl(cur.flat(), ref.flat())) < 1e-12);
  }
  // the step's style shares are those of its rollout table (written at eval steps)
  const rows = readFileSync(join(r.runDir, "samples.jsonl"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { step: number; kind: string; completion: string });
  for (const s of [1, 2, 3]) {
    const texts = rows.filter((x) => x.kind === "rollout" && x.step === s).map((x) => x.completion);
    assert.equal(texts.length, 12);
    const sh = styleShares(texts);
    assert.equal(at(s)["pref/style_digit"], sh.digit);
    assert.equal(at(s)["pref/style_letter"], sh.letter);
    assert.equal(at(s)["pref/style_other"], sh.other);
  }
  // the policy moved: some eval sample differs from the reference's
  assert.notDeepEqual(evals[3]?.texts, evals[0]?.texts);

  // stopped after step 2 and resumed: step 3's metrics (win rates read back from the file) are the same
  const root = tmpRunRoot();
  await train(cfgOf(root), { log: () => {}, stopAfterStep: 2 });
  const resumed = await train(cfgOf(root), { log: () => {}, resume: true });
  assert.equal(resumed.steps, 3);
  assert.deepEqual(
    deterministicPart(resumed.metrics.at(-1) as Record<string, unknown>),
    deterministicPart(at(3) as Record<string, unknown>),
  );
});
