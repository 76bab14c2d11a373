#!/usr/bin/env bash
# One command for a machine with an NVIDIA GPU (about 5-8 minutes): builds the addon with the
# CUDA plugin, compiles the TypeScript, runs the CUDA-vs-CPU parity tests, and prints our
# training, forward and Algorithm-2 sweep throughput beside PyTorch with cuDNN on the same
# card, measured in the same run (scripts/bench.js). See docs/cuda.md.
#
#   bash scripts/gpu-check.sh
#
# Environment:
#   CMAKE_CUDA_ARCHITECTURES   e.g. 86; default: the toolkit's default list (docs/cuda.md)
#   PYTHON                     the python with torch for the peer (default: python3 on PATH)
#   GPU_CHECK_SECONDS          seconds per benchmark figure (default 5)
#
# A failing step is reported at the end (exit status 1) but does not stop the later steps:
# the benchmark still runs after a failed test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

failures=()
step() { printf '\n=== %s\n' "$*"; }
fail() { failures+=("$1"); printf '*** FAILED: %s\n' "$1"; }
seconds="${GPU_CHECK_SECONDS:-5}"
python="${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}"

step "machine"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || fail "nvidia-smi"
else
  echo "nvidia-smi not found"
fi
nvcc_bin="$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)"
if [ -x "$nvcc_bin" ]; then "$nvcc_bin" --version | tail -2; else echo "nvcc not found (the build below will fail)"; fi
echo "node $(node --version); python: $python"
echo "CMAKE_CUDA_ARCHITECTURES=${CMAKE_CUDA_ARCHITECTURES:-<toolkit default>}"

step "build (TEMPERED_CUDA=ON)"
# cmake-js reuses an existing configuration and would ignore TEMPERED_CUDA and the
# architectures, so configure afresh (the compiled objects are kept).
rm -f build/CMakeCache.txt
if TEMPERED_CUDA=ON TEMPERED_CMAKE_PARALLEL="$(nproc)" node scripts/install.js --force; then
  ls -l build/Release/tempered.node build/Release/libtempered_cuda.so || fail "build outputs"
else
  fail "native build"
fi

step "TypeScript (npm run build:ts)"
npm run --silent build:ts || fail "tsc"

step "backends"
node -e "for (const b of require('./build/Release/tempered.node').backends()) console.log(b.name, b.available ? 'available: ' + b.device : 'unavailable: ' + b.reason)" \
  || fail "backends()"
device="$(node -e "const c = require('./build/Release/tempered.node').backends().find(b => b.name === 'cuda'); console.log(c && c.available ? c.device : '')" 2>/dev/null || true)"
if [ -z "$device" ]; then
  fail "the CUDA backend is unavailable (see above)"
fi

step "parity tests: CUDA vs CPU (test/cuda-parity.test.ts)"
if ! timeout 600 npx jest test/cuda-parity.test.ts; then fail "parity tests"; fi
uses_libraries=false
if echo "$device" | grep -Eq 'cuDNN [0-9]|cuBLAS [0-9]'; then
  uses_libraries=true
  step "parity tests again with our own kernels only (TEMPERED_CUDA_KERNELS=own)"
  if ! TEMPERED_CUDA_KERNELS=own timeout 600 npx jest test/cuda-parity.test.ts; then fail "parity tests (own kernels)"; fi
fi

step "throughput: tempered (CUDA) beside PyTorch + cuDNN on the same card"
if ! timeout 420 node scripts/bench.js --backend cuda --seconds "$seconds" --only train,forward,sweep --python "$python"; then
  fail "benchmark"
fi
if $uses_libraries; then
  step "throughput with our own kernels only (TEMPERED_CUDA_KERNELS=own)"
  if ! TEMPERED_CUDA_KERNELS=own timeout 300 node scripts/bench.js --backend cuda --seconds 3 --only train,forward,sweep \
      --python "$python"; then
    fail "benchmark (own kernels)"
  fi
fi

step "summary"
if [ "${#failures[@]}" -eq 0 ]; then
  echo "gpu-check: all steps passed on ${device}"
  exit 0
fi
echo "gpu-check: ${#failures[@]} step(s) failed:"
printf '  - %s\n' "${failures[@]}"
exit 1
