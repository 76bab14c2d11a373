#!/usr/bin/env bash
# Builds and runs the host emulation test of the CUDA backend (emulation_test.cpp): the
# plugin's kernels and host code compiled as C++ against cuda_emulation.h, compared with the
# CPU backend:
#   - with our own kernels, once in each thread order (forward, reversed, shuffled with a
#     seed): every run must pass, and every run must copy the same bits back from the
#     emulated device (a missing __syncthreads or a shared-memory race changes them); the
#     first order runs the whole test, the others the operations (every kernel, including
#     every one with shared memory, on the network's shapes and awkward ones);
#   - through the cuDNN / cuBLAS code paths, with naive host fakes of those libraries
#     (fake_libraries.cpp) built as libcudnn.so.9 and libcublas.so.13 in a pip-like
#     site-packages folder, which the plugin's loader finds and opens with dlopen.
# No GPU, driver, nvcc, cuDNN or cuBLAS needed; it links the engine library of a normal build
# (build/libtempered_engine.a, from `node scripts/install.js`).
#
#   bash native/cuda/emulation/run.sh [build-dir]
#   TEMPERED_EMULATION_ORDERS="forward reversed shuffle:7" (the default) picks the orders.
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
       -I"$root/native/include" -I"$root/native/cuda")
jobs="$(nproc 2>/dev/null || echo 2)"
[ "$jobs" -gt 2 ] || jobs=2
printf '%s\n' "$root"/native/cuda/*.cu "$root/native/cuda/library_search.cpp" "$here/cuda_emulation.cpp" "$here/emulation_test.cpp" |
  xargs -P "$jobs" -I{} sh -c 'f="$1"; shift; o="$0/$(basename "$f").o"; case "$f" in *.cu) x="-x c++";; *) x="";; esac; exec "$@" $x -c "$f" -o "$o"' "$out" {} "$cxx" "${flags[@]}"
"$cxx" "$out"/*.o "$engine" -lpthread -ldl -o "$out/emulation_test"
# The fake libraries, laid out as pip's nvidia-cudnn / nvidia-cublas wheels lay out the real ones.
site="$out/site-packages"
mkdir -p "$site/nvidia/cudnn/lib" "$site/nvidia/cublas/lib"
"$cxx" "${flags[@]}" -fPIC -shared "$here/fake_libraries.cpp" -o "$site/nvidia/cudnn/lib/libcudnn.so.9"
cp "$site/nvidia/cudnn/lib/libcudnn.so.9" "$site/nvidia/cublas/lib/libcublas.so.13"

# Every order runs every kernel with shared memory (the operations part of the test); the
# first order also runs the whole network, the sweep and the error paths, which use the same
# kernels (running those in every order would triple the time for no kernel not yet covered).
digests=()
first=1
for order in ${TEMPERED_EMULATION_ORDERS:-forward reversed shuffle:7}; do
  part=all
  [ "$first" = 1 ] || part=ops
  first=0
  echo "== our own kernels (TEMPERED_CUDA_KERNELS=own), threads in $order order ($part)"
  t0=$(date +%s)
  TEMPERED_EMULATION_ORDER="$order" TEMPERED_EMULATION_PART="$part" TEMPERED_CUDA_KERNELS=own "$out/emulation_test" | tee "$out/log"
  echo "   ($(( $(date +%s) - t0 )) s)"
  digests+=("$order $(grep '^ops digest' "$out/log" | awk '{print $NF}')")
done
printf '  %s\n' "${digests[@]}"
if [ "$(printf '%s\n' "${digests[@]}" | awk '{print $2}' | sort -u | wc -l)" != 1 ] ||
   [ -z "$(printf '%s\n' "${digests[@]}" | awk '{print $2}' | head -1)" ]; then
  echo "FAIL: the thread orders copied different bits back from the device (a race or a missing __syncthreads)"
  exit 1
fi
echo "== the cuDNN and cuBLAS code paths, against host fakes of the libraries loaded with dlopen"
t0=$(date +%s)
TEMPERED_PYTHON_SITE_PACKAGES="$site" "$out/emulation_test"
echo "   ($(( $(date +%s) - t0 )) s)"
