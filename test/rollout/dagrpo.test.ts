// DaGRPO: off-policy anchors only in all-fail groups, with the budget unchanged; low-distinctiveness pairs
// are masked out of the loss; anchors get the training model's log-probs and stay out of the mismatch metric.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { dagrpoPairsFilter, editDistanceWithin, textSimilarityAtLeast } from "../../src/algo/pair-mask.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import type { RewardBatch } from "../../src/algo/types.js";
import { CohortError, ConfigError } from "../../src/errors.js";
import { readModelDir } from "../../src/io/hf.js";
import { packBatch } from "../../src/model/batch.js";
import { CausalLM } from "../../src/model/llama.js";
import { resolvePreset } from "../../src/presets/index.js";
import { assemble, DagrpoWrapper, groupRows, rolloutWrappers, type WrapperHost } from "../../src/rollout/index.js";
import { arithmeticTask } from "../../src/task/arithmetic.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem, Task } from "../../src/task/types.js";
import { noGrad, tidy } from "../../src/tensor/index.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { parseTrainConfig } from "../../src/train/config.js";
import type { MetricRecord } from "../../src/train/metrics.js";
import { tinyModelDir, tmpRunRoot, trainLeakFree } from "../train/helpers.js";
import { emptyRollout } from "./fixtures/rollout.js";

const task = arithmeticTask({ digits: [1, 1] }) as Task;
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
const prob = (a: number, b: number, answer = true): Problem => ({
  id: `arithmetic/${a}+${b}`,
  prompt: `${a}+${b}=`,
  ...(answer ? { answer: String(a + b) } : {}),
  meta: { op: "add", a: String(a), b: String(b) },
});
/** Reward 1 when the completion is the right <answer>…</answer>, else 0 (no answer: 0). */
const correct = (p: Problem, c: string) => (p.answer !== undefined && task.verify(p, c).correct ? 1 : 0);

/** A host over string completions; `gen(prompt, index)` is the policy, `correct` the only reward. */
function fakeHost(gen: (p: Problem, n: number) => string) {
  const calls: { counts: readonly number[] }[] = [];
  const anchorCalls: { problems: readonly Problem[]; texts: readonly string[] }[] = [];
  let n = 0;
  const rows = (ps: readonly Problem[], counts: readonly number[], make: (p: Problem, b: number) => string) => {
    const out = emptyRollout();
    const gi: number[] = [];
    const r: number[] = [];
    let g = 0;
    ps.forEach((p, b) => {
      for (let j = 0; j < (counts[b] as number); j++) {
        const c = make(p, b);
        out.prompts.push(encode(p.prompt));
        out.completions.push(c);
        out.texts.push(c);
        out.problems.push(p);
        gi.push(g);
        r.push(correct(p, c));
      }
      if ((counts[b] as number) > 0) g++;
    });
    return { ...out, groupIndex: Int32Array.from(gi), byFn: [Float64Array.from(r)] };
  };
  const host: WrapperHost<string> = {
    step: 1,
    groupSize: 4,
    async sample(ps, counts) {
      calls.push({ counts });
      return rows(ps, counts, (p) => gen(p, n++));
    },
    generate: async () => assert.fail("DaGRPO writes no text"),
    success: (b, i) => ((b.byFn[0] as Float64Array)[i] as number) > 0.5,
    reward: (b, i) => (b.byFn[0] as Float64Array)[i] as number,
    successIndex: 0,
    task,
    async offPolicy(ps, texts) {
      anchorCalls.push({ problems: ps, texts });
      return rows(
        ps,
        ps.map(() => 1),
        (_p, b) => texts[b] as string,
      );
    },
  };
  return { host, calls, anchorCalls };
}

test("dagrpo: anchors go only to all-fail groups with an answer and ≥ 2 rows; the budget is unchanged", async () => {
  // p0 is solved once; p1 and p3 never; p2 has no reference answer; p3 has one row
  const ps = [prob(3, 4), prob(5, 5), prob(2, 2, false), prob(1, 6)];
  const counts = [4, 4, 4, 1];
  const gen = (p: Problem, n: number) => (p === ps[0] && n === 2 ? "<answer>7</answer>" : "<answer>0</answer>");
  const { host, calls, anchorCalls } = fakeHost(gen);
  const res = await new DagrpoWrapper({}, "algo.rollout.wrapper.options").rollout(host, ps, counts);
  assert.deepEqual(
    calls.map((c) => c.counts),
    [counts],
    "one sampling call with the allocated budget",
  );
  assert.deepEqual(anchorCalls, [{ problems: [ps[1]], texts: ["<answer>10</answer>"] }]);
  const b = res.batch;
  assert.equal(b.completions.length, 13, "Σ counts rows are trained: the anchor replaced a sampled row");
  const groups = groupRows(b);
  assert.deepEqual(
    groups.map((g) => g.length),
    [4, 4, 4, 1],
  );
  assert.deepEqual(
    (groups[1] as number[]).map((i) => b.texts[i]),
    ["<answer>0</answer>", "<answer>0</answer>", "<answer>0</answer>", "<answer>10</answer>"],
  );
  assert.deepEqual(
    (groups[1] as number[]).map((i) => (b.byFn[0] as Float64Array)[i]),
    [0, 0, 0, 1],
  );
  assert.deepEqual(
    (groups[0] as number[]).map((i) => b.texts[i]),
    ["<answer>0</answer>", "<answer>0</answer>", "<answer>7</answer>", "<answer>0</answer>"],
    "a group with a success keeps its sampled rows",
  );
  assert.deepEqual(res.metrics, { "dagrpo/anchor_rate": 0.25, "dagrpo/anchors": 1, "rollout/sampled": 13 });
});

test("dagrpo: an anchor the task does not accept, or a template without {answer}, fails naming the fix", async () => {
  const { host } = fakeHost(() => "x");
  const w = new DagrpoWrapper({ template: "<ans>{answer}</ans>" }, "algo.rollout.wrapper.options");
  await assert.rejects(w.rollout(host, [prob(5, 5)], [4]), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.path, "algo.rollout.wrapper.options.template");
    assert.match(e.message, /"<ans>10<\/ans>" of problem arithmetic\/5\+5 is not a correct, well-formed answer/);
    assert.match(e.message, /set template to the answer format the task expects/);
    return true;
  });
  assert.throws(
    () => rolloutWrappers.get("dagrpo")({ template: "{prompt}" }, "algo.rollout.wrapper.options"),
    /algo\.rollout\.wrapper\.options\.template: the template must contain "\{answer\}"/,
  );
});

// ---- pair masking --------------------------------------------------------------------------------

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(
        (prev[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
        (prev[j] as number) + 1,
        (cur[j - 1] as number) + 1,
      );
    }
    prev = cur;
  }
  return prev[b.length] as number;
}

test("banded edit distance equals Levenshtein within the band and reports k + 1 beyond it", () => {
  const rng = Rng.fromSeed(11);
  const word = () => Array.from({ length: rng.int(0, 12) }, () => "ab01<>"[rng.int(0, 5)]).join("");
  for (let t = 0; t < 500; t++) {
    const a = word();
    const b = rng.bool() ? word() : a.slice(0, rng.int(0, a.length)) + word().slice(0, 2);
    const d = levenshtein(a, b);
    for (const k of [0, 1, 2, 3, 5, 12])
      assert.equal(editDistanceWithin(a, b, k), Math.min(d, k + 1), `${a}|${b}|${k}`);
  }
  assert.equal(textSimilarityAtLeast("", "", 0.95), 1);
  assert.equal(textSimilarityAtLeast("<answer>12</answer>", "<answer>13</answer>", 0.9), 1 - 1 / 19);
  assert.equal(textSimilarityAtLeast("<answer>12</answer>", "<answer>13</answer>", 0.95), 0, "below the bar");
});

const T = ["<answer>12</answer>", "<answer>12</answer>", "<answer>13</answer>", "abc", "x", "x", "y", "y", "y"];
const handBatch = (): RewardBatch => ({
  rewards: Float64Array.from([1, 0, 1, 0, 1, 1, 1, Number.NaN, 0]),
  groupIndex: Int32Array.from([0, 0, 0, 0, 1, 1, 2, 2, 2]),
  lengths: Int32Array.from(T, (t) => t.length),
  texts: T,
});

test("dagrpo_pairs: near-identical pairs on opposite sides of the group mean are masked, others kept", () => {
  // group 0 (mean 0.5): rows 0/1 identical with rewards 1/0 → masked; row 2 differs from them by one of 19
  // characters (similarity 0.947 < 0.95) → kept; group 1: identical but equal rewards → kept; group 2: rows
  // 6/8 identical with rewards 1/0 → masked, row 7 has no reward and never pairs
  const res = dagrpoPairsFilter(handBatch(), { minSimilarity: 0.95 });
  assert.deepEqual([...res.keep], [0, 0, 1, 1, 1, 1, 0, 1, 0]);
  assert.equal(res.removedSequences, 4);
  assert.equal(res.removedTokens, 19 + 19 + 1 + 1);
  assert.equal(res.removedGroups, 0);
  assert.deepEqual(res.metrics, { "dagrpo/masked_pairs": 2, "dagrpo/masked_pair_rate": 2 / 8 });
  // a lower bar also catches the one-character difference
  const loose = dagrpoPairsFilter(handBatch(), { minSimilarity: 0.9 });
  assert.deepEqual([...loose.keep], [0, 0, 0, 1, 1, 1, 0, 1, 0]);
  assert.equal(loose.metrics?.["dagrpo/masked_pairs"], 3, "rows 1 and 2 now pair too (rows 0 and 2 agree)");
  const { texts: _, ...noTexts } = handBatch();
  assert.throws(
    () => dagrpoPairsFilter(noTexts),
    (e: unknown) => {
      assert.ok(e instanceof CohortError);
      assert.match(e.message, /needs batch\.texts \(9 rows\), got none/);
      return true;
    },
  );
  assert.throws(() => dagrpoPairsFilter(handBatch(), { minSimilarity: 2 }), /dagrpo_pairs\.minSimilarity: .*<=1/);
  assert.throws(() => dagrpoPairsFilter(handBatch(), { minSim: 0.9 } as object), /unknown option "minSim"/);
});

test("dagrpo preset: the pipeline drops masked rows (after the advantages) and logs the masked-pair rate", () => {
  const algo = resolvePreset("dagrpo", {}, { rewardFunctions: 1 });
  const b = handBatch();
  const stage = new Pipeline(algo).advantages([b.rewards], {
    groupIndex: b.groupIndex,
    lengths: b.lengths as Int32Array,
    texts: T,
  });
  assert.deepEqual([...stage.keep], [0, 0, 1, 1, 1, 1, 0, 1, 0]);
  assert.equal(stage.metrics["dagrpo/masked_pair_rate"], 0.25);
  assert.equal(stage.metrics["filter/dagrpo_pairs/removed_sequences"], 4);
  // advantages come from the whole group, masked rows included: group 0 has mean 0.5
  assert.ok(((stage.advantages.values as Float64Array)[2] as number) > 0);
});

// ---- training runs ----------------------------------------------------------------------------

const tiny = tinyModelDir(5);
const shipped = resolve("models/arithmetic-tiny");
const parity = `${resolve("test/fixtures/rewards/parity.ts")}#parity`;
const _quiet = () => {};

async function run(extra: Record<string, unknown>, steps = 2): Promise<MetricRecord[]> {
  const cfg = parseTrainConfig({
    name: "run",
    preset: "dagrpo",
    seed: 3,
    model: { path: shipped },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 2], ops: { add: 1, sub: 1 } } },
    rewards: ["correctness", "format"],
    train: { steps, promptsPerStep: 4, groupSize: 4, microBatchSize: 16 },
    sampling: { maxNewTokens: 24 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
    ...extra,
  });
  const r = await trainLeakFree(cfg);
  const ms = r.metrics.filter((m) => typeof m.loss === "number");
  assert.equal(ms.length, steps);
  for (const m of ms) assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.grad_norm as number));
  return ms;
}

test("dagrpo preset trains on the arithmetic task and logs anchor and masked-pair rates", async () => {
  const ms = await run({}, 3);
  if (process.env.COHORT_SHOW_METRICS)
    console.log(ms.map((m) => [m["dagrpo/anchor_rate"], m["dagrpo/masked_pair_rate"], m.reward_mean]));
  for (const m of ms) {
    assert.equal(m["rollout/sampled"], 16, "B·G sampled, anchors replace rows");
    const rate = m["dagrpo/anchor_rate"] as number;
    assert.ok(rate >= 0 && rate <= 1);
    assert.equal(m["dagrpo/anchors"], rate * 4);
    assert.ok(typeof m["dagrpo/masked_pair_rate"] === "number");
    assert.ok(typeof m["filter/dagrpo_pairs/removed_sequences"] === "number");
  }
  assert.ok(
    ms.some((m) => (m["dagrpo/anchors"] as number) > 0),
    "the pre-trained model fails some prompts: they get anchors",
  );
});

test("dagrpo: with every conflicting pair masked, no row with a non-zero advantage reaches the loss", async () => {
  // minSimilarity 0 makes every pair "similar": each row above its group's mean pairs with one below it, so
  // every row with A ≠ 0 is masked. Without a KL term the gradient must then be exactly zero.
  const algo = {
    regularizers: [],
    sampleFilters: [{ name: "dagrpo_pairs", options: { minSimilarity: 0 } }],
  };
  const ms = await run({ model: { path: tiny }, rewards: [parity], algo });
  for (const m of ms) {
    assert.ok((m["filter/dagrpo_pairs/removed_sequences"] as number) > 0);
    assert.ok(m.grad_norm === 0, `grad_norm ${m.grad_norm}`);
  }
  const control = await run({ model: { path: tiny }, rewards: [parity], algo: { regularizers: [] } });
  assert.ok(
    control.some((m) => (m.grad_norm as number) > 0),
    "the same run without the masking gets a gradient",
  );
});

// A probe wrapper: all trained rows are anchors from host.offPolicy. It records their log-probs and then
// overwrites them (a stand-in for "no sampler log-prob"): neither ℓ_old nor the mismatch metric may read them.
const probe: { problems: Problem[]; tokens: number[][]; logprobs: number[][] }[] = [];
rolloutWrappers.register("test_anchor_probe", () => ({
  async rollout<C>(host: WrapperHost<C>, problems: readonly Problem[], counts: readonly number[]) {
    const ps = problems.flatMap((p, b) => Array.from({ length: counts[b] as number }, () => p));
    const texts = ps.map((p, i) => `<answer>${i % 2 === 0 ? p.answer : "0"}</answer>`);
    const batch = await host.offPolicy(ps, texts);
    const comps = batch.completions as unknown as { tokens: number[]; logprobs: number[] }[];
    probe.push({ problems: ps, tokens: comps.map((c) => c.tokens), logprobs: comps.map((c) => [...c.logprobs]) });
    for (const c of comps) c.logprobs = c.logprobs.map(() => -5);
    // regroup: the rows of each problem form its group
    const groups: { batch: typeof batch; rows: number[] }[][] = [];
    let i = 0;
    counts.forEach((n) => {
      if (n > 0) groups.push([{ batch, rows: Array.from({ length: n }, () => i++) }]);
    });
    return { batch: assemble(groups), metrics: {} };
  },
}));

test("anchors: log-probs from the training model, EOS appended, left out of the sampler mismatch metric", async () => {
  probe.length = 0;
  const ms = await run(
    {
      model: { path: tiny },
      rewards: ["correctness"],
      train: { steps: 1, promptsPerStep: 2, groupSize: 4, microBatchSize: 16, innerIterations: 2 },
      algo: { rollout: { wrapper: { name: "test_anchor_probe" } }, sampleFilters: [] },
    },
    1,
  );
  const m = ms[0] as MetricRecord;
  assert.equal(m["sampler/logprob_abs_diff_mean"], 0, "no sampled token, so no mismatch sample");
  // ℓ_old of μ = 2 comes from the model, not from the overwritten −5: the first pass has ratio 1, no clipping
  assert.ok(Number.isFinite(m.loss as number));
  const { problems, tokens, logprobs } = probe[0] as (typeof probe)[number];
  const tok = new CharTokenizer();
  const dir = readModelDir(tiny);
  const model = CausalLM.fromHF(dir.config, dir.tensors);
  for (const t of Object.values(dir.tensors)) t.dispose();
  try {
    const expected = noGrad(() =>
      tidy(() => {
        const prompts = problems.map((p) => [tok.bosId, ...tok.encode(p.prompt)]);
        const packed = packBatch(prompts, tokens, { padId: tok.padId });
        const lp = model.logprobs(packed, { temperature: 1 }).lp.slice(1, packed.promptLength);
        return lp.to("f64").data() as Float64Array;
      }),
    );
    const C = Math.max(...tokens.map((t) => t.length));
    tokens.forEach((ids, r) => {
      assert.equal(ids.at(-1), tok.eosId, "the anchor ends with EOS");
      assert.equal(
        tok.decode(ids, { skipSpecialTokens: true }),
        `<answer>${r % 2 === 0 ? problems[r]?.answer : "0"}</answer>`,
      );
      (logprobs[r] as number[]).forEach((v, t) => {
        assert.ok(Math.abs(v - (expected[r * C + t] as number)) < 1e-5, `row ${r} token ${t}: ${v}`);
      });
    });
  } finally {
    model.dispose();
  }
});
