// c10d over loopback with two ranks (child processes running worker.ts): every collective on known values,
// one optimizer step over two ranks against the same step on the combined batch in one process (fp32, 1e-5),
// with the gradient all-reduce after the backward passes and overlapped with the last one, and a rank that
// stalls past the collective timeout.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ReducerStats } from "../../src/parallel/group.js";
import { type Result, twoRanks } from "./helpers.js";

// one "grads" run of the two ranks serves both tests that read it
let gradsRun: Promise<Result[]> | null = null;
const gradsRanks = () => {
  gradsRun ??= twoRanks("grads");
  return gradsRun;
};

test("collectives: bucketed all-reduce (mixed dtypes), broadcast, sums, all-gathers, barrier", async () => {
  const rs = await twoRanks("ops");
  for (const r of rs) {
    assert.deepEqual(r.allreduce, [[3, 4, 6], [30, 2, 4, 6], [0.5, 14], Array.from({ length: 40 }, (_, i) => 3 * i)]);
    assert.deepEqual(r.broadcast, [1, 1, 1]);
    assert.equal(r.broadcastKeepsGrad, true);
    assert.deepEqual(r.sum, [1, 2, 0.5]);
    assert.deepEqual(r.any, [true, false]);
    assert.deepEqual(r.allgather, [[1], [2, 3, 4]]);
    assert.deepEqual(r.json, [
      { rank: 0, text: "é" },
      { rank: 1, text: "éé" },
    ]);
  }
  assert.deepEqual(rs[0]?.peers, rs[1]?.peers);
});

test("two ranks give the loss and gradients of one process on the combined batch (fp32, 1e-5)", async () => {
  const rs = await gradsRanks();
  const [r0, r1] = rs.map((r) => r.presets as Record<string, number | string | boolean>[]) as [
    Record<string, number | string | boolean>[],
    Record<string, number | string | boolean>[],
  ];
  assert.equal(r0.length, 3);
  for (let i = 0; i < r0.length; i++) {
    const a = r0[i] as Record<string, number>;
    const b = r1[i] as Record<string, number>;
    const what = String(a.preset);
    // the ranks hold different rows (different local losses), the counts are global
    assert.notEqual(a.localLoss, b.localLoss, what);
    assert.equal(a.dpTokens, a.refTokens, what);
    assert.ok(
      Math.abs((a.dpLoss as number) - (a.refLoss as number)) <= 1e-5,
      `${what}: loss ${a.dpLoss} vs ${a.refLoss}`,
    );
    assert.equal(a.dpLoss, b.dpLoss, what);
    assert.ok((a.maxRef as number) > 1e-3, `${what}: the gradient is not trivial`);
    assert.ok((a.maxDiff as number) <= 1e-5, `${what}: max |Δgrad| ${a.maxDiff}`);
    assert.ok((b.maxDiff as number) <= 1e-5, `${what}: max |Δgrad| ${b.maxDiff} on rank 1`);
    assert.equal(a.gradSum, b.gradSum, `${what}: both ranks hold the same summed gradient`);
    assert.equal(a.finite, true);
    // overlapped with the backward pass: the same sums (2 ranks: a + b in either order, so exactly)
    for (const [r, x] of [a, b].entries()) {
      assert.ok((x.maxOverlapDiff as number) <= 1e-5, `${what}: rank ${r} overlapped max |Δgrad| ${x.maxOverlapDiff}`);
      assert.equal(x.overlapVsAfter, 0, `${what}: rank ${r}: overlapped vs after-backward gradients`);
      assert.equal(x.overlapFinite, true);
      // one bucket per parameter (each > 64 bytes), every one launched by the last backward pass, from the
      // hook of its gradient accumulator, before that pass returned
      const st = x.overlapStats as unknown as ReducerStats;
      assert.equal(st.buckets, x.params, `${what}: buckets`);
      assert.equal(st.launchedInBackward, x.params, `${what}: rank ${r} buckets launched in backward`);
      assert.equal(st.launchedAfterBackward, 0, `${what}: rank ${r}`);
    }
  }
});

test("overlapped reducer: parameters without a gradient on some or every rank, a non-finite loss, no prepare", async () => {
  const rs = await gradsRanks();
  const a = new Array<number>(20).fill(3); // d/da of a·1 on rank 0 plus a·2 on rank 1
  const b = Array.from({ length: 17 }, (_, i) => 2 * (i - 8)); // d/db of b·b on rank 0 only
  for (const r of rs) {
    const few = r.few as { finite: boolean; grads: (number[] | null)[]; stats: ReducerStats };
    assert.equal(few.finite, false, "rank 1's loss was not finite, so the step is skipped on both");
    assert.deepEqual(few.grads, [null, a, b]);
    assert.equal(few.stats.buckets, 3);
    assert.equal(few.stats.launchedInBackward + few.stats.launchedAfterBackward, 3);
    assert.deepEqual(r.fewUnarmed, { buckets: 3, launchedInBackward: 0, launchedAfterBackward: 3, steps: 2 });
  }
  const [r0, r1] = rs.map((r) => r.few as Record<string, Record<string, number>>) as [
    Record<string, Record<string, number>>,
    Record<string, Record<string, number>>,
  ];
  // rank 0 launched b's and a's buckets before backward returned; rank 1 waits for b, which never comes
  assert.equal(r0.statsBeforeFinish?.launchedInBackward, 2);
  assert.equal(r0.stats?.launchedInBackward, 2);
  assert.equal(r1.stats?.launchedInBackward, 0);
});

test("a rank that stalls past the collective timeout: the other one fails with a message saying so", async () => {
  const rs = await twoRanks("hang", { TIMEOUT_MS: "1500" });
  const msg = String(rs[0]?.error);
  assert.match(msg, /^rank 0: barrier failed: /);
  assert.match(msg, /No rank has exited; one hung past the 1\.5 s timeout/);
});
