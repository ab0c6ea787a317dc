// The nearest ranking task: per-rank relevance of hand-checked lists (malformed ones included), the verifier,
// NDCG, option errors, and the token → item map the trainer gives Rank-GRPO.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ConfigError } from "../../src/errors.js";
import { builtinRewards } from "../../src/reward/builtin.js";
import { type NearestMeta, nearestTask } from "../../src/task/nearest.js";
import { dcg, isRankingTask, ndcg, parseRankedList } from "../../src/task/ranking.js";
import { createTask } from "../../src/task/registry.js";
import { Rng } from "../../src/task/rng.js";
import type { Problem } from "../../src/task/types.js";
import { CharTokenizer } from "../../src/tokenizer/char.js";
import { rankInputs, tokenItems } from "../../src/train/ranked.js";

// 47: distances 12→35, 50→3, 33→14, 81→34, 45→2, 60→13, so nearest first 45 50 60 33 81 12
const P: Problem<NearestMeta> = {
  id: "nearest/47:12 33 45 50 60 81",
  prompt: "3 near 47: 12 50 33 81 45 60=",
  answer: "45 50 60",
  meta: { target: 47, candidates: [12, 50, 33, 81, 45, 60], ranking: [45, 50, 60, 33, 81, 12] },
};
const task = nearestTask();
const d = (j: number) => 1 / Math.log2(j + 1); // discount of rank j (1-based)

function near(a: readonly number[], b: readonly number[], tol = 1e-12) {
  assert.equal(a.length, b.length, `${a} vs ${b}`);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - (b[i] as number)) <= tol, `[${i}] ${x} vs ${b[i]} (${a} vs ${b})`);
  });
}

describe("nearest: per-rank relevance", () => {
  test("graded relevance (k − t)/k of hand-checked lists, malformed ones included", () => {
    const cases: [string, number[]][] = [
      ["<answer>45 50 60</answer>", [1, 2 / 3, 1 / 3]],
      ["<answer>50 45 33</answer>", [2 / 3, 1, 0]], // 33 is 4th nearest
      ["<answer>45 45 x</answer>", [1, 0, 0]], // a repeat and a non-number
      ["<answer>60</answer>", [1 / 3, 0, 0]], // short list: missing ranks get 0
      ["45 50 60", [0, 0, 0]], // no answer span
      ["<answer>45 50", [0, 0, 0]], // unclosed
      ["<answer>45,50, 99</answer>", [1, 2 / 3, 0]], // commas; 99 is no candidate
      ["<answer>-45 +50 4 5</answer>", [0, 0, 0]], // signs and split digits are not the numbers
      ["<answer>45 50 60 33</answer>", [1, 2 / 3, 1 / 3]], // items after the k-th are ignored
      ["", [0, 0, 0]],
    ];
    for (const [c, rel] of cases) near(task.rank(P, c).relevance, rel);
    near(nearestTask({ relevance: "binary" }).rank(P, "<answer>50 45 33</answer>").relevance, [1, 1, 0]);
  });

  test("item spans: from an item to the next, the last to the end of the answer", () => {
    // "<answer>" is 8 characters
    assert.deepEqual(task.rank(P, "<answer>45,50, 99</answer>").spans, [
      [8, 11],
      [11, 15],
      [15, 17],
    ]);
    assert.deepEqual(task.rank(P, "<answer>60</answer>").spans, [[8, 10], null, null]);
    assert.deepEqual(task.rank(P, "45 50 60").spans, [null, null, null]);
    // the k-th item ends at its own end when more follow
    assert.deepEqual(parseRankedList("<answer>1 2 3 4</answer>", 3, "answer"), {
      items: [
        { text: "1", start: 8, end: 10 },
        { text: "2", start: 10, end: 12 },
        { text: "3", start: 12, end: 13 },
      ],
      more: true,
    });
  });

  test("NDCG and the ndcg reward against hand-computed DCGs", () => {
    const ideal = 1 * d(1) + (2 / 3) * d(2) + (1 / 3) * d(3);
    assert.ok(Math.abs(task.rank(P, "x").idealDcg - ideal) < 1e-15);
    const swapped = task.rank(P, "<answer>50 45 33</answer>");
    assert.ok(Math.abs(dcg(swapped.relevance) - ((2 / 3) * d(1) + 1 * d(2))) < 1e-15);
    assert.ok(Math.abs(ndcg(swapped) - ((2 / 3) * d(1) + d(2)) / ideal) < 1e-15);
    assert.equal(ndcg(task.rank(P, "<answer>45 50 60</answer>")), 1);
    const reward = builtinRewards.get("ndcg")({ task });
    const s = { prompt: P.prompt, completion: "<answer>50 45 33</answer>", fields: P.meta, id: P.id };
    assert.ok(Math.abs((reward(s) as number) - ndcg(swapped)) < 1e-15);
    assert.throws(
      () => builtinRewards.get("ndcg")({ task: createTask("arithmetic") }),
      (e: unknown) => e instanceof ConfigError && /does not rank items/.test(e.message),
    );
  });

  test("verify: correct is exactly the top k in order; format is k integers in one span", () => {
    assert.deepEqual(task.verify(P, "<answer>45 50 60</answer>"), {
      correct: true,
      format: true,
      parsed: "45 50 60",
    });
    const v = (c: string) => {
      const r = task.verify(P, c);
      return [r.correct, r.format];
    };
    assert.deepEqual(v("<answer>50 45 60</answer>"), [false, true]);
    assert.deepEqual(v("<answer>45 50</answer>"), [false, false]);
    assert.deepEqual(v("<answer>45 50 60 33</answer>"), [false, false]);
    assert.deepEqual(v("<answer>45 50 x</answer>"), [false, false]);
    assert.deepEqual(v("no list"), [false, false]);
  });
});

describe("nearest: problems and options", () => {
  test("problems: distinct distances, the answer is the true top k, deterministic, splits disjoint", () => {
    const t = createTask("nearest", { k: 2, candidates: [4, 7], numbers: [10, 40] });
    assert.ok(isRankingTask(t));
    const a = Rng.fromSeed(3);
    const b = Rng.fromSeed(3);
    const trainIds = new Set<string>();
    for (let i = 0; i < 200; i++) {
      const p = t.sample(a, "train") as Problem<NearestMeta>;
      assert.deepEqual(t.sample(b, "train"), p);
      trainIds.add(p.id);
      const { target, candidates, ranking } = p.meta;
      assert.ok(candidates.length >= 4 && candidates.length <= 7);
      assert.ok(candidates.every((x) => x >= 10 && x <= 40) && target >= 10 && target <= 40);
      const dist = candidates.map((x) => Math.abs(x - target));
      assert.equal(new Set(dist).size, dist.length, "distinct distances");
      assert.equal(p.prompt, `2 near ${target}: ${candidates.join(" ")}=`);
      assert.equal(p.answer, ranking.slice(0, 2).join(" "));
      assert.equal(t.verify(p, `<answer>${p.answer}</answer>`).correct, true);
    }
    const e = Rng.fromSeed(4);
    for (let i = 0; i < 50; i++) assert.ok(!trainIds.has(t.sample(e, "eval").id));
  });

  test("bad options: a ConfigError naming the option and what is allowed", () => {
    const bad: [unknown, RegExp][] = [
      [{ k: 0 }, /task\.options\.k/],
      [{ k: 4, candidates: 3 }, /at least k = 4 candidates/],
      [{ numbers: [0, 9], candidates: 6 }, /distinct distances need at least 12/],
      [{ relevance: "ndcg" }, /task\.options\.relevance.*graded.*binary/],
      [{ rankReward: "linear" }, /rankReward/],
      [{ top: 3 }, /unknown key "top"/],
    ];
    for (const [o, re] of bad) {
      assert.throws(
        () => createTask("nearest", o),
        (e: unknown) => e instanceof ConfigError && re.test(`${e.path}: ${e.message}`),
        JSON.stringify(o),
      );
    }
  });
});

describe("Rank-GRPO inputs of a step on nearest", () => {
  const tok = new CharTokenizer();
  test("each token's item: an item's characters and its separator; tags, EOS and extra items get −1", () => {
    const text = "<answer>50 45 33 81</answer>";
    const ids = [...tok.encode(text), tok.eosId];
    const spans = task.rank(P, text).spans;
    const items = Array.from(tokenItems(tok, ids, spans));
    const expected = [
      ...new Array(8).fill(-1), // <answer>
      0,
      0,
      0, // "50 "
      1,
      1,
      1, // "45 "
      2,
      2, // "33"
      -1,
      -1,
      -1, // " 81", past the k-th item
      ...new Array(9).fill(-1), // </answer>
      -1, // EOS
    ];
    assert.deepEqual(items, expected);
  });

  test("rank rewards (suffix DCG) and the [N, C] item index, padded with −1", () => {
    const texts = ["<answer>45 50 60</answer>", "<answer>60</answer>", "junk"];
    const completions = texts.map((t) => ({
      tokens: [...tok.encode(t), tok.eosId],
      logprobs: [],
      finishReason: "stop" as const,
    }));
    const C = 30;
    const { rankRewards, itemIndex } = rankInputs(task, tok, { problems: [P, P, P], completions, texts }, C);
    near(Array.from(rankRewards[0]!), [
      1 * d(1) + (2 / 3) * d(2) + (1 / 3) * d(3),
      (2 / 3) * d(2) + (1 / 3) * d(3),
      (1 / 3) * d(3),
    ]);
    near(Array.from(rankRewards[1]!), [(1 / 3) * d(1), 0, 0]);
    near(Array.from(rankRewards[2]!), [0, 0, 0]);
    assert.deepEqual(itemIndex.shape, [3, C]);
    const rows = itemIndex.tolist() as number[][];
    assert.deepEqual(rows[0]!.slice(8, 16), [0, 0, 0, 1, 1, 1, 2, 2]);
    assert.deepEqual(rows[1]!.slice(6, 12), [-1, -1, 0, 0, -1, -1]);
    assert.ok(rows[2]!.every((x) => x === -1));
    assert.ok(
      rows[0]!.slice(16).every((x) => x === -1),
      "tags, EOS and padding",
    );
    itemIndex.dispose();
  });
});
