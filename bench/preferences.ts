/**
 * `npm run bench:preferences`: DNO, Nash-MP and P3O (and GRPO on the same preference, the baseline) through the
 * real training loop, N seeds each, one claim JSON line per comparison (bench/claims.ts).
 *
 * - `rps`: the intransitive `rps_style` preference (digit-first ≻ other-first ≻ letter-first ≻ digit-first). The
 *   shipped models/arithmetic-think (the model of examples/dno.yaml and nash_mp.yaml) begins every completion with
 *   `<think>`, so under rps_style every pair ties and no method gets a signal; the game is played from a
 *   random-weight character model instead
 *   (made here, seed fixed), whose first characters spread over the three styles. What matters is the mix of
 *   styles: the reward depends on nothing else. Measured from the run's preference evaluations
 *   (src/train/preference-eval.ts, every `EVAL_EVERY` steps, 32 prompts × 4 samples at temperature 1):
 *   the style shares, the total-variation distance of the shares from the β-regularised Nash equilibrium π*_β of
 *   the 3-style game (β = 0.1 as the nash_mp preset, π_ref = the step-0 shares; src/algo/nash.ts
 *   `regularizedNash`), averaged over the second half of the evaluations (a cycling policy passes near π*_β at
 *   moments, so one snapshot says little) and at the last one, and from the uniform mix (the unregularised
 *   equilibrium), how often the most played style changes between evaluations (a cycle shows as changes), the
 *   win rate against the reference and against the previous evaluation, and two KLs to the reference: the style
 *   KL (a lower bound) and a sequence-level estimate E_π[log π(y) − log π_ref(y)] from 2 samples of the final
 *   policy on each of 128 prompts, both models rescoring the exact sampled tokens.
 * - `verifier`: P3O against GRPO on the transitive `verifier` preference from `models/arithmetic-think` (1–2 digit
 *   addition): held-out accuracy (greedy, the trainer's eval) and the sequence-level KL to the reference — the
 *   reward–KL trade-off P3O reports.
 *
 * Claims: Nash-MP's iterates approach π*_β (arXiv 2505.19731) — TV(Nash-MP) ≤ TV(GRPO), TV(DNO); DNO improves
 * on its previous iterate (arXiv 2404.03715) — mean win rate against the previous evaluation ≥ GRPO's; P3O
 * (arXiv 2310.00212) — accuracy ≥ GRPO's and KL ≤ GRPO's. `p` is Welch's two-sided p-value over seeds.
 *
 * Env: BENCH_SEEDS (default 3), BENCH_SCALE (multiplies every run's steps, default 1), BENCH_TASKS (rps,verifier;
 * default both), BENCH_THREADS (libtorch threads per run, default 1). The default run (24 training runs, 1 thread)
 * took 13 minutes niced on a shared 2-core machine under a load average of ~14 (rps 2.5 minutes of it).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { regularizedNash } from "../src/algo/nash.js";
import { readModelDir, writeModelDir } from "../src/io/hf.js";
import { packBatch } from "../src/model/batch.js";
import { configToHF, eosIds, modelConfig } from "../src/model/config.js";
import { CausalLM } from "../src/model/llama.js";
import { LocalSampler } from "../src/model/sampler.js";
import { createTask } from "../src/task/registry.js";
import { Rng } from "../src/task/rng.js";
import type { Problem } from "../src/task/types.js";
import { noGrad, tidy } from "../src/tensor/index.js";
import { CharTokenizer, tokenizerFromFiles } from "../src/tokenizer/index.js";
import { parseTrainConfig } from "../src/train/config.js";
import { encodePrompt } from "../src/train/sources.js";
import { train } from "../src/train/trainer.js";
import { claimLine, mean, round } from "./claims.js";

const seeds = Number(process.env.BENCH_SEEDS ?? 3);
const scale = Number(process.env.BENCH_SCALE ?? 1);
const threads = Number(process.env.BENCH_THREADS ?? 1);
const tasks = (process.env.BENCH_TASKS ?? "rps,verifier").split(",").map((s) => s.trim());
const out = mkdtempSync(join(tmpdir(), "cohort-bench-pref-"));
const quiet = () => {};
const BETA = 0.1; // the nash_mp preset's β

/** A random-weight character model (hidden 64, 2 layers): its first characters spread over the three styles. */
function randomModel(): string {
  const dir = join(out, "random-char");
  const tok = new CharTokenizer();
  const cfg = modelConfig({
    vocabSize: tok.vocabSize,
    hiddenSize: 64,
    intermediateSize: 128,
    numHiddenLayers: 2,
    numAttentionHeads: 4,
    numKeyValueHeads: 2,
    maxPositionEmbeddings: 64,
    tieWordEmbeddings: true,
    bosTokenId: tok.bosId,
    eosTokenId: tok.eosId,
    padTokenId: tok.padId,
  });
  const m = new CausalLM(cfg, { seed: 11, initStd: 0.1 });
  writeModelDir(dir, { config: configToHF(cfg), tensors: m.state().tensors, tokenizerFiles: tok.toFiles() });
  m.dispose();
  return dir;
}

/** Σ_t log π(y_t | prompt, y_<t) of each row's exact sampled tokens (a stop token, when sampled, included). */
function rescore(m: CausalLM, prompts: number[][], tokens: number[][], padId: number): number[] {
  const { lp, C } = noGrad(() =>
    tidy(() => {
      const packed = packBatch(prompts, tokens, { padId });
      const P = packed.promptLength;
      // [n, C] completion columns
      const r = m.logprobs(packed, { temperature: 1 });
      return { lp: r.lp.slice(1, P).to("f64").data() as Float64Array, C: (packed.inputIds.shape[1] as number) - P };
    }),
  );
  return tokens.map((ids, b) => lp.subarray(b * C, b * C + ids.length).reduce((s, x) => s + x, 0));
}

/** Sequence-level KL(π‖π_ref) estimate E_π[log π(y) − log π_ref(y)]: 2 samples of π per problem, both models
 * rescoring the same tokens. */
function seqKl(policyDir: string, refDir: string, problems: readonly Problem[], maxTokens: number): number {
  const load = (d: string) => {
    const md = readModelDir(d);
    const m = CausalLM.fromHF(md.config, md.tensors);
    for (const t of Object.values(md.tensors)) t.dispose();
    return { m, md };
  };
  const { m: pol, md } = load(policyDir);
  const { m: ref } = load(refDir);
  const t = md.tokenizer as NonNullable<typeof md.tokenizer>;
  const tok = tokenizerFromFiles(t.json, t.config);
  const sampler = new LocalSampler(pol, { decode: (ids) => tok.decode(ids), padId: tok.padId, maxBatch: 128 });
  const comps = sampler.generateSync(
    problems.flatMap((p) => [encodePrompt(tok, p.prompt), encodePrompt(tok, p.prompt)]),
    { maxTokens, temperature: 1, stopTokenIds: eosIds(pol.config), seed: 12345 },
  );
  const prompts = problems.flatMap((p) => [encodePrompt(tok, p.prompt), encodePrompt(tok, p.prompt)]);
  const tokens = comps.map((c) => c.tokens);
  const a = rescore(pol, prompts, tokens, tok.padId);
  const b = rescore(ref, prompts, tokens, tok.padId);
  const kl = mean(a.map((x, i) => x - (b[i] as number)));
  pol.dispose();
  ref.dispose();
  return kl;
}

function klProblems(n: number, options: Record<string, unknown>): Problem[] {
  const task = createTask("arithmetic", options, "task");
  const rng = Rng.fromSeed(777n);
  return Array.from({ length: n }, () => task.sample(rng, "eval"));
}

const RPS = [
  [0.5, 0, 1], // digit: loses to letter, beats other
  [1, 0.5, 0], // letter
  [0, 1, 0.5], // other
];
const tv = (a: readonly number[], b: readonly number[]) =>
  0.5 * a.reduce((s, x, i) => s + Math.abs(x - (b[i] as number)), 0);

interface RpsRun {
  shares: number[][];
  tvNash: number;
  tvNashLate: number;
  tvUniform: number;
  leaderChanges: number;
  winRef: number;
  winPrevMean: number;
  styleKl: number;
  seqKl: number;
  nash: number[];
}

const EVAL_EVERY = 5;
const RPS_STEPS = 40;
const RPS_OPTIONS = { digits: [1, 1] };

async function rpsRun(model: string, preset: string, seed: number): Promise<RpsRun> {
  const steps = Math.round(RPS_STEPS * scale);
  const cfg = parseTrainConfig({
    name: `rps-${preset}-${seed}`,
    outputDir: out,
    seed,
    threads,
    model: { path: model },
    task: { name: "arithmetic", options: RPS_OPTIONS },
    preference: "rps_style",
    preset,
    train: { steps, promptsPerStep: 8, groupSize: 8, lr: 2e-3 },
    sampling: { temperature: 1, maxNewTokens: 4 },
    eval: { everySteps: EVAL_EVERY, problems: 32, logSamples: 0 },
    checkpoint: { everySteps: 0 },
  });
  const r = await train(cfg, { log: quiet });
  const evals = r.metrics.filter((m) => m["eval_pref/style_digit"] !== undefined);
  const shares = evals.map((m) => [
    m["eval_pref/style_digit"] as number,
    m["eval_pref/style_letter"] as number,
    m["eval_pref/style_other"] as number,
  ]);
  // π_ref: the step-0 shares, smoothed as the style KL smooths them (+½ a count of 128)
  const ref = (shares[0] as number[]).map((x) => (x * 128 + 0.5) / 129.5);
  const nash = regularizedNash(RPS, ref, BETA, 4000);
  const last = shares.at(-1) as number[];
  const leader = shares.map((s) => s.indexOf(Math.max(...s)));
  const lastM = evals.at(-1) as Record<string, number>;
  return {
    shares,
    nash,
    tvNash: tv(last, nash),
    tvNashLate: mean(shares.slice(Math.ceil(shares.length / 2)).map((s) => tv(s, nash))),
    tvUniform: tv(last, [1 / 3, 1 / 3, 1 / 3]),
    leaderChanges: leader.slice(1).filter((l, i) => l !== leader[i]).length,
    winRef: lastM["eval_pref/win_rate_ref"] as number,
    winPrevMean: mean(evals.slice(1).map((m) => m["eval_pref/win_rate_prev"] as number)),
    styleKl: lastM["eval_pref/style_kl_ref"] as number,
    seqKl: seqKl(join(r.runDir, "final"), model, klProblems(128, RPS_OPTIONS), 4),
  };
}

async function rps(): Promise<void> {
  const model = randomModel();
  const presets = ["nash_mp", "dno", "p3o", "grpo"] as const;
  const runs: Record<string, RpsRun[]> = {};
  for (const p of presets) {
    runs[p] = [];
    for (let s = 0; s < seeds; s++) {
      const t = performance.now();
      const r = await rpsRun(model, p, s);
      runs[p].push(r);
      const f = (xs: number[]) => `[${xs.map((x) => x.toFixed(2)).join(" ")}]`;
      console.error(
        `rps ${p} seed ${s}: shares d/l/o ${r.shares.map(f).join(" → ")}; π*_β ${f(r.nash)}; TV ${r.tvNash.toFixed(3)}; ` +
          `win vs ref ${r.winRef.toFixed(3)}, vs prev ${r.winPrevMean.toFixed(3)}; KL style ${r.styleKl.toFixed(3)} seq ${r.seqKl.toFixed(3)} ` +
          `(${((performance.now() - t) / 1000).toFixed(0)} s)`,
      );
    }
  }
  const of = (p: string, k: keyof RpsRun) => (runs[p] as RpsRun[]).map((r) => r[k] as number);
  const fields = (p: string) => ({
    final_shares_dlo: [0, 1, 2].map((i) =>
      round(mean((runs[p] as RpsRun[]).map((r) => (r.shares.at(-1) as number[])[i] as number)), 3),
    ),
    nash_beta_dlo: ((runs[p] as RpsRun[])[0] as RpsRun).nash.map((x) => round(x, 3)),
    tv_nash_last_iterate: round(mean(of(p, "tvNash"))),
    tv_uniform_last_iterate: round(mean(of(p, "tvUniform"))),
    leader_changes: round(mean(of(p, "leaderChanges")), 2),
    win_rate_ref: round(mean(of(p, "winRef"))),
    win_rate_prev: round(mean(of(p, "winPrevMean"))),
    style_kl_ref: round(mean(of(p, "styleKl"))),
    seq_kl_ref: round(mean(of(p, "seqKl"))),
  });
  const steps = Math.round(RPS_STEPS * scale);
  const base = { bench: "preferences/rps_style", noiseFlag: true };
  for (const b of ["grpo", "dno"]) {
    claimLine({
      ...base,
      method: "nash_mp",
      metric: "tv_to_nash_beta_second_half",
      ours: of("nash_mp", "tvNashLate"),
      base: of(b, "tvNashLate"),
      baselineMethod: b,
      higherIsBetter: false,
      fields: { steps, ours_fields: fields("nash_mp"), baseline_fields: fields(b) },
    });
  }
  claimLine({
    ...base,
    method: "dno",
    metric: "win_rate_vs_previous_eval",
    ours: of("dno", "winPrevMean"),
    base: of("grpo", "winPrevMean"),
    baselineMethod: "grpo",
    fields: { steps, ours_fields: fields("dno"), baseline_fields: fields("grpo") },
  });
  claimLine({
    ...base,
    method: "p3o",
    metric: "seq_kl_ref",
    ours: of("p3o", "seqKl"),
    base: of("grpo", "seqKl"),
    baselineMethod: "grpo",
    higherIsBetter: false,
    fields: { steps, ours_fields: fields("p3o"), baseline_fields: fields("grpo") },
  });
}

async function verifier(): Promise<void> {
  const model = join(import.meta.dirname, "..", "models", "arithmetic-think");
  const options = { ops: { add: 1 }, digits: [1, 2] };
  const steps = Math.round(12 * scale);
  const res: Record<string, { acc: number[]; acc0: number[]; kl: number[] }> = {};
  for (const p of ["p3o", "grpo"]) {
    res[p] = { acc: [], acc0: [], kl: [] };
    for (let s = 0; s < seeds; s++) {
      const t = performance.now();
      const cfg = parseTrainConfig({
        name: `verifier-${p}-${s}`,
        outputDir: out,
        seed: s,
        threads,
        model: { path: model },
        task: { name: "arithmetic", options },
        preference: "verifier",
        preset: p,
        train: { steps, promptsPerStep: 8, groupSize: 8, lr: 1e-4 },
        sampling: { temperature: 1, maxNewTokens: 48 },
        eval: { everySteps: steps, problems: 100, logSamples: 0 },
        checkpoint: { everySteps: 0 },
      });
      const r = await train(cfg, { log: quiet });
      const evals = r.metrics.filter((m) => m.eval_accuracy !== undefined);
      const acc = (evals.at(-1) as Record<string, number>).eval_accuracy as number;
      const kl = seqKl(join(r.runDir, "final"), model, klProblems(128, options), 48);
      res[p].acc.push(acc);
      res[p].acc0.push((evals[0] as Record<string, number>).eval_accuracy as number);
      res[p].kl.push(kl);
      console.error(
        `verifier ${p} seed ${s}: eval accuracy ${(evals[0] as Record<string, number>).eval_accuracy} → ${acc}; seq KL ${kl.toFixed(4)} (${((performance.now() - t) / 1000).toFixed(0)} s)`,
      );
    }
  }
  const P = res.p3o as { acc: number[]; acc0: number[]; kl: number[] };
  const G = res.grpo as { acc: number[]; acc0: number[]; kl: number[] };
  const base = { bench: "preferences/verifier", noiseFlag: true };
  const fields = {
    steps,
    start_accuracy: round(mean(P.acc0)),
    seq_kl_ref_p3o: round(mean(P.kl)),
    seq_kl_ref_grpo: round(mean(G.kl)),
  };
  claimLine({
    ...base,
    method: "p3o",
    metric: "eval_accuracy",
    ours: P.acc,
    base: G.acc,
    baselineMethod: "grpo",
    fields,
  });
  claimLine({
    ...base,
    method: "p3o",
    metric: "seq_kl_ref",
    ours: P.kl,
    base: G.kl,
    baselineMethod: "grpo",
    higherIsBetter: false,
    fields: { steps, eval_accuracy_p3o: round(mean(P.acc)), eval_accuracy_grpo: round(mean(G.acc)) },
  });
}

const t0 = performance.now();
if (tasks.includes("rps")) await rps();
if (tasks.includes("verifier")) await verifier();
console.error(`bench:preferences ${((performance.now() - t0) / 1000).toFixed(0)} s, runs under ${out}`);
