// `cohort serve --device/--precision`: bad values and CUDA on a build without it are refused before the
// model loads, with the flag and the fix named.
import assert from "node:assert/strict";
import { test } from "node:test";
import { run } from "../../src/cli/main.js";
import { cudaAvailable } from "../../src/tensor/index.js";

async function errorsOf(args: string[]): Promise<{ code: number; err: string }> {
  const lines: string[] = [];
  const err = console.error;
  console.error = (l: unknown) => lines.push(String(l));
  try {
    return { code: await run(["serve", "models/arithmetic-tiny", "--port", "0", ...args]), err: lines.join("\n") };
  } finally {
    console.error = err;
  }
}

test("serve: --device and --precision refuse unknown values by name", async () => {
  const a = await errorsOf(["--device", "gpu"]);
  assert.equal(a.code, 2);
  assert.match(a.err, /--device: expected cpu, cuda or cuda:N, got "gpu"/);
  const b = await errorsOf(["--precision", "fp16"]);
  assert.equal(b.code, 2);
  assert.match(b.err, /--precision: expected fp32, bf16 or int8, got "fp16"/);
});

test("serve: --device cuda on a build without CUDA names the fix", { skip: cudaAvailable() }, async () => {
  const r = await errorsOf(["--device", "cuda"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device cuda: this build of the native addon has no usable CUDA[\s\S]*docs\/GPU\.md/);
});
