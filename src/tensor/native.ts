/**
 * Loads the native addon. Threading is chosen here, before libtorch initialises OpenMP: on small CPU
 * boxes OpenMP threads that spin-wait fight OpenBLAS's own threads (DESIGN.md §6), so Cohort asks for
 * passive waiting unless the user set the variable; and libtorch's intra-op threads are set once, at load, to
 * `defaultNumThreads()` (OMP_NUM_THREADS when set, else every available core), so that a program using Cohort
 * as a library computes on all cores as the CLI does (libtorch alone may start with one). `setNumThreads`
 * overrides it; a run's `threads` key does too.
 * @module
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CohortError, NativeError } from "../errors.js";
import type { Device, DType } from "./tensor.js";

process.env.OMP_WAIT_POLICY ??= "PASSIVE";

function findAddon(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "build", "Release", "cohort_native.node");
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new CohortError(
    "The native addon is not built (build/Release/cohort_native.node is missing). Run `bash setup.sh` " +
      "(installs libtorch and builds it) or `npm run build:native`.",
  );
}

// ---- the addon's surface ---------------------------------------------------------------------------
// Handles are opaque: the addon checks their type tag on every call (native/addon.cc `unwrap`), so they are
// `unknown` here. Names and argument orders are those of the `COHORT_EXPORT` lines in native/*.cc.

/** A native tensor (owned by a `Tensor`). */
export type TensorHandle = unknown;
/** A seeded CPU generator (owned by a `Generator`); null selects the global one. */
export type GeneratorHandle = unknown;
/** A process group (dist.cc). */
export type GroupHandle = unknown;
/** A gradient reducer of a process group (dist.cc). */
export type ReducerHandle = unknown;
/** An op's operand: a tensor, or a number or boolean taken as a scalar. */
export type NativeOperand = TensorHandle | number | boolean;
/** Dims of a reduction: one, several, or null for all. */
type Dims = number | readonly number[] | null;

type Unary = (t: TensorHandle) => TensorHandle;
type Binary = (a: NativeOperand, b: NativeOperand) => TensorHandle;
type Reduction = (t: TensorHandle, dims: Dims, keepdim: boolean) => TensorHandle;

/** The functions of the native addon that Cohort calls. */
export interface NativeAddon {
  // runtime (addon.cc)
  /** Registers the error class thrown for libtorch errors (called once, below). */
  init(errorClass: typeof NativeError): void;
  liveCount(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  versionInfo(): { torch: string; parallel: string };
  manualSeed(seed: number): void;
  newGenerator(seed: number): GeneratorHandle;
  genGetState(g: GeneratorHandle | null): Buffer;
  genSetState(g: GeneratorHandle | null, state: Buffer): void;

  // creation and inspection (addon.cc)
  fromBuffer(data: ArrayBufferView, shape: readonly number[], dtype: DType, device?: Device): TensorHandle;
  toBuffer(t: TensorHandle): ArrayBuffer;
  item(t: TensorHandle): number | boolean;
  scalarTensor(value: number, dtype: DType, device?: Device): TensorHandle;
  full(shape: readonly number[], value: number, dtype: DType, device?: Device): TensorHandle;
  arange(start: number, end: number, step: number, dtype: DType, device?: Device): TensorHandle;
  randn(shape: readonly number[], dtype: DType, device?: Device, g?: GeneratorHandle): TensorHandle;
  rand(shape: readonly number[], dtype: DType, device?: Device, g?: GeneratorHandle): TensorHandle;
  randint(
    low: number,
    high: number,
    shape: readonly number[],
    dtype: DType,
    device?: Device,
    g?: GeneratorHandle,
  ): TensorHandle;
  shape(t: TensorHandle): number[];
  dtype(t: TensorHandle): DType;
  /** libtorch's device string: `cpu`, `cuda:0`, … */
  device(t: TensorHandle): Device;
  dispose(t: TensorHandle): void;
  isDisposed(t: TensorHandle): boolean;

  // autograd (addon.cc)
  setRequiresGrad(t: TensorHandle, on: boolean): void;
  requiresGrad(t: TensorHandle): boolean;
  backward(t: TensorHandle, gradient: TensorHandle | undefined, retainGraph: boolean): void;
  grad(t: TensorHandle): TensorHandle | null;
  /** torch::autograd::grad: outputs, inputs, gradOutputs (null = ones for a scalar), createGraph, retainGraph (null = createGraph), allowUnused. */
  autogradGrad(
    outputs: TensorHandle[],
    inputs: TensorHandle[],
    gradOutputs: (TensorHandle | null)[] | null,
    createGraph: boolean,
    retainGraph: boolean | null,
    allowUnused: boolean,
  ): (TensorHandle | null)[];
  setGrad(t: TensorHandle, g: TensorHandle | null): void;
  zeroGrad(ts: TensorHandle[]): void;
  /** Returns the previous mode. */
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  /** Sum of the tensors' version counters (bumped by every in-place write; never lowered). */
  tensorVersions(tensors: TensorHandle[]): number;

  // elementwise (ops.cc)
  neg: Unary;
  exp: Unary;
  log: Unary;
  log1p: Unary;
  expm1: Unary;
  sqrt: Unary;
  rsqrt: Unary;
  sigmoid: Unary;
  logsigmoid: Unary;
  silu: Unary;
  gelu: Unary;
  relu: Unary;
  softplus: Unary;
  tanh: Unary;
  abs: Unary;
  sign: Unary;
  square: Unary;
  reciprocal: Unary;
  sin: Unary;
  cos: Unary;
  floor: Unary;
  ceil: Unary;
  round: Unary;
  erf: Unary;
  logicalNot: Unary;
  isnan: Unary;
  isfinite: Unary;
  detach: Unary;
  clone: Unary;
  contiguous: Unary;
  add: Binary;
  sub: Binary;
  mul: Binary;
  div: Binary;
  pow: Binary;
  remainder: Binary;
  eq: Binary;
  ne: Binary;
  lt: Binary;
  le: Binary;
  gt: Binary;
  ge: Binary;
  maximum: Binary;
  minimum: Binary;
  logicalAnd: Binary;
  logicalOr: Binary;
  clamp(t: TensorHandle, min: NativeOperand | null, max: NativeOperand | null): TensorHandle;
  where(cond: TensorHandle, a: NativeOperand, b: NativeOperand): TensorHandle;
  maskedFill(t: TensorHandle, mask: TensorHandle, value: number): TensorHandle;
  cast(t: TensorHandle, dtype: DType): TensorHandle;
  toDev(t: TensorHandle, device: Device): TensorHandle;

  // linear algebra and reductions (ops.cc)
  matmul(a: TensorHandle, b: TensorHandle): TensorHandle;
  bmm(a: TensorHandle, b: TensorHandle): TensorHandle;
  /** x @ wᵀ (+ b), w [out, in]. */
  linear(x: TensorHandle, w: TensorHandle, b?: TensorHandle): TensorHandle;
  sum: Reduction;
  mean: Reduction;
  amax: Reduction;
  amin: Reduction;
  logsumexp: Reduction;
  prod(t: TensorHandle, dim: number | null, keepdim: boolean): TensorHandle;
  var(t: TensorHandle, dims: Dims, unbiased: boolean, keepdim: boolean): TensorHandle;
  stdev(t: TensorHandle, dims: Dims, unbiased: boolean, keepdim: boolean): TensorHandle;
  maxDim(t: TensorHandle, dim: number, keepdim: boolean): [TensorHandle, TensorHandle];
  minDim(t: TensorHandle, dim: number, keepdim: boolean): [TensorHandle, TensorHandle];
  argmax(t: TensorHandle, dim: number | null, keepdim: boolean): TensorHandle;
  all: Unary;
  any: Unary;
  norm: Unary;
  softmax(t: TensorHandle, dim: number): TensorHandle;
  logSoftmax(t: TensorHandle, dim: number): TensorHandle;
  cumsum(t: TensorHandle, dim: number): TensorHandle;

  // indexing (ops.cc)
  gather(t: TensorHandle, dim: number, index: TensorHandle): TensorHandle;
  indexSelect(t: TensorHandle, dim: number, index: TensorHandle): TensorHandle;
  scatterAdd(t: TensorHandle, dim: number, index: TensorHandle, src: TensorHandle): TensorHandle;
  embedding(weight: TensorHandle, indices: TensorHandle): TensorHandle;
  maskedSelect(t: TensorHandle, mask: TensorHandle): TensorHandle;
  nonzero: Unary;
  topk(t: TensorHandle, k: number, dim: number, largest: boolean, sorted: boolean): [TensorHandle, TensorHandle];
  sort(t: TensorHandle, dim: number, descending: boolean): [TensorHandle, TensorHandle];
  argsort(t: TensorHandle, dim: number, descending: boolean): TensorHandle;
  multinomial(t: TensorHandle, numSamples: number, replacement: boolean, g?: GeneratorHandle): TensorHandle;

  // shape (ops.cc)
  reshape(t: TensorHandle, shape: number[]): TensorHandle;
  view(t: TensorHandle, shape: number[]): TensorHandle;
  permute(t: TensorHandle, dims: number[]): TensorHandle;
  transpose(t: TensorHandle, dim0: number, dim1: number): TensorHandle;
  unsqueeze(t: TensorHandle, dim: number): TensorHandle;
  squeeze(t: TensorHandle, dim: number | null): TensorHandle;
  expand(t: TensorHandle, shape: number[]): TensorHandle;
  flatten(t: TensorHandle, startDim: number, endDim: number): TensorHandle;
  repeat(t: TensorHandle, repeats: number[]): TensorHandle;
  repeatInterleave(t: TensorHandle, repeats: number, dim: number): TensorHandle;
  narrow(t: TensorHandle, dim: number, start: number, length: number): TensorHandle;
  slice(t: TensorHandle, dim: number, start: number | null, end: number | null, step: number): TensorHandle;
  select(t: TensorHandle, dim: number, index: number): TensorHandle;
  cat(ts: TensorHandle[], dim: number): TensorHandle;
  stack(ts: TensorHandle[], dim: number): TensorHandle;
  split(t: TensorHandle, sizeOrSizes: number | number[], dim: number): TensorHandle[];
  chunk(t: TensorHandle, chunks: number, dim: number): TensorHandle[];
  tril(t: TensorHandle, diagonal: number): TensorHandle;
  triu(t: TensorHandle, diagonal: number): TensorHandle;

  // in place, without autograd history (ops.cc)
  copy_(dst: TensorHandle, src: TensorHandle): void;
  /** dst.narrow(dim, start, src.size(dim)).copy_(src) */
  sliceAssign_(dst: TensorHandle, dim: number, start: number, src: TensorHandle): void;
  addScaled_(t: TensorHandle, other: TensorHandle, alpha: number): void;
  mulScalar_(t: TensorHandle, value: number): void;

  // fused (ops.cc)
  /** [logprobs] or [logprobs, entropy]. */
  tokenLogprobs(logits: TensorHandle, targets: TensorHandle, temperature: number, withEntropy: boolean): TensorHandle[];
  rmsNorm(x: TensorHandle, weight: TensorHandle, eps: number): TensorHandle;
  attention(
    q: TensorHandle,
    k: TensorHandle,
    v: TensorHandle,
    mask: TensorHandle | null,
    causal: boolean,
  ): TensorHandle;

  // model (model_ops.cc)
  /** Single-query attention over a KV cache: q [B,H,hd], caches [B,Hkv,Smax,hd], keyValid [B,≥S] → [B,H,hd]. f32 CPU. */
  decodeAttention(
    q: TensorHandle,
    kCache: TensorHandle,
    vCache: TensorHandle,
    length: number,
    keyValid: TensorHandle,
  ): TensorHandle;
  /**
   * One token per row drawn from logits [B, V] with each row's generator, after temperature, top-k, top-p and
   * min-p: [tokens [B] i64, log-probs [B] f32 of the full distribution at the temperature]. `tensorOps` forces
   * the whole-tensor path that device logits take (for tests).
   */
  sampleTokens(
    logits: TensorHandle,
    generators: GeneratorHandle[],
    temperature: number,
    topK: number,
    topP: number,
    minP: number,
    tensorOps?: boolean,
  ): [TensorHandle, TensorHandle];
  /** The fused decoding step over a `DecodePlan`'s handles (src/model/llama.ts); logits [B, V]. */
  decodeForward(
    layers: (TensorHandle | null)[][],
    globals: TensorHandle[],
    dims: number[],
    kCaches: TensorHandle[],
    vCaches: TensorHandle[],
    keyValid: TensorHandle,
    positions: TensorHandle,
    tokens: TensorHandle,
    col: number,
  ): TensorHandle;
  // batched linear algebra (linalg.cc)
  /** torch::linalg_svd of A [..., m, n]: [U, S, Vh] (reduced unless `fullMatrices`). */
  svd(a: TensorHandle, fullMatrices: boolean): TensorHandle[];
  /** Singular values [..., min(m, n)] of A [..., m, n], descending. */
  svdvals(a: TensorHandle): TensorHandle;
  // int8 weight-only quantization (quant.cc)
  /** Per-output-channel symmetric int8 of a weight [N, K]: [q [N, K] int8, scale [N] f32], w ≈ q · scale. */
  quantizeInt8(weight: TensorHandle): [TensorHandle, TensorHandle];
  /**
   * x [..., K] f32 · (q · scale)ᵀ (+ bias) → [..., N], fp32 activations and accumulation. `mode`: the native
   * panel kernel, libtorch (widen to f32, then sgemm) or `auto` (kernel up to 32 rows). CPU, no autograd.
   */
  int8Linear(
    x: TensorHandle,
    q: TensorHandle,
    scale: TensorHandle,
    bias: TensorHandle | null,
    mode?: "auto" | "kernel" | "torch",
  ): TensorHandle;
  /** lm_head, log-softmax at the temperature and (optionally) entropy in row chunks: [logprobs] or [logprobs, entropy]. */
  linearTokenLogprobs(
    hidden: TensorHandle,
    weight: TensorHandle,
    targets: TensorHandle,
    temperature: number,
    withEntropy: boolean,
    chunkRows: number,
  ): TensorHandle[];

  /**
   * Activation checkpointing (checkpoint.cc): fn(inputs) run without autograd, recomputed with it in the
   * backward; gradients flow to the inputs and `params`. CPU tensors only.
   */
  checkpoint(
    fn: (inputs: TensorHandle[]) => TensorHandle,
    inputs: TensorHandle[],
    params: TensorHandle[],
  ): TensorHandle;

  // optimizers (optim.cc)
  adamwStep(
    params: TensorHandle[],
    m: TensorHandle[],
    v: TensorHandle[],
    step: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
  ): void;
  sgdStep(
    params: TensorHandle[],
    momentumBuffers: TensorHandle[] | null,
    lr: number,
    momentum: number,
    weightDecay: number,
    nesterov: boolean,
    firstStep: boolean,
  ): void;
  gradNorm(params: TensorHandle[]): number;
  clipGradNorm(params: TensorHandle[], maxNorm: number): number;

  // process groups (dist.cc)
  distBackends(): string[];
  distInit(
    masterAddr: string,
    masterPort: number,
    worldSize: number,
    rank: number,
    timeoutMs: number,
    backend: string,
  ): GroupHandle;
  distStoreSet(g: GroupHandle, key: string, value: string): void;
  distStoreGet(g: GroupHandle, key: string): string;
  distAllreduce(g: GroupHandle, ts: TensorHandle[], bucketBytes: number, timeoutMs: number): void;
  distBroadcast(g: GroupHandle, ts: TensorHandle[], root: number, bucketBytes: number, timeoutMs: number): void;
  distBarrier(g: GroupHandle, timeoutMs: number): void;
  /** One tensor per rank. */
  distAllgather(g: GroupHandle, t: TensorHandle, timeoutMs: number): TensorHandle[];
  distDestroy(g: GroupHandle): void;
  distReducer(g: GroupHandle, params: TensorHandle[], bucketBytes: number, timeoutMs: number): ReducerHandle;
  distReducerPrepare(r: ReducerHandle): void;
  /** Whether the loss was finite on every rank. */
  distReducerFinish(r: ReducerHandle, finiteLoss: boolean): boolean;
  distReducerStats(r: ReducerHandle): {
    buckets: number;
    launchedInBackward: number;
    launchedAfterBackward: number;
    steps: number;
  };
  distReducerDestroy(r: ReducerHandle): void;
}

const require = createRequire(import.meta.url);
export const native = require(findAddon()) as NativeAddon;

/** libtorch threads unless a program chooses: OMP_NUM_THREADS when it is a positive integer, else every available core. */
export function defaultNumThreads(): number {
  const env = Number(process.env.OMP_NUM_THREADS);
  return Number.isInteger(env) && env > 0 ? env : availableParallelism();
}

native.setNumThreads(defaultNumThreads());
native.init(NativeError);
