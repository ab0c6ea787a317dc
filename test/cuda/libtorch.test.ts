// scripts/libtorch.mjs on pip-torch layouts (fake trees: the header and library files exist, empty): the C++ ABI
// of the wheel, and with CUDA the nvidia-* include folders and the NCCL switch of native/dist.cc.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";

interface Found {
  source: string;
  includes: string[];
  libdir: string;
  libs: string[];
  defines: string[];
}

function touch(path: string, text = ""): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** A site-packages folder with torch/ (include, lib, share) and optionally nvidia/<pkg>/include. */
function fakeSite(opts: { cuda: boolean; nccl: boolean; abi0: boolean }): string {
  const site = mkdtempSync(join(tmpdir(), "cohort-site-"));
  const torch = join(site, "torch");
  touch(join(torch, "include", "torch", "csrc", "api", "include", "torch", "torch.h"));
  touch(join(torch, "lib", "libc10.so"), opts.abi0 ? "_ZNSs4_Rep" : "_ZNSt7__cxx1112basic_string");
  touch(join(torch, "lib", "libtorch_cpu.so"));
  if (opts.abi0)
    touch(
      join(torch, "share", "cmake", "Torch", "TorchConfig.cmake"),
      'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n',
    );
  if (opts.cuda) {
    touch(join(torch, "lib", "libtorch_cuda.so"));
    touch(join(torch, "lib", "libc10_cuda.so"));
    touch(join(site, "nvidia", "cuda_runtime", "include", "cuda_runtime_api.h"));
    touch(join(site, "nvidia", "cublas", "include", "cublas_v2.h"));
  }
  if (opts.nccl) touch(join(site, "nvidia", "nccl", "include", "nccl.h"));
  return torch;
}

function describe(libtorch: string): Found {
  const out = execFileSync(process.execPath, ["scripts/libtorch.mjs", "describe"], {
    env: { ...process.env, LIBTORCH: libtorch, CUDA_HOME: "/nonexistent", NCCL_HOME: "/nonexistent" },
    encoding: "utf8",
  });
  return JSON.parse(out) as Found;
}

const systemNccl = existsSync("/usr/local/cuda/include/nccl.h") || existsSync("/usr/include/nccl.h");

test("pip torch on CPU: the wheel's C++ ABI becomes a define (TorchConfig.cmake, else libc10's symbols)", () => {
  const old = describe(fakeSite({ cuda: false, nccl: false, abi0: true }));
  assert.equal(old.source, "LIBTORCH");
  assert.deepEqual(old.defines, ["_GLIBCXX_USE_CXX11_ABI=0"]);
  assert.deepEqual(old.libs, ["-lc10", "-ltorch_cpu", "-ltorch"]);
  const recent = describe(fakeSite({ cuda: false, nccl: false, abi0: false }));
  assert.deepEqual(recent.defines, ["_GLIBCXX_USE_CXX11_ABI=1"]);
});

test("pip torch with CUDA and NCCL headers: CUDA libraries, nvidia include folders, COHORT_NCCL", () => {
  const torch = fakeSite({ cuda: true, nccl: true, abi0: false });
  const f = describe(torch);
  assert.deepEqual(f.libs, ["-lc10", "-ltorch_cpu", "-ltorch", "-ltorch_cuda", "-lc10_cuda"]);
  assert.deepEqual(f.defines, ["_GLIBCXX_USE_CXX11_ABI=1", "COHORT_CUDA=1", "COHORT_NCCL=1"]);
  const nvidia = join(dirname(torch), "nvidia");
  for (const p of ["cublas", "cuda_runtime", "nccl"]) assert.ok(f.includes.includes(join(nvidia, p, "include")), p);
});

test(
  "pip torch with CUDA but no nccl.h: CUDA without the NCCL path",
  { skip: systemNccl && "nccl.h is installed system-wide" },
  () => {
    const f = describe(fakeSite({ cuda: true, nccl: false, abi0: false }));
    assert.ok(f.defines.includes("COHORT_CUDA=1"));
    assert.ok(!f.defines.includes("COHORT_NCCL=1"));
  },
);

test("this machine's libtorch is found and described", () => {
  const f = JSON.parse(
    execFileSync(process.execPath, ["scripts/libtorch.mjs", "describe"], { encoding: "utf8" }),
  ) as Found;
  assert.ok(f.libs.includes("-ltorch_cpu"));
  assert.ok(f.includes.length > 0);
});
