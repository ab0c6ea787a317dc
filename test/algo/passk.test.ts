// Pass@k training advantage (arXiv 2508.10751): test vectors computed independently in float64 by Python's
// math.comb from the paper's closed form, and the k = 1 reduction to GRPO with the population std.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { grpo, passAtK } from "../../src/algo/advantage.js";
import type { RewardBatch } from "../../src/algo/types.js";
import { close } from "../helpers/close.js";
import { PYTHON } from "../helpers/oracle.js";

const batch = (rewards: number[], g: number): RewardBatch => ({
  rewards: Float64Array.from(rewards),
  groupIndex: Int32Array.from(rewards, (_, i) => Math.floor(i / g)),
});

/** The closed form, written in Python from the paper (not from the TypeScript). */
function oracle(rewards: number[], g: number, k: number): number[] {
  const code = `
import json, math, sys
r, g, k = json.loads(sys.stdin.read())
out = []
for s in range(0, len(r), g):
    grp = r[s:s + g]
    n, c = len(grp), sum(1 for x in grp if x > 0.5)
    if n < k or c in (0, n):
        out += [0.0] * n
        continue
    rho = 1 - math.comb(n - c, k) / math.comb(n, k)
    sig = math.sqrt(rho * (1 - rho))
    pos = (1 - rho) / (sig + 1e-6)
    neg = (1 - rho - math.comb(n - c - 1, k - 1) / math.comb(n - 1, k - 1)) / (sig + 1e-6)
    out += [pos if x > 0.5 else neg for x in grp]
print(json.dumps(out))`;
  const res = spawnSync(PYTHON, ["-c", code], { input: JSON.stringify([rewards, g, k]), encoding: "utf8" });
  assert.equal(res.status, 0, res.stderr);
  return JSON.parse(res.stdout) as number[];
}

test("pass@k advantage equals the closed form (k = 2, 4; groups of 8 with 0..8 correct)", () => {
  const rewards = [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  for (const k of [2, 4]) {
    const got = passAtK(batch(rewards, 8), { k }).values;
    close(got, oracle(rewards, 8, k), 1e-12);
  }
  // a hand value: n = 8, c = 1, k = 4: ρ = 1 − C(7,4)/C(8,4) = 0.5, σ = 0.5: correct 1, incorrect (0.5 − C(6,3)/C(7,3))/0.5
  const a = passAtK(batch(rewards.slice(0, 8), 8), { k: 4 }).values;
  close([a[0]!, a[1]!], [0.5 / (0.5 + 1e-6), (0.5 - 20 / 35) / (0.5 + 1e-6)], 1e-12);
});

test("k = 1 is GRPO with the population std; all-equal groups get 0", () => {
  const rewards = [1, 0, 0, 1, 1, 1, 0, 1];
  close(passAtK(batch(rewards, 4), { k: 1 }).values, grpo(batch(rewards, 4), { std: "population" }).values, 1e-9);
  assert.deepEqual(Array.from(passAtK(batch([1, 1, 1, 1, 0, 0, 0, 0], 4), { k: 2 }).values), new Array(8).fill(0));
  assert.throws(() => passAtK(batch(rewards, 4), { k: 0 }), /passk\.k/);
});
