/**
 * The control methods of `algo.control` as parts of a control run (run.ts): the policy-gradient optimizers
 * (pg-optim.ts) with HARPG's independent batch, the IWOCS model search around the run's rollouts (iwocs.ts),
 * and action grouping (grouping.ts): the loop trains a tabular policy over groups on the grouped MDP
 * estimated from the sample budget, and evaluation lifts it to the true MDP.
 * @module
 */

import type { Pipeline } from "../algo/pipeline.js";
import { CohortError } from "../errors.js";
import { Rng } from "../task/rng.js";
import { noGrad, type Tensor, tensor, tidy } from "../tensor/index.js";
import type { TrainConfig } from "../train/config.js";
import { type RolloutSource, requestSeed } from "../train/sources.js";
import type { ControlEnv, ControlEnvSpec } from "./env.js";
import { MdpEnv } from "./env.js";
import { chooseGrouping, estimateGrouped, liftPolicy } from "./grouping.js";
import {
  greedyTable,
  type IwocsState,
  initialIwocs,
  iwocsIteration,
  type ModelSpan,
  policyQ,
  policyReturn,
  robustQ,
  worstCase,
} from "./iwocs.js";
import { expectedReturn, type TabularMdp, valueIteration } from "./mdp.js";
import { type ControlAlgo, parseControlAlgo } from "./methods.js";
import { type HessianBatch, PgOptimizer } from "./pg-optim.js";
import { type Policy, TabularSoftmax } from "./policy.js";
import type { EpisodeBatch } from "./run.js";

const softmaxTable = (p: TabularSoftmax): Float64Array =>
  noGrad(() => tidy(() => Float64Array.from(p.theta.softmax(1).to("f64").data() as Float64Array)));

export interface ControlMethods {
  ctrl: ControlAlgo;
  /** Episodes come from here instead of the environment's own factory. */
  make?: () => ControlEnv;
  /** The policy, when the method fixes its shape (grouping: S × M). */
  policy?: () => Policy;
  /** Wraps the run's rollout source (IWOCS: the model of each phase, the search state). */
  wrapSource(src: RolloutSource<EpisodeBatch>, policy: Policy): RolloutSource<EpisodeBatch>;
  /** Evaluation metrics of the method (exact returns). */
  evalMetrics(policy: Policy): Record<string, number>;
  /** Per-step metrics. */
  stepMetrics(): Record<string, number>;
}

/** The methods `algo.control` asks for (config.ts has checked the environment and policy). */
export function controlMethods(
  cfg: TrainConfig,
  spec: ControlEnvSpec,
  options: Record<string, unknown>,
  horizon: number,
): ControlMethods {
  const ctrl = parseControlAlgo(cfg.resolvedAlgo.control);
  const out: ControlMethods = {
    ctrl,
    wrapSource: (s) => s,
    evalMetrics: () => ({}),
    stepMetrics: () => ({}),
  };
  if (ctrl.grouping) {
    const g = ctrl.grouping;
    const m = (spec.mdp as (o: unknown) => TabularMdp)(options);
    const rng = Rng.fromSeed(requestSeed(cfg.seed ^ 0x6a09e667, 0, 0));
    const choice = chooseGrouping(m, g, rng);
    const reduced = estimateGrouped(m, choice.h, g.samples, rng);
    const optimum = expectedReturn(m, valueIteration(m).V);
    // the reduced problem solved exactly (value iteration on P̂, r̂), lifted: the planning reference
    const planned = liftPolicy(
      greedyTable(valueIteration(reduced, 1e-10).Q, m.states, choice.groups),
      choice.h,
      m.states,
    );
    const plannedGap = optimum - policyReturn(m, planned);
    out.make = () => new MdpEnv(reduced, horizon);
    out.policy = () => new TabularSoftmax(m.states, choice.groups);
    out.evalMetrics = (p) => {
      const lifted = liftPolicy(softmaxTable(p as TabularSoftmax), choice.h, m.states);
      return {
        eval_optimality_gap: optimum - policyReturn(m, lifted),
        eval_planned_gap: plannedGap,
        eval_groups: choice.groups,
        eval_grouping_loss: choice.losses[choice.groups] as number,
      };
    };
  }
  if (ctrl.iwocs) {
    const ic = ctrl.iwocs;
    const span = (spec as ControlEnvSpec & { span?: (o: unknown) => ModelSpan }).span?.(options);
    if (!span) throw new CohortError("IWOCS needs an environment with a span of models (robust_garnet)");
    let st: IwocsState = initialIwocs(span);
    let current = span.model(span.nominal);
    const nominal = span.model(span.nominal);
    const optima = Array.from({ length: span.count }, (_, k) =>
      expectedReturn(span.model(k), valueIteration(span.model(k)).V),
    );
    out.make = () => new MdpEnv(current, horizon);
    out.wrapSource = (src, policy) => ({
      ...src,
      collect: async (step) => {
        // a phase ends every stepsPerModel steps: evaluate the trained policy on its model, search the next
        if (step > 1 && (step - 1) % ic.stepsPerModel === 0 && !st.converged) {
          st = iwocsIteration(span, st, { pi: softmaxTable(policy as TabularSoftmax) }, ic);
          current = span.model(st.models.at(-1) as number);
        }
        return src.collect(step);
      },
      state: () => ({ ...(src.state?.() ?? {}), iwocs: st }),
      load: (s) => {
        src.load?.(s);
        if (s.iwocs !== undefined) {
          st = s.iwocs as IwocsState;
          current = span.model(st.models.at(-1) as number);
        }
      },
    });
    out.evalMetrics = (p) => {
      const pi = softmaxTable(p as TabularSoftmax);
      const w = worstCase(span, pi);
      const r: Record<string, number> = {
        eval_worst_case_return: w.value,
        eval_nominal_return: policyReturn(nominal, pi),
        eval_worst_model_optimum: Math.min(...optima),
        eval_iwocs_models: st.models.length,
      };
      // the IWOCS robust policy π_i = argmax_a min_j Q_{T_j}; before the search has stopped, the running phase's
      // model counts with the current policy's Q (the policy π_i would be if the phase ended now)
      const running = st.converged ? st : { ...st, q: [...st.q, Array.from(policyQ(current, pi))] };
      const piI = greedyTable(robustQ(running), nominal.states, nominal.actions);
      r.eval_iwocs_worst_case = worstCase(span, piI).value;
      return r;
    };
    out.stepMetrics = () => ({ "iwocs/model": st.models.at(-1) as number, "iwocs/models": st.models.length });
  }
  return out;
}

/**
 * HARPG's independent batch τ̂ at the current weights: `groups` groups of G episodes from their own seeds,
 * Ĝ = the pipeline's advantages of τ̂, Φ_i = Σ_t Â_{i,t} ℓ_{i,t}, log p_i = Σ_t ℓ_{i,t}.
 */
export function hessianBatchOf(o: {
  make: () => ControlEnv;
  policy: Policy;
  pipeline: Pipeline;
  seed: number;
  step: () => number;
  groups: number;
  groupSize: number;
  play: (make: () => ControlEnv, policy: Policy, seeds: number[], G: number, rng: Rng) => EpisodeBatch;
}): () => HessianBatch {
  return () => {
    const step = o.step();
    const seeds = Array.from({ length: o.groups }, (_, b) => requestSeed(o.seed ^ 0x3c6ef372, step, b));
    const col = o.play(o.make, o.policy, seeds, o.groupSize, Rng.fromSeed(requestSeed(o.seed ^ 0x510e527f, step, 0)));
    const { n, T, obsDim: D, actDim } = col;
    const mask = tensor(col.mask, { shape: [n, T], dtype: "f32" });
    const tokenRewards = tensor(col.rewards, { shape: [n, T], dtype: "f32" });
    try {
      const meanLogprobs = Float64Array.from({ length: n }, (_, i) => {
        let s = 0;
        for (let t = 0; t < T; t++) s += col.logprobs[i * T + t] as number;
        return s / Math.max(1, col.lengths[i] as number);
      });
      const stage = o.pipeline.advantages(
        [col.returns],
        {
          groupIndex: col.groupIndex,
          lengths: col.lengths,
          meanLogprobs,
          truncated: Uint8Array.from(col.terminated, (x, i) => (x === 0 && col.lengths[i] === T ? 1 : 0)),
          mask,
          tokenRewards,
        },
        { mask },
      );
      const adv: Tensor =
        stage.advantages.kind === "sequence"
          ? tensor(stage.advantages.values, { shape: [n, 1], dtype: "f64" })
          : stage.advantages.values.to("f64");
      try {
        return tidy(() => {
          const obs = tensor(col.obs, { shape: [n * T, D], dtype: "f32" });
          const raw =
            o.policy.action.kind === "discrete"
              ? tensor(col.raw, { shape: [n * T], dtype: "i64" })
              : tensor(col.raw, { shape: [n * T, actDim], dtype: "f32" });
          const m = mask.to("f64");
          const lp = o.policy.logProb(obs, raw).lp.to("f64").reshape(n, T).mul(m);
          return { phi: lp.mul(adv).sum(1), logp: lp.sum(1), steps: col.lengths.reduce((a, b) => a + b, 0) };
        });
      } finally {
        adv.dispose();
        for (const a of new Set([stage.advantages, stage.estimated])) if (a.kind === "token") a.values.dispose();
      }
    } finally {
      mask.dispose();
      tokenRewards.dispose();
    }
  };
}

/** The optimizer `algo.control.optimizer` names, over the policy's parameters (null: the loop's AdamW). */
export function controlOptimizer(
  ctrl: ControlAlgo,
  params: Tensor[],
  hessian: () => HessianBatch,
  seed: number,
): PgOptimizer | null {
  const c = ctrl.optimizer;
  if (c.type === "adamw") return null;
  return new PgOptimizer(params, c, {
    hessian: () => hessian(),
    drawB: (t) => Rng.fromSeed(requestSeed(seed ^ 0x1f83d9ab, t, 0)).float(),
  });
}
