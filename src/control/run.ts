/**
 * A training run of a control policy (src/control/policy.ts) on a control environment (env.ts), as the loop
 * (src/train/trainer.ts) sees any run (`LoopRun`):
 *
 * - the rollout source `episodeGroups`: per step, B groups of G episodes; every episode of a group starts from
 *   the same seed (start state and environment noise), the episodes of a step are stepped together and the
 *   policy samples their actions in one batch;
 * - the update: rows are episodes, columns are time steps, the per-step log-probs ℓ_{i,t} = log π(a_t|s_t)
 *   play the part of token log-probs, and the design-space pipeline (src/algo) computes the advantages (group-
 *   relative ones from episode returns, or GAE with the run's critic) and the policy loss (ratio → gate →
 *   regularizers → aggregate) over μ inner passes and the configured minibatches;
 * - checkpoints hold the policy (`policy.*`) and the critic (`critic.*`); resume is exact because every
 *   step's rollout seeds are a hash of (run seed, step).
 * @module
 */
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gaeReturns } from "../algo/advantage.js";
import { Pipeline } from "../algo/pipeline.js";
import { stepCounts } from "../algo/step.js";
import { CohortError, ConfigError } from "../errors.js";
import { FlowSdePolicy } from "../generators/policy.js";
import { loadGenerator } from "../generators/pretrain.js";
import { readSafetensors, writeSafetensors } from "../io/safetensors.js";
import type { ProcessGroup } from "../parallel/index.js";
import { Rng } from "../task/rng.js";
import { AdamW, clipGradNorm, manualSeed, noGrad, setNumThreads, type Tensor, tensor, tidy } from "../tensor/index.js";
import type { TrainConfig } from "../train/config.js";
import type { LoopRun, RunEval } from "../train/context.js";
import { Diagnostics } from "../train/diagnostics.js";
import type { MetricRecord } from "../train/metrics.js";
import { noSync } from "../train/parts.js";
import { resolvePath } from "../train/setup.js";
import { type RolloutSource, requestSeed } from "../train/sources.js";
import { stepLearningRate } from "../train/update.js";
import type { PolicyConfig } from "./config.js";
import { type ControlEnv, type ControlEnvSpec, controlEnvSpec } from "./env.js";
import { GorlPolicy, gorlDecoderSchema } from "./gorl.js";
import { HyperCritic, HyperMLP } from "./hyper.js";
import { expectedReturn, policyEvaluation, type TabularMdp, valueIteration } from "./mdp.js";
import { CategoricalMLP, GaussianMLP, mlpForward, mlpLayers, type Policy, TabularSoftmax } from "./policy.js";
import { controlMethods, controlOptimizer, hessianBatchOf } from "./run-methods.js";
import { trustRegionMetrics } from "./trust.js";
import { HlGauss, type HlGaussOptions, maskedStepMean, type ValueFunction } from "./value.js";

/** One step's episodes, rows = episodes, columns = time steps (padded to the longest). */
export interface EpisodeBatch {
  n: number;
  /** Longest episode. */
  T: number;
  obsDim: number;
  /** Values per action (1 for a discrete one). */
  actDim: number;
  obs: Float64Array; // [n, T, obsDim]
  raw: Float64Array; // [n, T, actDim]
  logprobs: Float64Array; // [n, T]
  rewards: Float64Array; // [n, T]
  mask: Float64Array; // [n, T]
  lengths: Int32Array;
  returns: Float64Array;
  groupIndex: Int32Array;
  /** 1 = ended in a terminal state; 0 = cut by the horizon (its value is bootstrapped). */
  terminated: Uint8Array;
  /** The observation after each episode's last step [n, obsDim]. */
  lastObs: Float64Array;
  samplingMs: number;
}

/** Plays `seeds.length × G` episodes (G per seed) in lockstep, the policy sampling each step's actions in one batch. */
export function playEpisodes(
  make: () => ControlEnv,
  policy: Policy,
  seeds: readonly number[],
  G: number,
  rng: Rng,
  opts: { greedy?: boolean; horizon?: number } = {},
): EpisodeBatch {
  const t0 = performance.now();
  const n = seeds.length * G;
  const envs = Array.from({ length: n }, make);
  try {
    const env0 = envs[0] as ControlEnv;
    const H = Math.min(env0.horizon, opts.horizon ?? env0.horizon);
    const obsDim = env0.obsDim;
    const actDim = env0.action.kind === "discrete" ? 1 : env0.action.dim;
    const obs = new Float64Array(n * H * obsDim);
    const raw = new Float64Array(n * H * actDim);
    const logprobs = new Float64Array(n * H);
    const rewards = new Float64Array(n * H);
    const mask = new Float64Array(n * H);
    const lengths = new Int32Array(n);
    const terminated = new Uint8Array(n);
    const cur = envs.map((e, i) =>
      e.reset(seeds[Math.floor(i / G)] as number, opts.horizon !== undefined ? { horizon: H } : undefined),
    );
    let active = Array.from({ length: n }, (_, i) => i);
    for (let t = 0; t < H && active.length > 0; t++) {
      const batch = new Float64Array(active.length * obsDim);
      active.forEach((i, k) => {
        batch.set(cur[i] as Float64Array, k * obsDim);
      });
      const s = policy.sample(batch, rng, opts);
      const still: number[] = [];
      active.forEach((i, k) => {
        const at = i * H + t;
        obs.set(cur[i] as Float64Array, at * obsDim);
        raw.set(s.raw.subarray(k * actDim, (k + 1) * actDim), at * actDim);
        logprobs[at] = s.logprobs[k] as number;
        const r = (envs[i] as ControlEnv).step(s.actions.subarray(k * actDim, (k + 1) * actDim));
        rewards[at] = r.reward;
        mask[at] = 1;
        lengths[i] = t + 1;
        cur[i] = r.obs;
        if (r.done) terminated[i] = 1;
        else still.push(i);
      });
      active = still;
    }
    const T = Math.max(1, ...lengths);
    // compact [n, H, ·] to [n, T, ·]
    const cut = (a: Float64Array, w: number) => {
      const out = new Float64Array(n * T * w);
      for (let i = 0; i < n; i++) out.set(a.subarray(i * H * w, (i * H + T) * w), i * T * w);
      return out;
    };
    const R = cut(rewards, 1);
    const returns = Float64Array.from({ length: n }, (_, i) => {
      let s = 0;
      for (let t = 0; t < T; t++) s += R[i * T + t] as number;
      return s;
    });
    const lastObs = new Float64Array(n * obsDim);
    cur.forEach((o, i) => {
      lastObs.set(o as Float64Array, i * obsDim);
    });
    return {
      n,
      T,
      obsDim,
      actDim,
      obs: cut(obs, obsDim),
      raw: cut(raw, actDim),
      logprobs: cut(logprobs, 1),
      rewards: R,
      mask: cut(mask, 1),
      lengths,
      returns,
      groupIndex: Int32Array.from({ length: n }, (_, i) => Math.floor(i / G)),
      terminated,
      lastObs,
      samplingMs: performance.now() - t0,
    };
  } finally {
    for (const e of envs) e.dispose();
  }
}

/**
 * B groups of G episodes per step; group b starts from seed hash(run seed, step, b). `horizonAt`: the episode
 * length at each step (a curriculum), else the environment's horizon.
 */
export function episodeGroups(
  make: () => ControlEnv,
  policy: Policy,
  o: { seed: number; groups: number; groupSize: number; horizonAt?: (step: number) => number },
): RolloutSource<EpisodeBatch> {
  return {
    collect: async (step) => {
      const seeds = Array.from({ length: o.groups }, (_, b) => requestSeed(o.seed, step, b));
      const rng = Rng.fromSeed(requestSeed(o.seed ^ 0x5a5a5a5a, step, 0));
      const horizon = o.horizonAt?.(step);
      return playEpisodes(make, policy, seeds, o.groupSize, rng, horizon !== undefined ? { horizon } : {});
    },
    // the rollouts of a step are a function of (seed, step) and the weights: nothing else to checkpoint
    state: () => ({}),
    load: () => {},
  };
}

/** A state-value network V(s) (tanh MLP): one output, or HL-Gauss bins (value.ts) when `categorical`. */
export class Critic implements ValueFunction {
  readonly params: [string, Tensor][] = [];
  readonly #net: { w: Tensor; b: Tensor }[];
  readonly #hl: HlGauss | null;
  constructor(obsDim: number, hidden: number[], categorical?: HlGaussOptions) {
    this.#hl = categorical ? new HlGauss(categorical) : null;
    this.#net = mlpLayers(this, "v", [obsDim, ...hidden, this.#hl ? this.#hl.o.bins : 1], "f32", 1);
  }
  param(name: string, t: Tensor): Tensor {
    const p = t.requireGrad(true);
    this.params.push([name, p]);
    return p;
  }
  /** V [n] at obs [n, obsDim]. */
  value(obs: Tensor): Tensor {
    const out = mlpForward(this.#net, obs.to("f32"));
    return this.#hl ? this.#hl.value(out) : out.squeeze(1);
  }
  /** Masked mean of (V − target)², or of the HL-Gauss cross-entropy. */
  loss(obs: Tensor, targets: Tensor, mask: Tensor): Tensor {
    const out = mlpForward(this.#net, obs.to("f32"));
    const y = targets.reshape(-1);
    return maskedStepMean(this.#hl ? this.#hl.crossEntropy(out, y) : out.squeeze(1).sub(y).square(), mask);
  }
  dispose(): void {
    for (const [, p] of this.params) p.dispose();
  }
}

function makePolicy(
  p: PolicyConfig,
  env: ControlEnv,
  spec: ControlEnvSpec,
  options: Record<string, unknown>,
  episodesPerStep: number,
): Policy {
  const a = env.action;
  if (p.kind === "gorl") {
    const bounds = spec.bounds?.(options);
    if (a.kind !== "continuous" || !bounds) throw new CohortError("gorl needs continuous actions in a box");
    return new GorlPolicy(env.obsDim, a.dim, {
      hidden: p.hidden,
      std: p.std,
      ...(p.initStd !== undefined ? { initStd: p.initStd } : {}),
      bounds,
      decoder: p.decoder ?? gorlDecoderSchema.parse({}),
      rowsPerStep: episodesPerStep * env.horizon,
    });
  }
  if (p.kind === "flow_sde")
    return new FlowSdePolicy(loadGenerator(options.generator as string), {
      noiseLevel: p.sde?.noiseLevel ?? 0.7,
      logprob: p.sde?.logprob ?? "mean",
    });
  if (p.kind === "tabular") {
    const mdp = spec.mdp?.(options) as TabularMdp;
    return new TabularSoftmax(mdp.states, mdp.actions);
  }
  if (p.kind === "categorical_mlp") {
    if (a.kind !== "discrete") throw new CohortError("categorical_mlp needs discrete actions");
    return new CategoricalMLP(env.obsDim, a.n, { hidden: p.hidden });
  }
  if (p.kind === "hyper_mlp") {
    if (a.kind !== "discrete") throw new CohortError("hyper_mlp needs discrete actions");
    return new HyperMLP(env.obsDim, a.n, { hidden: p.hidden, ...(p.hyper ? { hyper: p.hyper } : {}) });
  }
  if (a.kind !== "continuous") throw new CohortError("gaussian_mlp needs continuous actions");
  const bounds = p.squash ? spec.bounds?.(options) : undefined;
  return new GaussianMLP(env.obsDim, a.dim, {
    hidden: p.hidden,
    std: p.std,
    ...(p.initStd !== undefined ? { initStd: p.initStd } : {}),
    ...(bounds ? { bounds } : {}),
  });
}

/** Loads `policy.*` tensors of a safetensors file (an exported run, or `cohort pretrain --env`) into `policy`. */
export function loadPolicyInit(policy: Policy, path: string): void {
  if (!existsSync(path))
    throw new ConfigError(`no such file: ${path} (a policy.safetensors to start from)`, "policy.init");
  const { tensors } = readSafetensors(path);
  try {
    const own: Record<string, Tensor> = {};
    for (const [k, t] of Object.entries(tensors)) if (k.startsWith("policy.")) own[k.slice("policy.".length)] = t;
    policy.load(own);
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
}

/**
 * How much group signal a step carries: the mean |A| over valid steps (`advantage/abs_mean`) and the fraction of
 * groups whose episode returns are all equal (`groups/equal_reward`, where a group-relative advantage is 0).
 */
function groupSignal(col: EpisodeBatch, adv: Tensor, mask: Tensor): Record<string, number> {
  const absMean = noGrad(() =>
    tidy(() => {
      const a = adv.ndim === 1 ? adv.reshape(-1, 1).expand(...mask.shape) : adv;
      return a.abs().mul(mask).sum().item() / Math.max(1, mask.sum().item());
    }),
  );
  const byGroup = new Map<number, number[]>();
  col.groupIndex.forEach((g, i) => {
    byGroup.set(g, [...(byGroup.get(g) ?? []), col.returns[i] as number]);
  });
  let equal = 0;
  for (const rs of byGroup.values()) if (rs.every((r) => Math.abs(r - (rs[0] as number)) <= 1e-12)) equal++;
  return { "advantage/abs_mean": absMean, "groups/equal_reward": equal / Math.max(1, byGroup.size) };
}

const asTensor = (a: Float64Array, shape: number[], dtype: "f32" | "i64" = "f32") => tensor(a, { shape, dtype });

/** The control run of a config with `policy` (config.ts has checked it). */
export async function setupControlRun(
  cfg: TrainConfig,
  log: (l: string) => void,
  group?: ProcessGroup,
): Promise<LoopRun<EpisodeBatch>> {
  if (group) throw new CohortError("data parallelism is not available for control policies yet; run one process");
  const pc = cfg.policy as PolicyConfig;
  const envCfg = cfg.env as NonNullable<TrainConfig["env"]>;
  // small networks: one thread each is fastest unless asked otherwise
  setNumThreads(cfg.threads ?? 1);
  manualSeed(cfg.seed);
  const { spec, options } = controlEnvSpec(envCfg.name, envCfg.options, "env");
  // algo.control: the optimizer, IWOCS's models, action grouping's reduced problem (run-methods.ts)
  const methods = controlMethods(cfg, spec, options, Number(options.horizon ?? 0));
  const unbound = methods.make ?? (await spec.create(options));
  const probe = unbound();
  const policy =
    methods.policy?.() ?? makePolicy(pc, probe, spec, options, cfg.train.promptsPerStep * cfg.train.groupSize);
  // an environment that reads the policy (digits_flow's projected process rewards) is bound to it
  const make = () => {
    const e = unbound();
    e.bind?.(policy);
    return e;
  };
  // evaluation episodes: held-out levels where the environment has them (procmaze), else the training ones
  const makeEval = spec.createEval ? await spec.createEval(options) : make;
  const obsDim = probe.obsDim;
  probe.dispose();
  if (pc.init !== undefined) loadPolicyInit(policy, resolvePath(cfg, pc.init));
  const critic: ValueFunction | null = !pc.critic
    ? null
    : policy instanceof HyperMLP
      ? new HyperCritic(policy, pc.critic.categorical)
      : new Critic(obsDim, pc.critic.hidden, pc.critic.categorical);
  const named = (): [string, Tensor][] => [
    ...policy.namedParameters().map(([n, t]): [string, Tensor] => [`policy.${n}`, t]),
    ...(critic ? critic.params.map(([n, t]): [string, Tensor] => [`critic.${n}`, t]) : []),
  ];
  const params = named().map(([, t]) => t);
  // state a checkpoint holds beside the optimised parameters (GoRL's decoder and its data buffer)
  const slow = (): [string, Tensor][] =>
    policy instanceof GorlPolicy ? policy.slowState().map(([n, t]): [string, Tensor] => [`gorl.${n}`, t]) : [];
  const pipeline = new Pipeline(cfg.resolvedAlgo);
  let currentStep = 0;
  const hessian = hessianBatchOf({
    make,
    policy,
    pipeline,
    seed: cfg.seed,
    step: () => currentStep,
    groups: methods.ctrl.optimizer.type === "harpg" ? methods.ctrl.optimizer.hessianGroups : 1,
    groupSize: cfg.train.groupSize,
    play: playEpisodes,
  });
  const pgOpt = controlOptimizer(methods.ctrl, params, hessian, cfg.seed);
  const opt =
    pgOpt ?? new AdamW(params, { lr: cfg.train.lr, betas: cfg.train.betas, weightDecay: cfg.train.weightDecay });
  const diagnostics = new Diagnostics(log);
  const source = methods.wrapSource(
    episodeGroups(make, policy, {
      seed: cfg.seed,
      groups: cfg.train.promptsPerStep,
      groupSize: cfg.train.groupSize,
      ...(spec.horizonAt
        ? { horizonAt: (step: number) => (spec.horizonAt as NonNullable<typeof spec.horizonAt>)(options, step) }
        : {}),
    }),
    policy,
  );
  // the exact optimality gap of a plain tabular run (grouping and IWOCS report their own)
  const mdp = pc.kind === "tabular" && !methods.make ? (spec.mdp?.(options) ?? null) : null;
  const optimum = mdp ? expectedReturn(mdp, valueIteration(mdp).V) : null;
  const runDir = resolvePath(cfg, join(cfg.outputDir, cfg.name));

  const evaluate = (step: number): RunEval => (pgOpt ? pgOpt.atIterate(() => evaluateAt(step)) : evaluateAt(step));
  const evaluateAt = (step: number): RunEval => {
    const n = cfg.eval.problems;
    const seeds = Array.from({ length: n }, (_, i) => requestSeed(cfg.seed + 1, 0, i));
    const greedy = cfg.eval.temperature === 0;
    const b = playEpisodes(makeEval, policy, seeds, 1, Rng.fromSeed(requestSeed(cfg.seed + 2, step, 0)), { greedy });
    let sum = 0;
    let full = 0;
    for (let i = 0; i < n; i++) {
      sum += b.returns[i] as number;
      // success: reaching a terminal goal (procmaze), or running the whole horizon without a terminal
      // failure (cart-pole: the pole stayed up)
      if ((b.terminated[i] === 1) === (spec.success === "terminated")) full++;
    }
    const metrics: Record<string, number> = { eval_return: sum / n };
    if (spec.createEval) {
      // the same number of episodes on the training levels: the generalisation gap is the difference
      const bt = playEpisodes(make, policy, seeds, 1, Rng.fromSeed(requestSeed(cfg.seed + 3, step, 0)), { greedy });
      metrics.eval_train_return = bt.returns.reduce((a, r) => a + r, 0) / n;
    }
    // the environment's own held-out metrics (airq: FAR, POD, F1, CRPS), the same draws at every evaluation
    if (spec.evaluate) Object.assign(metrics, spec.evaluate(options, policy, cfg.seed));
    if (mdp && optimum !== null && policy instanceof TabularSoftmax) {
      // exact: J* − J(π) of the current softmax table under the MDP's discount
      const pi = noGrad(() => tidy(() => policy.theta.softmax(1).to("f64").data() as Float64Array));
      metrics.eval_optimality_gap = optimum - expectedReturn(mdp, policyEvaluation(mdp, Float64Array.from(pi)));
    }
    Object.assign(metrics, methods.evalMetrics(policy));
    const samples = Array.from({ length: Math.min(cfg.eval.logSamples, n) }, (_, i) => ({
      step,
      episode: i,
      return: b.returns[i],
      length: b.lengths[i],
      terminated: b.terminated[i] === 1,
      ...spec.sampleFields?.(
        b.obs.subarray(i * b.T * b.obsDim, (i * b.T + 1) * b.obsDim),
        b.lastObs.subarray(i * b.obsDim, (i + 1) * b.obsDim),
      ),
    }));
    return { accuracy: full / n, format: 1, samples, metrics };
  };

  const update = (step: number, col: EpisodeBatch, t0: number): MetricRecord => {
    const { n, T, obsDim: D, actDim } = col;
    const algo = pipeline.algo;
    currentStep = step;
    const maskT = asTensor(col.mask, [n, T]);
    const obsAll = asTensor(col.obs, [n * T, D]);
    const rawAll =
      policy.action.kind === "discrete" ? asTensor(col.raw, [n * T], "i64") : asTensor(col.raw, [n * T, actDim]);
    const oldLp = asTensor(col.logprobs, [n, T]);
    const tokenRewards = asTensor(col.rewards, [n, T]);
    let values: Tensor | null = null;
    let targets: Tensor | null = null;
    const cleanup: Tensor[] = [maskT, obsAll, rawAll, oldLp, tokenRewards];
    try {
      if (critic) {
        // V(s_t) for every step and the bootstrap after the last one (0 after a terminal state)
        const v = noGrad(() => tidy(() => critic.value(obsAll).to("f64").data() as Float64Array));
        const boot = noGrad(() =>
          tidy(
            () =>
              critic
                .value(asTensor(col.lastObs, [n, D]))
                .to("f64")
                .data() as Float64Array,
          ),
        );
        const vals = new Float64Array(n * (T + 1));
        for (let i = 0; i < n; i++) {
          const len = col.lengths[i] as number;
          for (let t = 0; t < len; t++) vals[i * (T + 1) + t] = v[i * T + t] as number;
          vals[i * (T + 1) + len] = col.terminated[i] ? 0 : (boot[i] as number);
        }
        values = tensor(vals, { shape: [n, T + 1], dtype: "f64" });
        const opts = algo.advantage.options as { gamma?: number; lambda?: number };
        const g = gaeReturns(col.rewards, vals, col.mask, n, T, opts.gamma ?? 0.99, opts.lambda ?? 0.95);
        targets = asTensor(g.targets, [n, T]);
        cleanup.push(values, targets);
      }
      const meanLogprobs = Float64Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let t = 0; t < T; t++) s += col.logprobs[i * T + t] as number;
        return s / Math.max(1, col.lengths[i] as number);
      });
      const truncated = Uint8Array.from(col.terminated, (x, i) => (x === 0 && col.lengths[i] === T ? 1 : 0));
      const stage = pipeline.advantages(
        [col.returns],
        {
          groupIndex: col.groupIndex,
          lengths: col.lengths,
          meanLogprobs,
          truncated,
          mask: maskT,
          tokenRewards,
          ...(values ? { values } : {}),
        },
        { mask: maskT },
      );
      const adv =
        stage.advantages.kind === "sequence"
          ? asTensor(stage.advantages.values, [n])
          : stage.advantages.values.to("f32");
      cleanup.push(adv);
      for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") cleanup.push(a.values);
      const kept = Array.from({ length: n }, (_, i) => i).filter((i) => stage.keep[i] === 1);
      // minibatches at group boundaries
      const groups = [...new Set(kept.map((i) => col.groupIndex[i] as number))];
      const parts = Math.max(1, Math.min(cfg.train.miniBatches, groups.length));
      const per = Math.ceil(groups.length / parts);
      const miniBatches = Array.from({ length: parts }, (_, k) => {
        const gs = new Set(groups.slice(k * per, (k + 1) * per));
        return kept.filter((i) => gs.has(col.groupIndex[i] as number));
      }).filter((rows) => rows.length > 0);
      const lr = stepLearningRate(cfg, step);
      const tTrain0 = performance.now();
      let lossSum = 0;
      let entSum = 0;
      let valueLoss = 0;
      let gradNorm = 0;
      let optSteps = 0;
      let skipped = 0;
      const lossMetrics: Record<string, number[]> = {};
      for (let it = 0; it < cfg.train.innerIterations; it++) {
        for (const rows of miniBatches) {
          opt.zeroGrad();
          let finite = true;
          tidy(() => {
            const idx = tensor(rows, { dtype: "i64" });
            const stepIdx = tensor(
              rows.flatMap((r) => Array.from({ length: T }, (_, t) => r * T + t)),
              { dtype: "i64" },
            );
            const m = maskT.indexSelect(0, idx);
            const f = policy.logProb(obsAll.indexSelect(0, stepIdx), rawAll.indexSelect(0, stepIdx), { entropy: true });
            const lp = f.lp.to("f32").reshape(rows.length, T);
            const ent = (f.entropy as Tensor).to("f32").reshape(rows.length, T);
            const lb = {
              logprobs: lp,
              oldLogprobs: oldLp.indexSelect(0, idx),
              entropy: ent,
              advantages: adv.indexSelect(0, idx),
              mask: m,
              groupIndex: Int32Array.from(rows, (r) => col.groupIndex[r] as number),
              rewards: Float64Array.from(rows, (r) => stage.batch.rewards[r] as number),
            };
            const counts = stepCounts(algo, [m], [rows], col.groupIndex);
            const global = pipeline.loss.needsPrepass
              ? pipeline.loss.prepass({ ...lb, logprobs: lp.detach() }, counts, { step })
              : {};
            const res = pipeline.loss.compute(lb, counts, { step, global });
            let loss = res.loss;
            if (critic && targets && pc.critic) {
              const se = critic.loss(obsAll.indexSelect(0, stepIdx), targets.indexSelect(0, idx), m);
              if (it === 0) valueLoss += se.item() / miniBatches.length;
              loss = loss.add(se.mul(pc.critic.coef));
            }
            const lv = loss.item();
            if (!Number.isFinite(lv)) finite = false;
            else loss.backward();
            pipeline.observe(lb);
            lossSum += lv;
            if (it === 0) entSum += ent.mul(m).sum().item() / Math.max(1, m.sum().item());
            for (const [k, v] of Object.entries(res.metrics)) {
              lossMetrics[k] ??= [];
              lossMetrics[k].push(v);
            }
          });
          const gn = clipGradNorm(params, cfg.train.maxGradNorm > 0 ? cfg.train.maxGradNorm : Number.POSITIVE_INFINITY);
          gradNorm = gn;
          if (!finite || !Number.isFinite(gn)) {
            skipped++;
            opt.zeroGrad();
            pipeline.endStep(false);
            diagnostics.nonFinite(step, finite ? "gradient norm" : "loss");
            continue;
          }
          opt.step(lr);
          pipeline.endStep(true);
          optSteps++;
          diagnostics.gradNorm(step, gn);
        }
      }
      opt.zeroGrad();
      const slowMetrics: Record<string, number> = {};
      if (policy instanceof GorlPolicy) {
        // GoRL's slow timescale: the decoder's data and refits; a fresh latent policy restarts its moments
        const r = policy.afterUpdate(step, col, cfg.seed);
        Object.assign(slowMetrics, r.metrics);
        if (r.reset) {
          const st = opt.state().tensors;
          noGrad(() =>
            tidy(() => {
              policy.parameters().forEach((_, i) => {
                for (const k of [`exp_avg.${i}`, `exp_avg_sq.${i}`]) {
                  const t = st[k] as Tensor;
                  t.copy_(t.mul(0));
                }
              });
            }),
          );
        }
      }
      const mean = col.returns.reduce((a, b) => a + b, 0) / n;
      const std = Math.sqrt(col.returns.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, n - 1));
      const passes = Math.max(1, optSteps + skipped);
      const m: MetricRecord = {
        step,
        loss: lossSum / passes,
        reward: mean,
        reward_std: std,
        episode_return: mean,
        episode_length: col.lengths.reduce((a, b) => a + b, 0) / n,
        entropy: entSum / Math.max(1, miniBatches.length),
        grad_norm: gradNorm,
        lr,
        skipped_updates: skipped,
        kept_episodes: kept.length,
        "time/sampling_s": col.samplingMs / 1000,
        "time/train_s": (performance.now() - tTrain0) / 1000,
        "time/step_s": (performance.now() - t0) / 1000,
        ...stage.metrics,
        ...slowMetrics,
      };
      if (critic) m.value_loss = valueLoss;
      if (pgOpt) for (const [k, v] of Object.entries(pgOpt.last)) m[`pg/${k}`] = v;
      Object.assign(m, methods.stepMetrics());
      // trust-region violations of the step's update (every step of every kept episode, after the last pass)
      Object.assign(m, trustRegionMetrics(policy, obsAll, rawAll, oldLp, maskT, kept, algo.gate));
      if (policy instanceof HyperMLP) Object.assign(m, policy.featureMetrics(obsAll, maskT));
      Object.assign(m, groupSignal(col, adv, maskT));
      for (const [k, vs] of Object.entries(lossMetrics)) m[k] = vs.reduce((a, b) => a + b, 0) / vs.length;
      return m;
    } finally {
      for (const t of cleanup) t.dispose();
    }
  };

  return {
    cfg,
    runDir,
    log,
    pipeline,
    opt,
    source,
    sync: noSync,
    diagnostics,
    trainable: () => [...named(), ...slow()],
    check() {
      for (const [name, t] of named()) {
        const ok = noGrad(() => tidy(() => t.isfinite().all().item() === 1));
        if (!ok) throw new CohortError(`the policy's ${name} holds non-finite values`);
      }
    },
    update,
    evaluate,
    exportTo(dir) {
      if (pgOpt) return pgOpt.atIterate(() => exportPolicy(dir));
      exportPolicy(dir);
    },
    async dispose() {
      opt.dispose();
      policy.dispose();
      critic?.dispose();
    },
  };

  function exportPolicy(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const decoder =
      policy instanceof GorlPolicy ? policy.decoderState().map(([n, t]): [string, Tensor] => [`gorl.${n}`, t]) : [];
    const st = Object.fromEntries([...named(), ...decoder].map(([k, t]) => [k, noGrad(() => t.detach().clone())]));
    try {
      writeSafetensors(join(dir, "policy.safetensors"), st, { format: "pt" });
    } finally {
      for (const t of Object.values(st)) t.dispose();
    }
    writeFileSync(join(dir, "policy.json"), `${JSON.stringify({ policy: pc, env: envCfg }, null, 2)}\n`);
  }
}
