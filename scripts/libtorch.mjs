#!/usr/bin/env node
// Finds libtorch for the native build, in the order of tch-rs:
//   1. LIBTORCH=/path (a directory with include/ and lib/)
//   2. Debian's libtorch-dev (/usr/include/torch + /usr/lib/<triplet>)
//   3. a pip torch (python3 -c "import torch; print(torch.__path__[0])"), which carries CUDA builds.
// A pip torch (LIBTORCH=<site-packages>/torch, or found through python3) needs two more things, handled here:
//   - its C++ ABI: older wheels were built with _GLIBCXX_USE_CXX11_ABI=0 (their TorchConfig.cmake says so; else
//     libc10.so is checked for __cxx11 symbols), and the addon must match it;
//   - with CUDA (libtorch_cuda.so), the CUDA and NCCL headers of the wheel's nvidia-* packages (or CUDA_HOME,
//     NCCL_HOME, /usr/local/cuda) so native/dist.cc can build its ProcessGroupNCCL path (COHORT_NCCL).
// Usage: node scripts/libtorch.mjs include|libdir|libs|defines|describe
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

function fromRoot(root, source) {
  const inc = join(root, "include");
  const lib = join(root, "lib");
  if (!existsSync(join(inc, "torch", "csrc", "api", "include", "torch", "torch.h"))) return null;
  return { source, includes: [inc, join(inc, "torch", "csrc", "api", "include")], libdir: lib };
}

function debian() {
  const inc = "/usr/include";
  if (!existsSync(join(inc, "torch", "csrc", "api", "include", "torch", "torch.h"))) return null;
  for (const triplet of ["x86_64-linux-gnu", "aarch64-linux-gnu"]) {
    const lib = `/usr/lib/${triplet}`;
    if (existsSync(join(lib, "libtorch_cpu.so"))) {
      return { source: "debian", includes: [join(inc, "torch", "csrc", "api", "include")], libdir: lib };
    }
  }
  return null;
}

function pip() {
  for (const py of [process.env.PYTHON, "python3", "/usr/bin/python3"].filter(Boolean)) {
    try {
      const root = execFileSync(py, ["-c", "import torch, sys; sys.stdout.write(torch.__path__[0])"], {
        stdio: ["ignore", "pipe", "ignore"],
        encoding: "utf8",
      }).trim();
      // Debian's python3-torch points back at the system libtorch; skip it here.
      if (root && !root.startsWith("/usr/lib/python3/")) {
        const found = fromRoot(root, `pip (${py})`);
        if (found) return found;
      }
    } catch {}
  }
  return null;
}

function find() {
  if (process.env.LIBTORCH) {
    const found = fromRoot(process.env.LIBTORCH, "LIBTORCH");
    if (!found) {
      throw new Error(
        `LIBTORCH=${process.env.LIBTORCH} has no include/torch/csrc/api/include/torch/torch.h. ` +
          "Point LIBTORCH at an unpacked libtorch (with include/ and lib/), or unset it to use Debian's libtorch-dev.",
      );
    }
    return found;
  }
  const found = debian() ?? pip();
  if (!found) {
    throw new Error(
      "libtorch not found. Run `bash setup.sh` (installs Debian's libtorch-dev), or set LIBTORCH to an unpacked " +
        "libtorch, or install a pip torch visible to python3.",
    );
  }
  return found;
}

/** 0 or 1 when libtorch was built with a known _GLIBCXX_USE_CXX11_ABI, else null (Debian: the system default). */
function cxx11Abi(root, libdir) {
  const cmake = join(root, "share", "cmake", "Torch", "TorchConfig.cmake");
  if (existsSync(cmake)) {
    const m = /_GLIBCXX_USE_CXX11_ABI=([01])/.exec(readFileSync(cmake, "utf8"));
    if (m) return Number(m[1]);
  }
  const c10 = join(libdir, "libc10.so");
  if (!existsSync(c10)) return null;
  return readFileSync(c10).includes("__cxx11") ? 1 : 0;
}

/** Include folders with the CUDA runtime and NCCL headers, or null when either is missing. */
function cudaIncludes(root) {
  const dirs = [];
  // a pip torch: site-packages/nvidia/<package>/include (cuda_runtime, cublas, cusparse, nccl, …)
  const nvidia = join(root, "..", "nvidia");
  if (existsSync(nvidia)) {
    for (const p of readdirSync(nvidia).sort()) {
      const inc = join(nvidia, p, "include");
      if (existsSync(inc)) dirs.push(inc);
    }
  }
  for (const home of [process.env.NCCL_HOME, process.env.CUDA_HOME, "/usr/local/cuda"].filter(Boolean)) {
    const inc = join(home, "include");
    if (existsSync(inc)) dirs.push(inc);
  }
  const found = (file) => [...dirs, "/usr/include"].some((d) => existsSync(join(d, file)));
  return found("cuda_runtime_api.h") && found("nccl.h") ? dirs : null;
}

const lt = find();
const files = existsSync(lt.libdir) ? readdirSync(lt.libdir) : [];
const has = (name) => files.includes(name);
const libs = ["-lc10", "-ltorch_cpu", "-ltorch"];
const defines = [];
if (lt.source !== "debian") {
  const abi = cxx11Abi(dirname(lt.libdir), lt.libdir);
  if (abi !== null) defines.push(`_GLIBCXX_USE_CXX11_ABI=${abi}`);
}
if (has("libtorch_cuda.so")) {
  libs.push("-ltorch_cuda");
  if (has("libc10_cuda.so")) libs.push("-lc10_cuda");
  defines.push("COHORT_CUDA=1");
  const inc = cudaIncludes(dirname(lt.libdir));
  if (inc !== null) {
    lt.includes.push(...inc);
    defines.push("COHORT_NCCL=1");
  }
}
const what = process.argv[2] ?? "describe";
if (what === "include") console.log(lt.includes.join(" "));
else if (what === "libdir") console.log(lt.libdir);
else if (what === "libs")
  console.log([`-L${lt.libdir}`, `-Wl,-rpath,${lt.libdir}`, "-Wl,--no-as-needed", ...libs].join(" "));
else if (what === "defines") console.log(defines.join(" "));
else console.log(JSON.stringify({ ...lt, libs, defines }));
