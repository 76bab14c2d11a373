#!/usr/bin/env bash
# Builds and runs the host emulation test of the CUDA backend (emulation_test.cpp): the
# plugin's kernels and host code compiled as C++ against cuda_emulation.h, compared with the
# CPU backend, twice: with our own kernels, and through the cuDNN / cuBLAS code paths against
# naive host fakes of those libraries (fake_libraries.cpp). No GPU, driver, nvcc, cuDNN or
# cuBLAS needed; it links the engine library of a normal build
# (build/libtempered_engine.a, from `node scripts/install.js`). About 3-4 minutes on 2 cores.
#
#   bash native/cuda/emulation/run.sh [build-dir]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
build="${1:-$root/build}"
engine="$build/libtempered_engine.a"
if [ ! -f "$engine" ]; then
  echo "emulation: $engine not found; build the addon first (node scripts/install.js)" >&2
  exit 1
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cxx="${CXX:-g++}"
flags=(-std=c++17 -O2 -g -Wall -Wno-unused-parameter -Wno-unknown-pragmas -DTEMPERED_CUDA_EMULATION
       -DTEMPERED_HAVE_CUDNN -DTEMPERED_HAVE_CUBLAS
       -I"$root/native/include" -I"$root/native/cuda" -I"$here/include")
# Every .cu file of the plugin, cuDNN and cuBLAS paths included (against the host fakes in
# fake_libraries.cpp, which check our layouts and transposes).
jobs="$(nproc 2>/dev/null || echo 2)"
printf '%s\n' "$root"/native/cuda/*.cu "$here/cuda_emulation.cpp" "$here/fake_libraries.cpp" "$here/emulation_test.cpp" |
  xargs -P "$jobs" -I{} sh -c 'f="$1"; shift; o="$0/$(basename "$f").o"; case "$f" in *.cu) x="-x c++";; *) x="";; esac; exec "$@" $x -c "$f" -o "$o"' "$out" {} "$cxx" "${flags[@]}"
"$cxx" "$out"/*.o "$engine" -lpthread -ldl -o "$out/emulation_test"
echo "== our own kernels (TEMPERED_CUDA_KERNELS=own)"
TEMPERED_CUDA_KERNELS=own "$out/emulation_test"
echo "== the cuDNN and cuBLAS code paths, against host fakes of the libraries"
"$out/emulation_test"
