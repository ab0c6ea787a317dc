// c10d over loopback with two ranks (child processes running worker.ts): every collective on known values,
// one optimizer step over two ranks against the same step on the combined batch in one process (fp32, 1e-5),
// and a rank that stalls past the collective timeout.
import assert from "node:assert/strict";
import { test } from "node:test";
import { twoRanks } from "./helpers.js";

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
  const rs = await twoRanks("grads");
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
  }
});

test("a rank that stalls past the collective timeout: the other one fails with a message saying so", async () => {
  const rs = await twoRanks("hang", { TIMEOUT_MS: "1500" });
  const msg = String(rs[0]?.error);
  assert.match(msg, /^rank 0: barrier failed: /);
  assert.match(msg, /No rank has exited; one hung past the 1\.5 s timeout/);
});
