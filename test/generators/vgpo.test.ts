/**
 * VGPO's advantages (src/algo/vgpo.ts) against the hand-computed vectors of ALGORITHMS.md F.2, the all-equal group
 * where GRPO gives 0 and VGPO's absolute term does not, and the estimator through the pipeline with per-step
 * rewards given as increments (the digits_flow convention: their running sum is the instant reward).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { grpo } from "../../src/algo/advantage.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { vgpo, vgpoAdvantages, vgpoParams } from "../../src/algo/vgpo.js";
import { getPreset } from "../../src/presets/index.js";
import { type Tensor, tensor } from "../../src/tensor/index.js";

const close = (got: ArrayLike<number>, want: number[], tol: number, what: string) => {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++)
    assert.ok(Math.abs((got[i] as number) - (want[i] as number)) <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
};

// instant rewards R (G = 3, K = 4) of the spec, and the per-step increments whose running sums they are
const R = [
  [0.2, 0.4, 0.7, 0.8],
  [0.3, 0.3, 0.5, 0.6],
  [0.1, 0.5, 0.6, 0.7],
];
const increments = Float64Array.from(R.flatMap((row) => row.map((v, j) => v - (j > 0 ? (row[j - 1] as number) : 0))));
const ones = new Float64Array(12).fill(1);
const A4 = [
  [2.301648, 1.866336, 1.731887, 0.798825],
  [-0.340662, -0.603772, -0.465623, -0.391749],
  [0.859166, 1.548793, 0.595243, 0.192788],
];

test("VGPO values and advantages match ALGORITHMS.md F.2 (γ 0.9, k 0.5, absolute term on 4 and on 2 steps)", () => {
  const p = vgpoParams.parse({ gamma: 0.9, k: 0.5, eps: 1e-6, absSteps: 4 });
  const r = vgpoAdvantages(increments, ones, [[0, 1, 2]], 3, 4, p);
  close(r.values, [1.7102, 1.678, 1.42, 0.8, 1.4124, 1.236, 1.04, 0.6, 1.5463, 1.607, 1.23, 0.7], 1e-12, "Q");
  close(r.advantages, A4.flat(), 5e-6, "A (J_abs = 4)");
  const two = vgpoAdvantages(increments, ones, [[0, 1, 2]], 3, 4, { ...p, absSteps: 2 });
  close(two.advantages.subarray(8), [0.859166, 1.548793, 0.0, 0.0], 5e-6, "row 2 (J_abs = 2)");
});

test("an all-equal group: GRPO gives 0, VGPO keeps ω·k·Q = 0.25", () => {
  const rows = { rewards: Float64Array.of(0.5, 0.5), groupIndex: Int32Array.of(0, 0) };
  assert.deepEqual(Array.from(grpo(rows).values), [0, 0]);
  const mask = tensor([1, 1], { shape: [2, 1], dtype: "f32" });
  const a = vgpo({ ...rows, mask }, { k: 0.5 });
  close(a.values.data() as Float64Array, [0.25, 0.25], 1e-12, "VGPO");
  const off = vgpo({ ...rows, mask }, { k: 0 });
  close(off.values.data() as Float64Array, [0, 0], 1e-12, "k = 0 is plain per-step GRPO");
  for (const t of [mask, a.values, off.values]) t.dispose();
});

test("vgpo through the pipeline reads per-step rewards; ragged rows, a NaN reward and a singleton group", () => {
  const pl = new Pipeline(getPreset("vgpo").config);
  const n = 3;
  const mask = tensor(ones, { shape: [n, 4], dtype: "f32" });
  const tokenRewards = tensor(increments, { shape: [n, 4], dtype: "f64" });
  const returns = Float64Array.from(R, (row) => row[3] as number);
  const st = pl.advantages([returns], { groupIndex: Int32Array.of(0, 0, 0), mask, tokenRewards }, { mask });
  assert.equal(st.advantages.kind, "token");
  // the preset's defaults: γ 0.9, k 0.5, the absolute term on steps 0..4 (all 4 here)
  close((st.advantages.values as Tensor).to("f64").data() as Float64Array, A4.flat(), 5e-6, "A");
  (st.advantages.values as Tensor).dispose();
  // row 1 ends after 2 steps; row 2's reward is NaN (no advantage, left out of the statistics); row 3 alone
  const m2 = Float64Array.of(1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0);
  const r2 = Float64Array.of(...increments, 0.3, 0.1, 0.2, 0);
  const p = vgpoParams.parse({});
  const out = vgpoAdvantages(r2, m2, [[0, 1, 2], [3]], 4, 4, p, (i) => i === 2);
  const Q0 = [1.7102, 1.678, 1.42, 0.8];
  const Q1 = [0.3 + 0.9 * 0.3, 0.3];
  // steps 0 and 1: rows 0 and 1; steps 2 and 3: row 0 alone (relative term 0)
  const w0 = Q0.map((q) => q / (Q0.reduce((a, b) => a + b) / 4));
  const w1 = Q1.map((q) => q / (Q1.reduce((a, b) => a + b) / 2));
  const rel = (a: number, b: number) => (a - (a + b) / 2) / (Math.abs(a - b) / Math.SQRT2 + 1e-6);
  close(
    out.advantages.subarray(0, 8),
    [
      (w0[0] as number) * (rel(Q0[0] as number, Q1[0] as number) + 0.5 * (Q0[0] as number)),
      (w0[1] as number) * (rel(Q0[1] as number, Q1[1] as number) + 0.5 * (Q0[1] as number)),
      (w0[2] as number) * 0.5 * (Q0[2] as number),
      (w0[3] as number) * 0.5 * (Q0[3] as number),
      (w1[0] as number) * (rel(Q1[0] as number, Q0[0] as number) + 0.5 * (Q1[0] as number)),
      (w1[1] as number) * (rel(Q1[1] as number, Q0[1] as number) + 0.5 * (Q1[1] as number)),
      0,
      0,
    ],
    1e-9,
    "ragged",
  );
  close(out.advantages.subarray(8, 12), [0, 0, 0, 0], 0, "NaN row");
  const Q3 = [0.3 + 0.9 * 0.4 + 0.81 * 0.6, 0.4 + 0.9 * 0.6, 0.6];
  const m3 = (Q3[0]! + Q3[1]! + Q3[2]!) / 3;
  close(out.advantages.subarray(12), [...Q3.map((q) => (q / m3) * 0.5 * q), 0], 1e-9, "singleton");
  mask.dispose();
  tokenRewards.dispose();
});

test("flow_grpo's advantage is the spec's global-std Flow-GRPO advantage", () => {
  const cfg = getPreset("flow_grpo").config.advantage?.options;
  const rows = { rewards: Float64Array.of(1, 0, 0.5, 0.2, 0.2, 0.8), groupIndex: Int32Array.of(0, 0, 0, 1, 1, 1) };
  close(
    grpo(rows, cfg as Parameters<typeof grpo>[1]).values,
    [1.4091257, -1.4091257, 0, -0.5636503, -0.5636503, 1.1273006],
    1e-6,
    "A",
  );
});
