/**
 * A decoder-only transformer of the Llama family (Llama, Qwen2, SmolLM), written to be read top to bottom.
 * It follows Hugging Face's `modeling_llama.py` / `modeling_qwen2.py` equation for equation, so their
 * checkpoints load by name:
 *
 *   x = embed_tokens[ids]
 *   for each layer:  x = x + o_proj(attn(rope(q_proj(norm(x))), rope(k_proj(norm(x))), v_proj(norm(x))))
 *                    x = x + down_proj(silu(gate_proj(norm(x))) * up_proj(norm(x)))
 *   logits = lm_head(norm(x))            (lm_head = embed_tokens when tie_word_embeddings)
 *
 * Legend: B batch, T query positions, S key positions, D hidden size, H query heads, Hkv key/value heads
 * (grouped-query attention: each K/V head serves H/Hkv query heads), hd head dim, F MLP width, V vocab.
 *
 * Parameter names are exactly those of `LlamaForCausalLM` / `Qwen2ForCausalLM`
 * (`model.layers.0.self_attn.q_proj.weight`, …, `lm_head.weight`), so `state()` / `load()` round-trip
 * with transformers' state dicts.
 * @module
 */
import { CohortError } from "../errors.js";
import {
  arange,
  attention,
  cat,
  checkpoint,
  type Device,
  embedding as embed,
  full,
  Generator,
  isGradEnabled,
  keep,
  linear,
  noGrad,
  ones,
  randn,
  rmsNorm,
  type StateDict,
  scalar,
  Tensor,
  tensor,
  tidy,
  zeros,
} from "../tensor/index.js";
import { native, type TensorHandle } from "../tensor/native.js";
import type { PackedBatch } from "./batch.js";
import { configFromHF, configToHF, type ModelConfig } from "./config.js";

export type { PackedBatch } from "./batch.js";

/** The Policy interface of DESIGN.md §4. */
export interface Policy {
  logprobs(batch: PackedBatch, opts?: LogprobOptions): { lp: Tensor; entropy?: Tensor };
  parameters(): Tensor[];
  state(): StateDict;
  load(s: StateDict): void;
}

export interface LogprobOptions {
  /** Logits are divided by this before the log-softmax (the sampling temperature). Default 1. */
  temperature?: number;
  /** Also return the per-token entropy of softmax(logits / T). Default false. */
  entropy?: boolean;
  /**
   * Sequence positions per lm_head chunk: each chunk's [N, chunk, V] logits are the only vocabulary-sized
   * tensor alive at once, forward and backward. Default: as many rows as keep a chunk near 16M logits.
   */
  chunkSize?: number;
}

/** Something that adds a learned delta to a projection's output (LoRA). `name` is the weight's name. */
export interface ProjectionAdapter {
  apply(name: string, x: Tensor, y: Tensor): Tensor;
  /** The weight with the delta folded in (a new tensor), or null when the adapter leaves `name` as is. */
  effectiveWeight(name: string, w: Tensor): Tensor | null;
  /** Whether the delta applies now (false while disabled or merged); caches of folded weights key on it. */
  readonly active?: boolean;
}

/**
 * Weights rearranged for the fused native decoding step (`decodeForward`): q/k/v and gate/up
 * concatenated, adapters folded in. Valid while the model's weights do not change; `dispose()` it after.
 */
export interface DecodePlan {
  /** `int8`: the projections and lm_head quantized per output channel (`RolloutPrecision`). */
  readonly precision: RolloutPrecision;
  /**
   * @internal native handles, per layer: [inputNorm, Wqkv, bqkv|null, Wo, postNorm, Wgateup, Wdown], and with
   * int8 the four scales [sQkv, sWo, sGateup, sDown] after them
   */
  readonly layers: (TensorHandle | null)[][];
  /** @internal [embed, finalNorm, lmHead, cos, sin], and with int8 lmHead's scale */
  readonly globals: TensorHandle[];
  /** @internal int8: each projection's quantized weight by its name (views of the fused ones; `lm_head` too) */
  readonly quant: ReadonlyMap<string, QuantizedWeight> | null;
  /** @internal [H, Hkv, hd, eps] */
  readonly dims: number[];
  dispose(): void;
}

export interface ModelOptions {
  /** Seed of the weight initialisation (normal(0, initStd) for matrices, ones for norms, zeros for biases). */
  seed?: number;
  /** Std of the initial weights; Hugging Face's `initializer_range` default 0.02. */
  initStd?: number;
  /** Where the weights live and every forward runs: `cpu` (default), `cuda`, `cuda:N`. */
  device?: Device;
  /** Matmul precision; the weights stay fp32 either way (see `Precision`). Default `fp32`. */
  precision?: Precision;
}

/**
 * `fp32`: every op in fp32. `bf16`: mixed precision in the manner of autocast: the projections and attention
 * run in bf16 (inputs cast on the fly, outputs cast back to fp32), while the weights (fp32 master copies, so
 * the optimizer updates fp32), the residual stream, RMSNorm, RoPE, and lm_head with its log-softmax stay fp32.
 * Keeping lm_head fp32 is a design choice: token log-probs feed the importance ratio, and bf16 logits
 * would put a mismatch of ~1e-2 between the sampler's and the trainer's log-probs.
 */
export type Precision = "fp32" | "bf16";

/**
 * Precision of the weights rollouts decode with. `fp32`: the model's own weights. `int8`: weight-only int8,
 * per output channel (w ≈ q · scale[row], symmetric, q ∈ [-127, 127]) for every projection and lm_head, with
 * fp32 activations, norms, RoPE, attention, KV cache and log-softmax (native `int8Linear`): a quarter of the
 * weight bytes per decoded token. The embedding lookup stays fp32. Training never sees the int8 copy: its
 * log-probs differ from the sampler's by the quantization error, which the mismatch metric reports and
 * `sampler.importanceSampling` corrects.
 */
export type RolloutPrecision = "fp32" | "int8";

/** An int8 weight [N, K] and its per-row scale [N] (`native.quantizeInt8`). */
export interface QuantizedWeight {
  q: Tensor;
  scale: Tensor;
}

/** Per-output-channel symmetric int8 of a weight [N, K] (a new pair of tensors, owned by the caller's scope). */
export function quantizeInt8(w: Tensor): QuantizedWeight {
  const [q, scale] = native.quantizeInt8(w.h);
  return { q: new Tensor(q), scale: new Tensor(scale) };
}

/** x [..., K] · (q · scale)ᵀ (+ b) with fp32 activations (native int8 kernel; CPU, no autograd). */
export function int8Linear(
  x: Tensor,
  w: QuantizedWeight,
  b: Tensor | null = null,
  mode: "auto" | "kernel" | "torch" = "auto",
): Tensor {
  return new Tensor(native.int8Linear(x.h, w.q.h, w.scale.h, b === null ? null : b.h, mode));
}

/** One decoder layer's weights; `names` are the state-dict keys of the projections. */
export interface LayerWeights {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  qBias: Tensor | null;
  kBias: Tensor | null;
  vBias: Tensor | null;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
  names: { q: string; k: string; v: string; o: string; gate: string; up: string; down: string };
}

/**
 * Which keys a layer's queries attend to. Called with the queries q [B, H, T, hd] and the T new positions'
 * keys and values k, v [B, Hkv, T, hd] (after RoPE); returns the attention output [B, H, T, hd]. The full
 * forward attends over k, v themselves under a causal mask (and writes them into the cache when it
 * prefills); the decoding step writes them into the cache and attends over every cached column; the
 * shared-prefix forward puts its group's prompt keys in front of them.
 */
export type AttendOver = (q: Tensor, k: Tensor, v: Tensor) => Tensor;

/**
 * The key/value cache of incremental decoding: per layer, k and v of shape [B, Hkv, Smax, hd] (after RoPE),
 * the valid-key mask [B, Smax] and the next position id of each row. Owns its tensors: call `dispose()`.
 */
export class KVCache {
  readonly k: Tensor[] = [];
  readonly v: Tensor[] = [];
  /** [B, Smax] bool: which cache columns hold real tokens (left padding is false). */
  keyValid: Tensor;
  /** Rows (sequences) held; shrinks with `keepRows`. */
  batch: number;
  /** [B, 1] i64 position id of the next token of each row. */
  positions: Tensor;
  /** Cache columns filled so far (all rows advance together). */
  length = 0;

  constructor(
    readonly config: ModelConfig,
    batch: number,
    readonly maxLength: number,
    dtype: "f32" | "f16" | "bf16" = "f32",
    readonly device: Device = "cpu",
  ) {
    this.batch = batch;
    const shape = [batch, config.numKeyValueHeads, maxLength, config.headDim];
    for (let i = 0; i < config.numHiddenLayers; i++) {
      this.k.push(keep(zeros(shape, { dtype, device })));
      this.v.push(keep(zeros(shape, { dtype, device })));
    }
    this.keyValid = keep(zeros([batch, maxLength], { dtype: "bool", device }));
    this.positions = keep(zeros([batch, 1], { dtype: "i64", device }));
  }

  setPositions(p: Tensor): void {
    this.positions.dispose();
    this.positions = keep(p);
  }

  /** Keeps only the given rows, in that order (drops finished sequences so later steps skip them). */
  keepRows(rows: number[]): void {
    const idx = tensor(rows, { dtype: "i64", device: this.device });
    const pick = (t: Tensor): Tensor => {
      const out = keep(tidy(() => t.indexSelect(0, idx).contiguous())); // the gathered copy only
      t.dispose();
      return out;
    };
    for (let i = 0; i < this.k.length; i++) {
      this.k[i] = pick(this.k[i] as Tensor);
      this.v[i] = pick(this.v[i] as Tensor);
    }
    this.keyValid = pick(this.keyValid);
    this.positions = pick(this.positions);
    idx.dispose();
    this.batch = rows.length;
  }

  dispose(): void {
    for (const t of [...this.k, ...this.v, this.keyValid, this.positions]) t.dispose();
  }
}

/** Llama / Qwen2 / SmolLM causal LM. Implements the `Policy` interface. */
export class CausalLM implements Policy {
  readonly config: ModelConfig;
  /** Hooks added to projections (set by `applyLora`). */
  adapter: ProjectionAdapter | null = null;
  /** When set, `parameters()` returns these (the adapter's tensors; set by `applyLora`). */
  adapterParameters: (() => Tensor[]) | null = null;
  /**
   * Activation checkpointing per layer (`train.activationCheckpointing`): with autograd on, each block of the
   * full forward keeps only its input for the backward and is recomputed there (src/tensor/checkpoint.ts),
   * trading one more forward pass of the blocks for their activations. Gradients are those of the plain path.
   * CPU only. The prefill, the decoding step and the shared-prefix forward never checkpoint.
   */
  activationCheckpointing = false;

  readonly embedTokens: Tensor;
  readonly layers: LayerWeights[] = [];
  readonly finalNorm: Tensor;
  /** null when tied to `embedTokens`. */
  readonly lmHead: Tensor | null;
  /** The device of every weight, as libtorch names it (`cpu`, `cuda:0`, …). */
  readonly device: Device;
  readonly precision: Precision;
  readonly #named = new Map<string, Tensor>();
  #cos: Tensor | null = null;
  #sin: Tensor | null = null;
  /** Set only while an int8 plan prefills: the projections then read these instead of the fp32 weights. */
  #quant: ReadonlyMap<string, QuantizedWeight> | null = null;

  constructor(config: ModelConfig, opts: ModelOptions = {}) {
    this.config = config;
    this.precision = opts.precision ?? "fp32";
    if (this.precision !== "fp32" && this.precision !== "bf16")
      throw new CohortError(`model precision must be "fp32" or "bf16", got ${JSON.stringify(this.precision)}`);
    const c = config;
    const gen = new Generator(opts.seed ?? 0);
    const std = opts.initStd ?? 0.02;
    const dev = opts.device ?? "cpu";
    // initialised on the CPU (the seeded generator is a CPU one), then moved: the same weights on every device
    const param = (name: string, shape: number[], init: "normal" | "ones" | "zeros"): Tensor => {
      const t = tidy(() => {
        const w =
          init === "normal" ? randn(shape, { generator: gen }).mul(std) : init === "ones" ? ones(shape) : zeros(shape);
        return dev === "cpu" ? w : w.to(dev);
      });
      keep(t).requireGrad();
      this.#named.set(name, t);
      return t;
    };
    const D = c.hiddenSize;
    const hd = c.headDim;
    this.embedTokens = param("model.embed_tokens.weight", [c.vocabSize, D], "normal");
    for (let i = 0; i < c.numHiddenLayers; i++) {
      const p = `model.layers.${i}`;
      const names = {
        q: `${p}.self_attn.q_proj.weight`,
        k: `${p}.self_attn.k_proj.weight`,
        v: `${p}.self_attn.v_proj.weight`,
        o: `${p}.self_attn.o_proj.weight`,
        gate: `${p}.mlp.gate_proj.weight`,
        up: `${p}.mlp.up_proj.weight`,
        down: `${p}.mlp.down_proj.weight`,
      };
      const bias = (n: string, size: number) =>
        c.attentionBias ? param(`${p}.self_attn.${n}_proj.bias`, [size], "zeros") : null;
      this.layers.push({
        inputNorm: param(`${p}.input_layernorm.weight`, [D], "ones"),
        q: param(names.q, [c.numAttentionHeads * hd, D], "normal"),
        qBias: bias("q", c.numAttentionHeads * hd),
        k: param(names.k, [c.numKeyValueHeads * hd, D], "normal"),
        kBias: bias("k", c.numKeyValueHeads * hd),
        v: param(names.v, [c.numKeyValueHeads * hd, D], "normal"),
        vBias: bias("v", c.numKeyValueHeads * hd),
        o: param(names.o, [D, c.numAttentionHeads * hd], "normal"),
        postNorm: param(`${p}.post_attention_layernorm.weight`, [D], "ones"),
        gate: param(names.gate, [c.intermediateSize, D], "normal"),
        up: param(names.up, [c.intermediateSize, D], "normal"),
        down: param(names.down, [D, c.intermediateSize], "normal"),
        names,
      });
    }
    this.finalNorm = param("model.norm.weight", [D], "ones");
    this.lmHead = c.tieWordEmbeddings ? null : param("lm_head.weight", [c.vocabSize, D], "normal");
    this.device = this.embedTokens.device;
  }

  /**
   * A model from a Hugging Face config.json object and a state dict (e.g. read from safetensors), on
   * `opts.device` (the state dict may live anywhere: it is copied over).
   */
  static fromHF(
    configJson: Record<string, unknown>,
    tensors: Record<string, Tensor>,
    opts: Pick<ModelOptions, "device" | "precision"> = {},
  ): CausalLM {
    const m = new CausalLM(configFromHF(configJson), opts);
    m.load({ tensors, meta: {} });
    return m;
  }

  /** `t` on this model's device (itself when it is there already; else a copy, owned by the enclosing scope). */
  onDevice(t: Tensor): Tensor {
    return t.device === this.device ? t : t.to(this.device);
  }

  // ---- parameters and state ---------------------------------------------------------------------

  /** Every weight by its Hugging Face name (the live tensors, not copies). */
  namedParameters(): [string, Tensor][] {
    return [...this.#named.entries()];
  }

  /** The trainable tensors: the model's weights, or only the adapter's when LoRA is applied. */
  parameters(): Tensor[] {
    return this.adapterParameters ? this.adapterParameters() : [...this.#named.values()];
  }

  /** `tensors`: the live weights by Hugging Face name; `meta.config`: the config.json object. */
  state(): StateDict {
    return { tensors: Object.fromEntries(this.#named), meta: { config: configToHF(this.config) } };
  }

  /**
   * Copies weights in by name (cast to each parameter's dtype). Every parameter must be present with its
   * shape; a tied model accepts and ignores `lm_head.weight`. Unknown keys are an error.
   */
  load(s: StateDict): void {
    const src = s.tensors;
    const missing = [...this.#named.keys()].filter((k) => !(k in src));
    const unexpected = Object.keys(src).filter(
      (k) =>
        !this.#named.has(k) &&
        !(k === "lm_head.weight" && this.config.tieWordEmbeddings) &&
        !k.endsWith("rotary_emb.inv_freq"),
    );
    if (missing.length > 0 || unexpected.length > 0) {
      throw new CohortError(
        `load: the state dict does not match this ${this.config.modelType} model` +
          (missing.length ? `; missing: ${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", …" : ""}` : "") +
          (unexpected.length
            ? `; unexpected: ${unexpected.slice(0, 5).join(", ")}${unexpected.length > 5 ? ", …" : ""}`
            : "") +
          ". Check that the config (layers, attention_bias, tie_word_embeddings) matches the checkpoint.",
      );
    }
    for (const [name, p] of this.#named) {
      const t = src[name] as Tensor;
      if (t.shape.join(",") !== p.shape.join(",")) {
        throw new CohortError(
          `load: "${name}" has shape [${t.shape}] but the model expects [${p.shape}]; check the config`,
        );
      }
    }
    tidy(() => {
      for (const [name, p] of this.#named) {
        const t = src[name] as Tensor;
        p.copy_(t.dtype === p.dtype ? t : t.to(p.dtype));
      }
    });
  }

  /** Frees every weight and cached table. The model is unusable afterwards. */
  dispose(): void {
    for (const t of this.#named.values()) t.dispose();
    this.#cos?.dispose();
    this.#sin?.dispose();
  }

  /**
   * A number that changes whenever a weight or an adapter tensor is written in place: optimizer steps,
   * `load`, LoRA merge/unmerge/load, checkpoint restores (the sum of libtorch's version counters, which
   * every in-place write bumps and nothing lowers). Caches of derived weights (decoding plans) key on it.
   */
  weightsVersion(): number {
    const ts = [...this.#named.values(), ...(this.adapterParameters?.() ?? [])];
    return native.tensorVersions(ts.map((t) => t.h));
  }

  /** The output projection [V, D] (the embedding matrix when tied). */
  get outputWeight(): Tensor {
    return this.lmHead ?? this.embedTokens;
  }

  // ---- the transformer block, leaves first: rmsNorm → proj → rope → attention → mlp → block ---------

  /** RMSNorm over the last dim, in fp32 (HF `LlamaRMSNorm`): x · rsqrt(mean(x²) + eps) · w. */
  norm(x: Tensor, w: Tensor): Tensor {
    return rmsNorm(x, w, this.config.rmsNormEps);
  }

  /** x @ Wᵀ (+ b), plus the adapter's delta when one is attached. With bf16 precision: in bf16, back to fp32. */
  proj(name: string, x: Tensor, w: Tensor, b: Tensor | null = null): Tensor {
    const qw = this.#quant?.get(name);
    if (qw !== undefined) return int8Linear(x, qw, b); // an int8 plan's prefill: adapters are folded in already
    const y =
      this.precision === "bf16"
        ? linear(x.to("bf16"), w.to("bf16"), b === null ? null : b.to("bf16")).to("f32")
        : linear(x, w, b);
    return this.adapter ? this.adapter.apply(name, x, y) : y;
  }

  /** cos/sin tables [n, hd] for positions 0..n-1, grown on demand (HF: emb = cat(freqs, freqs)). */
  ropeTables(n: number): [Tensor, Tensor] {
    if (this.#cos === null || (this.#cos.shape[0] as number) < n) {
      const len = Math.max(n, 2 * ((this.#cos?.shape[0] as number | undefined) ?? 64));
      const hd = this.config.headDim;
      const [cos, sin] = tidy(() => {
        // inv_freq = 1 / θ^(2i/hd), in f32 and in the same op order as transformers
        const exponents = arange(0, hd, 2, { dtype: "f32" }).div(hd); // [hd/2]
        const invFreq = full([hd / 2], this.config.ropeTheta)
          .pow(exponents)
          .reciprocal(); // [hd/2]
        const pos = arange(0, len, 1, { dtype: "f32" }); // [n]
        const freqs = pos.unsqueeze(1).mul(invFreq.unsqueeze(0)); // [n, hd/2]
        const emb = cat([freqs, freqs], -1); // [n, hd]
        return [this.onDevice(emb.cos()), this.onDevice(emb.sin())];
      });
      this.#cos?.dispose();
      this.#sin?.dispose();
      this.#cos = keep(cos);
      this.#sin = keep(sin);
    }
    return [this.#cos, this.#sin as Tensor];
  }

  /**
   * The rotary angles of position ids [B, T] (i64): cos, sin [B, 1, T, hd], ready to broadcast over heads.
   * `n` bounds the positions (the tables grow to it).
   */
  ropeAt(positions: Tensor, n: number): [Tensor, Tensor] {
    const [B, T] = positions.shape as [number, number];
    const hd = this.config.headDim;
    const [cosT, sinT] = this.ropeTables(n);
    const flat = positions.reshape(B * T); // [B·T]
    return [cosT.indexSelect(0, flat).reshape(B, 1, T, hd), sinT.indexSelect(0, flat).reshape(B, 1, T, hd)];
  }

  /** RoPE with HF's rotate_half: x·cos + [−x₂, x₁]·sin. x [.., hd]; cos/sin broadcast to x. */
  static rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
    const half = (x.shape[x.ndim - 1] as number) / 2;
    const x1 = x.narrow(-1, 0, half); // [.., hd/2]
    const x2 = x.narrow(-1, half, half); // [.., hd/2]
    const rotated = cat([x2.neg(), x1], -1); // [.., hd]
    return x.mul(cos).add(rotated.mul(sin));
  }

  /**
   * Scaled dot-product attention of q [B, H, T, hd] over k, v [B, Hkv, S, hd] (grouped-query: each K/V head
   * serves H/Hkv query heads, repeated as HF's repeat_kv does); mask [B, 1, T, S], true = attend. With bf16
   * precision it runs in bf16, the output back in fp32. → [B, H, T, hd]
   */
  attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null): Tensor {
    const H = q.shape[1] as number;
    const Hkv = k.shape[1] as number;
    const kx = Hkv === H ? k : k.repeatInterleave(H / Hkv, 1); // [B, H, S, hd]
    const vx = Hkv === H ? v : v.repeatInterleave(H / Hkv, 1); // [B, H, S, hd]
    if (this.precision !== "bf16") return attention(q, kx, vx, mask, false);
    return attention(q.to("bf16"), kx.to("bf16"), vx.to("bf16"), mask, false).to("f32");
  }

  /**
   * A layer's self-attention over the normed stream h [B, T, D] at rotary angles cos/sin [B, 1, T, hd].
   * `over` decides which keys the queries see (see `AttendOver`). → [B, T, D] (after o_proj)
   */
  selfAttention(L: LayerWeights, h: Tensor, cos: Tensor, sin: Tensor, over: AttendOver): Tensor {
    const [B, T] = h.shape as [number, number];
    const H = this.config.numAttentionHeads;
    const Hkv = this.config.numKeyValueHeads;
    const hd = this.config.headDim;
    const q = this.proj(L.names.q, h, L.q, L.qBias).view(B, T, H, hd).transpose(1, 2); // [B, H, T, hd]
    const k = this.proj(L.names.k, h, L.k, L.kBias).view(B, T, Hkv, hd).transpose(1, 2); // [B, Hkv, T, hd]
    const v = this.proj(L.names.v, h, L.v, L.vBias).view(B, T, Hkv, hd).transpose(1, 2); // [B, Hkv, T, hd]
    const a = over(CausalLM.rope(q, cos, sin), CausalLM.rope(k, cos, sin), v); // [B, H, T, hd]
    return this.proj(L.names.o, a.transpose(1, 2).reshape(B, T, H * hd), L.o); // [B, T, D]
  }

  /** SwiGLU MLP of the normed stream h [B, T, D]: down(silu(gate(h)) · up(h)). → [B, T, D] */
  mlp(L: LayerWeights, h: Tensor): Tensor {
    const g = this.proj(L.names.gate, h, L.gate).silu(); // [B, T, F]
    const u = this.proj(L.names.up, h, L.up); // [B, T, F]
    return this.proj(L.names.down, g.mul(u), L.down); // [B, T, D]
  }

  /**
   * One decoder layer, pre-norm: x + attention(norm(x)), then + mlp(norm(x)). x [B, T, D] → [B, T, D].
   * The full forward, the prefill, the op-by-op decoding step and the shared-prefix forward all run it;
   * they differ only in the rotary positions and in `over`.
   */
  block(L: LayerWeights, x: Tensor, cos: Tensor, sin: Tensor, over: AttendOver): Tensor {
    x = x.add(this.selfAttention(L, this.norm(x, L.inputNorm), cos, sin, over)); // [B, T, D]
    return x.add(this.mlp(L, this.norm(x, L.postNorm))); // [B, T, D]
  }

  /** Position ids from an attention mask [B, T]: cumsum − 1, clamped at 0 (HF's generate convention). */
  static positionIds(attentionMask: Tensor): Tensor {
    // i64 scalars: a JS number operand would promote the ids to f32
    return tidy(() => attentionMask.to("i64").cumsum(-1).sub(int64(1)).maximum(int64(0))); // [B, T]
  }

  /**
   * The boolean attention mask [B, 1, T, T] (true = attend): causal, padded keys hidden. A padding query
   * attends to itself, so its row is never empty (empty rows would give NaN that leaks through 0·NaN).
   */
  static attentionMask(attentionMask: Tensor | null, B: number, T: number, device: Device = "cpu"): Tensor {
    return tidy(() => {
      const idx = arange(0, T, 1, { device: attentionMask?.device ?? device }); // [T]
      const causal = idx.unsqueeze(0).le(idx.unsqueeze(1)); // [T, T]: key ≤ query
      if (attentionMask === null) return causal.unsqueeze(0).unsqueeze(0).expand(B, 1, T, T);
      const keyValid = attentionMask.ne(0).reshape(B, 1, 1, T); // [B, 1, 1, T]
      const diag = idx.unsqueeze(0).eq(idx.unsqueeze(1)); // [T, T]
      return causal.logicalAnd(keyValid).logicalOr(diag); // [B, 1, T, T]
    });
  }

  // ---- forward ------------------------------------------------------------------------------------

  /**
   * Final hidden states [B, T, D] (after the last RMSNorm) of token ids [B, T]. `attentionMask` [B, T]
   * (1 = token, 0 = padding) handles left and right padding; position ids are derived from it.
   * With `cache`, the k/v of these T positions are written into cache columns 0..T-1 (prefill).
   */
  hidden(inputIds: Tensor, attentionMask: Tensor | null = null, cache: KVCache | null = null): Tensor {
    const [B, T] = inputIds.shape as [number, number];
    return tidy(() => {
      inputIds = this.onDevice(inputIds);
      if (attentionMask) attentionMask = this.onDevice(attentionMask);
      const positions = attentionMask
        ? CausalLM.positionIds(attentionMask)
        : arange(0, T, 1, { device: this.device }).unsqueeze(0).expand(B, T); // [B, T]
      const [cos, sin] = this.ropeAt(positions, T); // [B, 1, T, hd]
      const mask = CausalLM.attentionMask(attentionMask, B, T, this.device); // [B, 1, T, T]
      let x = embed(this.embedTokens, inputIds); // [B, T, D]
      const ckpt = this.activationCheckpointing && cache === null && isGradEnabled();
      if (ckpt && this.device !== "cpu")
        throw new CohortError(
          `activation checkpointing runs on the CPU only; this model is on ${this.device}. Set train.activationCheckpointing: false`,
        );
      const adapterParams = ckpt ? (this.adapterParameters?.() ?? []) : [];
      for (const [i, L] of this.layers.entries()) {
        if (ckpt) {
          // the trainable tensors this block reads: its own weights (full fine-tuning) or the adapter's
          const own = [L.inputNorm, L.q, L.k, L.v, L.o, L.qBias, L.kBias, L.vBias, L.postNorm, L.gate, L.up, L.down];
          const params = [...own.filter((t): t is Tensor => t !== null), ...adapterParams].filter(
            (t) => t.requiresGrad,
          );
          if (params.length > 0 || x.requiresGrad) {
            const input = x;
            x = checkpoint(
              ([xi, c, s, m]) =>
                this.block(L, xi as Tensor, c as Tensor, s as Tensor, (q, k, v) => this.attend(q, k, v, m as Tensor)),
              [x, cos, sin, mask],
              params,
            ); // [B, T, D]
            input.dispose(); // the node holds what its backward needs
            continue;
          }
        }
        // a scope per layer: without autograd (reference and old log-probs, prefill) each layer's intermediates
        // are freed as soon as it is done, not kept until the whole forward ends; with autograd the graph keeps
        // what the backward needs either way
        const input = x;
        x = tidy(() =>
          this.block(L, input, cos, sin, (q, k, v) => {
            if (cache) {
              (cache.k[i] as Tensor).sliceAssign_(2, 0, k);
              (cache.v[i] as Tensor).sliceAssign_(2, 0, v);
            }
            return this.attend(q, k, v, mask); // [B, H, T, hd]
          }),
        ); // [B, T, D]
        input.dispose(); // the residual stream before this layer (autograd keeps its own reference when it needs one)
      }
      if (cache) {
        cache.keyValid.sliceAssign_(
          1,
          0,
          attentionMask ? attentionMask.ne(0) : ones([B, T], { dtype: "bool", device: this.device }),
        );
        cache.setPositions(positions.narrow(1, T - 1, 1).add(int64(1))); // [B, 1]
        cache.length = T;
      }
      return this.norm(x, this.finalNorm); // [B, T, D]
    });
  }

  /** Logits [B, T, V]. Fine for tests and short inputs; training uses `logprobs`, which never holds all of them. */
  forward(inputIds: Tensor, attentionMask: Tensor | null = null): Tensor {
    return tidy(() => linear(this.hidden(inputIds, attentionMask), this.outputWeight)); // [B, T, V]
  }

  /**
   * Per-token log-probs of the batch's own tokens under softmax(logits / temperature), aligned with
   * `inputIds`: `lp[n, t] = log p(inputIds[n, t] | inputIds[n, < t])` ([N, L]). Columns before the first
   * completion column (or column 0 without a completion mask) are 0; so are the log-probs of padding,
   * which callers mask anyway. `entropy` (when asked) has the same layout. Gradients flow when grad is on.
   *
   * lm_head, log-softmax and entropy run fused and chunked (native `linearTokenLogprobs`): only one
   * chunk's logits exist at a time, in the forward and in the backward, which recomputes them instead of
   * keeping [N, L, V] alive for autograd.
   */
  logprobs(batch: PackedBatch, opts: LogprobOptions = {}): { lp: Tensor; entropy?: Tensor } {
    const T = opts.temperature ?? 1;
    if (!(T > 0)) throw new CohortError(`logprobs: temperature must be > 0, got ${T}`);
    const [N, L] = batch.inputIds.shape as [number, number];
    if (L < 2) throw new CohortError("logprobs: sequences need at least 2 columns (a prompt token and a target)");
    // First column that any loss scores: lm_head work starts at the position predicting it.
    let start = 1;
    if (batch.completionMask) start = firstNonZero(batch.completionMask);
    const V = this.config.vocabSize;
    const D = this.config.hiddenSize;
    const chunkRows = opts.chunkSize !== undefined ? opts.chunkSize * N : Math.max(1, Math.floor((1 << 24) / V));
    const withEnt = opts.entropy ?? false;
    return tidy(() => {
      const hidden = this.hidden(batch.inputIds, batch.attentionMask); // [N, L, D]
      const n = L - start;
      const h = hidden.narrow(1, start - 1, n).reshape(N * n, D); // [N·n, D]: position t-1 predicts token t
      const targets = this.onDevice(batch.inputIds)
        .narrow(1, start, n)
        .to("i64")
        .reshape(N * n); // [N·n]
      const r = native
        .linearTokenLogprobs(h.h, this.outputWeight.h, targets.h, T, withEnt, chunkRows)
        .map((x) => new Tensor(x));
      const lead = zeros([N, start], { device: this.device }); // [N, start]
      const lp = cat([lead, (r[0] as Tensor).reshape(N, n)], 1); // [N, L]
      return withEnt ? { lp, entropy: cat([lead, (r[1] as Tensor).reshape(N, n)], 1) } : { lp };
    });
  }

  // ---- incremental decoding -----------------------------------------------------------------------

  /**
   * A cache for `batch` rows of up to `maxLength` tokens (prompt + completion). With bf16 precision it holds
   * bf16 keys and values: attention reads them in bf16 anyway, so decoding is unchanged and the cache halves.
   */
  newCache(batch: number, maxLength: number): KVCache {
    const dtype = this.precision === "bf16" ? "bf16" : (this.embedTokens.dtype as "f32");
    return new KVCache(this.config, batch, maxLength, dtype, this.device);
  }

  /**
   * Runs the (left-padded) prompts [B, P] into an empty cache; returns the last position's logits [B, V].
   * With an int8 `plan` the projections and lm_head run on its quantized weights, as its decoding steps do.
   */
  prefill(cache: KVCache, inputIds: Tensor, attentionMask: Tensor, plan: DecodePlan | null = null): Tensor {
    const [B, P] = inputIds.shape as [number, number];
    if (cache.length !== 0) throw new CohortError("prefill: the cache is not empty; use a new cache per batch");
    if (P > cache.maxLength)
      throw new CohortError(`prefill: ${P} prompt tokens exceed the cache length ${cache.maxLength}`);
    const quant = plan?.quant ?? null;
    return tidy(() => {
      this.#quant = quant;
      let h: Tensor;
      try {
        h = this.hidden(inputIds, attentionMask, cache); // [B, P, D]  (moved to the model's device there)
      } finally {
        this.#quant = null;
      }
      const last = h.narrow(1, P - 1, 1);
      const head = quant?.get("lm_head");
      const logits = head ? int8Linear(last, head) : linear(last, this.outputWeight);
      return logits.reshape(B, this.config.vocabSize); // [B, V]
    });
  }

  /**
   * The fused decoding plan for positions below `maxPositions`, or null when the fused step does not apply
   * (only f32 CPU weights are supported; other dtypes and devices decode op by op). `precision: "int8"`
   * quantizes the projections and lm_head (adapters folded in first; see `RolloutPrecision`) and throws
   * where the fused step does not apply, since int8 has no op-by-op path.
   */
  decodePlan(maxPositions: number, opts: { precision?: RolloutPrecision } = {}): DecodePlan | null {
    const precision = opts.precision ?? "fp32";
    if (precision !== "fp32" && precision !== "int8")
      throw new CohortError(`decodePlan: precision must be "fp32" or "int8", got ${JSON.stringify(precision)}`);
    if (this.embedTokens.dtype !== "f32" || this.device !== "cpu" || this.precision !== "fp32") {
      if (precision === "int8")
        throw new CohortError(
          `int8 rollouts run on the CPU from fp32 weights; this model is on ${this.device} with ${this.precision} precision. Use sampling precision fp32 there`,
        );
      return null;
    }
    const c = this.config;
    const owned: Tensor[] = [];
    const own = (t: Tensor): Tensor => {
      owned.push(keep(t));
      return t;
    };
    // the plan's own rotary tables: the model's grow (and are replaced) on demand, a cached plan outlives them
    const [cos, sin] = tidy(() => this.ropeTables(maxPositions).map((t) => own(t.narrow(0, 0, maxPositions).clone())));
    if (cos === undefined || sin === undefined) throw new CohortError("decodePlan: no rotary tables");
    const eff = (name: string, w: Tensor): Tensor => {
      const folded = this.adapter?.effectiveWeight(name, w) ?? null;
      return folded === null ? w : own(folded);
    };
    const int8 = precision === "int8";
    const quant = new Map<string, QuantizedWeight>();
    // int8: the fused weight quantized (per row, so the pieces of a concatenation are the pieces' own
    // quantization) and its f32 temporary freed by the scope; each piece named for the prefill's projections
    const qz = (w: Tensor, pieces: [string, number][]): [Tensor, Tensor] => {
      const { q, scale } = quantizeInt8(w);
      own(q);
      own(scale);
      let at = 0;
      for (const [name, rows] of pieces) {
        quant.set(name, { q: own(q.narrow(0, at, rows)), scale: own(scale.narrow(0, at, rows)) });
        at += rows;
      }
      return [q, scale];
    };
    const layers = noGrad(() =>
      tidy(() =>
        this.layers.map((L) => {
          const n = L.names;
          const qkvParts = [eff(n.q, L.q), eff(n.k, L.k), eff(n.v, L.v)];
          const bqkv = L.qBias && L.kBias && L.vBias ? own(cat([L.qBias, L.kBias, L.vBias], 0).detach()) : null;
          if (!int8) {
            const wqkv = own(cat(qkvParts, 0).detach()); // [(H+2Hkv)·hd, D]
            const wgu = own(cat([eff(n.gate, L.gate), eff(n.up, L.up)], 0).detach()); // [2F, D]
            return [L.inputNorm, wqkv, bqkv, eff(n.o, L.o), L.postNorm, wgu, eff(n.down, L.down)].map((t) =>
              t === null ? null : t.h,
            );
          }
          const rows = (t: Tensor) => t.shape[0] as number;
          const [qkv, sQkv] = qz(
            cat(qkvParts, 0).detach(),
            qkvParts.map((t, i) => [[n.q, n.k, n.v][i] as string, rows(t)]),
          );
          const [wo, sO] = qz(eff(n.o, L.o).detach(), [[n.o, rows(L.o)]]);
          const [gu, sGu] = qz(cat([eff(n.gate, L.gate), eff(n.up, L.up)], 0).detach(), [
            [n.gate, rows(L.gate)],
            [n.up, rows(L.up)],
          ]);
          const [down, sDown] = qz(eff(n.down, L.down).detach(), [[n.down, rows(L.down)]]);
          return [L.inputNorm, qkv, bqkv, wo, L.postNorm, gu, down, sQkv, sO, sGu, sDown].map((t) =>
            t === null ? null : t.h,
          );
        }),
      ),
    );
    const head = int8
      ? noGrad(() => tidy(() => qz(this.outputWeight.detach(), [["lm_head", this.config.vocabSize]])))
      : null;
    return {
      precision,
      layers,
      globals: [
        this.embedTokens,
        this.finalNorm,
        head?.[0] ?? this.outputWeight,
        cos,
        sin,
        ...(head ? [head[1]] : []),
      ].map((t) => t.h),
      dims: [c.numAttentionHeads, c.numKeyValueHeads, c.headDim, c.rmsNormEps],
      quant: int8 ? quant : null,
      dispose: () => {
        for (const t of owned) t.dispose();
      },
    };
  }

  /**
   * Feeds one token per row [B, 1] at the cache's next column; returns logits [B, V]. With a `plan`
   * (from `decodePlan`) the whole step is one native call; without, it runs op by op.
   */
  decodeStep(cache: KVCache, tokens: Tensor, plan: DecodePlan | null = null): Tensor {
    if (tokens.device !== this.device) return tidy(() => this.decodeStep(cache, tokens.to(this.device), plan));
    if (plan !== null) {
      const col = cache.length;
      if (col >= cache.maxLength) throw new CohortError(`decodeStep: the cache is full (${cache.maxLength} columns)`);
      const logits = new Tensor(
        native.decodeForward(
          plan.layers,
          plan.globals,
          plan.dims,
          cache.k.map((t) => t.h),
          cache.v.map((t) => t.h),
          cache.keyValid.h,
          cache.positions.h,
          tokens.h,
          col,
        ),
      ); // [B, V]
      cache.length = col + 1;
      return logits;
    }
    const c = this.config;
    const B = cache.batch;
    const H = c.numAttentionHeads;
    const hd = c.headDim;
    const col = cache.length;
    if (col >= cache.maxLength) throw new CohortError(`decodeStep: the cache is full (${cache.maxLength} columns)`);
    // f32 CPU: single-query attention straight over the cache (native), instead of narrowing and masking it
    const fused = this.embedTokens.dtype === "f32" && this.device === "cpu" && this.precision === "fp32";
    const out = tidy(() => {
      cache.keyValid.sliceAssign_(1, col, ones([B, 1], { dtype: "bool", device: this.device }));
      const [cos, sin] = this.ropeAt(cache.positions, col + 1); // [B, 1, 1, hd]
      const S = col + 1; // keys: cache columns 0..col
      const mask = fused ? null : cache.keyValid.narrow(1, 0, S).reshape(B, 1, 1, S); // [B, 1, 1, S]
      let x = embed(this.embedTokens, tokens); // [B, 1, D]
      for (const [i, L] of this.layers.entries()) {
        x = this.block(L, x, cos, sin, (q, k, v) => {
          const kc = cache.k[i] as Tensor; // [B, Hkv, Smax, hd]
          const vc = cache.v[i] as Tensor; // [B, Hkv, Smax, hd]
          kc.sliceAssign_(2, col, k);
          vc.sliceAssign_(2, col, v);
          if (fused) return decodeAttention(q.reshape(B, H, hd), kc, vc, S, cache.keyValid).reshape(B, H, 1, hd);
          return this.attend(q, kc.narrow(2, 0, S), vc.narrow(2, 0, S), mask); // [B, H, 1, hd]
        });
      }
      const logits = linear(this.norm(x, this.finalNorm), this.outputWeight).reshape(B, c.vocabSize); // [B, V]
      cache.setPositions(cache.positions.add(int64(1)));
      return logits;
    });
    cache.length = col + 1;
    return out;
  }
}

/** Fused single-query attention over a KV cache (native; f32 CPU). q [B,H,hd] → [B,H,hd]. */
function decodeAttention(q: Tensor, kCache: Tensor, vCache: Tensor, length: number, keyValid: Tensor): Tensor {
  return new Tensor(native.decodeAttention(q.h, kCache.h, vCache.h, length, keyValid.h));
}

const int64 = (v: number): Tensor => scalar(v, { dtype: "i64" });

/** Index of the first column of a [N, L] mask with any non-zero entry (1 when there is none or it is 0). */
function firstNonZero(mask: Tensor): number {
  const cols = tidy(() => mask.ne(0).to("i64").sum(0).data()) as BigInt64Array; // [L]
  for (let t = 1; t < cols.length; t++) if (cols[t] !== 0n) return t;
  return 1;
}
