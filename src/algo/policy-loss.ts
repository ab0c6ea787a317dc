/**
 * The policy loss of one (micro-)batch, composed from a config (ALGORITHMS.md §C):
 *
 * ```
 * ρ        = ratioLevel(ℓ, ℓ_old, mask)                     token / sequence / sequence-token / item / hybrid
 * L_{i,t}  = gate(ρ, A)        or an alternative loss         clip / SAPO / ETR / none | DisCO, Reg-GRPO, REC, REINFORCE
 *          + Σ regularizer token terms                         β·k, −c·H, OPMD, AsymRE
 * loss     = aggregate(L, mask, global counts) + Σ regularizer scalars (LLDS, R²VPO, DisCO KL)
 * ```
 *
 * Metrics are plain numbers under namespaced keys: `loss/policy`, `loss/total`, `ratio/mean|min|max`,
 * `clip/low_ratio|high_ratio|region_ratio` (and `clip_seq/*` for the sequence branch of a hybrid ratio), and each
 * component's own prefix: `kl_reg/*`, `entropy_reg/*`, `llds/*`, `r2vpo/*`, `disco/*`, ….
 *
 * Stateful components (the adaptive entropy coefficient, R²VPO's λ, …) keep their state here: `endStep` once per
 * optimizer step, `state()`/`load()` for checkpoints. Components with a `prepass` need sums over the whole step:
 * call `prepass` on every micro-batch (without gradient), sum the results (and over data-parallel ranks), and
 * pass them to `compute` as `ctx.global` — the loss is then the same however the step is split.
 * @module
 */
import { CohortError } from "../errors.js";
import { type Tensor, tidy } from "../tensor/index.js";
import { aggregate } from "./aggregate.js";
import { loadStateRecord, type StateDef } from "./component.js";
import { type AlgoConfig, type AlgoConfigInput, parseAlgoConfig, type TypedEntry } from "./config.js";
import { applyGate, type GateOutput } from "./gates.js";
import { type LossDef, policyLosses } from "./losses.js";
import { importanceRatio, tokenLogRatio } from "./ratio.js";
import { type RegularizerContext, type RegularizerDef, regularizers } from "./regularizers.js";
import type { GlobalCounts, LossBatch } from "./types.js";

export interface PolicyLossResult {
  /** Scalar loss with grad (sum it over micro-batches: the global counts make it additive). */
  loss: Tensor;
  metrics: Record<string, number>;
}

export interface StepContext {
  /** Optimizer step, for scheduled coefficients (β of GRPO-D). Default 0. */
  step?: number;
  /** Step-wide `prepass` sums, per component key (see `PolicyLoss.prepass`). */
  global?: Record<string, Record<string, number>>;
}

/** A configured component with its per-run state (an empty record when stateless). */
interface Live<D> {
  key: string;
  def: D;
  params: Record<string, unknown>;
  state: Record<string, number>;
}

function live<D extends { name: string; state?: StateDef<never, Record<string, number>> }>(
  key: string,
  def: D,
  entry: TypedEntry,
): Live<D> {
  const { type: _type, ...params } = entry;
  const spec = def.state as StateDef<Record<string, unknown>, Record<string, number>> | undefined;
  return { key, def, params, state: spec ? spec.init(params) : {} };
}

/** Advantages [N] or [N, T] as [N, T] in the dtype of `like`. */
export function broadcastAdvantages(adv: Tensor, like: Tensor): Tensor {
  return tidy(() => {
    const [n, t] = like.shape as [number, number];
    if (adv.ndim === 1) {
      if (adv.shape[0] !== n) throw new CohortError(`advantages have ${adv.shape[0]} entries for ${n} sequences`);
      return adv.to(like.dtype).unsqueeze(1).expand(n, t);
    }
    if (adv.ndim !== 2 || adv.shape[0] !== n || adv.shape[1] !== t) {
      throw new CohortError(`advantages must be [N] or [N, T] = [${n}, ${t}] (got [${adv.shape}])`);
    }
    return adv.to(like.dtype);
  });
}

/** Pass rate per sequence: the mean reward of its group (binary rewards). */
export function groupPassRate(rewards: Float64Array, groupIndex: Int32Array): Float64Array {
  const sum = new Map<number, number>();
  const cnt = new Map<number, number>();
  groupIndex.forEach((g, i) => {
    const r = rewards[i] as number;
    if (Number.isNaN(r)) return;
    sum.set(g, (sum.get(g) ?? 0) + r);
    cnt.set(g, (cnt.get(g) ?? 0) + 1);
  });
  return Float64Array.from(groupIndex, (g) => {
    const c = cnt.get(g) ?? 0;
    return c === 0 ? 0 : (sum.get(g) as number) / c;
  });
}

function gateParams(c: AlgoConfig): Record<string, unknown> {
  const { type: _type, ...rest } = c.gate;
  return rest;
}

/** A configured policy loss. Holds the per-run state of its components; checkpoint it with `state()`/`load()`. */
export class PolicyLoss {
  readonly config: AlgoConfig;
  readonly loss: Live<LossDef>;
  readonly regularizers: Live<RegularizerDef>[];

  constructor(config: AlgoConfig | AlgoConfigInput) {
    this.config = parseAlgoConfig(config);
    this.loss = live("loss", policyLosses.get(this.config.loss.type), this.config.loss);
    this.regularizers = this.config.regularizers.map((r, i) => live(`${i}:${r.type}`, regularizers.get(r.type), r));
  }

  /** Whether some component needs step-wide sums (`prepass`) before `compute`. */
  get needsPrepass(): boolean {
    return this.regularizers.some((r) => r.def.prepass !== undefined && (r.def.usesPrepass?.(r.params) ?? true));
  }

  /** Zero prepass sums for every component that has a prepass (the same keys and fields on every rank). */
  emptyGlobals(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const r of this.regularizers) {
      if (r.def.prepass === undefined || !(r.def.usesPrepass?.(r.params) ?? true)) continue;
      out[r.key] = Object.fromEntries((r.def.prepassFields ?? []).map((f) => [f, 0]));
    }
    return out;
  }

  /**
   * The `prepass` sums of one micro-batch (no gradient needed), per component key. Add them up over every
   * micro-batch of the step (and every rank, `addGlobals`) and pass the total to `compute` as `ctx.global`.
   */
  prepass(batch: LossBatch, counts: GlobalCounts, ctx: StepContext = {}): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    if (!this.needsPrepass) return out;
    tidy(() => {
      const { m, adv, lr, ratio } = this.#common(batch);
      for (const r of this.regularizers) {
        if (r.def.prepass === undefined || !(r.def.usesPrepass?.(r.params) ?? true)) continue;
        out[r.key] = r.def.prepass(
          { batch: { ...batch, mask: m }, ratio, tokenLogRatio: lr, advantages: adv, counts, step: ctx.step ?? 0 },
          r.params,
        );
      }
    });
    return out;
  }

  /** ρ at the configured level (no gate), the token log-ratio, the mask and the broadcast advantages. */
  #common(batch: LossBatch): { m: Tensor; adv: Tensor; lr: Tensor; ratio: Tensor } {
    const { m, adv, lr, ratioOpts } = this.#inputs(batch);
    const ratio =
      this.config.loss.type === "surrogate"
        ? importanceRatio(this.config.ratio.level, { ...batch, mask: m }, ratioOpts).ratio
        : lr.exp();
    return { m, adv, lr, ratio };
  }

  /** The float mask [N, T], the advantages broadcast to [N, T], the token log-ratio and the ratio options. */
  #inputs(batch: LossBatch) {
    const c = this.config;
    const { logprobs, mask } = batch;
    if (logprobs.ndim !== 2 || mask.shape.join() !== logprobs.shape.join()) {
      throw new CohortError(`logprobs and mask must both be [N, T] (got [${logprobs.shape}] and [${mask.shape}])`);
    }
    const m = mask.to(logprobs.dtype);
    const adv = broadcastAdvantages(batch.advantages, logprobs);
    const ratioOpts = {
      logRatioClamp: c.ratio.logRatioClamp,
      seqLogRatioClamp: c.ratio.seqLogRatioClamp,
      hybridMix: c.ratio.hybrid?.mix ?? "average",
    };
    const lr = tokenLogRatio({ ...batch, mask: m }, ratioOpts);
    return { m, adv, lr, ratioOpts };
  }

  compute(batch: LossBatch, counts: GlobalCounts, ctx: StepContext = {}): PolicyLossResult {
    const c = this.config;
    const metrics: Record<string, number> = {};
    const step = ctx.step ?? 0;
    const fullCounts: GlobalCounts = { ...counts };
    if (fullCounts.maxLength === undefined && c.aggregate.maxLength !== undefined) {
      fullCounts.maxLength = c.aggregate.maxLength;
    }
    const loss = tidy(() => {
      const { m, adv, lr, ratioOpts } = this.#inputs(batch);
      const scalars: Tensor[] = [];
      let tokenLoss: Tensor;
      let ratio: Tensor;
      if (c.loss.type === "surrogate") {
        const rr = importanceRatio(c.ratio.level, { ...batch, mask: m }, ratioOpts);
        ratio = rr.ratio;
        const passRate =
          batch.passRate ?? (batch.rewards !== undefined ? groupPassRate(batch.rewards, batch.groupIndex) : undefined);
        const gate = (r: Tensor, params: Record<string, unknown>): GateOutput =>
          applyGate(
            c.gate.type,
            passRate === undefined
              ? { ratio: r, advantages: adv, mask: m }
              : { ratio: r, advantages: adv, mask: m, passRate },
            params,
          );
        if (rr.branches !== undefined) {
          const hy = c.ratio.hybrid ?? { token: { low: 0.2, high: 0.28 }, sequence: { low: 3e-4, high: 4e-4 } };
          let mixed: Tensor | null = null;
          for (const b of rr.branches) {
            // each branch is clipped to its own trust region (a gate without bounds, "none", takes none)
            const bounds = c.gate.type === "none" ? {} : b.name === "token" ? hy.token : hy.sequence;
            const params = { ...gateParams(c), ...bounds };
            const out = gate(b.ratio, params);
            const prefix = b.name === "token" ? "clip/" : "clip_seq/";
            for (const [k, v] of Object.entries(out.metrics)) metrics[k.replace(/^clip\//, prefix)] = v;
            const term = out.loss.mul(b.weight);
            mixed = mixed === null ? term : mixed.add(term);
          }
          tokenLoss = mixed as Tensor;
        } else {
          const out = gate(ratio, gateParams(c));
          Object.assign(metrics, out.metrics);
          tokenLoss = out.loss;
        }
      } else {
        ratio = lr.exp();
        const apply = this.loss.def.apply;
        if (apply === undefined) throw new CohortError(`loss "${c.loss.type}" has no apply function`);
        const out = apply(
          { batch: { ...batch, mask: m }, advantages: adv, tokenLogRatio: lr, counts: fullCounts },
          this.loss.params,
          this.loss.state,
        );
        Object.assign(metrics, out.metrics);
        tokenLoss = out.tokenLoss ?? batch.logprobs.mul(0);
        if (out.loss !== undefined) scalars.push(out.loss);
      }

      // ratio statistics over valid tokens
      tidy(() => {
        const valid = m.gt(0);
        if (valid.sum().item() > 0) {
          const r = ratio.detach().maskedSelect(valid);
          metrics["ratio/mean"] = r.mean().item();
          metrics["ratio/min"] = r.amin().item();
          metrics["ratio/max"] = r.amax().item();
        }
      });

      const policy = aggregate(tokenLoss, m, c.aggregate.mode, fullCounts);
      let policyTotal = policy;
      for (const s of scalars) policyTotal = policyTotal.add(s);
      metrics["loss/policy"] = policyTotal.item();

      let regTokens: Tensor | null = null;
      let total = policyTotal;
      for (const reg of this.regularizers) {
        const rctx: RegularizerContext = {
          batch: { ...batch, mask: m },
          ratio,
          tokenLogRatio: lr,
          advantages: adv,
          counts: fullCounts,
          step,
        };
        const g = ctx.global?.[reg.key];
        if (g !== undefined) rctx.global = g;
        const out = reg.def.compute(rctx, reg.params, reg.state);
        Object.assign(metrics, out.metrics);
        if (out.tokenLoss !== undefined) regTokens = regTokens === null ? out.tokenLoss : regTokens.add(out.tokenLoss);
        if (out.loss !== undefined) total = total.add(out.loss);
      }
      if (regTokens !== null) total = total.add(aggregate(regTokens, m, c.aggregate.mode, fullCounts));
      return total;
    });
    metrics["loss/total"] = loss.item();
    return { loss, metrics };
  }

  /** The stateful components, for the training loop (state, cross-rank sums, `endStep`). */
  stateful(): Live<LossDef | RegularizerDef>[] {
    return [this.loss, ...this.regularizers].filter((l) => l.def.state !== undefined);
  }

  /**
   * Call once after each optimizer step (`applied` false when a non-finite loss or gradient skipped it):
   * dual variables and adaptive coefficients update here.
   */
  endStep(applied = true): void {
    for (const l of this.stateful()) {
      const spec = l.def.state as StateDef<Record<string, unknown>, Record<string, number>>;
      spec.endStep?.(l.state, l.params, applied);
    }
  }

  state(): Record<string, unknown> {
    return Object.fromEntries(this.stateful().map((l) => [l.key, { ...l.state }]));
  }

  load(state: Record<string, unknown>): void {
    for (const l of this.stateful()) {
      l.state = loadStateRecord(l.state, state[l.key], `policy loss component "${l.key}"`);
    }
  }
}

/** Adds `b`'s prepass sums into `a` (same component keys and fields). */
export function addGlobals(
  a: Record<string, Record<string, number>>,
  b: Record<string, Record<string, number>>,
): Record<string, Record<string, number>> {
  for (const [k, rec] of Object.entries(b)) {
    a[k] ??= {};
    const into = a[k];
    for (const [f, v] of Object.entries(rec)) into[f] = (into[f] ?? 0) + v;
  }
  return a;
}

/** A policy loss for a config (validated; throws ConfigError with the key path). */
export function createPolicyLoss(config: AlgoConfig | AlgoConfigInput): PolicyLoss {
  return new PolicyLoss(config);
}

/** One-shot: the loss of one batch under a config (stateful regularizers start from their initial state). */
export function computePolicyLoss(
  config: AlgoConfig | AlgoConfigInput,
  batch: LossBatch,
  counts: GlobalCounts,
  ctx: StepContext = {},
): PolicyLossResult {
  return new PolicyLoss(config).compute(batch, counts, ctx);
}
