/**
 * The typed facade over the native tensor. A `Tensor` owns one libtorch tensor; ops return new tensors
 * (registered with the innermost `tidy` scope). Shapes use libtorch semantics: negative dims count from
 * the end, binary ops broadcast.
 * @module
 */
import { CohortError } from "../errors.js";
import { native, type TensorHandle } from "./native.js";

export { defaultNumThreads } from "./native.js";

import { track } from "./scope.js";

export type DType = "f32" | "f64" | "f16" | "bf16" | "i64" | "i32" | "i8" | "u8" | "bool";
export type Device = "cpu" | "cuda" | `cuda:${number}`;
export type Operand = Tensor | number | boolean;
export type Shape = readonly number[];

type NestedNumbers = number | boolean | NestedNumbers[];
type Handle = TensorHandle;

const h = (x: Operand): Handle | number | boolean => (x instanceof Tensor ? x.h : x);

export class Tensor {
  /** @internal the native handle */
  readonly h: Handle;
  /** Set by `keep()`: no `tidy` scope disposes this tensor. */
  kept = false;
  #shape: number[] | undefined;

  /** @internal use the creation functions (`tensor`, `zeros`, …). */
  constructor(handle: Handle) {
    this.h = handle;
    track(this);
  }

  // ---- inspection --------------------------------------------------------------------------------
  get shape(): number[] {
    this.#shape ??= native.shape(this.h) as number[];
    return this.#shape;
  }
  get ndim(): number {
    return this.shape.length;
  }
  get size(): number {
    let n = 1;
    for (const s of this.shape) n *= s;
    return n;
  }
  get dtype(): DType {
    return native.dtype(this.h);
  }
  get device(): Device {
    return native.device(this.h);
  }
  get disposed(): boolean {
    return native.isDisposed(this.h);
  }
  dispose(): void {
    native.dispose(this.h);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    const v = native.item(this.h);
    return typeof v === "boolean" ? Number(v) : v;
  }
  /** A copy of the data as the typed array of the dtype (f16/bf16: raw bits in a Uint16Array). */
  data(): Float32Array | Float64Array | Int32Array | BigInt64Array | Int8Array | Uint8Array | Uint16Array {
    const buf: ArrayBuffer = native.toBuffer(this.h);
    switch (this.dtype) {
      case "f32":
        return new Float32Array(buf);
      case "f64":
        return new Float64Array(buf);
      case "i32":
        return new Int32Array(buf);
      case "i64":
        return new BigInt64Array(buf);
      case "i8":
        return new Int8Array(buf);
      case "f16":
      case "bf16":
        return new Uint16Array(buf);
      default:
        return new Uint8Array(buf);
    }
  }
  /** Raw bytes (little-endian, row-major), e.g. for safetensors. */
  bytes(): Uint8Array {
    return new Uint8Array(native.toBuffer(this.h) as ArrayBuffer);
  }
  /** The data as a flat array of numbers (f16/bf16 are converted through f32). */
  toArray(): number[] {
    if (this.dtype === "f16" || this.dtype === "bf16") {
      const t = this.to("f32");
      const out = Array.from(t.data() as Float32Array);
      t.dispose();
      return out;
    }
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, Number) : Array.from(d as ArrayLike<number>);
  }
  /** The data as nested arrays of the tensor's shape. */
  tolist(): NestedNumbers {
    const flat = this.toArray();
    const shape = this.shape;
    if (shape.length === 0) return flat[0] as number;
    const build = (dim: number, offset: number): NestedNumbers[] => {
      const n = shape[dim] as number;
      const stride = shape.slice(dim + 1).reduce((a, b) => a * b, 1);
      const out: NestedNumbers[] = [];
      for (let i = 0; i < n; i++) {
        out.push(dim === shape.length - 1 ? (flat[offset + i] as number) : build(dim + 1, offset + i * stride));
      }
      return out;
    };
    return build(0, 0);
  }
  toString(): string {
    if (this.disposed) return "Tensor(<disposed>)";
    return `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- autograd ----------------------------------------------------------------------------------
  get requiresGrad(): boolean {
    return native.requiresGrad(this.h);
  }
  /** Marks a leaf tensor as a parameter whose gradient is accumulated. Returns this. */
  requireGrad(on = true): this {
    native.setRequiresGrad(this.h, on);
    return this;
  }
  /** Accumulates gradients into the leaves. A non-scalar needs `gradient` of the same shape. */
  backward(gradient?: Tensor, retainGraph = false): void {
    native.backward(this.h, gradient?.h, retainGraph);
  }
  /** The accumulated gradient (a new handle sharing storage), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.h);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.h, g === null ? null : g.h);
  }
  detach(): Tensor {
    return new Tensor(native.detach(this.h));
  }
  clone(): Tensor {
    return new Tensor(native.clone(this.h));
  }

  // ---- elementwise -------------------------------------------------------------------------------
  add(o: Operand): Tensor {
    return new Tensor(native.add(this.h, h(o)));
  }
  sub(o: Operand): Tensor {
    return new Tensor(native.sub(this.h, h(o)));
  }
  /** `o − this`. */
  rsub(o: Operand): Tensor {
    return new Tensor(native.sub(h(o), this.h));
  }
  mul(o: Operand): Tensor {
    return new Tensor(native.mul(this.h, h(o)));
  }
  div(o: Operand): Tensor {
    return new Tensor(native.div(this.h, h(o)));
  }
  /** `o / this`. */
  rdiv(o: Operand): Tensor {
    return new Tensor(native.div(h(o), this.h));
  }
  pow(o: Operand): Tensor {
    return new Tensor(native.pow(this.h, h(o)));
  }
  remainder(o: Operand): Tensor {
    return new Tensor(native.remainder(this.h, h(o)));
  }
  maximum(o: Operand): Tensor {
    return new Tensor(native.maximum(this.h, h(o)));
  }
  minimum(o: Operand): Tensor {
    return new Tensor(native.minimum(this.h, h(o)));
  }
  eq(o: Operand): Tensor {
    return new Tensor(native.eq(this.h, h(o)));
  }
  ne(o: Operand): Tensor {
    return new Tensor(native.ne(this.h, h(o)));
  }
  lt(o: Operand): Tensor {
    return new Tensor(native.lt(this.h, h(o)));
  }
  le(o: Operand): Tensor {
    return new Tensor(native.le(this.h, h(o)));
  }
  gt(o: Operand): Tensor {
    return new Tensor(native.gt(this.h, h(o)));
  }
  ge(o: Operand): Tensor {
    return new Tensor(native.ge(this.h, h(o)));
  }
  logicalAnd(o: Operand): Tensor {
    return new Tensor(native.logicalAnd(this.h, h(o)));
  }
  logicalOr(o: Operand): Tensor {
    return new Tensor(native.logicalOr(this.h, h(o)));
  }
  logicalNot(): Tensor {
    return new Tensor(native.logicalNot(this.h));
  }
  neg(): Tensor {
    return new Tensor(native.neg(this.h));
  }
  exp(): Tensor {
    return new Tensor(native.exp(this.h));
  }
  expm1(): Tensor {
    return new Tensor(native.expm1(this.h));
  }
  log(): Tensor {
    return new Tensor(native.log(this.h));
  }
  log1p(): Tensor {
    return new Tensor(native.log1p(this.h));
  }
  sqrt(): Tensor {
    return new Tensor(native.sqrt(this.h));
  }
  rsqrt(): Tensor {
    return new Tensor(native.rsqrt(this.h));
  }
  sigmoid(): Tensor {
    return new Tensor(native.sigmoid(this.h));
  }
  logSigmoid(): Tensor {
    return new Tensor(native.logsigmoid(this.h));
  }
  silu(): Tensor {
    return new Tensor(native.silu(this.h));
  }
  gelu(): Tensor {
    return new Tensor(native.gelu(this.h));
  }
  relu(): Tensor {
    return new Tensor(native.relu(this.h));
  }
  softplus(): Tensor {
    return new Tensor(native.softplus(this.h));
  }
  tanh(): Tensor {
    return new Tensor(native.tanh(this.h));
  }
  abs(): Tensor {
    return new Tensor(native.abs(this.h));
  }
  sign(): Tensor {
    return new Tensor(native.sign(this.h));
  }
  square(): Tensor {
    return new Tensor(native.square(this.h));
  }
  reciprocal(): Tensor {
    return new Tensor(native.reciprocal(this.h));
  }
  sin(): Tensor {
    return new Tensor(native.sin(this.h));
  }
  cos(): Tensor {
    return new Tensor(native.cos(this.h));
  }
  floor(): Tensor {
    return new Tensor(native.floor(this.h));
  }
  ceil(): Tensor {
    return new Tensor(native.ceil(this.h));
  }
  round(): Tensor {
    return new Tensor(native.round(this.h));
  }
  erf(): Tensor {
    return new Tensor(native.erf(this.h));
  }
  isnan(): Tensor {
    return new Tensor(native.isnan(this.h));
  }
  isfinite(): Tensor {
    return new Tensor(native.isfinite(this.h));
  }
  /** Clamp to [min, max]; either bound may be null, a number or a tensor. */
  clamp(min: Tensor | number | null, max: Tensor | number | null = null): Tensor {
    return new Tensor(native.clamp(this.h, min === null ? null : h(min), max === null ? null : h(max)));
  }
  /** Fills positions where `mask` (bool) is true with `value`. */
  maskedFill(mask: Tensor, value: number): Tensor {
    return new Tensor(native.maskedFill(this.h, mask.h, value));
  }
  to(target: DType | Device): Tensor {
    return isDType(target) ? new Tensor(native.cast(this.h, target)) : new Tensor(native.toDev(this.h, target));
  }

  // ---- linear algebra ----------------------------------------------------------------------------
  matmul(o: Tensor): Tensor {
    return new Tensor(native.matmul(this.h, o.h));
  }
  bmm(o: Tensor): Tensor {
    return new Tensor(native.bmm(this.h, o.h));
  }

  // ---- reductions (dims: a dim, a list, or null for all) ------------------------------------------
  sum(dims: number | number[] | null = null, keepdim = false): Tensor {
    return new Tensor(native.sum(this.h, dims, keepdim));
  }
  mean(dims: number | number[] | null = null, keepdim = false): Tensor {
    return new Tensor(native.mean(this.h, dims, keepdim));
  }
  /** Maximum over dims (values only); use `maxDim` for indices. */
  amax(dims: number | number[] | null = null, keepdim = false): Tensor {
    return new Tensor(native.amax(this.h, dims, keepdim));
  }
  amin(dims: number | number[] | null = null, keepdim = false): Tensor {
    return new Tensor(native.amin(this.h, dims, keepdim));
  }
  maxDim(dim: number, keepdim = false): [values: Tensor, indices: Tensor] {
    const [v, i] = native.maxDim(this.h, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  minDim(dim: number, keepdim = false): [values: Tensor, indices: Tensor] {
    const [v, i] = native.minDim(this.h, dim, keepdim);
    return [new Tensor(v), new Tensor(i)];
  }
  argmax(dim: number | null = null, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.h, dim, keepdim));
  }
  prod(dim: number | null = null, keepdim = false): Tensor {
    return new Tensor(native.prod(this.h, dim, keepdim));
  }
  logsumexp(dims: number | number[] | null = null, keepdim = false): Tensor {
    return new Tensor(native.logsumexp(this.h, dims, keepdim));
  }
  /** Variance; `unbiased` divides by N−1 (Bessel), else by N. */
  var(dims: number | number[] | null = null, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.var(this.h, dims, unbiased, keepdim));
  }
  std(dims: number | number[] | null = null, unbiased = true, keepdim = false): Tensor {
    return new Tensor(native.stdev(this.h, dims, unbiased, keepdim));
  }
  all(): Tensor {
    return new Tensor(native.all(this.h));
  }
  any(): Tensor {
    return new Tensor(native.any(this.h));
  }
  /** L2 norm of all elements. */
  norm(): Tensor {
    return new Tensor(native.norm(this.h));
  }
  softmax(dim: number): Tensor {
    return new Tensor(native.softmax(this.h, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.logSoftmax(this.h, dim));
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.h, dim));
  }

  // ---- indexing ----------------------------------------------------------------------------------
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.h, dim, index.h));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.h, dim, index.h));
  }
  /** Out-of-place scatter-add: a copy of this with `src` added at `index` along `dim`. */
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return new Tensor(native.scatterAdd(this.h, dim, index.h, src.h));
  }
  maskedSelect(mask: Tensor): Tensor {
    return new Tensor(native.maskedSelect(this.h, mask.h));
  }
  nonzero(): Tensor {
    return new Tensor(native.nonzero(this.h));
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [values: Tensor, indices: Tensor] {
    const [v, i] = native.topk(this.h, k, dim, largest, sorted);
    return [new Tensor(v), new Tensor(i)];
  }
  sort(dim = -1, descending = false): [values: Tensor, indices: Tensor] {
    const [v, i] = native.sort(this.h, dim, descending);
    return [new Tensor(v), new Tensor(i)];
  }
  argsort(dim = -1, descending = false): Tensor {
    return new Tensor(native.argsort(this.h, dim, descending));
  }
  /** Samples indices from the rows of a non-negative weight tensor. */
  multinomial(numSamples: number, replacement = false, generator?: Generator): Tensor {
    return new Tensor(native.multinomial(this.h, numSamples, replacement, generator?.h));
  }

  // ---- shape -------------------------------------------------------------------------------------
  reshape(...shape: number[]): Tensor {
    return new Tensor(native.reshape(this.h, shape));
  }
  view(...shape: number[]): Tensor {
    return new Tensor(native.view(this.h, shape));
  }
  permute(...dims: number[]): Tensor {
    return new Tensor(native.permute(this.h, dims));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.transpose(this.h, dim0, dim1));
  }
  /** Transpose of the last two dims. */
  get T(): Tensor {
    return this.transpose(-2, -1);
  }
  contiguous(): Tensor {
    return new Tensor(native.contiguous(this.h));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.h, dim));
  }
  squeeze(dim: number | null = null): Tensor {
    return new Tensor(native.squeeze(this.h, dim));
  }
  expand(...shape: number[]): Tensor {
    return new Tensor(native.expand(this.h, shape));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.h, startDim, endDim));
  }
  repeat(...repeats: number[]): Tensor {
    return new Tensor(native.repeat(this.h, repeats));
  }
  repeatInterleave(repeats: number, dim: number): Tensor {
    return new Tensor(native.repeatInterleave(this.h, repeats, dim));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.h, dim, start, length));
  }
  /** Python-style slice along `dim`: start/end may be negative or null. */
  slice(dim: number, start: number | null = null, end: number | null = null, step = 1): Tensor {
    return new Tensor(native.slice(this.h, dim, start, end, step));
  }
  /** Index one position of `dim` (the dim is removed). */
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.h, dim, index));
  }
  split(sizeOrSizes: number | number[], dim = 0): Tensor[] {
    return (native.split(this.h, sizeOrSizes, dim) as Handle[]).map((x) => new Tensor(x));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return (native.chunk(this.h, chunks, dim) as Handle[]).map((x) => new Tensor(x));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.tril(this.h, diagonal));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.triu(this.h, diagonal));
  }

  // ---- in place (no autograd history; for optimizers, caches and weight surgery) -----------------
  /** Copies `src` into this tensor's storage (broadcasting). */
  copy_(src: Tensor): this {
    native.copy_(this.h, src.h);
    return this;
  }
  /** Writes `src` into `this.narrow(dim, start, src.shape[dim])`. */
  sliceAssign_(dim: number, start: number, src: Tensor): this {
    native.sliceAssign_(this.h, dim, start, src.h);
    return this;
  }
  /** this += alpha · other */
  addScaled_(other: Tensor, alpha = 1): this {
    native.addScaled_(this.h, other.h, alpha);
    return this;
  }
  mulScalar_(value: number): this {
    native.mulScalar_(this.h, value);
    return this;
  }
}

const DTYPES: ReadonlySet<string> = new Set<DType>(["f32", "f64", "f16", "bf16", "i64", "i32", "i8", "u8", "bool"]);
const isDType = (s: string): s is DType => DTYPES.has(s);

// ---- creation ------------------------------------------------------------------------------------

export interface CreateOptions {
  dtype?: DType;
  device?: Device;
}

function flattenNested(data: NestedNumbers, shape: number[], out: number[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new CohortError(
        `tensor(): ragged nested array (dim ${depth} has lengths ${shape[depth]} and ${data.length})`,
      );
    }
    for (const d of data) flattenNested(d, shape, out, depth + 1);
  } else {
    if (shape.length !== depth)
      throw new CohortError("tensor(): ragged nested array (a number where a list was expected)");
    out.push(Number(data));
  }
}

function typedFor(values: ArrayLike<number>, dtype: DType): ArrayBufferView {
  switch (dtype) {
    case "f32":
      return Float32Array.from(values);
    case "f64":
      return Float64Array.from(values);
    case "i32":
      return Int32Array.from(values);
    case "i64":
      return BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v))));
    case "i8":
      return Int8Array.from(values);
    case "u8":
    case "bool":
      return Uint8Array.from(values, (v) => (dtype === "bool" ? (v ? 1 : 0) : v));
    default:
      throw new CohortError(`typedFor: ${dtype} is converted through f32 by the caller`);
  }
}

/**
 * A tensor from numbers: a nested array (shape inferred), or a flat array / typed array with `shape`.
 * Default dtype: f32 for numbers, bool for booleans, i64 for BigInt64Array, matching typed arrays otherwise.
 */
export function tensor(
  data: NestedNumbers | ArrayLike<number> | BigInt64Array,
  opts: CreateOptions & { shape?: Shape } = {},
): Tensor {
  let dtype = opts.dtype;
  if (ArrayBuffer.isView(data)) {
    const view: ArrayBufferView = data;
    const inferred: DType | undefined =
      data instanceof Float32Array
        ? "f32"
        : data instanceof Float64Array
          ? "f64"
          : data instanceof Int32Array
            ? "i32"
            : data instanceof BigInt64Array
              ? "i64"
              : view instanceof Int8Array
                ? "i8"
                : view instanceof Uint8Array
                  ? "u8"
                  : undefined;
    const shape = opts.shape ?? [(data as ArrayLike<unknown>).length];
    if (inferred !== undefined && (dtype === undefined || dtype === inferred)) {
      return new Tensor(native.fromBuffer(data, shape, inferred, opts.device));
    }
    const values = data instanceof BigInt64Array ? Array.from(data, Number) : Array.from(data as ArrayLike<number>);
    return tensor(values, { ...opts, shape, dtype: dtype ?? "f32" });
  }
  const shape: number[] = [];
  const flat: number[] = [];
  flattenNested(data as NestedNumbers, shape, flat, 0);
  const finalShape = opts.shape ? [...opts.shape] : shape;
  if (dtype === undefined) dtype = isBoolData(data as NestedNumbers) ? "bool" : "f32";
  if (dtype === "f16" || dtype === "bf16") {
    const f = new Tensor(native.fromBuffer(Float32Array.from(flat), finalShape, "f32", opts.device));
    const out = f.to(dtype);
    f.dispose();
    return out;
  }
  return new Tensor(native.fromBuffer(typedFor(flat, dtype), finalShape, dtype, opts.device));
}

function isBoolData(d: NestedNumbers): boolean {
  let x: NestedNumbers = d;
  while (Array.isArray(x)) {
    if (x.length === 0) return false;
    x = x[0] as NestedNumbers;
  }
  return typeof x === "boolean";
}

/** A tensor over raw little-endian bytes (copied), e.g. from a safetensors file. */
export function fromBytes(bytes: Uint8Array, shape: Shape, dtype: DType, device?: Device): Tensor {
  return new Tensor(native.fromBuffer(bytes, shape, dtype, device));
}

export function scalar(value: number, opts: CreateOptions = {}): Tensor {
  return new Tensor(native.scalarTensor(value, opts.dtype ?? "f32", opts.device));
}
export function full(shape: Shape, value: number, opts: CreateOptions = {}): Tensor {
  return new Tensor(native.full(shape, value, opts.dtype ?? "f32", opts.device));
}
export function zeros(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 0, opts);
}
export function ones(shape: Shape, opts: CreateOptions = {}): Tensor {
  return full(shape, 1, opts);
}
export function zerosLike(t: Tensor): Tensor {
  return full(t.shape, 0, { dtype: t.dtype, device: t.device });
}
export function onesLike(t: Tensor): Tensor {
  return full(t.shape, 1, { dtype: t.dtype, device: t.device });
}
/** [start, end) with `step`; default dtype i64 when all arguments are integers, else f32. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  if (end === undefined) {
    end = start;
    start = 0;
  }
  const ints = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  return new Tensor(native.arange(start, end, step, opts.dtype ?? (ints ? "i64" : "f32"), opts.device));
}

/** A seeded random stream, independent of the global one. Its state saves and loads bit-exactly. */
export class Generator {
  /** @internal */
  readonly h: Handle;
  constructor(seed: number) {
    this.h = native.newGenerator(seed);
  }
  getState(): Uint8Array {
    return native.genGetState(this.h);
  }
  setState(state: Uint8Array): void {
    native.genSetState(this.h, Buffer.from(state));
  }
}

/** Seeds the global generator (all random ops without an explicit generator). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
export function getRngState(): Uint8Array {
  return native.genGetState(null);
}
export function setRngState(state: Uint8Array): void {
  native.genSetState(null, Buffer.from(state));
}

export interface RandomOptions extends CreateOptions {
  generator?: Generator;
}
export function randn(shape: Shape, opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randn(shape, opts.dtype ?? "f32", opts.device, opts.generator?.h));
}
export function rand(shape: Shape, opts: RandomOptions = {}): Tensor {
  return new Tensor(native.rand(shape, opts.dtype ?? "f32", opts.device, opts.generator?.h));
}
/** Integers in [low, high). */
export function randint(low: number, high: number, shape: Shape, opts: RandomOptions = {}): Tensor {
  return new Tensor(native.randint(low, high, shape, opts.dtype ?? "i64", opts.device, opts.generator?.h));
}

// ---- functional forms ----------------------------------------------------------------------------

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(
    native.cat(
      tensors.map((t) => t.h),
      dim,
    ),
  );
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(
    native.stack(
      tensors.map((t) => t.h),
      dim,
    ),
  );
}
/** Elementwise `cond ? a : b`. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return new Tensor(native.where(cond.h, h(a), h(b)));
}
export function maximum(a: Operand, b: Operand): Tensor {
  return new Tensor(native.maximum(h(a), h(b)));
}
export function minimum(a: Operand, b: Operand): Tensor {
  return new Tensor(native.minimum(h(a), h(b)));
}
/** x @ wᵀ + b, with w of shape [out, in]. */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  return new Tensor(native.linear(x.h, w.h, b?.h));
}
export function embedding(weight: Tensor, indices: Tensor): Tensor {
  return new Tensor(native.embedding(weight.h, indices.h));
}
/** RMSNorm over the last dim, computed in fp32: x · rsqrt(mean(x²) + eps) · weight. */
export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  return new Tensor(native.rmsNorm(x.h, weight.h, eps));
}
/**
 * Scaled dot-product attention. q [B,H,T,D], k/v [B,H,S,D]; `mask` bool [..,T,S] (true = attend);
 * `causal` aligns the last query with the last key.
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | null = null, causal = false): Tensor {
  return new Tensor(native.attention(q.h, k.h, v.h, mask?.h ?? null, causal));
}
/**
 * Log-probs of `targets` under softmax(logits / temperature) over the last dim, and optionally the
 * entropy of that distribution, without materialising a full log-softmax.
 */
export function tokenLogprobs(
  logits: Tensor,
  targets: Tensor,
  temperature = 1,
  withEntropy = false,
): { logprobs: Tensor; entropy: Tensor | null } {
  const r = native.tokenLogprobs(logits.h, targets.h, temperature, withEntropy) as Handle[];
  return { logprobs: new Tensor(r[0]), entropy: r.length > 1 ? new Tensor(r[1]) : null };
}

// ---- grad mode -----------------------------------------------------------------------------------

/** Runs `fn` with autograd off, restoring the previous mode afterwards (also on throw). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}
export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
/** Zeroes (drops) the gradients of the given tensors. */
export function zeroGrad(params: Tensor[]): void {
  native.zeroGrad(params.map((p) => p.h));
}

// ---- runtime -------------------------------------------------------------------------------------

/** Number of native tensors alive (created and not yet disposed or collected). */
export function liveTensors(): number {
  return native.liveCount();
}
/** libtorch's intra-op threads (default at load: `defaultNumThreads()`, OMP_NUM_THREADS or every core). */
export function setNumThreads(n: number): void {
  native.setNumThreads(n);
}
export function getNumThreads(): number {
  return native.getNumThreads();
}
export function cudaAvailable(): boolean {
  return native.cudaAvailable();
}
/** The device names a config key or a flag accepts. */
export const DEVICE_NAME = /^(cpu|cuda(:\d+)?)$/;
/** Whether `s` names a device (`cpu`, `cuda`, `cuda:N`). */
export function isDevice(s: string): s is Device {
  return DEVICE_NAME.test(s);
}
/** Why this build cannot place tensors on `device`, or null when it can. */
export function deviceUnavailable(device: string): string | null {
  if (device === "cpu" || cudaAvailable()) return null;
  return "this build of the native addon has no usable CUDA (no CUDA libtorch, or no GPU visible); build it against a CUDA torch (docs/GPU.md)";
}
export function torchVersion(): string {
  return native.versionInfo().torch;
}
