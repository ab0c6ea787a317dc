/**
 * Stochastic policy-gradient optimizers of Fatkhullin, Barakat, Kireeva, He (ICML 2023): vanilla PG,
 * N-PG-IGT (normalised PG with implicit gradient transport) and (N-)HARPG (Hessian-aided recursive momentum),
 * as `Optimizer`s of a control run (run.ts). They ascend J with the gradient estimate g = −∇L̂ the loop leaves
 * in the parameters' `.grad` (L̂ = the run's policy loss, −(1/n)Σ_i Σ_t Â_i ℓ_{i,t} with the presets here).
 *
 * | optimizer | update (t = 0, 1, …; ‖·‖ the global L2 norm over all parameters)                              |
 * |-----------|-------------------------------------------------------------------------------------------------|
 * | pg        | θ_{t+1} = θ_t + γ_t g_t,  γ_t = γ_0 (2/(t+2))^{2/3}                                             |
 * | npg_igt   | θ̃_t = θ_t + ((1−η_{t−1})/η_{t−1})(θ_t − θ_{t−1}) (θ̃_0 = θ_0); rollouts and g_t at θ̃_t;        |
 * |           | d_t = (1−η_t) d_{t−1} + η_t g_t (d_0 = g_0); θ_{t+1} = θ_t + γ_t d_t/‖d_t‖;                     |
 * |           | γ_t = γ_0·2/(t+2), η_t = η_0 (2/(t+2))^{4/5}                                                     |
 * | harpg     | v_t = θ_t − θ_{t−1}; θ̂_t = b θ_t + (1−b) θ_{t−1}, b ~ U(0,1); an independent batch τ̂ at θ̂_t;  |
 * |           | d_t = (1−η_t)(d_{t−1} + B̂_t v_t) + η_t g_t (d = g when η_t = 1); η_t = η_0·2/(t+2);            |
 * |           | normalized: θ_{t+1} = θ_t + γ_t d_t/‖d_t‖, γ_t = γ_0·2/(t+2) (N-HARPG);                         |
 * |           | else θ_{t+1} = θ_t + γ_t d_t, γ_t = γ_0 (2/(t+2))^{1/2} (HARPG)                                   |
 *
 * B̂v (`hessianVector`) from τ̂'s per-trajectory Φ_i(θ) = Σ_t ℓ_{i,t}(θ)·Ĝ_i and log p_i = Σ_t ℓ_{i,t}:
 *   paper:       B̂v = (1/n) Σ_i [∇Φ_i·(∇log p_i · v) + ∇²Φ_i · v]     (E[B̂v] = ∇²J·v)
 *   authorsCode: B̂v = ∇²Φ̄·v − ∇Φ̄·(∇ℓ̄·v), Φ̄ = (1/n)ΣΦ_i, ℓ̄ = the mean log-prob over τ̂'s steps (the
 *                released code's sign and batch means, ALGORITHMS.md §E.2 "Discrepancy")
 * Both by double backward (autograd.grad with createGraph); ∇log p_i·v by the double-vjp trick
 * (J v = ∂/∂u ⟨Jᵀu, v⟩), so no per-trajectory gradients and no Hessian are formed.
 *
 * The loop's `lr` is not used: the step sizes are the schedules above (γ_0 = `gamma0`). State for checkpoints:
 * the step count, d, θ_{t−1} and (IGT) θ_t, whose policy weights are the extrapolated point θ̃_t.
 * @module
 */
// arXiv 2302.01734 [CODE] (update rules and schedules: authors' NIGT/STORMHess optimizers; B̂ [PAPER-KNOWN])
import { z } from "zod";
import { CohortError } from "../errors.js";
import {
  autograd,
  keep,
  noGrad,
  type Optimizer,
  type StateDict,
  type Tensor,
  tidy,
  zeros,
  zerosLike,
} from "../tensor/index.js";

export const PG_OPTIMIZERS = ["adamw", "pg", "npg_igt", "harpg"] as const;

const gamma0 = z.number().positive().default(0.1);
const eta0 = z.number().gt(0).max(1).default(1);

/** `algo.control.optimizer`: the loop's AdamW, or one of the policy-gradient optimizers above. */
export const pgOptimizerSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("adamw") }),
  z.strictObject({ type: z.literal("pg"), gamma0 }),
  z.strictObject({ type: z.literal("npg_igt"), gamma0, eta0 }),
  z.strictObject({
    type: z.literal("harpg"),
    gamma0,
    eta0,
    /** N-HARPG (normalised steps, the default) or HARPG. */
    normalized: z.boolean().default(true),
    /** B̂v as the paper writes it, or as the released code computes it. */
    crossTerm: z.enum(["paper", "authorsCode"]).default("paper"),
    /** Groups (of train.groupSize episodes) in the independent batch τ̂ at θ̂_t. */
    hessianGroups: z.number().int().positive().default(1),
  }),
]);
export type PgOptimizerConfig = z.output<typeof pgOptimizerSchema>;

/** γ_t and η_t of an optimizer at step t (0-based). */
export function pgSchedule(c: PgOptimizerConfig, t: number): { gamma: number; eta: number } {
  const r = 2 / (t + 2);
  switch (c.type) {
    case "pg":
      return { gamma: c.gamma0 * r ** (2 / 3), eta: 1 };
    case "npg_igt":
      return { gamma: c.gamma0 * r, eta: Math.min(1, c.eta0 * r ** 0.8) };
    case "harpg":
      return { gamma: c.normalized ? c.gamma0 * r : c.gamma0 * Math.sqrt(r), eta: Math.min(1, c.eta0 * r) };
    default:
      throw new CohortError(`pgSchedule: "${c.type}" has no policy-gradient schedule`);
  }
}

/** τ̂'s per-trajectory surrogate Φ_i [n] and log-likelihood log p_i [n] (with graphs), and its step count. */
export interface HessianBatch {
  phi: Tensor;
  logp: Tensor;
  steps: number;
}

/**
 * B̂v in ascent space (see the module header) at the parameters `params` the batch was computed with.
 * The results are new tensors (owned by the caller).
 */
export function hessianVector(
  params: Tensor[],
  batch: HessianBatch,
  v: Tensor[],
  crossTerm: "paper" | "authorsCode" = "paper",
): Tensor[] {
  return tidy(() => {
    const n = batch.phi.shape[0] as number;
    if (batch.logp.shape[0] !== n)
      throw new CohortError(`hessianVector: phi has ${n} rows, logp ${batch.logp.shape[0]}`);
    const phiMean = batch.phi.sum().div(n);
    // c_i = ∇log p_i · v by the double-vjp trick: w(u) = Jᵀu, c = ∂⟨w(u), v⟩/∂u
    const u = zeros([n], { dtype: batch.logp.dtype }).requireGrad(true);
    const w = autograd.grad([u.mul(batch.logp).sum()], params, {
      createGraph: true,
      retainGraph: true,
      allowUnused: true,
    });
    let wv: Tensor | null = null;
    w.forEach((wi, k) => {
      if (wi === null) return;
      const term = wi.mul((v[k] as Tensor).to(wi.dtype)).sum();
      wv = wv === null ? term : wv.add(term);
    });
    const c =
      wv === null || !(wv as Tensor).requiresGrad
        ? zeros([n], { dtype: batch.logp.dtype })
        : ((autograd.grad([wv as Tensor], [u], { retainGraph: true, allowUnused: true })[0] ?? zeros([n])) as Tensor);
    let cross: Tensor;
    if (crossTerm === "paper") cross = c.detach().to(batch.phi.dtype).mul(batch.phi).sum().div(n);
    else {
      // −Φ̄·(∇ℓ̄·v) with ℓ̄ = Σ log p / steps: a scalar (∇ℓ̄·v) times Φ̄
      const dir = c.detach().sum().div(Math.max(1, batch.steps)).item();
      cross = phiMean.mul(-dir);
    }
    // ∇[cross + ⟨∇Φ̄, v⟩] = cross term + ∇²Φ̄·v
    const g = autograd.grad([phiMean], params, { createGraph: true, retainGraph: true, allowUnused: true });
    let total = cross;
    g.forEach((gi, k) => {
      if (gi === null) return;
      total = total.add(gi.mul((v[k] as Tensor).to(gi.dtype)).sum());
    });
    const out = total.requiresGrad
      ? autograd.grad([total], params, { allowUnused: true, retainGraph: true })
      : params.map(() => null);
    return out.map((o, k) => (o === null ? zerosLike(params[k] as Tensor) : o.detach()));
  });
}

const sqNorm = (ts: Tensor[]): number =>
  noGrad(() => tidy(() => ts.reduce((s, t) => s + t.to("f64").square().sum().item(), 0)));

/**
 * The policy-gradient optimizers as one `Optimizer` over the policy's parameters. `hessian` supplies HARPG's
 * independent batch at the current weights (run.ts plays it); `drawB(t)` the interpolation point b_t.
 */
export class PgOptimizer implements Optimizer {
  readonly params: Tensor[];
  readonly config: Exclude<PgOptimizerConfig, { type: "adamw" }>;
  stepCount = 0;
  /** Last step's γ_t, η_t, ‖d_t‖, ‖B̂v‖, b (metrics). */
  last: Record<string, number> = {};
  readonly #d: Tensor[];
  readonly #prev: Tensor[];
  /** IGT: the iterate θ_t (the parameters hold the extrapolated point θ̃_t). */
  readonly #theta: Tensor[];
  readonly #hessian: ((params: Tensor[]) => HessianBatch) | null;
  readonly #drawB: (t: number) => number;

  constructor(
    params: Tensor[],
    config: Exclude<PgOptimizerConfig, { type: "adamw" }>,
    opts: { hessian?: (params: Tensor[]) => HessianBatch; drawB?: (t: number) => number } = {},
  ) {
    if (params.length === 0) throw new CohortError(`${config.type}: no parameters to optimise`);
    this.params = params;
    this.config = config;
    this.#d = params.map((p) => keep(noGrad(() => zerosLike(p))));
    this.#prev = params.map((p) => keep(noGrad(() => tidy(() => p.detach().clone()))));
    this.#theta =
      config.type === "npg_igt" ? params.map((p) => keep(noGrad(() => tidy(() => p.detach().clone())))) : [];
    if (config.type === "harpg" && opts.hessian === undefined)
      throw new CohortError("harpg needs a source of the Hessian batch (an independent batch at θ̂_t)");
    this.#hessian = opts.hessian ?? null;
    this.#drawB = opts.drawB ?? (() => 0.5);
  }

  /** g = −∇L̂ (ascent), copies of the gradients; a parameter without a gradient contributes zero. */
  #ascent(): Tensor[] {
    return noGrad(() =>
      this.params.map((p) => {
        const g = p.grad;
        try {
          return keep(g === null ? zerosLike(p) : g.neg());
        } finally {
          g?.dispose();
        }
      }),
    );
  }

  step(_lr?: number): void {
    const t = this.stepCount;
    const c = this.config;
    const { gamma, eta } = pgSchedule(c, t);
    const g = this.#ascent();
    const owned: Tensor[] = [...g];
    try {
      const info: Record<string, number> = { gamma, eta };
      if (c.type === "pg") {
        noGrad(() => {
          this.params.forEach((p, k) => {
            this.#prev[k]?.copy_(p);
            tidy(() => p.copy_(p.add((g[k] as Tensor).mul(gamma))));
          });
        });
      } else if (c.type === "npg_igt") {
        noGrad(() =>
          this.#d.forEach((d, k) => {
            tidy(() => d.copy_(t === 0 ? (g[k] as Tensor) : d.mul(1 - eta).add((g[k] as Tensor).mul(eta))));
          }),
        );
        const dn = Math.sqrt(sqNorm(this.#d));
        info.d_norm = dn;
        const scale = dn > 0 ? gamma / dn : 0;
        // θ̃_{t+1} = θ_{t+1} + ((1 − η_t)/η_t)(θ_{t+1} − θ_t)
        const ext = (1 - eta) / eta;
        noGrad(() =>
          this.params.forEach((p, k) => {
            const th = this.#theta[k] as Tensor;
            const prev = this.#prev[k] as Tensor;
            tidy(() => {
              prev.copy_(th);
              th.copy_(th.add((this.#d[k] as Tensor).mul(scale)));
              p.copy_(th.add(th.sub(prev).mul(ext)));
            });
          }),
        );
      } else {
        let bv: Tensor[] | null = null;
        if (t > 0 && eta < 1) {
          const b = this.#drawB(t);
          info.b = b;
          const theta = noGrad(() => this.params.map((p) => keep(tidy(() => p.detach().clone()))));
          const v = noGrad(() => this.params.map((p, k) => keep(tidy(() => p.sub(this.#prev[k] as Tensor)))));
          owned.push(...theta, ...v);
          // θ̂_t = b θ_t + (1 − b) θ_{t−1}
          noGrad(() =>
            this.params.forEach((p, k) => {
              tidy(() => p.copy_((theta[k] as Tensor).mul(b).add((this.#prev[k] as Tensor).mul(1 - b))));
            }),
          );
          try {
            const hb = (this.#hessian as (ps: Tensor[]) => HessianBatch)(this.params);
            try {
              bv = hessianVector(this.params, hb, v, c.crossTerm).map((x) => keep(x));
            } finally {
              hb.phi.dispose();
              hb.logp.dispose();
            }
            owned.push(...bv);
          } finally {
            noGrad(() =>
              this.params.forEach((p, k) => {
                p.copy_(theta[k] as Tensor);
              }),
            );
          }
          info.hv_norm = Math.sqrt(sqNorm(bv));
        }
        noGrad(() =>
          this.#d.forEach((d, k) => {
            tidy(() =>
              d.copy_(
                bv === null
                  ? (g[k] as Tensor)
                  : d
                      .add(bv[k] as Tensor)
                      .mul(1 - eta)
                      .add((g[k] as Tensor).mul(eta)),
              ),
            );
          }),
        );
        const dn = Math.sqrt(sqNorm(this.#d));
        info.d_norm = dn;
        const scale = c.normalized ? (dn > 0 ? gamma / dn : 0) : gamma;
        noGrad(() =>
          this.params.forEach((p, k) => {
            this.#prev[k]?.copy_(p);
            tidy(() => p.copy_(p.add((this.#d[k] as Tensor).mul(scale))));
          }),
        );
      }
      this.last = info;
      this.stepCount = t + 1;
    } finally {
      for (const x of owned) x.dispose();
    }
  }

  /**
   * Runs `fn` with the iterate θ_t in the parameters (IGT keeps the extrapolated point θ̃_t there between
   * steps; evaluation and export read θ_t). Other optimizers: `fn()`.
   */
  atIterate<T>(fn: () => T): T {
    if (this.#theta.length === 0) return fn();
    const held = noGrad(() => this.params.map((p) => keep(tidy(() => p.detach().clone()))));
    try {
      noGrad(() =>
        this.params.forEach((p, k) => {
          p.copy_(this.#theta[k] as Tensor);
        }),
      );
      return fn();
    } finally {
      noGrad(() =>
        this.params.forEach((p, k) => {
          p.copy_(held[k] as Tensor);
        }),
      );
      for (const h of held) h.dispose();
    }
  }

  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  state(): StateDict {
    const tensors: Record<string, Tensor> = {};
    this.#d.forEach((t, i) => {
      tensors[`d.${i}`] = t;
    });
    this.#prev.forEach((t, i) => {
      tensors[`prev.${i}`] = t;
    });
    this.#theta.forEach((t, i) => {
      tensors[`theta.${i}`] = t;
    });
    return { tensors, meta: { kind: this.config.type, step: this.stepCount, config: this.config } };
  }

  load(state: StateDict): void {
    if (state.meta.kind !== this.config.type)
      throw new CohortError(
        `${this.config.type}.load: state is of kind "${String(state.meta.kind)}", not "${this.config.type}"`,
      );
    const into = (ts: Tensor[], prefix: string) =>
      ts.forEach((t, i) => {
        const src = state.tensors[`${prefix}.${i}`];
        if (src === undefined) throw new CohortError(`${this.config.type}.load: state lacks "${prefix}.${i}"`);
        if (src.shape.join(",") !== t.shape.join(","))
          throw new CohortError(
            `${this.config.type}.load: "${prefix}.${i}" has shape [${src.shape}], the parameter [${t.shape}]`,
          );
        noGrad(() => t.copy_(src));
      });
    into(this.#d, "d");
    into(this.#prev, "prev");
    into(this.#theta, "theta");
    this.stepCount = Number(state.meta.step);
  }

  dispose(): void {
    for (const t of [...this.#d, ...this.#prev, ...this.#theta]) t.dispose();
  }
}
