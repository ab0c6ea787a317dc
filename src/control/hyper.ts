/**
 * Hyper++ (arXiv 2512.14202 [CODE], ALGORITHMS.md §E.6): a PPO agent whose actor logits and critic bins are
 * hyperbolic multinomial-logistic-regression scores of features mapped onto a hyperbolic manifold, with the
 * features' norm bounded by RMS normalisation and a learned scale (not by clipping), and a categorical critic
 * (HL-Gauss, value.ts).
 *
 * | piece            | formula (curvature −c)                                                                     |
 * |------------------|--------------------------------------------------------------------------------------------|
 * | encoder          | h = MLP(s) (tanh hidden layers, then a linear layer to d = `featureDim`)                   |
 * | feature scaling  | x = tanh(RMSNorm(h)) / √d;  s = sigmoid(w·x + b);  v = s · (atanh(α)/√c) · x              |
 * |                  | (RMSNorm without affine, ε = the dtype's machine ε) ⇒ ‖v‖ < atanh(α)/√c  (1.8318 at α 0.95) |
 * | hyperboloid exp₀ | x₀ = cosh(√c‖v‖)/√c,  x_{1:d} = sinh(√c‖v‖)/(√c‖v‖)·v,  then x₀ ← √(‖x_{1:d}‖² + 1/c)    |
 * | hyperboloid MLR  | α_k = −x₀ sinh(√c r_k)‖z_k‖ + cosh(√c r_k)⟨z_k, x_{1:d}⟩;                                  |
 * |                  | score_k = ‖z_k‖ · asinh(clamp~(√c α_k/‖z_k‖)) / √c                                         |
 * | Poincaré exp₀    | x = tanh(√c‖v‖) · v/(√c‖v‖)                                                                |
 * | Poincaré MLR     | score_k = (2‖z_k‖/√c) asinh(clamp~(λ_x √c⟨x, z_k⟩/‖z_k‖ cosh(2√c r_k) − (λ_x − 1) sinh(2√c r_k))), |
 * |                  | λ_x = 2/(1 − c‖x‖²)  (HNN++, arXiv 2006.08210 [PAPER-KNOWN]; Hyper++'s Poincaré ablation)  |
 * | distances        | hyperboloid acosh(−c⟨x, y⟩_L)/√c;  Poincaré acosh(1 + 2c‖x − y‖²/((1 − c‖x‖²)(1 − c‖y‖²)))/√c |
 * | euclidean head   | score = v W + b (the paper's Euclidean manifold: same encoder, linear heads)               |
 *
 * z_k ~ N(0, 1/d), r_k = 0 at initialisation; the heads compute in float64 (the authors' manifold dtype) and
 * hand float32 logits back. clamp~ is a smooth clamp to ±m, m = ln(2/ε_f64) = 36.74:
 * clamp~(y) = y − softplus(β(y − m))/β + softplus(β(−m − y))/β, β = 50 (design choice: the spec names a
 * softplus-based clamp with β = 50, not its exact form). The actor and the critic share the encoder and the
 * scaling (the critic lists only its head). The tanh hidden layers are those of Cohort's other MLP policies
 * (design choice: the paper's encoder is an IMPALA CNN), so that against `categorical_mlp` only Hyper++'s parts
 * differ.
 * @module
 */
import { z } from "zod";
import { ConfigError } from "../errors.js";
import { cat, type DType, noGrad, randn, type Tensor, tidy, where, zeros } from "../tensor/index.js";
import { type ActionSpace, CategoricalBase, mlpForward, mlpLayers, type Policy } from "./policy.js";
import { HlGauss, type HlGaussOptions, maskedStepMean, type ValueFunction } from "./value.js";

// arXiv 2512.14202 [CODE]
export const hyperOptionsSchema = z.strictObject({
  /** Where the heads live: `hyperboloid` (Hyper++), `poincare` (the Poincaré-ball ablation), `euclidean`. */
  manifold: z.enum(["hyperboloid", "poincare", "euclidean"]).default("hyperboloid"),
  /** c of the curvature −c. */
  curvature: z.number().positive().default(1),
  /** d: the width of the features the heads read. */
  featureDim: z.number().int().positive().default(32),
  /** `rms`: RMSNorm (no affine) before the tanh; `none`: the tanh alone. */
  norm: z.enum(["rms", "none"]).default("rms"),
  /** `learnable`: v = sigmoid(w·x + b)·atanh(α)/√c · x/√d (Hyper++); `dim`: x/√d; `none`: x. */
  scaling: z.enum(["learnable", "dim", "none"]).default("learnable"),
  /** α of the learned scale's bound atanh(α)/√c (a Poincaré exp₀ lands within radius α/√c). */
  alpha: z.number().gt(0).lt(1).default(0.95),
});
export type HyperOptions = z.output<typeof hyperOptionsSchema>;

/** ln(2/ε) of float64: where the MLR's asinh argument is smoothly clamped. */
export const ASINH_BOUND = Math.log(2 / 2 ** -52);
const CLAMP_BETA = 50;
/** Head computations run in float64 whatever the policy's dtype. */
const HEAD_DTYPE: DType = "f64";

/** sinh(a)/a with its Taylor series near 0 (no 0/0, no cancellation). */
function sinhc(a: Tensor): Tensor {
  const small = a.lt(1e-3);
  const safe = where(small, 1, a);
  const exact = safe.exp().sub(safe.neg().exp()).div(safe.mul(2));
  const a2 = a.square();
  const series = a2.div(6).add(a2.square().div(120)).add(1);
  return where(small, series, exact);
}
const cosh = (a: Tensor): Tensor => a.exp().add(a.neg().exp()).mul(0.5);
const sinh = (a: Tensor): Tensor => a.exp().sub(a.neg().exp()).mul(0.5);

/** asinh(y) = ln(y + √(y² + 1)), each sign from its accurate branch (|y| bounded by the callers' clamp). */
export function asinh(y: Tensor): Tensor {
  return tidy(() => {
    const s = y.square().add(1).sqrt();
    return where(y.ge(0), y.add(s).log(), y.neg().add(s).log().neg());
  });
}

/** acosh(y) = ln(y + √(y² − 1)), y clamped to ≥ 1 + 1e-12 (a finite gradient at coincident points). */
export function acosh(y: Tensor): Tensor {
  return tidy(() => {
    const yc = y.clamp(1 + 1e-12, null);
    return yc.add(yc.square().sub(1).sqrt()).log();
  });
}

/** y − softplus(β(y − m))/β + softplus(β(−m − y))/β: the identity inside ±m, flat beyond. */
export function smoothClamp(y: Tensor, m = ASINH_BOUND, beta = CLAMP_BETA): Tensor {
  return tidy(() => y.sub(y.sub(m).mul(beta).softplus().div(beta)).add(y.neg().sub(m).mul(beta).softplus().div(beta)));
}

/** ‖v‖ over the last dim [n, 1], floored at 1e-12 (no NaN gradient at v = 0). */
function rowNorm(v: Tensor): Tensor {
  return v.square().sum(-1, true).clamp(1e-24, null).sqrt();
}

/** exp₀ onto the hyperboloid: v [n, d] (a tangent vector at the origin) → x [n, d + 1] = (x₀, x_{1:d}). */
export function hyperboloidExpmap0(v: Tensor, c: number): Tensor {
  return tidy(() => {
    const sc = Math.sqrt(c);
    const a = rowNorm(v).mul(sc); // [n, 1]
    const space = v.mul(sinhc(a)); // sinh(√c‖v‖)/(√c‖v‖) · v
    const time = space
      .square()
      .sum(-1, true)
      .add(1 / c)
      .sqrt(); // x₀ recomputed on the manifold
    return cat([time, space], 1);
  });
}

/** The Lorentz inner product ⟨x, y⟩_L = −x₀y₀ + ⟨x_{1:d}, y_{1:d}⟩, row-wise [n]. */
export function lorentzInner(x: Tensor, y: Tensor): Tensor {
  return tidy(() => {
    const d = (x.shape[1] as number) - 1;
    const t = x
      .narrow(1, 0, 1)
      .mul(y.narrow(1, 0, 1))
      .squeeze(1);
    return x
      .narrow(1, 1, d)
      .mul(y.narrow(1, 1, d))
      .sum(1)
      .sub(t);
  });
}

/** Geodesic distance on the hyperboloid of curvature −c, row-wise [n]. */
export function hyperboloidDistance(x: Tensor, y: Tensor, c: number): Tensor {
  return tidy(() => acosh(lorentzInner(x, y).mul(-c)).div(Math.sqrt(c)));
}

/** exp₀ onto the Poincaré ball of curvature −c: tanh(√c‖v‖) · v/(√c‖v‖). */
export function poincareExpmap0(v: Tensor, c: number): Tensor {
  return tidy(() => {
    const a = rowNorm(v).mul(Math.sqrt(c));
    return v.mul(a.tanh().div(a));
  });
}

/** Geodesic distance in the Poincaré ball of curvature −c, row-wise [n]. */
export function poincareDistance(x: Tensor, y: Tensor, c: number): Tensor {
  return tidy(() => {
    const nx = x.square().sum(1).mul(-c).add(1);
    const ny = y.square().sum(1).mul(-c).add(1);
    const arg = x
      .sub(y)
      .square()
      .sum(1)
      .mul(2 * c)
      .div(nx.mul(ny))
      .add(1);
    return acosh(arg).div(Math.sqrt(c));
  });
}

/**
 * Hyperboloid MLR scores [n, K] of points x [n, d + 1] for hyperplanes z [K, d], r [K] (Hyper++'s
 * "optimisation-friendly" head: the distance-to-hyperplane form with the asinh argument clamped).
 */
export function hyperboloidMlr(x: Tensor, z: Tensor, r: Tensor, c: number): Tensor {
  return tidy(() => {
    const sc = Math.sqrt(c);
    const d = (x.shape[1] as number) - 1;
    const x0 = x.narrow(1, 0, 1); // [n, 1]
    const xs = x.narrow(1, 1, d); // [n, d]
    const zn = rowNorm(z).reshape(1, -1); // [1, K]
    const rr = r.reshape(1, -1).mul(sc); // [1, K]
    const alpha = xs
      .matmul(z.transpose(0, 1))
      .mul(cosh(rr))
      .sub(x0.mul(sinh(rr)).mul(zn)); // [n, K]
    return asinh(smoothClamp(alpha.mul(sc).div(zn)))
      .mul(zn)
      .div(sc);
  });
}

/** Poincaré-ball MLR scores [n, K] (HNN++) of points x [n, d] for hyperplanes z [K, d], r [K]. */
export function poincareMlr(x: Tensor, z: Tensor, r: Tensor, c: number): Tensor {
  return tidy(() => {
    const sc = Math.sqrt(c);
    const zn = rowNorm(z).reshape(1, -1); // [1, K]
    const lambda = x.square().sum(-1, true).mul(-c).add(1).reciprocal().mul(2); // [n, 1]
    const rr = r.reshape(1, -1).mul(2 * sc); // [1, K]
    const inner = x.matmul(z.transpose(0, 1)).div(zn).mul(sc); // [n, K]
    const arg = lambda
      .mul(inner)
      .mul(cosh(rr))
      .sub(lambda.sub(1).mul(sinh(rr)));
    return asinh(smoothClamp(arg))
      .mul(zn)
      .mul(2 / sc);
  });
}

type Owner = { param(name: string, t: Tensor): Tensor };

/** One output head on the features: hyperbolic MLR (z, r) or a linear layer (weight, bias). */
export class Head {
  readonly manifold: HyperOptions["manifold"];
  readonly c: number;
  readonly a: Tensor;
  readonly b: Tensor;

  constructor(owner: Owner, prefix: string, d: number, k: number, o: HyperOptions, dtype: DType) {
    this.manifold = o.manifold;
    this.c = o.curvature;
    const init = noGrad(() =>
      tidy(() => randn(this.manifold === "euclidean" ? [d, k] : [k, d], { dtype }).mul(1 / Math.sqrt(d))),
    );
    if (this.manifold === "euclidean") {
      this.a = owner.param(`${prefix}.weight`, init);
      this.b = owner.param(`${prefix}.bias`, zeros([k], { dtype }));
    } else {
      this.a = owner.param(`${prefix}.z`, init);
      this.b = owner.param(`${prefix}.r`, zeros([k], { dtype }));
    }
  }

  /** Scores [n, K] (float64) of features v [n, d]. */
  forward(v: Tensor): Tensor {
    return tidy(() => {
      const x = v.to(HEAD_DTYPE);
      const a = this.a.to(HEAD_DTYPE);
      const b = this.b.to(HEAD_DTYPE);
      if (this.manifold === "euclidean") return x.matmul(a).add(b);
      if (this.manifold === "hyperboloid") return hyperboloidMlr(hyperboloidExpmap0(x, this.c), a, b, this.c);
      return poincareMlr(poincareExpmap0(x, this.c), a, b, this.c);
    });
  }
}

export interface HyperMlpOptions {
  hidden?: number[];
  hyper?: Partial<HyperOptions>;
  dtype?: DType;
}

/** Hyper++'s actor: logits = head(scale(encoder(s))); `features` is what a sharing critic reads. */
export class HyperMLP extends CategoricalBase implements Policy {
  readonly kind = "hyper_mlp" as const;
  readonly obsDim: number;
  readonly action: ActionSpace;
  readonly o: HyperOptions;
  readonly featureDim: number;
  /** atanh(α)/√c with learnable scaling; √1 = 1 with `dim`; ∞ with none. */
  readonly normBound: number;
  readonly #enc: { w: Tensor; b: Tensor }[];
  readonly #scale: { w: Tensor; b: Tensor } | null;
  readonly head: Head;

  constructor(obsDim: number, actions: number, opts: HyperMlpOptions = {}) {
    super(opts.dtype ?? "f32");
    this.o = hyperOptionsSchema.parse(opts.hyper ?? {});
    this.obsDim = obsDim;
    this.action = { kind: "discrete", n: actions };
    const d = this.o.featureDim;
    this.featureDim = d;
    this.#enc = mlpLayers(this, "enc", [obsDim, ...(opts.hidden ?? [64, 64]), d], this.dtype, 1);
    this.#scale =
      this.o.scaling === "learnable"
        ? (mlpLayers(this, "scale", [d, 1], this.dtype, 1)[0] as { w: Tensor; b: Tensor })
        : null;
    this.normBound =
      this.o.scaling === "learnable"
        ? Math.atanh(this.o.alpha) / Math.sqrt(this.o.curvature)
        : this.o.scaling === "dim"
          ? 1
          : Number.POSITIVE_INFINITY;
    this.head = new Head(this, "pi", d, actions, this.o, this.dtype);
  }

  /** The bounded features v [n, d] (the tangent vectors the heads map onto the manifold). */
  features(obs: Tensor): Tensor {
    return tidy(() => {
      let h = mlpForward(this.#enc, obs.to(this.dtype)); // [n, d]
      if (this.o.norm === "rms") {
        const eps = this.dtype === "f64" ? 2 ** -52 : 2 ** -23;
        h = h.mul(h.square().mean(-1, true).add(eps).rsqrt());
      }
      let x = h.tanh();
      if (this.o.scaling === "none") return x;
      x = x.div(Math.sqrt(this.featureDim));
      if (this.#scale === null) return x;
      const s = x.matmul(this.#scale.w).add(this.#scale.b).sigmoid(); // [n, 1]
      return x.mul(s).mul(this.normBound);
    });
  }

  logits(obs: Tensor): Tensor {
    return tidy(() => this.head.forward(this.features(obs)).to(this.dtype));
  }

  /** ‖v‖ over the valid rows of obs [n, obsDim] (mask [n] or null): mean and max, and the bound. */
  featureMetrics(obs: Tensor, mask: Tensor | null): Record<string, number> {
    return noGrad(() =>
      tidy(() => {
        const norms = this.features(obs).square().sum(1).sqrt().to("f64");
        const m = mask === null ? null : mask.reshape(-1).to("f64").gt(0);
        const sel = m === null ? norms : norms.maskedSelect(m);
        if (sel.shape[0] === 0) return {};
        return {
          "hyper/feature_norm": sel.mean().item(),
          "hyper/feature_norm_max": sel.amax().item(),
          ...(Number.isFinite(this.normBound) ? { "hyper/feature_norm_bound": this.normBound } : {}),
        };
      }),
    );
  }
}

/** Hyper++'s critic: a head on the actor's features (shared encoder), categorical (HL-Gauss) or one value. */
export class HyperCritic implements ValueFunction {
  readonly params: [string, Tensor][] = [];
  readonly head: Head;
  readonly hl: HlGauss | null;
  readonly #policy: HyperMLP;

  constructor(policy: HyperMLP, categorical?: HlGaussOptions) {
    this.#policy = policy;
    this.hl = categorical ? new HlGauss(categorical) : null;
    this.head = new Head(this, "head", policy.featureDim, this.hl ? this.hl.o.bins : 1, policy.o, policy.dtype);
  }
  param(name: string, t: Tensor): Tensor {
    const p = t.requireGrad(true);
    this.params.push([name, p]);
    return p;
  }
  #out(obs: Tensor): Tensor {
    return this.head.forward(this.#policy.features(obs)).to("f32");
  }
  value(obs: Tensor): Tensor {
    return tidy(() => (this.hl ? this.hl.value(this.#out(obs)) : this.#out(obs).squeeze(1)));
  }
  loss(obs: Tensor, targets: Tensor, mask: Tensor): Tensor {
    return tidy(() => {
      const out = this.#out(obs);
      const y = targets.reshape(-1);
      const per = this.hl ? this.hl.crossEntropy(out, y) : out.squeeze(1).sub(y.to("f32")).square();
      return maskedStepMean(per, mask);
    });
  }
  dispose(): void {
    for (const [, p] of this.params) p.dispose();
  }
}

/**
 * The checks of a config with hyper_mlp or preset hyper_pp beyond the schema (control/config.ts calls it):
 * `hyper` only with hyper_mlp; its critic shares the encoder (no `critic.hidden`); `hyper_pp` is all of
 * Hyper++ — the hyper_mlp policy and a categorical critic (ablations: preset `ppo` with hyper_mlp).
 */
export function checkHyperConfig(
  p: { kind: string; hyper?: unknown; critic?: { categorical?: unknown } },
  raw: unknown,
  preset: string | undefined,
): void {
  const rawCritic = (raw as { policy?: { critic?: Record<string, unknown> } }).policy?.critic;
  if (p.hyper !== undefined && p.kind !== "hyper_mlp")
    throw new ConfigError(`applies to policy.kind hyper_mlp, not ${p.kind}; remove it`, "policy.hyper");
  if (p.kind === "hyper_mlp" && rawCritic?.hidden !== undefined)
    throw new ConfigError(
      "a hyper_mlp critic is a head on the policy's encoder (Hyper++ shares it); remove critic.hidden (policy.hidden sizes the encoder)",
      "policy.critic.hidden",
    );
  if (preset === "hyper_pp") {
    if (p.kind !== "hyper_mlp")
      throw new ConfigError(
        `preset hyper_pp trains Hyper++'s hyperbolic policy: set policy.kind hyper_mlp (got ${p.kind}); for Euclidean PPO use preset ppo`,
        "policy.kind",
      );
    if (p.critic?.categorical === undefined)
      throw new ConfigError(
        "preset hyper_pp trains a categorical critic: set policy.critic.categorical ({} for 51 bins on [−10, 10]); for the squared-error ablation use preset ppo",
        "policy.critic.categorical",
      );
  }
}
