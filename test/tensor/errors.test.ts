// Native errors: a NativeError that names the op and the inputs' shapes and dtypes; the process keeps running.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { CohortError, NativeError } from "../../src/errors.js";
import {
  attention,
  cat,
  cudaAvailable,
  type DType,
  embedding,
  randint,
  rmsNorm,
  setRngState,
  tensor,
  tidy,
  tokenLogprobs,
  where,
  zeros,
} from "../../src/tensor/index.js";

/** Asserts that `fn` throws a NativeError for `op` whose message contains every fragment. */
function throwsNative(fn: () => unknown, op: string, fragments: (string | RegExp)[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof NativeError, `expected a NativeError, got ${String(caught)}`);
  assert.ok(caught instanceof CohortError && caught instanceof Error);
  assert.equal(caught.name, "NativeError");
  assert.equal(caught.op, op);
  assert.ok(caught.message.startsWith(`${op}: `), `message starts with the op: ${caught.message}`);
  assert.doesNotMatch(caught.message, /Exception raised from/, "no C++ backtrace");
  for (const f of fragments) {
    if (typeof f === "string")
      assert.ok(caught.message.includes(f), `message ${JSON.stringify(caught.message)} lacks ${f}`);
    else assert.match(caught.message, f);
  }
}

test("matmul of incompatible shapes", () =>
  tidy(() => {
    throwsNative(() => zeros([2, 3]).matmul(zeros([4, 5])), "matmul", [
      "[2,3] f32",
      "[4,5] f32",
      /cannot be multiplied/,
    ]);
    throwsNative(() => zeros([2, 3, 4], { dtype: "f64" }).bmm(zeros([2, 5, 4], { dtype: "f64" })), "bmm", [
      "[2,3,4] f64",
      "[2,5,4] f64",
    ]);
    throwsNative(() => zeros([2, 3]).matmul(zeros([3, 2], { dtype: "f64" })), "matmul", ["[2,3] f32", "[3,2] f64"]);
  }));

test("add of non-broadcastable shapes", () =>
  tidy(() => {
    throwsNative(() => zeros([2, 3]).add(zeros([4], { dtype: "i64" })), "add", [
      "[2,3] f32",
      "[4] i64",
      /size of tensor/,
    ]);
    throwsNative(() => zeros([3]).mul(zeros([2])), "mul", ["[3] f32", "[2] f32"]);
  }));

test("cat of mismatched shapes names every input", () =>
  tidy(() => {
    throwsNative(() => cat([zeros([2, 3]), zeros([2, 4])]), "cat", [
      "[2,3] f32",
      "[2,4] f32",
      /[Ss]izes of tensors must match/,
    ]);
    throwsNative(() => cat([zeros([2, 3]), zeros([3])], 0), "cat", ["[2,3] f32", "[3] f32"]);
  }));

test("view of a non-contiguous tensor", () =>
  tidy(() => {
    throwsNative(() => zeros([3, 4]).T.view(12), "view", ["[4,3] f32", /reshape/]);
  }));

test("gather with an out-of-range index", () =>
  tidy(() => {
    throwsNative(() => zeros([2, 3]).gather(1, tensor([[0], [3]], { dtype: "i64" })), "gather", [
      "[2,3] f32",
      "[2,1] i64",
      /out of bounds/,
    ]);
    throwsNative(() => zeros([2, 3]).gather(1, tensor([[0], [1]], { dtype: "i32" })), "gather", ["[2,1] i32", /int64/]);
    throwsNative(() => zeros([2, 3]).scatterAdd(1, tensor([[0], [1]], { dtype: "i32" }), zeros([2, 1])), "scatterAdd", [
      "[2,1] i32",
      /int64/,
    ]);
    throwsNative(() => embedding(zeros([4, 2]), tensor([5], { dtype: "i64" })), "embedding", ["[4,2] f32", "[1] i64"]);
  }));

test("maskedFill with a mask that is not bool", () =>
  tidy(() => {
    throwsNative(() => zeros([2, 2]).maskedFill(tensor([1, 0]), 0), "maskedFill", ["bool", "[2,2] f32", "[2] f32"]);
    throwsNative(() => zeros([2, 2]).maskedFill(tensor([1, 0], { dtype: "u8" }), 0), "maskedFill", ["[2] u8"]);
  }));

test("other shape errors carry op and shapes", () =>
  tidy(() => {
    throwsNative(() => zeros([2, 3]).reshape(4, 2), "reshape", ["[2,3] f32"]);
    throwsNative(() => zeros([2, 3]).sum(5), "sum", ["[2,3] f32"]);
    throwsNative(() => zeros([2, 3]).narrow(1, 2, 5), "narrow", ["[2,3] f32"]);
    throwsNative(() => zeros([2]).expand(3), "expand", ["[2] f32"]);
    throwsNative(() => zeros([2, 3]).topk(4), "topk", ["[2,3] f32"]);
  }));

test("fused ops report shape and dtype errors under their own name", () =>
  tidy(() => {
    throwsNative(() => tokenLogprobs(zeros([2, 3]), tensor([1, 2], { dtype: "i32" })), "tokenLogprobs", [
      "[2,3] f32",
      "[2] i32",
      /int64/,
    ]);
    throwsNative(() => attention(zeros([1, 1, 2, 4]), zeros([1, 1, 3, 5]), zeros([1, 1, 3, 4])), "attention", [
      "[1,1,2,4] f32",
      "[1,1,3,5] f32",
    ]);
    throwsNative(() => rmsNorm(zeros([2, 4]), zeros([3]), 1e-6), "rmsNorm", ["[2,4] f32", "[3] f32"]);
    throwsNative(() => zeros([2]).clamp(null, null), "clamp", ["min", "max"]);
    throwsNative(() => zeros([2]).split([1, 2]), "split", ["[2] f32"]);
  }));

test("to(device): cpu is a no-op copy; cuda without CUDA names the problem", () =>
  tidy(() => {
    const t = tensor([1, 2]);
    const c = t.to("cpu");
    assert.equal(c.device, "cpu");
    assert.deepEqual(c.toArray(), [1, 2]);
    if (!cudaAvailable()) {
      throwsNative(() => t.to("cuda"), "toDev", ["CUDA is not available", "[2] f32"]);
      throwsNative(() => zeros([2], { device: "cuda:0" }), "full", ["CUDA is not available"]);
    }
  }));

test("bad arguments are refused with a message that says what is allowed", () =>
  tidy(() => {
    throwsNative(() => zeros([2], { dtype: "f8" as DType }), "full", ["unknown dtype 'f8'", "allowed"]);
    throwsNative(() => zeros([2], { device: "tpu" as never }), "full", ["unknown device 'tpu'"]);
    throwsNative(() => zeros([2.5]), "full", ["non-integer"]);
  }));

test("the process keeps running after native errors, and later ops work", () =>
  tidy(() => {
    for (let i = 0; i < 50; i++) {
      assert.throws(() => zeros([2, 3]).matmul(zeros([4, 5])), NativeError);
    }
    assert.deepEqual(
      tensor([1, 2])
        .add(tensor([3, 4]))
        .toArray(),
      [4, 6],
    );
  }));

test("using a disposed tensor throws a clear error; disposing twice is harmless", () => {
  const a = tensor([1, 2]);
  const b = tensor([3, 4]);
  a.dispose();
  assert.equal(a.disposed, true);
  a.dispose();
  throwsNative(() => b.add(a), "add", ["was disposed", "keep()", "<disposed>"]);
  throwsNative(() => a.bytes(), "toBuffer", ["was disposed"]);
  assert.throws(
    () => a.toArray(),
    (e: unknown) => e instanceof NativeError && /was disposed/.test(e.message),
  );
  throwsNative(() => a.item(), "item", ["was disposed"]);
  throwsNative(() => a.dtype, "dtype", ["was disposed"]);
  throwsNative(() => cat([b, a]), "cat", ["list element was disposed", "[2] f32", "<disposed>"]);
  throwsNative(() => b.mul(2).matmul(a), "matmul", ["was disposed"]);
  b.dispose();
  const c = tensor([[1, 2]]);
  c.dispose();
  throwsNative(() => c.shape, "shape", ["was disposed"]);
});

test("backward on a tensor without grad explains why", () =>
  tidy(() => {
    throwsNative(() => tensor([1, 2]).sum().backward(), "backward", ["does not require grad", "noGrad", "[] f32"]);
  }));

test("where() with two number branches is refused", () =>
  tidy(() => {
    throwsNative(() => where(tensor([true, false]), 1, 2), "where", ["at least one tensor", "[2] bool"]);
  }));

/** Runs `body` (with the facade bound to `T`) in a child process, so that a native abort cannot take this one down. */
function inChild(body: string): { status: number | null; signal: string | null; out: string } {
  const facade = fileURLToPath(new URL("../../src/tensor/index.ts", import.meta.url));
  const code = `const T = await import(${JSON.stringify(facade)});\n${body}`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", code], { encoding: "utf8" });
  return { status: r.status, signal: r.signal, out: `${r.stdout}${r.stderr}` };
}

test("the child-process harness reports a thrown NativeError", () => {
  const r = inChild(`try { T.zeros([2]).matmul(T.zeros([3])); } catch (e) { console.log(e.name, e.op); }`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /NativeError matmul/);
});

test("maximum/minimum of two numbers throw instead of aborting the process", () => {
  const r = inChild(
    `for (const fn of ["maximum", "minimum"]) { try { T[fn](1, 2); } catch (e) { console.log(e.name, e.op); } }`,
  );
  assert.equal(r.signal, null, `maximum(1, 2) / minimum(1, 2) killed the process: ${r.out}`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /NativeError maximum\nNativeError minimum/);
});

test("errors in ops given a Generator throw instead of crashing the process", () => {
  const r = inChild(
    [
      "const g = new T.Generator(1);",
      "const calls = [() => T.randint(5, 2, [3], { generator: g }), () => T.tensor([1, 2]).multinomial(3, false, g), () => g.setState(new Uint8Array(10))];",
      "for (const c of calls) { try { c(); console.log('no error'); } catch (e) { console.log(e.name, e.op); } }",
    ].join("\n"),
  );
  assert.equal(r.signal, null, `an op with a generator crashed the process: ${r.out}`);
  assert.equal(r.status, 0, r.out);
  assert.match(r.out, /NativeError randint\nNativeError multinomial\nNativeError genSetState/);
});

test("the same errors without a Generator throw a NativeError", () =>
  tidy(() => {
    throwsNative(() => randint(5, 2, [3]), "randint", ["from"]);
    throwsNative(() => tensor([1, 2]).multinomial(3, false), "multinomial", ["[2] f32"]);
    throwsNative(() => setRngState(new Uint8Array(10)), "genSetState", ["10 bytes, expected"]);
  }));
