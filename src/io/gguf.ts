/**
 * GGUF (version 3), the file format of llama.cpp and Ollama: a writer for Cohort's Llama/Qwen2 models and a
 * reader (for checking what was written).
 *
 * ```
 *   "GGUF" u32 version=3 · u64 tensor count · u64 metadata count
 *   metadata: (string key, u32 type, value)*          general.*, <arch>.*, tokenizer.ggml.*
 *   tensor infos: (string name, u32 n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset)*
 *   padding to general.alignment (32) · tensor data, each tensor at its offset, aligned
 * ```
 *
 * Names and layout follow llama.cpp's converter (convert_hf_to_gguf.py): `token_embd`, `blk.N.attn_q`, …,
 * `output_norm`, `output` (left out when tied: llama.cpp then reads `token_embd`). The `llama` architecture's
 * RoPE pairs dimensions (i, i+1) where Hugging Face pairs (i, i+hd/2), so q and k rows are permuted as the
 * converter does; `qwen2` uses the NeoX form, the same as Hugging Face, and keeps them. Matrices are written
 * as F32, F16 or Q8_0 (blocks of 32 weights: an f16 scale amax/127 and 32 int8); norms and biases as F32.
 * The tokenizer (a byte-level BPE tokenizer.json: vocab, merges, added tokens) and its chat template are
 * embedded as `tokenizer.ggml.*`; other tokenizers are written as `no_vocab` (token ids only).
 * @module
 */
import { closeSync, openSync, readSync, writeSync } from "node:fs";
import { CohortError } from "../errors.js";
import type { CausalLM } from "../model/llama.js";
import { noGrad, type Tensor, tidy, where } from "../tensor/index.js";
import type { Tokenizer } from "../tokenizer/types.js";

export type GgufQuant = "f32" | "f16" | "q8_0";

/** ggml tensor types used here. */
export const GGML_TYPE = { F32: 0, F16: 1, Q8_0: 8 } as const;
const ALIGN = 32;
const QK8_0 = 32;

/** Metadata value types of GGUF. */
const T = {
  U8: 0,
  I8: 1,
  U16: 2,
  I16: 3,
  U32: 4,
  I32: 5,
  F32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  U64: 10,
  I64: 11,
  F64: 12,
};

export type GgufValue =
  | { type: "u32" | "i32" | "f32" | "u64"; value: number }
  | { type: "bool"; value: boolean }
  | { type: "string"; value: string }
  | { type: "string[]"; value: string[] }
  | { type: "i32[]"; value: number[] };

export class GgufError extends CohortError {}

// ---- writing -------------------------------------------------------------------------------------------

class Bytes {
  #chunks: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.#chunks.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  f32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.push(b);
  }
  value(v: GgufValue): void {
    switch (v.type) {
      case "u32":
        this.u32(T.U32);
        this.u32(v.value);
        return;
      case "i32":
        this.u32(T.I32);
        this.i32(v.value);
        return;
      case "u64":
        this.u32(T.U64);
        this.u64(v.value);
        return;
      case "f32":
        this.u32(T.F32);
        this.f32(v.value);
        return;
      case "bool":
        this.u32(T.BOOL);
        this.push(Buffer.from([v.value ? 1 : 0]));
        return;
      case "string":
        this.u32(T.STRING);
        this.str(v.value);
        return;
      case "string[]":
        this.u32(T.ARRAY);
        this.u32(T.STRING);
        this.u64(v.value.length);
        for (const s of v.value) this.str(s);
        return;
      case "i32[]": {
        this.u32(T.ARRAY);
        this.u32(T.I32);
        this.u64(v.value.length);
        const b = Buffer.alloc(4 * v.value.length);
        v.value.forEach((x, i) => b.writeInt32LE(x, 4 * i));
        this.push(b);
        return;
      }
    }
  }
  concat(): Buffer {
    return Buffer.concat(this.#chunks);
  }
}

/** One tensor to write: its GGUF name, its shape as PyTorch orders it ([rows, cols]) and how to get its bytes. */
interface PlannedTensor {
  name: string;
  shape: number[];
  type: number;
  nbytes: number;
  bytes: () => Buffer;
}

function ggmlBytes(shape: number[], type: number): number {
  const n = shape.reduce((a, b) => a * b, 1);
  if (type === GGML_TYPE.F32) return 4 * n;
  if (type === GGML_TYPE.F16) return 2 * n;
  return (n / QK8_0) * (2 + QK8_0);
}

/** Q8_0 blocks of a tensor whose last dim is a multiple of 32: per block an f16 scale d = amax/127, then round(x/d). */
export function quantizeQ8_0(t: Tensor): Buffer {
  return noGrad(() =>
    tidy(() => {
      const x = t.detach().to("f32").reshape(-1, QK8_0); // [blocks, 32]
      const d = x.abs().amax(-1, true); // [blocks, 1]
      const scale = d.div(127);
      const id = where(scale.gt(0), scale.reciprocal(), 0);
      const q = Buffer.from((x.mul(id).round().clamp(-127, 127).to("i8").data() as Int8Array).buffer);
      const d16 = Buffer.from((scale.to("f16").data() as Uint16Array).buffer);
      const blocks = x.shape[0] as number;
      const out = Buffer.alloc(blocks * (2 + QK8_0));
      for (let b = 0; b < blocks; b++) {
        const o = b * (2 + QK8_0);
        out[o] = d16[2 * b] as number;
        out[o + 1] = d16[2 * b + 1] as number;
        q.copy(out, o + 2, b * QK8_0, (b + 1) * QK8_0);
      }
      return out;
    }),
  );
}

/** HF's q/k row order (rotate_half pairs i, i+hd/2) → llama.cpp's `llama` RoPE order (pairs 2i, 2i+1). */
function permuteRope(w: Tensor, heads: number): Tensor {
  const [rows, cols] = w.shape as [number, number];
  return w
    .reshape(heads, 2, rows / heads / 2, cols)
    .transpose(1, 2)
    .reshape(rows, cols);
}

function vocabMetadata(tok: Tokenizer, vocabSize: number): Record<string, GgufValue> {
  const files = "toFiles" in tok && typeof tok.toFiles === "function" ? (tok.toFiles() as Record<string, unknown>) : {};
  const json = files["tokenizer.json"] as Record<string, unknown> | undefined;
  const model = json?.model as { type?: string; vocab?: Record<string, number>; merges?: unknown[] } | undefined;
  const out: Record<string, GgufValue> = {};
  if (!json || model?.type !== "BPE" || !model.vocab) {
    out["tokenizer.ggml.model"] = { type: "string", value: "no_vocab" };
    return out;
  }
  const tokens: (string | null)[] = new Array(vocabSize).fill(null);
  const types: number[] = new Array(vocabSize).fill(1); // 1 normal
  for (const [s, id] of Object.entries(model.vocab)) if (id < vocabSize) tokens[id] = s;
  for (const a of (json.added_tokens as { id: number; content: string; special?: boolean }[] | undefined) ?? []) {
    if (a.id >= vocabSize) continue;
    tokens[a.id] = a.content;
    types[a.id] = a.special ? 3 : 4; // control | user-defined
  }
  for (let i = 0; i < vocabSize; i++) {
    if (tokens[i] === null) {
      tokens[i] = `[PAD${i}]`;
      types[i] = 5; // unused (the model's rows beyond the tokenizer's vocabulary)
    }
  }
  const merges = (model.merges ?? []).map((m) => (Array.isArray(m) ? m.join(" ") : String(m)));
  const pre = JSON.stringify(json.pre_tokenizer ?? {});
  out["tokenizer.ggml.model"] = { type: "string", value: "gpt2" };
  // llama.cpp's pre-tokenizer names: Qwen2's split regex, Llama 3's, else the generic GPT-2 one
  out["tokenizer.ggml.pre"] = {
    type: "string",
    value:
      pre.includes("\\\\p{N}") && (tokens as string[]).includes("<|im_start|>")
        ? "qwen2"
        : pre.includes("\\\\p{N}{1,3}")
          ? "llama-bpe"
          : "default",
  };
  out["tokenizer.ggml.tokens"] = { type: "string[]", value: tokens as string[] };
  out["tokenizer.ggml.token_type"] = { type: "i32[]", value: types };
  out["tokenizer.ggml.merges"] = { type: "string[]", value: merges };
  if (tok.bosId !== null) out["tokenizer.ggml.bos_token_id"] = { type: "u32", value: tok.bosId };
  out["tokenizer.ggml.eos_token_id"] = { type: "u32", value: tok.eosId };
  out["tokenizer.ggml.padding_token_id"] = { type: "u32", value: tok.padId };
  out["tokenizer.ggml.add_bos_token"] = { type: "bool", value: false };
  const chat = (tok as { chatTemplate?: string }).chatTemplate;
  if (typeof chat === "string") out["tokenizer.chat_template"] = { type: "string", value: chat };
  return out;
}

export interface WriteGgufOptions {
  /** Matrix encoding: `f32`, `f16` or `q8_0` (default). Norms and biases are F32 always. */
  quant?: GgufQuant;
  /** `general.name`. */
  name?: string;
}

/**
 * Writes `model` (adapters folded in) and `tok` as a GGUF v3 file that llama.cpp loads (`llama` or `qwen2`
 * architecture by the model type). Returns the bytes written.
 */
export function writeGguf(path: string, model: CausalLM, tok: Tokenizer, opts: WriteGgufOptions = {}): number {
  const c = model.config;
  const quant = opts.quant ?? "q8_0";
  if (!["f32", "f16", "q8_0"].includes(quant))
    throw new GgufError(`GGUF quant must be f32, f16 or q8_0, got ${JSON.stringify(quant)}`);
  const arch = c.modelType === "qwen2" ? "qwen2" : c.modelType === "llama" ? "llama" : null;
  if (arch === null) throw new GgufError(`GGUF export supports llama and qwen2 models, not ${c.modelType}`);
  if (arch === "qwen2" && !c.attentionBias)
    throw new GgufError(
      "llama.cpp's qwen2 architecture needs q/k/v biases; this qwen2 config has attention_bias false",
    );
  if (arch === "llama" && c.attentionBias)
    throw new GgufError("llama.cpp's llama architecture has no q/k/v biases; export the model as qwen2");
  const matType = quant === "f32" ? GGML_TYPE.F32 : quant === "f16" ? GGML_TYPE.F16 : GGML_TYPE.Q8_0;
  const meta: Record<string, GgufValue> = {
    "general.architecture": { type: "string", value: arch },
    "general.name": { type: "string", value: opts.name ?? "cohort" },
    "general.alignment": { type: "u32", value: ALIGN },
    "general.file_type": { type: "u32", value: quant === "f32" ? 0 : quant === "f16" ? 1 : 7 },
    [`${arch}.context_length`]: { type: "u32", value: c.maxPositionEmbeddings },
    [`${arch}.embedding_length`]: { type: "u32", value: c.hiddenSize },
    [`${arch}.block_count`]: { type: "u32", value: c.numHiddenLayers },
    [`${arch}.feed_forward_length`]: { type: "u32", value: c.intermediateSize },
    [`${arch}.attention.head_count`]: { type: "u32", value: c.numAttentionHeads },
    [`${arch}.attention.head_count_kv`]: { type: "u32", value: c.numKeyValueHeads },
    [`${arch}.attention.key_length`]: { type: "u32", value: c.headDim },
    [`${arch}.attention.value_length`]: { type: "u32", value: c.headDim },
    [`${arch}.rope.dimension_count`]: { type: "u32", value: c.headDim },
    [`${arch}.rope.freq_base`]: { type: "f32", value: c.ropeTheta },
    [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: c.rmsNormEps },
    [`${arch}.vocab_size`]: { type: "u32", value: c.vocabSize },
    ...vocabMetadata(tok, c.vocabSize),
  };
  // the weights as served: adapters folded in (a new tensor each, freed after writing)
  const weight = (name: string, w: Tensor): Tensor => model.adapter?.effectiveWeight(name, w) ?? w;
  const tensors: PlannedTensor[] = [];
  const add = (name: string, t: Tensor, kind: "matrix" | "vector", map?: (t: Tensor) => Tensor) => {
    const type = kind === "vector" ? GGML_TYPE.F32 : matType;
    const shape = [...t.shape];
    if (type === GGML_TYPE.Q8_0 && (shape.at(-1) as number) % QK8_0 !== 0)
      throw new GgufError(`q8_0 needs rows that are a multiple of 32; ${name} has shape [${shape}]; use --quant f16`);
    tensors.push({
      name,
      shape,
      type,
      nbytes: ggmlBytes(shape, type),
      bytes: () =>
        noGrad(() =>
          tidy(() => {
            const w = map ? map(t) : t.detach();
            if (type === GGML_TYPE.Q8_0) return quantizeQ8_0(w);
            const d = w.to(type === GGML_TYPE.F16 ? "f16" : "f32").contiguous();
            return Buffer.from(d.bytes());
          }),
        ),
    });
  };
  add("token_embd.weight", model.embedTokens, "matrix");
  model.layers.forEach((L, i) => {
    const p = `blk.${i}`;
    const fold = (name: string) => (t: Tensor) => weight(name, t).detach();
    const rope = (name: string, heads: number) => (t: Tensor) =>
      arch === "llama" ? permuteRope(weight(name, t).detach(), heads) : weight(name, t).detach();
    add(`${p}.attn_norm.weight`, L.inputNorm, "vector");
    add(`${p}.attn_q.weight`, L.q, "matrix", rope(L.names.q, c.numAttentionHeads));
    add(`${p}.attn_k.weight`, L.k, "matrix", rope(L.names.k, c.numKeyValueHeads));
    add(`${p}.attn_v.weight`, L.v, "matrix", fold(L.names.v));
    if (L.qBias) add(`${p}.attn_q.bias`, L.qBias, "vector");
    if (L.kBias) add(`${p}.attn_k.bias`, L.kBias, "vector");
    if (L.vBias) add(`${p}.attn_v.bias`, L.vBias, "vector");
    add(`${p}.attn_output.weight`, L.o, "matrix", fold(L.names.o));
    add(`${p}.ffn_norm.weight`, L.postNorm, "vector");
    add(`${p}.ffn_gate.weight`, L.gate, "matrix", fold(L.names.gate));
    add(`${p}.ffn_up.weight`, L.up, "matrix", fold(L.names.up));
    add(`${p}.ffn_down.weight`, L.down, "matrix", fold(L.names.down));
  });
  add("output_norm.weight", model.finalNorm, "vector");
  if (model.lmHead) add("output.weight", model.lmHead, "matrix");

  const head = new Bytes();
  head.push(Buffer.from("GGUF", "ascii"));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(Object.keys(meta).length);
  for (const [k, v] of Object.entries(meta)) {
    head.str(k);
    head.value(v);
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    head.str(t.name);
    head.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) head.u64(d); // ne[0] is the innermost (contiguous) dim
    head.u32(t.type);
    head.u64(offset);
    offsets.push(offset);
    offset += Math.ceil(t.nbytes / ALIGN) * ALIGN;
  }
  const pad = (n: number) => Buffer.alloc((ALIGN - (n % ALIGN)) % ALIGN);
  const fd = openSync(path, "w");
  let written = 0;
  const put = (b: Buffer) => {
    writeSync(fd, b);
    written += b.length;
  };
  try {
    const h = head.concat();
    put(h);
    put(pad(h.length));
    for (const t of tensors) {
      const b = t.bytes();
      if (b.length !== t.nbytes) throw new GgufError(`internal: ${t.name} has ${b.length} bytes, expected ${t.nbytes}`);
      put(b);
      put(pad(b.length));
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

// ---- reading -------------------------------------------------------------------------------------------

export interface GgufTensorInfo {
  name: string;
  /** As PyTorch orders it (outermost first). */
  shape: number[];
  type: number;
  /** Absolute byte offset in the file. */
  offset: number;
}

export interface GgufFile {
  version: number;
  metadata: Record<string, unknown>;
  tensors: GgufTensorInfo[];
}

/** Reads a GGUF file's header: metadata (arrays as JS arrays) and tensor infos. */
export function readGgufHeader(path: string): GgufFile {
  const fd = openSync(path, "r");
  try {
    let pos = 0;
    const read = (n: number): Buffer => {
      const b = Buffer.alloc(n);
      if (readSync(fd, b, 0, n, pos) !== n) throw new GgufError(`${path}: truncated GGUF header`);
      pos += n;
      return b;
    };
    const u32 = () => read(4).readUInt32LE();
    const u64 = () => Number(read(8).readBigUInt64LE());
    const str = () => read(u64()).toString("utf8");
    const scalar = (type: number): unknown => {
      switch (type) {
        case T.U8:
          return read(1).readUInt8();
        case T.I8:
          return read(1).readInt8();
        case T.U16:
          return read(2).readUInt16LE();
        case T.I16:
          return read(2).readInt16LE();
        case T.U32:
          return u32();
        case T.I32:
          return read(4).readInt32LE();
        case T.F32:
          return read(4).readFloatLE();
        case T.BOOL:
          return read(1)[0] !== 0;
        case T.STRING:
          return str();
        case T.U64:
          return u64();
        case T.I64:
          return Number(read(8).readBigInt64LE());
        case T.F64:
          return read(8).readDoubleLE();
        case T.ARRAY: {
          const et = u32();
          const n = u64();
          return Array.from({ length: n }, () => scalar(et));
        }
        default:
          throw new GgufError(`${path}: unknown metadata type ${type}`);
      }
    };
    if (read(4).toString("ascii") !== "GGUF") throw new GgufError(`${path} is not a GGUF file`);
    const version = u32();
    const nt = u64();
    const nkv = u64();
    const metadata: Record<string, unknown> = {};
    for (let i = 0; i < nkv; i++) {
      const k = str();
      metadata[k] = scalar(u32());
    }
    const infos: GgufTensorInfo[] = [];
    for (let i = 0; i < nt; i++) {
      const name = str();
      const nd = u32();
      const ne = Array.from({ length: nd }, u64);
      const type = u32();
      const offset = u64();
      infos.push({ name, shape: ne.reverse(), type, offset });
    }
    const align = (metadata["general.alignment"] as number | undefined) ?? ALIGN;
    const dataStart = Math.ceil(pos / align) * align;
    for (const t of infos) t.offset += dataStart;
    return { version, metadata, tensors: infos };
  } finally {
    closeSync(fd);
  }
}

/** A tensor's values as f32 (F32, F16 and Q8_0 dequantized), row-major in `info.shape`. */
export function readGgufTensor(path: string, info: GgufTensorInfo): Float32Array {
  const n = info.shape.reduce((a, b) => a * b, 1);
  const nbytes = ggmlBytes(info.shape, info.type);
  const b = Buffer.alloc(nbytes);
  const fd = openSync(path, "r");
  try {
    readSync(fd, b, 0, nbytes, info.offset);
  } finally {
    closeSync(fd);
  }
  const out = new Float32Array(n);
  if (info.type === GGML_TYPE.F32) out.set(new Float32Array(b.buffer, b.byteOffset, n));
  else if (info.type === GGML_TYPE.F16) for (let i = 0; i < n; i++) out[i] = halfToFloat(b.readUInt16LE(2 * i));
  else if (info.type === GGML_TYPE.Q8_0) {
    for (let blk = 0; blk < n / QK8_0; blk++) {
      const o = blk * (2 + QK8_0);
      const d = halfToFloat(b.readUInt16LE(o));
      for (let j = 0; j < QK8_0; j++) out[blk * QK8_0 + j] = d * b.readInt8(o + 2 + j);
    }
  } else throw new GgufError(`${info.name}: ggml type ${info.type} is not read here`);
  return out;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}
