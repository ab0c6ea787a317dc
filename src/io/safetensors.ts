/**
 * Safetensors reader and writer (https://huggingface.co/docs/safetensors), written from the format spec:
 *
 * ```
 * [8 bytes: N, u64 little-endian][N bytes: JSON header, space-padded to a multiple of 8][data]
 * header = { "__metadata__"?: {string: string}, name: {dtype, shape, data_offsets: [begin, end]}, … }
 * ```
 * Offsets are relative to the start of the data section; the tensors must cover it exactly (no gaps,
 * no overlaps, no trailing bytes). The writer lays tensors out as the reference implementation does —
 * widest dtype first, then by name — so every tensor is aligned to its element size and a file written
 * here is byte-identical to one written by `safetensors.torch.save_file` for the same tensors and metadata.
 * Writes are atomic (see `writeFileAtomic`). Reads check the whole header before touching the data, and
 * every error names the file and the problem.
 * @module
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { endianness } from "node:os";
import { describeValue } from "../config-issue.js";
import { CohortError } from "../errors.js";
import { type Device, type DType, dispose, fromBytes, type Tensor } from "../tensor/index.js";
import { writeFileAtomic } from "./atomic.js";

/** A malformed, truncated or unsupported safetensors file. `path` is the file. */
export class SafetensorsError extends CohortError {
  override name = "SafetensorsError";
  readonly path: string;
  constructor(path: string, problem: string) {
    super(`${path}: ${problem}`);
    this.path = path;
  }
}

/** Every dtype the safetensors spec defines, with its width in bits. */
const SPEC_DTYPE_BITS: Readonly<Record<string, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  F64: 64,
  I64: 64,
  U64: 64,
};

/** The reference implementation's dtype order (its enum order); the writer sorts by it, descending. */
const SPEC_DTYPE_RANK: readonly string[] = Object.keys(SPEC_DTYPE_BITS);

/** Safetensors dtype ↔ Cohort dtype, for the dtypes Cohort tensors can hold. */
const TO_COHORT: Readonly<Record<string, DType>> = {
  F32: "f32",
  F64: "f64",
  F16: "f16",
  BF16: "bf16",
  I64: "i64",
  I32: "i32",
  I8: "i8",
  U8: "u8",
  BOOL: "bool",
};
const FROM_COHORT: Readonly<Record<DType, string>> = {
  f32: "F32",
  f64: "F64",
  f16: "F16",
  bf16: "BF16",
  i64: "I64",
  i32: "I32",
  i8: "I8",
  u8: "U8",
  bool: "BOOL",
};

/** Bytes per element of each Cohort dtype. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  f32: 4,
  f64: 8,
  f16: 2,
  bf16: 2,
  i64: 8,
  i32: 4,
  i8: 1,
  u8: 1,
  bool: 1,
};

/** The safetensors dtype name of a Cohort dtype (`"bf16"` → `"BF16"`). */
export function safetensorsDtype(dtype: DType): string {
  return FROM_COHORT[dtype];
}

/** Bytes a tensor occupies in a safetensors file. */
export function tensorByteSize(t: Tensor): number {
  return t.size * DTYPE_BYTES[t.dtype];
}

/** One header entry. `dtype` is the safetensors name (`"F32"`, `"BF16"`, …). */
export interface TensorInfo {
  dtype: string;
  shape: number[];
  /** [begin, end) byte range relative to the start of the data section. */
  dataOffsets: [number, number];
}

export interface SafetensorsHeader {
  tensors: Record<string, TensorInfo>;
  metadata: Record<string, string>;
  /** Absolute file offset of the data section (8 + header length). */
  dataStart: number;
  /** Size of the data section in bytes. */
  dataBytes: number;
}

export interface ReadSafetensorsOptions {
  /** Load only these tensors (each must exist). Default: all. */
  names?: readonly string[];
  /** Device for the loaded tensors. Default: cpu. */
  device?: Device;
}

/** Header size limit of the reference implementation; a larger one means a corrupt or foreign file. */
const MAX_HEADER_BYTES = 100_000_000;
/** Largest single read; `fs.readSync` takes at most 2 GiB − 1 bytes. */
const READ_CHUNK = 1 << 30;

function checkLittleEndian(): void {
  if (endianness() !== "LE") {
    throw new CohortError("safetensors files are little-endian; this big-endian host is not supported");
  }
}

/** Where the bytes of a safetensors file come from: an open file, or bytes already in memory (a pushed snapshot). */
interface ByteSource {
  /** Total bytes. */
  size: number;
  /** Exactly `length` bytes from `position` (throws "truncated file" past the end). */
  read(position: number, length: number): Uint8Array;
}

function readExactly(fd: number, path: string, position: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, Math.min(length - done, READ_CHUNK), position + done);
    if (n === 0) throw new SafetensorsError(path, `unexpected end of file at byte ${position + done}: truncated file`);
    done += n;
  }
  return buf;
}

function fileSource(fd: number, path: string): ByteSource {
  return { size: fstatSync(fd).size, read: (position, length) => readExactly(fd, path, position, length) };
}

function bytesSource(bytes: Uint8Array, path: string): ByteSource {
  return {
    size: bytes.length,
    read(position, length) {
      if (position + length > bytes.length)
        throw new SafetensorsError(path, `unexpected end of data at byte ${bytes.length}: truncated file`);
      return bytes.subarray(position, position + length);
    },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

const describe = (v: unknown): string => describeValue(v, 80);

function parseHeader(src: ByteSource, path: string): SafetensorsHeader {
  const fileBytes = src.size;
  if (fileBytes < 8) {
    throw new SafetensorsError(
      path,
      `file is ${fileBytes} bytes, shorter than the 8-byte header length that starts every safetensors file: ` +
        "the file is truncated or not a safetensors file",
    );
  }
  const n64 = Buffer.from(src.read(0, 8)).readBigUInt64LE(0);
  if (n64 > BigInt(fileBytes - 8)) {
    throw new SafetensorsError(
      path,
      `header length ${n64} runs past the end of the file (${fileBytes} bytes): the file is truncated or not a safetensors file`,
    );
  }
  const headerBytes = Number(n64);
  if (headerBytes > MAX_HEADER_BYTES) {
    throw new SafetensorsError(path, `header length ${headerBytes} exceeds the 100 MB limit: corrupt file`);
  }
  const raw = src.read(8, headerBytes);
  let parsed: unknown;
  try {
    const text = new TextDecoder("utf-8", { fatal: true }).decode(raw);
    if (!text.startsWith("{")) throw new Error("it does not start with '{'");
    parsed = JSON.parse(text);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new SafetensorsError(path, `header is not valid UTF-8 JSON (${why}): corrupt file`);
  }
  if (!isPlainObject(parsed)) {
    throw new SafetensorsError(path, "header must be a JSON object of {name: {dtype, shape, data_offsets}}");
  }

  const metadata: Record<string, string> = {};
  const tensors: Record<string, TensorInfo> = {};
  for (const [name, entry] of Object.entries(parsed)) {
    if (name === "__metadata__") {
      if (!isPlainObject(entry)) throw new SafetensorsError(path, "__metadata__ must be an object of strings");
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== "string") {
          throw new SafetensorsError(path, `__metadata__["${k}"] must be a string, got ${describe(v)}`);
        }
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor "${name}"`;
    if (!isPlainObject(entry))
      throw new SafetensorsError(path, `${where}: entry must be an object, got ${describe(entry)}`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== "string" || !(dtype in SPEC_DTYPE_BITS)) {
      throw new SafetensorsError(
        path,
        `${where}: unknown dtype ${describe(dtype)} (safetensors dtypes: ${SPEC_DTYPE_RANK.join(", ")})`,
      );
    }
    if (!Array.isArray(shape) || !shape.every(isCount)) {
      throw new SafetensorsError(
        path,
        `${where}: shape must be a list of non-negative integers, got ${describe(shape)}`,
      );
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every(isCount) ||
      (offsets[0] as number) > (offsets[1] as number)
    ) {
      throw new SafetensorsError(
        path,
        `${where}: data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${describe(offsets)}`,
      );
    }
    const [begin, end] = offsets as [number, number];
    const numel = (shape as number[]).reduce((a, b) => a * b, 1);
    const bits = numel * (SPEC_DTYPE_BITS[dtype] as number);
    if (bits % 8 !== 0 || bits / 8 !== end - begin) {
      throw new SafetensorsError(
        path,
        `${where}: dtype ${dtype} × shape [${shape}] needs ${bits / 8} bytes but data_offsets [${begin}, ${end}] ` +
          `span ${end - begin}: corrupt header`,
      );
    }
    tensors[name] = { dtype, shape: shape as number[], dataOffsets: [begin, end] };
  }

  const dataStart = 8 + headerBytes;
  const dataBytes = fileBytes - dataStart;
  const spans = Object.entries(tensors).sort(
    ([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let cursor = 0;
  let prev = "";
  for (const [name, info] of spans) {
    const [begin, end] = info.dataOffsets;
    if (begin < cursor) {
      throw new SafetensorsError(
        path,
        `tensors "${prev}" and "${name}" overlap (tensor "${name}" starts at byte ${begin}, "${prev}" ends at ${cursor}): corrupt header`,
      );
    }
    if (begin > cursor) {
      throw new SafetensorsError(
        path,
        `data bytes [${cursor}, ${begin}) belong to no tensor (a gap before "${name}"): corrupt header`,
      );
    }
    if (end > dataBytes) {
      throw new SafetensorsError(
        path,
        `tensor "${name}" needs data bytes [${begin}, ${end}) but the file holds only ${dataBytes} data bytes: truncated file`,
      );
    }
    cursor = end;
    prev = name;
  }
  if (cursor !== dataBytes) {
    throw new SafetensorsError(
      path,
      `${dataBytes - cursor} trailing data bytes after the last tensor (tensors cover ${cursor} of ${dataBytes}): corrupt file`,
    );
  }
  return { tensors, metadata, dataStart, dataBytes };
}

function withFile<T>(path: string, fn: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new SafetensorsError(
      path,
      code === "ENOENT" ? "no such file" : `cannot open: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  try {
    return fn(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads and validates only the header (names, dtypes, shapes, offsets, metadata); no tensor data. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  return withFile(path, (fd) => parseHeader(fileSource(fd, path), path));
}

/**
 * Reads a safetensors file into tensors (owned by the caller: dispose them). The header is validated
 * before any data is read; tensors are read one at a time, so peak JS memory is one tensor.
 */
export function readSafetensors(
  path: string,
  opts: ReadSafetensorsOptions = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  checkLittleEndian();
  return withFile(path, (fd) => readFrom(fileSource(fd, path), path, opts));
}

/**
 * `readSafetensors` from an already open file descriptor (the caller keeps and closes it): a file checked
 * (e.g. hashed) and then read through the same descriptor is the same file even if its path is replaced meanwhile.
 * `path` names it in errors.
 */
export function readSafetensorsFd(
  fd: number,
  path: string,
  opts: ReadSafetensorsOptions = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  checkLittleEndian();
  return readFrom(fileSource(fd, path), path, opts);
}

/** `readSafetensors` over bytes in memory (e.g. a request body); `name` names them in errors. */
export function readSafetensorsBytes(
  bytes: Uint8Array,
  name: string,
  opts: ReadSafetensorsOptions = {},
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  checkLittleEndian();
  return readFrom(bytesSource(bytes, name), name, opts);
}

function readFrom(
  src: ByteSource,
  path: string,
  opts: ReadSafetensorsOptions,
): { tensors: Record<string, Tensor>; metadata: Record<string, string> } {
  const header = parseHeader(src, path);
  const names = opts.names ?? Object.keys(header.tensors);
  for (const name of names) {
    const info = header.tensors[name];
    if (info === undefined) {
      const have = Object.keys(header.tensors);
      throw new SafetensorsError(
        path,
        `no tensor "${name}" (the file has ${have.length}: ${have.slice(0, 8).join(", ")}${have.length > 8 ? ", …" : ""})`,
      );
    }
    if (!(info.dtype in TO_COHORT)) {
      throw new SafetensorsError(
        path,
        `tensor "${name}" has dtype ${info.dtype}, which Cohort tensors cannot hold (supported: ${Object.keys(TO_COHORT).join(", ")}); convert it first`,
      );
    }
  }
  const tensors: Record<string, Tensor> = {};
  try {
    for (const name of names) {
      const info = header.tensors[name] as TensorInfo;
      const [begin, end] = info.dataOffsets;
      const bytes = src.read(header.dataStart + begin, end - begin);
      tensors[name] = fromBytes(bytes, info.shape, TO_COHORT[info.dtype] as DType, opts.device);
    }
  } catch (e) {
    dispose(tensors);
    throw e;
  }
  return { tensors, metadata: header.metadata };
}

/** The header bytes (length prefix + space-padded JSON) for tensors laid out in `order`. */
function encodeHeader(
  order: { name: string; dtype: string; shape: number[]; nbytes: number }[],
  metadata: Record<string, string> | undefined,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    const sorted: Record<string, string> = {};
    for (const k of Object.keys(metadata).sort()) sorted[k] = metadata[k] as string;
    header.__metadata__ = sorted;
  }
  let offset = 0;
  for (const e of order) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: [offset, offset + e.nbytes] };
    offset += e.nbytes;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/** Byte order comparison of strings (the reference implementation compares UTF-8 bytes). */
function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * Writes `tensors` to `path` as safetensors, atomically. Tensors keep their dtype; CUDA tensors are
 * copied to the CPU one at a time. `metadata` (string → string) goes to `__metadata__`, keys sorted;
 * without it the header has no `__metadata__` entry (as `save_file(..., metadata=None)`).
 */
export function writeSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  checkLittleEndian();
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new SafetensorsError(path, `metadata["${k}"] must be a string, got ${describe(v)}; stringify it first`);
      }
    }
  }
  const entries = Object.entries(tensors).map(([name, t]) => {
    if (name === "" || name === "__metadata__") {
      throw new SafetensorsError(path, `"${name}" cannot be a tensor name; rename the tensor`);
    }
    if (t.disposed) throw new SafetensorsError(path, `tensor "${name}" is disposed; keep() it until it is saved`);
    return { name, tensor: t, dtype: FROM_COHORT[t.dtype], shape: [...t.shape], nbytes: tensorByteSize(t) };
  });
  entries.sort(
    (a, b) => SPEC_DTYPE_RANK.indexOf(b.dtype) - SPEC_DTYPE_RANK.indexOf(a.dtype) || compareUtf8(a.name, b.name),
  );
  const head = encodeHeader(entries, metadata);
  function* chunks(): Generator<Uint8Array> {
    yield head;
    for (const e of entries) {
      const bytes = e.tensor.bytes();
      if (bytes.length !== e.nbytes) {
        throw new SafetensorsError(path, `tensor "${e.name}" gave ${bytes.length} bytes, expected ${e.nbytes}`);
      }
      yield bytes;
    }
  }
  writeFileAtomic(path, chunks());
}
