#!/usr/bin/env bash
# Cohort on a GPU machine, in one go (docs/GPU.md):
#   1. records the machine (GPU, driver, torch, CUDA, NCCL);
#   2. builds the addon against the CUDA libtorch of a pip torch (LIBTORCH=<site-packages>/torch) and the
#      TypeScript;
#   3. runs the CUDA op tests (test/cuda: ops on cuda vs CPU, NCCL with 2+ GPUs), the tensor and model tests and
#      the data-parallel tests on that build;
#   4. bench:core on the GPU against PyTorch on the same GPU, and bench:decode on the GPU (fp32 and bf16) and
#      on the CPU;
#   5. short training runs with `model.device: cuda` (fp32, then bf16), the same run on the CPU, a 2-rank run
#      on the CPU (--nproc 2, Gloo) and, with 2+ GPUs, a 2-rank run on cuda (NCCL);
#   6. writes every log and summary.jsonl to runs/gpu-check/<UTC time>/ (COHORT_GPU_OUT to choose).
#
# Usage: bash scripts/gpu-check.sh [python]      python: one whose torch has CUDA (default: python3)
# Steps run on after a failure; the exit code is the number of failed steps. The build left in build/ is the
# CUDA one: run `npm run build:native` (without LIBTORCH) to go back to the Debian libtorch.
set -uo pipefail
cd "$(dirname "$0")/.."

PY=${1:-${PYTHON:-python3}}
OUT=${COHORT_GPU_OUT:-runs/gpu-check/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SUMMARY="$OUT/summary.jsonl"
: > "$SUMMARY"
failures=0

# step NAME COMMAND…: runs it with output in $OUT/NAME.log; records rc, seconds and the log's last JSON line.
step() {
  local name=$1
  shift
  printf '== %s … ' "$name"
  local t0=$SECONDS
  "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  local secs=$((SECONDS - t0))
  local last
  last=$(grep -E '^\{.*\}$' "$OUT/$name.log" | tail -n 1)
  [ -n "$last" ] || last=null
  printf '{"step":"%s","rc":%d,"seconds":%d,"result":%s}\n' "$name" "$rc" "$secs" "$last" >> "$SUMMARY"
  if [ "$rc" -eq 0 ]; then echo "ok (${secs} s)"; else
    echo "FAILED rc=$rc (${secs} s): see $OUT/$name.log"
    failures=$((failures + 1))
  fi
  return $rc
}

machine() {
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: not found"
  "$PY" - <<'EOF'
import json, torch
nccl = None
try:
    nccl = ".".join(map(str, torch.cuda.nccl.version()))
except Exception:
    pass
print(json.dumps({
    "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
    "gpus": torch.cuda.device_count(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    "nccl": nccl, "torch_dir": torch.__path__[0],
}))
EOF
}
step machine machine

TORCH_DIR=$("$PY" -c "import torch, sys; sys.stdout.write(torch.__path__[0])") || {
  echo "gpu-check: $PY cannot import torch; pass a Python whose torch has CUDA: bash scripts/gpu-check.sh /path/to/python"
  exit 1
}
export LIBTORCH="$TORCH_DIR"
export BENCH_PYTHON="$PY"

build() {
  [ -d node_modules ] || npm ci --ignore-scripts --no-audit --no-fund || return 1
  node scripts/libtorch.mjs describe
  npx node-gyp rebuild -j "$(nproc)" || return 1
  npx tsc -p tsconfig.build.json || return 1
  node --import tsx --input-type=module -e '
    const t = await import("./src/tensor/index.ts");
    const d = await import("./src/parallel/group.ts");
    console.log(JSON.stringify({ torch: t.torchVersion(), cuda: t.cudaAvailable(), backends: d.availableBackends() }));
  '
}
step build build || { echo "gpu-check: the build failed; nothing else can run"; exit 1; }

step test-cuda node scripts/test.mjs test/cuda
step test-tensor-model node scripts/test.mjs test/tensor test/model
step test-dist node scripts/test.mjs test/parallel

step bench-core-cuda env BENCH_DEVICE=cuda npm run bench:core
step bench-decode-cuda env BENCH_DEVICE=cuda npm run bench:decode
step bench-decode-cuda-bf16 env BENCH_DEVICE=cuda BENCH_PRECISION=bf16 npm run bench:decode
step bench-decode npm run bench:decode

# A short run of the shipped arithmetic model (5 steps, 8 prompts × 8 completions).
cat > "$OUT/train.yaml" <<EOF
name: gpu-check
outputDir: $OUT/runs
seed: 0
model: {path: $PWD/models/arithmetic-tiny}
task: {name: arithmetic, options: {ops: {add: 1, sub: 1}, digits: [1, 2]}}
algo: {regularizers: []}
train: {steps: 5, promptsPerStep: 8, groupSize: 8, lr: 3.0e-5}
sampling: {maxNewTokens: 24}
eval: {everySteps: 5, problems: 64}
checkpoint: {everySteps: 0}
EOF
train() { node --import tsx src/cli/main.ts train "$OUT/train.yaml" --quiet "$@"; }
step train-cuda train --set model.device=cuda --set name=cuda
step train-cuda-bf16 train --set model.device=cuda --set model.precision=bf16 --set name=cuda-bf16
step train-cpu train --set name=cpu
step train-2-ranks train --set name=ranks --nproc 2
gpus=$("$PY" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null || echo 0)
if [ "${gpus:-0}" -ge 2 ]; then
  step train-2-ranks-nccl train --set model.device=cuda --set name=ranks-nccl --nproc 2 --dist-backend nccl
fi

echo "results: $OUT (summary.jsonl: one line per step; paste the figures into docs/GPU.md)"
exit $failures
