import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import {
  readSafetensors,
  readSafetensorsBytes,
  readSafetensorsFd,
  readSafetensorsHeader,
  SafetensorsError,
  writeSafetensors,
} from "../../src/io/safetensors.js";
import { type DType, dispose, fromBytes, liveTensors, type Tensor, tensor } from "../../src/tensor/index.js";

const dir = mkdtempSync(join(tmpdir(), "cohort-st-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Deterministic sample values per dtype, all exactly representable in that dtype. */
const SAMPLES: Record<DType, number[]> = {
  f32: [0, -1.5, 3.25, 2 ** -20, 65504, -0.125],
  f64: [0.1, -2.5, 1e300, -1e-300, 3, 7],
  f16: [0, -1.5, 3.25, 0.0078125, 65504, -2],
  bf16: [0, -1.5, 3.25, 0.0078125, 256, -2],
  i64: [0, -1, 2 ** 40, -(2 ** 40), 7, 123456789012],
  i32: [0, -1, 2 ** 31 - 1, -(2 ** 31), 5, 6],
  u8: [0, 1, 127, 128, 255, 3],
  i8: [0, -1, 127, -128, 5, -7],
  bool: [1, 0, 1, 1, 0, 0],
};
const DTYPES = Object.keys(SAMPLES) as DType[];

function sampleTensors(): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const dt of DTYPES) out[`t_${dt}`] = tensor(SAMPLES[dt], { dtype: dt, shape: [2, 3] });
  return out;
}

function expectError(fn: () => unknown, path: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.equal(e.path, path);
    assert.ok(e.message.startsWith(`${path}: `), `message should name the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

/** A file with a hand-written header and `dataBytes` zero bytes of data. */
function rawFile(name: string, header: unknown, dataBytes: number, headerText?: string): string {
  const json = Buffer.from(headerText ?? JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return p;
}

describe("safetensors round trip", () => {
  for (const dt of DTYPES) {
    test(`${dt}: bytes, shape and dtype survive`, () => {
      const p = join(dir, `rt-${dt}.safetensors`);
      const a = tensor(SAMPLES[dt], { dtype: dt, shape: [2, 3] });
      const scalar = tensor([SAMPLES[dt][1] as number], { dtype: dt, shape: [] });
      const empty = fromBytes(new Uint8Array(0), [0, 4], dt);
      writeSafetensors(p, { a, scalar, empty });
      const { tensors, metadata } = readSafetensors(p);
      assert.deepEqual(Object.keys(tensors).sort(), ["a", "empty", "scalar"]);
      assert.deepEqual(metadata, {});
      const b = tensors.a as Tensor;
      assert.equal(b.dtype, dt);
      assert.deepEqual(b.shape, [2, 3]);
      assert.deepEqual(b.bytes(), a.bytes());
      assert.deepEqual(b.toArray(), SAMPLES[dt]);
      assert.deepEqual(tensors.scalar?.shape, []);
      assert.deepEqual(tensors.scalar?.toArray(), [SAMPLES[dt][1]]);
      assert.deepEqual(tensors.empty?.shape, [0, 4]);
      assert.equal(tensors.empty?.dtype, dt);
      dispose([a, scalar, empty, tensors]);
    });
  }

  test("bit patterns are preserved (NaN payloads, ±inf, -0, subnormals)", () => {
    const p = join(dir, "bits.safetensors");
    const bits16 = new Uint16Array([0x7e01, 0xfc00, 0x7c00, 0x8000, 0x0001, 0x7fff]);
    const bits32 = new Uint32Array([0x7fc00123, 0xff800000, 0x7f800000, 0x80000000, 0x00000001, 0x3f800000]);
    const h = fromBytes(new Uint8Array(bits16.buffer), [6], "f16");
    const bf = fromBytes(new Uint8Array(bits16.buffer), [6], "bf16");
    const f = fromBytes(new Uint8Array(bits32.buffer), [3, 2], "f32");
    writeSafetensors(p, { h, bf, f });
    const { tensors } = readSafetensors(p);
    assert.deepEqual(tensors.h?.bytes(), new Uint8Array(bits16.buffer));
    assert.deepEqual(tensors.bf?.bytes(), new Uint8Array(bits16.buffer));
    assert.deepEqual(tensors.f?.bytes(), new Uint8Array(bits32.buffer));
    dispose([h, bf, f, tensors]);
  });

  test("metadata, selective loading, and no leaked tensors", () => {
    const before = liveTensors();
    const p = join(dir, "meta.safetensors");
    const ts = sampleTensors();
    writeSafetensors(p, ts, { format: "pt", zeta: "ü ✓", alpha: "1" });
    const { tensors, metadata } = readSafetensors(p, { names: ["t_bf16", "t_i64"] });
    assert.deepEqual(metadata, { alpha: "1", format: "pt", zeta: "ü ✓" });
    assert.deepEqual(Object.keys(tensors), ["t_bf16", "t_i64"]);
    assert.deepEqual(tensors.t_i64?.toArray(), SAMPLES.i64);
    expectError(() => readSafetensors(p, { names: ["nope"] }), p, /no tensor "nope"/);
    dispose([ts, tensors]);
    assert.equal(liveTensors(), before);
  });

  test("from bytes in memory and from an open descriptor: the same tensors, the same checks", () => {
    const before = liveTensors();
    const p = join(dir, "sources.safetensors");
    const ts = sampleTensors();
    writeSafetensors(p, ts, { format: "pt" });
    const bytes = readFileSync(p);
    const fromMemory = readSafetensorsBytes(bytes, "the body");
    const fd = openSync(p, "r");
    let fromFd: ReturnType<typeof readSafetensorsFd>;
    try {
      fromFd = readSafetensorsFd(fd, p);
    } finally {
      closeSync(fd);
    }
    for (const dt of DTYPES) {
      assert.deepEqual(fromMemory.tensors[`t_${dt}`]?.toArray(), SAMPLES[dt]);
      assert.deepEqual(fromFd.tensors[`t_${dt}`]?.toArray(), SAMPLES[dt]);
    }
    assert.deepEqual(fromMemory.metadata, { format: "pt" });
    expectError(() => readSafetensorsBytes(bytes.subarray(0, -3), "the body"), "the body", /truncated/);
    expectError(() => readSafetensorsBytes(bytes.subarray(0, 5), "the body"), "the body", /shorter than the 8-byte/);
    dispose([ts, fromMemory.tensors, fromFd.tensors]);
    assert.equal(liveTensors(), before);
  });
});

describe("safetensors layout", () => {
  test("8-byte aligned header, widest dtype first then by name, contiguous offsets", () => {
    const p = join(dir, "layout.safetensors");
    const ts = sampleTensors();
    const odd = tensor([1, 2, 3], { dtype: "f16" }); // 6 bytes: would misalign a later f32
    const b = tensor([1], { dtype: "f32" });
    writeSafetensors(p, { ...ts, odd, b }, { format: "pt" });
    const raw = readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const text = raw.subarray(8, 8 + n).toString("utf8");
    assert.match(text, /^\{"__metadata__":\{"format":"pt"\},/);
    assert.equal(text.trimEnd().length, JSON.stringify(JSON.parse(text)).length, "compact JSON, space padding");
    const header = JSON.parse(text) as Record<string, { dtype: string; data_offsets: [number, number] }>;
    const names = Object.keys(header).filter((k) => k !== "__metadata__");
    assert.deepEqual(names, [
      "t_i64",
      "t_f64",
      "b",
      "t_f32",
      "t_i32",
      "t_bf16",
      "odd",
      "t_f16",
      "t_i8",
      "t_u8",
      "t_bool",
    ]);
    let cursor = 0;
    for (const name of names) {
      const e = header[name] as { dtype: string; data_offsets: [number, number] };
      assert.equal(e.data_offsets[0], cursor);
      const width = { I64: 8, F64: 8, F32: 4, I32: 4, BF16: 2, F16: 2, U8: 1, I8: 1, BOOL: 1 }[e.dtype] as number;
      assert.equal((8 + n + cursor) % width, 0, `${name} aligned`);
      cursor = e.data_offsets[1];
    }
    assert.equal(8 + n + cursor, raw.length);
    const hdr = readSafetensorsHeader(p);
    assert.equal(hdr.dataStart, 8 + n);
    assert.deepEqual(hdr.tensors.odd, { dtype: "F16", shape: [3], dataOffsets: [160, 166] });
    dispose([ts, odd, b]);
  });

  test("writes are atomic: no temp files left, old file intact when a write fails", () => {
    const sub = mkdtempSync(join(dir, "atomic-"));
    const p = join(sub, "m.safetensors");
    const a = tensor([1, 2, 3]);
    writeSafetensors(p, { a });
    const good = readFileSync(p);
    const gone = tensor([4]);
    gone.dispose();
    assert.throws(() => writeSafetensors(p, { a, gone }), /disposed/);
    assert.throws(() => writeSafetensors(p, { a }, { n: 1 as unknown as string }), /must be a string/);
    assert.deepEqual(readFileSync(p), good);
    assert.deepEqual(readdirSync(sub), ["m.safetensors"]);
    a.dispose();
  });
});

describe("safetensors reference byte vectors", () => {
  // Expected bytes from the reference implementation's serialization tests.
  const f32Data = Buffer.from(new Float32Array([0, 1, 2, 3, 4, 5]).buffer);
  const file = (json: string, pad: number, data: Uint8Array = new Uint8Array(0)): Buffer => {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length + pad));
    return Buffer.concat([len, Buffer.from(json), Buffer.alloc(pad, 0x20), data]);
  };
  const cases: [string, () => Record<string, Tensor>, Record<string, string> | undefined, Buffer][] = [
    [
      "one f32 tensor, header already 8-byte aligned",
      () => ({ "attn.0": fromBytes(f32Data, [1, 2, 3], "f32") }),
      undefined,
      file('{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', 0, f32Data),
    ],
    [
      "one f32 tensor, header padded with spaces",
      () => ({ attn0: fromBytes(f32Data, [1, 1, 2, 3], "f32") }),
      undefined,
      file('{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}', 7, f32Data),
    ],
    ["no tensors", () => ({}), undefined, file("{}", 6)],
    ["no tensors, metadata", () => ({}), { framework: "pt" }, file('{"__metadata__":{"framework":"pt"}}', 5)],
  ];
  for (const [name, make, metadata, expected] of cases) {
    test(name, () => {
      const p = join(dir, "golden.safetensors");
      const ts = make();
      writeSafetensors(p, ts, metadata);
      assert.deepEqual(readFileSync(p), expected);
      const back = readSafetensors(p);
      assert.deepEqual(back.metadata, metadata ?? {});
      for (const [k, t] of Object.entries(ts)) assert.deepEqual(back.tensors[k]?.bytes(), t.bytes());
      dispose([ts, back.tensors]);
    });
  }
  test("an unpadded header (as older writers produced) reads", () => {
    const p = join(dir, "unpadded.safetensors");
    writeFileSync(p, file('{"test":{"dtype":"I32","shape":[],"data_offsets":[0,4]}}', 0, new Uint8Array([7, 0, 0, 0])));
    const { tensors } = readSafetensors(p);
    assert.deepEqual(tensors.test?.shape, []);
    assert.equal(tensors.test?.item(), 7);
    dispose(tensors);
  });
});

describe("safetensors corrupt files", () => {
  const okHeader = { a: { dtype: "F32", shape: [2], data_offsets: [0, 8] } };

  test("shorter than the length prefix", () => {
    const p = join(dir, "short.safetensors");
    writeFileSync(p, Buffer.from([1, 2, 3]));
    expectError(() => readSafetensors(p), p, /3 bytes, shorter than the 8-byte header length.*truncated/);
  });
  test("header length beyond the file", () => {
    const p = join(dir, "hdrlen.safetensors");
    const b = Buffer.alloc(20);
    b.writeBigUInt64LE(1000n);
    writeFileSync(p, b);
    expectError(() => readSafetensorsHeader(p), p, /header length 1000 runs past the end of the file \(20 bytes\)/);
  });
  test("header is not JSON / not UTF-8 / not an object", () => {
    expectError(
      () => readSafetensors(rawFile("badjson.st", null, 0, '{"a": ')),
      join(dir, "badjson.st"),
      /not valid UTF-8 JSON/,
    );
    const p2 = join(dir, "badutf8.st");
    const b = Buffer.alloc(8 + 4);
    b.writeBigUInt64LE(4n);
    b.set([0x7b, 0xff, 0xfe, 0x7d], 8);
    writeFileSync(p2, b);
    expectError(() => readSafetensors(p2), p2, /not valid UTF-8 JSON/);
    expectError(
      () => readSafetensors(rawFile("arr.st", [1, 2], 0)),
      join(dir, "arr.st"),
      /not valid UTF-8 JSON|JSON object/,
    );
  });
  test("unknown dtype", () => {
    const p = rawFile("dtype.st", { a: { dtype: "F17", shape: [2], data_offsets: [0, 8] } }, 8);
    expectError(() => readSafetensorsHeader(p), p, /tensor "a": unknown dtype "F17" \(safetensors dtypes: BOOL/);
  });
  test("spec dtype that Cohort tensors cannot hold", () => {
    const p = rawFile("u16.st", { a: { dtype: "U16", shape: [4], data_offsets: [0, 8] } }, 8);
    assert.equal(readSafetensorsHeader(p).tensors.a?.dtype, "U16");
    expectError(() => readSafetensors(p), p, /dtype U16, which Cohort tensors cannot hold/);
  });
  test("dtype × shape ≠ byte length", () => {
    const p = rawFile("size.st", { a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, 8);
    expectError(() => readSafetensors(p), p, /dtype F32 × shape \[3\] needs 12 bytes but data_offsets \[0, 8\] span 8/);
  });
  test("bad shape and bad offsets", () => {
    const p = rawFile("shape.st", { a: { dtype: "F32", shape: [-2], data_offsets: [0, 8] } }, 8);
    expectError(() => readSafetensors(p), p, /shape must be a list of non-negative integers/);
    const q = rawFile("offs.st", { a: { dtype: "F32", shape: [2], data_offsets: [8, 0] } }, 8);
    expectError(() => readSafetensors(q), q, /data_offsets must be \[begin, end\]/);
    const r = rawFile("meta.st", { __metadata__: { x: 1 }, ...okHeader }, 8);
    expectError(() => readSafetensors(r), r, /__metadata__\["x"\] must be a string/);
  });
  test("offsets out of range (truncated data)", () => {
    const p = rawFile("trunc.st", okHeader, 5);
    expectError(
      () => readSafetensors(p),
      p,
      /needs data bytes \[0, 8\) but the file holds only 5 data bytes: truncated/,
    );
    // a real file cut short
    const full = join(dir, "full.safetensors");
    const t = tensor([1, 2, 3, 4]);
    writeSafetensors(full, { t });
    const cut = join(dir, "cut.safetensors");
    writeFileSync(cut, readFileSync(full).subarray(0, -3));
    expectError(() => readSafetensors(cut), cut, /truncated file/);
    t.dispose();
  });
  test("overlapping tensors", () => {
    const h = {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] },
      b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
    };
    const p = rawFile("overlap.st", h, 12);
    expectError(() => readSafetensors(p), p, /tensors "a" and "b" overlap/);
  });
  test("gap and trailing bytes (data not covered)", () => {
    const h = {
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] },
      b: { dtype: "F32", shape: [1], data_offsets: [8, 12] },
    };
    const p = rawFile("gap.st", h, 12);
    expectError(() => readSafetensors(p), p, /data bytes \[4, 8\) belong to no tensor/);
    const q = rawFile("trail.st", okHeader, 12);
    expectError(() => readSafetensors(q), q, /4 trailing data bytes after the last tensor/);
  });
  test("missing file", () => {
    const p = join(dir, "absent.safetensors");
    expectError(() => readSafetensors(p), p, /no such file/);
  });
});

// ---- PyTorch cross-check ------------------------------------------------------------------------------

const PY = "/usr/bin/python3";
const hasTorch = existsSync(PY) && spawnSync(PY, ["-c", "import torch"], { encoding: "utf8" }).status === 0;

const PY_SCRIPT = `
import json, struct, sys, torch
ours, theirs = sys.argv[1], sys.argv[2]
samples = json.loads(sys.argv[3])
TD = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16,
      "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8, "I8": torch.int8, "BOOL": torch.bool}
NAMES = {"f32": "F32", "f64": "F64", "f16": "F16", "bf16": "BF16", "i64": "I64", "i32": "I32", "u8": "U8", "i8": "I8", "bool": "BOOL"}
def expected(dt):
    vals = samples[dt]
    if dt == "bool": return torch.tensor([bool(v) for v in vals]).reshape(2, 3)
    if dt in ("i64", "i32", "u8", "i8"): return torch.tensor([int(v) for v in vals], dtype=TD[NAMES[dt]]).reshape(2, 3)
    return torch.tensor(vals, dtype=torch.float64).to(TD[NAMES[dt]]).reshape(2, 3)
# 1) read the file Cohort wrote
raw = open(ours, "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
assert n % 8 == 0, n
header = json.loads(raw[8:8 + n])
assert header.pop("__metadata__") == {"format": "pt"}
data = raw[8 + n:]
for dt, st in NAMES.items():
    e = header["t_" + dt]
    assert e["dtype"] == st and e["shape"] == [2, 3], e
    b, end = e["data_offsets"]
    t = torch.frombuffer(bytearray(data[b:end]), dtype=TD[st]).reshape(e["shape"])
    assert torch.equal(t, expected(dt)), (dt, t, expected(dt))
# 2) write a file the way PyTorch users do (names in insertion order, not Cohort's order)
tensors = {"z_" + dt: expected(dt) for dt in NAMES}
tensors["scalar"] = torch.tensor(2.5, dtype=torch.bfloat16)
hdr, blobs, off = {"__metadata__": {"format": "pt", "src": "torch"}}, [], 0
for name, t in tensors.items():
    bts = t.contiguous().view(torch.uint8).numpy().tobytes() if t.dim() > 0 else t.reshape(1).view(torch.uint8).numpy().tobytes()
    hdr[name] = {"dtype": {v: k for k, v in TD.items()}[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(bts)]}
    blobs.append(bts); off += len(bts)
hj = json.dumps(hdr).encode()
hj += b" " * ((8 - len(hj) % 8) % 8)
open(theirs, "wb").write(struct.pack("<Q", len(hj)) + hj + b"".join(blobs))
print("OK")
`;

test(
  "PyTorch reads what we write and we read what it writes",
  { skip: !hasTorch && "no /usr/bin/python3 with torch" },
  () => {
    const ours = join(dir, "ours.safetensors");
    const theirs = join(dir, "theirs.safetensors");
    const ts = sampleTensors();
    writeSafetensors(ours, ts, { format: "pt" });
    const r = spawnSync(PY, ["-c", PY_SCRIPT, ours, theirs, JSON.stringify(SAMPLES)], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "OK");
    const { tensors, metadata } = readSafetensors(theirs);
    assert.deepEqual(metadata, { format: "pt", src: "torch" });
    for (const dt of DTYPES) {
      const t = tensors[`z_${dt}`] as Tensor;
      assert.equal(t.dtype, dt);
      assert.deepEqual(t.shape, [2, 3]);
      assert.deepEqual(t.bytes(), ts[`t_${dt}`]?.bytes(), dt);
    }
    assert.deepEqual(tensors.scalar?.shape, []);
    assert.equal(tensors.scalar?.dtype, "bf16");
    assert.equal(tensors.scalar?.item(), 2.5);
    dispose([ts, tensors]);
  },
);
