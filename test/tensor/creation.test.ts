// Creation, data access, dtypes and seeded randomness (against PyTorch's generators with the same seeds).
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { CohortError, NativeError } from "../../src/errors.js";
import {
  arange,
  cudaAvailable,
  type DType,
  fromBytes,
  full,
  Generator,
  getNumThreads,
  getRngState,
  liveTensors,
  manualSeed,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  scalar,
  setNumThreads,
  setRngState,
  tensor,
  tidy,
  torchVersion,
  zeros,
  zerosLike,
} from "../../src/tensor/index.js";
import { assertClose, type OracleResult, type PyTensor, runOracle } from "../helpers/oracle.js";

const f16 = (x: number): number => {
  // Round-to-nearest-even to binary16, for the expected values of f16 tensors.
  if (x === 0 || !Number.isFinite(x)) return x;
  const e = Math.max(Math.floor(Math.log2(Math.abs(x))), -14);
  const q = 2 ** (e - 10);
  const r = x / q;
  const f = Math.floor(r);
  const d = r - f;
  const n = d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f;
  return n * q;
};

describe("tensor(): nested arrays for every dtype", () => {
  const data = [
    [0.1, -2.5, 3],
    [1e-3, 255, -0],
  ];
  test("f32 (default for numbers) rounds to float32", () =>
    tidy(() => {
      const t = tensor(data);
      assert.equal(t.dtype, "f32");
      assert.deepEqual(t.shape, [2, 3]);
      assert.deepEqual(t.toArray(), data.flat().map(Math.fround));
      assert.ok(t.data() instanceof Float32Array);
    }));
  test("f64 keeps every bit", () =>
    tidy(() => {
      const t = tensor(data, { dtype: "f64" });
      assert.equal(t.dtype, "f64");
      assert.deepEqual(t.toArray(), data.flat());
      assert.ok(t.data() instanceof Float64Array);
    }));
  test("f16 rounds to binary16; data() gives the raw bits", () =>
    tidy(() => {
      const t = tensor([0.1, -2.5, 1, 65504, 1e-3], { dtype: "f16" });
      assert.equal(t.dtype, "f16");
      assert.deepEqual(t.toArray(), [0.1, -2.5, 1, 65504, 1e-3].map(f16));
      const bits = t.data();
      assert.ok(bits instanceof Uint16Array);
      assert.equal(bits[1], 0xc100); // -2.5
      assert.equal(bits[2], 0x3c00); // 1
      assert.equal(bits[3], 0x7bff); // 65504
    }));
  test("bf16 keeps the f32 exponent; data() gives the raw bits", () =>
    tidy(() => {
      const t = tensor([1, -2, 0.1, 3e38], { dtype: "bf16" });
      assert.equal(t.dtype, "bf16");
      const bits = t.data();
      assert.ok(bits instanceof Uint16Array);
      assert.deepEqual(Array.from(bits.slice(0, 3)), [0x3f80, 0xc000, 0x3dcd]);
      assertClose(t.toArray(), [1, -2, 0.10009765625, 3e38], { rtol: 4e-3, atol: 0 });
      assert.equal(t.toArray()[2], 0.10009765625);
    }));
  test("i64 holds values beyond 2^31 and truncates fractions toward zero", () =>
    tidy(() => {
      const t = tensor([2 ** 40 + 3, -7, 2.9, -2.9], { dtype: "i64" });
      assert.equal(t.dtype, "i64");
      assert.deepEqual(t.toArray(), [2 ** 40 + 3, -7, 2, -2]);
      const d = t.data();
      assert.ok(d instanceof BigInt64Array);
      assert.equal(d[0], 2n ** 40n + 3n);
    }));
  test("i32", () =>
    tidy(() => {
      const t = tensor(
        [
          [2 ** 31 - 1, -(2 ** 31)],
          [0, 5],
        ],
        { dtype: "i32" },
      );
      assert.equal(t.dtype, "i32");
      assert.deepEqual(t.tolist(), [
        [2 ** 31 - 1, -(2 ** 31)],
        [0, 5],
      ]);
      assert.ok(t.data() instanceof Int32Array);
    }));
  test("u8", () =>
    tidy(() => {
      const t = tensor([0, 7, 255], { dtype: "u8" });
      assert.equal(t.dtype, "u8");
      assert.deepEqual(t.toArray(), [0, 7, 255]);
      assert.ok(t.data() instanceof Uint8Array);
    }));
  test("bool (default for booleans), also from numbers", () =>
    tidy(() => {
      const t = tensor([
        [true, false],
        [false, true],
      ]);
      assert.equal(t.dtype, "bool");
      assert.deepEqual(t.tolist(), [
        [1, 0],
        [0, 1],
      ]);
      assert.deepEqual(tensor([0, 2, -1], { dtype: "bool" }).toArray(), [0, 1, 1]);
    }));
  test("explicit shape reshapes flat data; empty and 0-d shapes", () =>
    tidy(() => {
      assert.deepEqual(tensor([1, 2, 3, 4, 5, 6], { shape: [3, 2] }).tolist(), [
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const e = tensor([]);
      assert.deepEqual(e.shape, [0]);
      assert.equal(e.size, 0);
      assert.deepEqual(e.toArray(), []);
      const s = tensor([42], { shape: [] });
      assert.deepEqual(s.shape, []);
      assert.equal(s.ndim, 0);
      assert.equal(s.tolist(), 42);
    }));
  test("ragged nested arrays are refused", () => {
    assert.throws(
      () => tensor([[1, 2], [3]]),
      (e: unknown) => e instanceof CohortError && /ragged/.test(e.message),
    );
    assert.throws(() => tensor([[1, 2], 3] as never), CohortError);
  });
  test("data that does not fill the shape is refused with a NativeError", () => {
    assert.throws(
      () => tensor([1, 2, 3], { shape: [2, 2] }),
      (e: unknown) => e instanceof NativeError && e.op === "fromBuffer" && /12 bytes/.test(e.message),
    );
  });
});

describe("tensor(): typed arrays", () => {
  test("the dtype is inferred from Float32Array, Float64Array, Int32Array, BigInt64Array", () =>
    tidy(() => {
      const cases: [ArrayLike<number> | BigInt64Array, DType][] = [
        [new Float32Array([1.5, -2]), "f32"],
        [new Float64Array([0.1, 1e300]), "f64"],
        [new Int32Array([-5, 2 ** 30]), "i32"],
        [new BigInt64Array([-1n, 2n ** 50n]), "i64"],
      ];
      for (const [data, dtype] of cases) {
        const t = tensor(data);
        assert.equal(t.dtype, dtype);
        assert.deepEqual(t.toArray(), Array.from(data as ArrayLike<number | bigint>, Number));
      }
    }));
  test("a typed array with a shape and a different dtype is converted", () =>
    tidy(() => {
      const t = tensor(new Float64Array([1.25, 2.5, -3.75, 4]), { shape: [2, 2], dtype: "f32" });
      assert.equal(t.dtype, "f32");
      assert.deepEqual(t.tolist(), [
        [1.25, 2.5],
        [-3.75, 4],
      ]);
      assert.deepEqual(tensor(new Float32Array([1.9, -1.9]), { dtype: "i64" }).toArray(), [1, -1]);
      assert.deepEqual(tensor(new Int32Array([3, 0]), { dtype: "bool" }).toArray(), [1, 0]);
      assert.deepEqual(tensor(new Uint8Array([3, 200]), { dtype: "u8" }).toArray(), [3, 200]);
      assert.deepEqual(tensor(new Float32Array([0.5, 3]), { dtype: "f16" }).data(), new Uint16Array([0x3800, 0x4200]));
    }));
  test("a subarray view (non-zero byteOffset) reads its own elements", () =>
    tidy(() => {
      const base = new Float64Array([9, 8, 7, 6, 5]);
      assert.deepEqual(tensor(base.subarray(2, 4)).toArray(), [7, 6]);
      const ints = new Int32Array([1, 2, 3, 4, 5, 6]);
      assert.deepEqual(tensor(ints.subarray(1), { shape: [5] }).toArray(), [2, 3, 4, 5, 6]);
    }));
  test("a Uint8Array infers u8, as documented ('matching typed arrays otherwise')", () =>
    tidy(() => {
      assert.equal(tensor(new Uint8Array([1, 2])).dtype, "u8");
    }));
  test("data is copied: later writes to the source do not change the tensor", () =>
    tidy(() => {
      const src = new Float32Array([1, 2, 3]);
      const t = tensor(src);
      src[0] = 100;
      assert.deepEqual(t.toArray(), [1, 2, 3]);
      const d = t.data() as Float32Array;
      d[1] = 50;
      assert.deepEqual(t.toArray(), [1, 2, 3]);
    }));
});

describe("data access", () => {
  test("bytes() is little-endian row-major and fromBytes() inverts it for every dtype", () =>
    tidy(() => {
      assert.deepEqual(Array.from(tensor([1]).bytes()), [0, 0, 0x80, 0x3f]);
      assert.deepEqual(Array.from(tensor([1], { dtype: "i32" }).bytes()), [1, 0, 0, 0]);
      assert.deepEqual(Array.from(tensor([258], { dtype: "i64" }).bytes()), [2, 1, 0, 0, 0, 0, 0, 0]);
      const values = [0, 1, -2, 3.5, 100, -0.25];
      for (const dtype of ["f32", "f64", "f16", "bf16", "i64", "i32", "i8", "u8", "bool"] as DType[]) {
        const vals = dtype === "u8" ? values.map((v) => Math.abs(Math.trunc(v))) : values;
        const t = tensor(vals, { dtype, shape: [2, 3] });
        const b = t.bytes();
        const elem = { f32: 4, f64: 8, f16: 2, bf16: 2, i64: 8, i32: 4, i8: 1, u8: 1, bool: 1 }[dtype];
        assert.equal(b.length, 6 * elem, `${dtype} byte length`);
        const back = fromBytes(b, [2, 3], dtype);
        assert.equal(back.dtype, dtype);
        assert.deepEqual(back.shape, [2, 3]);
        assert.deepEqual(back.toArray(), t.toArray(), `${dtype} round trip`);
      }
    }));
  test("bytes() of a non-contiguous tensor is row-major in its logical order", () =>
    tidy(() => {
      const t = tensor([
        [1, 2],
        [3, 4],
      ]).T;
      assert.deepEqual(Array.from(new Float32Array(t.bytes().slice().buffer)), [1, 3, 2, 4]);
      assert.deepEqual(t.toArray(), [1, 3, 2, 4]);
      assert.deepEqual(t.tolist(), [
        [1, 3],
        [2, 4],
      ]);
    }));
  test("tolist() nests by shape; 0-d gives a number", () =>
    tidy(() => {
      const t = arange(24).reshape(2, 3, 4);
      const l = t.tolist() as number[][][];
      assert.equal(l.length, 2);
      assert.equal(l[1]?.length, 3);
      assert.deepEqual(l[1]?.[2], [20, 21, 22, 23]);
      assert.equal(scalar(2.5).tolist(), 2.5);
      assert.deepEqual(zeros([2, 0]).tolist(), [[], []]);
    }));
  test("item() for every dtype; bool gives 0/1; more than one element throws", () =>
    tidy(() => {
      assert.equal(scalar(0.1).item(), Math.fround(0.1));
      assert.equal(scalar(0.1, { dtype: "f64" }).item(), 0.1);
      assert.equal(scalar(-3, { dtype: "i64" }).item(), -3);
      assert.equal(scalar(-3, { dtype: "i32" }).item(), -3);
      assert.equal(scalar(200, { dtype: "u8" }).item(), 200);
      assert.equal(scalar(1.5, { dtype: "f16" }).item(), 1.5);
      assert.equal(scalar(1.5, { dtype: "bf16" }).item(), 1.5);
      assert.equal(scalar(1, { dtype: "bool" }).item(), 1);
      assert.equal(tensor([false]).item(), 0);
      assert.equal(tensor([[7]]).item(), 7);
      assert.throws(
        () => tensor([1, 2]).item(),
        (e: unknown) => e instanceof NativeError && e.op === "item" && /exactly one element/.test(e.message),
      );
    }));
  test("shape, ndim, size, dtype, device, toString", () =>
    tidy(() => {
      const t = zeros([2, 3, 4], { dtype: "i32" });
      assert.deepEqual(t.shape, [2, 3, 4]);
      assert.equal(t.ndim, 3);
      assert.equal(t.size, 24);
      assert.equal(t.dtype, "i32");
      assert.equal(t.device, "cpu");
      assert.equal(String(t), "Tensor(shape=[2,3,4], dtype=i32, device=cpu)");
      t.dispose();
      assert.equal(String(t), "Tensor(<disposed>)");
    }));
});

describe("constant creation", () => {
  test("scalar, zeros, ones, full, zerosLike, onesLike", () =>
    tidy(() => {
      const s = scalar(3.25, { dtype: "f64" });
      assert.deepEqual(s.shape, []);
      assert.equal(s.dtype, "f64");
      assert.equal(scalar(1).dtype, "f32");
      const z = zeros([2, 3]);
      assert.equal(z.dtype, "f32");
      assert.deepEqual(z.toArray(), [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(ones([2], { dtype: "i64" }).toArray(), [1, 1]);
      assert.equal(ones([2], { dtype: "i64" }).dtype, "i64");
      const f = full([3, 1], -1.5, { dtype: "f64" });
      assert.deepEqual(f.tolist(), [[-1.5], [-1.5], [-1.5]]);
      assert.deepEqual(full([2], 1, { dtype: "bool" }).toArray(), [1, 1]);
      assert.deepEqual(full([2], Number.NEGATIVE_INFINITY).toArray(), [-Infinity, -Infinity]);
      const like = zerosLike(f);
      assert.equal(like.dtype, "f64");
      assert.deepEqual(like.shape, [3, 1]);
      assert.deepEqual(like.toArray(), [0, 0, 0]);
      const o = onesLike(tensor([1, 2], { dtype: "u8" }));
      assert.equal(o.dtype, "u8");
      assert.deepEqual(o.toArray(), [1, 1]);
      assert.deepEqual(zeros([]).shape, []);
    }));
  test("arange: i64 for integer arguments, f32 otherwise, dtype option, negative step", () =>
    tidy(() => {
      const a = arange(5);
      assert.equal(a.dtype, "i64");
      assert.deepEqual(a.toArray(), [0, 1, 2, 3, 4]);
      assert.deepEqual(arange(2, 8, 3).toArray(), [2, 5]);
      const f = arange(0, 1, 0.25);
      assert.equal(f.dtype, "f32");
      assert.deepEqual(f.toArray(), [0, 0.25, 0.5, 0.75]);
      const d = arange(0, 3, 1, { dtype: "f64" });
      assert.equal(d.dtype, "f64");
      assert.deepEqual(d.toArray(), [0, 1, 2]);
      assert.deepEqual(arange(5, 0, -2).toArray(), [5, 3, 1]);
      assert.deepEqual(arange(0.5, 2).toArray(), [0.5, 1.5]);
      assert.deepEqual(arange(3, 3).shape, [0]);
    }));
});

describe("seeded randomness", () => {
  // The same seeds in PyTorch give the same streams (both use libtorch's CPU generator).
  let ref = new Map<string, OracleResult>();
  const js = new Map<string, PyTensor[]>();
  const snap = (t: { shape: number[]; dtype: string; toArray(): number[] }): PyTensor => ({
    shape: [...t.shape],
    dtype: t.dtype,
    values: Float64Array.from(t.toArray()),
  });

  before(() => {
    tidy(() => {
      manualSeed(1234);
      js.set(
        "global",
        [randn([3, 4]), rand([5], { dtype: "f64" }), randint(-3, 9, [7]), randn([17], { dtype: "f64" })].map(snap),
      );
      const g = new Generator(99);
      js.set(
        "generator",
        [
          randn([2, 3], { generator: g, dtype: "f64" }),
          rand([4], { generator: g }),
          randint(0, 100, [3, 2], { generator: g, dtype: "i32" }),
        ].map(snap),
      );
      const w = tensor([
        [1, 2, 7, 0],
        [5, 0, 5, 1],
      ]);
      const gm = new Generator(5);
      js.set("multinomial", [w.multinomial(8, true, gm), w.multinomial(3, false, gm)].map(snap));
    });
    ref = runOracle([
      {
        id: "global",
        inputs: {},
        code: `torch.manual_seed(1234)
out = (torch.randn(3, 4), torch.rand(5, dtype=torch.float64), torch.randint(-3, 9, (7,)), torch.randn(17, dtype=torch.float64))`,
      },
      {
        id: "generator",
        inputs: {},
        code: `g = torch.Generator().manual_seed(99)
out = (torch.randn(2, 3, generator=g, dtype=torch.float64), torch.rand(4, generator=g), torch.randint(0, 100, (3, 2), generator=g, dtype=torch.int32))`,
      },
      {
        id: "multinomial",
        inputs: {},
        code: `g = torch.Generator().manual_seed(5)
w = torch.tensor([[1., 2, 7, 0], [5, 0, 5, 1]])
out = (torch.multinomial(w, 8, True, generator=g), torch.multinomial(w, 3, False, generator=g))`,
      },
    ]);
  });

  for (const id of ["global", "generator", "multinomial"]) {
    test(`${id} stream matches PyTorch with the same seed`, () => {
      const mine = js.get(id) as PyTensor[];
      const theirs = (ref.get(id) as OracleResult).outs;
      assert.equal(mine.length, theirs.length);
      mine.forEach((m, k) => {
        const t = theirs[k] as PyTensor;
        assert.deepEqual(m.shape, t.shape, `output ${k} shape`);
        assert.equal(m.dtype, t.dtype, `output ${k} dtype`);
        assert.deepEqual(Array.from(m.values), Array.from(t.values), `output ${k} values`);
      });
    });
  }

  test("randn/rand/randint: default dtypes, ranges, shapes", () =>
    tidy(() => {
      manualSeed(3);
      assert.equal(randn([2]).dtype, "f32");
      assert.equal(rand([2]).dtype, "f32");
      const i = randint(2, 5, [1000]);
      assert.equal(i.dtype, "i64");
      assert.deepEqual(i.shape, [1000]);
      const vals = new Set(i.toArray());
      assert.deepEqual([...vals].sort(), [2, 3, 4]);
      const u = rand([1000], { dtype: "f64" }).toArray();
      assert.ok(Math.min(...u) >= 0 && Math.max(...u) < 1);
      const n = randn([4000], { dtype: "f64" });
      assert.ok(Math.abs(n.mean().item()) < 0.1, "mean of randn near 0");
      assert.ok(Math.abs(n.std().item() - 1) < 0.1, "std of randn near 1");
    }));

  test("the same global seed gives the same values; another seed differs", () =>
    tidy(() => {
      manualSeed(42);
      const a = randn([6]).toArray();
      const a2 = randint(0, 1000, [6]).toArray();
      manualSeed(42);
      assert.deepEqual(randn([6]).toArray(), a);
      assert.deepEqual(randint(0, 1000, [6]).toArray(), a2);
      manualSeed(43);
      assert.notDeepEqual(randn([6]).toArray(), a);
    }));

  test("a Generator is independent of the global stream and of other generators", () =>
    tidy(() => {
      const g1 = new Generator(7);
      const first = randn([5], { generator: g1 }).toArray();
      const g2 = new Generator(7);
      manualSeed(0);
      randn([100]); // advancing the global stream does not move g2
      new Generator(8);
      assert.deepEqual(randn([5], { generator: g2 }).toArray(), first);
      assert.notDeepEqual(randn([5], { generator: g1 }).toArray(), first, "a generator advances");
    }));

  test("Generator getState/setState restores the stream bit-exactly (also onto another generator)", () =>
    tidy(() => {
      const g = new Generator(2024);
      randn([3], { generator: g, dtype: "f64" }); // odd count: exercises any cached normal sample
      const state = g.getState();
      assert.ok(state instanceof Uint8Array && state.length > 0);
      const a = randn([7], { generator: g, dtype: "f64" }).bytes();
      const b = rand([5], { generator: g }).bytes();
      const c = randint(0, 50, [4], { generator: g }).bytes();
      const m = tensor([0.2, 0.3, 0.5]).multinomial(4, true, g).bytes();
      g.setState(state);
      assert.deepEqual(randn([7], { generator: g, dtype: "f64" }).bytes(), a);
      assert.deepEqual(rand([5], { generator: g }).bytes(), b);
      assert.deepEqual(randint(0, 50, [4], { generator: g }).bytes(), c);
      assert.deepEqual(tensor([0.2, 0.3, 0.5]).multinomial(4, true, g).bytes(), m);
      const other = new Generator(1);
      other.setState(state);
      assert.deepEqual(Buffer.from(other.getState()), Buffer.from(state), "getState returns what setState was given");
      assert.deepEqual(randn([7], { generator: other, dtype: "f64" }).bytes(), a);
    }));

  test("manualSeed + getRngState/setRngState restore the global stream", () =>
    tidy(() => {
      manualSeed(77);
      randn([1]);
      const s = getRngState();
      const a = randn([9], { dtype: "f64" }).bytes();
      const b = randint(0, 10, [9]).bytes();
      manualSeed(5);
      randn([50]);
      setRngState(s);
      assert.deepEqual(randn([9], { dtype: "f64" }).bytes(), a);
      assert.deepEqual(randint(0, 10, [9]).bytes(), b);
    }));

  test("multinomial: seeded, without replacement draws distinct indices, frequencies follow the weights", () =>
    tidy(() => {
      const w = tensor([1, 2, 7, 0]);
      const s1 = w.multinomial(10, true, new Generator(3)).toArray();
      assert.deepEqual(w.multinomial(10, true, new Generator(3)).toArray(), s1);
      const g = new Generator(11);
      for (let i = 0; i < 20; i++) {
        const d = w.multinomial(3, false, g).toArray();
        assert.equal(new Set(d).size, 3);
        assert.ok(!d.includes(3), "zero weight is never drawn");
      }
      const n = 20000;
      const draws = w.multinomial(n, true, g);
      assert.equal(draws.dtype, "i64");
      assert.deepEqual(draws.shape, [n]);
      const counts = [0, 0, 0, 0];
      for (const d of draws.toArray()) counts[d] = (counts[d] as number) + 1;
      assert.equal(counts[3], 0);
      // 4σ of a binomial proportion with n = 20000 is < 0.013.
      assertClose(
        counts.map((c) => c / n),
        [0.1, 0.2, 0.7, 0],
        { rtol: 0, atol: 0.013 },
        "frequencies",
      );
      const rows = tensor([
        [0, 0, 1],
        [1, 0, 0],
      ]).multinomial(2, true, g);
      assert.deepEqual(rows.tolist(), [
        [2, 2],
        [0, 0],
      ]);
      manualSeed(9);
      const viaGlobal = w.multinomial(6, true).toArray();
      manualSeed(9);
      assert.deepEqual(w.multinomial(6, true).toArray(), viaGlobal);
    }));
});

describe("runtime", () => {
  let threads = 1;
  before(() => {
    threads = getNumThreads();
  });
  after(() => setNumThreads(threads));
  test("torch version, threads, CUDA flag", () => {
    assert.match(torchVersion(), /^\d+\.\d+\.\d+$/);
    setNumThreads(1);
    assert.equal(getNumThreads(), 1);
    assert.equal(typeof cudaAvailable(), "boolean");
    assert.equal(typeof liveTensors(), "number");
  });
});
