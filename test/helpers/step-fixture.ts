// Fixed inputs for one optimizer step (rewards and per-token tensors in float64) that make every component of
// the design space bite: mixed and all-equal groups, ratios far from 1 on both sides, ragged masks, truncated
// rows, shared token prefixes (GTPO conflicts), entropies on both sides of GTPO's threshold, lengths inside
// DAPO's overlong buffer, agent-step fields (one-step episodes) and rank-position rewards.
import type { StepRows, StepTokens } from "../../src/algo/step.js";
import { type Tensor, tensor } from "../../src/tensor/index.js";

/** A small seeded PRNG (mulberry32): the same fixture on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface StepFixture {
  rows: StepRows;
  /** Fresh tensors (a new grad leaf each call). */
  tokens(): StepTokens;
  dispose(): void;
  N: number;
  T: number;
  /** Completions per group. */
  G: number;
}

export function stepFixture(seed = 1, groups = 3, G = 4, T = 6): StepFixture {
  const r = prng(seed);
  const N = groups * G;
  const groupIndex = Int32Array.from({ length: N }, (_, i) => Math.floor(i / G));
  // reward 0: binary; reward 1: graded. The last group is all-equal in both (a zero-std question).
  const correct = Float64Array.from({ length: N }, (_, i) => (groupIndex[i] === groups - 1 ? 1 : i % 3 === 0 ? 1 : 0));
  const graded = Float64Array.from({ length: N }, (_, i) =>
    groupIndex[i] === groups - 1 ? 0.5 : Math.round(r() * 8) / 8,
  );
  correct[1] = 1; // group 0 has two positives
  const len = Int32Array.from({ length: N }, () => 2 + Math.floor(r() * (T - 1)));
  len[0] = T;
  len[4] = T;
  const mask: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < N; i++) {
    for (let t = 0; t < T; t++) {
      // rows 0 and 4 have a masked observation token inside the completion (two actions, LLDS's A-gate)
      mask.push(t < (len[i] as number) && !((i === 0 || i === 4) && t === 2) ? 1 : 0);
      // a shared prefix in each group (GTPO conflicts), then varied tokens from a small vocabulary
      ids.push(t < 2 ? 7 + (groupIndex[i] as number) : Math.floor(r() * 3));
    }
  }
  const old = Array.from({ length: N * T }, () => -0.2 - 2.5 * r());
  // token log-ratios around a per-row offset of ±0.2: sequence ratios on both sides of 1 in every group
  const delta = Array.from({ length: N * T }, (_, k) => (r() - 0.5) * 0.9 + (Math.floor(k / T) % 2 === 0 ? 0.2 : -0.2));
  const refShift = Array.from({ length: N * T }, () => (r() - 0.5) * 0.6);
  const entropy = Array.from({ length: N * T }, () => 0.2 + r());
  const curvature = Array.from({ length: N * T }, () => 2 * r());
  const score = Array.from({ length: N * T }, () => r());
  const items = Array.from(
    { length: N * T },
    (_, k) => Math.min(2, Math.floor((k % T) / 2)) - (k % T === T - 1 ? 3 : 0),
  );
  const texts = Array.from({ length: N }, () => `answer ${Math.floor(r() * 100)}`);
  // near-identical completions on opposite sides of group 0's mean (DaGRPO pairs)
  texts[1] = "so the final answer to this question is 42";
  texts[2] = "so the final answer to this question is 43";
  const keep: Tensor[] = [];
  const hold = (t: Tensor) => {
    keep.push(t);
    return t;
  };
  const rows: StepRows = {
    byFn: [correct, graded],
    groupIndex,
    // inside DAPO's overlong buffer; one length for the all-equal group so it stays all-equal after the penalty
    lengths: Int32Array.from(len, (l, i) => (groupIndex[i] === groups - 1 ? 17000 : 15000 + l * 900 + (i % 5) * 500)),
    meanLogprobs: Float64Array.from({ length: N }, () => -0.1 - 2 * r()),
    truncated: Uint8Array.from({ length: N }, (_, i) => (i % 5 === 4 ? 1 : 0)),
    texts,
    // prompt fields (hop-grouped estimators): `hops` joins the first two groups into one and keeps the
    // all-equal last group apart; `level` is the prompt group itself
    fields: Array.from({ length: N }, (_, i) => ({
      hops: groupIndex[i] === groups - 1 ? "last" : "h",
      level: `l${groupIndex[i]}`,
    })),
    // two-step episodes: rows 2k and 2k + 1 are steps 0 and 1 of one trajectory; anchor states repeat per group
    trajectoryIndex: Int32Array.from({ length: N }, (_, i) => i >> 1),
    stepIndex: Int32Array.from({ length: N }, (_, i) => i & 1),
    observationKey: Array.from({ length: N }, (_, i) => `s${groupIndex[i]}-${i & 1}`),
    agentId: Int32Array.from({ length: N }, (_, i) => i % 2),
    executed: Uint8Array.from({ length: N }, (_, i) => (i % 3 === 1 ? 1 : 0)),
    rankRewards: Array.from({ length: N }, () => Float64Array.from({ length: 3 }, () => Math.round(r() * 4) / 4)),
    itemIndex: hold(tensor(items, { shape: [N, T], dtype: "i64" })),
    // a critic's V(s_t) and the bootstrap column (GAE)
    values: hold(
      tensor(
        Array.from({ length: N * (T + 1) }, () => r() - 0.5),
        { shape: [N, T + 1], dtype: "f64" },
      ),
    ),
  };
  const f64 = (v: number[]) => hold(tensor(v, { shape: [N, T], dtype: "f64" }));
  const oldT = f64(old);
  const refT = f64(old.map((x, k) => x + (refShift[k] as number)));
  const maskT = f64(mask);
  const entT = f64(entropy);
  const curvT = f64(curvature);
  const scoreT = f64(score);
  const idsT = hold(tensor(ids, { shape: [N, T], dtype: "i64" }));
  const lp = old.map((x, k) => x + (delta[k] as number));
  return {
    rows,
    N,
    T,
    G,
    tokens: () => ({
      logprobs: tensor(lp, { shape: [N, T], dtype: "f64" }).requireGrad(),
      oldLogprobs: oldT,
      refLogprobs: refT,
      entropy: entT,
      tokenIds: idsT,
      mask: maskT,
      curvature: curvT,
      score: scoreT,
      // ρ^T: π_old at temperature t over temperature 1, a smooth function of t for the fixture
      targetRatio: (t: number) =>
        tensor(
          old.map((x) => Math.exp((x / t - x) * 0.3)),
          { shape: [N, T], dtype: "f64" },
        ),
    }),
    dispose: () => {
      for (const t of keep) t.dispose();
    },
  };
}

/** Run-specific overrides some presets need (Dr. GRPO's constant L_max). */
export const RUN_SPECIFIC: Record<string, Record<string, unknown>> = {
  dr_grpo: { aggregate: { maxLength: 8 } },
  // two rewards in [0, 1] sum to [0, 2]
  bnpo: { advantage: { options: { rMax: 2 } } },
};
