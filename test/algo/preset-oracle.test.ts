/**
 * Presets end to end against an independent float64 oracle. test/algo/preset_oracle.py re-derives, from
 * ALGORITHMS.md §0 and §A–§D alone, the reward → advantage → filters → loss → gradient path of every [CODE],
 * [CODE-FW] and [PAPER-KNOWN] preset; `computeStepLoss` must give the same loss, dLoss/dℓ, advantages and kept
 * rows (rtol 1e-9), and the same loss and gradient again when the batch is split into 2 and 4 micro-batches.
 *
 * Letters: N completions (2–3 groups of G = 4), T = 5 completion columns, K reward functions. Masks are ragged
 * (right padding; one LLDS case has an interior masked column), ℓ_old ≠ ℓ with |ℓ − ℓ_old| up to 0.45 so that
 * clipping bites, and padded positions hold arbitrary values (they must not leak into the loss).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { type AlgoConfig, type AlgoConfigInput, parseAlgoConfig } from "../../src/algo/config.js";
import { Pipeline } from "../../src/algo/pipeline.js";
import { computeStepLoss } from "../../src/algo/step.js";
import { type DeepPartial, deepMerge, getPreset, resolvePreset } from "../../src/presets/index.js";
import { type Tensor, tensor, tidy } from "../../src/tensor/index.js";
import { assertClose, PYTHON, type Tolerance } from "../helpers/oracle.js";
import { prng } from "../helpers/step-fixture.js";

const TOL: Tolerance = { rtol: 1e-9, atol: 1e-12 };
const T = 5;
const G = 4;
const ORACLE = fileURLToPath(new URL("./preset_oracle.py", import.meta.url));

// ---- the case table ------------------------------------------------------------------------------------

interface Case {
  name: string;
  preset: string;
  /** Deep-merged into the preset (resolvePreset). */
  overrides?: DeepPartial<AlgoConfigInput>;
  /** Leave out the preset's rollout section (DAPO without dynamic sampling). */
  dropRollout?: boolean;
  /** Run-specific values the oracle needs (L_max, weights, β of KL in the reward). */
  params?: Record<string, unknown>;
  /** [K][N] rewards, groups of G consecutive rows. */
  rewards: number[][];
  /** Valid tokens per completion (default: seeded, 1..T, every fourth row full). */
  lens?: number[];
  /** Half-width of the uniform ℓ − ℓ_old (default 0.45); 0 gives ℓ_old = ℓ. */
  logRatio?: number;
  /** Pass rows.lengths (the overlong shaper reads them). */
  lengths?: boolean;
  /** Pass rows.meanLogprobs = masked mean of ℓ_old (the unlikeliness shaper reads them). */
  meanLogprobs?: boolean;
  /** Token ids with shared first and last tokens per group, so that GTPO finds conflicts. */
  conflictTokens?: boolean;
  /** Column 2 masked (a tool observation) in the rows with at least 4 valid tokens. */
  gap?: boolean;
  /** DCPO: ℓ_old from random old logits over V = 6 tokens, and ρ^T from them at the temperature asked for. */
  oldLogits?: boolean;
  /** DCPO: a first step on the same rows whose ℓ has token mean −H (the entropy estimate the second step reads). */
  warmupEntropy?: number;
  /** Known disagreements with ALGORITHMS.md, still open, per check. */
  todo?: { loss?: string; advantages?: string };
}

// One reward per completion; the second group of R12 / B12 / B12Z is all-equal.
const R12 = [0.9, 0.2, 0.55, 0.1, 0.3, 0.3, 0.3, 0.3, 1.0, 0.0, 0.4, 0.75];
const R8 = [0.5, 1.0, 0.0, 0.25, 0.8, 0.6, 0.7, 0.1];
const B12 = [1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 1];
const B12B = [1, 0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0];
const B12Z = [1, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0];
// Two and three reward functions (GDPO, RM ensembles).
const GDPO_A = [
  [1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1],
  [0.9, 0.7, 0.2, 0.9, 0.5, 0.5, 0.5, 0.5, 0.3, 0.8, 0.6, 0.1],
];
const GDPO_B = [
  [1, 0, 1, 1, 0, 1, 0, 0],
  [0.2, 0.4, 0.9, 0.6, 0.3, 0.3, 0.8, 0.1],
];
const ENS_A = [
  R12,
  [0.7, 0.4, 0.5, 0.2, 0.3, 0.3, 0.3, 0.3, 0.9, 0.1, 0.6, 0.8],
  [0.8, 0.1, 0.6, 0.3, 0.3, 0.3, 0.3, 0.3, 0.95, 0.05, 0.3, 0.7],
];
const ENS_B = [R8, [0.4, 0.9, 0.2, 0.3, 0.6, 0.7, 0.5, 0.2]];
// DCPO: correct = r > 0.05 (0.04 is not)
const RD = [0.9, 0.0, 0.55, 0.0, 0.3, 0.3, 0.3, 0.3, 1.0, 0.0, 0.04, 0.75];

const DAPO_SHAPER = { shapers: [{ name: "overlong", options: { maxLength: 4, cacheLength: 2, factor: 1 } }] };
const DAPO_PARAMS = { maxLength: 4, cacheLength: 2 };

const CASES: Case[] = [
  { name: "grpo: 3 groups, one all-equal", preset: "grpo", rewards: [R12] },
  { name: "grpo: 2 groups", preset: "grpo", rewards: [R8] },
  { name: "grpo: a fully masked completion", preset: "grpo", rewards: [R8], lens: [5, 0, 3, 2, 4, 1, 5, 3] },
  {
    name: "grpo + KL in the reward (β 0.1): 3 groups",
    preset: "grpo",
    overrides: { rewardKl: { beta: 0.1 }, regularizers: [] },
    params: { rewardKlBeta: 0.1 },
    rewards: [R12],
  },
  {
    name: "grpo + KL in the reward (β 0.1): 2 groups",
    preset: "grpo",
    overrides: { rewardKl: { beta: 0.1 }, regularizers: [] },
    params: { rewardKlBeta: 0.1 },
    rewards: [R8],
  },
  {
    name: "dr_grpo: 3 groups",
    preset: "dr_grpo",
    overrides: { aggregate: { maxLength: 6 } },
    params: { maxLength: 6 },
    rewards: [R12],
  },
  {
    name: "dr_grpo: 2 groups",
    preset: "dr_grpo",
    overrides: { aggregate: { maxLength: 6 } },
    params: { maxLength: 6 },
    rewards: [R8],
  },
  {
    name: "dapo: overlong shaping, zero-std group dropped",
    preset: "dapo",
    dropRollout: true,
    overrides: DAPO_SHAPER,
    params: DAPO_PARAMS,
    rewards: [R12],
    lens: [5, 3, 1, 4, 1, 2, 2, 1, 2, 4, 3, 5],
    lengths: true,
  },
  {
    name: "dapo: overlong shaping, 2 groups",
    preset: "dapo",
    dropRollout: true,
    overrides: DAPO_SHAPER,
    params: DAPO_PARAMS,
    rewards: [R8],
    lens: [3, 5, 2, 4, 1, 3, 4, 2],
    lengths: true,
  },
  { name: "gspo: 3 groups", preset: "gspo", rewards: [R12] },
  { name: "gspo: near on-policy (ratios inside the trust region)", preset: "gspo", rewards: [R8], logRatio: 6e-4 },
  { name: "gspo_token: 3 groups", preset: "gspo_token", rewards: [R12] },
  { name: "gspo_token: near on-policy", preset: "gspo_token", rewards: [R8], logRatio: 6e-4 },
  { name: "sapo: 3 groups", preset: "sapo", rewards: [R12] },
  { name: "sapo: 2 groups", preset: "sapo", rewards: [R8] },
  { name: "rloo: 3 groups", preset: "rloo", rewards: [R12] },
  { name: "rloo: 2 groups", preset: "rloo", rewards: [R8] },
  {
    name: "reinforce_pp: preset β 0.001",
    preset: "reinforce_pp",
    overrides: { advantage: { options: { dtype: "f64" } } },
    rewards: [R12],
  },
  {
    name: "reinforce_pp: β 0.1",
    preset: "reinforce_pp",
    overrides: { rewardKl: { beta: 0.1 }, advantage: { options: { dtype: "f64" } } },
    params: { rewardKlBeta: 0.1 },
    rewards: [R8],
  },
  {
    name: "reinforce_pp_baseline: preset β 0.001",
    preset: "reinforce_pp_baseline",
    overrides: { advantage: { options: { dtype: "f64" } } },
    rewards: [R12],
  },
  {
    name: "reinforce_pp_baseline: β 0.1",
    preset: "reinforce_pp_baseline",
    overrides: { rewardKl: { beta: 0.1 }, advantage: { options: { dtype: "f64" } } },
    params: { rewardKlBeta: 0.1 },
    rewards: [R8],
  },
  { name: "bnpo: one all-correct group", preset: "bnpo", rewards: [B12] },
  { name: "bnpo: 3 mixed groups", preset: "bnpo", rewards: [B12B] },
  {
    name: "gdpo: weights [1, 0.5], 3 groups",
    preset: "gdpo",
    overrides: { reward: { weights: [1, 0.5] } },
    params: { weights: [1, 0.5] },
    rewards: GDPO_A,
  },
  {
    name: "gdpo: weights [1, 0.5], 2 groups",
    preset: "gdpo",
    overrides: { reward: { weights: [1, 0.5] } },
    params: { weights: [1, 0.5] },
    rewards: GDPO_B,
  },
  { name: "dgpo: 3 mixed groups", preset: "dgpo", rewards: [B12B] },
  { name: "dgpo: one all-wrong group", preset: "dgpo", rewards: [B12Z] },
  {
    name: "gtpo: 3 groups",
    preset: "gtpo",
    rewards: [R12],
    conflictTokens: true,
  },
  {
    name: "gtpo: 2 groups",
    preset: "gtpo",
    rewards: [R8],
    conflictTokens: true,
  },
  { name: "gtpo: on-policy (ℓ_old = ℓ)", preset: "gtpo", rewards: [R12], conflictTokens: true, logRatio: 0 },
  { name: "disco: 3 mixed groups", preset: "disco", rewards: [B12B] },
  { name: "disco: one all-correct group", preset: "disco", rewards: [B12] },
  { name: "disco: near on-policy (KL hinge inactive)", preset: "disco", rewards: [B12B], logRatio: 1e-3 },
  { name: "disco_b: 3 mixed groups", preset: "disco_b", rewards: [B12B] },
  { name: "disco_b: one all-correct group", preset: "disco_b", rewards: [B12] },
  { name: "llds: 3 groups", preset: "llds", rewards: [R12] },
  { name: "llds: interior masked column (actions)", preset: "llds", rewards: [R8], gap: true },
  { name: "unlikeliness: binary rewards", preset: "unlikeliness", rewards: [B12B], meanLogprobs: true },
  { name: "unlikeliness: graded rewards", preset: "unlikeliness", rewards: [R12], meanLogprobs: true },
  { name: "opmd: 3 groups", preset: "opmd", rewards: [R12] },
  { name: "opmd: 2 groups", preset: "opmd", rewards: [R8] },
  { name: "asymre: 3 groups", preset: "asymre", rewards: [R12] },
  { name: "asymre: 2 groups", preset: "asymre", rewards: [R8] },
  { name: "rec: 3 groups", preset: "rec", rewards: [R12] },
  { name: "rec: 2 groups", preset: "rec", rewards: [R8] },
  { name: "rm_ensemble_wco: 3 models", preset: "rm_ensemble_wco", rewards: ENS_A },
  { name: "rm_ensemble_wco: 2 models", preset: "rm_ensemble_wco", rewards: ENS_B },
  { name: "rm_ensemble_uwo: 3 models", preset: "rm_ensemble_uwo", rewards: ENS_A },
  { name: "rm_ensemble_uwo: 2 models", preset: "rm_ensemble_uwo", rewards: ENS_B },
  { name: "rm_ensemble_mean: 3 models", preset: "rm_ensemble_mean", rewards: ENS_A },
  { name: "rm_ensemble_mean: 2 models", preset: "rm_ensemble_mean", rewards: ENS_B },
  { name: "safe_gdpo: 3 groups", preset: "safe_gdpo", rewards: GDPO_A },
  { name: "safe_gdpo: 2 groups", preset: "safe_gdpo", rewards: GDPO_B },
  { name: "dcpo: first step (H = 0, T = 1.2, α capped)", preset: "dcpo", rewards: [RD], oldLogits: true },
  {
    name: "dcpo: after a step with H = 0.46 (T = 1.2)",
    preset: "dcpo",
    rewards: [RD],
    oldLogits: true,
    warmupEntropy: 0.46,
  },
  {
    name: "dcpo: after a step with H = 0.57 (T = 0.8)",
    preset: "dcpo",
    rewards: [R8],
    oldLogits: true,
    warmupEntropy: 0.57,
  },
];

// ---- inputs ----------------------------------------------------------------------------------------------

/** mulberry32, seeded from the case name (cases do not depend on each other or on their order). */
function rngFor(name: string): () => number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  return prng(h);
}

interface Inputs {
  N: number;
  group: number[];
  lens: number[];
  mask: number[][]; // [N, T]
  lp: number[][]; // [N, T] ℓ
  lpOld: number[][]; // [N, T] ℓ_old
  lpRef: number[][]; // [N, T] ℓ_ref
  entropy: number[][]; // [N, T]
  tokenIds: number[][]; // [N, T]
  meanLogprobs: number[]; // [N] masked mean of ℓ_old
  oldLogits: number[][][] | null; // [N, T, V]
  lpWarm: number[][] | null; // [N, T] ℓ of the warm-up step
}

const V = 6;

function logSoftmaxAt(logits: number[], k: number, temperature: number): number {
  const z = logits.map((x) => x / temperature);
  const mx = Math.max(...z);
  return (z[k] as number) - mx - Math.log(z.reduce((s, x) => s + Math.exp(x - mx), 0));
}

function makeInputs(c: Case): Inputs {
  const rnd = rngFor(c.name);
  const u = (lo: number, hi: number) => lo + (hi - lo) * rnd();
  const N = (c.rewards[0] as number[]).length;
  const group = Array.from({ length: N }, (_, i) => Math.floor(i / G));
  const lens = c.lens ?? Array.from({ length: N }, (_, i) => (i % 4 === 0 ? T : 1 + Math.floor(rnd() * T)));
  const mask: number[][] = lens.map((n) => Array.from({ length: T }, (_, t) => (t < n ? 1 : 0)));
  if (c.gap) {
    mask.forEach((row, i) => {
      if ((lens[i] as number) >= 4) row[2] = 0;
    });
  }
  const w = c.logRatio ?? 0.45;
  const oldLogits = c.oldLogits ? mask.map((row) => row.map(() => Array.from({ length: V }, () => u(-2, 2)))) : null;
  const dcpoTokens = oldLogits?.map((row) => row.map(() => Math.floor(rnd() * V)));
  const lpOld =
    oldLogits === null
      ? mask.map((row) => row.map(() => -u(0.05, 2.5)))
      : oldLogits.map((row, i) => row.map((z, t) => logSoftmaxAt(z, dcpoTokens![i]![t]!, 1)));
  const lp = lpOld.map((row) => row.map((x) => x + (w === 0 ? 0 : u(-w, w))));
  const lpRef = lpOld.map((row) => row.map((x) => x + u(-0.3, 0.3)));
  const entropy = mask.map((row) => row.map(() => u(0.1, 1.3)));
  const tokenIds = mask.map((row, i) =>
    row.map((_, t) => {
      if (dcpoTokens !== undefined) return dcpoTokens[i]![t]!;
      if (!c.conflictTokens) return Math.floor(rnd() * 50);
      // shared first and last valid token in every group, a two-letter alphabet in between
      if (t === 0) return 7;
      if (t === (lens[i] as number) - 1) return 9;
      return 1 + Math.floor(rnd() * 2);
    }),
  );
  const meanLogprobs = lpOld.map((row, i) => {
    const m = mask[i] as number[];
    const n = m.reduce((s, x) => s + x, 0);
    return n === 0 ? 0 : row.reduce((s, x, t) => s + x * (m[t] as number), 0) / n;
  });
  let lpWarm: number[][] | null = null;
  if (c.warmupEntropy !== undefined) {
    const m = mask.flat();
    const mean = lp.flat().reduce((s, x, k) => s + x * (m[k] as number), 0) / m.reduce((s, x) => s + x, 0);
    lpWarm = lp.map((row) => row.map((x) => (x * c.warmupEntropy!) / -mean));
  }
  return { N, group, lens, mask, lp, lpOld, lpRef, entropy, tokenIds, meanLogprobs, oldLogits, lpWarm };
}

// ---- the oracle ------------------------------------------------------------------------------------------

interface OracleOut {
  loss: number;
  grad: number[][];
  keep: number[];
  advantages: number[] | number[][] | null;
  advantageLevel: "sequence" | "token" | null;
}

function runPresetOracle(cases: { c: Case; x: Inputs }[]): Map<string, OracleOut | { error: string }> {
  const payload = cases.map(({ c, x }) => ({
    id: c.name,
    preset: c.preset,
    params: { ...c.params, oldLogits: x.oldLogits, lpWarm: x.lpWarm },
    rewards: c.rewards,
    group: x.group,
    lengths: c.lengths ? x.lens : null,
    meanLogprobs: c.meanLogprobs ? x.meanLogprobs : null,
    mask: x.mask,
    lp: x.lp,
    lpOld: x.lpOld,
    lpRef: x.lpRef,
    entropy: x.entropy,
    tokenIds: x.tokenIds,
  }));
  const res = spawnSync(PYTHON, [ORACLE], {
    input: JSON.stringify(payload),
    encoding: "utf8",
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: "1" },
  });
  if (res.status !== 0)
    throw new Error(`preset oracle failed (status ${res.status}): ${res.error ?? ""}\n${res.stderr}`);
  return new Map(Object.entries(JSON.parse(res.stdout) as Record<string, OracleOut | { error: string }>));
}

// ---- Cohort ---------------------------------------------------------------------------------------------

function algoFor(c: Case): AlgoConfig {
  const ctx = { rewardFunctions: c.rewards.length };
  if (!c.dropRollout) return resolvePreset(c.preset, c.overrides ?? {}, ctx);
  const { rollout: _dropped, ...config } = structuredClone(getPreset(c.preset).config);
  return parseAlgoConfig(deepMerge(config, structuredClone(c.overrides ?? {})), ctx);
}

interface StepOut {
  loss: number;
  grad: number[];
  keep: number[];
  advantages: number[];
  advantageShape: number[];
}

function runCohort(c: Case, x: Inputs, microBatches: number): StepOut {
  const algo = algoFor(c);
  const f64 = (m: number[][]) => tensor(Float64Array.from(m.flat()), { shape: [x.N, T] });
  const targetRatio = (logits: number[][][]) => (temperature: number) =>
    f64(
      logits.map((row, i) =>
        row.map((z, t) => Math.exp(logSoftmaxAt(z, x.tokenIds[i]![t]!, temperature) - x.lpOld[i]![t]!)),
      ),
    );
  return tidy(() => {
    const rows = {
      byFn: c.rewards.map((r) => Float64Array.from(r)),
      groupIndex: Int32Array.from(x.group),
      ...(c.lengths ? { lengths: Int32Array.from(x.lens) } : {}),
      ...(c.meanLogprobs ? { meanLogprobs: Float64Array.from(x.meanLogprobs) } : {}),
    };
    const tokensWith = (lp: number[][]) => ({
      logprobs: f64(lp).requireGrad(),
      oldLogprobs: f64(x.lpOld),
      refLogprobs: f64(x.lpRef),
      entropy: f64(x.entropy),
      tokenIds: tensor(BigInt64Array.from(x.tokenIds.flat(), BigInt), { shape: [x.N, T] }),
      mask: f64(x.mask),
      ...(x.oldLogits === null ? {} : { targetRatio: targetRatio(x.oldLogits) }),
    });
    // a stateful component (DCPO's entropy estimate) keeps its state in the Pipeline between two steps
    const pipeline = new Pipeline(algo);
    if (x.lpWarm !== null) {
      computeStepLoss(pipeline, rows, tokensWith(x.lpWarm));
      pipeline.endStep(true); // once per optimizer step, as the trainer does
    }
    const tokens = tokensWith(x.lp);
    const out = computeStepLoss(pipeline, rows, tokens, { microBatches });
    const g: Tensor | null = tokens.logprobs.grad;
    const adv = out.advantages;
    return {
      loss: out.loss,
      grad: g === null ? new Array<number>(x.N * T).fill(0) : g.toArray(),
      keep: Array.from(out.keep),
      advantages: adv.kind === "sequence" ? Array.from(adv.values) : adv.values.toArray(),
      advantageShape: adv.kind === "sequence" ? [adv.values.length] : [...adv.values.shape],
    };
  });
}

// ---- tests -----------------------------------------------------------------------------------------------

const haveOracle = existsSync(PYTHON);

describe(
  "presets against the float64 oracle (ALGORITHMS.md §A–§D)",
  { skip: haveOracle ? false : `${PYTHON} missing` },
  () => {
    const names = new Set<string>();
    for (const c of CASES) {
      assert.ok(!names.has(c.name), `duplicate case ${c.name}`);
      names.add(c.name);
    }
    const inputs = new Map(CASES.map((c) => [c.name, makeInputs(c)]));
    let oracle = new Map<string, OracleOut | { error: string }>();
    const single = new Map<string, StepOut>();

    before(() => {
      oracle = runPresetOracle(CASES.map((c) => ({ c, x: inputs.get(c.name) as Inputs })));
    });

    const expected = (c: Case): OracleOut => {
      const r = oracle.get(c.name);
      assert.ok(r !== undefined, `oracle has no result for ${c.name}`);
      if ("error" in r) assert.fail(`oracle failed for ${c.name}:\n${r.error}`);
      return r;
    };
    const step = (c: Case): StepOut => {
      let s = single.get(c.name);
      if (s === undefined) {
        s = runCohort(c, inputs.get(c.name) as Inputs, 1);
        single.set(c.name, s);
      }
      return s;
    };

    for (const c of CASES) {
      const todo = (why: string | undefined) => (why === undefined ? {} : { todo: why });
      describe(c.name, () => {
        test("loss and gradient", todo(c.todo?.loss), () => {
          const want = expected(c);
          const got = step(c);
          assertClose([got.loss], [want.loss], TOL, "loss");
          assertClose(got.grad, want.grad.flat(), TOL, "dLoss/dℓ");
        });

        test("advantages and kept rows", todo(c.todo?.advantages), () => {
          const want = expected(c);
          const got = step(c);
          assert.deepEqual(got.keep, want.keep, "keep");
          if (want.advantages === null) return; // DisCO: no advantage enters the loss
          const x = inputs.get(c.name) as Inputs;
          const m = x.mask.flat();
          if (want.advantageLevel === "sequence" && got.advantageShape.length === 1) {
            assertClose(got.advantages, want.advantages as number[], TOL, "advantages");
            return;
          }
          // token level on either side: compare the valid tokens, a per-sequence value broadcast over them
          const broadcast = (a: number[]) => x.mask.flatMap((row, i) => row.map(() => a[i] as number));
          const wantTok =
            want.advantageLevel === "token"
              ? (want.advantages as number[][]).flat()
              : broadcast(want.advantages as number[]);
          const gotTok = got.advantageShape.length === 1 ? broadcast(got.advantages) : got.advantages;
          assertClose(
            gotTok.map((a, k) => a * (m[k] as number)),
            wantTok.map((a, k) => a * (m[k] as number)),
            TOL,
            "token advantages (valid tokens)",
          );
        });

        test("micro-batches 2 and 4: same loss and gradient", () => {
          const x = inputs.get(c.name) as Inputs;
          const one = step(c);
          for (const mb of [2, 4]) {
            const got = runCohort(c, x, mb);
            assertClose([got.loss], [one.loss], TOL, `loss, ${mb} micro-batches vs 1`);
            assertClose(got.grad, one.grad, TOL, `dLoss/dℓ, ${mb} micro-batches vs 1`);
          }
        });
      });
    }
  },
);
