/**
 * LoRA adapters (Hu et al. 2021, arXiv:2106.09685) on a `CausalLM`'s projections:
 * `y = x·Wᵀ (+ b) + (alpha / rank) · (x·Aᵀ)·Bᵀ`, with A [rank, in] and B [out, rank].
 *
 * Initialisation follows PEFT: A uniform in ±1/√in (kaiming-uniform with a = √5), B zeros, so a fresh
 * adapter leaves the model's outputs unchanged. While applied, the base weights are frozen and
 * `model.parameters()` returns only the adapter tensors. `disabled(fn)` runs `fn` on the base model: the
 * reference policy of a KL term costs no second copy of the weights.
 *
 * Adapter tensor names follow PEFT without its `base_model.model.` prefix:
 * `model.layers.0.self_attn.q_proj.lora_A.weight`.
 * @module
 */
import { CohortError, ConfigError } from "../errors.js";
import { Generator, keep, linear, rand, type StateDict, type Tensor, tidy, zeros } from "../tensor/index.js";
import type { CausalLM, ProjectionAdapter } from "./llama.js";

export type LoraTarget = "q" | "k" | "v" | "o" | "gate" | "up" | "down";
const ALL_TARGETS: LoraTarget[] = ["q", "k", "v", "o", "gate", "up", "down"];

export interface LoraOptions {
  /** r: the inner dimension of each adapter. */
  rank: number;
  /** The delta is scaled by alpha / rank. Default: 2 · rank (scale 2). */
  alpha?: number;
  /** Projections to adapt. Default: all attention projections, q k v o. */
  targets?: LoraTarget[];
  /** Seed of the A matrices. Default 0. */
  seed?: number;
}

interface Pair {
  a: Tensor; // [rank, in]
  b: Tensor; // [out, rank]
  weight: Tensor; // the adapted base weight [out, in]
  unmerged: Tensor | null; // a copy of `weight` taken by merge(), put back by unmerge()
}

export class LoraAdapter implements ProjectionAdapter {
  readonly rank: number;
  readonly alpha: number;
  readonly scale: number;
  readonly targets: readonly LoraTarget[];
  readonly #pairs = new Map<string, Pair>();
  #disabled = 0;
  #merged = false;
  #attached = true;

  constructor(
    readonly model: CausalLM,
    opts: LoraOptions,
  ) {
    if (!Number.isInteger(opts.rank) || opts.rank < 1)
      throw new ConfigError(`must be an integer ≥ 1, got ${opts.rank}`, "lora.rank");
    if (model.adapter !== null) throw new CohortError("applyLora: the model already has an adapter; detach() it first");
    this.rank = opts.rank;
    this.alpha = opts.alpha ?? 2 * opts.rank;
    if (!(this.alpha > 0)) throw new ConfigError(`must be > 0, got ${this.alpha}`, "lora.alpha");
    this.scale = this.alpha / this.rank;
    this.targets = opts.targets ?? ["q", "k", "v", "o"];
    for (const t of this.targets) {
      if (!ALL_TARGETS.includes(t))
        throw new ConfigError(`unknown target "${t}"; allowed: ${ALL_TARGETS.join(", ")}`, "lora.targets");
    }
    if (this.targets.length === 0) throw new ConfigError("needs at least one target projection", "lora.targets");
    const gen = new Generator(opts.seed ?? 0);
    for (const layer of model.layers) {
      for (const t of this.targets) {
        const weight = layer[t];
        const name = layer.names[t];
        const [out, inp] = weight.shape as [number, number];
        const bound = 1 / Math.sqrt(inp);
        const a = keep(
          tidy(() =>
            rand([this.rank, inp], { generator: gen })
              .mul(2 * bound)
              .sub(bound)
              .to(model.device),
          ),
        ).requireGrad();
        const b = keep(zeros([out, this.rank], { device: model.device })).requireGrad();
        this.#pairs.set(name, { a, b, weight, unmerged: null });
      }
    }
    for (const p of model.parameters()) p.requireGrad(false);
    model.adapter = this;
    model.adapterParameters = () => this.parameters();
  }

  /** The adapter tensors, A then B per adapted projection, in layer order. */
  parameters(): Tensor[] {
    return [...this.#pairs.values()].flatMap((p) => [p.a, p.b]);
  }

  namedParameters(): [string, Tensor][] {
    return [...this.#pairs.entries()].flatMap(([name, p]): [string, Tensor][] => {
      const base = name.replace(/\.weight$/, "");
      return [
        [`${base}.lora_A.weight`, p.a],
        [`${base}.lora_B.weight`, p.b],
      ];
    });
  }

  /** @internal the projection hook called by the model. */
  apply(name: string, x: Tensor, y: Tensor): Tensor {
    if (this.#disabled > 0 || this.#merged) return y;
    const p = this.#pairs.get(name);
    if (p === undefined) return y;
    return y.add(linear(linear(x, p.a), p.b).mul(this.scale)); // [.., out]
  }

  /** @internal W + scale·B·A (detached) while the adapter is active, for the fused decoding step. */
  effectiveWeight(name: string, w: Tensor): Tensor | null {
    if (this.#disabled > 0 || this.#merged) return null;
    const p = this.#pairs.get(name);
    if (p === undefined) return null;
    return tidy(() => w.detach().add(p.b.detach().matmul(p.a.detach()).mul(this.scale)));
  }

  /** Whether the adapter adds its delta now (not merged, not inside `disabled`). */
  get active(): boolean {
    return this.#disabled === 0 && !this.#merged;
  }

  get merged(): boolean {
    return this.#merged;
  }

  /** Runs `fn` on the base model (adapters off), e.g. for reference log-probs. Nestable; restores on throw. */
  disabled<T>(fn: () => T): T {
    if (this.#merged) throw new CohortError("LoRA.disabled: the adapter is merged into the weights; unmerge() first");
    this.#disabled++;
    try {
      return fn();
    } finally {
      this.#disabled--;
    }
  }

  /**
   * Adds scale·B·A into each adapted weight (faster decoding); the adapter stops adding its delta. Keeps a
   * copy of each adapted weight until `unmerge()`, so merged models hold those weights twice.
   */
  merge(): void {
    if (this.#merged) return;
    tidy(() => {
      for (const p of this.#pairs.values()) {
        p.unmerged = keep(p.weight.detach().clone());
        p.weight.addScaled_(p.b.detach().matmul(p.a.detach()), this.scale);
      }
    });
    this.#merged = true;
  }

  /**
   * Puts back the weights `merge()` saved, bit for bit. (Subtracting the delta again would leave up to an
   * ulp per weight, and how much depends on the BLAS and the libtorch version.)
   */
  unmerge(): void {
    if (!this.#merged) return;
    for (const p of this.#pairs.values()) {
      if (p.unmerged === null) continue;
      p.weight.copy_(p.unmerged);
      p.unmerged.dispose();
      p.unmerged = null;
    }
    this.#merged = false;
  }

  state(): StateDict {
    return {
      tensors: Object.fromEntries(this.namedParameters()),
      meta: { rank: this.rank, alpha: this.alpha, targets: [...this.targets] },
    };
  }

  load(s: StateDict): void {
    for (const [name, t] of this.namedParameters()) {
      const src = s.tensors[name];
      if (src === undefined)
        throw new CohortError(`LoRA.load: missing "${name}"; was it saved with the same targets and layers?`);
      if (src.shape.join(",") !== t.shape.join(",")) {
        throw new CohortError(
          `LoRA.load: "${name}" has shape [${src.shape}], expected [${t.shape}] (rank ${this.rank})`,
        );
      }
      t.copy_(src);
    }
  }

  /** Removes the adapter from the model (unmerging first), unfreezes the base weights and frees the adapter. */
  detach(): void {
    if (!this.#attached) return;
    this.unmerge();
    this.model.adapter = null;
    this.model.adapterParameters = null;
    for (const p of this.model.parameters()) p.requireGrad(true);
    for (const t of this.parameters()) t.dispose();
    this.#attached = false;
  }
}

/** Attaches LoRA adapters to `model` and returns them. */
export function applyLora(model: CausalLM, opts: LoraOptions): LoraAdapter {
  return new LoraAdapter(model, opts);
}
