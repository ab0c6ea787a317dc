// Rank-GRPO over data-parallel ranks: each rank's rank rewards and item index travel with its share of the step,
// so every rank gets the advantages one process computes over all rows (completions of different lengths).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Pipeline } from "../../src/algo/pipeline.js";
import type { ProcessGroup } from "../../src/parallel/group.js";
import { resolvePreset } from "../../src/presets/index.js";
import { tensor } from "../../src/tensor/index.js";
import { advantagesOverRanks } from "../../src/train/dist-stage.js";

const pl = new Pipeline(resolvePreset("rank_grpo"));

// two ranks, one group of 3 each; rank 0's completions have 4 columns, rank 1's 3
const shares = [
  {
    groupIndex: Int32Array.of(0, 0, 0),
    rankRewards: [Float64Array.of(1.5, 0.5), Float64Array.of(0.6, 0.6), Float64Array.of(0, 0)],
    items: [
      [0, 0, 1, -1],
      [0, 1, 1, 1],
      [-1, -1, -1, -1],
    ],
  },
  {
    groupIndex: Int32Array.of(0, 0, 0),
    rankRewards: [Float64Array.of(0, 0), Float64Array.of(1, 0), Float64Array.of(0.63, 0.63)],
    items: [
      [0, 1, -1],
      [0, 0, 1],
      [1, 1, 1],
    ],
  },
];

function stageOf(s: (typeof shares)[number], group: ProcessGroup) {
  const C = s.items[0]!.length;
  const mask = tensor(
    s.items.map((r) => r.map(() => 1)),
    { dtype: "f32" },
  );
  const itemIndex = tensor(s.items, { dtype: "i32", shape: [3, C] });
  const r = advantagesOverRanks(
    group,
    pl,
    [Float64Array.of(0, 0, 0)],
    { groupIndex: s.groupIndex, rankRewards: s.rankRewards, itemIndex },
    { mask },
  );
  mask.dispose();
  itemIndex.dispose();
  return r;
}

test("rank_grpo over 2 ranks equals one process over all rows", () => {
  // each rank's share as it would be sent (a group of one records it)
  const sent: unknown[] = [];
  const recorder = (rank: number) =>
    ({
      rank: 0,
      allgatherJson: <T>(v: T) => {
        sent[rank] = v;
        return [v];
      },
    }) as unknown as ProcessGroup;
  shares.forEach((s, r) => {
    const st = stageOf(s, recorder(r));
    if (st.advantages.kind === "token") st.advantages.values.dispose();
  });
  const both = (rank: number) => ({ rank, allgatherJson: () => [...sent] }) as unknown as ProcessGroup;
  // one process: the 6 rows as two groups, padded to 4 columns with −1
  const C = 4;
  const all = shares.flatMap((s) => s.items.map((r) => [...r, ...new Array(C - r.length).fill(-1)]));
  const mask = tensor(
    shares.flatMap((s) => s.items.map((r) => [...r.map(() => 1), ...new Array(C - r.length).fill(0)])),
    { dtype: "f32" },
  );
  const itemIndex = tensor(all, { dtype: "i32", shape: [6, C] });
  const one = pl.advantages(
    [new Float64Array(6)],
    {
      groupIndex: Int32Array.of(0, 0, 0, 1, 1, 1),
      rankRewards: shares.flatMap((s) => s.rankRewards),
      itemIndex,
    },
    { mask },
  );
  assert.equal(one.advantages.kind, "token");
  const ref = one.advantages.kind === "token" ? (one.advantages.values.tolist() as number[][]) : [];
  shares.forEach((s, r) => {
    const st = stageOf(s, both(r));
    assert.equal(st.advantages.kind, "token");
    const got = st.advantages.kind === "token" ? (st.advantages.values.tolist() as number[][]) : [];
    const want = ref.slice(3 * r, 3 * r + 3).map((row) => row.slice(0, s.items[0]!.length));
    got.forEach((row, i) => {
      row.forEach((x, j) => {
        assert.ok(Math.abs(x - want[i]![j]!) < 1e-6, `rank ${r} row ${i} col ${j}: ${x} vs ${want[i]![j]}`);
      });
    });
    if (st.advantages.kind === "token") st.advantages.values.dispose();
  });
  // non-trivial: rank 0's first row has positive advantages on both items
  assert.ok(ref[0]![0]! > 0 && ref[0]![2]! > 0);
  if (one.advantages.kind === "token") one.advantages.values.dispose();
  mask.dispose();
  itemIndex.dispose();
});
