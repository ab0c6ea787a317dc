// PS-GRPO: a group is a paraphrase set (n rollouts × m paraphrases, budget unchanged), each rollout's reward
// is its mean similarity to the rollouts of the other paraphrases (+ weight · success), computed by hand here.
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import {
  answerSimilarity,
  groupRows,
  PsGrpoWrapper,
  paraphrasesOf,
  rolloutWrappers,
  type WrapperHost,
} from "../../src/rollout/index.js";
import { arithmeticParaphrases, arithmeticTask } from "../../src/task/arithmetic.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem, Task } from "../../src/task/types.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { parseTrainConfig } from "../../src/train/config.js";
import { tmpRunRoot, trainLeakFree } from "../train/helpers.js";
import { emptyRollout } from "./fixtures/rollout.js";

const task = arithmeticTask({ digits: [1, 1] }) as Task;
const encode = (text: string) => [...text].map((c) => c.charCodeAt(0));
const add = (a: number, b: number): Problem => ({
  id: `arithmetic/${a}+${b}`,
  prompt: `${a}+${b}=`,
  answer: String(a + b),
  meta: { op: "add", a: String(a), b: String(b) },
});

/**
 * A host whose policy answers `answers[promptText][k]` for the k-th rollout of that prompt text; rewards are
 * [correctness, a constant 0.25 "format"].
 */
function fakeHost(answers: Record<string, string[]>, hostTask: Task = task) {
  const calls: { counts: readonly number[]; texts: readonly (string | undefined)[] | undefined }[] = [];
  const seen: Record<string, number> = {};
  const host: WrapperHost<string> = {
    step: 4,
    groupSize: 4,
    async sample(ps, counts, texts) {
      calls.push({ counts, texts });
      const out = emptyRollout();
      const gi: number[] = [];
      const correct: number[] = [];
      ps.forEach((p, b) => {
        const text = texts?.[b] ?? p.prompt;
        for (let j = 0; j < (counts[b] as number); j++) {
          const k = seen[text] ?? 0;
          seen[text] = k + 1;
          const c = answers[text]?.[k] ?? "no answer";
          out.prompts.push(encode(text));
          out.completions.push(c);
          out.texts.push(c);
          out.problems.push(p);
          gi.push(b);
          correct.push(task.verify(p, c).correct ? 1 : 0);
        }
      });
      return {
        ...out,
        groupIndex: Int32Array.from(gi),
        byFn: [Float64Array.from(correct), Float64Array.from(correct, () => 0.25)],
      };
    },
    generate: async () => assert.fail("PS-GRPO writes no text"),
    success: (b, i) => ((b.byFn[0] as Float64Array)[i] as number) > 0.5,
    reward: (b, i) => (b.byFn[0] as Float64Array)[i] as number,
    successIndex: 0,
    task: hostTask,
    offPolicy: async () => assert.fail("PS-GRPO injects no off-policy rows"),
  };
  return { host, calls };
}

const A = (x: string) => `<answer>${x}</answer>`;

test("ps_grpo: one group per paraphrase set; rewards follow the similarity rule (hand-computed)", async () => {
  const { host, calls } = fakeHost({
    "3+4=": [A("7"), A("8")],
    "4+3=": [A("7"), A("7")],
  });
  const w = new PsGrpoWrapper({ correctnessWeight: 0.5 }, "algo.rollout.wrapper.options");
  const res = await w.rollout(host, [add(3, 4)], [4]);
  assert.deepEqual(calls, [{ counts: [2, 2], texts: ["3+4=", "4+3="] }], "n = 4 split over m = 2 paraphrases");
  const b = res.batch;
  assert.deepEqual([...b.groupIndex], [0, 0, 0, 0], "the paraphrase set is one group");
  assert.deepEqual(b.prompts, [encode("3+4="), encode("3+4="), encode("4+3="), encode("4+3=")]);
  // similarity to the OTHER paraphrase's rollouts: "7" vs {7, 7} = 1, "8" vs {7, 7} = 0, "7" vs {7, 8} = 0.5
  // reward = similarity + 0.5 · correctness
  assert.deepEqual([...(b.byFn[0] as Float64Array)], [1 + 0.5, 0, 0.5 + 0.5, 0.5 + 0.5]);
  assert.deepEqual([...(b.byFn[1] as Float64Array)], [0.25, 0.25, 0.25, 0.25], "other rewards are kept");
  assert.deepEqual(res.metrics, {
    "ps_grpo/similarity_mean": 0.5,
    "ps_grpo/success_rate": 0.75,
    "ps_grpo/set_size_mean": 2,
    "ps_grpo/consistent_sets": 0,
    "rollout/sampled": 4,
  });
});

test("ps_grpo: uneven budgets, several sets, consistency-only rewards and the sampled budget", async () => {
  const { host, calls } = fakeHost({
    "2+2=": [A("4"), A("4")],
    "What is 2 plus 2?": [A("4"), A("4")],
    "Add 2 and 2:": [A("5")],
    "1+5=": [A("6")],
    "5+1=": [A("6")],
    "What is 1 plus 5?": [A("6")],
  });
  const w = new PsGrpoWrapper({ setSize: 3 }, "p");
  const res = await w.rollout(host, [add(2, 2), add(1, 5), add(0, 9)], [5, 3, 0]);
  // 2+2 has no commuted form; 5 rollouts over 3 paraphrases → 2, 2, 1
  assert.deepEqual(calls[0]?.counts, [2, 2, 1, 1, 1, 1]);
  assert.deepEqual(calls[0]?.texts, ["2+2=", "What is 2 plus 2?", "Add 2 and 2:", "1+5=", "5+1=", "What is 1 plus 5?"]);
  const b = res.batch;
  assert.deepEqual(
    groupRows(b).map((g) => g.length),
    [5, 3],
  );
  // set 0: rows "4","4" | "4","4" | "5": a "4" row of paraphrase 0 vs {4, 4, 5} = 2/3; the "5" row vs {4×4} = 0
  const r = [...(b.byFn[0] as Float64Array)];
  assert.deepEqual(r, [2 / 3, 2 / 3, 2 / 3, 2 / 3, 0, 1, 1, 1]);
  assert.equal(res.metrics["ps_grpo/consistent_sets"], 0.5);
  assert.equal(res.metrics["ps_grpo/set_size_mean"], 3);
  assert.equal(res.metrics["rollout/sampled"], 8);
});

test("ps_grpo: maxCompare subsamples the other paraphrases' rollouts, the same way on every call", async () => {
  const answers = {
    "3+4=": [A("7"), A("1"), A("7"), A("1")],
    "4+3=": [A("7"), A("7"), A("7"), A("7")],
    "What is 3 plus 4?": [A("1"), A("1"), A("1"), A("1")],
  };
  const rewards = async () => {
    const { host } = fakeHost(answers);
    const res = await new PsGrpoWrapper({ setSize: 3, maxCompare: 1 }, "p").rollout(host, [add(3, 4)], [9]);
    return [...(res.batch.byFn[0] as Float64Array)];
  };
  const r1 = await rewards();
  assert.equal(r1.length, 9);
  for (const v of r1) assert.ok(v === 0 || v === 1, "one comparison: agree or not");
  assert.deepEqual(await rewards(), r1);
});

test("similarity: exact agreement after normalisation, SQuAD-style token F1, none extracted = 0", () => {
  assert.equal(answerSimilarity(" Paris  France", "paris france", "exact"), 1);
  assert.equal(answerSimilarity("7", "07", "exact"), 0);
  assert.equal(answerSimilarity("a b c", "a b d", "token-f1"), 2 / 3);
  assert.equal(answerSimilarity("a a b", "a b b", "token-f1"), 2 / 3);
  assert.equal(answerSimilarity(undefined, "7", "exact"), 0);
  assert.equal(answerSimilarity("7", undefined, "token-f1"), 0);
});

test("paraphrases: arithmetic templates the char tokenizer encodes; a JSONL field; a clear error without", () => {
  assert.deepEqual(arithmeticParaphrases({ op: "add", a: "12", b: "34" }), [
    "34+12=",
    "What is 12 plus 34?",
    "Add 12 and 34:",
  ]);
  assert.deepEqual(arithmeticParaphrases({ op: "sub", a: "40", b: "7" }), [
    "What is 40 minus 7?",
    "Subtract 7 from 40:",
  ]);
  assert.deepEqual(arithmeticParaphrases({ op: "mul", a: "6", b: "6" }), ["What is 6 times 6?", "Multiply 6 by 6:"]);
  const tok = new CharTokenizer();
  for (const q of arithmeticParaphrases({ op: "mul", a: "12", b: "34" })) assert.equal(tok.decode(tok.encode(q)), q);
  // the task writes them for the problems it samples, and its verifier accepts the same answer
  const t = arithmeticTask({ digits: [2, 2], ops: { sub: 1 } });
  const p = t.sample(Rng.fromSeed(2), "train");
  assert.deepEqual(paraphrasesOf(t as Task, p), arithmeticParaphrases(p.meta));
  assert.throws(() => t.paraphrases({ id: "x", prompt: "1+1=", meta: {} }), /no operands in meta \{op, a, b\}/);
  // a dataset line's "paraphrases" field wins over the task
  const line: Problem = { id: "qa.jsonl:3", prompt: "Capital of France?", answer: "Paris", meta: {} };
  line.meta.paraphrases = ["Which city is the capital of France?"];
  assert.deepEqual(paraphrasesOf(task, line), ["Which city is the capital of France?"]);
  line.meta.paraphrases = "Which city?";
  assert.throws(() => paraphrasesOf(task, line), /qa\.jsonl:3: the "paraphrases" field must be an array of non-empty/);
  const plain: Task = { name: "plain", sample: () => line, verify: () => ({ correct: false, format: false }) };
  assert.throws(
    () => paraphrasesOf(plain, { ...line, meta: {} }),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /problem qa\.jsonl:3 has no paraphrases/);
      assert.match(e.message, /give each JSONL line a "paraphrases" field/);
      return true;
    },
  );
  assert.throws(
    () => rolloutWrappers.get("ps_grpo")({ setSize: 1 }, "algo.rollout.wrapper.options"),
    /algo\.rollout\.wrapper\.options\.setSize: /,
  );
});

// ---- training run -------------------------------------------------------------------------------

test("ps_grpo preset trains on the arithmetic task over paraphrase sets and logs its metrics", async () => {
  const cfg = parseTrainConfig({
    name: "run",
    preset: "ps_grpo",
    seed: 3,
    model: { path: resolve("models/arithmetic-tiny") },
    outputDir: tmpRunRoot(),
    task: { name: "arithmetic", options: { digits: [1, 2], ops: { add: 1, sub: 1 } } },
    rewards: ["correctness", "format"],
    train: { steps: 3, promptsPerStep: 4, groupSize: 4, microBatchSize: 16 },
    sampling: { maxNewTokens: 24 },
    eval: { everySteps: 0 },
    checkpoint: { everySteps: 0 },
  });
  const r = await trainLeakFree(cfg);
  const ms = r.metrics.filter((m) => typeof m.loss === "number");
  assert.equal(ms.length, 3);
  for (const m of ms) {
    assert.ok(Number.isFinite(m.loss as number) && Number.isFinite(m.grad_norm as number));
    assert.equal(m["rollout/sampled"], 16, "B·G completions, as plain GRPO");
    assert.equal(m["ps_grpo/set_size_mean"], 2);
    const s = m["ps_grpo/similarity_mean"] as number;
    assert.ok(s >= 0 && s <= 1);
    // the correctness row now holds the similarity reward (correctnessWeight 0)
    assert.ok(Math.abs((m["reward/correctness/mean"] as number) - s) < 1e-12);
  }
  assert.ok(
    ms.some((m) => (m["ps_grpo/similarity_mean"] as number) > 0),
    "the pre-trained model answers some paraphrases alike",
  );
});
